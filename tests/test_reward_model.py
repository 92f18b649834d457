import gymnasium as gym
import numpy as np
import pytest
import torch as th
import torch.nn.functional as F
from gymnasium import spaces

from sb3_gail_plugin import GailRewardModel, Transitions
from sb3_gail_plugin.reward_model import reward_from_logits
from sb3_gail_plugin.tensor_data import DiscriminatorBatches, TransitionTensors


@pytest.fixture
def cartpole_spaces():
    env = gym.make("CartPole-v1")
    return env.observation_space, env.action_space


def _agent_batch(demos: Transitions, n: int = 200) -> Transitions:
    """Agent transitions: expert states with the opposite action, easy to tell apart."""
    batch = demos[np.arange(n)]
    batch.actions = 1 - batch.actions
    return batch


def _collect(model: GailRewardModel, batch: Transitions) -> None:
    model.collect_data(batch.observations, batch.actions, batch.next_observations, batch.dones, batch.timeouts)


def test_defaults_are_the_measured_dac_recipe(cartpole_spaces, cartpole_demos):
    model = GailRewardModel(*cartpole_spaces, cartpole_demos)
    assert (model.reward_form, model.absorbing, model.agent_data_source) == ("airl", True, "replay")
    assert (model.reward_clip, model.policy_expert_fraction) == (10.0, 0.5)
    assert (model.gradient_penalty, model.normalize_obs, model.center_on_absorbing) == (1.0, True, False)


def test_estimate_is_softplus_of_logit_with_buffer_layout(cartpole_spaces, cartpole_demos):
    model = GailRewardModel(*cartpole_spaces, cartpole_demos, reward_form="gail", seed=0, device="cpu")
    obs = th.as_tensor(cartpole_demos.observations[:32])
    actions = th.as_tensor(cartpole_demos.actions[:32]).reshape(-1, 1)  # layout of the replay buffer
    rewards = model.estimate(obs, actions)
    assert rewards.shape == (32, 1) and not rewards.requires_grad
    expected = -th.log(1 - th.sigmoid(model.discriminator(obs, actions)))
    th.testing.assert_close(rewards.reshape(-1), expected.detach(), rtol=1e-5, atol=1e-6)
    # numpy input and (batch,) actions give the same rewards
    th.testing.assert_close(model.estimate(cartpole_demos.observations[:32], cartpole_demos.actions[:32]), rewards)


@pytest.mark.parametrize(
    "form, formula",
    [
        ("gail", lambda d: -np.log1p(-d)),  # -log(1 - D)
        ("neg_log", np.log),  # log D
        ("airl", lambda d: np.log(d) - np.log1p(-d)),  # log D - log(1 - D)
    ],
)
def test_reward_forms_match_their_formula_and_stay_finite(form, formula):
    logits = th.tensor([-8.0, -2.0, -0.5, 0.0, 0.5, 2.0, 8.0], dtype=th.float64)
    d = th.sigmoid(logits).numpy()
    np.testing.assert_allclose(reward_from_logits(logits, form).numpy(), formula(d), rtol=1e-9)
    extreme = reward_from_logits(th.tensor([-50.0, 50.0, -100.0, 100.0]), form)
    assert th.all(th.isfinite(extreme))
    expected = {"gail": [0.0, 50.0], "neg_log": [-50.0, 0.0], "airl": [-50.0, 50.0]}[form]
    th.testing.assert_close(extreme[:2], th.tensor(expected), atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="reward_form"):
        reward_from_logits(logits, "bogus")


def test_discriminator_input_one_hot_discrete_action(cartpole_spaces, cartpole_demos):
    model = GailRewardModel(*cartpole_spaces, cartpole_demos, hidden_dims=[8], device="cpu")
    features = model.discriminator.features(th.zeros(3, 4), th.tensor([[0], [1], [1]]))
    assert features.shape == (3, 4 + 2 + 1)  # observation, one-hot action, absorbing indicator
    th.testing.assert_close(features[:, 4:6], F.one_hot(th.tensor([0, 1, 1]), 2).float())
    np.testing.assert_array_equal(features[:, 6].numpy(), 0.0)
    with pytest.raises(ValueError, match="Expected 4 observation features"):
        model.estimate(th.zeros(3, 5), th.tensor([0, 1, 1]))


