"""Collect, save and load expert demonstrations."""

from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from sb3_gail_plugin.formats import (
    Converted,
    from_imitation_trajectories,
    from_imitation_transitions,
    from_transition_dicts,
    load_imitation_path,
)
from sb3_gail_plugin.minari_datasets import (
    from_minari_dataset,
    is_minari_dataset,
    load_minari_id,
    load_minari_path,
    looks_like_dataset_id,
    minari_data_dir,
)
from sb3_gail_plugin.safe_pickle import UnsafePickleError, safe_load
from sb3_gail_plugin.transitions import TIME_LIMIT_KEY, ObsArray, Transitions, check_finite_and_non_empty

DemonstrationSource = Union[Transitions, str, "os.PathLike[str]", Sequence[Any], Any]
TimeoutFlags = Union[np.ndarray, Sequence[bool]]

FORMAT_VERSION = 1
_OBS_PREFIX = "observations/"
_NEXT_OBS_PREFIX = "next_observations/"


def _obs_at(obs: ObsArray, index: int) -> Any:
    if isinstance(obs, dict):
        return {key: np.array(value[index]) for key, value in obs.items()}
    return np.array(obs[index])


def collect_demonstrations(
    model: Any,
    env: Union[gym.Env, VecEnv, str],
    n_episodes: int = 10,
    deterministic: bool = True,
    seed: Optional[int] = None,
) -> Transitions:
    """
    Roll out a trained policy and record its complete episodes as demonstrations.

    Observations are recorded raw: if ``env`` is a ``VecNormalize``, the policy gets normalised
    observations while the demonstrations keep the raw ones, as the discriminator expects.

    :param model: Any SB3 model (or object with SB3's ``predict(obs, deterministic=...)``)
    :param env: The environment: a ``gym.Env``, a ``VecEnv`` or an env id
    :param n_episodes: Number of complete episodes to record. With several envs, env ``i`` records
        ``(n_episodes + i) // n_envs`` of them (SB3's ``evaluate_policy`` quotas), so that short
        episodes are not favoured.
    :param deterministic: Whether to use the deterministic policy
    :param seed: Seed for the environment reset
    :return: The recorded transitions, episode after episode (env after env, each env's episodes in
        the order they ended), with env rewards
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be at least 1, got {n_episodes}")
    if isinstance(env, str):
        env = make_vec_env(env, n_envs=1, seed=seed)
    elif not isinstance(env, VecEnv):
        single_env = env
        env = DummyVecEnv([lambda: single_env])
        env.seed(seed)
    elif seed is not None:
        env.seed(seed)
    normalizer = env if isinstance(env, VecNormalize) else None
    venv: VecEnv = normalizer.venv if normalizer is not None else env

    # per-env quotas, as SB3's evaluate_policy: keeping the first episodes to end would favour short ones
    targets = [(n_episodes + i) // venv.num_envs for i in range(venv.num_envs)]
    episodes: List[List[Transitions]] = [[] for _ in range(venv.num_envs)]
    current: List[List[Dict[str, Any]]] = [[] for _ in range(venv.num_envs)]
    obs: Any = venv.reset()
    while any(len(done) < target for done, target in zip(episodes, targets)):
        policy_obs = normalizer.normalize_obs(obs) if normalizer is not None else obs
        actions, _ = model.predict(policy_obs, deterministic=deterministic)
        new_obs: Any
        new_obs, rewards, dones, infos = venv.step(actions)
        for i in range(venv.num_envs):
            if len(episodes[i]) == targets[i]:
                continue
            next_obs = infos[i]["terminal_observation"] if dones[i] else _obs_at(new_obs, i)
            current[i].append(
                dict(
                    obs=_obs_at(obs, i),
                    action=np.array(actions[i]),
                    next_obs=next_obs,
                    reward=float(rewards[i]),
                    done=bool(dones[i]),
                    timeout=bool(dones[i] and infos[i].get(TIME_LIMIT_KEY, False)),
                )
            )
            if dones[i]:
                episodes[i].append(from_transition_dicts(current[i])[0])
                current[i] = []
        obs = new_obs
    return Transitions.concatenate([episode for env_episodes in episodes for episode in env_episodes])


def save_demonstrations(demonstrations: Transitions, path: Union[str, os.PathLike[str]]) -> Path:
    """
    Save demonstrations to our ``.npz`` format (compressed, no pickle).

    :param demonstrations: The transitions to save
    :param path: Where to save them; ``.npz`` is appended if missing
    :return: The path of the written file
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays: Dict[str, np.ndarray] = {
        "format_version": np.array(FORMAT_VERSION),
        "dones": demonstrations.dones,
        "timeouts": demonstrations.timeouts,
    }
    for prefix, obs in ((_OBS_PREFIX, demonstrations.observations), (_NEXT_OBS_PREFIX, demonstrations.next_observations)):
        if isinstance(obs, dict):
            arrays.update({prefix + key: value for key, value in obs.items()})
        else:
            arrays[prefix.rstrip("/")] = obs
    if demonstrations.actions is not None:
        arrays["actions"] = demonstrations.actions
    if demonstrations.rewards is not None:
        arrays["rewards"] = demonstrations.rewards
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    return path


