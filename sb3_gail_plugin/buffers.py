"""Replay buffers whose sampled batches are relabelled by the current discriminator."""

from __future__ import annotations

from collections import deque
from typing import Any, Dict, List, Optional

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_gail_plugin.action_units import BoxActionUnits
from sb3_gail_plugin.batch_plan import Samples, SamplingPlan, chunk_batches, split_batches
from sb3_gail_plugin.expert_mixing import ExpertRows
from sb3_gail_plugin.obs_normalization import normalize_obs_tensor
from sb3_gail_plugin.reward_model import GailRewardModel
from sb3_gail_plugin.transitions import TIME_LIMIT_KEY, Transitions, index_obs


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

    When the next ``n`` calls of ``sample()`` are known to come from one ``train()`` (no transition added in between:
    :meth:`plan_samples`, which ``GailCallback`` calls at each rollout end), their indices are drawn as ``sample()``
    would draw them one call at a time (the same NumPy random stream) and the batches are relabelled together, in
    chunks: one discriminator forward pass per chunk instead of one per gradient step.
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
        self._clear_caches()

    def _clear_caches(self) -> None:
        """Forget the action units, expert rows and plan kept for sampling (rebuilt when needed; never pickled)."""
        self._action_units = BoxActionUnits(self.action_space)
        self._expert_cache: Optional[ExpertRows] = None
        self._plan = SamplingPlan()

    def add(
        self,
        obs: Any,
        next_obs: Any,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: List[Dict[str, Any]],
    ) -> None:
        """
        SB3's ``add``, also keeping which episode ends were time-limit truncations (any drawn batch plan is dropped).
        """
        pos = self.pos
        if self._plan.remaining or self._plan.ready:
            self._drop_plan()  # batches drawn before this transition no longer match the buffer
        super().add(obs, next_obs, action, reward, done, infos)  # type: ignore[misc]
        truncated = np.array([info.get(TIME_LIMIT_KEY, False) for info in infos], dtype=bool)
        self.truncations[pos] = truncated & np.asarray(done, dtype=bool).reshape(-1)

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "truncations" not in state:  # a buffer pickled by an earlier version: SB3's timeouts are all it kept
            self.truncations = self.timeouts.astype(bool)
        self._clear_caches()

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
        self._drop_plan()
        self.reward_model = reward_model
        self._expert_cache = None

    def plan_samples(self, n_batches: int, batch_size: int) -> None:
        """
        Announce that the next ``n_batches`` calls are ``sample(batch_size, env)`` from one ``train()``, with no
        transition added and no discriminator update in between (``GailCallback`` calls this at every rollout end,
        for the gradient steps SB3 takes next). Those batches are then drawn as one call at a time would draw them
        (the same NumPy and reward-model random streams) and relabelled together, in chunks. A call the plan did not
        announce (another batch size or ``env``), a new transition or a discriminator update drops the plan: the
        random streams are rewound to where one-by-one sampling would stand, and sampling goes on one call at a
        time. A subclass that overrides ``_get_samples``, or a reward model without an ``n_updates`` count, is never
        planned for.

        :param n_batches: Number of ``sample()`` calls to come (0 cancels the plan)
        :param batch_size: Their batch size
        """
        if n_batches < 0 or batch_size < 1:
            raise ValueError(
                f"Expected n_batches >= 0 and batch_size >= 1, got n_batches={n_batches}, batch_size={batch_size}"
            )
        self._drop_plan()
        plannable = type(self)._get_samples is GailRelabelMixin._get_samples  # type: ignore[comparison-overlap]
        # without an update count, a discriminator update between two calls could not be seen
        if plannable and hasattr(self.reward_model, "n_updates"):
            self._plan = SamplingPlan(remaining=int(n_batches), batch_size=int(batch_size))

    def sample(self, batch_size: int, env: Optional[VecNormalize] = None) -> Any:  # SB3 types it per buffer class
        """
        Sample a batch of stored transitions, relabelled by the reward model (SB3's ``ReplayBuffer.sample``).

        :param batch_size: Number of transitions
        :param env: ``VecNormalize`` to normalise the observations with, as SB3 does
        :return: The samples, with the discriminator's rewards
        """
        plan = self._plan
        if plan.remaining > 0 and batch_size == plan.batch_size and self.reward_model is not None:
            n_updates = getattr(self.reward_model, "n_updates", 0)
            stale = plan.env is not env or plan.n_updates != n_updates or plan.reward_model is not self.reward_model
            if plan.ready and stale:
                # batches relabelled for another env, or by another discriminator or this one before its update
                self._drop_plan()
                return super().sample(batch_size, env)  # type: ignore[misc]
            if not plan.ready:
                self._draw_chunk(plan, env)
            plan.remaining -= 1
            plan.served += 1
            return plan.ready.popleft()
        if plan.remaining > 0 or plan.ready:
            self._drop_plan()  # a call the plan did not announce
        return super().sample(batch_size, env)  # type: ignore[misc]

    def _n_expert(self, batch_size: int) -> int:
        """Expert transitions in a policy batch of ``batch_size`` (``policy_expert_fraction`` of it)."""
        return round(getattr(self.reward_model, "policy_expert_fraction", 0.0) * batch_size)

    def _draw_chunk(self, plan: SamplingPlan, env: Optional[VecNormalize]) -> None:
        """Draw and relabel the plan's next chunk of batches, keeping what it takes to rewind the random streams."""
        assert self.reward_model is not None
        batch_size = plan.batch_size
        observation_space = self.observation_space  # type: ignore[attr-defined]
        n_batches = min(plan.remaining, chunk_batches(observation_space, batch_size))
        plan.numpy_state = np.random.get_state()
        plan.n_expert = self._n_expert(batch_size)
        plan.reward_model = self.reward_model
        plan.generator_state = self.reward_model.generator.get_state() if plan.n_expert > 0 else None
        rows, envs = [], []
        for _ in range(n_batches):
            rows.append(self._batch_indices(batch_size))
            envs.append(np.random.randint(0, high=self.n_envs, size=(batch_size,)))  # as _get_samples does
        plan.ready = deque(self._relabelled_batches(np.stack(rows), np.stack(envs), env))
        plan.env, plan.n_updates, plan.served = env, getattr(self.reward_model, "n_updates", 0), 0
        plan.numpy_state_drawn = np.random.get_state()
        plan.generator_state_drawn = self.reward_model.generator.get_state() if plan.n_expert > 0 else None

    def _drop_plan(self) -> None:
        """
        Forget the plan, giving back the batches drawn but not served (:meth:`SamplingPlan.give_back`): the random
        streams stand where one-by-one sampling would have left them, unless something else drew from them since.
        """
        plan = self._plan
        if plan.ready:

            def redraw_batch() -> None:
                self._batch_indices(plan.batch_size)
                np.random.randint(0, high=self.n_envs, size=(plan.batch_size,))

            plan.give_back(redraw_batch)
        self._plan = SamplingPlan()

    def reset(self) -> None:
        """Empty the buffer (SB3's ``reset``), dropping any planned batches first."""
        self._drop_plan()
        super().reset()  # type: ignore[misc]

    def _batch_indices(self, batch_size: int) -> np.ndarray:
        """The rows SB3's ``sample(batch_size)`` draws (``ReplayBuffer.sample``, ``BaseBuffer.sample``)."""
        if self.optimize_memory_usage:
            if self.full:
                return (np.random.randint(1, self.buffer_size, size=batch_size) + self.pos) % self.buffer_size
            return np.random.randint(0, self.pos, size=batch_size)
        return np.random.randint(0, self.buffer_size if self.full else self.pos, size=batch_size)

    def _env_actions(self, actions: th.Tensor) -> th.Tensor:
        """Stored actions in the env's units (SB3 off-policy algorithms store Box actions rescaled to [-1, 1])."""
        return self._action_units.to_env(actions)

    def _buffer_actions(self, actions: th.Tensor) -> th.Tensor:
        """Inverse of :meth:`_env_actions`: env actions in the layout and units the buffer stores."""
        return self._action_units.to_buffer(actions)

    def _mix_expert(self, agent: Dict[str, Any], n_batches: int, n_expert: int) -> Dict[str, Any]:
        """
        Insert ``n_expert`` expert transitions, drawn with the reward model's generator, after the agent rows of each
        of the ``n_batches`` equal batches that the agent tensors of :meth:`_raw_samples` hold one after the other
        (their rewards are relabelled like the agent ones).
        """
        assert self.reward_model is not None
        if self._expert_cache is None or self._expert_cache.reward_model is not self.reward_model:
            self._expert_cache = ExpertRows.like(self.reward_model, agent, self._buffer_actions)
        return self._expert_cache.mix_into(agent, n_batches, n_expert)

    def _stored(self, rows: np.ndarray, envs: np.ndarray) -> Dict[str, Any]:
        """
        Stored transitions ``(rows, envs)`` as numpy arrays: raw observations and next observations (with
        ``optimize_memory_usage``, the next row's observation), actions as stored, and the dones, time-limit
        truncations and SB3 timeouts, each of shape ``(batch,)`` (the stored rewards are never read: relabelled).
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
            dones=self.dones[at].astype(bool),
            truncations=self.truncations[at],
            timeouts=self.timeouts[at].astype(bool),
        )

    def _raw_samples(self, rows: np.ndarray, envs: np.ndarray) -> Dict[str, Any]:
        """
        Stored transitions ``(rows, envs)`` as tensors with raw observations: ``observations``, ``actions``,
        ``next_observations``, ``dones`` (as SB3 gives them to the RL target) and ``terminations`` (episode ends
        that are not time-limit truncations), the last two of shape ``(batch, 1)``.
        """
        stored = self._stored(rows, envs)

        def to_torch(values: Any) -> Any:
            if isinstance(values, dict):
                return {key: th.tensor(value, device=self.device) for key, value in values.items()}
            return th.tensor(values, device=self.device)

        def column(flags: np.ndarray) -> th.Tensor:
            return to_torch(flags.astype(np.float32).reshape(-1, 1))

        return dict(
            observations=to_torch(stored["observations"]),
            actions=to_torch(stored["actions"]),
            next_observations=to_torch(stored["next_observations"]),
            dones=column(stored["dones"] & ~stored["timeouts"]),  # SB3's target: no timeouts where it keeps them
            terminations=column(stored["dones"] & ~stored["truncations"]),
        )

    def _get_samples(self, batch_inds: np.ndarray, env: Optional[VecNormalize] = None) -> Any:
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))  # as SB3 does
        return self._relabelled_batches(batch_inds[None], env_indices[None], env)[0]

    def _relabelled_batches(self, rows: np.ndarray, envs: np.ndarray, env: Optional[VecNormalize]) -> List[Samples]:
        """
        SB3 samples of the stored transitions ``(rows[k], envs[k])`` for each batch ``k``, relabelled together, with
        expert mixing: ``policy_expert_fraction`` of each batch is expert transitions (the agent rows drawn for them
        are not read).

        :param rows: Buffer rows, shape ``(n_batches, batch_size)``
        :param envs: Env indices, shape ``(n_batches, batch_size)``
        :param env: ``VecNormalize`` to normalise the observations with, as SB3 does
        """
        if self.reward_model is None:
            raise RuntimeError(
                f"{type(self).__name__} has no reward model attached: pass callback=GailCallback(demonstrations) "
                "to model.learn(), or call model.replay_buffer.set_reward_model(reward_model) before training"
            )
        n_batches, batch_size = rows.shape
        n_expert = self._n_expert(batch_size)
        keep = batch_size - n_expert
        batch = self._raw_samples(rows[:, :keep].reshape(-1), envs[:, :keep].reshape(-1))
        if n_expert > 0:
            batch = self._mix_expert(batch, n_batches, n_expert)
        return split_batches(self._relabel(batch, env), n_batches)

    def _relabel(self, batch: Dict[str, Any], env: Optional[VecNormalize]) -> Samples:
        """SB3 samples of ``batch``, with the reward model's rewards and, under ``VecNormalize``, normalised observations."""
        assert self.reward_model is not None
        observations, next_observations = batch["observations"], batch["next_observations"]
        rewards = self.reward_model.estimate(
            observations, self._env_actions(batch["actions"]), next_observations, batch["terminations"]
        )
        if env is not None:
            observations = normalize_obs_tensor(observations, env)
            next_observations = normalize_obs_tensor(next_observations, env)
        samples_type = DictReplayBufferSamples if isinstance(observations, dict) else ReplayBufferSamples
        return samples_type(
            observations=observations,
            actions=batch["actions"],
            next_observations=next_observations,
            dones=batch["dones"],
            rewards=rewards.to(device=self.device, dtype=th.float32).reshape(-1, 1),  # SB3 stores float32 rewards
        )

    def sample_transitions(self, n: int, window: Optional[int] = None) -> Transitions:
        """
        Sample stored transitions (with replacement) as raw numpy data in env units: the discriminator's
        agent data when ``agent_data_source="replay"`` (DAC).

        :param n: Number of transitions
        :param window: Sample only among the most recent ``window`` transitions (all envs together)
        :return: The transitions, with their episode ends and time-limit truncations
        """
        self._drop_plan()  # planned batches are drawn before these rows, as one-by-one sampling would draw them
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
        state.pop("_action_units", None)
        state.pop("_expert_cache", None)
        state.pop("_plan", None)
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
