"""
Conversion of other libraries' demonstrations (DI-engine's transition dicts, imitation's trajectories
and transitions) to :class:`Transitions`.

Each converter also returns which episode ends the source describes (``known``): whether an end is a
termination or a time-limit truncation. DI-engine stores ``done`` only, and imitation marks every
finished trajectory ``terminal=True``, time-limit ends included: there the truncation is read from the
last step's ``infos["TimeLimit.truncated"]`` (SB3's VecEnv sets it; imitation's ``RolloutInfoWrapper``
keeps the infos) where present; :func:`sb3_gail_plugin.demonstrations.load_demonstrations` decides
the others.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from sb3_gail_plugin.transitions import TIME_LIMIT_KEY, ObsArray, Transitions

# DI-engine style keys that say whether an episode end is a time-limit truncation
TRUNCATION_KEYS = ("timeout", "truncated", TIME_LIMIT_KEY)

Converted = Tuple[Transitions, np.ndarray]


def stack_obs(rows: Sequence[Any]) -> ObsArray:
    """Stack per-transition observations (arrays or dicts of arrays) into a batch."""
    if isinstance(rows[0], dict):
        return {key: np.stack([np.asarray(row[key]) for row in rows]) for key in rows[0]}
    return np.stack([np.asarray(row) for row in rows])


def _as_numpy(value: Any) -> Any:
    """Convert torch tensors (DI-engine stores them) and nested dicts to numpy."""
    if isinstance(value, dict):
        return {key: _as_numpy(item) for key, item in value.items()}
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _flag(value: Any) -> Optional[bool]:
    """A boolean flag stored as a bool, a number, a one-element array or tensor; ``None`` otherwise."""
    array = _as_numpy(value)
    if isinstance(array, np.ndarray) and array.size == 1 and (array.dtype == bool or np.issubdtype(array.dtype, np.number)):
        return bool(array.reshape(-1)[0])
    return None


def _info_truncation(info: Any) -> Optional[bool]:
    """``info["TimeLimit.truncated"]`` if ``info`` holds it."""
    if isinstance(info, Mapping) and TIME_LIMIT_KEY in info:
        return _flag(info[TIME_LIMIT_KEY])
    return None


def from_transition_dicts(rows: Sequence[Dict[str, Any]]) -> Converted:
    """
    Convert DI-engine style transition dicts (``obs``, ``action``, ``next_obs``, ``done``, optional
    ``reward``). An end is a truncation where a row says so with ``timeout``, ``truncated`` or
    ``TimeLimit.truncated``, or with ``info["TimeLimit.truncated"]`` (``infos`` too).

    :param rows: The transition dicts, episode after episode
    :return: The transitions, and which rows state whether their end is a truncation
    """
    required = ("obs", "next_obs", "done")
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or any(key not in row for key in required):
            got = sorted(row) if isinstance(row, dict) else type(row).__name__
            raise ValueError(f"Transition {index} must be a dict with keys {required} (and 'action'), got {got}")
    has_actions = all("action" in row for row in rows)
    has_rewards = all("reward" in row for row in rows)
    dones = np.array([bool(_as_numpy(row["done"])) for row in rows])
    truncations = []
    for row in rows:
        stated = [_flag(row[key]) for key in TRUNCATION_KEYS if key in row]
        stated += [_info_truncation(row.get(key)) for key in ("info", "infos")]
        truncations.append(next((flag for flag in stated if flag is not None), None))
    known = np.array([flag is not None for flag in truncations])
    transitions = Transitions(
        observations=stack_obs([_as_numpy(row["obs"]) for row in rows]),
        actions=np.stack([_as_numpy(row["action"]) for row in rows]) if has_actions else None,
        next_observations=stack_obs([_as_numpy(row["next_obs"]) for row in rows]),
        dones=dones,
        timeouts=np.array([bool(flag) for flag in truncations]) & dones,
        rewards=np.array([float(_as_numpy(row["reward"]).reshape(-1)[0]) for row in rows]) if has_rewards else None,
    )
    return transitions, known


def _unwrap_dict_obs(obs: Any) -> ObsArray:
    """imitation's ``DictObs`` exposes ``items()``; plain arrays pass through."""
    if hasattr(obs, "items"):
        return {key: np.asarray(value) for key, value in obs.items()}
    return np.asarray(obs)