def _load_npz(path: Path) -> Converted:
    with np.load(path, allow_pickle=False) as data:
        files = set(data.files)
        missing = {"dones"} - files
        if missing or not ({"observations", _OBS_PREFIX} & files or any(f.startswith(_OBS_PREFIX) for f in files)):
            raise ValueError(
                f"{path} is not a demonstrations file of ours: expected keys observations, dones, ...; got {sorted(files)}"
            )

        def obs(prefix: str) -> ObsArray:
            keys = [f for f in data.files if f.startswith(prefix)]
            if keys:
                return {f[len(prefix) :]: data[f] for f in keys}
            return data[prefix.rstrip("/")]

        transitions = Transitions(
            observations=obs(_OBS_PREFIX),
            actions=data["actions"] if "actions" in files else None,
            next_observations=obs(_NEXT_OBS_PREFIX),
            dones=data["dones"],
            timeouts=data["timeouts"] if "timeouts" in files else np.zeros(len(data["dones"]), dtype=bool),
            rewards=data["rewards"] if "rewards" in files else None,
        )
        return transitions, np.full(len(transitions), "timeouts" in files)


def subsample_episodes(demonstrations: Transitions, every: int, seed: Optional[int] = None) -> Transitions:
    """
    Keep every ``every``-th transition of each episode, from a random offset per episode (DAC's
    protocol, which makes few demonstrations less easy to memorise), and always each episode's last
    transition, so that every kept episode still ends with its ``done`` (and ``timeout``) flag.

    :param demonstrations: Transitions stored episode after episode
    :param every: Keep one transition in ``every``
    :param seed: Seed of the offsets
    :return: The subsampled transitions
    """
    if every < 1:
        raise ValueError(f"subsample_every must be a positive integer, got {every}")
    if every == 1:
        return demonstrations
    rng = np.random.default_rng(seed)
    ends = np.flatnonzero(demonstrations.dones)
    if len(ends) == 0 or ends[-1] != len(demonstrations) - 1:
        ends = np.append(ends, len(demonstrations) - 1)  # an unfinished last episode
    starts = np.concatenate([[0], ends[:-1] + 1])
    keep = [np.arange(s + rng.integers(0, min(every, e - s + 1)), e + 1, every) for s, e in zip(starts, ends)]
    # the last transition carries the episode's done flag: without it a terminated episode has no absorbing sample
    keep = [np.append(kept, e) if kept[-1] != e else kept for kept, e in zip(keep, ends)]
    return demonstrations[np.concatenate(keep)]


def _episode_lengths(dones: np.ndarray) -> np.ndarray:
    """Length of each episode that ends with a done (transitions stored episode after episode)."""
    return np.diff(np.concatenate([[-1], np.flatnonzero(dones)]))


