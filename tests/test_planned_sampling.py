"""The batches a train() announces with plan_samples() are drawn and relabelled together, exactly as one by one."""

import pickle
from typing import List, Tuple

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN, SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

import sb3_gail_plugin.batch_plan as batch_plan
from sb3_gail_plugin import DictGailReplayBuffer, GailCallback, GailReplayBuffer, GailRewardModel
from tests.dict_cartpole import DictCartPole
from tests.pendulum_data import random_pendulum_demos
from tests.test_buffers import _fill


def _buffer(
    reward_model: GailRewardModel, n_envs: int = 2, optimize_memory_usage: bool = False, n_steps: int = 120
) -> GailReplayBuffer:
    env = gym.make("CartPole-v1")
    buffer = GailReplayBuffer(
        300,
        env.observation_space,
        env.action_space,
        n_envs=n_envs,
        optimize_memory_usage=optimize_memory_usage,
        handle_timeout_termination=not optimize_memory_usage,
    )
    _fill(buffer, n_steps)
    buffer.set_reward_model(reward_model)
    return buffer


def _seeded_buffer(reward_model: GailRewardModel, planned: bool) -> GailReplayBuffer:
    """A filled buffer with both random streams seeded, and (if ``planned``) a plan of 7 batches of 64 made."""
    buffer = _buffer(reward_model)
    np.random.seed(3)
    reward_model.generator.manual_seed(3)
    if planned:
        buffer.plan_samples(7, 64)
    return buffer


def _streams(reward_model: GailRewardModel) -> Tuple[np.ndarray, th.Tensor]:
    """The states of NumPy's global random stream and of the reward model's generator."""
    return np.random.get_state()[1].copy(), reward_model.generator.get_state().clone()


def _as_arrays(samples) -> List[np.ndarray]:
    values = []
    for value in samples:
        if isinstance(value, dict):
            values += [value[key].numpy() for key in sorted(value)]
        elif value is not None:
            values.append(value.numpy())
    return values


def _count_chunks(buffer) -> List[int]:
    """Spy on ``buffer._draw_chunk``: the returned list gets the number of batches of each chunk drawn."""
    chunks: List[int] = []
    draw_chunk = buffer._draw_chunk

    def counting(plan, env):
        draw_chunk(plan, env)
        chunks.append(len(plan.ready))

    buffer._draw_chunk = counting
    return chunks


def _draw(buffer, n_batches: int, batch_size: int, planned: bool, env=None, seed: int = 3) -> List[List[np.ndarray]]:
    np.random.seed(seed)
    buffer.reward_model.generator.manual_seed(seed)
    chunks = _count_chunks(buffer)
    if planned:
        buffer.plan_samples(n_batches, batch_size)
    batches = [_as_arrays(buffer.sample(batch_size, env=env)) for _ in range(n_batches)]
    del buffer._draw_chunk
    assert sum(chunks) == (n_batches if planned else 0)  # every batch came from a plan, or none did
    return batches


def _assert_same_batches(one_by_one, together, exact: bool = True) -> None:
    """The same batches; with ``exact=False`` the floats may differ by the rounding of a differently sized forward pass."""
    assert len(one_by_one) == len(together)
    for batch, other in zip(one_by_one, together):
        assert len(batch) == len(other)
        for value, other_value in zip(batch, other):
            assert value.shape == other_value.shape and value.dtype == other_value.dtype
            if exact:
                np.testing.assert_array_equal(value, other_value)
            else:
                np.testing.assert_allclose(value, other_value, rtol=1e-5, atol=1e-6)


@pytest.fixture
def reward_model(cartpole_demos):
    env = gym.make("CartPole-v1")
    model = GailRewardModel(env.observation_space, env.action_space, cartpole_demos, gamma=0.99, device="cpu", seed=0)
    model.train(cartpole_demos)  # weights that are not the initial ones
    return model


