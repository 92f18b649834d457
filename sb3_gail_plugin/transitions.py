"""Transition batches (expert demonstrations and collected agent data) and their validation."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first

ObsArray = Union[np.ndarray, Dict[str, np.ndarray]]

SUPPORTED_ACTION_SPACES = (spaces.Discrete, spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary)


def _obs_len(obs: ObsArray) -> int:
    if isinstance(obs, dict):
        return len(next(iter(obs.values()))) if obs else 0
    return len(obs)


TIME_LIMIT_KEY = "TimeLimit.truncated"  # the info key of time-limit truncations (gymnasium's TimeLimit, SB3's VecEnvs)


def index_obs(obs: Any, index: Any) -> Any:
    """
    Rows ``index`` of a batch of observations: an array or tensor, or a dict of them.

    :param obs: The batch
    :param index: Any index of the arrays' leading dimensions (a slice, an index array, or a tuple of index arrays)
    :return: The selected rows, in the same layout
    """
    if isinstance(obs, dict):
        return {key: value[index] for key, value in obs.items()}
    return obs[index]


def _obs_concatenate(parts: Sequence[ObsArray]) -> ObsArray:
    if isinstance(parts[0], dict):
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}  # type: ignore[index]
    return np.concatenate(parts)  # type: ignore[arg-type]


@dataclass
class Transitions:
    """
    A flat batch of transitions ``(s, a, s', done)``, the format of expert demonstrations and of the
    agent data collected for the discriminator.

    :param observations: Observations ``s``, shape ``(n, *obs_shape)`` (a dict of such arrays for ``Dict`` spaces).
        Always raw environment observations (never ``VecNormalize``-normalised).
    :param actions: Actions ``a`` in the environment's action space, shape ``(n, *action_shape)``;
        ``None`` for observation-only demonstrations.
    :param next_observations: Next observations ``s'`` (the real terminal observation at episode ends).
    :param dones: Whether the episode ended after the transition (termination or truncation), shape ``(n,)``.
    :param timeouts: Whether that end was a time-limit truncation rather than a termination, shape ``(n,)``.
    :param rewards: Environment rewards, shape ``(n,)``, if known (never used by the discriminator).
    """

    observations: ObsArray
    actions: Optional[np.ndarray]
    next_observations: ObsArray
    dones: np.ndarray
    timeouts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    rewards: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        n = _obs_len(self.observations)
        self.dones = np.asarray(self.dones, dtype=bool).reshape(-1)
        if len(self.timeouts) == 0 and n > 0:
            self.timeouts = np.zeros(n, dtype=bool)
        self.timeouts = np.asarray(self.timeouts, dtype=bool).reshape(-1)
        if self.rewards is not None:
            self.rewards = np.asarray(self.rewards, dtype=np.float32).reshape(-1)
        lengths = {
            "observations": n,
            "next_observations": _obs_len(self.next_observations),
            "dones": len(self.dones),
            "timeouts": len(self.timeouts),
        }
        if self.actions is not None:
            lengths["actions"] = len(self.actions)
        if self.rewards is not None:
            lengths["rewards"] = len(self.rewards)
        if len(set(lengths.values())) != 1:
            raise ValueError(f"All fields of a transition batch must have the same length, got {lengths}")
        if np.any(self.timeouts & ~self.dones):
            raise ValueError("timeouts must be a subset of dones: a time-limit truncation also ends the episode")

    def __len__(self) -> int:
        return len(self.dones)

    @property
    def terminals(self) -> np.ndarray:
        """Episode ends that are real terminations (not time-limit truncations)."""
        return self.dones & ~self.timeouts

    def __getitem__(self, index: Union[np.ndarray, slice]) -> Transitions:
        return Transitions(
            observations=index_obs(self.observations, index),
            actions=None if self.actions is None else self.actions[index],
            next_observations=index_obs(self.next_observations, index),
            dones=self.dones[index],
            timeouts=self.timeouts[index],
            rewards=None if self.rewards is None else self.rewards[index],
        )

    @classmethod
    def concatenate(cls, parts: Sequence[Transitions]) -> Transitions:
        """Concatenate several batches into one."""
        if not parts:
            raise ValueError("Cannot concatenate an empty list of transition batches")
        has_actions = {part.actions is not None for part in parts}
        has_rewards = {part.rewards is not None for part in parts}
        if len(has_actions) != 1 or len(has_rewards) != 1:
            raise ValueError("Cannot concatenate batches with and without actions (or rewards)")
        return cls(
            observations=_obs_concatenate([part.observations for part in parts]),
            actions=None if parts[0].actions is None else np.concatenate([part.actions for part in parts]),  # type: ignore[misc]
            next_observations=_obs_concatenate([part.next_observations for part in parts]),
            dones=np.concatenate([part.dones for part in parts]),
            timeouts=np.concatenate([part.timeouts for part in parts]),
            rewards=None if parts[0].rewards is None else np.concatenate([part.rewards for part in parts]),  # type: ignore[misc]
        )

    def episode_returns(self) -> np.ndarray:
        """Sum of rewards of each complete episode (transitions are assumed to be stored episode after episode)."""
        if self.rewards is None:
            raise ValueError("These transitions carry no rewards")
        ends = np.flatnonzero(self.dones)
        cumulative = np.concatenate([[0.0], np.cumsum(self.rewards, dtype=np.float64)])
        starts = np.concatenate([[0], ends[:-1] + 1])
        return cumulative[ends + 1] - cumulative[starts]

    def without_actions(self) -> Transitions:
        """A copy with the actions dropped (observation-only demonstrations)."""
        return replace(self, actions=None)


def _check_finite(name: str, array: np.ndarray) -> None:
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} must be finite, got {bad} NaN or inf value(s)")


def check_finite_and_non_empty(transitions: Transitions, name: str = "demonstrations") -> None:
    """
    Check that a batch is not empty and holds no NaN or inf.

    :param transitions: The batch to check
    :param name: How to call the batch in error messages
    """
    if len(transitions) == 0:
        raise ValueError(f"{name} are empty: expected at least one transition, got 0")
    for key, obs in _named_obs(transitions):
        _check_finite(f"{name} {key}", obs)
    if transitions.actions is not None:
        _check_finite(f"{name} actions", transitions.actions)
    if transitions.rewards is not None:
        _check_finite(f"{name} rewards", transitions.rewards)


def _named_obs(transitions: Transitions) -> List[tuple]:
    named = []
    for prefix, obs in (("observations", transitions.observations), ("next_observations", transitions.next_observations)):
        if isinstance(obs, dict):
            named += [(f"{prefix}[{key!r}]", value) for key, value in obs.items()]
        else:
            named.append((prefix, obs))
    return named


def _channels_last(shape: Tuple[int, ...]) -> Tuple[int, ...]:
    return (*shape[1:], shape[0])


def _conform_array(array: np.ndarray, space: spaces.Space, what: str, name: str) -> np.ndarray:
    """
    Reshape one array of ``space`` samples to ``(n, *space.shape)`` and check its values. Channel-last images
    for a channel-first image space (SB3's ``VecTransposeImage``, which CNN policies add) are transposed, as
    SB3's ``predict`` does.
    """
    array = np.asarray(array)
    expected_shape = tuple(space.shape) if space.shape is not None else ()
    received_shape = tuple(array.shape[1:])
    if (
        is_image_space(space)
        and is_image_space_channels_first(space)  # type: ignore[arg-type]
        and received_shape == _channels_last(expected_shape) != expected_shape
    ):
        array = np.ascontiguousarray(np.moveaxis(array, -1, 1))
        received_shape = expected_shape
    if isinstance(space, spaces.Discrete) and received_shape == (1,):
        array = array.reshape(-1)
        received_shape = ()
    if received_shape != expected_shape:
        raise ValueError(
            f"{name} {what} have shape {received_shape} per transition, expected {expected_shape} "
            f"to match the env's space {space}"
        )
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)):
        if not np.issubdtype(array.dtype, np.integer):
            if np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
                array = array.astype(np.int64)
            else:
                raise ValueError(f"{name} {what} must be integers for the env's space {space}, got dtype {array.dtype}")
        if isinstance(space, spaces.Discrete):
            low, high = np.asarray(space.start), np.asarray(space.start + space.n - 1)
        elif isinstance(space, spaces.MultiDiscrete):
            low = np.asarray(getattr(space, "start", 0))
            high = low + space.nvec - 1
        else:
            low, high = np.asarray(0), np.asarray(1)
        if np.any(array < low) or np.any(array > high):
            raise ValueError(
                f"{name} {what} must lie in the env's space {space}, got values in [{array.min()}, {array.max()}]"
            )
    elif isinstance(space, spaces.Box):
        if not np.issubdtype(array.dtype, np.integer):  # (no float copy of integer arrays, e.g. uint8 images)
            _check_finite(f"{name} {what}", array.astype(np.float64, copy=False))
        array = array.astype(space.dtype, copy=False)
    return array


def _conform_obs(obs: ObsArray, space: spaces.Space, what: str, name: str) -> ObsArray:
    if isinstance(space, spaces.Dict):
        if not isinstance(obs, dict):
            raise ValueError(
                f"{name} {what} must be a dict with keys {sorted(space.spaces)} for a Dict space, got {type(obs).__name__}"
            )
        if set(obs) != set(space.spaces):
            raise ValueError(f"{name} {what} have keys {sorted(obs)}, expected {sorted(space.spaces)}")
        return {key: _conform_array(obs[key], sub, f"{what}[{key!r}]", name) for key, sub in space.spaces.items()}
    if isinstance(obs, dict):
        raise ValueError(f"{name} {what} are a dict with keys {sorted(obs)}, expected arrays for the env's space {space}")
    return _conform_array(obs, space, what, name)


def check_action_space(action_space: spaces.Space) -> None:
    """Raise a ``TypeError`` if the discriminator cannot take actions from ``action_space``."""
    if not isinstance(action_space, SUPPORTED_ACTION_SPACES):
        expected = ", ".join(space.__name__ for space in SUPPORTED_ACTION_SPACES)
        raise TypeError(f"Unsupported action space: expected one of {expected}, got {action_space}")


def conform_transitions(
    transitions: Transitions,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    name: str = "demonstrations",
    require_actions: bool = True,
) -> Transitions:
    """
    Check a batch against an environment's spaces and return it with normalised shapes and dtypes.

    :param transitions: The batch to check
    :param observation_space: The env's observation space
    :param action_space: The env's action space
    :param name: How to call the batch in error messages
    :param require_actions: Refuse a batch without actions
    :return: The batch with observations of shape ``(n, *observation_space.shape)`` and
        actions of shape ``(n, *action_space.shape)``
    """
    if not isinstance(transitions, Transitions):
        raise TypeError(f"{name} must be a Transitions batch (see load_demonstrations), got {type(transitions).__name__}")
    check_finite_and_non_empty(transitions, name)
    if transitions.actions is None and require_actions:
        raise ValueError(
            f"{name} have no actions, but the discriminator takes actions as input (inputs='sa' or 'sas'): "
            "provide demonstrations with actions, or use the state-only discriminator inputs='ss'"
        )
    actions = None
    if transitions.actions is not None:
        check_action_space(action_space)
        actions = _conform_array(transitions.actions, action_space, "actions", name)
    return replace(
        transitions,
        observations=_conform_obs(transitions.observations, observation_space, "observations", name),
        actions=actions,
        next_observations=_conform_obs(transitions.next_observations, observation_space, "next_observations", name),
    )


def clip_actions_to_bounds(transitions: Transitions, action_space: spaces.Space, name: str = "demonstrations") -> Transitions:
    """
    Clip ``Box`` actions to the action space's bounds, warning when any lay outside them by more than rounding.

    SB3 clips the agent's actions to the bounds before ``env.step`` (and SAC's never leave them), so the agent
    transitions the discriminator sees are always within them: an expert action outside them (an unclipped
    Gaussian policy's, recorded before the env clipped it) would tell expert from agent by itself.

    :param transitions: A batch whose actions already have the action space's shape (see ``conform_transitions``)
    :param action_space: The env's action space; other spaces than ``Box`` pass through unchanged
    :param name: How to call the batch in the warning
    :return: The batch, with its actions clipped where the space is a ``Box``
    """
    if transitions.actions is None or not isinstance(action_space, spaces.Box):
        return transitions
    low, high = action_space.low, action_space.high
    clipped = np.clip(transitions.actions, low, high).astype(transitions.actions.dtype, copy=False)
    tolerance = 1e-5 * (1.0 + np.abs(np.where(transitions.actions < low, low, high)))
    outside = np.abs(clipped - transitions.actions) > tolerance
    if np.any(outside):
        n_outside = int(outside.reshape(len(outside), -1).any(axis=1).sum())
        warnings.warn(
            f"The {name} have actions outside the bounds of the env's action space {action_space} in {n_outside} of "
            f"{len(transitions)} transitions (got values in [{transitions.actions.min()}, {transitions.actions.max()}]): "
            "clipped to the bounds, as SB3 clips the agent's actions before env.step",
            UserWarning,
            stacklevel=3,
        )
    return replace(transitions, actions=clipped)
