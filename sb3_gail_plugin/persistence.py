"""
Safe persistence of the reward model: everything is stored as tensors and plain Python values, so
that loading uses ``torch.load(weights_only=True)`` and a crafted file cannot execute code.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Union

import numpy as np
import torch as th
from gymnasium import spaces

from sb3_gail_plugin.transitions import ObsArray, Transitions

PathLike = Union[str, "os.PathLike[str]"]
FILE_FORMAT = "sb3-gail-plugin/reward-model"
# 3: the discriminator's features extractor is recorded (by import path); 4: the transitions counted but not
# stored (agent_data_source="replay") are recorded, as "n_counted"
FILE_VERSION = 4
READABLE_VERSIONS = (2, 3, 4)


def _tensor(array: Any) -> th.Tensor:
    return th.from_numpy(np.ascontiguousarray(array))


def space_to_dict(space: spaces.Space) -> Dict[str, Any]:
    """
    Describe a gymnasium space with tensors and plain values (the inverse of :func:`space_from_dict`).

    :param space: A ``Box``, ``Discrete``, ``MultiDiscrete``, ``MultiBinary`` or ``Dict`` of those
    :return: The description
    """
    if isinstance(space, spaces.Box):
        return {"type": "Box", "low": _tensor(space.low), "high": _tensor(space.high), "dtype": str(space.dtype)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        start = getattr(space, "start", np.zeros_like(space.nvec))
        return {"type": "MultiDiscrete", "nvec": _tensor(space.nvec), "start": _tensor(start)}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": [int(n) for n in np.atleast_1d(space.n)]}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {key: space_to_dict(sub) for key, sub in space.spaces.items()}}
    raise TypeError(
        f"Cannot save a reward model for a {type(space).__name__} space: expected Box, Discrete, MultiDiscrete, "
        "MultiBinary or Dict"
    )


def space_from_dict(description: Dict[str, Any]) -> spaces.Space:
    """
    Rebuild a space described by :func:`space_to_dict`.

    :param description: The description
    :return: The space
    """
    kind = description.get("type")
    if kind == "Box":
        return spaces.Box(description["low"].numpy(), description["high"].numpy(), dtype=np.dtype(description["dtype"]))
    if kind == "Discrete":
        return spaces.Discrete(description["n"], start=description["start"])
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(description["nvec"].numpy(), start=description["start"].numpy())
    if kind == "MultiBinary":
        n = description["n"]
        return spaces.MultiBinary(n[0] if len(n) == 1 else n)
    if kind == "Dict":
        return spaces.Dict({key: space_from_dict(sub) for key, sub in description["spaces"].items()})
    raise ValueError(f"Unknown space in the file: expected Box, Discrete, MultiDiscrete, MultiBinary or Dict, got {kind!r}")


def _obs_to_tensors(obs: ObsArray) -> Any:
    if isinstance(obs, dict):
        return {key: _tensor(value) for key, value in obs.items()}
    return _tensor(obs)


def _obs_from_tensors(obs: Any) -> ObsArray:
    if isinstance(obs, dict):
        return {key: value.numpy() for key, value in obs.items()}
    return obs.numpy()


def transitions_to_dict(transitions: Optional[Transitions]) -> Optional[Dict[str, Any]]:
    """Transitions as a dict of tensors (``None`` stays ``None``)."""
    if transitions is None:
        return None
    return {
        "observations": _obs_to_tensors(transitions.observations),
        "actions": None if transitions.actions is None else _tensor(transitions.actions),
        "next_observations": _obs_to_tensors(transitions.next_observations),
        "dones": _tensor(transitions.dones),
        "timeouts": _tensor(transitions.timeouts),
        "rewards": None if transitions.rewards is None else _tensor(transitions.rewards),
    }


def transitions_from_dict(data: Optional[Dict[str, Any]]) -> Optional[Transitions]:
    """The inverse of :func:`transitions_to_dict`."""
    if data is None:
        return None
    return Transitions(
        observations=_obs_from_tensors(data["observations"]),
        actions=None if data["actions"] is None else data["actions"].numpy(),
        next_observations=_obs_from_tensors(data["next_observations"]),
        dones=data["dones"].numpy(),
        timeouts=data["timeouts"].numpy(),
        rewards=None if data["rewards"] is None else data["rewards"].numpy(),
    )


def save_state(state: Dict[str, Any], path: PathLike) -> None:
    """Write a reward model's state (tensors and plain values only) with a format header."""
    th.save({"format": FILE_FORMAT, "version": FILE_VERSION, **state}, path)


def load_state(path: PathLike) -> Dict[str, Any]:
    """
    Read a file written by :func:`save_state` without executing code (``torch.load(weights_only=True)``).

    :param path: The file
    :return: The state, with its tensors on the CPU
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No reward model file at {os.fspath(path)}")
    try:
        state = th.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError (or RuntimeError) for anything but plain data
        raise ValueError(
            f"{os.fspath(path)} is not a reward model file that can be loaded safely (it holds objects other than "
            f"tensors and plain values, or it was written by an older version): {error}"
        ) from error
    if not isinstance(state, dict) or state.get("format") != FILE_FORMAT:
        got = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{os.fspath(path)} is not a reward model file: expected format {FILE_FORMAT!r}, got {got!r}")
    if state.get("version") not in READABLE_VERSIONS:
        raise ValueError(
            f"{os.fspath(path)} has reward model file version {state.get('version')}, expected one of {READABLE_VERSIONS}"
        )
    return state
