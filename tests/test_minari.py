"""Minari datasets: read by id, by path and as objects, written by save_minari_dataset (nothing downloaded)."""

from dataclasses import dataclass, replace
from typing import Any, Dict, List

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from sb3_gail_plugin import Transitions, collect_demonstrations, load_demonstrations, save_minari_dataset
from sb3_gail_plugin.minari_datasets import from_minari_dataset
from sb3_gail_plugin.tensor_data import TransitionTensors
from tests.dict_cartpole import DictCartPole

minari = pytest.importorskip("minari")

# Minari asks for metadata (author, description, ...) with a UserWarning each; tests leave most of it out
pytestmark = pytest.mark.filterwarnings("ignore:.*(is set to None|env_spec is None):UserWarning")

FIELDS = ("observations", "actions", "next_observations", "dones", "timeouts", "rewards")
TIME_LIMIT = 20  # short enough that random CartPole episodes end both ways


def _needs_storage() -> None:
    pytest.importorskip("h5py", reason="Minari's default HDF5 storage needs h5py: pip install 'sb3-gail-plugin[minari]'")


def _assert_same(loaded: Transitions, expected: Transitions) -> None:
    for field in FIELDS:
        np.testing.assert_array_equal(getattr(loaded, field), getattr(expected, field), err_msg=field)


@pytest.fixture
def minari_root(tmp_path, monkeypatch):
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


@dataclass
class Recorded:
    """What the env returned during the DataCollector run, step by step, kept apart from Minari."""

    observations: List[np.ndarray]  # n + 1 per episode
    actions: List[int]
    rewards: List[float]
    terminated: bool
    truncated: bool


@pytest.fixture
def collected(minari_root):
    """A Minari dataset recorded here with minari.DataCollector on CartPole-v1, and what the env returned."""
    _needs_storage()
    pytest.importorskip("jax", reason="minari.DataCollector needs jax: pip install 'minari[create]'")
    env = minari.DataCollector(gym.make("CartPole-v1", max_episode_steps=TIME_LIMIT))
    env.action_space.seed(0)
    episodes = []
    for seed in range(8):
        obs, _ = env.reset(seed=seed)
        episode = Recorded([obs], [], [], False, False)
        while not (episode.terminated or episode.truncated):
            action = int(env.action_space.sample())
            obs, reward, episode.terminated, episode.truncated, _ = env.step(action)
            episode.observations.append(obs)
            episode.actions.append(action)
            episode.rewards.append(float(reward))
        episodes.append(episode)
    dataset = env.create_dataset("cartpole/random-v0", algorithm_name="random", author="tests", description="test data")
    env.close()
    # the test data must hold both kinds of ends
    assert {episode.terminated for episode in episodes} == {True, False}
    return dataset, episodes


def test_data_collector_dataset_keeps_terminations_apart_from_truncations(collected):
    _, episodes = collected
    demos = load_demonstrations("cartpole/random-v0")
    ends = np.flatnonzero(demos.dones)
    assert len(ends) == len(episodes) and ends[-1] == len(demos) - 1
    starts = np.concatenate([[0], ends[:-1] + 1])
    for episode, start, end in zip(episodes, starts, ends):
        steps = slice(start, end + 1)
        observations = np.array(episode.observations)
        assert end + 1 - start == len(episode.actions)
        # s and s' line up: s' of the last step is the real terminal observation, never a reset one
        np.testing.assert_array_equal(demos.observations[steps], observations[:-1])
        np.testing.assert_array_equal(demos.next_observations[steps], observations[1:])
        np.testing.assert_array_equal(demos.actions[steps], episode.actions)
        np.testing.assert_array_equal(demos.rewards[steps], episode.rewards)
        assert demos.terminals[end] == episode.terminated
        assert demos.timeouts[end] == (episode.truncated and not episode.terminated)
        if episode.truncated:
            assert end + 1 - start == TIME_LIMIT
    assert not (demos.dones[:-1] & np.isin(np.arange(len(demos) - 1), ends, invert=True)).any()
    # absorbing states: one per termination, none for the truncated episodes
    n_terminated = sum(episode.terminated for episode in episodes)
    assert len(TransitionTensors(demos, th.device("cpu"), absorbing=True)) == len(demos) + n_terminated


def test_minari_dataset_loads_alike_by_id_by_path_and_as_object(collected, minari_root):
    dataset, _ = collected
    by_id = load_demonstrations("cartpole/random-v0")
    for source in (minari_root / "cartpole" / "random-v0", str(minari_root / "cartpole" / "random-v0" / "data"), dataset):
        _assert_same(load_demonstrations(source), by_id)
    # Minari's own episode filter is honoured
    long_ones = dataset.filter_episodes(lambda episode: len(episode.rewards) == TIME_LIMIT)
    assert load_demonstrations(long_ones).dones.sum() == long_ones.total_episodes


def test_save_minari_dataset_round_trip_of_a_data_collector_dataset(collected):
    dataset, _ = collected
    demos = load_demonstrations(dataset)
    written = save_minari_dataset(demos, "cartpole/copy-v0", env="CartPole-v1", algorithm_name="copy", author="tests")
    assert written.total_episodes == dataset.total_episodes and written.total_steps == dataset.total_steps
    for original, copy in zip(dataset.iterate_episodes(), minari.load_dataset("cartpole/copy-v0").iterate_episodes()):
        np.testing.assert_array_equal(copy.observations, original.observations)
        np.testing.assert_array_equal(copy.terminations, original.terminations)
        np.testing.assert_array_equal(copy.truncations, original.truncations)
    _assert_same(load_demonstrations("cartpole/copy-v0"), demos)