@pytest.mark.parametrize("optimize_memory_usage", [False, True])
@pytest.mark.parametrize("n_steps", [120, 350])  # before and after the buffer (300 rows) wraps around
@pytest.mark.parametrize("chunk_bytes", [None, 8_000])  # one chunk, or chunks of 3 batches (3 + 3 + 1)
def test_planned_batches_equal_one_by_one(reward_model, optimize_memory_usage, n_steps, chunk_bytes, monkeypatch):
    if chunk_bytes is not None:
        monkeypatch.setattr(batch_plan, "PLANNED_CHUNK_BYTES", chunk_bytes)
        assert batch_plan.chunk_batches(gym.make("CartPole-v1").observation_space, 64) == 3
    buffer = _buffer(reward_model, optimize_memory_usage=optimize_memory_usage, n_steps=n_steps)
    assert buffer.full == (n_steps > 300)
    one_by_one = _draw(buffer, 7, 64, planned=False)
    together = _draw(buffer, 7, 64, planned=True)
    _assert_same_batches(one_by_one, together)
    assert buffer._plan.remaining == 0
    # the random streams are left where one-by-one sampling leaves them
    after = np.random.randint(10**9), int(th.randint(10**9, (1,), generator=reward_model.generator))
    _draw(buffer, 7, 64, planned=False)
    assert after == (np.random.randint(10**9), int(th.randint(10**9, (1,), generator=reward_model.generator)))


def test_planned_batches_equal_one_by_one_under_vecnormalize(reward_model):
    venv = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0))
    venv.reset()
    for _ in range(30):
        venv.step(np.array([venv.action_space.sample() for _ in range(2)]))
    buffer = _buffer(reward_model)
    _assert_same_batches(_draw(buffer, 5, 32, False, env=venv), _draw(buffer, 5, 32, True, env=venv))


def test_planned_dict_batches_equal_one_by_one(cartpole_demos):
    env = DictCartPole(gym.make("CartPole-v1"))
    demos = cartpole_demos
    dict_demos = type(demos)(
        observations={"cart": demos.observations[:, :2], "pole": demos.observations[:, 2:]},
        actions=demos.actions,
        next_observations={"cart": demos.next_observations[:, :2], "pole": demos.next_observations[:, 2:]},
        dones=demos.dones,
        timeouts=demos.timeouts,
    )
    reward_model = GailRewardModel(env.observation_space, env.action_space, dict_demos, gamma=0.99, device="cpu", seed=0)
    buffer = DictGailReplayBuffer(200, env.observation_space, env.action_space, n_envs=1)
    rng = np.random.default_rng(0)
    for _ in range(100):
        obs = {"cart": rng.normal(size=(1, 2)).astype(np.float32), "pole": rng.normal(size=(1, 2)).astype(np.float32)}
        buffer.add(obs, obs, rng.integers(0, 2, size=(1, 1)), np.ones(1), rng.random(1) < 0.1, [{}])
    buffer.set_reward_model(reward_model)
    _assert_same_batches(_draw(buffer, 4, 16, False), _draw(buffer, 4, 16, True))


