"""Each off-policy family of the guides (QR-DQN, TD3, TQC, CrossQ) takes GailReplayBuffer and GailCallback as DQN does."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import torch.nn.functional as F
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.logger import Logger

from sb3_gail_plugin import GailCallback, GailReplayBuffer, GailRewardModel
from tests.pendulum_data import random_pendulum_demos


def _spy_on_training_batches(model, monkeypatch):
    """The batches the algorithm's own ``train()`` samples, each with the discriminator's update count at the time."""
    buffer, batches = model.replay_buffer, []
    sample = buffer.sample

    def spy(*args, **kwargs):
        batches.append((sample(*args, **kwargs), buffer.reward_model.n_updates))
        return batches[-1][0]

    monkeypatch.setattr(buffer, "sample", spy)
    return batches


def _assert_training_batches_relabelled(batches, callback, to_env_actions) -> None:
    """The last batches ``train()`` got carry the rewards of the discriminator as it stands after ``learn()``."""
    reward_model = callback.reward_model
    assert reward_model.n_updates > 0  # the discriminator trained inside learn()
    latest = [batch for batch, n_updates in batches if n_updates == reward_model.n_updates]
    assert latest, "train() sampled no batch after the discriminator's last update"
    for samples in latest:
        expected = reward_model.estimate(samples.observations, to_env_actions(samples.actions), dones=samples.dones)
        th.testing.assert_close(samples.rewards, expected)


def test_qrdqn(cartpole_demos, monkeypatch):
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
    batches = _spy_on_training_batches(model, monkeypatch)
    model.learn(300, callback=callback)
    _assert_training_batches_relabelled(batches, callback, lambda actions: actions)


@pytest.mark.parametrize("algorithm", ["TD3", "TQC", "CrossQ"])
def test_continuous_off_policy(algorithm, monkeypatch):
    if algorithm == "TD3":
        algorithm_class = TD3
    else:
        algorithm_class = getattr(pytest.importorskip("sb3_contrib"), algorithm, None)
        if algorithm_class is None:
            pytest.skip(f"this sb3-contrib has no {algorithm}")
    model = algorithm_class(
        "MlpPolicy",
        gym.make("Pendulum-v1"),
        replay_buffer_class=GailReplayBuffer,
        learning_starts=50,
        buffer_size=1000,
        policy_kwargs=dict(net_arch=[16]),
        seed=0,
    )
    callback = GailCallback(random_pendulum_demos(), update_per_collect=2, batch_size=16)
    batches = _spy_on_training_batches(model, monkeypatch)
    model.learn(120, callback=callback)
    # SB3 stores Box actions rescaled to [-1, 1]; Pendulum's bounds are [-2, 2]
    _assert_training_batches_relabelled(batches, callback, lambda actions: 2.0 * actions)


@pytest.mark.parametrize("algorithm_class", [SAC, TD3])
def test_absorbing_value_folds_exactly_into_the_critic_target(algorithm_class, monkeypatch):
    """
    SAC's and TD3's critic target is ``r + (1 - done) * gamma * next_q``: with the absorbing state's value folded
    into terminal rewards it equals the target with an explicit absorbing state, ``r + gamma * r_abs / (1 - gamma)``
    (its value under any policy), at terminations; truncations and other steps bootstrap with no absorbing value.
    """
    env = gym.make("Pendulum-v1")
    gamma, n, next_q = 0.9, 60, 5.0
    settings = dict(ent_coef=0.0) if algorithm_class is SAC else {}  # SAC: the target's entropy term off, next_q alone
    model = algorithm_class(
        "MlpPolicy",
        env,
        replay_buffer_class=GailReplayBuffer,
        gamma=gamma,
        policy_kwargs=dict(net_arch=[8]),
        seed=0,
        **settings,
    )
    model.set_logger(Logger(folder=None, output_formats=[]))  # train() outside learn()
    buffer = model.replay_buffer
    rng = np.random.default_rng(0)
    kinds = np.array(["step", "termination", "truncation"] * (n // 3))
    for i, kind in enumerate(kinds):
        obs = np.array([[i / n, *rng.uniform(-1, 1, 2)]], dtype=np.float32)  # the row's index in its first feature
        info = {"TimeLimit.truncated": True} if kind == "truncation" else {}
        buffer.add(obs, obs + 0.1, rng.uniform(-1, 1, (1, 1)), np.zeros(1), np.array([kind != "step"]), [info])
    demos = random_pendulum_demos()
    demos.dones[::3] = True  # expert terminations: an absorbing state the discriminator has seen
    demos.observations[:, 0] = -1.0 - np.arange(len(demos)) / n  # the expert row's index, apart from agent rows
    reward_model = GailRewardModel(
        env.observation_space, env.action_space, demos, gamma=gamma, policy_expert_fraction=0.25, seed=0
    )
    reward_model.train(demos)
    buffer.set_reward_model(reward_model)
    n_critics = model.critic_target.n_critics
    monkeypatch.setattr(
        model.critic_target, "forward", lambda obs, actions: tuple(th.full((len(obs), 1), next_q) for _ in range(n_critics))
    )
    targets = []
    mse_loss = F.mse_loss
    monkeypatch.setattr(F, "mse_loss", lambda current, target: targets.append(target.detach()) or mse_loss(current, target))
    batches = _spy_on_training_batches(model, monkeypatch)
    model.train(gradient_steps=1, batch_size=48)

    batch = batches[0][0]
    first_feature = batch.observations[:, 0].numpy()
    expert = first_feature < -0.5
    rows = np.rint(np.abs(first_feature) * n).astype(int)
    kind = kinds[np.where(expert, 0, rows)]
    expert_rows = np.rint((-first_feature[expert] - 1.0) * n).astype(int)
    kind[expert] = np.where(demos.dones[expert_rows], "termination", "step")  # expert rows: no truncations
    assert expert.sum() == 12 and (kind[expert] == "termination").any()  # a quarter of the batch, some terminal
    # mixed-in expert actions arrive in SB3's stored units: Pendulum's torques in [-2, 2] halved to [-1, 1]
    np.testing.assert_allclose(batch.actions[expert].numpy(), demos.actions[expert_rows] / 2.0, rtol=1e-6)
    plain = reward_model.estimate(batch.observations, 2.0 * batch.actions).reshape(-1)  # no fold: env actions
    absorbing_value = reward_model._absorbing_reward().item() / (1.0 - gamma)
    assert abs(absorbing_value - next_q) > 1.0 and abs(absorbing_value) > 0.5  # a fold that could not go unseen
    expected = np.where(kind == "termination", plain + gamma * absorbing_value, plain + gamma * next_q)
    assert {"step", "termination", "truncation"} <= set(kind)
    np.testing.assert_allclose(targets[0].numpy().reshape(-1), expected, rtol=1e-5, atol=1e-5)
