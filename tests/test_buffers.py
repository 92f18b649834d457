import pickle
from typing import Tuple

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN, SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from sb3_gail_plugin import DictGailReplayBuffer, GailCallback, GailReplayBuffer, GailRewardModel, Transitions
from sb3_gail_plugin.obs_normalization import normalize_obs_tensor
from tests.dict_cartpole import DictCartPole

SMALL_DQN = dict(learning_starts=50, train_freq=16, gradient_steps=1, buffer_size=2000, policy_kwargs=dict(net_arch=[16]))


def _fill(buffer: ReplayBuffer, n_steps: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n_envs = buffer.n_envs
    for _ in range(n_steps):
        obs = rng.normal(size=(n_envs, 4)).astype(np.float32)
        next_obs = rng.normal(size=(n_envs, 4)).astype(np.float32)
        buffer.add(
            obs, next_obs, rng.integers(0, 2, size=(n_envs, 1)), np.full(n_envs, 7.0), rng.random(n_envs) < 0.1, [{}] * n_envs
        )


def _sample_twice(buffer, batch_size, env, seed):
    """The relabelled batch (with ``env``) and the same indices' raw transitions with their stored rewards."""
    np.random.seed(seed)
    relabelled = buffer.sample(batch_size, env=env)
    np.random.seed(seed)
    raw = ReplayBuffer.sample(buffer, batch_size)  # GailReplayBuffer._get_samples, env=None: raw observations
    np.random.seed(seed)
    stored = type(buffer).__mro__[2]._get_samples(buffer, np.random.randint(0, buffer.size(), size=batch_size))
    return relabelled, raw, stored


@pytest.fixture
def cartpole_reward_model(cartpole_demos):
    env = gym.make("CartPole-v1")
    return GailRewardModel(env.observation_space, env.action_space, cartpole_demos, gamma=0.99, device="cpu", seed=0)


@pytest.fixture
def unmixed_reward_model(cartpole_demos):
    """Policy batches made of buffer rows only, to compare them row by row with the stored data."""
    env = gym.make("CartPole-v1")
    return GailRewardModel(
        env.observation_space, env.action_space, cartpole_demos, policy_expert_fraction=0.0, gamma=0.99, device="cpu"
    )


@pytest.mark.parametrize("optimize_memory_usage", [False, True])
def test_relabelled_rewards_equal_estimate_on_raw_data_and_stored_rewards_stay(cartpole_reward_model, optimize_memory_usage):
    env = gym.make("CartPole-v1")
    buffer = GailReplayBuffer(
        500,
        env.observation_space,
        env.action_space,
        n_envs=2,
        optimize_memory_usage=optimize_memory_usage,
        handle_timeout_termination=not optimize_memory_usage,
    )
    _fill(buffer, 100)
    buffer.set_reward_model(cartpole_reward_model)
    np.random.seed(0)  # SB3 samples buffer rows with NumPy's global RNG
    samples = buffer.sample(64)
    assert samples.dones.sum() > 0  # terminal rows get the absorbing state's value folded in
    expected = cartpole_reward_model.estimate(samples.observations, samples.actions, samples.next_observations, samples.dones)
    th.testing.assert_close(samples.rewards, expected)
    assert samples.rewards.shape == (64, 1)
    assert not th.allclose(samples.rewards, th.full_like(samples.rewards, 7.0))
    np.testing.assert_array_equal(buffer.rewards[:100], 7.0)  # never mutated
    assert samples.dones.shape == (64, 1) and samples.next_observations.shape == (64, 4)
    if hasattr(samples, "discounts"):  # SB3 >= 2.7: every other field kept
        assert samples.discounts is None


def test_relabelling_uses_raw_observations_under_vecnormalize(unmixed_reward_model):
    venv = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0))
    buffer = GailReplayBuffer(500, venv.observation_space, venv.action_space, n_envs=2)
    _fill(buffer, 100)
    venv.obs_rms.mean = np.array([1.0, -1.0, 0.5, 2.0])
    venv.obs_rms.var = np.array([4.0, 0.25, 9.0, 1.0])
    buffer.set_reward_model(unmixed_reward_model)
    relabelled, raw, stored = _sample_twice(buffer, 32, venv, seed=5)
    # the policy gets normalised observations, the discriminator got the raw ones
    th.testing.assert_close(relabelled.observations, th.as_tensor(venv.normalize_obs(raw.observations.numpy())))
    th.testing.assert_close(relabelled.next_observations, th.as_tensor(venv.normalize_obs(raw.next_observations.numpy())))
    rm = unmixed_reward_model
    th.testing.assert_close(relabelled.rewards, rm.estimate(raw.observations, raw.actions, raw.next_observations, raw.dones))
    assert not th.allclose(
        relabelled.rewards, rm.estimate(relabelled.observations, relabelled.actions, relabelled.next_observations, raw.dones)
    )
    th.testing.assert_close(stored.observations, raw.observations)
    th.testing.assert_close(stored.rewards, th.full_like(stored.rewards, 7.0))