@pytest.mark.parametrize(
    "drop", ["new transition", "other batch size", "other env", "discriminator update", "new plan", "reset"]
)
@pytest.mark.parametrize("chunk_bytes, n_served, n_ready", [(None, 2, 5), (8_000, 4, 2)])  # in the 1st or 2nd chunk
def test_a_dropped_plan_gives_back_the_draws_of_the_batches_it_did_not_serve(
    reward_model, drop, chunk_bytes, n_served, n_ready, monkeypatch
):
    """
    A plan of 7 batches (one chunk, or chunks of 3) is dropped after serving some: the batches sampled afterwards, and
    the random streams, are those of sampling one call at a time from the start.
    """
    if chunk_bytes is not None:
        monkeypatch.setattr(batch_plan, "PLANNED_CHUNK_BYTES", chunk_bytes)
    venv = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0))

    def run(planned: bool):
        buffer = _seeded_buffer(reward_model, planned)
        batches = [buffer.sample(64) for _ in range(n_served)]
        if planned:
            assert len(buffer._plan.ready) == n_ready
        if drop == "reset":
            buffer.reset()
            _fill(buffer, 120)
        elif drop == "new transition":
            _fill(buffer, 1)  # (draws from its own generator) the batches drawn before it could never hold it
        elif drop == "other batch size":
            batches.append(buffer.sample(32))
        elif drop == "other env":
            batches.append(buffer.sample(64, env=venv))
        elif drop == "discriminator update":
            reward_model.n_updates += 1  # what train() does
        else:
            buffer.plan_samples(3, 64)
        assert not buffer._plan.ready or drop == "discriminator update"  # (that one is seen at the next call)
        batches += [buffer.sample(64) for _ in range(3)]
        streams = _streams(reward_model)
        return [_as_arrays(batch) for batch in batches], streams

    (planned, streams), (one_by_one, expected_streams) = run(True), run(False)
    _assert_same_batches(one_by_one, planned)
    np.testing.assert_array_equal(streams[0], expected_streams[0])
    assert th.equal(streams[1], expected_streams[1])


def test_a_dropped_plan_keeps_the_draws_others_made_after_its_chunk(reward_model):
    """
    Draws made between a chunk's draw and the plan's drop (an exploration step from NumPy, the discriminator's batches
    from the reward model's generator) are not rewound: the streams go on from where those draws left them.
    """
    buffer = _buffer(reward_model)
    buffer.plan_samples(7, 64)
    buffer.sample(64)
    exploration = np.random.random(4)
    reward_model.sample_expert_index(5)
    streams = _streams(reward_model)
    _fill(buffer, 1)  # drops the plan (and draws from its own generator)
    assert not buffer._plan.ready
    np.testing.assert_array_equal(np.random.get_state()[1], streams[0])
    assert th.equal(reward_model.generator.get_state(), streams[1])
    assert not np.isin(np.random.random(4), exploration).any()  # the exploration numbers are not drawn again


@pytest.mark.parametrize("drawn_from", ["numpy", "generator"])
def test_each_random_stream_is_rewound_on_its_own(reward_model, drawn_from):
    """A stream something else drew from is kept; the other one is rewound to where one-by-one sampling leaves it."""

    def run(planned: bool):
        buffer = _seeded_buffer(reward_model, planned)
        buffer.sample(64)
        if drawn_from == "numpy":
            np.random.random(4)
        else:
            reward_model.sample_expert_index(5)
        touched = _streams(reward_model)
        buffer.plan_samples(0, 64)  # drops the plan
        return touched, _streams(reward_model)

    (touched, after), (_, expected) = run(True), run(False)
    if drawn_from == "numpy":
        np.testing.assert_array_equal(after[0], touched[0])  # kept as the other draw left it
        assert th.equal(after[1], expected[1])  # rewound as if there had been no plan
    else:
        assert th.equal(after[1], touched[1])
        np.testing.assert_array_equal(after[0], expected[0])


def test_the_replay_sample_of_the_discriminator_comes_after_the_served_batches(reward_model):
    """sample_transitions() (the discriminator's agent data) drops a pending plan first, as one-by-one sampling has it."""

    def run(planned: bool) -> np.ndarray:
        buffer = _buffer(reward_model)
        np.random.seed(3)
        if planned:
            buffer.plan_samples(7, 64)
        buffer.sample(64)
        return buffer.sample_transitions(50).observations

    np.testing.assert_array_equal(run(True), run(False))


def test_planned_chunks_are_capped_in_rows():
    space = gym.spaces.Box(-1.0, 1.0, shape=(4,))
    assert batch_plan.chunk_batches(space, 64) == batch_plan.PLANNED_CHUNK_ROWS // 64  # 32 bytes a row: rows bind
    assert batch_plan.chunk_batches(gym.spaces.Box(-1.0, 1.0, shape=(10_000,)), 256) == 1  # bytes bind


