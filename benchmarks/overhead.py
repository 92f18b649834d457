"""
The cost of GAIL per env step: each method trains for the same env steps, one after the other in one
process (torch on 1 thread, no evaluations), and the report gives env steps/s and the ratio to the
plain learner on the true reward (the first method).

    python -m benchmarks.overhead --env Hopper-v4 --steps 30000 \
        --methods ppo_true_reward_zoo ours_ppo_zoo imitation_gail_ppo_zoo

Writes benchmarks/results/overhead_<name>.md. Run nothing else on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

import torch as th

from benchmarks.compare import ROOT, environment_note, expert_demonstrations, resolve_env_id
from benchmarks.methods import METHODS, run


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--steps", type=int, default=30_000, help="env steps per method")
    parser.add_argument("--n-demos", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=["dqn_true_reward", "ours"], choices=list(METHODS))
    parser.add_argument("--name", default=None, help="report name (default: the env id)")
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    env_id = resolve_env_id(args.env)
    command = "python -m benchmarks.overhead " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"{command}\n{environment_note()}", flush=True)
    demos = expert_demonstrations(env_id, args.n_demos)
    rows = []
    for method in args.methods:
        began = time.perf_counter()
        run(method, env_id, demos, args.seed, args.steps, every=10**12, on_policy_budget=args.steps)
        wall = time.perf_counter() - began
        rows.append((method, wall, args.steps / wall))
        print(f"{method}: {args.steps} env steps in {wall:.1f} s ({args.steps / wall:,.0f} env steps/s)", flush=True)
    reference = rows[0][2]
    table = "\n".join(
        ["| method | env steps | wall s | env steps / s | time per env step vs " + rows[0][0] + " |", "|---|---|---|---|---|"]
        + [f"| {m} | {args.steps:,} | {w:.1f} | {r:,.0f} | {reference / r:.2f}x |" for m, w, r in rows]
    )
    out = ROOT / "results" / f"overhead_{args.name or env_id}.md"
    out.write_text(
        f"# GAIL overhead: {env_id}\n\nCommand: `{command}`\n\nMachine: {environment_note()}\n\n"
        f"One process, methods run one after the other, no evaluations; {args.n_demos} expert episodes, seed {args.seed}.\n\n"
        f"{table}\n"
    )
    print(table)
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
