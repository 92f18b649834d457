"""Replay buffers whose sampled batches are relabelled by the current discriminator."""

from __future__ import annotations

from typing import Any, Dict, Optional, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_gail_plugin.reward_model import GailRewardModel

Samples = Union[ReplayBufferSamples, DictReplayBufferSamples]


class GailRelabelMixin:
    """
    Relabels the rewards of every sampled batch with ``reward_model.estimate`` on the raw stored
    transitions, then normalises observations for the policy (``VecNormalize``) as SB3 does.
    Stored rewards are never changed; the relabelled batch is a new samples tuple with every
    other field kept.
    """

    action_space: spaces.Space
    device: th.device
    reward_model: Optional[GailRewardModel] = None

    def set_reward_model(self, reward_model: Optional[GailRewardModel]) -> None:
        """
        Attach the discriminator that relabels sampled rewards (``None`` detaches it).

        :param reward_model: The reward model (``GailCallback`` attaches its own at training start)
        """
        if reward_model is not None and not callable(getattr(reward_model, "estimate", None)):
            raise TypeError(f"Expected a reward model with an estimate() method, got {type(reward_model).__name__}")
        self.reward_model = reward_model

    def _env_actions(self, actions: th.Tensor) -> th.Tensor:
        """SB3 off-policy algorithms store Box actions rescaled to [-1, 1]: map them back to the env's bounds."""
        space = self.action_space
        if isinstance(space, spaces.Box) and space.is_bounded():
            low = th.as_tensor(space.low, device=actions.device, dtype=th.float32)
            high = th.as_tensor(space.high, device=actions.device, dtype=th.float32)
            return low + 0.5 * (actions.reshape(-1, *space.shape).float() + 1.0) * (high - low)
        return actions

    def _relabel(self, raw: Samples, env: Optional[VecNormalize]) -> Samples:
        if self.reward_model is None:
            raise RuntimeError(
                f"{type(self).__name__} has no reward model attached: pass callback=GailCallback(demonstrations) "
                "to model.learn(), or call model.replay_buffer.set_reward_model(reward_model) before training"
            )
        rewards = self.reward_model.estimate(
            raw.observations, self._env_actions(raw.actions), raw.next_observations, raw.dones
        )
        rewards = rewards.to(device=raw.rewards.device, dtype=raw.rewards.dtype).reshape(raw.rewards.shape)
        if env is None:
            return raw._replace(rewards=rewards)
        return raw._replace(
            observations=self._normalize_tensor_obs(raw.observations, env),
            next_observations=self._normalize_tensor_obs(raw.next_observations, env),
            rewards=rewards,
        )

    def _normalize_tensor_obs(self, obs: Any, env: VecNormalize) -> Any:
        if isinstance(obs, dict):
            normalized: Dict[str, np.ndarray] = env.normalize_obs({key: value.cpu().numpy() for key, value in obs.items()})  # type: ignore[assignment]
            return {key: th.as_tensor(value, device=self.device) for key, value in normalized.items()}
        return th.as_tensor(env.normalize_obs(obs.cpu().numpy()), device=self.device)

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        # The discriminator is not pickled with the buffer: GailCallback re-attaches it after a load
        state["reward_model"] = None
        return state


class GailReplayBuffer(GailRelabelMixin, ReplayBuffer):
    """
    SB3 ``ReplayBuffer`` whose sampled rewards are recomputed by the current GAIL discriminator,
    on raw observations, before each gradient step. Use as
    ``DQN("MlpPolicy", env, replay_buffer_class=GailReplayBuffer)`` with ``GailCallback``.
    """

    def __init__(self, buffer_size: int, observation_space: spaces.Space, *args: Any, **kwargs: Any) -> None:
        if isinstance(observation_space, spaces.Dict):
            raise TypeError(
                f"GailReplayBuffer takes non-Dict observation spaces, got {observation_space}: "
                "use replay_buffer_class=DictGailReplayBuffer"
            )
        super().__init__(buffer_size, observation_space, *args, **kwargs)

    def _get_samples(self, batch_inds: np.ndarray, env: Optional[VecNormalize] = None) -> ReplayBufferSamples:
        return self._relabel(super()._get_samples(batch_inds, env=None), env)  # type: ignore[return-value]


class DictGailReplayBuffer(GailRelabelMixin, DictReplayBuffer):
    """``GailReplayBuffer`` for ``Dict`` observation spaces (SB3's ``DictReplayBuffer``)."""

    def _get_samples(self, batch_inds: np.ndarray, env: Optional[VecNormalize] = None) -> DictReplayBufferSamples:  # type: ignore[override]
        return self._relabel(super()._get_samples(batch_inds, env=None), env)  # type: ignore[return-value]