def _resolve_timeouts(
    demonstrations: Transitions,
    known: np.ndarray,
    max_episode_steps: Optional[int],
    timeouts: Optional[TimeoutFlags],
) -> Transitions:
    """Decide which episode ends are time-limit truncations (see :func:`load_demonstrations`)."""
    ends = np.flatnonzero(demonstrations.dones)
    if timeouts is not None and max_episode_steps is not None:
        raise ValueError(f"Pass either timeouts or max_episode_steps, not both: got max_episode_steps={max_episode_steps} too")
    if timeouts is not None:
        flags = np.asarray(timeouts, dtype=bool).reshape(-1)
        if len(flags) == len(demonstrations):
            if np.any(flags & ~demonstrations.dones):
                bad = np.flatnonzero(flags & ~demonstrations.dones)[:5].tolist()
                raise ValueError(f"timeouts must be True only where an episode ends (done), got True at transitions {bad}")
            return replace(demonstrations, timeouts=flags)
        if len(flags) == len(ends):
            per_transition = np.zeros(len(demonstrations), dtype=bool)
            per_transition[ends] = flags
            return replace(demonstrations, timeouts=per_transition)
        raise ValueError(
            f"timeouts must hold one flag per transition ({len(demonstrations)}) or per episode end ({len(ends)}), "
            f"got {len(flags)}"
        )
    lengths = _episode_lengths(demonstrations.dones)
    if max_episode_steps is not None:
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be a positive integer, got {max_episode_steps}")
        if np.any(lengths > max_episode_steps):
            raise ValueError(
                f"An episode lasts {lengths.max()} steps, more than max_episode_steps={max_episode_steps}: "
                "pass the env's time limit (e.g. env.spec.max_episode_steps)"
            )
        per_transition = np.zeros(len(demonstrations), dtype=bool)
        per_transition[ends] = lengths == max_episode_steps
        return replace(demonstrations, timeouts=per_transition)
    undescribed = ~known[ends]
    if undescribed.any():
        longest = int(lengths[undescribed].max())
        same = len(np.unique(lengths)) == 1
        described = (
            f"All {len(ends)} expert episode(s) last {longest} steps"
            if same
            else (f"{int(undescribed.sum())} of {len(ends)} expert episode ends (the longest after {longest} steps)")
        )
        warnings.warn(
            f"{described} end with done, but the demonstrations do not say whether these ends are terminations or "
            "time-limit truncations (imitation marks every end terminal=True; DI-engine stores done only). They load as "
            f"terminations, each followed by an absorbing state. If {longest} steps is the env's time limit, pass "
            f"load_demonstrations(..., max_episode_steps={longest}) (or the env's limit); or state every end with "
            "timeouts= (one boolean per episode end, all False if they are all terminations); or record imitation "
            "rollouts with RolloutInfoWrapper and rollout(..., exclude_infos=False), whose infos keep TimeLimit.truncated",
            UserWarning,
            stacklevel=3,
        )
    return demonstrations


def read_transitions(source: DemonstrationSource) -> Converted:
    """
    Read any supported source as it is: no checks, no truncation rules, no warning (agent batches use it).

    :param source: Path or in-memory transitions
    :return: The transitions, and which rows state whether their episode end is a truncation
    """
    if isinstance(source, Transitions):
        return source, np.ones(len(source), dtype=bool)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            if isinstance(source, str) and looks_like_dataset_id(source):
                return load_minari_id(source)
            raise FileNotFoundError(f"No demonstrations at {path}")
        if path.is_dir():
            if minari_data_dir(path) is not None:
                return load_minari_path(path)
            return load_imitation_path(path)
        if zipfile.is_zipfile(path):
            return _load_npz(path)
        try:
            with open(path, "rb") as file:
                content = safe_load(file)  # never pickle.load: a demonstration file can come from anywhere
        except UnsafePickleError as error:
            raise UnsafePickleError(f"{path}: {error}") from None
        except Exception as error:
            raise ValueError(f"{path} is neither a .npz demonstrations file nor a pickle of transitions") from error
        if not isinstance(content, (list, tuple)):
            raise ValueError(
                f"{path} holds a pickled {type(content).__name__}, expected a list of DI-engine transition dicts "
                "(imitation's trajectories load from the directory that imitation.data.serialize.save writes)"
            )
        return read_transitions(content)
    if is_minari_dataset(source):
        return from_minari_dataset(source)
    if hasattr(source, "obs") and hasattr(source, "next_obs") and hasattr(source, "dones"):
        return from_imitation_transitions(source)
    if isinstance(source, Sequence) and len(source) > 0 and isinstance(source[0], dict):
        return from_transition_dicts(list(source))  # type: ignore[arg-type]
    if isinstance(source, Sequence) and len(source) > 0 and hasattr(source[0], "acts") and hasattr(source[0], "obs"):
        return from_imitation_trajectories(source)
    if isinstance(source, Sequence) and len(source) == 0:
        raise ValueError("demonstrations are empty: expected at least one transition, got 0")
    raise TypeError(
        "Expected demonstrations as a Transitions batch, a path (.npz, DI-engine pickle, imitation or Minari dataset), "
        "a Minari dataset id or MinariDataset, a list of transition dicts or imitation trajectories; "
        f"got {type(source).__name__}"
    )


