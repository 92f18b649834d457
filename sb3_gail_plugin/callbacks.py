"""SB3 callback that runs the GAIL round inside ``model.learn()``."""

from __future__ import annotations

import os
import warnings
from typing import Any, Dict, Optional

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import VecNormalize, unwrap_vec_wrapper

from sb3_gail_plugin.buffers import GailRelabelMixin
from sb3_gail_plugin.demonstrations import DemonstrationSource
from sb3_gail_plugin.on_policy import RolloutRelabeler, check_on_policy_reward_model, on_policy_reward_model_kwargs
from sb3_gail_plugin.reward_model import GailRewardModel
from sb3_gail_plugin.vec_env import GailVecEnvWrapper

# SB3 logger output formats that only take scalars: the reward histograms skip them
TEXT_FORMATS = ("stdout", "log", "json", "csv")


#: Above this discount, GailCallback warns that the critic's values grow with 1 / (1 - gamma) times the dense rewards
LONG_HORIZON_GAMMA = 0.999


class GailCallback(BaseCallback):
    """
    Runs GAIL inside ``model.learn()`` of an SB3 algorithm: off-policy (DQN, SAC, TD3, ...) or
    on-policy (PPO, A2C, and sb3-contrib's TRPO, MaskablePPO, RecurrentPPO).

    At training start it builds the reward model from the env's spaces (when given demonstrations),
    wraps the training env with :class:`GailVecEnvWrapper` (below ``VecNormalize``, so that the
    discriminator sees raw observations) unless it is wrapped already, and for an off-policy
    algorithm attaches the reward model to the model's :class:`GailReplayBuffer`.

    Off-policy, at each rollout end once enough new transitions arrived, it trains the discriminator,
    clears its training set and logs ``gail/*`` statistics through the model's logger, with
    histograms of the agent's and the expert's per-step rewards (``gail/agent_rewards``,
    ``gail/expert_rewards``: TensorBoard only); sampled replay batches are relabelled by the buffer.

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
    :param verbose: Verbosity level: 0 no output, 1 what the callback set up (the reward model built or
        continued, the env wrapper) at each training start, 2 also one line of discriminator statistics
        per training round
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
        self._wrapper: Optional[GailVecEnvWrapper] = None
        self._in_rollout = False  # between on_rollout_start and on_rollout_end
        self._rollout_start_timesteps = 0  # the model's num_timesteps when the current rollout began

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
                "GailCallback needs an off-policy algorithm with a replay buffer (DQN, SAC, TD3, DDPG, QR-DQN, TQC, CrossQ) "
                f"or an on-policy algorithm (PPO, A2C, TRPO, MaskablePPO, RecurrentPPO), got {type(model).__name__}"
            )
        assert self.reward_model is not None
        self._set_gamma(float(model.gamma))
        self._wrap_training_env()
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
        """Build the reward model from the demonstrations (unless given one, or continuing one) and check its spaces."""
        model = self.model
        if self.reward_model is None:
            self.reward_model = self._reward_model_to_continue()
        if self.reward_model is None:
            kwargs = dict(reward_model_kwargs)
            kwargs.setdefault("device", model.device)
            kwargs.setdefault("seed", model.seed)
            self.reward_model = GailRewardModel(model.observation_space, model.action_space, self.demonstrations, **kwargs)
            self._info(
                f"GAIL: built a reward model from {len(self.reward_model.expert_data)} expert transitions "
                f"(reward_form={self.reward_model.reward_form!r}, absorbing={self.reward_model.absorbing})"
            )
        else:
            self._info(f"GAIL: training the reward model on ({self.reward_model.n_updates} discriminator updates so far)")
        for what, expected, received in (
            ("observation", model.observation_space, self.reward_model.observation_space),
            ("action", model.action_space, self.reward_model.action_space),
        ):
            if expected != received:
                raise ValueError(
                    f"The reward model's {what} space must match the model's: expected {expected}, got {received}"
                )
        if self.reward_model.device.type != model.device.type:
            warnings.warn(
                f"The reward model is on {self.reward_model.device} and the model on {model.device}: every relabelled "
                "batch crosses between them. Load the reward model onto the model's device "
                f"(GailRewardModel.load(path, device={model.device.type!r}))",
                UserWarning,
                stacklevel=2,
            )

    def _reward_model_to_continue(self) -> Optional[GailRewardModel]:
        """
        The trained reward model that this model's training env already feeds, when a new
        ``GailCallback(demonstrations)`` continues training (a second ``learn()``) and none of the
        arguments given (not the defaults derived for the algorithm) differs from it. Never swaps a
        trained discriminator silently: it warns either way.
        """
        wrapper = unwrap_vec_wrapper(self.model.env, GailVecEnvWrapper) if self.model.env is not None else None
        existing = getattr(wrapper, "reward_model", None)
        if not isinstance(existing, GailRewardModel) or wrapper is None or wrapper.owner is not self.model:
            return None  # nothing to continue, or another model's discriminator on a shared env: start afresh
        current = existing._init_kwargs()
        differing = sorted(
            key
            for key, value in self.reward_model_kwargs.items()
            if key in current and current[key] != (list(value) if isinstance(value, tuple) else value)
        )
        summary = f"The training env already feeds a reward model trained for {existing.n_updates} discriminator updates"
        if differing:
            warnings.warn(
                f"{summary}: GailCallback replaces it with a fresh one, since {differing} differ. Pass "
                "GailCallback(reward_model) to keep training the existing one.",
                stacklevel=3,
            )
            return None
        warnings.warn(
            f"{summary}: GailCallback keeps training it rather than starting a fresh discriminator from its "
            "demonstrations. Pass GailCallback(reward_model) to choose the reward model explicitly.",
            stacklevel=3,
        )
        return existing

    def _set_gamma(self, gamma: float) -> None:
        """The absorbing state's value is folded in with the discount of the RL target: the model's ``gamma``."""
        reward_model = self.reward_model
        assert reward_model is not None
        if reward_model.absorbing and not reward_model.center_on_absorbing and not 0.0 <= gamma < 1.0:
            raise ValueError(
                f"Absorbing states fold gamma / (1 - gamma) * r_abs into terminal rewards, which needs the model's "
                f"gamma in [0, 1), got gamma={gamma}: use gamma < 1, or absorbing=False, or center_on_absorbing=True"
            )
        if reward_model.gamma is not None and reward_model.gamma != gamma:
            raise ValueError(
                f"The reward model's gamma must be the model's, which discounts the absorbing state's value: "
                f"expected {gamma}, got {reward_model.gamma} (leave GailRewardModel's gamma=None to take the model's)"
            )
        if 0.0 <= gamma < 1.0:
            reward_model.gamma = gamma
        if gamma > LONG_HORIZON_GAMMA:
            horizon = f"about {1.0 / (1.0 - gamma):.0f}" if gamma < 1.0 else "unboundedly many"
            warnings.warn(
                f"The model's gamma={gamma} discounts over {horizon} steps. The discriminator's "
                "rewards are dense (every step has one, and terminations fold in the absorbing state's value "
                "gamma / (1 - gamma) * r_abs), so the critic's values grow with 1 / (1 - gamma) times the per-step "
                "reward: settings tuned for a sparse true reward (rl-zoo3's MountainCarContinuous-v0 SAC uses "
                "gamma=0.9999) can diverge under GAIL. gamma=0.99 is the usual choice for adversarial imitation.",
                stacklevel=2,
            )

    def _wrap_training_env(self) -> None:
        """Put a GailVecEnvWrapper where observations are raw: right below VecNormalize, else outermost."""
        model = self.model
        assert model.env is not None and self.reward_model is not None
        wrapper = unwrap_vec_wrapper(model.env, GailVecEnvWrapper)
        if wrapper is not None and unwrap_vec_wrapper(wrapper.venv, VecNormalize) is not None:
            raise ValueError(
                "The training env has a GailVecEnvWrapper above VecNormalize, so the discriminator would see normalised "
                "observations: expected VecNormalize(GailVecEnvWrapper(venv)), or no GailVecEnvWrapper at all "
                "(GailCallback then puts one right below VecNormalize)"
            )
        if wrapper is None:
            # The env was reset before the callback started: tell the wrapper which observations SB3 steps from
            normalizer = model.get_vec_normalize_env()
            if normalizer is not None:
                wrapper = GailVecEnvWrapper(normalizer.venv, self.reward_model)
                normalizer.venv = wrapper
                wrapper.set_last_obs(normalizer.get_original_obs())  # raw: what SB3 steps from next
                self._info("GAIL: wrapped the training env in GailVecEnvWrapper, below VecNormalize (raw observations)")
            else:
                wrapper = GailVecEnvWrapper(model.env, self.reward_model)
                model.env = wrapper
                wrapper.set_last_obs(model._last_obs)
                self._info("GAIL: wrapped the training env in GailVecEnvWrapper")
        assert isinstance(wrapper, GailVecEnvWrapper)
        if wrapper.reward_model is not None and wrapper.reward_model is not self.reward_model:
            self._info("GAIL: the training env's GailVecEnvWrapper now feeds the callback's reward model")
        wrapper.reward_model = self.reward_model
        wrapper.owner = model
        self._wrapper = wrapper

    def _info(self, message: str) -> None:
        if self.verbose >= 1:
            print(message)

    def _set_recording(self, recording: bool) -> None:
        """
        The wrapper records only while SB3 collects a rollout: SB3's predict/step loops on
        ``model.get_env()`` after ``learn()`` (or after an interrupted one) feed nothing to the discriminator.
        """
        if self._wrapper is not None:
            self._wrapper.recording = recording

    def _on_training_end(self) -> None:
        self._in_rollout = False
        self._set_recording(False)

    def _on_step(self) -> bool:
        if not self._in_rollout:
            raise RuntimeError(
                "GailCallback got an env step outside a rollout: it is nested in a callback that forwards on_step but "
                "not on_rollout_start/on_rollout_end (SB3's EventCallback, EveryNTimesteps, an EvalCallback's "
                "callback_on_new_best, ...), so the discriminator would never train and the rewards never be "
                "relabelled. Pass it to learn() directly, or in a list / CallbackList: "
                "learn(..., callback=[GailCallback(...), ...])"
            )
        if self._relabeler is not None:
            # before SB3 adds the time-limit bootstrap to these rewards in place
            self._relabeler.record_step(self.locals["rewards"])
        return True

    def _on_rollout_start(self) -> None:
        self._in_rollout = True
        self._rollout_start_timesteps = self.model.num_timesteps
        self._set_recording(True)
        if self._relabeler is not None and self.reward_model is not None:
            # an on-policy rollout is relabelled on its own: drop what an interrupted one left
            self.reward_model.clear_data()
            self._relabeler.reset()

    def _on_rollout_end(self) -> None:
        self._in_rollout = False
        self._set_recording(False)
        assert self.reward_model is not None
        if self._relabeler is not None:
            self._log(self._relabeler.relabel(self.model, self.reward_model))  # type: ignore[arg-type]
            return
        replay_buffer = self.model.replay_buffer  # type: ignore[attr-defined]
        if replay_buffer.reward_model is not self.reward_model:
            # e.g. after model.load_replay_buffer(): the reward model is not pickled with the buffer
            replay_buffer.set_reward_model(self.reward_model)
        # batches a train() planned but did not sample are given back before the discriminator draws its own
        replay_buffer.plan_samples(0, 1)
        if self.reward_model.ready_to_train():
            agent_data = None
            if self.reward_model.agent_data_source == "replay":
                agent_data = replay_buffer.sample_transitions(
                    self.reward_model.batch_size * self.reward_model.update_per_collect, self.reward_model.replay_window
                )
            self._log(self.reward_model.train(agent_data))
            self.reward_model.clear_data()
        self._plan_gradient_steps(replay_buffer)

    def _plan_gradient_steps(self, replay_buffer: GailRelabelMixin) -> None:
        """
        Tell the replay buffer how many batches the ``train()`` that follows this rollout end samples (SB3's
        ``OffPolicyAlgorithm.learn``: ``gradient_steps``, or the rollout's env steps when it is -1, once past
        ``learning_starts``), so that it relabels them together (from two batches on).
        """
        model = self.model
        gradient_steps = getattr(model, "gradient_steps", None)
        batch_size = getattr(model, "batch_size", None)
        integers = (int, np.integer)
        if not isinstance(gradient_steps, integers) or not isinstance(batch_size, integers) or batch_size < 1:
            return
        if model.num_timesteps > 0 and model.num_timesteps > getattr(model, "learning_starts", 0):
            steps = gradient_steps if gradient_steps >= 0 else model.num_timesteps - self._rollout_start_timesteps
            if steps > 1:  # one batch has nothing to batch with
                replay_buffer.plan_samples(int(steps), int(batch_size))

    def _log(self, stats: Dict[str, float]) -> None:
        assert self.reward_model is not None
        self.last_stats = stats
        for key, value in stats.items():
            self.logger.record(f"gail/{key}", value)
        self.logger.record("gail/n_updates", self.reward_model.n_updates)
        for name, rewards in self.reward_model.last_train_rewards.items():
            # a tensor: SB3's TensorBoard writer draws a histogram; the text formats cannot show one
            self.logger.record(f"gail/{name}_rewards", rewards, exclude=TEXT_FORMATS)
        if self.verbose >= 2:
            print(f"GAIL at {self.num_timesteps} steps: " + ", ".join(f"{k}={v:.3f}" for k, v in stats.items()))


class GailCheckpointCallback(CheckpointCallback):
    """
    SB3's ``CheckpointCallback`` that also saves the GAIL reward model, so that a run resumes with
    nothing lost. Every ``save_freq`` calls it writes, in ``save_path``:
    ``{name_prefix}_{steps}_steps.zip`` (the model), ``{name_prefix}_replay_buffer_{steps}_steps.pkl``
    (off-policy), ``{name_prefix}_vecnormalize_{steps}_steps.pkl`` (under ``VecNormalize``) and
    ``{name_prefix}_gail_{steps}_steps.pt`` (the reward model: :meth:`GailRewardModel.save`).

    Resume with::

        model = DQN.load(".../rl_model_5000_steps.zip", env=env)
        model.load_replay_buffer(".../rl_model_replay_buffer_5000_steps.pkl")
        reward_model = GailRewardModel.load(".../rl_model_gail_5000_steps.pt")
        model.learn(10_000, callback=GailCallback(reward_model), reset_num_timesteps=False)

    Use it next to :class:`GailCallback` (``callback=[GailCallback(...), GailCheckpointCallback(...)]``).

    :param save_freq: Save checkpoints every ``save_freq`` calls of the callback (env steps / n_envs)
    :param save_path: Folder of the checkpoints
    :param name_prefix: Common prefix of the saved files
    :param save_replay_buffer: Save the model's replay buffer too (default True: GAIL's agent data lives there)
    :param save_vecnormalize: Save the ``VecNormalize`` statistics too
    :param verbose: Verbosity level: 0 no output, 2 one line per saved file
    """

    def __init__(
        self,
        save_freq: int,
        save_path: str,
        name_prefix: str = "rl_model",
        save_replay_buffer: bool = True,
        save_vecnormalize: bool = True,
        verbose: int = 0,
    ) -> None:
        super().__init__(save_freq, save_path, name_prefix, save_replay_buffer, save_vecnormalize, verbose)

    def _on_step(self) -> bool:
        result = super()._on_step()
        if self.n_calls % self.save_freq == 0:
            wrapper = unwrap_vec_wrapper(self.model.get_env(), GailVecEnvWrapper)  # type: ignore[arg-type]
            reward_model = getattr(wrapper, "reward_model", None)
            if reward_model is None:
                raise RuntimeError(
                    "GailCheckpointCallback found no GAIL reward model on the training env: use it together with "
                    "GailCallback, e.g. callback=[GailCallback(demonstrations), GailCheckpointCallback(...)]"
                )
            path = self._checkpoint_path("gail_", extension="pt")
            reward_model.save(path)
            if self.verbose >= 2:
                print(f"Saving GAIL reward model checkpoint to {os.fspath(path)}")
        return result
