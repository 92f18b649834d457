"""
``python -m sb3_gail_plugin.tune``: one worker of an Optuna sweep of GAIL's and the RL algorithm's
arguments. Start it once per worker with the same ``--storage`` and ``--study-name``:

    # two workers on one machine, sharing a journal file
    python -m sb3_gail_plugin.tune --algo dqn --env CartPole-v1 --demonstrations demos.npz \\
        --n-timesteps 20000 --n-trials 10 --storage sweeps/gail.log --study-name gail-dqn-cartpole &
    python -m sb3_gail_plugin.tune ...same arguments... &

    # workers on several machines, sharing a database
    python -m sb3_gail_plugin.tune ... --storage postgresql://user:password@db-host/optuna --study-name gail-dqn-cartpole
"""

from __future__ import annotations

import argparse
import ast
import os
from typing import Any, Dict, List, Optional, Sequence

import optuna
import torch as th
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from sb3_gail_plugin.hyperparams import GAIL_DQN_CARTPOLE, ZOO_DQN, ZOO_PPO_CARTPOLE, ZOO_PPO_CARTPOLE_N_ENVS
from sb3_gail_plugin.tune.objective import ALGORITHMS, CONTRIB_ALGORITHMS, GailObjective
from sb3_gail_plugin.tune.spaces import RL_SPACES, split_params
from sb3_gail_plugin.tune.study import create_study
from sb3_gail_plugin.zoo.callback import DEMONSTRATIONS_ENV_VAR


def default_hyperparams(algo: str, env_id: str) -> Dict[str, Any]:
    """
    The settings a sweep starts from (``n_envs`` included; those tuned are sampled instead) where the
    package has them: rl-zoo3's
    DQN settings (:data:`~sb3_gail_plugin.hyperparams.GAIL_DQN_CARTPOLE` on CartPole-v1) and PPO's
    on CartPole-v1; SB3's defaults elsewhere.

    :param algo: The algorithm's rl-zoo3 name
    :param env_id: The env id
    :return: Keyword arguments of the algorithm, and ``n_envs``
    """
    if algo == "dqn" and env_id == "CartPole-v1":
        return dict(GAIL_DQN_CARTPOLE)
    if algo == "dqn" and env_id in ZOO_DQN:
        return dict(ZOO_DQN[env_id])
    if algo == "ppo" and env_id == "CartPole-v1":
        return dict(ZOO_PPO_CARTPOLE, n_envs=ZOO_PPO_CARTPOLE_N_ENVS)
    return {}


