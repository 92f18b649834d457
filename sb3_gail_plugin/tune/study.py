"""The shared Optuna study of a sweep: its storage (a journal file, or a database URL), sampler and pruner."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional, Union

import optuna
from optuna.pruners import BasePruner, MedianPruner, NopPruner
from optuna.samplers import BaseSampler, RandomSampler, TPESampler
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend


def make_storage(storage: Optional[str]) -> Union[str, BaseStorage, None]:
    """
    The Optuna storage that the sweep's workers share.

    - ``None``: in memory (one process only);
    - a database URL (``postgresql://user:password@host/db``, ``mysql+pymysql://...``, ``sqlite:///sweep.db``):
      Optuna's ``RDBStorage``, for workers on several machines; dead workers' trials are marked failed
      after a missed heartbeat (60 s, grace period 180 s);
    - any other string: the path of a journal file (``optuna.storages.JournalStorage`` with
      ``JournalFileBackend``), for workers on one machine, or on several that share the file system (NFS).

    :param storage: ``None``, a database URL or a journal file path
    :return: What ``optuna.create_study(storage=...)`` takes
    """
    if storage is None:
        return None
    if "://" in storage:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(storage, heartbeat_interval=60, grace_period=180)
    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(storage))


def make_sampler(name: str = "tpe", n_startup_trials: int = 5, seed: Optional[int] = None) -> BaseSampler:
    """
    :param name: ``"tpe"`` (multivariate TPE with the constant liar, so that parallel workers do not
        sample the same point) or ``"random"``
    :param n_startup_trials: Random trials before TPE models the results
    :param seed: Seed of the sampler: give each worker its own, or none
    :return: The sampler
    """
    if name == "random":
        return RandomSampler(seed=seed)
    if name == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return TPESampler(n_startup_trials=n_startup_trials, seed=seed, multivariate=True, constant_liar=True)
    raise ValueError(f"sampler must be 'tpe' or 'random', got {name!r}")


def make_pruner(name: str = "median", n_startup_trials: int = 5, n_warmup_steps: int = 0) -> BasePruner:
    """
    :param name: ``"median"`` (stop a trial whose intermediate return is below the median of earlier
        trials at the same step) or ``"none"``
    :param n_startup_trials: Trials completed before any is pruned
    :param n_warmup_steps: Env steps before a trial can be pruned
    :return: The pruner
    """
    if name == "median":
        return MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps)
    if name == "none":
        return NopPruner()
    raise ValueError(f"pruner must be 'median' or 'none', got {name!r}")


def create_study(
    study_name: str,
    storage: Optional[str] = None,
    sampler: Union[str, BaseSampler] = "tpe",
    pruner: Union[str, BasePruner] = "median",
    n_startup_trials: int = 5,
    n_warmup_steps: int = 0,
    seed: Optional[int] = None,
) -> optuna.Study:
    """
    Create the sweep's study, or join it when another worker created it (``load_if_exists``): a
    study that maximises the true return.

    :param study_name: Name of the study in the storage (the same for every worker)
    :param storage: ``None``, a database URL or a journal file path (see :func:`make_storage`)
    :param sampler: ``"tpe"``, ``"random"`` or an Optuna sampler
    :param pruner: ``"median"``, ``"none"`` or an Optuna pruner
    :param n_startup_trials: Random trials before TPE, and trials completed before pruning
    :param n_warmup_steps: Env steps before a trial can be pruned
    :param seed: Seed of the sampler
    :return: The study
    """
    if isinstance(sampler, str):
        sampler = make_sampler(sampler, n_startup_trials, seed)
    if isinstance(pruner, str):
        pruner = make_pruner(pruner, n_startup_trials, n_warmup_steps)
    return optuna.create_study(
        storage=make_storage(storage),
        study_name=study_name,
        sampler=sampler,
        pruner=pruner,
        direction="maximize",
        load_if_exists=True,
    )