def test_sampling_without_reward_model_says_how_to_attach():
    env = gym.make("CartPole-v1")
    buffer = GailReplayBuffer(100, env.observation_space, env.action_space)
    _fill(buffer, 10)
    with pytest.raises(RuntimeError, match=r"GailCallback.*set_reward_model"):
        buffer.sample(4)
    with pytest.raises(TypeError, match="estimate"):
        buffer.set_reward_model(object())


def test_dict_space_needs_dict_buffer():
    obs_space = spaces.Dict({"x": spaces.Box(-1, 1, (2,), np.float32)})
    with pytest.raises(TypeError, match="DictGailReplayBuffer"):
        GailReplayBuffer(10, obs_space, spaces.Discrete(2))


def test_dict_buffer_relabels():
    obs_space = spaces.Dict({"x": spaces.Box(-1, 1, (2,), np.float32), "k": spaces.Discrete(3)})
    n = 8
    obs = {"x": np.random.uniform(-1, 1, (n, 2)).astype(np.float32), "k": np.arange(n) % 3}
    demos = Transitions(obs, np.arange(n) % 2, obs, np.zeros(n))
    rm = GailRewardModel(obs_space, spaces.Discrete(2), demos, gamma=0.99, device="cpu")
    buffer = DictGailReplayBuffer(50, obs_space, spaces.Discrete(2))
    for i in range(n):
        one = {key: value[i : i + 1] for key, value in obs.items()}
        buffer.add(one, one, np.array([[i % 2]]), np.array([3.0]), np.array([False]), [{}])
    buffer.set_reward_model(rm)
    samples = buffer.sample(16)
    th.testing.assert_close(samples.rewards, rm.estimate(samples.observations, samples.actions, dones=samples.dones))


def test_buffer_pickle_drops_reward_model(cartpole_reward_model):
    env = gym.make("CartPole-v1")
    buffer = GailReplayBuffer(100, env.observation_space, env.action_space)
    _fill(buffer, 10)
    buffer.set_reward_model(cartpole_reward_model)
    clone = pickle.loads(pickle.dumps(buffer))
    assert clone.reward_model is None and buffer.reward_model is cartpole_reward_model
    np.testing.assert_array_equal(clone.observations, buffer.observations)


def test_save_load_replay_buffer_and_callback_reattaches(cartpole_demos, tmp_path):
    model = DQN("MlpPolicy", "CartPole-v1", replay_buffer_class=GailReplayBuffer, seed=0, **SMALL_DQN)
    callback = GailCallback(cartpole_demos, update_per_collect=2)
    model.learn(300, callback=callback)
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    stored = model.replay_buffer.observations.copy()
    model.load_replay_buffer(tmp_path / "buffer.pkl")
    assert isinstance(model.replay_buffer, GailReplayBuffer) and model.replay_buffer.reward_model is None
    np.testing.assert_array_equal(model.replay_buffer.observations, stored)
    model.learn(300, callback=callback, reset_num_timesteps=False)
    assert model.replay_buffer.reward_model is callback.reward_model
    assert model.replay_buffer.size() == model.num_timesteps > 300


def test_sac_box_actions_are_relabelled_in_env_units(tmp_path):
    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(0)
    n = 64
    demos = Transitions(
        observations=rng.uniform(-1, 1, (n, 3)).astype(np.float32),
        actions=rng.uniform(-2, 2, (n, 1)).astype(np.float32),
        next_observations=rng.uniform(-1, 1, (n, 3)).astype(np.float32),
        dones=np.zeros(n, dtype=bool),
    )
    model = SAC(
        "MlpPolicy",
        env,
        replay_buffer_class=GailReplayBuffer,
        learning_starts=50,
        buffer_size=1000,
        policy_kwargs=dict(net_arch=[16]),
        seed=0,
    )
    callback = GailCallback(demos, update_per_collect=2, batch_size=16)
    model.learn(120, callback=callback)
    buffer = model.replay_buffer
    assert np.abs(buffer.actions[:120]).max() <= 1.0  # SB3 stores Box actions rescaled to [-1, 1]
    np.random.seed(0)
    samples = buffer.sample(32)
    env_actions = -2.0 + 0.5 * (samples.actions + 1.0) * 4.0
    th.testing.assert_close(
        samples.rewards, callback.reward_model.estimate(samples.observations, env_actions, dones=samples.dones)
    )


