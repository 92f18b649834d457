"""
What GAIL costs on top of the RL loop, as ratios against the same algorithm, settings and seed without GAIL, all
measured in one process (torch on 1 thread, runs interleaved), and how the cost grows:

- DQN gradient-step throughput with ``GailReplayBuffer`` (a trained reward model attached: relabelling and expert
  mixing) against a plain ``ReplayBuffer``, rounds of gradient steps interleaved on buffers filled alike;
- whole-loop env steps/s of GAIL-DQN (package defaults, ``GAIL_DQN_CARTPOLE``), GAIL-SAC (Pendulum-v1, SB3's
  defaults) and GAIL-PPO (CartPole-v1, rl-zoo3's settings with 8 envs) against the plain learner;
- the GAIL-DQN ratio with cheaper discriminator rounds (fewer updates at a higher learning rate: measured, not the
  default);
- the GAIL-DQN ratio against n_envs (1, 4, 16 with ``SubprocVecEnv``), expert set size (1, 10, 100 episodes) and
  observation size (4, 11 and 1,000 features of a synthetic env whose steps cost next to nothing);
- the memory the reward model and its collected set hold against buffer size and run length.

    python -m benchmarks.overhead_scaling                    # every table: about an hour on a quiet machine
    python -m benchmarks.overhead_scaling --quick            # tiny budgets: a smoke test of the plumbing (minutes)
    python -m benchmarks.overhead_scaling --tables gradient_steps whole_loop --repeats 5

(``bash scripts/benchmark.sh --overhead [--quick]`` runs it on the latest stack.) Writes
benchmarks/results/overhead_scaling.md (benchmarks/results/quick/ with ``--quick``). A ratio is GAIL's
throughput over the plain learner's (1.00x: GAIL costs nothing): the plain seconds over the GAIL seconds, each
summed over the repeats, whose order alternates. Run nothing else on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch as th

from benchmarks.compare import ROOT, environment_note, expert_demonstrations
from benchmarks.methods import CHEAPER_ROUNDS
from benchmarks.overhead_cases import (
    Learner,
    dqn_cartpole,
    gradient_step_seconds,
    memory_row,
    noise_env,
    ppo_cartpole,
    random_demonstrations,
    sac_pendulum,
)
from sb3_gail_plugin import Transitions

#: Budgets of the full run and of --quick: env steps per run, gradient steps per round and rounds, memory run lengths
FULL = dict(dqn=12_000, sac=5_000, ppo=32_768, gradient_steps=128, rounds=20, fill=5_000, n_envs=(1, 4, 16))
QUICK = dict(dqn=1_300, sac=300, ppo=512, gradient_steps=16, rounds=2, fill=1_100, n_envs=(1, 2))
MEMORY_FULL = dict(buffer_sizes=(10_000, 100_000), steps=(4_000, 8_000, 16_000))
MEMORY_QUICK = dict(buffer_sizes=(2_000, 10_000), steps=(1_200, 2_400))


def ratio_of_runs(learner: Learner, steps: int, repeats: int) -> Tuple[float, float, float]:
    """
    Train with and without GAIL ``repeats`` times each, alternating which goes first.

    :return: Plain env steps/s, GAIL env steps/s, and their ratio (GAIL over plain, from the summed seconds)
    """
    seconds: Dict[bool, List[float]] = {False: [], True: []}
    for repeat in range(repeats):
        for gail in (False, True) if repeat % 2 == 0 else (True, False):
            seconds[gail].append(learner.learn_seconds(steps, gail))
    plain_rate, gail_rate = steps * repeats / sum(seconds[False]), steps * repeats / sum(seconds[True])
    return plain_rate, gail_rate, gail_rate / plain_rate


def _ratio_table(header: str, rows: Sequence[Tuple[str, int, float, float, float]]) -> str:
    lines = [
        f"| {header} | env steps per run | plain env steps/s | GAIL env steps/s | GAIL / plain |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {steps:,} | {plain:,.0f} | {gail:,.0f} | {ratio:.2f}x |" for name, steps, plain, gail, ratio in rows
    ]
    return "\n".join(lines)


def gradient_steps_table(budget: Dict, repeats: int, demos: Transitions) -> str:
    learner = dqn_cartpole(demos)
    plain, gail = gradient_step_seconds(learner, budget["fill"], budget["gradient_steps"], budget["rounds"] * repeats)
    per_round = [p / g for p, g in zip(plain, gail)]
    steps = budget["gradient_steps"] * len(plain)
    return (
        "| buffer | gradient steps | gradient steps/s | GAIL / plain (summed) | GAIL / plain (median round) |\n"
        "|---|---|---|---|---|\n"
        f"| ReplayBuffer | {steps:,} | {steps / sum(plain):,.0f} | | |\n"
        f"| GailReplayBuffer | {steps:,} | {steps / sum(gail):,.0f} | {sum(plain) / sum(gail):.2f}x | "
        f"{statistics.median(per_round):.2f}x |\n\n"
        f"DQN with `GAIL_DQN_CARTPOLE` (Q-network 256x256, batch 64) on CartPole-v1, buffers filled alike by "
        f"{budget['fill']:,} random env steps; rounds of {budget['gradient_steps']} gradient steps, plain and GAIL "
        "interleaved. The reward model has the package defaults (expert mixing on), trained once on the buffer."
    )


def whole_loop_table(budget: Dict, repeats: int, demos: Transitions) -> str:
    learners = [(dqn_cartpole(demos), budget["dqn"]), (sac_pendulum(random_demonstrations("Pendulum-v1", 5)), budget["sac"])]
    learners.append((ppo_cartpole(demos), budget["ppo"]))
    rows = [(learner.name, steps, *ratio_of_runs(learner, steps, repeats)) for learner, steps in learners]
    return _ratio_table("learner", rows) + (
        "\n\nEach run trains from scratch, without evaluations. GAIL: `GailCallback(demonstrations)` with the package "
        "defaults (off-policy: `GailReplayBuffer`; on-policy: the on-policy defaults). CartPole: 10 expert episodes; "
        "Pendulum-v1: 5 episodes of random actions (the cost does not depend on how good they are)."
    )


def cheaper_rounds_table(budget: Dict, repeats: int, demos: Transitions) -> str:
    schedules = [
        ("the defaults (100 updates of 64 at 1e-3)", {}),
        ("25 updates of 128 at 4e-3 (`CHEAPER_ROUNDS`)", CHEAPER_ROUNDS),
        ("25 updates of 64 at 4e-3", dict(update_per_collect=25, learning_rate=4e-3)),
    ]
    rows = []
    for name, kwargs in schedules:
        learner = replace(dqn_cartpole(demos), name=name, reward_model_kwargs=dict(kwargs))
        rows.append((name, budget["dqn"], *ratio_of_runs(learner, budget["dqn"], repeats)))
    return _ratio_table("discriminator rounds", rows) + (
        "\n\nGAIL-DQN with `GAIL_DQN_CARTPOLE` on CartPole-v1: the package defaults but the discriminator's schedule. "
        "The cheaper schedules cost learning in the CartPole tables, so they are not the default (docs/tuning_log.md)."
    )


def n_envs_table(budget: Dict, repeats: int, demos: Transitions) -> str:
    rows = []
    for n_envs in budget["n_envs"]:
        learner = replace(dqn_cartpole(demos), name=f"{n_envs} env{'s' if n_envs > 1 else ''}", n_envs=n_envs, subprocess=True)
        rows.append((learner.name, budget["dqn"], *ratio_of_runs(learner, budget["dqn"], repeats)))
    return _ratio_table("SubprocVecEnv", rows) + (
        "\n\nGAIL-DQN with `GAIL_DQN_CARTPOLE` (whose `train_freq` counts steps of each env: more envs, fewer "
        "rollout ends, and the discriminator trains at most once per rollout end)."
    )


def expert_size_table(budget: Dict, repeats: int, demos: Transitions) -> str:
    ends = np.flatnonzero(demos.dones)
    rows = []
    for n_episodes in (1, 10, 100):
        if n_episodes <= len(ends):
            subset = demos[np.arange(ends[n_episodes - 1] + 1)]
        else:  # the committed expert has 10 episodes: repeat them
            subset = Transitions.concatenate([demos] * (n_episodes // len(ends)))
        learner = replace(dqn_cartpole(subset), name=f"{n_episodes} episodes ({len(subset):,} transitions)")
        rows.append((learner.name, budget["dqn"], *ratio_of_runs(learner, budget["dqn"], repeats)))
    return _ratio_table("expert set", rows) + "\n\nGAIL-DQN on CartPole-v1; 100 episodes are the 10 committed ones ten times."


def obs_size_table(budget: Dict, repeats: int, demos: Transitions) -> str:
    rows = []
    for obs_dim in (4, 11, 1000):
        make = noise_env(obs_dim)
        learner = Learner(
            f"{obs_dim} features", "dqn", make, random_demonstrations(make, 10), settings=dqn_cartpole(demos).settings
        )
        rows.append((learner.name, budget["dqn"], *ratio_of_runs(learner, budget["dqn"], repeats)))
    return _ratio_table("observation", rows) + (
        "\n\nGAIL-DQN with `GAIL_DQN_CARTPOLE` on a synthetic env (Gaussian observations, 2 actions, 1 % termination "
        "per step): 4 features as CartPole, 11 as Hopper, 1,000; 10 episodes of random actions as demonstrations."
    )


def memory_table(quick: bool, demos: Transitions) -> str:
    settings = MEMORY_QUICK if quick else MEMORY_FULL
    lines = [
        "| agent data | buffer size | env steps | weights + optimiser | expert tensors | collected set at the end | "
        "largest collected set (transitions) | buffer's truncation flags | SB3's buffer arrays |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for source in ("replay", "rollout"):
        for buffer_size in settings["buffer_sizes"]:
            for steps in settings["steps"]:
                row = memory_row(dqn_cartpole(demos), steps, buffer_size, source)
                kib = {key: f"{value / 1024:,.1f} KiB" for key, value in row.items()}
                lines.append(
                    f"| {source} | {buffer_size:,} | {steps:,} | {kib['weights']} | {kib['expert']} | {kib['collected']} | "
                    f"{kib['collected_max']} ({row['collected_max_transitions']:,}) | {kib['buffer_extra']} | "
                    f"{kib['sb3_buffer']} |"
                )
    return "\n".join(lines) + (
        '\n\nGAIL-DQN with `GAIL_DQN_CARTPOLE` and the package defaults but `agent_data_source`. With "replay" (the '
        'default) the env wrapper only counts transitions; with "rollout" it stores them until the discriminator '
        "trains (at the next rollout end with at least 64). GAIL's only per-transition storage is the buffer's "
        "truncation flags (1 byte per transition, allocated with the buffer). Each training round also builds, for "
        "the time of the round, tensors of its `batch_size * update_per_collect` agent samples."
    )


TABLES: Dict[str, Tuple[str, Callable[..., str]]] = {
    "gradient_steps": ("DQN gradient-step throughput", gradient_steps_table),
    "whole_loop": ("Whole-loop env steps/s", whole_loop_table),
    "cheaper_rounds": ("Cheaper discriminator rounds", cheaper_rounds_table),
    "n_envs": ("Against n_envs", n_envs_table),
    "expert_size": ("Against the expert set size", expert_size_table),
    "obs_size": ("Against the observation size", obs_size_table),
    "memory": ("Memory against buffer size and run length", memory_table),
}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--repeats", type=int, default=None, help="runs of each side per ratio (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="tiny budgets: a smoke test")
    parser.add_argument("--name", default="overhead_scaling", help="report name")
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    budget = QUICK if args.quick else FULL
    repeats = args.repeats or (1 if args.quick else 3)
    command = "python -m benchmarks.overhead_scaling " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"{command}\n{environment_note()}", flush=True)
    demos = expert_demonstrations("CartPole-v1", 10)
    sections = []
    for key in args.tables:
        title, make_table = TABLES[key]
        print(f"\n## {title}", flush=True)
        table = make_table(args.quick, demos) if key == "memory" else make_table(budget, repeats, demos)
        print(table, flush=True)
        sections.append(f"## {title}\n\n{table}\n")
    out_dir = ROOT / "results" / ("quick" if args.quick else "")
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{args.name}.md"
    out.write_text(
        f"# GAIL overhead and how it grows\n\nCommand: `{command}`\n\nMachine: {environment_note()}\n\n"
        f"Ratios are GAIL's throughput over the plain learner's, one process, {repeats} run(s) of each side.\n\n"
        + "\n".join(sections)
    )
    print(f"\nWrote {out}")


if __name__ == "__main__":
    main()