def test_a_plan_is_not_pickled(reward_model):
    buffer = _buffer(reward_model)
    buffer.plan_samples(5, 64)
    buffer.sample(64)
    copy = pickle.loads(pickle.dumps(buffer))
    assert copy._plan.remaining == 0 and not copy._plan.ready and copy.reward_model is None
    assert buffer._plan.remaining == 4 and len(buffer._plan.ready) == 4  # the original goes on with its plan
    copy.set_reward_model(reward_model)
    assert len(copy.sample(64).rewards) == 64


def test_a_plan_is_not_served_after_the_reward_model_changed(reward_model, cartpole_demos):
    env = gym.make("CartPole-v1")
    other = GailRewardModel(env.observation_space, env.action_space, cartpole_demos, gamma=0.99, device="cpu", seed=1)
    buffer = _buffer(reward_model)
    buffer.plan_samples(5, 64)
    buffer.sample(64)
    buffer.reward_model = other  # attached without set_reward_model(): the plan's batches are the old model's
    np.random.seed(0)
    other.generator.manual_seed(0)
    planned_then_swapped = buffer.sample(64)
    np.random.seed(0)
    other.generator.manual_seed(0)
    expected = buffer.sample(64)
    th.testing.assert_close(planned_then_swapped.rewards, expected.rewards)


class CountlessRewardModel:
    """A reward model without an update count: plans could not see its updates."""

    def __init__(self, reward_model: GailRewardModel) -> None:
        self.inner = reward_model

    def estimate(self, *args, **kwargs):
        return self.inner.estimate(*args, **kwargs)


def test_a_reward_model_without_an_update_count_is_never_planned_for(reward_model):
    buffer = _buffer(reward_model)
    buffer.set_reward_model(CountlessRewardModel(reward_model))
    buffer.plan_samples(5, 64)
    assert buffer._plan.remaining == 0
    assert len(buffer.sample(64).rewards) == 64


def test_batches_made_of_expert_rows_only(cartpole_demos):
    env = gym.make("CartPole-v1")
    model = GailRewardModel(env.observation_space, env.action_space, cartpole_demos, gamma=0.99, policy_expert_fraction=0.6)
    buffer = _buffer(model)
    one_by_one = _draw(buffer, 4, 1, planned=False)  # round(0.6 * 1) = 1: no agent row at all
    # a forward pass on 1 row takes another path than on 4 (matrix-vector): the rewards are equal up to rounding
    _assert_same_batches(one_by_one, _draw(buffer, 4, 1, planned=True), exact=False)


class AugmentingBuffer(GailReplayBuffer):
    def _get_samples(self, batch_inds, env=None):
        samples = super()._get_samples(batch_inds, env)
        return samples._replace(rewards=samples.rewards + 100.0)


def test_a_subclass_that_overrides_get_samples_is_never_planned_for(reward_model):
    env = gym.make("CartPole-v1")
    buffer = AugmentingBuffer(300, env.observation_space, env.action_space, n_envs=2)
    _fill(buffer, 120)
    buffer.set_reward_model(reward_model)
    buffer.plan_samples(4, 64)
    assert buffer._plan.remaining == 0
    augmented = _draw(buffer, 1, 64, planned=False)[0]
    plain = _draw(_buffer(reward_model), 1, 64, planned=False)[0]
    np.testing.assert_allclose(augmented[-1], plain[-1] + 100.0, rtol=1e-6)  # its _get_samples ran