@pytest.mark.parametrize("low, high", [(-1.0, 1.0), (-2.0, 3.0)])
def test_box_actions_in_env_units_and_back(low, high):
    """Bounds of [-1, 1] pass the stored actions through as they are; other bounds map to the env's units and back."""
    space = gym.spaces.Box(low, high, shape=(2, 3), dtype=np.float32)
    buffer = GailReplayBuffer(10, gym.spaces.Box(-1.0, 1.0, shape=(4,)), space)
    stored = th.rand(5, 6) * 2.0 - 1.0  # SB3's rescaled actions, flat
    env_actions = buffer._env_actions(stored)
    assert env_actions.shape == (5, 2, 3)
    if (low, high) == (-1.0, 1.0):
        assert th.equal(env_actions.reshape(5, 6), stored)
        assert th.equal(buffer._buffer_actions(env_actions), stored)
    else:
        th.testing.assert_close(env_actions.reshape(5, 6), low + 0.5 * (stored + 1.0) * (high - low))
        th.testing.assert_close(buffer._buffer_actions(env_actions), stored)


def _counter_buffer(buffer_size: int, n_steps: int, optimize_memory_usage: bool) -> GailReplayBuffer:
    """Observations count the steps (every feature = t), so (obs, next_obs) of a real transition differ by 1."""
    env = gym.make("CartPole-v1")
    buffer = GailReplayBuffer(
        buffer_size,
        env.observation_space,
        env.action_space,
        optimize_memory_usage=optimize_memory_usage,
        handle_timeout_termination=not optimize_memory_usage,
    )
    for t in range(n_steps):
        obs = np.full((1, 4), t, dtype=np.float32)
        buffer.add(obs, obs + 1, np.array([[t % 2]]), np.array([1.0]), np.array([False]), [{}])
    return buffer


@pytest.mark.parametrize("optimize_memory_usage", [False, True])
@pytest.mark.parametrize("n_steps", [37, 250])  # before and after the buffer (size 100) wraps around
def test_sample_transitions_rows_are_real_transitions(optimize_memory_usage, n_steps):
    buffer = _counter_buffer(100, n_steps, optimize_memory_usage)
    np.random.seed(0)
    sampled = buffer.sample_transitions(5000)
    # each sampled row is one stored transition: its next observation is the step after its observation
    np.testing.assert_array_equal(sampled.next_observations - sampled.observations, 1.0)
    steps = sampled.observations[:, 0].astype(int)
    np.testing.assert_array_equal(sampled.actions, steps % 2)
    # every valid row is sampled, the newest included; nothing older than the buffer holds
    valid = min(n_steps, 100 - int(optimize_memory_usage and n_steps > 100))
    assert set(steps) == set(range(n_steps - valid, n_steps))
    window = buffer.sample_transitions(2000, window=10).observations[:, 0].astype(int)
    assert set(window) == set(range(n_steps - 10, n_steps))


