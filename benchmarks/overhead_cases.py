"""
The learners that benchmarks.overhead_scaling times with and without GAIL, the synthetic env of its observation-size
table, and the memory accounting of its memory table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from sb3_gail_plugin import GailCallback, GailReplayBuffer, GailRewardModel, Transitions, collect_demonstrations
from sb3_gail_plugin.hyperparams import GAIL_DQN_CARTPOLE, ZOO_PPO_CARTPOLE, ZOO_PPO_CARTPOLE_N_ENVS


class NoiseEnv(gym.Env):
    """
    A synthetic env of any observation size: Gaussian observations, two actions, reward 1, a termination with
    probability 1 % per step and a time limit of 500 steps (from ``make_vec_env``'s ``TimeLimit``). Its steps cost
    next to nothing, so the table that uses it shows what the observation size costs the learner and GAIL.

    :param obs_dim: Observation size
    """

    def __init__(self, obs_dim: int = 4) -> None:
        self.observation_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.rng = np.random.default_rng(0)

    def _obs(self) -> np.ndarray:
        return self.rng.standard_normal(self.observation_space.shape).astype(np.float32)  # type: ignore[arg-type]

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None) -> Tuple[np.ndarray, Dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        return self._obs(), {}

    def step(self, action: Any) -> Tuple[np.ndarray, float, bool, bool, Dict]:
        return self._obs(), 1.0, bool(self.rng.random() < 0.01), False, {}


class RandomPolicy:
    """Uniform random actions with SB3's ``predict`` signature: demonstrations for envs without an expert here."""

    def __init__(self, action_space: spaces.Space, seed: int = 0) -> None:
        self.action_space = action_space
        self.action_space.seed(seed)

    def predict(self, obs: Any, deterministic: bool = True, **_: Any) -> Tuple[np.ndarray, None]:
        return np.array([self.action_space.sample() for _ in range(len(obs))]), None


def noise_env(obs_dim: int) -> Callable[[], gym.Env]:
    def make() -> gym.Env:
        return gym.wrappers.TimeLimit(NoiseEnv(obs_dim), max_episode_steps=500)

    return make


def random_demonstrations(env_id: Any, n_episodes: int) -> Transitions:
    """Episodes of uniform random actions: the overhead does not depend on how good the demonstrations are."""
    env = make_vec_env(env_id, n_envs=1, seed=123)
    return collect_demonstrations(RandomPolicy(env.action_space), env, n_episodes=n_episodes)


@dataclass
class Learner:
    """
    One algorithm with its settings, trained with GAIL (``GailCallback`` with the package defaults, and
    ``GailReplayBuffer`` off-policy) or without it (the plain SB3 learner on the env reward).

    :param name: Row name in the report
    :param algorithm: ``"dqn"``, ``"sac"`` or ``"ppo"``
    :param env: Env id or env factory
    :param demonstrations: Expert transitions for the GAIL runs
    :param n_envs: Number of envs
    :param subprocess: Run the envs in subprocesses (``SubprocVecEnv``)
    :param settings: The algorithm's hyperparameters
    :param reward_model_kwargs: ``GailCallback``'s reward model arguments (the package defaults when empty)
    """

    name: str
    algorithm: str
    env: Any
    demonstrations: Transitions
    n_envs: int = 1
    subprocess: bool = False
    settings: Dict[str, Any] = field(default_factory=dict)
    reward_model_kwargs: Dict[str, Any] = field(default_factory=dict)

    def make_env(self, seed: int = 0) -> VecEnv:
        return make_vec_env(
            self.env, n_envs=self.n_envs, seed=seed, vec_env_cls=SubprocVecEnv if self.subprocess else DummyVecEnv
        )

    def make_model(self, env: VecEnv, gail: bool, seed: int = 0, **overrides: Any) -> BaseAlgorithm:
        settings = {**self.settings, **overrides}
        if self.algorithm == "ppo":
            return PPO("MlpPolicy", env, seed=seed, **settings)
        algorithm = {"dqn": DQN, "sac": SAC}[self.algorithm]
        buffer_class = GailReplayBuffer if gail else None
        return algorithm("MlpPolicy", env, replay_buffer_class=buffer_class, seed=seed, **settings)  # type: ignore[arg-type]

    def learn_seconds(self, steps: int, gail: bool, probe: Optional[BaseCallback] = None) -> float:
        """Wall seconds of ``learn(steps)`` from scratch (building the model and the envs excluded)."""
        env = self.make_env()
        model = self.make_model(env, gail)
        callbacks: List[BaseCallback] = [GailCallback(self.demonstrations, **self.reward_model_kwargs)] if gail else []
        if probe is not None:
            callbacks.append(probe)
        began = time.perf_counter()
        model.learn(steps, callback=callbacks or None)
        seconds = time.perf_counter() - began
        env.close()
        return seconds


def dqn_cartpole(demonstrations: Transitions, **kwargs: Any) -> Learner:
    """GAIL-DQN with the package defaults and GAIL_DQN_CARTPOLE, as in the issue's measurements."""
    return Learner("DQN, CartPole-v1", "dqn", "CartPole-v1", demonstrations, settings=dict(GAIL_DQN_CARTPOLE), **kwargs)


def sac_pendulum(demonstrations: Transitions) -> Learner:
    """SAC with SB3's defaults on Pendulum-v1."""
    return Learner("SAC, Pendulum-v1", "sac", "Pendulum-v1", demonstrations)


def ppo_cartpole(demonstrations: Transitions) -> Learner:
    """PPO with rl-zoo3's CartPole-v1 settings and 8 envs (GAIL: the on-policy defaults)."""
    return Learner(
        "PPO, CartPole-v1 (rl-zoo3, 8 envs)",
        "ppo",
        "CartPole-v1",
        demonstrations,
        n_envs=ZOO_PPO_CARTPOLE_N_ENVS,
        settings=dict(ZOO_PPO_CARTPOLE),
    )


def gradient_step_seconds(
    learner: Learner, fill_steps: int, gradient_steps: int, rounds: int
) -> Tuple[List[float], List[float]]:
    """
    Seconds of ``rounds`` rounds of ``gradient_steps`` DQN gradient steps with a plain ``ReplayBuffer`` and with a
    ``GailReplayBuffer`` (a trained reward model attached: relabelling, expert mixing; each round's batches announced
    with ``plan_samples`` as ``GailCallback`` announces them), interleaved in one process,
    on buffers filled alike (the same seeded random warm-up of ``fill_steps`` env steps).

    :return: The plain rounds' seconds and the GAIL rounds' seconds
    """
    models: Dict[bool, Any] = {}
    for gail in (False, True):
        env = learner.make_env()
        model = learner.make_model(env, gail, learning_starts=10**12)  # random actions, no gradient step in learn()
        model.learn(fill_steps)
        models[gail] = model
    buffer = models[True].replay_buffer
    reward_model = GailRewardModel(
        buffer.observation_space, buffer.action_space, learner.demonstrations, gamma=models[True].gamma, seed=0
    )
    reward_model.train(buffer.sample_transitions(reward_model.batch_size * reward_model.update_per_collect))
    buffer.set_reward_model(reward_model)
    seconds: Dict[bool, List[float]] = {False: [], True: []}
    batch_size = learner.settings.get("batch_size", 64)
    for round_index in range(rounds):
        for gail in (False, True) if round_index % 2 == 0 else (True, False):
            began = time.perf_counter()
            if gail:  # what GailCallback does at each rollout end: the train() that follows samples these batches
                buffer.plan_samples(gradient_steps, batch_size)
            models[gail].train(gradient_steps=gradient_steps, batch_size=batch_size)
            seconds[gail].append(time.perf_counter() - began)
    return seconds[False], seconds[True]


def _nbytes(value: Any) -> int:
    if isinstance(value, th.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sum(_nbytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(item) for item in value)
    if isinstance(value, Transitions):
        return sum(
            _nbytes(getattr(value, name)) for name in ("observations", "actions", "next_observations", "dones", "timeouts")
        )
    return 0


def reward_model_bytes(reward_model: GailRewardModel) -> Dict[str, int]:
    """Bytes the reward model holds: weights and optimiser state, expert tensors, and the collected set."""
    discriminator = reward_model.discriminator
    expert = reward_model._expert
    return dict(
        weights=_nbytes(list(discriminator.parameters()) + list(discriminator.buffers()))
        + _nbytes([state for per_param in reward_model.optimizer.state.values() for state in per_param.values()]),
        expert=_nbytes([expert.obs, expert.actions, expert.next_obs, expert.absorbing, expert.terminals]),
        collected=_nbytes(reward_model._collected.parts),
    )


class CollectedSetProbe(BaseCallback):
    """The largest collected set (bytes and transitions) over a run, checked after every env step."""

    def __init__(self, gail: GailCallback) -> None:
        super().__init__()
        self.gail = gail
        self.max_bytes = 0
        self.max_transitions = 0

    def _on_step(self) -> bool:
        reward_model = self.gail.reward_model
        assert reward_model is not None
        self.max_bytes = max(self.max_bytes, reward_model_bytes(reward_model)["collected"])
        self.max_transitions = max(self.max_transitions, reward_model.n_collected)
        return True


def memory_row(learner: Learner, steps: int, buffer_size: int, agent_data_source: str) -> Dict[str, Any]:
    """Train GAIL for ``steps`` env steps; the bytes the reward model and the buffer's additions hold at the end."""
    env = learner.make_env()
    model = learner.make_model(env, gail=True, buffer_size=buffer_size)
    gail = GailCallback(learner.demonstrations, agent_data_source=agent_data_source)
    probe = CollectedSetProbe(gail)
    model.learn(steps, callback=[gail, probe])
    assert gail.reward_model is not None
    buffer = model.replay_buffer  # type: ignore[attr-defined]
    sb3_buffer = _nbytes(
        [buffer.observations, buffer.next_observations, buffer.actions, buffer.rewards, buffer.dones, buffer.timeouts]
    )
    env.close()
    return dict(
        **reward_model_bytes(gail.reward_model),
        collected_max=probe.max_bytes,
        collected_max_transitions=probe.max_transitions,
        buffer_extra=_nbytes(buffer.truncations),
        sb3_buffer=sb3_buffer,
    )
