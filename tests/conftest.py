from typing import Any, Optional, Tuple

import numpy as np
import pytest
import torch as th

from sb3_gail_plugin import Transitions, collect_demonstrations


class CartPoleHeuristicExpert:
    """A scripted CartPole-v1 controller that scores 500, with SB3's ``predict`` signature (fast test expert)."""

    def predict(self, obs: np.ndarray, deterministic: bool = True, **_: Any) -> Tuple[np.ndarray, Optional[Any]]:
        return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64), None


@pytest.fixture(autouse=True)
def _single_thread() -> None:
    th.set_num_threads(1)


@pytest.fixture(scope="session")
def cartpole_expert() -> CartPoleHeuristicExpert:
    return CartPoleHeuristicExpert()


@pytest.fixture(scope="session")
def cartpole_demos(cartpole_expert: CartPoleHeuristicExpert) -> Transitions:
    return collect_demonstrations(cartpole_expert, "CartPole-v1", n_episodes=5, seed=123)
