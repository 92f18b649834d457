"""Collect, save and load expert demonstrations."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from sb3_gail_plugin.safe_pickle import UnsafePickleError, safe_load
from sb3_gail_plugin.transitions import ObsArray, Transitions, check_finite_and_non_empty

DemonstrationSource = Union[Transitions, str, "os.PathLike[str]", Sequence[Any], Any]

FORMAT_VERSION = 1
_OBS_PREFIX = "observations/"
_NEXT_OBS_PREFIX = "next_observations/"


def _stack_obs(rows: Sequence[Any]) -> ObsArray:
    if isinstance(rows[0], dict):
        return {key: np.stack([np.asarray(row[key]) for row in rows]) for key in rows[0]}
    return np.stack([np.asarray(row) for row in rows])


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
                    timeout=bool(dones[i] and infos[i].get("TimeLimit.truncated", False)),
                )
            )
            if dones[i]:
                episodes[i].append(_from_transition_dicts(current[i]))
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


def _load_npz(path: Path) -> Transitions:
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

        return Transitions(
            observations=obs(_OBS_PREFIX),
            actions=data["actions"] if "actions" in files else None,
            next_observations=obs(_NEXT_OBS_PREFIX),
            dones=data["dones"],
            timeouts=data["timeouts"] if "timeouts" in files else np.zeros(len(data["dones"]), dtype=bool),
            rewards=data["rewards"] if "rewards" in files else None,
        )


def _as_numpy(value: Any) -> Any:
    """Convert torch tensors (DI-engine stores them) and nested dicts to numpy."""
    if isinstance(value, dict):
        return {key: _as_numpy(item) for key, item in value.items()}
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _from_transition_dicts(rows: Sequence[Dict[str, Any]]) -> Transitions:
    """Convert DI-engine style transition dicts (``obs``, ``action``, ``next_obs``, ``done``, ...)."""
    required = ("obs", "next_obs", "done")
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or any(key not in row for key in required):
            got = sorted(row) if isinstance(row, dict) else type(row).__name__
            raise ValueError(f"Transition {index} must be a dict with keys {required} (and 'action'), got {got}")
    has_actions = all("action" in row for row in rows)
    has_rewards = all("reward" in row for row in rows)
    dones = np.array([bool(_as_numpy(row["done"])) for row in rows])
    timeouts = np.array([bool(_as_numpy(row.get("timeout", row.get("truncated", False)))) for row in rows]) & dones
    return Transitions(
        observations=_stack_obs([_as_numpy(row["obs"]) for row in rows]),
        actions=np.stack([_as_numpy(row["action"]) for row in rows]) if has_actions else None,
        next_observations=_stack_obs([_as_numpy(row["next_obs"]) for row in rows]),
        dones=dones,
        timeouts=timeouts,
        rewards=np.array([float(_as_numpy(row["reward"]).reshape(-1)[0]) for row in rows]) if has_rewards else None,
    )


def _unwrap_dict_obs(obs: Any) -> ObsArray:
    """imitation's ``DictObs`` exposes ``items()``; plain arrays pass through."""
    if hasattr(obs, "items"):
        return {key: np.asarray(value) for key, value in obs.items()}
    return np.asarray(obs)


def _from_imitation_trajectories(trajectories: Sequence[Any]) -> Transitions:
    """Convert imitation ``Trajectory`` objects (``obs`` has one more row than ``acts``)."""
    parts = []
    for trajectory in trajectories:
        obs = _unwrap_dict_obs(trajectory.obs)
        n = len(trajectory.acts)
        if n == 0:
            continue
        dones = np.zeros(n, dtype=bool)
        dones[-1] = True
        timeouts = np.zeros(n, dtype=bool)
        timeouts[-1] = not bool(trajectory.terminal)
        rewards = getattr(trajectory, "rews", None)
        parts.append(
            Transitions(
                observations={k: v[:-1] for k, v in obs.items()} if isinstance(obs, dict) else obs[:-1],
                actions=np.asarray(trajectory.acts),
                next_observations={k: v[1:] for k, v in obs.items()} if isinstance(obs, dict) else obs[1:],
                dones=dones,
                timeouts=timeouts,
                rewards=None if rewards is None else np.asarray(rewards),
            )
        )
    if not parts:
        raise ValueError("demonstrations are empty: expected at least one transition, got 0 (all trajectories are empty)")
    return Transitions.concatenate(parts)


def _from_imitation_transitions(transitions: Any) -> Transitions:
    """Convert imitation's ``Transitions`` (``obs``, ``acts``, ``next_obs``, ``dones``)."""
    return Transitions(
        observations=_unwrap_dict_obs(transitions.obs),
        actions=np.asarray(transitions.acts),
        next_observations=_unwrap_dict_obs(transitions.next_obs),
        dones=np.asarray(transitions.dones),
    )


def _load_imitation_path(path: Path) -> Transitions:
    try:
        from imitation.data import serialize
    except ImportError as error:
        raise ImportError(
            f"{path} looks like demonstrations saved by imitation.data.serialize.save; "
            "reading them needs the optional extra: pip install 'sb3-gail-plugin[imitation]'"
        ) from error
    return _from_imitation_trajectories(serialize.load(path))


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


def load_demonstrations(source: DemonstrationSource, subsample_every: int = 1, seed: Optional[int] = None) -> Transitions:
    """
    Load expert demonstrations from any supported source.

    Supported sources:

    - a :class:`Transitions` batch (returned as is, after checks);
    - a ``.npz`` file written by :func:`save_demonstrations`;
    - a pickle file (or an in-memory list) of DI-engine style transition dicts with keys
      ``obs``, ``action``, ``next_obs``, ``done`` and optionally ``reward``;
    - with ``imitation`` installed: a sequence of imitation ``Trajectory`` objects, an imitation
      ``Transitions`` batch, or a directory written by ``imitation.data.serialize.save``.

    Demonstrations without actions (a ``.npz`` without ``actions``, transition dicts without
    ``action``) load fine: only the state-only discriminator (``inputs="ss"``) accepts them.

    :param source: Path or in-memory demonstrations
    :param subsample_every: Keep every n-th transition of each episode (see :func:`subsample_episodes`)
    :param seed: Seed of the subsampling offsets
    :return: The demonstrations as a :class:`Transitions` batch
    """
    if isinstance(source, Transitions):
        demonstrations = source
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"No demonstrations at {path}")
        if path.is_dir():
            demonstrations = _load_imitation_path(path)
        elif zipfile.is_zipfile(path):
            demonstrations = _load_npz(path)
        else:
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
            return load_demonstrations(content, subsample_every, seed)
    elif hasattr(source, "obs") and hasattr(source, "next_obs") and hasattr(source, "dones"):
        demonstrations = _from_imitation_transitions(source)
    elif isinstance(source, Sequence) and len(source) > 0 and isinstance(source[0], dict):
        demonstrations = _from_transition_dicts(list(source))  # type: ignore[arg-type]
    elif isinstance(source, Sequence) and len(source) > 0 and hasattr(source[0], "acts") and hasattr(source[0], "obs"):
        demonstrations = _from_imitation_trajectories(source)
    elif isinstance(source, Sequence) and len(source) == 0:
        raise ValueError("demonstrations are empty: expected at least one transition, got 0")
    else:
        raise TypeError(
            "Expected demonstrations as a Transitions batch, a path (.npz, DI-engine pickle, imitation dataset), "
            f"a list of transition dicts or imitation trajectories; got {type(source).__name__}"
        )
    check_finite_and_non_empty(demonstrations)
    return subsample_episodes(demonstrations, subsample_every, seed)
