import os
import pickle
import warnings
from dataclasses import replace
from typing import Optional

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
    # DI-engine stores done only: 5 episodes of 500 steps are ambiguous
    with pytest.warns(UserWarning, match=r"last 500 steps.*max_episode_steps="):
        loaded = load_demonstrations(path)
    np.testing.assert_allclose(loaded.observations, cartpole_demos.observations)
    np.testing.assert_array_equal(loaded.actions.reshape(-1), cartpole_demos.actions)
    np.testing.assert_array_equal(loaded.dones, cartpole_demos.dones)
    assert not loaded.timeouts.any()
    np.testing.assert_array_equal(load_demonstrations(path, max_episode_steps=500).timeouts, cartpole_demos.dones)
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
    # imitation's own rollouts never write terminal=False: see the tests with real rollouts below


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


def test_reward_model_clips_expert_actions_outside_box_bounds():
    """Agent actions never leave the bounds (SB3 clips them before env.step), so expert ones are clipped to them too."""
    rng = np.random.default_rng(0)
    n = 20
    actions = rng.uniform(-2, 2, (n, 2)).astype(np.float32)
    actions[3, 1], actions[7, 0] = 3.5, -2.75  # an unclipped Gaussian policy's actions, beyond the bounds
    actions[9, 0] = 2.0 + 1e-7  # float rounding at the bound: clipped without a warning
    demos = Transitions(rng.normal(size=(n, 3)), actions, rng.normal(size=(n, 3)), np.zeros(n, dtype=bool))
    obs_space = spaces.Box(-np.inf, np.inf, (3,), np.float32)
    action_space = spaces.Box(-2, 2, (2,), np.float32)
    outside = r"The demonstrations have actions outside the bounds.* in 2 of 20 transitions \(got values in \[-2.75, 3.5\]"
    with pytest.warns(UserWarning, match=outside):
        reward_model = GailRewardModel(obs_space, action_space, demos)
    expected = np.clip(actions, -2, 2)
    np.testing.assert_array_equal(reward_model.expert_data.actions, expected)
    assert reward_model.expert_data.actions[3, 1] == 2.0 and reward_model.expert_data.actions[7, 0] == -2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        within = GailRewardModel(obs_space, action_space, replace(demos, actions=expected))
    np.testing.assert_array_equal(within.expert_data.actions, expected)


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


def _no_ambiguity_warning(record) -> bool:
    return not any("terminations or time-limit truncations" in str(warning.message) for warning in record)


def _imitation_rollouts(n_envs: int, min_episodes: int, exclude_infos: bool, fail_env: Optional[int] = None):
    """Real imitation rollouts of the CartPole heuristic (500-step time-limit ends), env ``fail_env`` dropping the pole."""
    from imitation.data import rollout
    from imitation.data.wrappers import RolloutInfoWrapper

    def policy(obs, states, episode_starts):
        actions = (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)
        if fail_env is not None:
            actions[fail_env] = 0
        return actions, None

    venv = make_vec_env("CartPole-v1", n_envs=n_envs, seed=0, wrapper_class=RolloutInfoWrapper)
    sample_until = rollout.make_sample_until(min_episodes=min_episodes)
    return rollout.rollout(policy, venv, sample_until, rng=np.random.default_rng(0), exclude_infos=exclude_infos)


