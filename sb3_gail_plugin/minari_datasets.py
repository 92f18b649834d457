"""
Minari datasets (the Farama Foundation's format for offline and imitation data) as demonstrations, both ways.

Minari stores each episode as ``n + 1`` observations (the last one is the real terminal observation),
``n`` actions and rewards, and per-step ``terminations`` and ``truncations``: an episode ending in a
termination becomes a ``done`` (followed by an absorbing state), one ending in a truncation a ``done``
that is also a ``timeout`` (no absorbing state). Minari is an optional dependency:
``pip install 'sb3-gail-plugin[minari]'``.
"""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path
from typing import Any, List, Optional, Tuple, Union

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec

from sb3_gail_plugin.formats import Converted
from sb3_gail_plugin.transitions import ObsArray, Transitions, conform_transitions, index_obs

METADATA_FILE = "metadata.json"  # what Minari writes in a dataset's data directory
MinariEnv = Union[str, gym.Env, EnvSpec]


def _import_minari() -> Any:
    try:
        import minari
    except ImportError as error:
        raise ImportError(
            "Minari datasets need the optional extra: pip install 'sb3-gail-plugin[minari]' (minari with its HDF5 storage)"
        ) from error
    return minari


def is_minari_dataset(source: Any) -> bool:
    """Whether ``source`` is a ``minari.MinariDataset`` (without importing minari when it is not loaded)."""
    minari = sys.modules.get("minari")
    return minari is not None and isinstance(source, minari.MinariDataset)


def minari_data_dir(path: Path) -> Optional[Path]:
    """
    The data directory of a Minari dataset at ``path``: ``path`` itself if it holds Minari's
    ``metadata.json``, or its ``data/`` subdirectory (the dataset's directory in Minari's local storage).

    :param path: A directory
    :return: The data directory, or ``None`` if ``path`` is not a Minari dataset
    """
    for candidate in (path, path / "data"):
        if (candidate / METADATA_FILE).is_file():
            return candidate
    return None


def looks_like_dataset_id(source: str) -> bool:
    """Whether minari is installed and ``source`` has the form of a Minari dataset id, ``(namespace/)name(-v{version})``."""
    try:
        from minari.dataset.minari_dataset import parse_dataset_id
    except ImportError:
        return False
    try:
        parse_dataset_id(source)
    except (ValueError, TypeError):  # minari 0.5 raises TypeError on an id without its -v{version}
        return False
    return True


def _split_episode_obs(obs: Any, n: int, episode_id: int) -> Tuple[ObsArray, ObsArray]:
    """Observations ``s`` and ``s'`` of an episode's ``n`` steps from its ``n + 1`` observations."""
    if isinstance(obs, tuple):
        raise TypeError(f"Minari episode {episode_id} has Tuple observations: expected a Box, Discrete or Dict space")
    if isinstance(obs, dict):
        nested = sorted(key for key, value in obs.items() if not isinstance(value, np.ndarray))
        if nested:
            raise TypeError(f"Minari episode {episode_id} has nested observations under {nested}: expected a flat Dict space")
        arrays: ObsArray = {key: np.asarray(value) for key, value in obs.items()}
    else:
        arrays = np.asarray(obs)
    lengths = {len(value) for value in arrays.values()} if isinstance(arrays, dict) else {len(arrays)}
    if lengths != {n + 1}:
        raise ValueError(
            f"Minari episode {episode_id} has {n} steps and should hold {n + 1} observations, got {sorted(lengths)}"
        )
    return index_obs(arrays, slice(None, -1)), index_obs(arrays, slice(1, None))


def _episode_transitions(episode: Any) -> Optional[Transitions]:
    """One Minari ``EpisodeData`` as transitions, or ``None`` for an episode without steps."""
    n = len(episode.rewards)
    if n == 0:
        return None
    if isinstance(episode.actions, (dict, tuple)):
        raise TypeError(
            f"Minari episode {episode.id} has {type(episode.actions).__name__} actions: expected a Discrete, Box, "
            "MultiDiscrete or MultiBinary action space"
        )
    terminations = np.asarray(episode.terminations, dtype=bool).reshape(-1)
    truncations = np.asarray(episode.truncations, dtype=bool).reshape(-1)
    early = np.flatnonzero((terminations | truncations)[:-1])
    if len(early) > 0:
        raise ValueError(
            f"Minari episode {episode.id} ends at step {int(early[0])} of {n}: expected terminations and truncations "
            "to be True at most at the last step of each episode"
        )
    observations, next_observations = _split_episode_obs(episode.observations, n, episode.id)
    dones = np.zeros(n, dtype=bool)
    dones[-1] = True
    # a termination wins over a truncation on the same step (SB3: TimeLimit.truncated = truncated and not terminated);
    # an end flagged neither way is where the recording stopped: a truncation, as Minari's DataCollector marks it
    timeouts = dones & ~terminations[-1]
    return Transitions(
        observations=observations,
        actions=np.asarray(episode.actions),
        next_observations=next_observations,
        dones=dones,
        timeouts=timeouts,
        rewards=np.asarray(episode.rewards),
    )


