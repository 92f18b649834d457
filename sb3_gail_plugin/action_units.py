"""The units of Box actions: SB3's off-policy algorithms store them rescaled to [-1, 1], the discriminator sees env units."""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import torch as th
from gymnasium import spaces


class BoxActionUnits:
    """
    Maps a replay buffer's actions to the env's units and back. SB3's off-policy algorithms store the actions of a
    bounded ``Box`` rescaled to [-1, 1] (``policy.scale_action``), flat; other actions (and bounds that are [-1, 1]
    already) are passed through as they are, in the action space's shape.

    :param action_space: The env's action space
    """

    def __init__(self, action_space: spaces.Space) -> None:
        self.action_space = action_space
        self.rescaled = (
            isinstance(action_space, spaces.Box)
            and action_space.is_bounded()
            and not (np.all(action_space.low == -1.0) and np.all(action_space.high == 1.0))
        )
        self._bounds: Dict[th.device, Tuple[th.Tensor, th.Tensor]] = {}

    def _low_and_range(self, device: th.device) -> Tuple[th.Tensor, th.Tensor]:
        """The bounds' low end and range, as float32 tensors on ``device`` (made once per device)."""
        if device not in self._bounds:
            assert isinstance(self.action_space, spaces.Box)
            low = th.as_tensor(self.action_space.low, device=device, dtype=th.float32)
            high = th.as_tensor(self.action_space.high, device=device, dtype=th.float32)
            self._bounds[device] = (low, high - low)
        return self._bounds[device]

    def to_env(self, actions: th.Tensor) -> th.Tensor:
        """Stored actions ``(batch, ...)`` in the env's units and the action space's shape."""
        if self.rescaled:
            low, scale = self._low_and_range(actions.device)
            return low + 0.5 * (actions.reshape(-1, *low.shape).float() + 1.0) * scale
        if isinstance(self.action_space, spaces.Box):  # stored flat, as SB3 stores them
            return actions.reshape(-1, *self.action_space.shape)
        return actions

    def to_buffer(self, actions: th.Tensor) -> th.Tensor:
        """Inverse of :meth:`to_env`: env actions ``(batch, ...)`` in the units the buffer stores, flat."""
        if self.rescaled:
            low, scale = self._low_and_range(actions.device)
            actions = 2.0 * (actions.float() - low) / scale - 1.0
        return actions.reshape(actions.shape[0], -1)