def test_imitation_rollouts_time_limit_ends_load_as_truncations(tmp_path):
    pytest.importorskip("imitation")
    from imitation.data import rollout, serialize

    trajectories = _imitation_rollouts(n_envs=2, min_episodes=4, exclude_infos=False, fail_env=1)
    lengths = np.array([len(trajectory.acts) for trajectory in trajectories])
    assert all(trajectory.terminal for trajectory in trajectories)  # imitation marks every end terminal
    assert 500 in lengths and np.any(lengths < 500)  # time-limit ends and real terminations
    serialize.save(tmp_path / "imitation_demos", trajectories)
    sources = {
        "trajectories": trajectories,
        "serialize.save directory": tmp_path / "imitation_demos",
        "flattened Transitions": rollout.flatten_trajectories(trajectories),
    }
    for name, source in sources.items():
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            loaded = load_demonstrations(source)
        assert _no_ambiguity_warning(record), name
        np.testing.assert_array_equal(_episode_lengths_of(loaded), lengths, err_msg=name)
        # the 500-step ends are truncations (TimeLimit.truncated in the last infos), the others terminations
        np.testing.assert_array_equal(loaded.timeouts[loaded.dones], lengths == 500, err_msg=name)
        np.testing.assert_array_equal(loaded.observations, np.concatenate([t.obs[:-1] for t in trajectories]), err_msg=name)
        np.testing.assert_array_equal(loaded.next_observations, np.concatenate([t.obs[1:] for t in trajectories]))
        np.testing.assert_array_equal(loaded.actions, np.concatenate([t.acts for t in trajectories]), err_msg=name)


def _episode_lengths_of(demos: Transitions) -> np.ndarray:
    return np.diff(np.concatenate([[-1], np.flatnonzero(demos.dones)]))


def test_imitation_rollouts_without_infos_warn_and_honour_max_episode_steps(tmp_path):
    pytest.importorskip("imitation")
    from imitation.data import rollout, serialize

    # rollout()'s default drops the infos: nothing tells a time-limit end from a termination
    trajectories = _imitation_rollouts(n_envs=2, min_episodes=2, exclude_infos=True)
    assert all(t.terminal and t.infos is None and len(t.acts) == 500 for t in trajectories)
    serialize.save(tmp_path / "imitation_demos", trajectories)
    sources = {
        "trajectories": trajectories,
        "serialize.save directory": tmp_path / "imitation_demos",
        "flattened Transitions": rollout.flatten_trajectories(trajectories),
    }
    n = len(trajectories)
    for name, source in sources.items():
        with pytest.warns(UserWarning, match=rf"All {n} expert episode\(s\) last 500 steps.*max_episode_steps="):
            ambiguous = load_demonstrations(source)
        assert ambiguous.dones.sum() == n and not ambiguous.timeouts.any(), name
        for kwargs in (dict(max_episode_steps=500), dict(timeouts=np.ones(n, dtype=bool))):
            with warnings.catch_warnings(record=True) as record:
                warnings.simplefilter("always")
                loaded = load_demonstrations(source, **kwargs)
            assert _no_ambiguity_warning(record), name
            np.testing.assert_array_equal(loaded.timeouts, loaded.dones, err_msg=name)
            assert loaded.terminals.sum() == 0
        # a longer time limit: the same ends are terminations, stated, so no warning
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            assert load_demonstrations(source, max_episode_steps=1000).terminals.sum() == n
        assert _no_ambiguity_warning(record), name
    # an expert that sometimes fails: episodes of mixed lengths, and still no way to tell the 500-step ends apart
    mixed = _imitation_rollouts(n_envs=2, min_episodes=4, exclude_infos=True, fail_env=1)
    lengths = np.array([len(t.acts) for t in mixed])
    assert 500 in lengths and np.any(lengths < 500)
    with pytest.warns(UserWarning, match=r"expert episode ends \(the longest after 500 steps\).*max_episode_steps"):
        load_demonstrations(mixed)
    np.testing.assert_array_equal(load_demonstrations(mixed, max_episode_steps=500).terminals.sum(), np.sum(lengths < 500))


def test_imitation_directory_infos_are_not_decoded_with_jsonpickle(tmp_path):
    """imitation's serialize.load decodes infos with jsonpickle, which runs code: we read them as JSON."""
    pytest.importorskip("imitation")
    from imitation.data import serialize

    marker = tmp_path / "pwned"

    class RunsCommand:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    trajectories = _imitation_rollouts(n_envs=1, min_episodes=1, exclude_infos=False)[:1]
    last = dict(trajectories[0].infos[-1], payload=RunsCommand())
    trajectories[0] = replace(trajectories[0], infos=np.array([*trajectories[0].infos[:-1], last]))
    serialize.save(tmp_path / "imitation_demos", trajectories)
    loaded = load_demonstrations(tmp_path / "imitation_demos")
    assert not marker.exists()
    np.testing.assert_array_equal(loaded.timeouts[loaded.dones], [True])  # TimeLimit.truncated, read as JSON
    # the payload is live: decoding imitation's infos runs the command
    serialize.load(tmp_path / "imitation_demos")[0].infos[-1]
    assert marker.exists()


