"""A tiny goal-reaching env where ending the episode is the goal (the survival-bias test bed)."""

from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class GoalChainEnv(gym.Env):
    """
    Positions 0..length-1 on a line, one-hot observed; start at 0; action 1 moves right, 0 moves left.
    Reaching the last position terminates the episode with reward 1; otherwise it is truncated after
    ``max_steps`` steps. The expert walks right and terminates in ``length - 1`` steps.
    """

    def __init__(self, length: int = 6, max_steps: int = 30) -> None:
        self.length = length
        self.observation_space = spaces.Box(0.0, 1.0, (length,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.max_steps = max_steps
        self.position = 0
        self.steps = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.length, dtype=np.float32)
        obs[self.position] = 1.0
        return obs

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None) -> Tuple[np.ndarray, Dict]:
        super().reset(seed=seed)
        self.position, self.steps = 0, 0
        return self._obs(), {}

    def step(self, action: int) -> Tuple[np.ndarray, float, bool, bool, Dict]:
        self.position = int(np.clip(self.position + (1 if int(action) == 1 else -1), 0, self.length - 1))
        self.steps += 1
        terminated = self.position == self.length - 1
        truncated = not terminated and self.steps >= self.max_steps
        return self._obs(), float(terminated), terminated, truncated, {}


class WalkRight:
    """The chain's expert, with SB3's predict signature."""

    def predict(self, obs: np.ndarray, deterministic: bool = True, **_: Any) -> Tuple[np.ndarray, None]:
        return np.ones(len(obs), dtype=np.int64), None
