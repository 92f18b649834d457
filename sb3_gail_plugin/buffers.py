"""Replay buffers whose sampled batches are relabelled by the current discriminator."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_gail_plugin.reward_model import GailRewardModel
from sb3_gail_plugin.transitions import TIME_LIMIT_KEY, Transitions, index_obs

Samples = Union[ReplayBufferSamples, DictReplayBufferSamples]


class GailRelabelMixin:
    """
    Relabels the rewards of every sampled batch with ``reward_model.estimate`` on the raw stored
    transitions, then normalises observations for the policy (``VecNormalize``) as SB3 does.
    Stored rewards are never changed; the relabelled batch is a new samples tuple with every
    other field kept.

    The buffer also keeps the time-limit truncation flags it is given (``infos[i]["TimeLimit.truncated"]``)
    whatever ``handle_timeout_termination`` says, so that the absorbing state's value is folded into
    real terminations only, and the discriminator's replay data has absorbing samples exactly where the
    expert data has them. The sampled ``dones`` keep SB3's meaning for the RL target: with
    ``handle_timeout_termination=False`` (required by ``optimize_memory_usage=True``), they still
    include truncations.
    """

    action_space: spaces.Space
    device: th.device
    buffer_size: int
    n_envs: int
    pos: int
    full: bool
    optimize_memory_usage: bool
    observations: Any
    next_observations: Any
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    timeouts: np.ndarray
    reward_model: Optional[GailRewardModel] = None

    def __init__(self, buffer_size: int, observation_space: spaces.Space, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("n_steps", 1) > 1:
            raise ValueError(
                f"{type(self).__name__} does not support n-step returns (got n_steps={kwargs['n_steps']}): use n_steps=1"
            )
        kwargs.pop("n_steps", None)
        kwargs.pop("gamma", None)
        super().__init__(buffer_size, observation_space, *args, **kwargs)  # type: ignore[call-arg]
        # Time-limit truncations, kept even when SB3 does not keep them (handle_timeout_termination=False)
        self.truncations = np.zeros((self.buffer_size, self.n_envs), dtype=bool)

    def add(
        self,
        obs: Any,
        next_obs: Any,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: List[Dict[str, Any]],
    ) -> None:
        pos = self.pos
        super().add(obs, next_obs, action, reward, done, infos)  # type: ignore[misc]
        truncated = np.array([info.get(TIME_LIMIT_KEY, False) for info in infos], dtype=bool)
        self.truncations[pos] = truncated & np.asarray(done, dtype=bool).reshape(-1)

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "truncations" not in state:  # a buffer pickled by an earlier version: SB3's timeouts are all it kept
            self.truncations = self.timeouts.astype(bool)

    def set_reward_model(self, reward_model: Optional[GailRewardModel]) -> None:
        """
        Attach the discriminator that relabels sampled rewards (``None`` detaches it).

        :param reward_model: The reward model (``GailCallback`` attaches its own at training start)
        """
        if reward_model is not None and not callable(getattr(reward_model, "estimate", None)):
            raise TypeError(f"Expected a reward model with an estimate() method, got {type(reward_model).__name__}")
        discriminator = getattr(reward_model, "discriminator", None)
        if self.optimize_memory_usage and getattr(discriminator, "uses_next_obs", False):
            raise ValueError(
                f"The discriminator takes next observations (inputs={discriminator.inputs!r}), but with "  # type: ignore[union-attr]
                "optimize_memory_usage=True the replay buffer does not keep the real next observation at episode "
                "ends: use optimize_memory_usage=False, or inputs='sa'"
            )
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

    def _mix_expert(self, raw: Samples, terminations: th.Tensor, fraction: float) -> Tuple[Samples, th.Tensor]:
        """
        Replace the last ``fraction`` of the batch with expert transitions (rewards relabelled later).

        :return: The mixed batch and its terminations (time-limit truncations excluded)
        """
        assert self.reward_model is not None
        if getattr(raw, "discounts", None) is not None:
            raise ValueError(
                "Expert transitions cannot be mixed into a batch with n-step discounts: use n_steps=1, or "
                "policy_expert_fraction=0"
            )
        n_batch = raw.rewards.shape[0]
        n_expert = round(fraction * n_batch)
        if n_expert == 0:
            return raw, terminations
        obs, actions, next_obs, terminals = self.reward_model.sample_expert(n_expert)
        keep = n_batch - n_expert

        def join(agent: Any, expert: Any) -> Any:
            if isinstance(agent, dict):
                return {key: join(agent[key], expert[key]) for key in agent}
            return th.cat([agent[:keep], expert.to(device=agent.device, dtype=agent.dtype).reshape(-1, *agent.shape[1:])])

        mixed = raw._replace(
            observations=join(raw.observations, obs),
            actions=join(raw.actions, self._buffer_actions(actions)),
            next_observations=join(raw.next_observations, next_obs),
            dones=join(raw.dones, terminals),
            rewards=join(raw.rewards, th.zeros(n_expert)),
        )
        return mixed, join(terminations, terminals)

    def _stored(self, rows: np.ndarray, envs: np.ndarray) -> Dict[str, Any]:
        """
        Stored transitions ``(rows, envs)`` as numpy arrays: raw observations and next observations (with
        ``optimize_memory_usage``, the next row's observation), actions as stored, rewards, and the
        dones, time-limit truncations and SB3 timeouts, each of shape ``(batch,)``.
        """
        at = (rows, envs)
        if self.optimize_memory_usage:
            next_obs = index_obs(self.observations, ((rows + 1) % self.buffer_size, envs))
        else:
            next_obs = index_obs(self.next_observations, at)
        return dict(
            observations=index_obs(self.observations, at),
            next_observations=next_obs,
            actions=self.actions[at],
            rewards=self.rewards[at],
            dones=self.dones[at].astype(bool),
            truncations=self.truncations[at],
            timeouts=self.timeouts[at].astype(bool),
        )

    def _raw_samples(self, rows: np.ndarray, envs: np.ndarray) -> Tuple[Samples, th.Tensor]:
        """
        Stored transitions ``(rows, envs)`` as SB3 samples with raw observations, and their terminations.

        :return: The samples (``dones`` as SB3 gives them to the RL target) and the terminations
            (episode ends that are not time-limit truncations), shape ``(batch, 1)``
        """
        stored = self._stored(rows, envs)
        samples_type = DictReplayBufferSamples if isinstance(stored["observations"], dict) else ReplayBufferSamples

        def to_torch(values: Any) -> Any:
            if isinstance(values, dict):
                return {key: th.tensor(value, device=self.device) for key, value in values.items()}
            return th.tensor(values, device=self.device)

        def column(flags: np.ndarray) -> th.Tensor:
            return to_torch(flags.astype(np.float32).reshape(-1, 1))

        samples = samples_type(
            observations=to_torch(stored["observations"]),
            actions=to_torch(stored["actions"]),
            next_observations=to_torch(stored["next_observations"]),
            dones=column(stored["dones"] & ~stored["timeouts"]),  # SB3's target: no timeouts where it keeps them
            rewards=column(stored["rewards"]),
        )
        return samples, column(stored["dones"] & ~stored["truncations"])

    def _get_samples(self, batch_inds: np.ndarray, env: Optional[VecNormalize] = None) -> Any:
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))  # as SB3 does
        return self._relabel(*self._raw_samples(batch_inds, env_indices), env)

    def _relabel(self, raw: Samples, terminations: th.Tensor, env: Optional[VecNormalize]) -> Samples:
        if self.reward_model is None:
            raise RuntimeError(
                f"{type(self).__name__} has no reward model attached: pass callback=GailCallback(demonstrations) "
                "to model.learn(), or call model.replay_buffer.set_reward_model(reward_model) before training"
            )
        fraction = getattr(self.reward_model, "policy_expert_fraction", 0.0)
        if fraction > 0:
            raw, terminations = self._mix_expert(raw, terminations, fraction)
        rewards = self.reward_model.estimate(
            raw.observations, self._env_actions(raw.actions), raw.next_observations, terminations
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
        :return: The transitions, with their episode ends and time-limit truncations
        """
        if self.optimize_memory_usage:
            # row pos - 1 is the newest valid one (its next observation is row pos); once the buffer is
            # full, row pos is not valid: its observation was overwritten by row pos - 1's next observation
            size = self.buffer_size - 1 if self.full else self.pos
        else:
            size = self.buffer_size if self.full else self.pos
        if size < 1:
            raise RuntimeError("The replay buffer holds no transitions yet")
        steps = size if window is None else min(size, max(1, window // self.n_envs))
        rows = (self.pos - 1 - np.random.randint(0, steps, size=n)) % self.buffer_size
        envs = np.random.randint(0, self.n_envs, size=n)
        stored = self._stored(rows, envs)
        actions = self._env_actions(th.as_tensor(stored["actions"])).cpu().numpy()
        return Transitions(
            observations=stored["observations"],
            actions=actions.reshape(n, *self.action_space.shape) if self.action_space.shape else actions.reshape(n),
            next_observations=stored["next_observations"],
            dones=stored["dones"],
            timeouts=stored["truncations"] & stored["dones"],
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
        if isinstance(observation_space, spaces.Dict):
            raise TypeError(
                f"GailReplayBuffer takes non-Dict observation spaces, got {observation_space}: "
                "use replay_buffer_class=DictGailReplayBuffer"
            )
        super().__init__(buffer_size, observation_space, *args, **kwargs)


class DictGailReplayBuffer(GailRelabelMixin, DictReplayBuffer):
    """``GailReplayBuffer`` for ``Dict`` observation spaces (SB3's ``DictReplayBuffer``)."""
