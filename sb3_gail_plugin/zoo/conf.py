"""rl-zoo3 conf tables for GAIL: rl-zoo3's own tuned hyperparameters, with :class:`ZooGailCallback` added."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from sb3_gail_plugin.hyperparams import GAIL_DQN_CARTPOLE, ZOO_DQN_CARTPOLE
from sb3_gail_plugin.zoo.callback import DEMONSTRATIONS_ENV_VAR

CALLBACK_NAME = "sb3_gail_plugin.zoo.ZooGailCallback"
WRAPPER_NAME = "sb3_gail_plugin.GailVecEnvWrapper"

# Where GAIL is better served by other settings than rl-zoo3's (per algorithm, per env): DQN on
# CartPole-v1 takes GAIL_DQN_CARTPOLE's slower target network and learning rate.
GAIL_OVERRIDES: Dict[str, Dict[str, Dict[str, Any]]] = {
    "dqn": {
        "CartPole-v1": {key: value for key, value in GAIL_DQN_CARTPOLE.items() if ZOO_DQN_CARTPOLE.get(key) != value},
    },
}


def zoo_hyperparams_path(algo: str) -> Path:
    """
    The YAML file of rl-zoo3's tuned hyperparameters for ``algo``, as rl-zoo3 itself finds it.

    :param algo: rl-zoo3's name of the algorithm (``dqn``, ``sac``, ``ppo``, ``qrdqn``, ``tqc``, ...)
    :return: The path of ``hyperparams/{algo}.yml`` in the installed rl-zoo3
    """
    try:
        import rl_zoo3
    except ImportError as error:
        raise ImportError(
            "The rl-zoo3 conf files need rl-zoo3: pip install 'sb3-gail-plugin[zoo]' (or pip install rl_zoo3)"
        ) from error
    package = Path(rl_zoo3.__file__).parent
    for folder in (package / "hyperparams", package.parent / "hyperparams"):  # installed package, source checkout
        if (folder / f"{algo}.yml").is_file():
            return folder / f"{algo}.yml"
    known = sorted(path.stem for folder in (package / "hyperparams",) if folder.is_dir() for path in folder.glob("*.yml"))
    raise ValueError(f"rl-zoo3 has no hyperparameters for algo: expected one of {known}, got {algo!r}")


def _appended(entry: Any, item: Any) -> List[Any]:
    """An rl-zoo3 ``callback`` or ``vec_env_wrapper`` entry (None, a name, a ``{name: kwargs}`` dict, or a list of
    them) as a list, with ``item`` last."""
    listed: List[Any] = [] if entry is None else list(entry) if isinstance(entry, list) else [entry]
    return [*listed, item]


def zoo_hyperparams(
    algo: str,
    callback_kwargs: Optional[Mapping[str, Any]] = None,
    overrides: Optional[Mapping[str, Mapping[str, Any]]] = None,
) -> Dict[str, Dict[str, Any]]:
    """
    rl-zoo3's hyperparameter table for ``algo`` (every env it has settings for), each entry with
    :class:`ZooGailCallback` appended to its callbacks (and, where rl-zoo3 normalises with ``VecNormalize``,
    :class:`~sb3_gail_plugin.GailVecEnvWrapper` to its ``vec_env_wrapper``, so that the eval env has the
    training env's layers), and :data:`GAIL_OVERRIDES` applied: what an
    rl-zoo3 Python conf file holds as ``hyperparams``. Values stay in rl-zoo3's YAML form (schedules as
    ``lin_0.001``, ``policy_kwargs`` as strings), which rl-zoo3 converts as usual.

    A conf file of your own, for rl-zoo3's ``--conf-file conf.py``::

        from sb3_gail_plugin.zoo import zoo_hyperparams
        hyperparams = zoo_hyperparams("tqc", callback_kwargs=dict(demonstrations="demos.npz", gradient_penalty=10.0))

    :param algo: rl-zoo3's name of the algorithm
    :param callback_kwargs: Arguments of :class:`ZooGailCallback` (``demonstrations`` and reward model
        arguments). ``None`` (default): ``demonstrations`` is the path in the ``GAIL_DEMONSTRATIONS``
        environment variable when it is set (so that rl-zoo3's saved ``config.yml`` records it), else
        nothing (the callback then asks for it)
    :param overrides: Settings per env id that replace rl-zoo3's (after :data:`GAIL_OVERRIDES`)
    :return: ``{env_id: settings}``, a new table at each call
    """
    import yaml

    with open(zoo_hyperparams_path(algo)) as file:
        table: Dict[str, Dict[str, Any]] = yaml.safe_load(file)
    if callback_kwargs is None:
        path = os.environ.get(DEMONSTRATIONS_ENV_VAR)
        callback_kwargs = {"demonstrations": path} if path else {}
    changes: Dict[str, Dict[str, Any]] = {env_id: dict(values) for env_id, values in GAIL_OVERRIDES.get(algo, {}).items()}
    for env_id, values in (overrides or {}).items():
        changes.setdefault(env_id, {}).update(values)
    result: Dict[str, Dict[str, Any]] = {}
    for env_id, settings in table.items():
        entry = {**settings, **changes.get(env_id, {})}
        entry["callback"] = _appended(entry.get("callback"), {CALLBACK_NAME: dict(callback_kwargs)})
        if entry.get("normalize"):
            # rl-zoo3 applies vec_env_wrapper to the training and the eval env alike, below its VecNormalize: the
            # eval env then has the training env's layers, which SB3's EvalCallback needs to copy the statistics
            # (sync_envs_normalization), and the training env's GailVecEnvWrapper records raw observations
            entry["vec_env_wrapper"] = _appended(entry.get("vec_env_wrapper"), WRAPPER_NAME)
        result[env_id] = entry
    for env_id in set(changes) - set(result):
        raise ValueError(
            f"overrides name an env rl-zoo3 has no {algo} settings for: expected one of {sorted(result)}, got {env_id!r}"
        )
    return result