def test_train_separates_expert_from_agent_and_reports_stats(cartpole_spaces, cartpole_demos):
    model = GailRewardModel(
        *cartpole_spaces, cartpole_demos, update_per_collect=300, gradient_penalty=0.0, seed=0, device="cpu"
    )
    agent = _agent_batch(cartpole_demos)
    _collect(model, agent)
    before = model.estimate(agent.observations, agent.actions).mean()
    stats = model.train()
    assert set(stats) >= {"disc_loss", "expert_acc", "agent_acc", "reward_mean"}
    assert stats["expert_acc"] > 0.8 and stats["agent_acc"] > 0.8
    assert stats["expert_reward_mean"] > stats["reward_mean"]
    assert model.estimate(agent.observations, agent.actions).mean() < before
    assert model.n_updates == 300
    assert model.n_collected == 200  # train() does not clear
    model.clear_data()
    assert model.n_collected == 0 and model.agent_data is None


def test_estimate_leaves_a_new_or_loaded_discriminator_untouched(cartpole_spaces, cartpole_demos, tmp_path):
    """D is in eval mode outside train(): spectral norm's power iteration does not run on estimate()."""
    model = GailRewardModel(*cartpole_spaces, cartpole_demos, gamma=0.9, seed=0, spectral_norm=True)
    agent = _agent_batch(cartpole_demos)
    for reward_model in (model, _saved_and_loaded(model, tmp_path)):
        assert not reward_model.discriminator.training
        state = {key: value.clone() for key, value in reward_model.discriminator.state_dict().items()}
        first = reward_model.estimate(agent.observations, agent.actions)
        np.testing.assert_array_equal(first, reward_model.estimate(agent.observations, agent.actions))
        for key, value in reward_model.discriminator.state_dict().items():
            assert th.equal(value, state[key]), key


def test_the_discriminator_is_back_in_eval_mode_when_an_update_raises(cartpole_spaces, cartpole_demos, monkeypatch):
    model = GailRewardModel(*cartpole_spaces, cartpole_demos, gamma=0.9, seed=0)
    _collect(model, _agent_batch(cartpole_demos))

    def failing_step(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(model.optimizer, "step", failing_step)
    with pytest.raises(RuntimeError, match="interrupted"):
        model.train()
    assert not model.discriminator.training


def _saved_and_loaded(model: GailRewardModel, tmp_path) -> GailRewardModel:
    model.save(tmp_path / "reward_model.pt")
    return GailRewardModel.load(tmp_path / "reward_model.pt")


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_absorbing_reward_is_computed_once_per_state_of_the_discriminator(cartpole_spaces, cartpole_demos, spectral_norm):
    model = GailRewardModel(*cartpole_spaces, cartpole_demos, gamma=0.9, seed=0, spectral_norm=spectral_norm)
    d = model.discriminator

    def uncached() -> th.Tensor:
        obs, actions, next_obs, _ = model._expert.inputs(th.zeros(1, dtype=th.long))
        return reward_from_logits(d(obs, actions, next_obs, th.ones(1))[0], model.reward_form)

    agent = _agent_batch(cartpole_demos)
    _collect(model, agent)
    model.train()
    forwards = []
    d.register_forward_hook(lambda *_: forwards.append(1))
    dones = np.arange(len(agent)) % 7 == 0
    model.estimate(agent.observations, agent.actions, dones=dones)
    model.estimate(agent.observations, agent.actions, dones=dones)
    assert len(forwards) == 2  # the two batches: the absorbing state's reward is the one train() computed
    other = GailRewardModel(*cartpole_spaces, cartpole_demos, seed=1, spectral_norm=spectral_norm)
    changes = [  # (a change of D, whether it changes the absorbing state's reward)
        (lambda: (_collect(model, agent), model.train()), True),
        (lambda: d.load_state_dict(other.discriminator.state_dict()), True),
        (lambda: d.set_obs_normalization(th.ones(4), 2 * th.ones(4)), False),  # the absorbing features are 0 anyway
        (lambda: th.nn.init.constant_(d.net[-1].bias, 1.0), True),  # an in-place change under no_grad
    ]
    for change, changes_reward in changes:
        before = model._absorbing_reward().clone()
        change()
        after = model._absorbing_reward()
        assert th.equal(after, uncached()) and th.equal(after, before) != changes_reward


def test_training_minibatches_are_those_computed_on_their_own(cartpole_spaces, cartpole_demos):
    model = GailRewardModel(*cartpole_spaces, cartpole_demos, seed=0)
    agent = _agent_batch(cartpole_demos)
    agent.dones[::9] = True  # terminations: absorbing rows
    data = TransitionTensors(agent, model.device, absorbing=True)
    table = DiscriminatorBatches(data, model.discriminator)
    alone = DiscriminatorBatches(data, model.discriminator, max_values=len(data) * model.discriminator.mlp_input_dim - 1)
    assert table.table is not None and alone.table is None
    index = th.randint(len(data), (64,), generator=th.Generator().manual_seed(0))
    assert (data.absorbing[index] == 1).any()
    for from_table, on_its_own in zip(table(index), alone(index)):
        assert th.equal(from_table, on_its_own)


def test_ready_to_train_waits_for_target_new_data_count(cartpole_spaces, cartpole_demos):
    model = GailRewardModel(*cartpole_spaces, cartpole_demos, batch_size=16, device="cpu")
    assert model.target_new_data_count == 16
    step = cartpole_demos[np.arange(4)]
    for _ in range(3):
        _collect(model, step)
    assert model.n_collected == 12 and not model.ready_to_train()
    _collect(model, step)
    assert model.ready_to_train()
    assert GailRewardModel(*cartpole_spaces, cartpole_demos, target_new_data_count=100).target_new_data_count == 100


def test_train_without_data_raises(cartpole_spaces, cartpole_demos):
    model = GailRewardModel(*cartpole_spaces, cartpole_demos, device="cpu")
    with pytest.raises(RuntimeError, match="collect_data"):
        model.train()


def test_collected_data_with_wrong_shape_is_refused_at_train(cartpole_spaces, cartpole_demos):
    model = GailRewardModel(*cartpole_spaces, cartpole_demos, device="cpu")
    model.collect_data(np.zeros((2, 3)), np.zeros(2, dtype=np.int64), np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match=r"agent data observations have shape \(3,\) per transition, expected \(4,\)"):
        model.train()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"update_per_collect": -1}, "update_per_collect"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"hidden_dims": []}, "hidden_dims"),
        ({"gradient_penalty_interval": 0}, "gradient_penalty_interval must be a positive integer, got 0"),
        ({"gradient_penalty_interval": 2.5}, "gradient_penalty_interval must be a positive integer, got 2.5"),
    ],
)
def test_bad_arguments(cartpole_spaces, cartpole_demos, kwargs, message):
    with pytest.raises(ValueError, match=message):
        GailRewardModel(*cartpole_spaces, cartpole_demos, **kwargs)


