"""Issue 4: reward forms, absorbing states, regularisers, input modes, expert mixing, replay-sourced D data."""

import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor

from sb3_gail_plugin import GailCallback, GailReplayBuffer, GailRewardModel, Transitions, collect_demonstrations
from sb3_gail_plugin.demonstrations import load_demonstrations, save_demonstrations, subsample_episodes
from tests.chain_env import GoalChainEnv, WalkRight


@pytest.fixture(scope="module")
def chain_demos() -> Transitions:
    return collect_demonstrations(WalkRight(), GoalChainEnv(), n_episodes=5, seed=0)


def _spaces(env=None):
    env = env or GoalChainEnv()
    return env.observation_space, env.action_space


def test_chain_expert_terminates(chain_demos):
    assert len(chain_demos) == 25 and chain_demos.dones.sum() == 5 and not chain_demos.timeouts.any()


def test_absorbing_samples_for_terminations_not_truncations():
    obs = np.eye(6, dtype=np.float32)[[0, 1, 2, 3]]
    demos = Transitions(
        obs, np.ones(4, dtype=np.int64), obs, dones=[True, True, False, True], timeouts=[False, True, False, False]
    )
    model = GailRewardModel(*_spaces(), demos, absorbing=True, device="cpu")
    expert = model._expert
    assert len(expert) == 4 + 2  # two terminations (rows 0 and 3), the truncation (row 1) has none
    np.testing.assert_array_equal(expert.absorbing.numpy(), [0, 0, 0, 0, 1, 1])
    # an absorbing sample's features are zero but for the indicator
    features = model.discriminator.features(*expert.inputs(th.arange(6)))
    assert features.shape == (6, 6 + 2 + 1)
    np.testing.assert_array_equal(features[4:, :-1].numpy(), 0.0)
    np.testing.assert_array_equal(features[:, -1].numpy(), [0, 0, 0, 0, 1, 1])
    assert len(GailRewardModel(*_spaces(), demos, absorbing=False, device="cpu")._expert) == 4


def test_estimate_folds_the_absorbing_value_into_terminal_rewards(chain_demos):
    model = GailRewardModel(*_spaces(), chain_demos, absorbing=True, reward_form="airl", gamma=0.9, device="cpu")
    obs, actions = chain_demos.observations[:4], chain_demos.actions[:4]
    dones = np.array([0.0, 1.0, 0.0, 1.0])
    plain = model.estimate(obs, actions)
    folded = model.estimate(obs, actions, dones=dones)
    r_abs = model._absorbing_reward().item()
    np.testing.assert_allclose((folded - plain).numpy().ravel(), dones * 0.9 / 0.1 * r_abs, rtol=1e-5)
    # without absorbing states, dones change nothing
    plain_model = GailRewardModel(*_spaces(), chain_demos, absorbing=False, device="cpu")
    th.testing.assert_close(plain_model.estimate(obs, actions, dones=dones), plain_model.estimate(obs, actions))


def test_centering_on_the_absorbing_state_shifts_every_reward_and_folds_nothing(chain_demos):
    kwargs = dict(absorbing=True, reward_form="airl", gamma=0.9, reward_clip=None, device="cpu", seed=0)
    folded_model = GailRewardModel(*_spaces(), chain_demos, center_on_absorbing=False, **kwargs)
    model = GailRewardModel(*_spaces(), chain_demos, center_on_absorbing=True, **kwargs)
    model.discriminator.load_state_dict(folded_model.discriminator.state_dict())
    obs, actions = chain_demos.observations[:4], chain_demos.actions[:4]
    dones = np.array([0.0, 1.0, 0.0, 1.0])
    r_abs = model._absorbing_reward().item()
    assert abs(r_abs) > 1e-3
    centered = model.estimate(obs, actions, dones=dones)
    th.testing.assert_close(centered, model.estimate(obs, actions))  # terminals get no folded value
    th.testing.assert_close(centered, folded_model.estimate(obs, actions) - r_abs)
    # the clip applies to the centred reward: a step better than ending stays better than ending
    clipped = GailRewardModel(*_spaces(), chain_demos, center_on_absorbing=True, **{**kwargs, "reward_clip": 0.01})
    clipped.discriminator.load_state_dict(folded_model.discriminator.state_dict())
    th.testing.assert_close(clipped.estimate(obs, actions), centered.clamp(-0.01, 0.01))


