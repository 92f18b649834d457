"""The Optuna objective of a GAIL sweep: train with sampled arguments, score the true return."""

from __future__ import annotations

import os
import socket
from typing import Any, Dict, Mapping, Optional, Tuple, Type

import numpy as np
import optuna
from gymnasium import spaces
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from sb3_gail_plugin.buffers import DictGailReplayBuffer, GailReplayBuffer
from sb3_gail_plugin.callbacks import GailCallback
from sb3_gail_plugin.demonstrations import DemonstrationSource, load_demonstrations
from sb3_gail_plugin.tune.spaces import GAIL_PREFIX, GAIL_SPACE, RL_SPACES, Space, sample_kwargs

ALGORITHMS: Dict[str, Type[BaseAlgorithm]] = {"a2c": A2C, "ddpg": DDPG, "dqn": DQN, "ppo": PPO, "sac": SAC, "td3": TD3}
CONTRIB_ALGORITHMS = {"qrdqn": "QRDQN", "tqc": "TQC", "trpo": "TRPO"}

# Seeds of a trial's evaluation env are offset from its training env's
EVAL_SEED_OFFSET = 10_000


def algorithm_class(algo: str) -> Type[BaseAlgorithm]:
    """
    The SB3 (or sb3-contrib) class of an algorithm named as in rl-zoo3.

    :param algo: ``dqn``, ``sac``, ``td3``, ``ddpg``, ``ppo``, ``a2c``, or with sb3-contrib ``qrdqn``, ``tqc``, ``trpo``
    :return: The algorithm class
    """
    if algo in ALGORITHMS:
        return ALGORITHMS[algo]
    if algo in CONTRIB_ALGORITHMS:
        import sb3_contrib

        return getattr(sb3_contrib, CONTRIB_ALGORITHMS[algo])
    raise ValueError(f"Unknown algorithm: expected one of {sorted([*ALGORITHMS, *CONTRIB_ALGORITHMS])}, got {algo!r}")


class TrialEvalCallback(EvalCallback):
    """
    SB3's ``EvalCallback`` that reports each evaluation's mean return to an Optuna trial, at its env
    step, and stops training when the study's pruner says so (``pruned`` is then True). It evaluates
    only before ``max_timesteps``: SB3 finishes its last rollout past the budget, and the score at
    the end is the objective's own.

    :param eval_env: The evaluation env (the true reward)
    :param trial: The Optuna trial
    :param eval_freq: Evaluate every ``eval_freq`` calls (env steps / n_envs)
    :param max_timesteps: No evaluation from this many env steps on
    :param n_eval_episodes: Episodes per evaluation
    """

    def __init__(
        self, eval_env: VecEnv, trial: optuna.Trial, eval_freq: int, max_timesteps: int, n_eval_episodes: int = 5
    ) -> None:
        super().__init__(eval_env, n_eval_episodes=n_eval_episodes, eval_freq=eval_freq, verbose=0)
        self.trial = trial
        self.max_timesteps = max_timesteps
        self.pruned = False

    def _on_step(self) -> bool:
        if self.n_calls % self.eval_freq != 0 or self.num_timesteps >= self.max_timesteps:
            return True
        continue_training = super()._on_step()
        self.trial.report(float(self.last_mean_reward), self.num_timesteps)
        self.pruned = self.trial.should_prune()
        return continue_training and not self.pruned


