"""The methods the benchmark compares, each trained from scratch (or from its checkpoint) and evaluated every K env steps."""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Type, cast

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from benchmarks.checkpoints import RunCheckpoint, resume_seed
from sb3_gail_plugin import GailCallback, GailReplayBuffer, GailRewardModel, Transitions
from sb3_gail_plugin.hyperparams import (
    GAIL_DQN_CARTPOLE,
    ZOO_DQN,
    ZOO_PPO_CARTPOLE,
    ZOO_PPO_CARTPOLE_N_ENVS,
    ZOO_PPO_HOPPER,
    ZOO_PPO_MUJOCO_DEFAULTS,
    sac_settings,
    td3_settings,
)

# imitation's GAIL tutorial's PPO (docs/tutorials/3_train_gail): 8 envs, SB3's n_steps 2048
TUTORIAL_PPO: Dict[str, Any] = dict(batch_size=64, ent_coef=0.0, learning_rate=4e-4, gamma=0.95, n_epochs=5)
TUTORIAL_PPO_N_ENVS = 8


# rl-zoo3's PPO settings per env: (hyperparameters, env count, VecNormalize around the env)
ZOO_PPO: Dict[str, Tuple[Dict[str, Any], int, bool]] = {
    "CartPole-v1": (ZOO_PPO_CARTPOLE, ZOO_PPO_CARTPOLE_N_ENVS, False),
    "Hopper-v4": (ZOO_PPO_HOPPER, 1, True),
    "Hopper-v5": (ZOO_PPO_HOPPER, 1, True),
    "InvertedDoublePendulum-v4": (ZOO_PPO_MUJOCO_DEFAULTS, 1, True),
    "InvertedDoublePendulum-v5": (ZOO_PPO_MUJOCO_DEFAULTS, 1, True),
}


def ppo_settings(env_id: str, which: str) -> Tuple[Dict[str, Any], int, bool]:
    """
    PPO hyperparameters, env count and whether rl-zoo3 normalises the env (``VecNormalize``):
    imitation's tutorial's (``"tutorial"``) or rl-zoo3's (``"zoo"``).
    """
    if which == "tutorial":
        return TUTORIAL_PPO, TUTORIAL_PPO_N_ENVS, False
    if env_id not in ZOO_PPO:
        raise ValueError(f"No rl-zoo3 PPO hyperparameters for {env_id} here: expected one of {sorted(ZOO_PPO)}")
    return ZOO_PPO[env_id]


def make_ppo_env(env_id: str, n_envs: int, seed: int, normalize: bool, gamma: float) -> VecEnv:
    """The training envs of a PPO row, under ``VecNormalize`` (with PPO's gamma, as rl-zoo3) where rl-zoo3 normalises."""
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    return VecNormalize(env, gamma=gamma) if normalize else env


def dqn_settings(env_id: str, which: str) -> Dict[str, Any]:
    """DQN hyperparameters: rl-zoo3's (``"zoo"``), or our recommended ones (CartPole-v1; rl-zoo3's elsewhere)."""
    if which == "recommended" and env_id == "CartPole-v1":
        return GAIL_DQN_CARTPOLE
    if env_id not in ZOO_DQN:
        raise ValueError(f"No DQN hyperparameters for {env_id}: expected one of {sorted(ZOO_DQN)}")
    return ZOO_DQN[env_id]


