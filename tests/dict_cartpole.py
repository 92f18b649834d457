"""CartPole with a Dict observation, for the Dict-space tests."""

from typing import Dict

import gymnasium as gym
import numpy as np


class DictCartPole(gym.ObservationWrapper):
    """CartPole with a Dict observation: cart position/velocity and pole angle/velocity."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        box = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.observation_space = gym.spaces.Dict({"cart": box, "pole": box})

    def observation(self, obs: np.ndarray) -> Dict[str, np.ndarray]:
        return {"cart": obs[:2], "pole": obs[2:]}
