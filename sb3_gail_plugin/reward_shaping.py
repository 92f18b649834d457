"""From the discriminator's logits to the rewards the policy trains on: reward forms, normalisation and clipping."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3.common.running_mean_std import RunningMeanStd

REWARD_FORMS = ("gail", "neg_log", "airl")


def reward_from_logits(logits: th.Tensor, reward_form: str = "gail") -> th.Tensor:
    """
    Per-step reward from the discriminator's logit ``l = log D - log(1 - D)``, computed stably.

    :param logits: Logits of "expert"
    :param reward_form: ``"gail"``: ``-log(1 - D) = softplus(l)`` (always positive: pays for surviving);
        ``"neg_log"``: ``log D = -softplus(-l)`` (always negative: pays for ending); ``"airl"``: ``l``
    :return: Rewards, same shape as ``logits``
    """
    if reward_form == "gail":
        return F.softplus(logits)
    if reward_form == "neg_log":
        return -F.softplus(-logits)
    if reward_form == "airl":
        return logits
    raise ValueError(f"reward_form must be one of {REWARD_FORMS}, got {reward_form!r}")


def normalize_and_clip(
    rewards: th.Tensor, stats: Optional[RunningMeanStd], clip: Optional[float], centered: bool = False
) -> th.Tensor:
    """
    Standardise rewards with running statistics, then clip them.

    :param rewards: Per-step rewards
    :param stats: Running statistics of the agent's rewards; ``None`` leaves the rewards unscaled
    :param clip: Clip to ``[-clip, clip]`` (after standardising); ``None`` does not clip
    :param centered: The rewards are already centred (a centred reward keeps its zero: scaled, not shifted)
    :return: The rewards, same shape
    """
    if stats is not None:
        mean = 0.0 if centered else float(stats.mean)
        rewards = (rewards - mean) / float(np.sqrt(stats.var + 1e-8))
    if clip is not None:
        rewards = rewards.clamp(-clip, clip)
    return rewards
