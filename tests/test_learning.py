from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import DQN, SAC
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_gail_plugin import GailCallback, GailReplayBuffer, load_demonstrations
from sb3_gail_plugin.experts import make_expert_demonstrations
from sb3_gail_plugin.hyperparams import GAIL_DQN_CARTPOLE, sac_settings

SAC_PENDULUM = sac_settings("Pendulum-v1")  # rl-zoo3's


def _train_gail_dqn(demonstrations, seed: int, budget: int):
    model = DQN("MlpPolicy", "CartPole-v1", replay_buffer_class=GailReplayBuffer, seed=seed, **GAIL_DQN_CARTPOLE)
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=1000 + seed)
    evaluation = EvalCallback(eval_env, eval_freq=5000, n_eval_episodes=10, verbose=0)
    gail = GailCallback(demonstrations)
    model.learn(budget, callback=[gail, evaluation])
    return model, evaluation, gail


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_gail_dqn_reaches_expert_return_from_5_episodes(cartpole_demos, seed):
    """A fixed budget, then the final policy is evaluated on the true reward, which DQN never saw."""
    assert len(cartpole_demos.episode_returns()) == 5
    model, evaluation, gail = _train_gail_dqn(cartpole_demos, seed, budget=30_000)
    assert evaluation.best_mean_reward >= 475, f"best true return {evaluation.best_mean_reward}"
    mean, _ = evaluate_policy(model, make_vec_env("CartPole-v1", seed=7), n_eval_episodes=20, deterministic=True)
    assert mean >= 475
    assert gail.reward_model.n_updates > 0
    # the rewards DQN learned from are the discriminator's, not the env's (1 per step)
    np.random.seed(0)
    assert not np.allclose(model.replay_buffer.sample(256).rewards.numpy(), 1.0)


def test_random_policy_is_far_below(cartpole_demos):
    """Sanity check of the evaluation above: an untrained DQN does not pass it."""
    model = DQN("MlpPolicy", "CartPole-v1", replay_buffer_class=GailReplayBuffer, seed=0, **GAIL_DQN_CARTPOLE)
    mean, _ = evaluate_policy(model, make_vec_env("CartPole-v1", seed=7), n_eval_episodes=10, deterministic=True)
    assert mean < 200


@pytest.mark.slow
def test_from_scratch_ppo_expert_to_gail(tmp_path):
    """The README's main job in small: train a PPO expert, record 5 episodes, train GAIL-DQN."""
    demonstrations = make_expert_demonstrations("CartPole-v1", tmp_path / "demos.npz", n_episodes=5)
    assert np.mean(demonstrations.episode_returns()) >= 475
    _, evaluation, _ = _train_gail_dqn(load_demonstrations(tmp_path / "demos.npz"), seed=0, budget=30_000)
    assert evaluation.best_mean_reward >= 475


PENDULUM_DEMOS = Path(__file__).resolve().parents[1] / "benchmarks" / "experts" / "Pendulum-v1_expert_demos.npz"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_gail_sac_learns_pendulum_from_5_expert_episodes(seed):
    """The continuous path end to end: Box actions stored rescaled to [-1, 1], relabelled in env units, expert mixing."""
    demos = load_demonstrations(PENDULUM_DEMOS)
    demos = demos[np.arange(np.flatnonzero(demos.dones)[4] + 1)]  # the committed SAC expert's first 5 episodes
    assert np.mean(demos.episode_returns()) > -200
    model = SAC("MlpPolicy", "Pendulum-v1", replay_buffer_class=GailReplayBuffer, seed=seed, **SAC_PENDULUM)
    model.learn(4000, callback=GailCallback(demos))
    mean, _ = evaluate_policy(model, make_vec_env("Pendulum-v1", seed=7), n_eval_episodes=10, deterministic=True)
    assert mean >= -300, f"true return {mean} (expert about -120, random actions about -1,200)"
    untrained = SAC("MlpPolicy", "Pendulum-v1", seed=seed, **SAC_PENDULUM)
    untrained_mean, _ = evaluate_policy(untrained, make_vec_env("Pendulum-v1", seed=7), n_eval_episodes=10)
    assert untrained_mean < -600  # the bar is far from where training starts
