"""Each off-policy family of the guides (QR-DQN, TD3, TQC) takes GailReplayBuffer and GailCallback as DQN and SAC do."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import TD3

from sb3_gail_plugin import GailCallback, GailReplayBuffer, Transitions


def _pendulum_demos(n: int = 64) -> Transitions:
    rng = np.random.default_rng(0)
    return Transitions(
        observations=rng.uniform(-1, 1, (n, 3)).astype(np.float32),
        actions=rng.uniform(-2, 2, (n, 1)).astype(np.float32),
        next_observations=rng.uniform(-1, 1, (n, 3)).astype(np.float32),
        dones=np.zeros(n, dtype=bool),
    )


def _assert_sampled_batches_relabelled(model, callback, to_env_actions) -> None:
    reward_model = callback.reward_model
    assert reward_model.n_updates > 0  # the discriminator trained inside learn()
    np.random.seed(0)
    samples = model.replay_buffer.sample(32)
    expected = reward_model.estimate(samples.observations, to_env_actions(samples.actions), dones=samples.dones)
    th.testing.assert_close(samples.rewards, expected)


def test_qrdqn(cartpole_demos):
    sb3_contrib = pytest.importorskip("sb3_contrib")
    model = sb3_contrib.QRDQN(
        "MlpPolicy",
        "CartPole-v1",
        replay_buffer_class=GailReplayBuffer,
        learning_starts=100,
        train_freq=64,
        buffer_size=1000,
        policy_kwargs=dict(net_arch=[16]),
        seed=0,
    )
    callback = GailCallback(cartpole_demos, update_per_collect=2)
    model.learn(300, callback=callback)
    _assert_sampled_batches_relabelled(model, callback, lambda actions: actions)


@pytest.mark.parametrize("algorithm", ["TD3", "TQC"])
def test_continuous_off_policy(algorithm):
    if algorithm == "TQC":
        algorithm_class = pytest.importorskip("sb3_contrib").TQC
    else:
        algorithm_class = TD3
    model = algorithm_class(
        "MlpPolicy",
        gym.make("Pendulum-v1"),
        replay_buffer_class=GailReplayBuffer,
        learning_starts=50,
        buffer_size=1000,
        policy_kwargs=dict(net_arch=[16]),
        seed=0,
    )
    callback = GailCallback(_pendulum_demos(), update_per_collect=2, batch_size=16)
    model.learn(120, callback=callback)
    # SB3 stores Box actions rescaled to [-1, 1]; Pendulum's bounds are [-2, 2]
    _assert_sampled_batches_relabelled(model, callback, lambda actions: 2.0 * actions)
