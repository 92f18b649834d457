"""Search spaces of a GAIL sweep: the reward model's arguments and the RL algorithm's, as plain tables."""

from __future__ import annotations

from typing import Any, Collection, Dict, Mapping, Sequence, Tuple

import optuna

# A search space maps an argument name to how Optuna samples it:
#   ("log", low, high)       trial.suggest_float(name, low, high, log=True)
#   ("float", low, high)     trial.suggest_float(name, low, high)
#   ("int_log", low, high)   trial.suggest_int(name, low, high, log=True)
#   ("choice", [values])     trial.suggest_categorical(name, values)
Space = Mapping[str, Tuple[Any, ...]]

# Study parameters of the reward model carry this prefix (both sides have a learning_rate)
GAIL_PREFIX = "gail_"

# GailRewardModel's arguments (defaults: 1e-3, 100, 1.0, 10.0, 64, 64). The on-policy default of
# update_per_collect depends on the rollout size (sb3_gail_plugin.on_policy): with rollouts much
# larger than rl-zoo3's CartPole PPO's 8 x 32, give a wider range.
GAIL_SPACE: Dict[str, Tuple[Any, ...]] = {
    "learning_rate": ("log", 1e-4, 3e-3),
    "update_per_collect": ("int_log", 10, 300),
    "gradient_penalty": ("choice", [0.0, 0.1, 1.0, 10.0]),
    "reward_clip": ("choice", [1.0, 5.0, 10.0, None]),
    "hidden_dims": ("choice", [64, 128, 256]),
    "batch_size": ("choice", [64, 128, 256]),
}

_OFF_POLICY_DISCRETE: Dict[str, Tuple[Any, ...]] = {
    "learning_rate": ("log", 1e-4, 3e-3),
    "gamma": ("choice", [0.98, 0.99, 0.995]),
    "target_update_interval": ("choice", [10, 100, 1000]),
    "exploration_fraction": ("float", 0.05, 0.3),
}
_OFF_POLICY_CONTINUOUS: Dict[str, Tuple[Any, ...]] = {
    "learning_rate": ("log", 1e-4, 3e-3),
    "gamma": ("choice", [0.98, 0.99, 0.995]),
    "tau": ("choice", [0.005, 0.01, 0.02]),
    "batch_size": ("choice", [64, 128, 256]),
}
_ON_POLICY: Dict[str, Tuple[Any, ...]] = {
    "learning_rate": ("log", 1e-4, 3e-3),
    "gamma": ("choice", [0.98, 0.99, 0.995]),
    "gae_lambda": ("choice", [0.8, 0.9, 0.95]),
}

# The RL arguments tuned per algorithm (rl-zoo3's names), a few with a large effect each
RL_SPACES: Dict[str, Dict[str, Tuple[Any, ...]]] = {
    "dqn": _OFF_POLICY_DISCRETE,
    "qrdqn": _OFF_POLICY_DISCRETE,
    "sac": _OFF_POLICY_CONTINUOUS,
    "tqc": _OFF_POLICY_CONTINUOUS,
    "td3": _OFF_POLICY_CONTINUOUS,
    "ddpg": _OFF_POLICY_CONTINUOUS,
    "ppo": {**_ON_POLICY, "n_epochs": ("choice", [5, 10, 20]), "clip_range": ("choice", [0.1, 0.2, 0.3])},
    "a2c": _ON_POLICY,
    "trpo": _ON_POLICY,
}


def suggest(trial: optuna.Trial, name: str, spec: Sequence[Any]) -> Any:
    """
    Sample one argument.

    :param trial: The Optuna trial
    :param name: The study parameter's name
    :param spec: ``("log"|"float"|"int_log", low, high)`` or ``("choice", values)``
    :return: The sampled value
    """
    kind = spec[0]
    if kind == "log":
        return trial.suggest_float(name, spec[1], spec[2], log=True)
    if kind == "float":
        return trial.suggest_float(name, spec[1], spec[2])
    if kind == "int_log":
        return trial.suggest_int(name, spec[1], spec[2], log=True)
    if kind == "choice":
        return trial.suggest_categorical(name, list(spec[1]))
    raise ValueError(f"Search space entry {name!r}: expected a kind among 'log', 'float', 'int_log', 'choice', got {spec!r}")


def sample_kwargs(trial: optuna.Trial, space: Space, fixed: Collection[str] = (), prefix: str = "") -> Dict[str, Any]:
    """
    Sample the arguments of ``space`` that are not ``fixed``.

    :param trial: The Optuna trial
    :param space: The search space (see :data:`GAIL_SPACE`)
    :param fixed: Names of arguments given a value elsewhere: not sampled
    :param prefix: Prefix of the study parameters' names (:data:`GAIL_PREFIX` for the reward model)
    :return: ``{argument: value}`` without the prefix
    """
    return {name: suggest(trial, prefix + name, spec) for name, spec in space.items() if name not in fixed}


def split_params(params: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """
    Split a trial's parameters (e.g. ``study.best_params``) into the algorithm's keyword arguments and
    ``GailCallback``'s reward model arguments.

    :param params: The trial's parameters
    :return: ``(model_kwargs, reward_model_kwargs)``
    """
    model_kwargs = {name: value for name, value in params.items() if not name.startswith(GAIL_PREFIX)}
    reward_model_kwargs = {name[len(GAIL_PREFIX) :]: value for name, value in params.items() if name.startswith(GAIL_PREFIX)}
    return model_kwargs, reward_model_kwargs
