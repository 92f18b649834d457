"""SB3 callback that runs the GAIL round inside ``model.learn()``."""

from __future__ import annotations

from typing import Any, Dict, Optional

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import unwrap_vec_wrapper

from sb3_gail_plugin.buffers import GailRelabelMixin
from sb3_gail_plugin.demonstrations import DemonstrationSource
from sb3_gail_plugin.reward_model import GailRewardModel
from sb3_gail_plugin.vec_env import GailVecEnvWrapper


class GailCallback(BaseCallback):
    """
    Runs GAIL inside ``model.learn()`` of an off-policy SB3 algorithm (DQN, SAC, TD3, ...).

    At training start it builds the reward model from the env's spaces (when given demonstrations),
    wraps the training env with :class:`GailVecEnvWrapper` (below ``VecNormalize``, so that the
    discriminator sees raw observations) unless it is wrapped already, and attaches the reward model
    to the model's :class:`GailReplayBuffer`. At each rollout end, once enough new transitions
    arrived, it trains the discriminator, clears its training set and logs ``gail/*`` statistics
    through the model's logger.

    Usage::

        model = DQN("MlpPolicy", "CartPole-v1", replay_buffer_class=GailReplayBuffer)
        model.learn(100_000, callback=GailCallback(load_demonstrations("cartpole_expert.npz")))

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

    def _on_training_start(self) -> None:
        model = self.model
        if not isinstance(model, OffPolicyAlgorithm):
            raise TypeError(
                "GailCallback needs an off-policy algorithm with a replay buffer (DQN, SAC, TD3, DDPG, QR-DQN, TQC), "
                f"got {type(model).__name__}"
            )
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
        if self.reward_model is None:
            kwargs = dict(self.reward_model_kwargs)
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
        self._wrap_training_env()
        # the absorbing state's value is folded in with the discount of the Q-target
        self.reward_model.gamma = float(model.gamma)
        model.replay_buffer.set_reward_model(self.reward_model)

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
                wrapper.set_last_obs(model._last_original_obs)
            else:
                wrapper = GailVecEnvWrapper(model.env, self.reward_model)
                model.env = wrapper
                wrapper.set_last_obs(model._last_obs)
        assert isinstance(wrapper, GailVecEnvWrapper)
        wrapper.reward_model = self.reward_model

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        assert self.reward_model is not None
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
        self.last_stats = self.reward_model.train(agent_data)
        self.reward_model.clear_data()
        for key, value in self.last_stats.items():
            self.logger.record(f"gail/{key}", value)
        self.logger.record("gail/n_updates", self.reward_model.n_updates)
        if self.verbose >= 2:
            print(f"GAIL at {self.num_timesteps} steps: " + ", ".join(f"{k}={v:.3f}" for k, v in self.last_stats.items()))
