"""
Optuna sweeps of GAIL's arguments together with the RL algorithm's (``pip install 'sb3-gail-plugin[optuna]'``).

Several workers share one study through Optuna's storage: start the same command once per worker,
on one machine with a journal file, or on several with a database URL::

    python -m sb3_gail_plugin.tune --algo dqn --env CartPole-v1 --demonstrations demos.npz \\
        --n-timesteps 20000 --n-trials 10 --storage sweeps/gail.log --study-name gail-dqn-cartpole

See ``python -m sb3_gail_plugin.tune --help``; the same from Python::

    study = create_study("gail-dqn-cartpole", storage="sweeps/gail.log")
    study.optimize(GailObjective("dqn", "CartPole-v1", "demos.npz", n_timesteps=20_000), n_trials=10)
    model_kwargs, reward_model_kwargs = split_params(study.best_params)
"""

try:
    import optuna  # noqa: F401
except ImportError as error:
    raise ImportError(
        "sb3_gail_plugin.tune needs Optuna: pip install 'sb3-gail-plugin[optuna]' (or pip install optuna)"
    ) from error

from sb3_gail_plugin.tune.objective import GailObjective, TrialEvalCallback, algorithm_class
from sb3_gail_plugin.tune.spaces import GAIL_PREFIX, GAIL_SPACE, RL_SPACES, sample_kwargs, split_params, suggest
from sb3_gail_plugin.tune.study import create_study, make_pruner, make_sampler, make_storage

__all__ = [
    "GAIL_PREFIX",
    "GAIL_SPACE",
    "RL_SPACES",
    "GailObjective",
    "TrialEvalCallback",
    "algorithm_class",
    "create_study",
    "make_pruner",
    "make_sampler",
    "make_storage",
    "sample_kwargs",
    "split_params",
    "suggest",
]
