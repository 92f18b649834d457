"""SB3 callback that runs the GAIL round inside ``model.learn()``."""

from __future__ import annotations

from typing import Any, Dict, Optional

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import unwrap_vec_wrapper

from sb3_gail_plugin.buffers import GailRelabelMixin
from sb3_gail_plugin.demonstrations import DemonstrationSource
from sb3_gail_plugin.on_policy import RolloutRelabeler, check_on_policy_reward_model, on_policy_reward_model_kwargs
from sb3_gail_plugin.reward_model import GailRewardModel
from sb3_gail_plugin.vec_env import GailVecEnvWrapper


class GailCallback(BaseCallback):
    """
    Runs GAIL inside ``model.learn()`` of an SB3 algorithm: off-policy (DQN, SAC, TD3, ...) or
    on-policy (PPO, A2C, and sb3-contrib's TRPO, MaskablePPO, RecurrentPPO).

    At training start it builds the reward model from the env's spaces (when given demonstrations),
    wraps the training env with :class:`GailVecEnvWrapper` (below ``VecNormalize``, so that the
    discriminator sees raw observations) unless it is wrapped already, and for an off-policy
    algorithm attaches the reward model to the model's :class:`GailReplayBuffer`.

    Off-policy, at each rollout end once enough new transitions arrived, it trains the discriminator,
    clears its training set and logs ``gail/*`` statistics through the model's logger; sampled replay
    batches are relabelled by the buffer.

    On-policy (no buffer class needed), at each rollout end (after SB3 computed returns and advantages
    from the env reward, before ``train()``) it trains the discriminator on exactly that rollout,
    clears the set, overwrites ``rollout_buffer.rewards`` with the discriminator's rewards (keeping
    SB3's time-limit bootstrap) and recomputes returns and advantages (see
    :class:`~sb3_gail_plugin.on_policy.RolloutRelabeler`). The reward model it builds then takes
    :data:`~sb3_gail_plugin.on_policy.ON_POLICY_DEFAULTS` for the arguments not given, and
    ``target_new_data_count`` one rollout; the off-policy-only arguments (``agent_data_source="replay"``,
    ``policy_expert_fraction > 0``, ``replay_window``) raise a ``ValueError``, for a prebuilt reward
    model too.

    Usage::

        model = DQN("MlpPolicy", "CartPole-v1", replay_buffer_class=GailReplayBuffer)
        model.learn(100_000, callback=GailCallback(load_demonstrations("cartpole_expert.npz")))

        model = PPO("MlpPolicy", "CartPole-v1")
        model.learn(200_000, callback=GailCallback(load_demonstrations("cartpole_expert.npz")))

    :param reward_model_or_demonstrations: A :class:`GailRewardModel`, or expert demonstrations
        (anything :func:`load_demonstrations` reads) to build one from
    :param verbose: Verbosity level: 0 no output, 1 info
    :param reward_model_kwargs: Arguments of :class:`GailRewardModel` (when given demonstrations);
        ``device`` defaults to the model's device and ``seed`` to the model's seed
    """

    def __init__(
        self,
        reward_model_or_demonstrations: GailRewardModel | DemonstrationSource,
        verbose: int = 0,
        **reward_model_kwargs: Any,
    ) -> None:
        super().__init__(verbose)
        self.reward_model: Optional[GailRewardModel] = None
        self.demonstrations: Optional[DemonstrationSource] = None
        if isinstance(reward_model_or_demonstrations, GailRewardModel):
            if reward_model_kwargs:
                raise TypeError(
                    f"Reward model arguments {sorted(reward_model_kwargs)} only apply when GailCallback builds the "
                    "reward model from demonstrations; pass them to GailRewardModel instead"
                )
            self.reward_model = reward_model_or_demonstrations
        else:
            self.demonstrations = reward_model_or_demonstrations
        self.reward_model_kwargs = reward_model_kwargs
        self.last_stats: Dict[str, float] = {}
        self._relabeler: Optional[RolloutRelabeler] = None

    def _on_training_start(self) -> None:
        model = self.model
        if isinstance(model, OnPolicyAlgorithm):
            self._relabeler = RolloutRelabeler()
            name, rollout_size = type(model).__name__, model.n_steps * model.n_envs
            self._build_reward_model(on_policy_reward_model_kwargs(self.reward_model_kwargs, name, rollout_size))
            assert self.reward_model is not None
            check_on_policy_reward_model(self.reward_model, name, rollout_size)
        elif isinstance(model, OffPolicyAlgorithm):
            self._relabeler = None
            self._check_off_policy(model)
            self._build_reward_model(self.reward_model_kwargs)
        else:
            raise TypeError(
                "GailCallback needs an off-policy algorithm with a replay buffer (DQN, SAC, TD3, DDPG, QR-DQN, TQC) "
                f"or an on-policy algorithm (PPO, A2C, TRPO, MaskablePPO, RecurrentPPO), got {type(model).__name__}"
            )
        assert self.reward_model is not None
        self._wrap_training_env()
        # the absorbing state's value is folded in with the discount of the Q-target (or of GAE)
        self.reward_model.gamma = float(model.gamma)
        if isinstance(model, OffPolicyAlgorithm):
            assert isinstance(model.replay_buffer, GailRelabelMixin)
            model.replay_buffer.set_reward_model(self.reward_model)

    def _check_off_policy(self, model: OffPolicyAlgorithm) -> None:
        if getattr(model, "n_steps", 1) > 1:
            raise ValueError(
                f"GailCallback does not support n-step returns (got n_steps={model.n_steps}): SB3 would ignore n_steps "  # type: ignore[attr-defined]
                "with a custom replay buffer; use n_steps=1"
            )
        if not isinstance(model.replay_buffer, GailRelabelMixin):
            raise TypeError(
                "GailCallback needs the model's replay buffer to be a GailReplayBuffer (DictGailReplayBuffer for Dict "
                f"observations), got {type(model.replay_buffer).__name__}: create the model with "
                "replay_buffer_class=GailReplayBuffer"
            )

    def _build_reward_model(self, reward_model_kwargs: Dict[str, Any]) -> None:
        """Build the reward model from the demonstrations (unless given one) and check its spaces."""
        model = self.model
        if self.reward_model is None:
            kwargs = dict(reward_model_kwargs)
            kwargs.setdefault("device", model.device)
            kwargs.setdefault("seed", model.seed)
            self.reward_model = GailRewardModel(model.observation_space, model.action_space, self.demonstrations, **kwargs)
        for what, expected, received in (
            ("observation", model.observation_space, self.reward_model.observation_space),
            ("action", model.action_space, self.reward_model.action_space),
        ):
            if expected != received:
                raise ValueError(
                    f"The reward model's {what} space must match the model's: expected {expected}, got {received}"
                )

    def _wrap_training_env(self) -> None:
        """Put a GailVecEnvWrapper where observations are raw: right below VecNormalize, else outermost."""
        model = self.model
        assert model.env is not None and self.reward_model is not None
        wrapper = unwrap_vec_wrapper(model.env, GailVecEnvWrapper)
        if wrapper is None:
            # The env was reset before the callback started: tell the wrapper which observations SB3 steps from
            normalizer = model.get_vec_normalize_env()
            if normalizer is not None:
                wrapper = GailVecEnvWrapper(normalizer.venv, self.reward_model)
                normalizer.venv = wrapper
                wrapper.set_last_obs(normalizer.get_original_obs())  # raw: what SB3 steps from next
            else:
                wrapper = GailVecEnvWrapper(model.env, self.reward_model)
                model.env = wrapper
                wrapper.set_last_obs(model._last_obs)
        assert isinstance(wrapper, GailVecEnvWrapper)
        wrapper.reward_model = self.reward_model

    def _on_step(self) -> bool:
        if self._relabeler is not None:
            # before SB3 adds the time-limit bootstrap to these rewards in place
            self._relabeler.record_step(self.locals["rewards"], self.locals["dones"], self.locals["infos"])
        return True

    def _on_rollout_start(self) -> None:
        if self._relabeler is not None and self.reward_model is not None:
            # an on-policy rollout is relabelled on its own: drop what an interrupted one left
            self.reward_model.clear_data()
            self._relabeler.reset()

    def _on_rollout_end(self) -> None:
        assert self.reward_model is not None
        if self._relabeler is not None:
            self._log(self._relabeler.relabel(self.model, self.reward_model))  # type: ignore[arg-type]
            return
        replay_buffer = self.model.replay_buffer  # type: ignore[attr-defined]
        if replay_buffer.reward_model is not self.reward_model:
            # e.g. after model.load_replay_buffer(): the reward model is not pickled with the buffer
            replay_buffer.set_reward_model(self.reward_model)
        if not self.reward_model.ready_to_train():
            return
        agent_data = None
        if self.reward_model.agent_data_source == "replay":
            agent_data = replay_buffer.sample_transitions(
                self.reward_model.batch_size * self.reward_model.update_per_collect, self.reward_model.replay_window
            )
        self._log(self.reward_model.train(agent_data))
        self.reward_model.clear_data()

    def _log(self, stats: Dict[str, float]) -> None:
        assert self.reward_model is not None
        self.last_stats = stats
        for key, value in stats.items():
            self.logger.record(f"gail/{key}", value)
        self.logger.record("gail/n_updates", self.reward_model.n_updates)
        if self.verbose >= 2:
            print(f"GAIL at {self.num_timesteps} steps: " + ", ".join(f"{k}={v:.3f}" for k, v in stats.items()))