def _penalty_and_interpolate_norms(model, expert_features, agent_features, real, seed):
    """The model's penalty, and the input-gradient norms at the same interpolates computed independently."""
    model.generator.manual_seed(seed)
    penalty = model._gradient_penalty(expert_features, agent_features, real)
    model.generator.manual_seed(seed)
    alpha = th.rand(len(expert_features), 1, generator=model.generator)
    mixed = (alpha * expert_features + (1 - alpha) * agent_features).requires_grad_(True)
    (grads,) = th.autograd.grad(model.discriminator.net(mixed).sum(), mixed)
    return penalty, grads.norm(dim=1)


def test_gradient_penalty_is_zero_gradient_safe_and_matches_its_formula(chain_demos):
    model = GailRewardModel(*_spaces(), chain_demos, gradient_penalty=10.0, hidden_dims=[8], device="cpu", seed=0)
    expert_features = model.discriminator.features(*model._expert.inputs(th.arange(8)))
    agent_features = th.rand(8, expert_features.shape[1])
    agent_features[:, -1] = 0.0  # no absorbing samples: every pair counts
    every_pair = th.ones(8, dtype=th.bool)
    penalty, norms = _penalty_and_interpolate_norms(model, expert_features, agent_features, every_pair, seed=5)
    th.testing.assert_close(penalty, ((norms - 1) ** 2).mean())
    # a discriminator with zero input gradient: penalty exactly 1, and training stays finite
    with th.no_grad():
        for parameter in model.discriminator.parameters():
            parameter.zero_()
    assert model._gradient_penalty(expert_features, agent_features, every_pair).item() == pytest.approx(1.0, abs=1e-5)
    model.collect_data(chain_demos.observations, 1 - chain_demos.actions, chain_demos.next_observations, chain_demos.dones)
    stats = model.train()
    assert np.isfinite(stats["grad_penalty"]) and np.isfinite(stats["disc_loss"])
    assert all(th.all(th.isfinite(p)) for p in model.discriminator.parameters())


def test_gradient_penalty_leaves_out_pairs_with_an_absorbing_sample(chain_demos):
    model = GailRewardModel(*_spaces(), chain_demos, gradient_penalty=1.0, hidden_dims=[8], device="cpu", seed=0)
    expert_features = model.discriminator.features(*model._expert.inputs(th.arange(4)))
    agent_features = th.rand(4, expert_features.shape[1])
    agent_features[:, -1] = th.tensor([0.0, 1.0, 0.0, 1.0])
    agent_features[1::2, :-1] = 0.0  # absorbing samples: features zero but for the flag
    real = th.tensor([True, False, True, False])
    penalty, norms = _penalty_and_interpolate_norms(model, expert_features, agent_features, real, seed=3)
    th.testing.assert_close(penalty, ((norms[[0, 2]] - 1) ** 2).mean())
    # only absorbing pairs: no penalty, and still a tensor that backpropagates
    only_absorbing = model._gradient_penalty(expert_features[1::2], agent_features[1::2], real[1::2])
    assert only_absorbing.item() == 0.0 and only_absorbing.requires_grad


def test_training_leaves_out_exactly_the_pairs_with_an_absorbing_sample(chain_demos, monkeypatch):
    model = GailRewardModel(*_spaces(), chain_demos, gradient_penalty=1.0, update_per_collect=20, device="cpu", seed=0)
    seen = []
    penalty = model._gradient_penalty

    def recording_penalty(expert_features, agent_features, real):
        seen.append(((expert_features[:, -1] == 0) & (agent_features[:, -1] == 0), real))  # last feature: the flag
        return penalty(expert_features, agent_features, real)

    monkeypatch.setattr(model, "_gradient_penalty", recording_penalty)
    model.collect_data(chain_demos.observations, 1 - chain_demos.actions, chain_demos.next_observations, chain_demos.dones)
    model.train()
    assert len(seen) == 20
    assert all(th.equal(from_features, real) for from_features, real in seen)
    assert any(not bool(real.all()) for _, real in seen)  # some pairs were left out


def test_gradient_penalty_changes_the_loss_and_flattens_d(chain_demos):
    def gradient_norm(coefficient: float) -> float:
        model = GailRewardModel(
            *_spaces(), chain_demos, gradient_penalty=coefficient, update_per_collect=200, device="cpu", seed=0
        )
        th.manual_seed(0)
        model.collect_data(chain_demos.observations, 1 - chain_demos.actions, chain_demos.next_observations, chain_demos.dones)
        model.train()
        features = model.discriminator.features(*model._expert.inputs(th.arange(20))).requires_grad_(True)
        (grads,) = th.autograd.grad(model.discriminator.net(features).sum(), features)
        return grads.norm(dim=1).mean().item()

    assert gradient_norm(10.0) < 0.5 * gradient_norm(0.0)