def _last_info(infos: Any) -> Any:
    """
    The last info of an imitation trajectory, or ``None``. Infos loaded by
    ``imitation.data.serialize.load`` are jsonpickled strings, decoded lazily with ``jsonpickle``, which
    can run code: those are read as plain JSON instead (``TimeLimit.truncated`` is a JSON boolean).
    """
    encoded = getattr(infos, "_encoded_list", None)  # imitation's _LazyDecodedList
    if encoded is not None:
        try:
            return json.loads(encoded[-1]) if len(encoded) > 0 else None
        except (TypeError, ValueError):
            return None
    if isinstance(infos, (list, tuple, np.ndarray)) and len(infos) > 0:
        return infos[-1]
    return None  # anything else may decode lazily: leave it alone


def from_imitation_trajectories(trajectories: Sequence[Any]) -> Converted:
    """
    Convert imitation ``Trajectory`` objects (``obs`` has one more row than ``acts``). A trajectory
    with ``terminal=False`` ends in a truncation; one with ``terminal=True`` (every finished episode
    of imitation's rollouts) in a truncation if its last info says ``TimeLimit.truncated``.

    :param trajectories: imitation ``Trajectory`` or ``TrajectoryWithRew`` objects
    :return: The transitions, and which rows state whether their end is a truncation
    """
    parts, known = [], []
    for trajectory in trajectories:
        obs = _unwrap_dict_obs(trajectory.obs)
        n = len(trajectory.acts)
        if n == 0:
            continue
        truncated = stated = not trajectory.terminal
        if trajectory.terminal:
            from_info = _info_truncation(_last_info(trajectory.infos))
            truncated, stated = bool(from_info), from_info is not None
        dones = np.zeros(n, dtype=bool)
        dones[-1] = True
        rewards = getattr(trajectory, "rews", None)
        parts.append(
            Transitions(
                observations={k: v[:-1] for k, v in obs.items()} if isinstance(obs, dict) else obs[:-1],
                actions=np.asarray(trajectory.acts),
                next_observations={k: v[1:] for k, v in obs.items()} if isinstance(obs, dict) else obs[1:],
                dones=dones,
                timeouts=dones & truncated,
                rewards=None if rewards is None else np.asarray(rewards),
            )
        )
        known.append(dones & stated)
    if not parts:
        raise ValueError("demonstrations are empty: expected at least one transition, got 0 (all trajectories are empty)")
    return Transitions.concatenate(parts), np.concatenate(known)


def from_imitation_transitions(transitions: Any) -> Converted:
    """
    Convert imitation's ``Transitions`` (``obs``, ``acts``, ``next_obs``, ``dones``, ``infos``,
    optional ``rews``): an end is a truncation if its info says ``TimeLimit.truncated``.

    :param transitions: An imitation ``Transitions`` batch
    :return: The transitions, and which rows state whether their end is a truncation
    """
    dones = np.asarray(transitions.dones, dtype=bool).reshape(-1)
    infos = getattr(transitions, "infos", None)
    truncations: List[Optional[bool]] = [None] * len(dones)
    if isinstance(infos, (list, tuple, np.ndarray)) and len(infos) == len(dones):
        truncations = [_info_truncation(info) if done else None for info, done in zip(infos, dones)]
    rewards = getattr(transitions, "rews", None)
    converted = Transitions(
        observations=_unwrap_dict_obs(transitions.obs),
        actions=np.asarray(transitions.acts),
        next_observations=_unwrap_dict_obs(transitions.next_obs),
        dones=dones,
        timeouts=np.array([bool(flag) for flag in truncations], dtype=bool) & dones,
        rewards=None if rewards is None else np.asarray(rewards),
    )
    return converted, np.array([flag is not None for flag in truncations], dtype=bool)


def load_imitation_path(path: Path) -> Converted:
    """
    Read a directory written by ``imitation.data.serialize.save`` (HuggingFace ``datasets`` format).

    :param path: The directory
    :return: The transitions, and which rows state whether their end is a truncation
    """
    if not path.is_dir():  # imitation reads files with np.load(allow_pickle=True): never hand it one
        raise ValueError(f"Expected a directory written by imitation.data.serialize.save, got the file {path}")
    try:
        from imitation.data import serialize
    except ImportError as error:
        raise ImportError(
            f"{path} looks like demonstrations saved by imitation.data.serialize.save; "
            "reading them needs the optional extra: pip install 'sb3-gail-plugin[imitation]'"
        ) from error
    return from_imitation_trajectories(serialize.load(path))