@dataclass
class Evaluator:
    """
    Evaluates a policy on a separate env with the true reward and records (env steps, wall seconds,
    mean and std return, mean episode length). Wall seconds exclude the evaluations themselves. With a
    ``label``, each evaluation is also printed as it happens, so a long run's log shows its curve so far.
    """

    env_id: str
    seed: int
    every: int
    n_episodes: int = 10
    records: List[Dict[str, float]] = field(default_factory=list)
    label: str = ""
    resumed_at: List[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.env = make_vec_env(self.env_id, n_envs=1, seed=10_000 + self.seed)
        self.normalized_env: Optional[VecNormalize] = None
        self.start = time.perf_counter()
        self.eval_seconds = 0.0
        self.next_at = self.every

    def due(self, env_steps: int) -> bool:
        """Whether an evaluation is due at ``env_steps``."""
        return env_steps >= self.next_at

    def __call__(self, policy: Any, env_steps: int) -> None:
        """Evaluate ``policy`` (a model, or anything with SB3's ``predict``) at ``env_steps`` and record the result."""
        began = time.perf_counter()
        env: VecEnv = self.env
        training_normalizer = policy.get_vec_normalize_env() if isinstance(policy, BaseAlgorithm) else None
        if training_normalizer is not None:  # the policy sees observations normalised with the training statistics
            if self.normalized_env is None:
                self.normalized_env = VecNormalize(self.env, training=False, norm_reward=False)
            self.normalized_env.obs_rms = copy.deepcopy(training_normalizer.obs_rms)
            env = self.normalized_env
        result = evaluate_policy(policy, env, n_eval_episodes=self.n_episodes, deterministic=True, return_episode_rewards=True)
        returns, lengths = cast(Tuple[List[float], List[int]], result)
        self.eval_seconds += time.perf_counter() - began
        wall = time.perf_counter() - self.start - self.eval_seconds
        self.records.append(
            dict(
                env_steps=env_steps,
                wall_s=wall,
                mean_return=float(np.mean(returns)),
                std_return=float(np.std(returns)),
                mean_length=float(np.mean(lengths)),
            )
        )
        if self.resumed_at:  # made after a resume from a checkpoint: at which env steps it last resumed
            self.records[-1]["resumed_at"] = self.resumed_at[-1]
        if self.label:
            record = self.records[-1]
            print(
                f"[{self.env_id} | {self.label} | seed {self.seed}] {env_steps} env steps: return "
                f"{record['mean_return']:.1f} +/- {record['std_return']:.1f}, {wall:.0f} s",
                flush=True,
            )
        while self.next_at <= env_steps:
            self.next_at += self.every

    def state(self) -> Dict[str, Any]:
        """What a checkpoint keeps of the evaluator: the evaluations so far and the training wall time."""
        wall = time.perf_counter() - self.start - self.eval_seconds
        return dict(records=self.records, next_at=self.next_at, wall_s=wall, resumed_at=self.resumed_at)

    def restore(self, state: Dict[str, Any], env_steps: int) -> None:
        """
        Go on from a checkpoint's :meth:`state`, taken at ``env_steps``: the evaluation env is reseeded from there, so
        the next evaluations meet new episodes rather than the first evaluation's again.
        """
        self.records = [dict(record) for record in state["records"]]
        self.next_at = int(state["next_at"])
        self.start, self.eval_seconds = time.perf_counter() - float(state["wall_s"]), 0.0
        self.resumed_at = [*state["resumed_at"], env_steps]
        self.env.seed(resume_seed(self.seed, env_steps, "evaluation"))
        if self.label:
            print(f"[{self.env_id} | {self.label} | seed {self.seed}] resumed at {env_steps} env steps", flush=True)


class EvalEveryK(BaseCallback):
    """
    Runs the evaluator on an SB3 model every K env steps, and after each evaluation writes the run's checkpoint
    where it has one (its saving time is kept out of the run's wall time, as the evaluations are).
    """

    def __init__(self, evaluator: Evaluator, checkpoint: Optional[RunCheckpoint] = None) -> None:
        super().__init__()
        self.evaluator = evaluator
        self.checkpoint = checkpoint

    def _on_step(self) -> bool:
        # an on-policy learner is evaluated once it has been updated (an untrained deterministic PPO policy can
        # score 400+ on CartPole), as imitation's trainer is, whose evaluations run after each round
        updated = not isinstance(self.model, OnPolicyAlgorithm) or self.model._n_updates > 0
        if updated and self.evaluator.due(self.num_timesteps):
            self.evaluator(self.model, self.num_timesteps)
            if self.checkpoint is not None:
                began = time.perf_counter()
                self.checkpoint.save(self.model, self.evaluator.state())
                self.evaluator.eval_seconds += time.perf_counter() - began
        return True


# The ablation of issue 4: plain GAIL as DI-engine and imitation run it (always-positive reward,
# no absorbing states, discriminator trained on the latest rollout only)
PLAIN_GAIL: Dict[str, Any] = dict(
    reward_form="gail", absorbing=False, agent_data_source="rollout", reward_clip=None, policy_expert_fraction=0.0
)


def run_ours(
    env_id: str,
    demos: Transitions,
    seed: int,
    budget: int,
    evaluator: Evaluator,
    dqn: str = "recommended",
    reward_model_kwargs: Optional[Dict[str, Any]] = None,
) -> None:
    """GAIL-DQN with this plugin: the two-line usage with our default reward model."""
    model = DQN("MlpPolicy", env_id, replay_buffer_class=GailReplayBuffer, seed=seed, **dqn_settings(env_id, dqn))
    model.learn(budget, callback=[GailCallback(demos, **(reward_model_kwargs or {})), EvalEveryK(evaluator)])


CONTINUOUS_ALGORITHMS: Dict[str, Type[OffPolicyAlgorithm]] = {"sac": SAC, "td3": TD3}


def continuous_algorithm(algorithm: str) -> Type[OffPolicyAlgorithm]:
    """The SB3 class of a continuous-control ``algorithm`` name (a key of :data:`CONTINUOUS_ALGORITHMS`)."""
    if algorithm not in CONTINUOUS_ALGORITHMS:
        raise ValueError(
            f"Unknown continuous-control algorithm: expected one of {sorted(CONTINUOUS_ALGORITHMS)}, got {algorithm!r}"
        )
    return CONTINUOUS_ALGORITHMS[algorithm]


def continuous_settings(env_id: str, algorithm: str) -> Dict[str, Any]:
    """rl-zoo3's SAC or TD3 hyperparameters for ``env_id`` (SB3's defaults where it has none), without the budget."""
    continuous_algorithm(algorithm)  # an unknown name is refused, not given SAC's settings
    if algorithm == "td3":
        env = gym.make(env_id)
        n_actions = int(np.prod(env.action_space.shape or ()))
        env.close()
        return td3_settings(env_id, n_actions)
    return sac_settings(env_id)


#: Where rl-zoo3's settings are tuned to a sparse true reward that GAIL's dense rewards break, the GAIL rows change
#: what they must: MountainCarContinuous-v0's gamma=0.9999 makes the critic's values 10,000 times the per-step reward
#: (GailCallback warns; measured in docs/benchmarks.md, the ``ours_sac_zoo_gamma`` rows)
GAIL_OVERRIDES: Dict[str, Dict[str, Any]] = {"MountainCarContinuous-v0": dict(gamma=0.99)}


def run_ours_continuous(
    env_id: str,
    demos: Transitions,
    seed: int,
    budget: int,
    evaluator: Evaluator,
    algorithm: str = "sac",
    reward_model_kwargs: Optional[Dict[str, Any]] = None,
    overrides: bool = True,
    checkpoint: Optional[RunCheckpoint] = None,
) -> None:
    """
    GAIL-SAC (or TD3) with this plugin: the two-line usage with rl-zoo3's settings for the env, changed where
    :data:`GAIL_OVERRIDES` says (``overrides=False``: rl-zoo3's settings as they are). With a ``checkpoint``, the
    run goes on from its last checkpoint where there is one, and writes one after each evaluation.
    """
    resumed = resume_from(checkpoint, continuous_algorithm(algorithm), env_id, seed, evaluator)
    if resumed is None:
        model = make_ours_continuous(env_id, seed, algorithm, overrides)
        gail = GailCallback(demos, **(reward_model_kwargs or {}))
    else:
        model, reward_model = resumed
        if reward_model is None:
            assert checkpoint is not None
            raise ValueError(
                f"The checkpoint in {checkpoint.directory} has no GAIL reward model: it was not written by a GAIL run "
                "(delete it to start this run afresh)"
            )
        gail = GailCallback(reward_model)
    learn_to(model, budget, [gail, EvalEveryK(evaluator, checkpoint)])


def resume_from(
    checkpoint: Optional[RunCheckpoint], algorithm_class: Type[BaseAlgorithm], env_id: str, seed: int, evaluator: Evaluator
) -> Optional[Tuple[BaseAlgorithm, Optional[GailRewardModel]]]:
    """
    The model and GAIL reward model (None for a run without one) of the last checkpoint, with ``evaluator`` restored
    to it; None when there is no checkpoint to go on from.
    """
    resumed = checkpoint.load(algorithm_class, env_id, seed) if checkpoint is not None else None
    if resumed is None:
        return None
    model, reward_model, evaluator_state = resumed
    evaluator.restore(evaluator_state, model.num_timesteps)
    return model, reward_model


def learn_to(model: BaseAlgorithm, budget: int, callbacks: List[BaseCallback]) -> None:
    """Train ``model`` until ``budget`` env steps in all: a resumed model goes on from its step count."""
    model.learn(budget - model.num_timesteps, callback=callbacks, reset_num_timesteps=False)


def make_ours_continuous(env_id: str, seed: int, algorithm: str = "sac", overrides: bool = True) -> BaseAlgorithm:
    """
    The SAC (or TD3) model of :func:`run_ours_continuous`, with ``GailReplayBuffer``: rl-zoo3's settings for the env,
    changed where :data:`GAIL_OVERRIDES` says (``overrides=False``: as they are).
    """
    settings = {**continuous_settings(env_id, algorithm), **(GAIL_OVERRIDES.get(env_id, {}) if overrides else {})}
    return continuous_algorithm(algorithm)("MlpPolicy", env_id, replay_buffer_class=GailReplayBuffer, seed=seed, **settings)


def run_continuous(
    env_id: str,
    demos: Transitions,
    seed: int,
    budget: int,
    evaluator: Evaluator,
    algorithm: str = "sac",
    checkpoint: Optional[RunCheckpoint] = None,
) -> None:
    """
    Plain SB3 SAC (or TD3) on the true reward, same settings as the GAIL rows; resumable as
    :func:`run_ours_continuous` is.
    """
    algorithm_class = continuous_algorithm(algorithm)
    resumed = resume_from(checkpoint, algorithm_class, env_id, seed, evaluator)
    model: BaseAlgorithm
    if resumed is None:
        model = algorithm_class("MlpPolicy", env_id, seed=seed, **continuous_settings(env_id, algorithm))
    else:
        model, _ = resumed
    learn_to(model, budget, [EvalEveryK(evaluator, checkpoint)])


def run_ours_ppo(env_id: str, demos: Transitions, seed: int, budget: int, evaluator: Evaluator, ppo: str = "tutorial") -> None:
    """GAIL-PPO with this plugin: one callback, the on-policy defaults, the same PPO settings as imitation's row."""
    settings, n_envs, normalize = ppo_settings(env_id, ppo)
    model = PPO("MlpPolicy", make_ppo_env(env_id, n_envs, seed, normalize, settings.get("gamma", 0.99)), seed=seed, **settings)
    model.learn(budget, callback=[GailCallback(demos), EvalEveryK(evaluator)])


def run_ppo(env_id: str, demos: Transitions, seed: int, budget: int, evaluator: Evaluator, ppo: str = "tutorial") -> None:
    """Plain SB3 PPO on the true reward, same settings as the GAIL-PPO rows."""
    settings, n_envs, normalize = ppo_settings(env_id, ppo)
    model = PPO("MlpPolicy", make_ppo_env(env_id, n_envs, seed, normalize, settings.get("gamma", 0.99)), seed=seed, **settings)
    model.learn(budget, callback=EvalEveryK(evaluator))


def run_dqn(env_id: str, demos: Transitions, seed: int, budget: int, evaluator: Evaluator, dqn: str = "recommended") -> None:
    """Plain SB3 DQN on the true reward, same hyperparameters as ours."""
    model = DQN("MlpPolicy", env_id, seed=seed, **dqn_settings(env_id, dqn))
    model.learn(budget, callback=EvalEveryK(evaluator))


def to_imitation_trajectories(demos: Transitions) -> List[Any]:
    """Our transitions as imitation ``TrajectoryWithRew`` episodes (obs has one more row than acts)."""
    from imitation.data.types import TrajectoryWithRew

    ends = np.flatnonzero(demos.dones)
    starts = np.concatenate([[0], ends[:-1] + 1])
    assert demos.rewards is not None and demos.actions is not None
    return [
        TrajectoryWithRew(
            obs=np.concatenate([demos.observations[s : e + 1], demos.next_observations[e : e + 1]]),  # type: ignore[index]
            acts=demos.actions[s : e + 1],
            infos=None,
            terminal=not bool(demos.timeouts[e]),
            rews=demos.rewards[s : e + 1],
        )
        for s, e in zip(starts, ends)
    ]


def _run_imitation_gail(
    env_id: str,
    demos: Transitions,
    seed: int,
    budget: int,
    evaluator: Evaluator,
    make_learner: Callable[[Any], BaseAlgorithm],
    n_envs: int,
    normalize: bool = False,
    normalize_rewards: bool = False,
    **gail_kwargs: Any,
) -> None:
    from imitation.algorithms.adversarial.gail import GAIL
    from imitation.data.wrappers import RolloutInfoWrapper
    from imitation.rewards.reward_nets import BasicRewardNet, NormalizedRewardNet, RewardNet
    from imitation.util.networks import RunningNorm
    from imitation.util.util import make_vec_env as imitation_make_vec_env

    venv = imitation_make_vec_env(
        env_id, rng=np.random.default_rng(seed), n_envs=n_envs, post_wrappers=[lambda env, _: RolloutInfoWrapper(env)]
    )
    learner = make_learner(venv)
    reward_net: RewardNet = BasicRewardNet(venv.observation_space, venv.action_space, normalize_input_layer=RunningNorm)
    if normalize_rewards:  # imitation's tuned settings: the learned reward normalised too (normalize_output_layer)
        reward_net = NormalizedRewardNet(reward_net, normalize_output_layer=RunningNorm)
    # imitation refuses a demo batch larger than the demonstrations (1 episode of CartPole: 500 transitions)
    gail_kwargs["demo_batch_size"] = min(gail_kwargs["demo_batch_size"], len(demos))
    trainer = GAIL(
        demonstrations=to_imitation_trajectories(demos),
        venv=venv,
        gen_algo=learner,
        reward_net=reward_net,
        allow_variable_horizon=True,  # CartPole-v1 and LunarLander end early
        **gail_kwargs,
    )
    if normalize:
        # rl-zoo3's VecNormalize, as in our rows: around the env that imitation's reward wrapper relabels, so the
        # policy learns from normalised observations and normalised learned rewards, while imitation's buffering
        # wrapper below it keeps raw observations for the discriminator (which normalises them itself, RunningNorm)
        learner.set_env(VecNormalize(trainer.venv_train, gamma=getattr(learner, "gamma", 0.99)))

    def after_round(_: int) -> None:
        if evaluator.due(learner.num_timesteps):
            evaluator(learner, learner.num_timesteps)

    trainer.train(budget, callback=after_round)


def run_imitation_gail_ppo(
    env_id: str, demos: Transitions, seed: int, budget: int, evaluator: Evaluator, ppo: str = "tutorial"
) -> None:
    """
    imitation's GAIL with a PPO generator: its tutorial's discriminator settings, with the tutorial's PPO
    (8 envs) or rl-zoo3's. imitation calls ``learn(..., reset_num_timesteps=False)`` once per round,
    which ends each round at progress 0, so rl-zoo3's linear schedules (CartPole) are exactly 0 and PPO never
    trains (imitation issue #262): that is imitation's loop, not a setting of ours.
    """
    settings, n_envs, normalize = ppo_settings(env_id, ppo)

    def make_learner(venv: Any) -> BaseAlgorithm:
        return PPO("MlpPolicy", venv, seed=seed, **settings)

    # the tutorial's demo batch of 1024 with its rollouts of 8 x 2048; one round's with rl-zoo3's (8 x 32, 1 x 512)
    demo_batch_size = 1024 if ppo == "tutorial" else n_envs * settings.get("n_steps", 2048)
    _run_imitation_gail(
        env_id,
        demos,
        seed,
        budget,
        evaluator,
        make_learner,
        n_envs=n_envs,
        normalize=normalize,
        demo_batch_size=demo_batch_size,
        gen_replay_buffer_capacity=512,
        n_disc_updates_per_round=8,
    )


#: imitation's tuned GAIL settings (imitation/scripts/config/tuned_hps, for the seals versions of the envs, which
#: have no early termination: imitation tuned them at 10M env steps) for the gymnasium envs run here
IMITATION_TUNED_GAIL = {
    "Hopper-v4": "gail_seals_hopper_best_hp_eval.json",
    "HalfCheetah-v4": "gail_seals_half_cheetah_best_hp_eval.json",
}
IMITATION_N_ENVS = 8  # imitation's scripts' default (environment ingredient, num_vec)


def imitation_tuned_gail(env_id: str) -> Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any]]:
    """
    imitation's tuned GAIL hyperparameters for ``env_id``, read from the installed imitation package: its GAIL
    keyword arguments, PPO's (with ``n_steps`` from its ``rl.batch_size`` over 8 envs, as its scripts set it) and the
    policy's (ReLU where it says so, a ``NormalizeFeaturesExtractor`` with ``RunningNorm``, 32x32 for its default
    ``FeedForward32Policy``).
    """
    import imitation
    from imitation.policies.base import NormalizeFeaturesExtractor
    from imitation.util.networks import RunningNorm

    if env_id not in IMITATION_TUNED_GAIL:
        expected = sorted(IMITATION_TUNED_GAIL)
        raise ValueError(f"imitation publishes no tuned GAIL settings for {env_id}: expected one of {expected}")
    path = Path(imitation.__file__).parent / "scripts" / "config" / "tuned_hps" / IMITATION_TUNED_GAIL[env_id]
    config = json.loads(path.read_text())
    ppo_kwargs = dict(config["rl"]["rl_kwargs"], n_steps=config["rl"]["batch_size"] // IMITATION_N_ENVS)
    policy = config["policy"]["policy_kwargs"]
    net_arch: Any = dict(pi=[32, 32], vf=[32, 32])  # FeedForward32Policy
    if config["policy"]["policy_cls"] == "MlpPolicy":
        net_arch = policy["net_arch"][0]
    policy_kwargs = dict(
        net_arch=net_arch,
        features_extractor_class=NormalizeFeaturesExtractor,
        features_extractor_kwargs=dict(normalize_class=RunningNorm),
    )
    if policy.get("activation_fn", {}).get("py/type", "").endswith("ReLU"):
        policy_kwargs["activation_fn"] = th.nn.ReLU
    return dict(config["algorithm_kwargs"]), ppo_kwargs, policy_kwargs


def run_imitation_gail_ppo_tuned(env_id: str, demos: Transitions, seed: int, budget: int, evaluator: Evaluator) -> None:
    """imitation's GAIL with PPO and imitation's own tuned hyperparameters for the env (:func:`imitation_tuned_gail`)."""
    gail_kwargs, ppo_kwargs, policy_kwargs = imitation_tuned_gail(env_id)

    def make_learner(venv: Any) -> BaseAlgorithm:
        return PPO("MlpPolicy", venv, seed=seed, policy_kwargs=policy_kwargs, **ppo_kwargs)

    _run_imitation_gail(
        env_id, demos, seed, budget, evaluator, make_learner, n_envs=IMITATION_N_ENVS, normalize_rewards=True, **gail_kwargs
    )


def _run_imitation_gail_off_policy(
    env_id: str,
    demos: Transitions,
    seed: int,
    budget: int,
    evaluator: Evaluator,
    make_learner: Callable[[Any], BaseAlgorithm],
) -> None:
    """imitation's GAIL with an off-policy generator: 1 env, 2048 env steps per round, its tutorial's discriminator."""
    _run_imitation_gail(
        env_id,
        demos,
        seed,
        budget,
        evaluator,
        make_learner,
        n_envs=1,
        demo_batch_size=1024,
        gen_train_timesteps=2048,
        gen_replay_buffer_capacity=2048,
        n_disc_updates_per_round=8,
    )


def run_imitation_gail_dqn(env_id: str, demos: Transitions, seed: int, budget: int, evaluator: Evaluator) -> None:
    """imitation's GAIL with a DQN generator: the same DQN hyperparameters as ours, 2048 env steps per round."""

    def make_learner(venv: Any) -> BaseAlgorithm:
        return DQN("MlpPolicy", venv, seed=seed, **dqn_settings(env_id, "recommended"))

    _run_imitation_gail_off_policy(env_id, demos, seed, budget, evaluator, make_learner)


def run_imitation_gail_sac(env_id: str, demos: Transitions, seed: int, budget: int, evaluator: Evaluator) -> None:
    """imitation's GAIL with a SAC generator (its off-policy path): rl-zoo3's SAC settings, 2048 env steps per round."""

    def make_learner(venv: Any) -> BaseAlgorithm:
        return SAC("MlpPolicy", venv, seed=seed, **continuous_settings(env_id, "sac"))

    _run_imitation_gail_off_policy(env_id, demos, seed, budget, evaluator, make_learner)


def run_bc(env_id: str, demos: Transitions, seed: int, budget: int, evaluator: Evaluator) -> None:
    """imitation's behaviour cloning (no env steps): one evaluation after training, as a reference line."""
    from imitation.algorithms import bc
    from imitation.data import rollout

    venv = make_vec_env(env_id, n_envs=1, seed=seed)
    from imitation.util import logger as imitation_logger

    trainer = bc.BC(
        custom_logger=imitation_logger.configure(format_strs=[]),
        observation_space=venv.observation_space,
        action_space=venv.action_space,
        demonstrations=rollout.flatten_trajectories(to_imitation_trajectories(demos)),
        rng=np.random.default_rng(seed),
    )
    trainer.train(n_epochs=10, progress_bar=False)
    evaluator(trainer.policy, 0)


#: Cheaper discriminator rounds (issue 11): a quarter of the default updates, at four times the learning rate, in
#: minibatches of 128. Measured, not the default: it costs learning in the CartPole tables (docs/tuning_log.md)
CHEAPER_ROUNDS: Dict[str, Any] = dict(update_per_collect=25, batch_size=128, learning_rate=4e-3)

METHODS: Dict[str, Callable[..., None]] = {
    "ours": run_ours,
    "ours_zoo_dqn": partial(run_ours, dqn="zoo"),
    "ours_cheaper_rounds": partial(run_ours, reward_model_kwargs=CHEAPER_ROUNDS),
    "ours_cheaper_rounds_zoo_dqn": partial(run_ours, dqn="zoo", reward_model_kwargs=CHEAPER_ROUNDS),
    "ours_plain_gail": partial(run_ours, reward_model_kwargs=PLAIN_GAIL),
    "imitation_gail_ppo": run_imitation_gail_ppo,
    "imitation_gail_ppo_zoo": partial(run_imitation_gail_ppo, ppo="zoo"),
    "ours_ppo": run_ours_ppo,
    "ours_ppo_zoo": partial(run_ours_ppo, ppo="zoo"),
    "ppo_true_reward": run_ppo,
    "ppo_true_reward_zoo": partial(run_ppo, ppo="zoo"),
    "imitation_gail_ppo_tuned": run_imitation_gail_ppo_tuned,
    "imitation_gail_dqn": run_imitation_gail_dqn,
    "imitation_gail_sac": run_imitation_gail_sac,
    "dqn_true_reward": run_dqn,
    "dqn_true_reward_zoo": partial(run_dqn, dqn="zoo"),
    "bc": run_bc,
    "ours_sac": run_ours_continuous,
    "ours_td3": partial(run_ours_continuous, algorithm="td3"),
    "ours_sac_plain_gail": partial(run_ours_continuous, reward_model_kwargs=PLAIN_GAIL),
    "ours_sac_zoo_gamma": partial(run_ours_continuous, overrides=False),
    "sac_true_reward": run_continuous,
    "td3_true_reward": partial(run_continuous, algorithm="td3"),
}
NEEDS_DEMOS = {
    "ours",
    "ours_zoo_dqn",
    "ours_cheaper_rounds",
    "ours_cheaper_rounds_zoo_dqn",
    "ours_plain_gail",
    "imitation_gail_ppo",
    "imitation_gail_ppo_zoo",
    "imitation_gail_ppo_tuned",
    "imitation_gail_dqn",
    "imitation_gail_sac",
    "ours_ppo",
    "ours_ppo_zoo",
    "bc",
    "ours_sac",
    "ours_td3",
    "ours_sac_plain_gail",
    "ours_sac_zoo_gamma",
}
# Methods whose learner takes only Box actions (SAC, TD3) or only Discrete ones (DQN)
BOX_ONLY = {
    "imitation_gail_sac",
    "ours_sac",
    "ours_td3",
    "ours_sac_plain_gail",
    "ours_sac_zoo_gamma",
    "sac_true_reward",
    "td3_true_reward",
}
DISCRETE_ONLY = {
    "ours",
    "ours_zoo_dqn",
    "ours_cheaper_rounds",
    "ours_cheaper_rounds_zoo_dqn",
    "ours_plain_gail",
    "imitation_gail_dqn",
    "dqn_true_reward",
    "dqn_true_reward_zoo",
}
# Methods that run on some envs only: those it has published settings for
ENVS_ONLY: Dict[str, Tuple[str, ...]] = {"imitation_gail_ppo_tuned": tuple(IMITATION_TUNED_GAIL)}


def method_fits(method: str, env_id: str) -> bool:
    """
    Whether ``method`` runs on ``env_id``: its learner takes the env's actions (SAC and TD3 need Box actions, DQN
    Discrete ones), and it has settings for the env where it needs them (:data:`ENVS_ONLY`).
    """
    if method in ENVS_ONLY and env_id not in ENVS_ONLY[method]:
        return False
    env = gym.make(env_id)
    is_box = isinstance(env.action_space, gym.spaces.Box)
    env.close()
    return not ((method in BOX_ONLY and not is_box) or (method in DISCRETE_ONLY and is_box))


# On-policy learners need more env steps than the off-policy methods: give them 3x the budget
BUDGET_FACTOR: Dict[str, int] = {
    "imitation_gail_ppo": 3,
    "imitation_gail_ppo_zoo": 3,
    "imitation_gail_ppo_tuned": 3,
    "ours_ppo": 3,
    "ours_ppo_zoo": 3,
    "ppo_true_reward": 3,
    "ppo_true_reward_zoo": 3,
}


def method_budget(method: str, budget: int, on_policy_budget: Optional[int] = None) -> int:
    """The env steps one method gets: ``budget`` times its budget factor, or ``on_policy_budget`` for on-policy ones."""
    if method in BUDGET_FACTOR and on_policy_budget is not None:
        return on_policy_budget
    return budget * BUDGET_FACTOR.get(method, 1)


#: The methods that can go on from a checkpoint (the long SAC and TD3 runs of issue 9): ``run(..., checkpoint=...)``
RESUMABLE = {"ours_sac", "ours_td3", "ours_sac_plain_gail", "ours_sac_zoo_gamma", "sac_true_reward", "td3_true_reward"}


def run(
    method: str,
    env_id: str,
    demos: Transitions,
    seed: int,
    budget: int,
    every: int,
    n_eval_episodes: int = 10,
    on_policy_budget: Optional[int] = None,
    checkpoint: Optional[RunCheckpoint] = None,
) -> List[Dict[str, float]]:
    """
    Train one method with its :func:`method_budget` of env steps; return its evaluations. A method of
    :data:`RESUMABLE` given a ``checkpoint`` goes on from the last one there (from scratch when there is none) and
    writes one after each evaluation; the others ignore it and train from scratch.
    """
    evaluator = Evaluator(env_id, seed, every, n_eval_episodes, label=method)
    method_budget_ = method_budget(method, budget, on_policy_budget)
    if method in RESUMABLE and checkpoint is not None:
        METHODS[method](env_id, demos, seed, method_budget_, evaluator, checkpoint=checkpoint)
    else:
        METHODS[method](env_id, demos, seed, method_budget_, evaluator)
    return evaluator.records