def _sampled_rows(buffer: GailReplayBuffer, batch_size: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """The (row, env) indices that ``buffer.sample(batch_size)`` draws after ``np.random.seed(seed)``."""
    np.random.seed(seed)
    if buffer.optimize_memory_usage and buffer.full:
        rows = (np.random.randint(1, buffer.buffer_size, size=batch_size) + buffer.pos) % buffer.buffer_size
    else:
        rows = np.random.randint(0, buffer.buffer_size if buffer.full else buffer.pos, size=batch_size)
    return rows, np.random.randint(0, buffer.n_envs, size=batch_size)


@pytest.mark.parametrize("optimize_memory_usage", [False, True])
def test_truncations_get_no_absorbing_value_whatever_handle_timeout_termination(cartpole_demos, optimize_memory_usage):
    """handle_timeout_termination=False (needed by optimize_memory_usage) puts truncations into SB3's dones."""
    env = gym.make("CartPole-v1")
    rm = GailRewardModel(
        env.observation_space, env.action_space, cartpole_demos, policy_expert_fraction=0.0, gamma=0.9, seed=0
    )
    assert abs(rm.estimate(np.zeros((1, 4)), np.zeros(1), dones=np.ones(1)) - rm.estimate(np.zeros((1, 4)), np.zeros(1))) > 0.1
    buffer = GailReplayBuffer(
        600,  # 300 rows of 2 envs
        env.observation_space,
        env.action_space,
        n_envs=2,
        optimize_memory_usage=optimize_memory_usage,
        handle_timeout_termination=not optimize_memory_usage,
    )
    rng = np.random.default_rng(0)
    terminated, truncated = np.zeros((200, 2), dtype=bool), np.zeros((200, 2), dtype=bool)
    for t in range(200):
        ends = rng.random(2) < 0.2
        terminated[t] = ends & (rng.random(2) < 0.5)
        truncated[t] = ends & ~terminated[t]
        infos = [{"TimeLimit.truncated": bool(truncated[t, i])} for i in range(2)]
        obs = rng.normal(size=(2, 4)).astype(np.float32)
        buffer.add(obs, rng.normal(size=(2, 4)).astype(np.float32), rng.integers(0, 2, (2, 1)), np.ones(2), ends, infos)
    np.testing.assert_array_equal(buffer.truncations[:200], truncated)
    buffer.set_reward_model(rm)
    rows, envs = _sampled_rows(buffer, 256, seed=1)
    np.random.seed(1)
    samples = buffer.sample(256)
    # the RL target's dones keep SB3's meaning: truncations are episode ends only without timeout handling
    expected_dones = terminated[rows, envs] | (truncated[rows, envs] & optimize_memory_usage)
    np.testing.assert_array_equal(samples.dones.numpy().ravel(), expected_dones)
    assert truncated[rows, envs].any() and terminated[rows, envs].any()
    # ... but the absorbing value is folded into terminations only
    expected = rm.estimate(samples.observations, samples.actions, dones=th.as_tensor(terminated[rows, envs]))
    th.testing.assert_close(samples.rewards, expected)
    # the discriminator's replay data marks truncations as time-limit ends: no absorbing sample for them
    np.random.seed(2)
    data = buffer.sample_transitions(2000)
    assert data.timeouts.any() and data.terminals.any()
    np.testing.assert_array_equal(data.terminals, ~data.timeouts & data.dones)
    stored = {tuple(row) for row in buffer.observations[:200][truncated].round(5)}
    assert all(tuple(row) in stored for row in data.observations[data.timeouts].round(5))


def test_optimize_memory_usage_refuses_next_observation_inputs(cartpole_demos):
    env = gym.make("CartPole-v1")
    rm = GailRewardModel(env.observation_space, env.action_space, cartpole_demos, inputs="sas", gamma=0.99)
    buffer = GailReplayBuffer(
        100, env.observation_space, env.action_space, optimize_memory_usage=True, handle_timeout_termination=False
    )
    with pytest.raises(ValueError, match=r"inputs='sas'.*optimize_memory_usage"):
        buffer.set_reward_model(rm)


class ShiftedVecNormalize(VecNormalize):
    """A VecNormalize subclass with its own normalisation, which normalize_obs_tensor must leave to it."""

    def normalize_obs(self, obs):
        return super().normalize_obs(obs) + 1.0


@pytest.mark.parametrize("dict_obs", [False, True])
def test_observations_are_normalised_on_their_device_exactly_as_vecnormalize_does(dict_obs):
    make = (lambda: DictCartPole(gym.make("CartPole-v1"))) if dict_obs else "CartPole-v1"
    env = VecNormalize(make_vec_env(make, n_envs=2, seed=0), clip_obs=1.5, norm_obs_keys=["pole"] if dict_obs else None)
    env.reset()
    for _ in range(50):  # statistics that are not round numbers
        env.step(np.array([env.action_space.sample() for _ in range(2)]))
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 3, size=(64, 4)).astype(np.float32)  # beyond the clip for some
    obs = {"cart": raw[:, :2], "pole": raw[:, 2:]} if dict_obs else raw
    expected = env.normalize_obs(obs)
    tensors = {key: th.as_tensor(value) for key, value in obs.items()} if dict_obs else th.as_tensor(obs)
    normalized = normalize_obs_tensor(tensors, env)
    for key in ["cart", "pole"] if dict_obs else [None]:
        got = normalized if key is None else normalized[key]
        want = expected if key is None else expected[key]
        assert got.dtype == th.float32 and got.numpy().tobytes() == want.tobytes()  # bit for bit
    if not dict_obs:
        shifted = ShiftedVecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0), clip_obs=1.5)
        shifted.obs_rms = env.obs_rms
        assert normalize_obs_tensor(tensors, shifted).numpy().tobytes() == (expected + 1.0).tobytes()
