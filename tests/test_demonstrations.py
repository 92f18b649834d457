import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from sb3_gail_plugin import GailRewardModel, Transitions, collect_demonstrations, load_demonstrations, save_demonstrations


def test_collect_records_complete_episodes_with_terminal_observations(cartpole_demos):
    returns = cartpole_demos.episode_returns()
    assert len(returns) == 5
    assert np.all(returns == 500)
    assert cartpole_demos.dones.sum() == 5
    # CartPole-v1 episodes of 500 steps end by the time limit, never by termination
    assert np.array_equal(cartpole_demos.timeouts, cartpole_demos.dones)
    # next_obs of a step is the obs of the following step inside an episode
    inside = np.flatnonzero(~cartpole_demos.dones[:-1])
    np.testing.assert_array_equal(cartpole_demos.next_observations[inside], cartpole_demos.observations[inside + 1])


def test_collect_keeps_real_terminal_observation_on_termination():
    class AlwaysLeft:
        def predict(self, obs, deterministic=True):
            return np.zeros(len(obs), dtype=np.int64), None

    demos = collect_demonstrations(AlwaysLeft(), "CartPole-v1", n_episodes=3, seed=0)
    ends = np.flatnonzero(demos.dones)
    assert len(ends) == 3 and not demos.timeouts.any()
    # the terminal observation is out of bounds (pole fell), unlike a reset observation
    assert np.all(np.abs(demos.next_observations[ends, 2]) > 0.2094)


def test_collect_with_several_envs_and_vecnormalize_records_raw_observations(cartpole_expert):
    venv = VecNormalize(make_vec_env("CartPole-v1", n_envs=3, seed=0))
    demos = collect_demonstrations(cartpole_expert, venv, n_episodes=4)
    assert demos.dones.sum() == 4
    assert np.all(demos.episode_returns() == 500)
    # raw CartPole observations stay within the env's bounds and are not standardised
    assert np.abs(demos.observations[:, 0]).max() < 2.4


def test_npz_round_trip(cartpole_demos, tmp_path):
    path = save_demonstrations(cartpole_demos, tmp_path / "expert")
    assert path.suffix == ".npz"
    loaded = load_demonstrations(path)
    for field in ("observations", "actions", "next_observations", "dones", "timeouts", "rewards"):
        np.testing.assert_array_equal(getattr(loaded, field), getattr(cartpole_demos, field))


def test_npz_round_trip_dict_observations(tmp_path):
    demos = Transitions(
        observations={"a": np.arange(6, dtype=np.float32).reshape(3, 2), "b": np.arange(3)},
        actions=np.array([0, 1, 0]),
        next_observations={"a": np.ones((3, 2), dtype=np.float32), "b": np.arange(3)},
        dones=np.array([False, False, True]),
    )
    loaded = load_demonstrations(save_demonstrations(demos, tmp_path / "dict.npz"))
    assert set(loaded.observations) == {"a", "b"}
    np.testing.assert_array_equal(loaded.observations["a"], demos.observations["a"])
    assert loaded.rewards is None


def test_di_engine_pickle_with_tensors(cartpole_demos, tmp_path):
    rows = [
        dict(
            obs=th.as_tensor(cartpole_demos.observations[i]),
            action=th.tensor([int(cartpole_demos.actions[i])]),
            next_obs=th.as_tensor(cartpole_demos.next_observations[i]),
            reward=th.tensor([1.0]),
            done=bool(cartpole_demos.dones[i]),
        )
        for i in range(len(cartpole_demos))
    ]
    path = tmp_path / "expert_data.pkl"
    with open(path, "wb") as file:
        pickle.dump(rows, file)
    loaded = load_demonstrations(path)
    np.testing.assert_allclose(loaded.observations, cartpole_demos.observations)
    np.testing.assert_array_equal(loaded.actions.reshape(-1), cartpole_demos.actions)
    np.testing.assert_array_equal(loaded.dones, cartpole_demos.dones)
    # DI-engine actions of shape (1,) are accepted by the reward model
    env = gym.make("CartPole-v1")
    GailRewardModel(env.observation_space, env.action_space, loaded)


def test_imitation_trajectories_and_serialize(cartpole_demos, tmp_path):
    pytest.importorskip("imitation")
    from imitation.data import serialize
    from imitation.data.types import TrajectoryWithRew

    ends = np.flatnonzero(cartpole_demos.dones)
    starts = np.concatenate([[0], ends[:-1] + 1])
    trajectories = [
        TrajectoryWithRew(
            obs=np.concatenate([cartpole_demos.observations[s : e + 1], cartpole_demos.next_observations[e : e + 1]]),
            acts=cartpole_demos.actions[s : e + 1],
            infos=None,
            terminal=False,
            rews=cartpole_demos.rewards[s : e + 1],
        )
        for s, e in zip(starts, ends)
    ]
    for source in (trajectories, tmp_path / "imitation_demos"):
        if not isinstance(source, list):
            serialize.save(source, trajectories)
        loaded = load_demonstrations(source)
        np.testing.assert_allclose(loaded.observations, cartpole_demos.observations)
        np.testing.assert_allclose(loaded.next_observations, cartpole_demos.next_observations)
        np.testing.assert_array_equal(loaded.actions, cartpole_demos.actions)
        np.testing.assert_array_equal(loaded.dones, cartpole_demos.dones)
        np.testing.assert_array_equal(loaded.timeouts, cartpole_demos.dones)  # terminal=False: truncated


@pytest.mark.parametrize(
    "source, message",
    [
        ([], "empty"),
        ([{"obs": [0.0], "done": True}], "next_obs"),
        (42, "Expected demonstrations"),
    ],
)
def test_load_rejects_bad_sources(source, message):
    with pytest.raises((ValueError, TypeError), match=message):
        load_demonstrations(source)