def test_save_minari_dataset_round_trip_of_recorded_demonstrations(cartpole_expert, minari_root):
    _needs_storage()
    demos = collect_demonstrations(cartpole_expert, gym.make("CartPole-v1", max_episode_steps=30), n_episodes=3, seed=0)
    assert demos.timeouts[demos.dones].all()  # the time limit ends them
    save_minari_dataset(demos, "expert-v0", env="CartPole-v1", algorithm_name="heuristic")
    assert (minari_root / "expert-v0" / "data").is_dir()
    _assert_same(load_demonstrations("expert-v0"), demos)
    # an unfinished last episode is stored as a truncation (Minari's DataCollector marks it so)
    save_minari_dataset(demos[np.arange(len(demos) - 5)], "unfinished-v0", env="CartPole-v1", algorithm_name="heuristic")
    loaded = load_demonstrations("unfinished-v0")
    assert loaded.dones[-1] and loaded.timeouts[-1] and loaded.dones.sum() == 3


def test_save_minari_dataset_round_trip_of_dict_observations(cartpole_expert, minari_root):
    _needs_storage()

    class DictExpert:
        def predict(self, obs: Dict[str, np.ndarray], deterministic: bool = True, **_: Any):
            return cartpole_expert.predict(np.concatenate([obs["cart"], obs["pole"]], axis=1))

    env = DictCartPole(gym.make("CartPole-v1", max_episode_steps=15))
    demos = collect_demonstrations(DictExpert(), env, n_episodes=2, seed=0)
    save_minari_dataset(demos, "dict-v0", observation_space=env.observation_space, action_space=env.action_space)
    loaded = load_demonstrations("dict-v0")
    assert set(loaded.observations) == {"cart", "pole"}
    for key in ("cart", "pole"):
        np.testing.assert_array_equal(loaded.observations[key], demos.observations[key])
        np.testing.assert_array_equal(loaded.next_observations[key], demos.next_observations[key])
    np.testing.assert_array_equal(loaded.timeouts, demos.timeouts)


def test_missing_dataset_id_says_where_it_looked(minari_root):
    with pytest.raises(FileNotFoundError, match=r"'cartpole/missing-v0'.*no Minari dataset with that id.*MINARI_DATASETS"):
        load_demonstrations("cartpole/missing-v0")
    with pytest.raises(FileNotFoundError, match=r"No demonstrations at missing\.npz$"):  # not a dataset id
        load_demonstrations("missing.npz")


def test_save_minari_dataset_refuses_what_minari_cannot_hold_before_writing(cartpole_demos, minari_root):
    with pytest.raises(ValueError, match="contiguous episodes"):
        save_minari_dataset(load_demonstrations(cartpole_demos, subsample_every=5, seed=0), "sub-v0", env="CartPole-v1")
    with pytest.raises(ValueError, match="rewards"):
        save_minari_dataset(replace(cartpole_demos, rewards=None), "norew-v0", env="CartPole-v1")
    with pytest.raises(ValueError, match="needs the env"):
        save_minari_dataset(cartpole_demos, "nospace-v0")
    with pytest.raises(ValueError, match=r"actions have shape \(\) per transition, expected \(1,\)"):
        save_minari_dataset(cartpole_demos, "wrongenv-v0", env="MountainCarContinuous-v0")
    assert not any((minari_root / name).exists() for name in ("sub-v0", "norew-v0", "nospace-v0", "wrongenv-v0"))


class _FakeDataset:
    """The part of MinariDataset that the converter reads, with in-memory episodes (no storage needed)."""

    def __init__(self, episodes: List[Any]) -> None:
        self.episodes = episodes

    def iterate_episodes(self):
        return iter(self.episodes)


def _episode(n: int, terminated: bool, truncated: bool, **changes: Any):
    fields: Dict[str, Any] = dict(
        id=0,
        observations=np.arange(n + 1, dtype=np.float32).reshape(-1, 1) * np.ones(4, dtype=np.float32),
        actions=np.zeros(n, dtype=np.int64),
        rewards=np.ones(n),
        terminations=np.zeros(n, dtype=bool),
        truncations=np.zeros(n, dtype=bool),
        infos={},
    )
    if n > 0:
        fields["terminations"][-1], fields["truncations"][-1] = terminated, truncated
    fields.update(changes)
    return minari.EpisodeData(**fields)


def test_episode_ends_map_to_dones_and_timeouts():
    demos, known = from_minari_dataset(
        _FakeDataset(
            [
                _episode(3, terminated=True, truncated=False),
                _episode(2, terminated=False, truncated=True),
                _episode(2, terminated=True, truncated=True),  # both: a termination (SB3's rule)
                _episode(0, terminated=False, truncated=False),  # no step: skipped
                _episode(2, terminated=False, truncated=False),  # where the recording stopped: a truncation
            ]
        )
    )
    assert known.all()
    np.testing.assert_array_equal(demos.dones, [0, 0, 1, 0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(demos.timeouts, [0, 0, 0, 0, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(demos.next_observations[:3, 0], [1, 2, 3])
    np.testing.assert_array_equal(demos.observations[:3, 0], [0, 1, 2])


def test_malformed_minari_episodes_are_refused():
    early = _episode(3, terminated=True, truncated=False, terminations=np.array([True, False, True]))
    with pytest.raises(ValueError, match="ends at step 0 of 3"):
        from_minari_dataset(_FakeDataset([early]))
    short = _episode(3, terminated=True, truncated=False, observations=np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="should hold 4 observations, got \\[3\\]"):
        from_minari_dataset(_FakeDataset([short]))
    tuple_obs = _episode(2, terminated=True, truncated=False, observations=(np.zeros((3, 1)), np.zeros((3, 1))))
    with pytest.raises(TypeError, match="Tuple observations"):
        from_minari_dataset(_FakeDataset([tuple_obs]))