def test_di_engine_dicts_truncation_rules():
    demos = _episodes([4, 6, 6], [False, False, False])
    rows = [
        dict(obs=demos.observations[i], action=demos.actions[i], next_obs=demos.next_observations[i], done=demos.dones[i])
        for i in range(len(demos))
    ]
    # done only, episodes of different lengths: still ambiguous (a time limit at 6 steps?), so terminations, with a warning
    with pytest.warns(UserWarning, match=r"3 of 3 expert episode ends \(the longest after 6 steps\).*max_episode_steps"):
        loaded = load_demonstrations(rows)
    assert loaded.terminals.sum() == 3
    # stating that every end is a termination silences it
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert load_demonstrations(rows, timeouts=[False, False, False]).terminals.sum() == 3
    assert _no_ambiguity_warning(record)
    # the time limit: only the 6-step ends are truncations
    np.testing.assert_array_equal(load_demonstrations(rows, max_episode_steps=6).timeouts[demos.dones], [False, True, True])
    with pytest.raises(ValueError, match="lasts 6 steps, more than max_episode_steps=5"):
        load_demonstrations(rows, max_episode_steps=5)
    # done only, every episode of the same length: ambiguous
    with pytest.warns(UserWarning, match=r"All 2 expert episode\(s\) last 6 steps"):
        assert load_demonstrations(rows[4:]).terminals.sum() == 2
    # stated in the rows (DI-engine keys or SB3's info): read, no warning
    for key, value in (("timeout", True), ("truncated", th.tensor(True)), ("info", {"TimeLimit.truncated": True})):
        stated = [dict(row, **{key: value}) if row["done"] else row for row in rows[4:]]
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            loaded = load_demonstrations(stated)
        assert _no_ambiguity_warning(record), key
        np.testing.assert_array_equal(loaded.timeouts[loaded.dones], [True, True], err_msg=key)


def test_timeouts_argument_per_transition_or_per_episode():
    demos = _episodes([3, 5, 5], [False, True, False])  # a Transitions batch states its ends
    np.testing.assert_array_equal(load_demonstrations(demos).timeouts, demos.timeouts)
    per_episode = load_demonstrations(demos, timeouts=[True, False, True])
    np.testing.assert_array_equal(per_episode.timeouts[per_episode.dones], [True, False, True])
    per_transition = load_demonstrations(demos, timeouts=per_episode.timeouts)
    np.testing.assert_array_equal(per_transition.timeouts, per_episode.timeouts)
    # max_episode_steps overrides the batch's own flags too
    np.testing.assert_array_equal(load_demonstrations(demos, max_episode_steps=5).timeouts[demos.dones], [False, True, True])
    with pytest.raises(ValueError, match=r"one flag per transition \(13\) or per episode end \(3\), got 2"):
        load_demonstrations(demos, timeouts=[True, False])
    with pytest.raises(ValueError, match=r"True only where an episode ends \(done\), got True at transitions \[0\]"):
        load_demonstrations(demos, timeouts=np.eye(1, 13, 0, dtype=bool)[0])
    with pytest.raises(ValueError, match="either timeouts or max_episode_steps"):
        load_demonstrations(demos, timeouts=[True, False, True], max_episode_steps=5)
    with pytest.raises(ValueError, match="max_episode_steps must be a positive integer, got 0"):
        load_demonstrations(demos, max_episode_steps=0)
    # the flags hold through subsampling
    sub = load_demonstrations(demos, subsample_every=2, seed=0, timeouts=[True, False, True])
    np.testing.assert_array_equal(sub.timeouts[sub.dones], [True, False, True])
