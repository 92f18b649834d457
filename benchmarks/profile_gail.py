"""
Where the time of GAIL-DQN goes: cProfile of ``learn()`` with the package defaults and ``GAIL_DQN_CARTPOLE`` (torch
on 1 thread), as shares of the profiled ``learn()`` (the profiler inflates Python-heavy code: compare shares, not
seconds), then the functions with the most cumulative time.

    python -m benchmarks.profile_gail --steps 5000
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
from typing import Dict, List, Optional, Tuple

import torch as th

from benchmarks.compare import expert_demonstrations
from benchmarks.overhead_cases import dqn_cartpole

#: (row name, file suffix, function name) of the parts the report names
PARTS: List[Tuple[str, str, str]] = [
    ("DQN's gradient steps (`DQN.train`, sampling included)", "dqn/dqn.py", "train"),
    ("the discriminator's training (`GailRewardModel.train`)", "sb3_gail_plugin/reward_model.py", "train"),
    ("of which the gradient penalty's forward and gradient", "sb3_gail_plugin/reward_model.py", "_gradient_penalty"),
    ("relabelling the sampled batches (`GailReplayBuffer.sample`)", "sb3_gail_plugin/buffers.py", "sample"),
    ("of which the discriminator's forward pass (`estimate`)", "sb3_gail_plugin/reward_model.py", "estimate"),
    ("of which expert mixing", "sb3_gail_plugin/buffers.py", "_mix_expert"),
    ("agent data for the discriminator (`sample_transitions`)", "sb3_gail_plugin/buffers.py", "sample_transitions"),
    (
        "`GailVecEnvWrapper`'s own code on top of the env step (all its functions, callees excluded)",
        "sb3_gail_plugin/vec_env.py",
        "*",
    ),
]


def seconds_by_function(stats: pstats.Stats) -> Dict[Tuple[str, str], Tuple[float, float]]:
    """(Own, cumulative) seconds per (file, function) of the profile."""
    totals: Dict[Tuple[str, str], Tuple[float, float]] = {}
    for (filename, _, function), (_, _, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        before = totals.get((filename, function), (0.0, 0.0))
        totals[(filename, function)] = (before[0] + own, before[1] + cumulative)
    return totals


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    learner = dqn_cartpole(expert_demonstrations("CartPole-v1", 10))
    env = learner.make_env()
    model = learner.make_model(env, gail=True)
    from sb3_gail_plugin import GailCallback

    profiler = cProfile.Profile()
    profiler.enable()
    model.learn(args.steps, callback=GailCallback(learner.demonstrations))
    profiler.disable()
    stats = pstats.Stats(profiler)
    totals = seconds_by_function(stats)
    learn = max(cumulative for (_, function), (_, cumulative) in totals.items() if function == "learn")
    print(f"| where | share of learn() ({learn:.1f} s profiled, {args.steps:,} env steps) |\n|---|---|")
    for name, suffix, function in PARTS:
        if function == "*":  # a module's own time
            seconds = sum(own for (filename, _), (own, _) in totals.items() if filename.endswith(suffix))
        else:
            seconds = sum(
                cumulative
                for (filename, name_), (_, cumulative) in totals.items()
                if filename.endswith(suffix) and name_ == function
            )
        print(f"| {name} | {100 * seconds / learn:.1f} % |")
    print()
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
