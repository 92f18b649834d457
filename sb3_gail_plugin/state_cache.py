"""A value computed from a module's weights, kept until they change."""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch as th
from torch import nn


def _version(tensor: th.Tensor) -> int:
    """How many in-place changes ``tensor`` went through (torch's version counter, which autograd checks too)."""
    return int(tensor._version)


class ModuleStateCache:
    """
    Keeps one tensor computed from a module in eval mode (e.g. the absorbing state's reward) until the module's
    parameters or buffers change: every in-place change (an optimiser step, ``load_state_dict``, ``copy_`` under
    ``no_grad``) bumps a tensor's version counter, and a changed counter makes :meth:`get` miss. Nothing is
    cached in train mode, where a forward pass may change the module (spectral norm's power iteration). Changes
    that bypass the counters are not seen: writes through ``.data``, or parameters replaced by other objects
    (``load_state_dict(..., assign=True)``); call :meth:`clear` after those.

    :param module: The module the value is computed from
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self._tensors: List[th.Tensor] = []
        self._stamp: Optional[Tuple[int, ...]] = None
        self._value: Optional[th.Tensor] = None

    def _current_stamp(self) -> Tuple[int, ...]:
        return tuple(_version(tensor) for tensor in self._tensors)

    def get(self) -> Optional[th.Tensor]:
        """The cached value, or ``None`` if there is none, the module changed since, or it is in train mode."""
        if self._value is None or self.module.training or self._current_stamp() != self._stamp:
            return None
        return self._value

    def set(self, value: th.Tensor) -> None:
        """Cache ``value``, computed from the module as it is now (ignored in train mode)."""
        if self.module.training:
            return
        # the tensors are listed anew at each set(): a parameter replaced by another object is seen then
        self._tensors = [*self.module.parameters(), *self.module.buffers()]
        self._stamp = self._current_stamp()
        self._value = value.detach()

    def clear(self) -> None:
        """Forget the cached value."""
        self._value = None