def test_regularisers_and_label_smoothing_train(chain_demos):
    model = GailRewardModel(
        *_spaces(), chain_demos, spectral_norm=True, entropy_coef=0.1, label_smoothing=0.2, device="cpu", seed=0
    )
    model.collect_data(chain_demos.observations, 1 - chain_demos.actions, chain_demos.next_observations, chain_demos.dones)
    stats = model.train()
    assert stats["expert_acc"] > 0.5 and np.isfinite(stats["disc_loss"])
    # label smoothing keeps the logits bounded: at the optimum D = 0.8 on expert data, logit log(4)
    assert model.discriminator(*model._expert.inputs(th.arange(25))[:2]).max().item() < 3.0


def test_observation_and_reward_normalisation_round_trip(chain_demos, tmp_path):
    model = GailRewardModel(
        *_spaces(), chain_demos, normalize_obs=True, normalize_reward=True, reward_clip=None, device="cpu", seed=0
    )
    features = chain_demos.observations
    np.testing.assert_allclose(model.discriminator.obs_mean.numpy(), features.mean(axis=0), atol=1e-6)
    model.collect_data(chain_demos.observations, 1 - chain_demos.actions, chain_demos.next_observations, chain_demos.dones)
    model.train()
    assert model.reward_stats.count > 1
    model.save(tmp_path / "rm.pt")
    loaded = GailRewardModel.load(tmp_path / "rm.pt", device="cpu")
    th.testing.assert_close(loaded.discriminator.obs_mean, model.discriminator.obs_mean)
    th.testing.assert_close(loaded.discriminator.obs_std, model.discriminator.obs_std)
    assert loaded.reward_stats.mean == model.reward_stats.mean and loaded.reward_stats.var == model.reward_stats.var
    th.testing.assert_close(loaded.estimate(features, chain_demos.actions), model.estimate(features, chain_demos.actions))
    raw = model._raw_rewards(th.as_tensor(features), th.as_tensor(chain_demos.actions), None)
    expected = (raw - model.reward_stats.mean) / np.sqrt(model.reward_stats.var + 1e-8)
    th.testing.assert_close(model.estimate(features, chain_demos.actions).ravel(), expected.float())


def test_reward_clip(chain_demos):
    model = GailRewardModel(*_spaces(), chain_demos, reward_form="airl", reward_clip=0.01, device="cpu")
    rewards = model.estimate(chain_demos.observations, chain_demos.actions)
    assert rewards.abs().max().item() <= 0.01


def test_state_only_demonstrations(chain_demos, tmp_path):
    path = save_demonstrations(chain_demos.without_actions(), tmp_path / "no_actions.npz")
    demos = load_demonstrations(path)
    assert demos.actions is None
    with pytest.raises(ValueError, match=r"have no actions.*inputs='ss'"):
        GailRewardModel(*_spaces(), demos)
    model = GailRewardModel(*_spaces(), demos, inputs="ss", device="cpu")
    assert model.estimate(chain_demos.observations, next_obs=chain_demos.next_observations).shape == (25, 1)
    with pytest.raises(ValueError, match="next observations"):
        model.estimate(chain_demos.observations)
    sas = GailRewardModel(*_spaces(), chain_demos, inputs="sas", absorbing=False, device="cpu")
    assert sas.discriminator.features(th.zeros(2, 6), th.zeros(2, dtype=th.long), th.zeros(2, 6)).shape == (2, 14)


def test_subsampling_on_load(chain_demos):
    sub = load_demonstrations(chain_demos, subsample_every=2, seed=0)
    assert 10 <= len(sub) <= 15
    assert len(subsample_episodes(chain_demos, 1)) == 25
    with pytest.raises(ValueError, match="subsample_every"):
        subsample_episodes(chain_demos, 0)


