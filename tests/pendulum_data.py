import numpy as np

from sb3_gail_plugin import Transitions


def random_pendulum_demos(n: int = 64) -> Transitions:
    """``n`` random Pendulum-v1 transitions (observations in [-1, 1], torques in [-2, 2], no episode ends)."""
    rng = np.random.default_rng(0)
    return Transitions(
        observations=rng.uniform(-1, 1, (n, 3)).astype(np.float32),
        actions=rng.uniform(-2, 2, (n, 1)).astype(np.float32),
        next_observations=rng.uniform(-1, 1, (n, 3)).astype(np.float32),
        dones=np.zeros(n, dtype=bool),
    )