def parse_kwargs(items: Optional[Sequence[str]]) -> Dict[str, Any]:
    """``["learning_rate:1e-4", "policy:MlpPolicy"]`` to a dict: values are Python literals, or strings."""
    kwargs: Dict[str, Any] = {}
    for item in items or []:
        key, separator, text = item.partition(":")
        if not separator or not key:
            raise argparse.ArgumentTypeError(f"expected NAME:VALUE, got {item!r}")
        try:
            kwargs[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            kwargs[key] = text
    return kwargs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_gail_plugin.tune",
        description="One worker of an Optuna sweep of GAIL's and the RL algorithm's arguments, scored by the true "
        "return. Start it once per worker with the same --storage and --study-name.",
        epilog="examples:\n" + __doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--algo", default="dqn", choices=sorted([*ALGORITHMS, *CONTRIB_ALGORITHMS]), help="default: dqn")
    parser.add_argument("--env", default="CartPole-v1", help="Gymnasium env id (default: CartPole-v1)")
    parser.add_argument(
        "--demonstrations",
        default=os.environ.get(DEMONSTRATIONS_ENV_VAR),
        help=f"expert demonstrations (default: ${DEMONSTRATIONS_ENV_VAR})",
    )
    parser.add_argument("--n-timesteps", type=int, default=20_000, help="env steps per trial (default: 20000)")
    parser.add_argument("--n-trials", type=int, default=10, help="trials this worker runs (default: 10)")
    parser.add_argument(
        "--max-total-trials", type=int, default=None, help="stop once the study has this many trials (all workers)"
    )
    parser.add_argument(
        "--storage",
        default=None,
        help="journal file path (one machine, or a shared file system) or database URL (default: in memory)",
    )
    parser.add_argument("--study-name", default=None, help="default: gail-ALGO-ENV")
    parser.add_argument("--hyperparams", nargs="+", metavar="NAME:VALUE", help="fixed algorithm arguments (not tuned)")
    parser.add_argument("--gail-kwargs", nargs="+", metavar="NAME:VALUE", help="fixed reward model arguments (not tuned)")
    parser.add_argument(
        "--tune", nargs="+", choices=["gail", "rl"], default=["gail", "rl"], help="what to tune (default: gail rl)"
    )
    parser.add_argument("--n-envs", type=int, default=None, help="training envs (default: the settings' or 1)")
    parser.add_argument("--n-evaluations", type=int, default=2, help="evaluations before the end, for pruning (default: 2)")
    parser.add_argument("--eval-episodes", type=int, default=5, help="episodes per evaluation (default: 5)")
    parser.add_argument("--sampler", choices=["tpe", "random"], default="tpe", help="default: tpe")
    parser.add_argument("--pruner", choices=["median", "none"], default="median", help="default: median")
    parser.add_argument(
        "--n-startup-trials", type=int, default=5, help="random trials before TPE, and before pruning (default: 5)"
    )
    parser.add_argument("--sampler-seed", type=int, default=None, help="give each worker its own, or leave it out")
    parser.add_argument("--seed", type=int, default=0, help="trial i trains with seed SEED + i (default: 0)")
    parser.add_argument("--device", default="auto", help="torch device (default: auto)")
    parser.add_argument("--num-threads", type=int, default=1, help="torch threads per worker (default: 1)")
    return parser


def describe(study: optuna.Study) -> List[str]:
    """Lines that summarise the study: every trial (all workers') and the best one's arguments."""
    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): sum(trial.state == state for trial in trials) for state in TrialState}
    workers = {trial.user_attrs.get("worker") for trial in trials} - {None}
    lines = [
        f"Study {study.study_name!r}: {len(trials)} trials ("
        + ", ".join(f"{count} {name}" for name, count in counts.items() if count)
        + f"), workers: {len(workers)}"
    ]
    for trial in trials:
        value = "" if trial.value is None else f"{trial.value:9.2f}"
        worker = trial.user_attrs.get("worker", "")
        lines.append(f"  trial {trial.number:3d} {trial.state.name:8s} {value:>9s}  {worker}  {trial.params}")
    completed = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    if completed:
        best = study.best_trial
        model_kwargs, reward_model_kwargs = split_params(best.params)
        lines += [
            f"Best: trial {best.number}, mean return {best.value:.2f}",
            f"  algorithm arguments: {model_kwargs}",
            f"  GailCallback arguments: {reward_model_kwargs}",
        ]
    return lines


def main(argv: Optional[Sequence[str]] = None) -> optuna.Study:
    args = build_parser().parse_args(argv)
    if not args.demonstrations:
        raise SystemExit(f"expert demonstrations needed: pass --demonstrations PATH or set {DEMONSTRATIONS_ENV_VAR}=PATH")
    if args.num_threads > 0:
        th.set_num_threads(args.num_threads)
    rl_space = RL_SPACES.get(args.algo, {}) if "rl" in args.tune else {}
    defaults = default_hyperparams(args.algo, args.env)
    n_envs = args.n_envs or defaults.pop("n_envs", 1)
    defaults.pop("n_envs", None)
    # the defaults of the arguments being tuned give way to the sampled values; --hyperparams are fixed
    hyperparams = {**{key: value for key, value in defaults.items() if key not in rl_space}, **parse_kwargs(args.hyperparams)}
    objective = GailObjective(
        args.algo,
        args.env,
        args.demonstrations,
        args.n_timesteps,
        hyperparams=hyperparams,
        reward_model_kwargs=parse_kwargs(args.gail_kwargs),
        rl_space=rl_space,
        gail_space=None if "gail" in args.tune else {},
        n_envs=n_envs,
        n_evaluations=args.n_evaluations,
        n_eval_episodes=args.eval_episodes,
        seed=args.seed,
        device=args.device,
    )
    study = create_study(
        args.study_name or f"gail-{args.algo}-{args.env}",
        storage=args.storage,
        sampler=args.sampler,
        pruner=args.pruner,
        n_startup_trials=args.n_startup_trials,
        seed=args.sampler_seed,
    )
    callbacks = []
    n_trials = args.n_trials
    if args.max_total_trials is not None:
        counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        n_trials = min(n_trials, max(args.max_total_trials - len(study.get_trials(deepcopy=False, states=counted)), 0))
        callbacks.append(MaxTrialsCallback(args.max_total_trials, states=counted))
    if n_trials > 0:
        study.optimize(objective, n_trials=n_trials, callbacks=callbacks, gc_after_trial=True)
    print("\n".join(describe(study)))
    return study


if __name__ == "__main__":
    main()