def from_minari_dataset(dataset: Any) -> Converted:
    """
    Convert a ``minari.MinariDataset`` (its episodes in the dataset's order, after any
    ``filter_episodes``): every episode end is stated, as a termination or a truncation.

    :param dataset: The Minari dataset
    :return: The transitions, and which rows state whether their end is a truncation (all of them)
    """
    parts = [part for part in map(_episode_transitions, dataset.iterate_episodes()) if part is not None]
    if not parts:
        raise ValueError(f"The Minari dataset {dataset.spec.dataset_id!r} holds no steps: expected at least one transition")
    transitions = Transitions.concatenate(parts)
    return transitions, np.ones(len(transitions), dtype=bool)


def load_minari_path(path: Path) -> Converted:
    """
    Read the Minari dataset stored at ``path`` (its directory, or the ``data/`` directory inside it).

    :param path: The directory
    :return: The transitions, and which rows state whether their end is a truncation
    """
    data_dir = minari_data_dir(path)
    if data_dir is None:
        raise ValueError(f"{path} is not a Minari dataset: expected {METADATA_FILE} in it or in its data/ directory")
    minari = _import_minari()
    return from_minari_dataset(minari.MinariDataset(data_dir))


def load_minari_id(dataset_id: str) -> Converted:
    """
    Read a Minari dataset from Minari's local storage (``MINARI_DATASETS_PATH``, by default
    ``~/.minari/datasets``). Nothing is downloaded.

    :param dataset_id: The dataset id, e.g. ``"cartpole/expert-v0"``
    :return: The transitions, and which rows state whether their end is a truncation
    :raises FileNotFoundError: if no such dataset is stored locally
    """
    minari = _import_minari()
    try:
        dataset = minari.load_dataset(dataset_id)
    except FileNotFoundError:
        local = sorted(minari.list_local_datasets())
        listed = ", ".join(local[:10]) + (", ..." if len(local) > 10 else "") if local else "none"
        root = os.environ.get("MINARI_DATASETS_PATH", os.path.join("~", ".minari", "datasets"))
        raise FileNotFoundError(
            f"No demonstrations at {dataset_id!r}: no such file or directory, and no Minari dataset with that id in "
            f"Minari's local storage {root} (MINARI_DATASETS_PATH); local datasets: {listed}. Download a remote one "
            f"first with minari.download_dataset({dataset_id!r}) (or `minari download {dataset_id}`)"
        ) from None
    return from_minari_dataset(dataset)


def _first_gap(obs: ObsArray, next_obs: ObsArray) -> Optional[int]:
    """The first step of an episode whose next observation is not the following step's observation, if any."""
    pairs: List[Tuple[np.ndarray, np.ndarray]]
    if isinstance(obs, dict):
        assert isinstance(next_obs, dict)
        pairs = [(obs[key], next_obs[key]) for key in obs]
    else:
        assert not isinstance(next_obs, dict)
        pairs = [(obs, next_obs)]
    gaps = np.zeros(len(pairs[0][0]) - 1, dtype=bool)
    for rows, next_rows in pairs:
        gaps |= (rows[1:] != next_rows[:-1]).reshape(len(gaps), -1).any(axis=1)
    return int(np.flatnonzero(gaps)[0]) if gaps.any() else None