def load_demonstrations(
    source: DemonstrationSource,
    subsample_every: int = 1,
    seed: Optional[int] = None,
    max_episode_steps: Optional[int] = None,
    timeouts: Optional[TimeoutFlags] = None,
) -> Transitions:
    """
    Load expert demonstrations from any supported source.

    Supported sources:

    - a :class:`Transitions` batch (checked, and changed only by the arguments below);
    - a ``.npz`` file written by :func:`save_demonstrations`;
    - a pickle file (or an in-memory list) of DI-engine style transition dicts with keys
      ``obs``, ``action``, ``next_obs``, ``done`` and optionally ``reward``. Pickles are untrusted
      input: they are read with a restricted unpickler that rebuilds only Python containers and
      numbers, NumPy arrays and scalars, and torch tensors, and refuses anything else;
    - with ``imitation`` installed: a sequence of imitation ``Trajectory`` objects, an imitation
      ``Transitions`` batch, or a directory written by ``imitation.data.serialize.save``;
    - with ``minari`` installed: a Minari dataset id in Minari's local storage
      (``MINARI_DATASETS_PATH``, by default ``~/.minari/datasets``; nothing is downloaded, and a path
      that exists wins over an id), the path of a Minari dataset directory, or a ``MinariDataset``
      (see :mod:`sb3_gail_plugin.minari_datasets`).

    Which episode ends are time-limit truncations (no absorbing state) rather than terminations:
    ``timeouts`` if given, else ``max_episode_steps`` if given, else what the source says (our
    ``timeouts``; Minari's ``terminations`` and ``truncations``; ``TimeLimit.truncated`` in imitation's
    last ``infos`` of an episode, kept by its ``RolloutInfoWrapper``; ``terminal=False`` trajectories;
    DI-engine rows' ``timeout``/``truncated``).
    Ends the source does not describe (imitation's ``terminal=True`` without infos, DI-engine's bare
    ``done``) load as terminations, with a ``UserWarning`` if every episode has the same length.

    Demonstrations without actions (a ``.npz`` without ``actions``, transition dicts without
    ``action``) load fine: only the state-only discriminator (``inputs="ss"``) accepts them.

    :param source: Path or in-memory demonstrations
    :param subsample_every: Keep every n-th transition of each episode, and its last one (see
        :func:`subsample_episodes`)
    :param seed: Seed of the subsampling offsets
    :param max_episode_steps: The env's time limit: an episode end after exactly this many steps is
        a truncation, any earlier end a termination (overrides what the source says)
    :param timeouts: Whether each episode end is a truncation: one boolean per transition (``True``
        only where ``done``) or one per episode end (overrides what the source says)
    :return: The demonstrations as a :class:`Transitions` batch
    """
    demonstrations, known = read_transitions(source)
    check_finite_and_non_empty(demonstrations)
    demonstrations = _resolve_timeouts(demonstrations, known, max_episode_steps, timeouts)
    return subsample_episodes(demonstrations, subsample_every, seed)