def test_save_load_round_trip_and_training_continues(cartpole_spaces, cartpole_demos, tmp_path):
    model = GailRewardModel(*cartpole_spaces, cartpole_demos, update_per_collect=20, hidden_dims=32, seed=3, device="cpu")
    _collect(model, _agent_batch(cartpole_demos))
    model.train()
    model.save(tmp_path / "gail.pt")
    loaded = GailRewardModel.load(tmp_path / "gail.pt", device="cpu")
    assert loaded.hidden_dims == 32 and loaded.update_per_collect == 20 and loaded.n_updates == 20
    obs, actions = cartpole_demos.observations[:50], cartpole_demos.actions[:50]
    th.testing.assert_close(loaded.estimate(obs, actions), model.estimate(obs, actions))
    np.testing.assert_array_equal(loaded.expert_data.observations, model.expert_data.observations)
    # the optimiser state came along: one more identical update gives identical weights
    model.generator.manual_seed(1)
    loaded.generator.manual_seed(1)
    for rm in (model, loaded):
        _collect(rm, _agent_batch(cartpole_demos))
        rm.train()
    th.testing.assert_close(loaded.estimate(obs, actions), model.estimate(obs, actions))


def test_box_actions_and_discrete_observations():
    obs_space, act_space = spaces.Discrete(5), spaces.Box(-2, 2, (2,), np.float32)
    demos = Transitions(
        observations=np.array([0, 1, 2, 3]),
        actions=np.array([[0.5, -0.5], [1, 1], [0, 0], [-2, 2]], dtype=np.float32),
        next_observations=np.array([1, 2, 3, 4]),
        dones=np.array([False, False, False, True]),
    )
    model = GailRewardModel(obs_space, act_space, demos, batch_size=4, update_per_collect=5, device="cpu")
    assert model.discriminator.features(th.tensor([[1], [4]]), th.zeros(2, 2)).shape == (2, 5 + 2 + 1)
    model.collect_data(np.array([4, 3]), np.zeros((2, 2), dtype=np.float32), np.array([0, 4]), np.array([False, True]))
    assert np.isfinite(model.train()["disc_loss"])
    assert model.estimate(np.array([[1], [2]]), np.zeros((2, 2))).shape == (2, 1)