def test_learning_is_the_same_with_and_without_plans(cartpole_demos, monkeypatch):
    """Whole learn() runs: the parameters come out the same whether GailCallback's plans are followed or not."""

    def train(plans: bool) -> List[np.ndarray]:
        if not plans:
            monkeypatch.setattr(GailReplayBuffer, "plan_samples", lambda self, n_batches, batch_size: None)
        model = DQN(
            "MlpPolicy",
            "CartPole-v1",
            replay_buffer_class=GailReplayBuffer,
            learning_starts=100,
            train_freq=64,
            gradient_steps=32,
            batch_size=32,
            policy_kwargs=dict(net_arch=[16]),
            seed=0,
        )
        chunks = _count_chunks(model.replay_buffer)
        model.learn(700, callback=GailCallback(cartpole_demos, update_per_collect=5, seed=0))
        assert (sum(chunks) > 0) == plans
        monkeypatch.undo()
        return [parameter.detach().numpy().copy() for parameter in model.policy.parameters()]

    with_plans, without = train(True), train(False)
    for parameter, other in zip(with_plans, without):
        np.testing.assert_array_equal(parameter, other)


def test_plan_is_dropped_by_new_transitions_and_unannounced_calls(reward_model):
    buffer = _buffer(reward_model)
    buffer.plan_samples(5, 64)
    buffer.sample(64)
    assert buffer._plan.remaining == 4 and len(buffer._plan.ready) == 4
    _fill(buffer, 1)  # a new transition: the batches drawn before it could never hold it
    assert buffer._plan.remaining == 0 and not buffer._plan.ready
    buffer.plan_samples(5, 64)
    assert len(buffer.sample(32).rewards) == 32  # another batch size: sampled as usual, the plan dropped
    assert buffer._plan.remaining == 0
    buffer.plan_samples(5, 64)
    buffer.set_reward_model(reward_model)
    assert buffer._plan.remaining == 0
    with pytest.raises(ValueError, match="n_batches >= 0 and batch_size >= 1, got n_batches=-1"):
        buffer.plan_samples(-1, 64)


class PlanChecker(BaseCallback):
    """At each rollout start (after the train() of the last rollout end), the announced batches were all taken."""

    def __init__(self) -> None:
        super().__init__()
        self.served = 0
        self.leftovers: List[int] = []

    def _on_training_start(self) -> None:
        buffer = self.model.replay_buffer
        sample = buffer.sample

        def counting_sample(batch_size, env=None):
            self.served += int(buffer._plan.remaining > 0)
            return sample(batch_size, env)

        buffer.sample = counting_sample

    def _on_rollout_start(self) -> None:
        self.leftovers.append(self.model.replay_buffer._plan.remaining)

    def _on_step(self) -> bool:
        return True


@pytest.mark.parametrize(
    "algorithm, n_envs, settings",
    [
        (DQN, 2, dict(train_freq=(3, "step"), gradient_steps=-1, learning_starts=40)),  # gradient steps = env steps
        (DQN, 2, dict(train_freq=(3, "step"), gradient_steps=np.int64(2), learning_starts=36)),  # no train() at 36
        (DQN, 1, dict(train_freq=(1, "episode"), gradient_steps=5, learning_starts=0)),
        (SAC, 2, dict(train_freq=4, gradient_steps=2, learning_starts=30)),
    ],
)
def test_gail_callback_announces_exactly_the_batches_train_samples(cartpole_demos, algorithm, n_envs, settings):
    env_id, demos = "CartPole-v1", cartpole_demos
    if algorithm is SAC:
        env_id, demos = "Pendulum-v1", random_pendulum_demos()
    model = algorithm(
        "MlpPolicy",
        make_vec_env(env_id, n_envs=n_envs, seed=0),
        replay_buffer_class=GailReplayBuffer,
        batch_size=16,
        policy_kwargs=dict(net_arch=[16]),
        seed=0,
        **settings,
    )
    checker = PlanChecker()
    model.learn(300, callback=[GailCallback(demos, batch_size=16, update_per_collect=2), checker])
    assert checker.served == model._n_updates > 0  # every batch of every train() came from a plan
    assert set(checker.leftovers) == {0}
