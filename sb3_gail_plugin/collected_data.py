"""The agent transitions collected for the discriminator's next training round."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from sb3_gail_plugin.demonstrations import read_transitions
from sb3_gail_plugin.tensor_data import copy_obs
from sb3_gail_plugin.transitions import ObsArray, Transitions, check_finite_and_non_empty


class CollectedTransitions:
    """
    Agent transitions collected since the discriminator's last training: stored (copied, so that later changes to
    the caller's arrays do not reach them), or only counted (:meth:`count`).
    """

    def __init__(self) -> None:
        self.parts: List[Transitions] = []
        self.n_counted = 0  # transitions counted by count(), not stored

    def add(
        self,
        observations: Union[ObsArray, Transitions, Sequence[Dict[str, Any]]],
        actions: Optional[np.ndarray] = None,
        next_observations: Optional[ObsArray] = None,
        dones: Optional[np.ndarray] = None,
        timeouts: Optional[np.ndarray] = None,
    ) -> None:
        """
        Store a batch of transitions: the arrays, or a single :class:`~sb3_gail_plugin.transitions.Transitions` batch
        or list of DI-engine style transition dicts as ``observations``
        (see :meth:`~sb3_gail_plugin.reward_model.GailRewardModel.collect_data`).

        :param observations: Raw observations ``s``, shape ``(n, *obs_shape)`` (or one batch)
        :param actions: Actions in the env's action space, shape ``(n, *action_shape)``
        :param next_observations: Raw next observations ``s'`` (real terminal observations at episode ends)
        :param dones: Episode ends, shape ``(n,)``
        :param timeouts: Which episode ends are time-limit truncations, shape ``(n,)``
        """
        if actions is None and next_observations is None and dones is None:
            batch, _ = read_transitions(observations)  # agent data: partial episodes, no truncation rules
            check_finite_and_non_empty(batch, "agent data")
            self.parts.append(replace(batch, rewards=None))
            return
        if actions is None or next_observations is None or dones is None:
            raise TypeError("collect_data() needs observations, actions, next_observations and dones (or one batch)")
        dones = np.array(dones, dtype=bool).reshape(-1)
        self.parts.append(
            Transitions(
                observations=copy_obs(observations),
                actions=np.array(actions),
                next_observations=copy_obs(next_observations),
                dones=dones,
                timeouts=np.zeros_like(dones) if timeouts is None else np.array(timeouts, dtype=bool).reshape(-1) & dones,
            )
        )

    def count(self, n: int) -> None:
        """
        Count ``n`` transitions as collected without storing them.

        :param n: Number of new transitions
        """
        if n < 0:
            raise ValueError(f"Expected a number of transitions >= 0, got {n}")
        self.n_counted += int(n)

    def __len__(self) -> int:
        """Transitions collected: stored and counted."""
        return sum(len(part) for part in self.parts) + self.n_counted

    @property
    def stored(self) -> Optional[Transitions]:
        """The stored transitions as one batch (``None`` when none is stored)."""
        return Transitions.concatenate(self.parts) if self.parts else None

    def clear(self) -> None:
        """Drop the stored transitions and the count."""
        self.restore(None, 0)

    def restore(self, stored: Optional[Transitions], n_counted: int) -> None:
        """
        Replace the contents (a loaded reward model's).

        :param stored: The stored transitions (``None``: none)
        :param n_counted: Transitions counted, not stored
        """
        self.parts = [] if stored is None else [stored]
        self.n_counted = int(n_counted)
