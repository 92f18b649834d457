"""
Safe persistence of the reward model: everything is stored as tensors and plain Python values, so
that loading uses ``torch.load(weights_only=True)`` and a crafted file cannot execute code.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Type, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from sb3_gail_plugin.features import extractor_from_name, extractor_name, holds_images, to_plain
from sb3_gail_plugin.transitions import ObsArray, Transitions

if TYPE_CHECKING:
    from sb3_gail_plugin.reward_model import GailRewardModel

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


def save_reward_model(model: GailRewardModel, path: PathLike) -> None:
    """
    Write a reward model's state (see :meth:`~sb3_gail_plugin.reward_model.GailRewardModel.save`).

    :param model: The reward model
    :param path: File to write
    :raises TypeError: if ``features_extractor_kwargs`` hold something else than plain values
    """
    kwargs = model._init_kwargs()
    kwargs["features_extractor_class"] = extractor_name(model.discriminator.features_extractor_class)
    kwargs["features_extractor_kwargs"] = to_plain(model.features_extractor_kwargs, "features_extractor_kwargs")
    stats = model.reward_stats
    save_state(
        {
            "observation_space": space_to_dict(model.observation_space),
            "action_space": space_to_dict(model.action_space),
            "kwargs": kwargs,
            "expert_data": transitions_to_dict(model.expert_data),
            "collected_data": transitions_to_dict(model.agent_data),
            "n_counted": model._collected.n_counted,
            "discriminator": model.discriminator.state_dict(),
            "optimizer": model.optimizer.state_dict(),
            "generator": model.generator.get_state(),
            "reward_stats": [float(stats.mean), float(stats.var), float(stats.count)],
            "n_updates": model.n_updates,
        },
        path,
    )


def load_reward_model(
    cls: Type[GailRewardModel],
    path: PathLike,
    device: Union[th.device, str] = "auto",
    features_extractor_class: Optional[Type[BaseFeaturesExtractor]] = None,
) -> GailRewardModel:
    """
    Read a reward model written by :func:`save_reward_model` (see :meth:`~sb3_gail_plugin.reward_model.GailRewardModel.load`).

    :param cls: The reward model's class
    :param path: File written by :func:`save_reward_model`
    :param device: Device to load the discriminator onto
    :param features_extractor_class: The discriminator's features extractor class, when it is not one of SB3's (it
        must have the import path the file records)
    :return: The reward model, in the state it was saved in
    """
    data = load_state(path)
    observation_space = space_from_dict(data["observation_space"])
    kwargs = dict(data["kwargs"])
    if "features_extractor_class" not in kwargs and holds_images(observation_space):
        raise ValueError(
            f"{os.fspath(path)} was written by a version whose discriminator flattened images into an MLP; this "
            "version reads images with a features extractor (NatureCNN by default): train the reward model anew"
        )
    kwargs["features_extractor_class"] = extractor_from_name(kwargs.get("features_extractor_class"), features_extractor_class)
    expert_data = transitions_from_dict(data["expert_data"])
    model = cls(observation_space, space_from_dict(data["action_space"]), expert_data, device=device, **kwargs)
    model.discriminator.load_state_dict(data["discriminator"])
    # which implementation Adam runs is the code's choice, not the file's (earlier versions saved foreach=None)
    implementations: List[Dict[str, Any]] = [
        {key: group[key] for key in ("foreach", "fused") if key in group} for group in model.optimizer.param_groups
    ]
    model.optimizer.load_state_dict(data["optimizer"])
    for group, implementation in zip(model.optimizer.param_groups, implementations):
        group.update(implementation)
    model.generator.set_state(data["generator"])
    mean, var, count = data["reward_stats"]
    model.reward_stats.mean, model.reward_stats.var, model.reward_stats.count = np.array(mean), np.array(var), count
    model._collected.restore(transitions_from_dict(data["collected_data"]), data.get("n_counted", 0))
    model.n_updates = int(data["n_updates"])
    return model