def _episode_buffers(demonstrations: Transitions) -> List[Any]:
    """Minari ``EpisodeBuffer`` objects of contiguous episodes (the last one may be unfinished)."""
    from minari.data_collector.episode_buffer import EpisodeBuffer

    ends = np.flatnonzero(demonstrations.dones)
    if len(ends) == 0 or ends[-1] != len(demonstrations) - 1:
        ends = np.append(ends, len(demonstrations) - 1)
    starts = np.concatenate([[0], ends[:-1] + 1])
    assert demonstrations.actions is not None and demonstrations.rewards is not None
    buffers = []
    for episode_id, (start, end) in enumerate(zip(starts, ends)):
        steps = slice(int(start), int(end) + 1)
        obs, next_obs = index_obs(demonstrations.observations, steps), index_obs(demonstrations.next_observations, steps)
        gap = _first_gap(obs, next_obs)
        if gap is not None:
            step = int(start) + gap
            raise ValueError(
                f"Minari stores each episode as a sequence of observations, but transition {step}'s next observation "
                f"is not transition {step + 1}'s observation (episode {episode_id}): expected contiguous episodes "
                "(demonstrations as recorded, not subsampled or shuffled)"
            )
        if isinstance(obs, dict):
            observations: ObsArray = {key: np.concatenate([obs[key], next_obs[key][-1:]]) for key in obs}
        else:
            observations = np.concatenate([obs, next_obs[-1:]])  # type: ignore[list-item]
        terminations = demonstrations.terminals[steps]
        truncations = demonstrations.timeouts[steps].copy()
        if not demonstrations.dones[end]:
            truncations[-1] = True  # the recording stopped mid-episode: a truncation, as Minari's DataCollector marks it
        buffers.append(
            EpisodeBuffer(
                id=episode_id,
                observations=observations,
                actions=demonstrations.actions[steps],
                rewards=demonstrations.rewards[steps],
                terminations=terminations,
                truncations=truncations,
            )
        )
    return buffers


def save_minari_dataset(
    demonstrations: Transitions,
    dataset_id: str,
    env: Optional[MinariEnv] = None,
    observation_space: Optional[spaces.Space] = None,
    action_space: Optional[spaces.Space] = None,
    **minari_kwargs: Any,
) -> Any:
    """
    Write demonstrations as a Minari dataset in Minari's local storage (``MINARI_DATASETS_PATH``, by
    default ``~/.minari/datasets``), with ``minari.create_dataset_from_buffers``: one episode per
    ``done``, terminations and truncations kept apart (an unfinished last episode ends in a
    truncation). ``load_demonstrations(dataset_id)`` reads it back; ``minari upload`` shares it.

    :param demonstrations: Contiguous episodes with actions and rewards, as :func:`collect_demonstrations`
        records them (not subsampled: Minari stores each episode as a sequence of observations)
    :param dataset_id: The new dataset's id, ``(namespace/)name-v{version}`` (e.g. ``"cartpole/expert-v0"``)
    :param env: The env the demonstrations come from: an env id, a ``gym.Env`` or an ``EnvSpec``
        (Minari keeps its spec so that users can recreate it). Optional if both spaces are given
    :param observation_space: The observation space (default: the env's)
    :param action_space: The action space (default: the env's)
    :param minari_kwargs: Further arguments of ``minari.create_dataset_from_buffers``: ``algorithm_name``,
        ``author``, ``author_email``, ``code_permalink``, ``description``, ``eval_env``, ``data_format``, ...
        (Minari warns about missing metadata). ``jpeg_encoding`` defaults to ``False`` here: image
        observations are stored losslessly
    :return: The new ``minari.MinariDataset``
    """
    minari = _import_minari()
    if observation_space is None or action_space is None:
        if env is None:
            raise ValueError("save_minari_dataset needs the env (an env id, gym.Env or EnvSpec) or both of its spaces")
        spaces_env = gym.make(env) if isinstance(env, (str, EnvSpec)) else env
        observation_space = spaces_env.observation_space if observation_space is None else observation_space
        action_space = spaces_env.action_space if action_space is None else action_space
        if spaces_env is not env:
            spaces_env.close()
    if demonstrations.rewards is None:
        raise ValueError(
            "Minari datasets store rewards, but these demonstrations have none: add them, e.g. "
            "dataclasses.replace(demonstrations, rewards=np.zeros(len(demonstrations)))"
        )
    demonstrations = conform_transitions(demonstrations, observation_space, action_space)
    buffers = _episode_buffers(demonstrations)
    if "jpeg_encoding" in inspect.signature(minari.create_dataset_from_buffers).parameters:
        minari_kwargs.setdefault("jpeg_encoding", False)
    return minari.create_dataset_from_buffers(
        dataset_id,
        buffers,
        env=env,
        observation_space=observation_space,
        action_space=action_space,
        **minari_kwargs,
    )
