"""Replay buffers whose sampled batches are relabelled by the current discriminator."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_gail_plugin.reward_model import GailRewardModel
from sb3_gail_plugin.transitions import Transitions

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

    def _box_bounds(self, device: th.device) -> Optional[Tuple[th.Tensor, th.Tensor]]:
        """Bounds of a bounded Box action space (the ones SB3 rescales to [-1, 1]), else None."""
        space = self.action_space
        if isinstance(space, spaces.Box) and space.is_bounded():
            return th.as_tensor(space.low, device=device, dtype=th.float32), th.as_tensor(
                space.high, device=device, dtype=th.float32
            )
        return None

    def _env_actions(self, actions: th.Tensor) -> th.Tensor:
        """SB3 off-policy algorithms store Box actions rescaled to [-1, 1]: map them back to the env's bounds."""
        bounds = self._box_bounds(actions.device)
        if bounds is None:
            return actions
        low, high = bounds
        return low + 0.5 * (actions.reshape(-1, *low.shape).float() + 1.0) * (high - low)

    def _buffer_actions(self, actions: th.Tensor) -> th.Tensor:
        """Inverse of :meth:`_env_actions`: env actions in the layout and units the buffer stores."""
        bounds = self._box_bounds(actions.device)
        if bounds is not None:
            low, high = bounds
            actions = 2.0 * (actions.float() - low) / (high - low) - 1.0
        return actions.reshape(actions.shape[0], -1)

    def _mix_expert(self, raw: Samples, fraction: float) -> Samples:
        """Replace the last ``fraction`` of the batch with expert transitions (rewards relabelled later)."""
        assert self.reward_model is not None
        n_batch = raw.rewards.shape[0]
        n_expert = round(fraction * n_batch)
        if n_expert == 0:
            return raw
        obs, actions, next_obs, terminals = self.reward_model.sample_expert(n_expert)
        keep = n_batch - n_expert

        def join(agent: Any, expert: Any) -> Any:
            if isinstance(agent, dict):
                return {key: join(agent[key], expert[key]) for key in agent}
            return th.cat([agent[:keep], expert.to(device=agent.device, dtype=agent.dtype).reshape(-1, *agent.shape[1:])])

        return raw._replace(
            observations=join(raw.observations, obs),
            actions=join(raw.actions, self._buffer_actions(actions)),
            next_observations=join(raw.next_observations, next_obs),
            dones=join(raw.dones, terminals),
            rewards=join(raw.rewards, th.zeros(n_expert)),
        )

    def _relabel(self, raw: Samples, env: Optional[VecNormalize]) -> Samples:
        if self.reward_model is None:
            raise RuntimeError(
                f"{type(self).__name__} has no reward model attached: pass callback=GailCallback(demonstrations) "
                "to model.learn(), or call model.replay_buffer.set_reward_model(reward_model) before training"
            )
        fraction = getattr(self.reward_model, "policy_expert_fraction", 0.0)
        if fraction > 0 and getattr(raw, "discounts", None) is None:
            raw = self._mix_expert(raw, fraction)
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

    def sample_transitions(self, n: int, window: Optional[int] = None) -> Transitions:
        """
        Sample stored transitions (with replacement) as raw numpy data in env units: the discriminator's
        agent data when ``agent_data_source="replay"`` (DAC).

        :param n: Number of transitions
        :param window: Sample only among the most recent ``window`` transitions (all envs together)
        :return: The transitions, with SB3's stored dones and timeouts
        """
        buffer: Any = self
        size = buffer.buffer_size if buffer.full else buffer.pos
        if buffer.optimize_memory_usage:
            size -= 1  # the newest row's next observation is not written yet
        if size < 1:
            raise RuntimeError("The replay buffer holds no transitions yet")
        steps = size if window is None else min(size, max(1, window // buffer.n_envs))
        rows = (buffer.pos - 1 - int(buffer.optimize_memory_usage) - np.random.randint(0, steps, size=n)) % buffer.buffer_size
        envs = np.random.randint(0, buffer.n_envs, size=n)

        def take(array: Any, at: np.ndarray = rows) -> Any:
            if isinstance(array, dict):
                return {key: value[at, envs] for key, value in array.items()}
            return array[at, envs]

        if buffer.optimize_memory_usage:
            next_obs = take(buffer.observations, (rows + 1) % buffer.buffer_size)
        else:
            next_obs = take(buffer.next_observations)
        actions = self._env_actions(th.as_tensor(take(buffer.actions))).cpu().numpy()
        dones = take(buffer.dones).astype(bool)
        return Transitions(
            observations=take(buffer.observations),
            actions=actions.reshape(n, *self.action_space.shape) if self.action_space.shape else actions.reshape(n),
            next_observations=next_obs,
            dones=dones,
            timeouts=take(buffer.timeouts).astype(bool) & dones,
        )

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
        if kwargs.get("n_steps", 1) > 1:
            raise ValueError(
                f"GailReplayBuffer does not support n-step returns (got n_steps={kwargs['n_steps']}): use n_steps=1"
            )
        kwargs.pop("n_steps", None)
        kwargs.pop("gamma", None)
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