def test_dict_observations():
    obs_space = spaces.Dict({"pos": spaces.Box(-1, 1, (2,), np.float32), "goal": spaces.Discrete(3)})
    n = 6
    obs = {"pos": np.random.uniform(-1, 1, (n, 2)).astype(np.float32), "goal": np.arange(n) % 3}
    demos = Transitions(obs, np.arange(n) % 2, obs, np.zeros(n, dtype=bool))
    model = GailRewardModel(obs_space, spaces.Discrete(2), demos, batch_size=4, update_per_collect=3, device="cpu")
    model.collect_data(obs, np.ones(n, dtype=np.int64), obs, np.zeros(n))
    model.train()
    assert model.estimate(obs, np.ones((n, 1))).shape == (n, 1)
    with pytest.raises(ValueError, match="keys"):
        GailRewardModel(
            obs_space, spaces.Discrete(2), Transitions({"pos": obs["pos"]}, demos.actions, {"pos": obs["pos"]}, demos.dones)
        )


def test_collect_data_accepts_a_batch_or_transition_dicts(cartpole_spaces, cartpole_demos):
    model = GailRewardModel(*cartpole_spaces, cartpole_demos, device="cpu")
    batch = cartpole_demos[np.arange(10)]
    model.collect_data(batch)
    rows = [
        dict(obs=batch.observations[i], action=batch.actions[i], next_obs=batch.next_observations[i], done=batch.dones[i])
        for i in range(10)
    ]
    model.collect_data(rows)
    assert model.n_collected == 20
    np.testing.assert_array_equal(model.agent_data.observations[10:], batch.observations)
    with pytest.raises(TypeError, match="needs observations, actions"):
        model.collect_data(batch.observations, batch.actions)


def _first_weight(model: GailRewardModel) -> th.Tensor:
    return model.discriminator.net[0].weight


def test_lazy_gradient_penalty_every_k_updates_scaled_by_k(cartpole_spaces, cartpole_demos, tmp_path, monkeypatch):
    penalised = []

    def penalty(self, expert_inputs, agent_inputs, real):  # a penalty whose gradient is 1 on every first-layer weight
        penalised.append(self)
        return _first_weight(self).sum()

    monkeypatch.setattr(GailRewardModel, "_gradient_penalty", penalty)
    agent = _agent_batch(cartpole_demos)
    steps = {}
    for interval in (1, 3):
        model = GailRewardModel(
            *cartpole_spaces,
            cartpole_demos,
            update_per_collect=1,
            gradient_penalty=0.5,
            gradient_penalty_interval=interval,
            seed=0,
        )
        model.optimizer = th.optim.SGD(model.discriminator.parameters(), lr=1.0)  # the step is the gradient
        before = _first_weight(model).detach().clone()
        model.train(agent)
        steps[interval] = before - _first_weight(model).detach()
    # update 0 is penalised either way, with 0.5 * 3 instead of 0.5 * 1: the gradients differ by 1.0 on every weight
    th.testing.assert_close(steps[3] - steps[1], th.full_like(steps[1], 1.0))

    # which updates: 4 per round, every 3rd counted from the first, across rounds and through save/load
    penalised.clear()
    model = GailRewardModel(*cartpole_spaces, cartpole_demos, update_per_collect=4, gradient_penalty_interval=3, seed=0)
    stats = model.train(agent)  # updates 0-3: 0 and 3
    assert len(penalised) == 2 and "grad_penalty" in stats
    model.save(tmp_path / "gail.pt")
    loaded = GailRewardModel.load(tmp_path / "gail.pt", device="cpu")
    assert loaded.gradient_penalty_interval == 3 and loaded.n_updates == 4
    loaded.train(agent)  # updates 4-7: 6 only
    assert len(penalised) == 3
    quiet = GailRewardModel(*cartpole_spaces, cartpole_demos, update_per_collect=2, gradient_penalty_interval=5, seed=0)
    quiet.n_updates = 1
    assert "grad_penalty" not in quiet.train(agent)  # updates 1-2: no penalty, so none reported