def test_policy_batches_mix_expert_transitions(chain_demos):
    env = GoalChainEnv()
    model = GailRewardModel(*_spaces(env), chain_demos, policy_expert_fraction=0.25, absorbing=True, gamma=0.9, device="cpu")
    buffer = GailReplayBuffer(100, env.observation_space, env.action_space)
    for _i in range(20):
        obs = np.eye(6, dtype=np.float32)[[0]]
        buffer.add(obs, obs, np.array([[0]]), np.array([0.0]), np.array([False]), [{}])
    buffer.set_reward_model(model)
    samples = buffer.sample(16)
    # the first 12 rows come from the buffer (position 0, action 0), the last 4 are expert rows (action 1)
    np.testing.assert_array_equal(samples.actions[:12].numpy().ravel(), 0)
    np.testing.assert_array_equal(samples.actions[12:].numpy().ravel(), 1)
    th.testing.assert_close(
        samples.rewards, model.estimate(samples.observations, samples.actions, samples.next_observations, samples.dones)
    )
    # each expert row is a real expert transition, with its termination flag (the chain's episodes end at the goal)
    expert_obs = chain_demos.observations.argmax(axis=1)
    for row in range(12, 16):
        position = int(samples.observations[row].argmax())
        assert samples.observations[row].sum() == 1 and position in expert_obs
        assert int(samples.next_observations[row].argmax()) == position + 1
        assert samples.dones[row].item() == float(position + 1 == 5)


def test_replay_sourced_discriminator_data(chain_demos):
    env = make_vec_env(GoalChainEnv, n_envs=2, seed=0)
    model = DQN(
        "MlpPolicy",
        env,
        replay_buffer_class=GailReplayBuffer,
        learning_starts=50,
        train_freq=32,
        policy_kwargs=dict(net_arch=[16]),
    )
    gail = GailCallback(chain_demos, agent_data_source="replay", replay_window=200, batch_size=16, update_per_collect=4)
    model.learn(400, callback=gail)
    assert gail.last_stats["n_agent_transitions"] == 16 * 4
    sampled = model.replay_buffer.sample_transitions(50, window=20)
    assert len(sampled) == 50 and sampled.actions.shape == (50,)


def test_n_step_is_refused(chain_demos):
    env = GoalChainEnv()
    with pytest.raises(ValueError, match="n-step"):
        GailReplayBuffer(100, env.observation_space, env.action_space, n_steps=3, gamma=0.99)
    try:
        model = DQN("MlpPolicy", env, replay_buffer_class=GailReplayBuffer, n_steps=3)
    except TypeError:
        pytest.skip("this SB3 version has no n-step returns")
    with pytest.raises(ValueError, match="n-step"):
        model.learn(10, callback=GailCallback(chain_demos))


def _goal_rate(demos: Transitions, seed: int, **reward_kwargs) -> float:
    """Train GAIL-DQN on the chain and return the fraction of evaluation episodes that reach the goal."""
    env = make_vec_env(GoalChainEnv, n_envs=1, seed=seed)
    model = DQN(
        "MlpPolicy",
        env,
        replay_buffer_class=GailReplayBuffer,
        seed=seed,
        learning_starts=200,
        train_freq=16,
        gradient_steps=8,
        target_update_interval=200,
        exploration_fraction=0.3,
        exploration_final_eps=0.05,
        gamma=0.95,
        policy_kwargs=dict(net_arch=[32]),
    )
    model.learn(6000, callback=GailCallback(demos, update_per_collect=20, **reward_kwargs))
    eval_env = Monitor(GoalChainEnv())
    reached = 0
    for episode in range(10):
        obs, _ = eval_env.reset(seed=episode)
        for _ in range(eval_env.unwrapped.max_steps):
            obs, _reward, terminated, truncated, _ = eval_env.step(model.predict(obs, deterministic=True)[0])
            if terminated or truncated:
                reached += int(terminated)
                break
    return reached / 10


PLAIN_GAIL = dict(
    reward_form="gail", absorbing=False, agent_data_source="rollout", reward_clip=None, policy_expert_fraction=0.0
)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("reward_kwargs", [{}, dict(reward_form="gail", absorbing=True, agent_data_source="rollout")])
def test_absorbing_states_learn_to_reach_the_goal(chain_demos, seed, reward_kwargs):
    """The defaults (absorbing states, logit reward, replay data) and plain GAIL's reward with absorbing states."""
    assert _goal_rate(chain_demos, seed, **reward_kwargs) == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_plain_gail_reward_avoids_the_goal(chain_demos, seed):
    """-log(1 - D) > 0 pays for every step: without absorbing states the agent never ends the episode."""
    assert _goal_rate(chain_demos, seed, **PLAIN_GAIL) == 0.0
