"""A small pixel task for the image tests: a grid walk seen only as a 36x36 RGB frame."""

from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces

SIDE = 36  # pixels: the smallest frame SB3's NatureCNN takes
RIGHT, UP, LEFT, DOWN = 0, 1, 2, 3
MOVES = {RIGHT: (1, 0), UP: (0, -1), LEFT: (-1, 0), DOWN: (0, 1)}


class PixelGridEnv(gym.Env):
    """
    An agent on a ``size`` x ``size`` grid, observed only through a uint8 image: its cell lit in the red
    channel, the goal's (the top-right cell) in the green one. Episodes start on a random cell other than
    the goal; actions move right, up, left or down (bumping into the border does nothing); reaching the goal
    terminates with reward 1, and episodes are truncated after ``max_steps`` steps (reward 0 otherwise).
    The expert walks right, then up. The position cannot be read from anything but the pixels.

    :param size: Cells per side (``SIDE`` must be a multiple)
    :param max_steps: Time limit
    :param channels_first: Frames of shape ``(3, 36, 36)`` instead of ``(36, 36, 3)``
    :param dict_obs: Observations ``{"frame": image, "time": fraction of the time limit used}``
    """

    def __init__(self, size: int = 4, max_steps: int = 12, channels_first: bool = False, dict_obs: bool = False) -> None:
        self.size, self.max_steps, self.cell = size, max_steps, SIDE // size
        self.channels_first, self.dict_obs = channels_first, dict_obs
        frame = spaces.Box(0, 255, (3, SIDE, SIDE) if channels_first else (SIDE, SIDE, 3), np.uint8)
        time = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.observation_space: spaces.Space = spaces.Dict({"frame": frame, "time": time}) if dict_obs else frame
        self.action_space = spaces.Discrete(4)
        self.goal = (size - 1, 0)
        self.position = (0, size - 1)
        self.steps = 0

    def _frame(self) -> np.ndarray:
        frame = np.zeros((SIDE, SIDE, 3), dtype=np.uint8)
        for channel, (x, y) in ((0, self.position), (1, self.goal)):
            frame[y * self.cell : (y + 1) * self.cell, x * self.cell : (x + 1) * self.cell, channel] = 255
        return np.ascontiguousarray(frame.transpose(2, 0, 1)) if self.channels_first else frame

    def _obs(self) -> Any:
        if self.dict_obs:
            return {"frame": self._frame(), "time": np.array([self.steps / self.max_steps], dtype=np.float32)}
        return self._frame()

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None) -> Tuple[Any, Dict]:
        super().reset(seed=seed)
        cells = [(x, y) for x in range(self.size) for y in range(self.size) if (x, y) != self.goal]
        self.position = cells[int(self.np_random.integers(len(cells)))]
        self.steps = 0
        return self._obs(), {}

    def step(self, action: int) -> Tuple[Any, float, bool, bool, Dict]:
        dx, dy = MOVES[int(action)]
        x, y = self.position
        self.position = (int(np.clip(x + dx, 0, self.size - 1)), int(np.clip(y + dy, 0, self.size - 1)))
        self.steps += 1
        terminated = self.position == self.goal
        truncated = not terminated and self.steps >= self.max_steps
        return self._obs(), float(terminated), terminated, truncated, {}


def agent_cell(frames: np.ndarray, size: int = 4) -> Tuple[np.ndarray, np.ndarray]:
    """The agent's cell ``(x, y)`` in a batch of frames (either channel layout)."""
    red = frames[..., 0] if frames.shape[-1] == 3 else frames[:, 0]
    cell = SIDE // size
    lit = red.reshape(len(red), size, cell, size, cell).max(axis=(2, 4))  # (batch, y, x)
    flat = lit.reshape(len(red), -1).argmax(axis=1)
    return flat % size, flat // size


class WalkRightThenUp:
    """The grid's expert, with SB3's ``predict`` signature (reads the frame, either layout, or a Dict's ``frame``)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size

    def predict(self, obs: Any, deterministic: bool = True, **_: Any) -> Tuple[np.ndarray, None]:
        frames = obs["frame"] if isinstance(obs, dict) else obs
        x, _ = agent_cell(np.asarray(frames), self.size)
        return np.where(x < self.size - 1, RIGHT, UP).astype(np.int64), None
