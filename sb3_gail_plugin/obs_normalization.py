"""``VecNormalize``'s observation normalisation on tensors, on their device."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch as th
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecNormalize

TensorObs = Any  # a tensor, or a dict of tensors


def _is_sb3_normalization(env: VecNormalize) -> bool:
    """Whether ``env`` normalises observations with SB3's own code (not a subclass's override)."""
    cls = type(env)
    return cls.normalize_obs is VecNormalize.normalize_obs and cls._normalize_obs is VecNormalize._normalize_obs


def _normalize(obs: th.Tensor, rms: RunningMeanStd, env: VecNormalize) -> th.Tensor:
    # SB3: np.clip((obs - mean) / np.sqrt(var + epsilon), -clip_obs, clip_obs).astype(np.float32), in float64 for
    # its float64 statistics; the same IEEE operations in the same precision give the same float32 values
    mean = th.as_tensor(rms.mean, device=obs.device)
    std = th.as_tensor(np.sqrt(rms.var + env.epsilon), device=obs.device)
    return th.clamp((obs.to(th.float64) - mean) / std, -env.clip_obs, env.clip_obs).to(th.float32)


def normalize_obs_tensor(obs: TensorObs, env: VecNormalize) -> TensorObs:
    """
    ``env.normalize_obs`` of a batch of observations held as tensors, computed where they are (no round trip
    through NumPy on the CPU), with the same values as SB3's. Falls back to SB3's NumPy code for a subclass that
    normalises otherwise, or for statistics not held in float64.

    :param obs: Raw observations: a tensor, or a dict of tensors
    :param env: The ``VecNormalize`` whose statistics normalise them (not updated)
    :return: The normalised observations, in the same layout, on the same device
    """
    if not env.norm_obs:
        return obs
    statistics: Dict[Any, RunningMeanStd] = env.obs_rms if isinstance(env.obs_rms, dict) else {None: env.obs_rms}
    in_float64 = all(rms.mean.dtype == np.float64 and rms.var.dtype == np.float64 for rms in statistics.values())
    if not (_is_sb3_normalization(env) and in_float64):
        if isinstance(obs, dict):
            normalized = env.normalize_obs({key: value.cpu().numpy() for key, value in obs.items()})
            return {key: th.as_tensor(value, device=obs[key].device) for key, value in normalized.items()}  # type: ignore[union-attr]
        return th.as_tensor(env.normalize_obs(obs.cpu().numpy()), device=obs.device)
    if isinstance(obs, dict) and isinstance(env.obs_rms, dict):
        keys = set(env.norm_obs_keys or [])
        return {key: _normalize(value, env.obs_rms[key], env) if key in keys else value for key, value in obs.items()}
    assert isinstance(env.obs_rms, RunningMeanStd)
    return _normalize(obs, env.obs_rms, env)