def test_load_rejects_nan(cartpole_demos):
    bad = cartpole_demos[np.arange(10)]
    bad.observations = bad.observations.copy()
    bad.observations[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        load_demonstrations(bad)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_demonstrations(tmp_path / "nope.npz")


def test_inconsistent_lengths_are_refused():
    with pytest.raises(ValueError, match="same length"):
        Transitions(np.zeros((3, 2)), np.zeros(2), np.zeros((3, 2)), np.zeros(3))


def test_reward_model_checks_demonstrations_against_spaces(cartpole_demos):
    obs_space = spaces.Box(-np.inf, np.inf, (4,), np.float32)
    with pytest.raises(ValueError, match=r"shape \(4,\) per transition, expected \(3,\)"):
        GailRewardModel(spaces.Box(-1, 1, (3,), np.float32), spaces.Discrete(2), cartpole_demos)
    with pytest.raises(ValueError, match=r"actions must lie in the env's space Discrete\(1\)"):
        GailRewardModel(obs_space, spaces.Discrete(1), cartpole_demos)
    with pytest.raises(ValueError, match=r"actions have shape \(\) per transition, expected \(2,\)"):
        GailRewardModel(obs_space, spaces.Box(-1, 1, (2,), np.float32), cartpole_demos)
    with pytest.raises(TypeError, match="Unsupported action space"):
        GailRewardModel(obs_space, spaces.Tuple([spaces.Discrete(2)]), cartpole_demos)
    with pytest.raises(ValueError, match="empty"):
        GailRewardModel(obs_space, spaces.Discrete(2), cartpole_demos[np.arange(0)])
    inf_demos = cartpole_demos[np.arange(5)]
    inf_demos.next_observations = np.full_like(inf_demos.next_observations, np.inf)
    with pytest.raises(ValueError, match="next_observations must be finite"):
        GailRewardModel(obs_space, spaces.Discrete(2), inf_demos)
    with pytest.raises(ValueError, match="have no actions"):
        GailRewardModel(obs_space, spaces.Discrete(2), cartpole_demos.without_actions())


def _episodes(lengths, timeouts_at_end):
    """Transitions whose observation is ``[episode index, step index]``, episode after episode."""
    obs = np.array([[episode, step] for episode, length in enumerate(lengths) for step in range(length)], dtype=np.float32)
    ends = np.cumsum(lengths) - 1
    dones = np.zeros(len(obs), dtype=bool)
    dones[ends] = True
    timeouts = np.zeros(len(obs), dtype=bool)
    timeouts[ends] = timeouts_at_end
    return Transitions(obs, np.zeros(len(obs), dtype=np.int64), obs + 0.5, dones, timeouts, np.ones(len(obs)))


def test_subsampling_keeps_each_episode_end():
    lengths, ends_truncated = [7, 10, 13, 9], [False, False, False, True]
    demos = _episodes(lengths, ends_truncated)
    for seed in range(20):
        sub = load_demonstrations(demos, subsample_every=4, seed=seed)
        # each episode still ends with its done flag, terminations and truncations kept apart
        np.testing.assert_array_equal(sub.observations[sub.dones, 1], np.array(lengths) - 1)
        np.testing.assert_array_equal(sub.timeouts[sub.dones], ends_truncated)
        assert sub.terminals.sum() == 3
        for episode, length in enumerate(lengths):
            steps = sub.observations[sub.observations[:, 0] == episode, 1].astype(int)
            kept_dones = sub.dones[sub.observations[:, 0] == episode]
            # every 4th step from an offset below 4, plus the last step; only the last one is done
            assert steps[0] < 4 and np.all(np.diff(steps[:-1]) == 4) and 1 <= steps[-1] - steps[-2] <= 4
            assert steps[-1] == length - 1 and kept_dones[-1] and not kept_dones[:-1].any()


class _FixedLengthEnv(gym.Env):
    """Terminates after ``length`` steps; observes ``[length, step]``."""

    def __init__(self, length: int) -> None:
        self.length, self.steps = length, 0
        self.observation_space = spaces.Box(0.0, 100.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2)

    def _obs(self):
        return np.array([self.length, self.steps], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self._obs(), {}

    def step(self, action):
        self.steps += 1
        return self._obs(), 1.0, self.steps == self.length, False, {}


class _AlwaysZero:
    def predict(self, obs, deterministic=True):
        return np.zeros(len(obs), dtype=np.int64), None


def test_collect_with_several_envs_keeps_per_env_quotas():
    def make_venv():
        return DummyVecEnv([lambda length=length: _FixedLengthEnv(length) for length in (5, 40, 12)])

    demos = collect_demonstrations(_AlwaysZero(), make_venv(), n_episodes=5)
    ends = np.flatnonzero(demos.dones)
    # evaluate_policy's quotas [1, 2, 2]; the first 5 episodes to end would be [5, 5, 12, 5, 5] steps long
    np.testing.assert_array_equal(np.diff(np.concatenate([[-1], ends])), [5, 40, 40, 12, 12])
    np.testing.assert_array_equal(demos.observations[ends, 0], [5, 40, 40, 12, 12])
    np.testing.assert_array_equal(demos.next_observations[ends, 1], [5, 40, 40, 12, 12])  # real terminal observations
    assert demos.terminals.sum() == 5
    # deterministic order: env after env, whatever the episodes' lengths
    again = collect_demonstrations(_AlwaysZero(), make_venv(), n_episodes=5)
    np.testing.assert_array_equal(again.observations, demos.observations)
    # more envs than episodes: the first envs get no quota
    few = collect_demonstrations(_AlwaysZero(), make_venv(), n_episodes=2)
    np.testing.assert_array_equal(few.observations[few.dones, 0], [40, 12])
