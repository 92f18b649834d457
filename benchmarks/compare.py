"""
Compare GAIL-DQN (this plugin) with imitation's GAIL (PPO and DQN generators), plain DQN on the
true reward and imitation's BC, on the same expert demonstrations.

    python -m benchmarks.compare --env CartPole-v1 --seeds 0 1 2 --n-demos 10 1
    python -m benchmarks.compare --quick        # plumbing smoke test (CI), a few minutes on 2 cores

Runs on the compat stack (imitation 1.0.1 needs SB3 2.2.1): GAIL_STACK=compat bash scripts/setup.sh
gives its virtual environment. Writes benchmarks/results/<name>.csv, .md and .png files.

    python -m benchmarks.compare --env Hopper-v5 --seeds 0 --methods ours_sac --budget 300000 --name h --resume

``--resume`` keeps the runs already in <name>.csv, and a SAC or TD3 run stopped part-way (a session's end) goes on
from its last evaluation: those runs write a checkpoint after each evaluation (benchmarks/checkpoints.py).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch as th

from benchmarks.checkpoints import RunCheckpoint
from benchmarks.methods import METHODS, NEEDS_DEMOS, RESUMABLE, method_fits, run
from benchmarks.report import FIELDS, markdown_tables, plot, read_csv
from sb3_gail_plugin import Transitions, load_demonstrations
from sb3_gail_plugin.experts import make_expert_demonstrations
from sb3_gail_plugin.hyperparams import ZOO_SAC

if not hasattr(np, "float_"):
    np.float_ = np.float64  # type: ignore[attr-defined]  # gymnasium 0.29's Acrobot-v1 uses it; NumPy 2 removed it

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / "cache"  # the --quick experts and the checkpoints of runs under way (not committed)
EXPERTS = ROOT / "experts"  # the experts and demonstrations of the reports (committed)


def resolve_env_id(env_id: str) -> str:
    """LunarLander-v3 is LunarLander-v2 on gymnasium 0.29."""
    if env_id not in gym.registry and env_id.replace("-v3", "-v2") in gym.registry:
        return env_id.replace("-v3", "-v2")
    return env_id


def expert_algorithm(env_id: str) -> str:
    """The expert's algorithm: SAC with rl-zoo3's settings where we have them (continuous control), else PPO."""
    return "sac" if env_id in ZOO_SAC else "ppo"


#: The -v4 MuJoCo envs (compat stack, imitation's rows) are demonstrated by the -v5 expert where it exists: the
#: dynamics differ slightly, so their demonstrations are recorded on -v4 and their rows compared with -v4 rows only
SHARED_EXPERTS: Dict[str, str] = {"Hopper-v4": "Hopper-v5", "HalfCheetah-v4": "HalfCheetah-v5"}


def expert_model_path(directory: Path, env_id: str) -> Path:
    """The expert of ``env_id`` in ``directory``: its own, or the one :data:`SHARED_EXPERTS` names where that exists."""
    own = directory / f"{env_id}_expert.zip"
    shared = directory / f"{SHARED_EXPERTS.get(env_id, env_id)}_expert.zip"
    return shared if not own.exists() and shared.exists() else own


def expert_demonstrations(env_id: str, n_episodes: int, quick: bool = False) -> Transitions:
    """
    The expert is trained once per env (kept in benchmarks/experts/, or benchmarks/cache/ with ``quick``)
    and its episodes reused.
    """
    directory = CACHE if quick else EXPERTS
    path = directory / f"{env_id}_expert_demos.npz"
    if not path.exists():
        print(f"[{env_id}] training the expert (kept in {directory}) ...", flush=True)
        make_expert_demonstrations(
            env_id,
            path,
            n_episodes=max(n_episodes, 10),
            total_timesteps=20_000 if quick else None,
            model_path=expert_model_path(directory, env_id),
            algo=expert_algorithm(env_id),
            # a long training resumes from there (a --quick expert has its own)
            checkpoint_dir=CACHE / f"{env_id}_expert{'_quick' if quick else ''}.checkpoint",
        )
    demos = load_demonstrations(path)
    ends = np.flatnonzero(demos.dones)
    if n_episodes > len(ends):
        raise ValueError(
            f"{path} holds {len(ends)} expert episodes, {n_episodes} were asked for (--n-demos): ask for at most "
            f"{len(ends)}, or delete the file to record {n_episodes} episodes from the expert"
        )
    end = ends[n_episodes - 1] + 1
    return demos[np.arange(end)]


def random_policy_return(env_id: str, n_episodes: int = 10, seed: int = 0) -> float:
    """Mean return of uniformly random actions: the 0 % mark of the report where it is below 0 (Acrobot)."""
    env = gym.make(env_id)
    env.action_space.seed(seed)
    returns = []
    for episode in range(n_episodes):
        env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def environment_note() -> str:
    """The machine and software stack a benchmark ran on, for its report (cores, Python, torch threads, SB3, gymnasium)."""
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {th.__version__} (threads {th.get_num_threads()}), stable-baselines3 {stable_baselines3.__version__}, "
        f"gymnasium {gym.__version__}"
    )


def main(argv: List[str] | None = None) -> None:
    """Command line: run the benchmark grid (see the module's docstring) and write its CSV, tables and plots."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", nargs="+", default=["CartPole-v1"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--n-demos", nargs="+", type=int, default=[10, 1], help="expert episodes given to each method")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--budget", type=int, default=100_000, help="env steps per run (the PPO methods get 3x)")
    parser.add_argument("--on-policy-budget", type=int, default=None, help="env steps per PPO run (default: 3x budget)")
    parser.add_argument("--eval-every", type=int, default=5000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--name", default="compare", help="base name of the output files")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny budgets, one seed, one demo count")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from the existing <name>.csv")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the runs already in <name>.csv and run only the missing ones; a SAC or TD3 run stopped part-way "
        "goes on from its last evaluation (its checkpoint in benchmarks/cache/checkpoints/<name>/)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.n_demos, args.budget, args.eval_every, args.eval_episodes = [0], [2], 6000, 3000, 2
        args.name = "quick"
    th.set_num_threads(1)
    out_dir = ROOT / "results" / ("quick" if args.quick else "")
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{args.name}.csv"
    arguments = [a for a in (argv if argv is not None else sys.argv[1:]) if a not in ("--report-only", "--resume")]
    command = "python -m benchmarks.compare " + " ".join(arguments)
    print(f"{command}\n{environment_note()}", flush=True)
    if not args.report_only:
        run_all(args, csv_path)
    write_report(csv_path, out_dir, args.name, command)


def run_all(args: argparse.Namespace, csv_path: Path) -> None:
    """
    Train and evaluate every (env, demo count, method, seed), writing each run's evaluations as it finishes.
    With ``args.resume``, the runs already in ``csv_path`` are kept and skipped, and a run of
    :data:`~benchmarks.methods.RESUMABLE` stopped part-way goes on from its checkpoint; without it, runs start afresh.
    """
    kept = read_csv(csv_path) if args.resume and csv_path.exists() else []
    checkpoints = checkpoints_folder(csv_path)
    if not args.resume:  # every run starts afresh: no checkpoint of an earlier attempt may be resumed later
        shutil.rmtree(checkpoints, ignore_errors=True)
    done = {(r["env"], int(r["n_demos"]), r["method"], int(r["seed"])) for r in kept}
    random_returns = {env_id: random_policy_return(env_id) for env_id in {r["env"] for r in kept}}
    with open(csv_path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=FIELDS)
        writer.writeheader()
        for kept_row in kept:  # rows of an older format get the columns they lack
            writer.writerow({**kept_row, "random_return": kept_row.get("random_return") or random_returns[kept_row["env"]]})
        file.flush()
        for env_name in args.env:
            env_id = resolve_env_id(env_name)
            if env_id not in random_returns:
                random_returns[env_id] = random_policy_return(env_id)
            random_return = random_returns[env_id]
            for n_demos in args.n_demos:
                demos = expert_demonstrations(env_id, n_demos, quick=args.quick)
                expert_return = float(np.mean(demos.episode_returns()))
                for method in args.methods:
                    if method not in NEEDS_DEMOS and n_demos != args.n_demos[0]:
                        continue  # the true-reward learner does not depend on the demonstrations
                    if not method_fits(method, env_id):
                        print(f"[{env_id} | {method}] skipped: it does not run on this env (its actions, or no settings)")
                        continue
                    for seed in args.seeds:
                        checkpoint = run_checkpoint(args, checkpoints, env_id, n_demos, method, seed, demos)
                        if (env_id, n_demos, method, seed) in done:
                            print(f"[{env_id} | {n_demos} demos | {method} | seed {seed}] kept from {csv_path}")
                            if checkpoint is not None:  # left by a run stopped after its rows were written
                                checkpoint.remove()
                            continue
                        began = time.perf_counter()
                        records = run(
                            method,
                            env_id,
                            demos,
                            seed,
                            args.budget,
                            args.eval_every,
                            args.eval_episodes,
                            on_policy_budget=args.on_policy_budget,
                            checkpoint=checkpoint,
                        )
                        for record in records:
                            row: Dict[str, Any] = dict(
                                env=env_id,
                                n_demos=n_demos,
                                method=method,
                                seed=seed,
                                expert_return=expert_return,
                                random_return=random_return,
                                **record,
                            )
                            writer.writerow(row)
                        file.flush()
                        if checkpoint is not None:
                            checkpoint.remove()
                        best = max(r["mean_return"] for r in records)
                        print(
                            f"[{env_id} | {n_demos} demos | {method} | seed {seed}] {len(records)} evaluations, "
                            f"final {records[-1]['mean_return']:.1f}, best {best:.1f} (expert {expert_return:.1f}), "
                            f"{time.perf_counter() - began:.0f} s",
                            flush=True,
                        )
    if checkpoints.is_dir() and not any(checkpoints.iterdir()):
        checkpoints.rmdir()  # every resumable run of this CSV is written: nothing is left to resume


def checkpoints_folder(csv_path: Path) -> Path:
    """Where the runs of one CSV keep their checkpoints: ``benchmarks/cache/checkpoints/<the CSV's path in results/>``."""
    results = ROOT / "results"
    name = csv_path.relative_to(results).with_suffix("") if csv_path.is_relative_to(results) else Path(csv_path.stem)
    return CACHE / "checkpoints" / name


def run_checkpoint(
    args: argparse.Namespace, folder: Path, env_id: str, n_demos: int, method: str, seed: int, demos: Transitions
) -> RunCheckpoint | None:
    """
    The checkpoint of one run of a :data:`~benchmarks.methods.RESUMABLE` method in ``folder`` (None for the other
    methods). It is refused on resume if the run's settings, demonstrations or software stack have changed since.
    """
    if method not in RESUMABLE:
        return None
    settings = dict(
        budget=args.budget,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        quick=bool(args.quick),
        demos=[len(demos), round(float(np.mean(demos.episode_returns())), 6)],
        stable_baselines3=stable_baselines3.__version__,
        gymnasium=gym.__version__,
        torch=th.__version__,
    )
    return RunCheckpoint(folder / f"{env_id}_{n_demos}demos_{method}_seed{seed}", settings)


def write_report(csv_path: Path, out_dir: Path, name: str, command: str) -> None:
    """The Markdown tables and the plots of one CSV of evaluations."""
    table = markdown_tables(read_csv(csv_path))
    plots = plot(read_csv(csv_path), out_dir, prefix=f"{name}_")
    (out_dir / f"{name}.md").write_text(
        f"# Benchmark: {name}\n\nCommand: `{command}`\n\nMachine: {environment_note()}\n\n{table}\n\n"
        + "\n".join(f"![{p.stem}]({p.name})" for p in plots)
        + "\n"
    )
    print(table)
    print(f"Wrote {csv_path}, {out_dir / (name + '.md')} and {len(plots)} plot(s)")


if __name__ == "__main__":
    main()