class GailObjective:
    """
    Optuna objective: trains ``algo`` with :class:`~sb3_gail_plugin.GailCallback` for ``n_timesteps``
    env steps with the trial's arguments, and returns the mean true return of the deterministic
    policy over ``n_eval_episodes`` episodes of a separate env (SB3's ``evaluate_policy``). The
    discriminator's rewards never enter the score. ``n_evaluations`` intermediate evaluations, evenly
    spaced before the end, are reported to the trial (at their env step), and the trial is pruned
    (``optuna.TrialPruned``) when the study's pruner says so.

    Each trial samples the arguments of ``rl_space`` and ``gail_space`` that ``hyperparams`` and
    ``reward_model_kwargs`` do not fix; the reward model's parameters are named with the ``gail_``
    prefix in the study (:func:`~sb3_gail_plugin.tune.split_params` splits them back). Trial ``i``
    trains with seed ``seed + i``.

    :param algo: The algorithm, named as in rl-zoo3 (see :func:`algorithm_class`)
    :param env_id: Gymnasium env id
    :param demonstrations: Expert demonstrations (anything :func:`~sb3_gail_plugin.load_demonstrations`
        reads), loaded once for all trials
    :param n_timesteps: Env steps per trial
    :param hyperparams: Fixed arguments of the algorithm (``policy`` included, default ``MlpPolicy``, or
        ``MultiInputPolicy`` for Dict observations); off-policy algorithms get ``GailReplayBuffer``
    :param reward_model_kwargs: Fixed arguments of the reward model (``GailCallback``'s keyword arguments)
    :param rl_space: The algorithm's search space; ``None``: :data:`RL_SPACES` ``[algo]``; ``{}``: fixed
    :param gail_space: The reward model's search space; ``None``: :data:`GAIL_SPACE`; ``{}``: fixed
    :param n_envs: Number of training envs
    :param n_evaluations: Intermediate evaluations reported for pruning (0: none)
    :param n_eval_episodes: Episodes per evaluation
    :param env_kwargs: Keyword arguments of the env
    :param seed: Seed of trial 0 (trial ``i`` uses ``seed + i``)
    :param device: Torch device of the algorithm and the discriminator
    """

    def __init__(
        self,
        algo: str,
        env_id: str,
        demonstrations: DemonstrationSource,
        n_timesteps: int,
        hyperparams: Optional[Mapping[str, Any]] = None,
        reward_model_kwargs: Optional[Mapping[str, Any]] = None,
        rl_space: Optional[Space] = None,
        gail_space: Optional[Space] = None,
        n_envs: int = 1,
        n_evaluations: int = 2,
        n_eval_episodes: int = 5,
        env_kwargs: Optional[Mapping[str, Any]] = None,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        for name, value, low in (
            ("n_timesteps", n_timesteps, 1),
            ("n_envs", n_envs, 1),
            ("n_eval_episodes", n_eval_episodes, 1),
        ):
            if value < low:
                raise ValueError(f"{name} must be at least {low}, got {value}")
        if n_evaluations < 0:
            raise ValueError(f"n_evaluations must be >= 0, got {n_evaluations}")
        self.algo = algo
        self.algorithm_class = algorithm_class(algo)
        self.env_id = env_id
        self.demonstrations = load_demonstrations(demonstrations)
        self.n_timesteps = int(n_timesteps)
        self.hyperparams = dict(hyperparams or {})
        self.reward_model_kwargs = dict(reward_model_kwargs or {})
        self.rl_space = RL_SPACES.get(algo, {}) if rl_space is None else rl_space
        self.gail_space = GAIL_SPACE if gail_space is None else gail_space
        self.n_envs = int(n_envs)
        self.n_evaluations = int(n_evaluations)
        self.n_eval_episodes = int(n_eval_episodes)
        self.env_kwargs = dict(env_kwargs or {})
        self.seed = int(seed)
        self.device = device

    def sample(self, trial: optuna.Trial) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        """
        The trial's arguments: the fixed ones, and the sampled ones for the rest of each space.

        :param trial: The Optuna trial
        :return: ``(model_kwargs, reward_model_kwargs)``
        """
        model_kwargs = {**sample_kwargs(trial, self.rl_space, fixed=self.hyperparams), **self.hyperparams}
        reward_model_kwargs = {
            **sample_kwargs(trial, self.gail_space, fixed=self.reward_model_kwargs, prefix=GAIL_PREFIX),
            **self.reward_model_kwargs,
        }
        return model_kwargs, reward_model_kwargs

    def make_model(self, trial: optuna.Trial) -> Tuple[BaseAlgorithm, GailCallback]:
        """
        The trial's model, on its training envs, and the ``GailCallback`` to train it with.

        :param trial: The Optuna trial
        :return: ``(model, gail_callback)``
        """
        model_kwargs, reward_model_kwargs = self.sample(trial)
        seed = self.seed + trial.number
        env = make_vec_env(self.env_id, n_envs=self.n_envs, seed=seed, env_kwargs=self.env_kwargs)
        is_dict = isinstance(env.observation_space, spaces.Dict)
        policy = model_kwargs.pop("policy", "MultiInputPolicy" if is_dict else "MlpPolicy")
        if issubclass(self.algorithm_class, OffPolicyAlgorithm):
            model_kwargs.setdefault("replay_buffer_class", DictGailReplayBuffer if is_dict else GailReplayBuffer)
        model = self.algorithm_class(policy, env, seed=seed, device=self.device, verbose=0, **model_kwargs)
        return model, GailCallback(self.demonstrations, **reward_model_kwargs)

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        model, gail_callback = self.make_model(trial)
        eval_env = make_vec_env(
            self.env_id, n_envs=1, seed=self.seed + trial.number + EVAL_SEED_OFFSET, env_kwargs=self.env_kwargs
        )
        # n_evaluations evaluations strictly inside the budget: the score at its end is the final evaluate_policy
        eval_freq = self.n_timesteps // ((self.n_evaluations + 1) * self.n_envs) + 1
        evaluations = TrialEvalCallback(eval_env, trial, eval_freq, self.n_timesteps, self.n_eval_episodes)
        callbacks: list = [gail_callback] + ([evaluations] if self.n_evaluations > 0 else [])
        try:
            model.learn(self.n_timesteps, callback=callbacks)
            if evaluations.pruned:
                raise optuna.TrialPruned(f"pruned at {model.num_timesteps} env steps")
            returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=self.n_eval_episodes, return_episode_rewards=True)
        finally:
            eval_env.close()
            if model.env is not None:
                model.env.close()
        trial.set_user_attr("returns", [float(value) for value in returns])  # type: ignore[union-attr]
        trial.set_user_attr("gail_n_updates", gail_callback.reward_model.n_updates if gail_callback.reward_model else 0)
        return float(np.mean(returns))
