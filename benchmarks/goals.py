"""
Issue 9's goals, read from benchmark CSVs: env steps until a run first scores ``--reach`` of the expert's return
(normalised by the random policy's: ``(R - random) / (expert - random)``), and whether every later evaluation stays
at or above ``--hold``. Merges runs written to several CSVs (one per seed or method, run apart with ``--resume``).

    python -m benchmarks.goals benchmarks/results/hopper_v5_*.csv --name hopper_v5_goals
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from benchmarks.report import FIELDS, fraction_of_expert, plot, read_csv

RESULTS = Path(__file__).resolve().parent / "results"


def normalised(row: Dict[str, str]) -> float:
    """A row's return as a fraction of the way from the random policy's return to the expert's."""
    expert, random_return = float(row["expert_return"]), float(row["random_return"])
    return (float(row["mean_return"]) - random_return) / (expert - random_return)


def run_goals(records: Sequence[Dict[str, str]], reach: float, hold: float) -> Dict[str, Optional[float]]:
    """
    One run's figures: ``steps_to_reach`` (env steps of the first evaluation at or above ``reach``; None if never),
    ``min_after`` (the lowest normalised return from that evaluation on), ``final`` (the last one's) and ``held``
    (1.0 when no evaluation from the first reach on is below ``hold``, 0.0 otherwise or if never reached, None when
    the first reach is the last evaluation: nothing after it shows whether it holds).
    """
    records = sorted(records, key=lambda r: float(r["env_steps"]))
    scores = [normalised(r) for r in records]
    first = next((i for i, score in enumerate(scores) if score >= reach), None)
    min_after = min(scores[first:]) if first is not None else None
    return dict(
        steps_to_reach=float(records[first]["env_steps"]) if first is not None else None,
        min_after=min_after,
        final=scores[-1],
        held=None if first == len(scores) - 1 else float(min_after is not None and min_after >= hold),
        budget=float(records[-1]["env_steps"]),
    )


def median_steps(steps: List[Optional[float]]) -> Optional[float]:
    """Median over seeds, a run that never reached counting as the slowest (None when the median run never did)."""
    values = np.sort(np.array([np.inf if s is None else s for s in steps]))
    median = float(np.median(values))
    return None if np.isinf(median) else median


def _steps(value: Optional[float]) -> str:
    return "never" if value is None else f"{value / 1000:,.1f}".removesuffix(".0") + "k"


def goals_table(rows: List[Dict[str, str]], reach: float = 0.9, hold: float = 0.8) -> str:
    """A Markdown table per env: each method's seeds, env steps to ``reach`` per seed and their median, held runs."""
    runs: Dict[Tuple[str, str, str, str], List[Dict[str, str]]] = defaultdict(list)
    for row in rows:
        runs[(row["env"], row["n_demos"], row["method"], row["seed"])].append(row)
    lines: List[str] = []
    for env, n_demos in sorted({(env, n) for env, n, _, _ in runs}):
        first = next(r for r in rows if r["env"] == env and r["n_demos"] == n_demos)
        expert, random_return = float(first["expert_return"]), float(first["random_return"])
        lines += [
            f"### {env}, {n_demos} expert episodes (expert {expert:,.1f}, random policy {random_return:,.1f}; "
            f"{reach:.0%} = {fraction_of_expert(reach, expert, random_return, from_random=True):,.1f}, "
            f"{hold:.0%} = {fraction_of_expert(hold, expert, random_return, from_random=True):,.1f})",
            "",
            f"| method | seeds | env steps to {reach:.0%} (per seed) | median | lowest after reaching (per seed) "
            f"| no later evaluation below {hold:.0%} | final (per seed) | budget |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for method in sorted({m for e, n, m, _ in runs if (e, n) == (env, n_demos)}):
            seeds = sorted((s for e, n, m, s in runs if (e, n, m) == (env, n_demos, method)), key=int)
            goals = [run_goals(runs[(env, n_demos, method, seed)], reach, hold) for seed in seeds]
            lowest = ", ".join("-" if g["min_after"] is None else f"{g['min_after']:.0%}" for g in goals)
            finals = ", ".join(f"{g['final']:.0%}" for g in goals)
            unknown = sum(g["held"] is None for g in goals)
            held = f"{sum(int(g['held'] or 0) for g in goals)}/{len(goals)}" + (
                f" ({unknown} reached only at the last evaluation)" if unknown else ""
            )
            lines.append(
                f"| {method} | {len(seeds)} ({', '.join(seeds)}) | {', '.join(_steps(g['steps_to_reach']) for g in goals)} "
                f"| {_steps(median_steps([g['steps_to_reach'] for g in goals]))} | {lowest} "
                f"| {held} | {finals} | {_steps(max(g['budget'] or 0 for g in goals))} |"
            )
        lines.append("")
    lines.append(
        f"Returns as fractions of the way from the random policy's return to the expert's. A run reaches {reach:.0%} at "
        "its first evaluation at or above it; the median counts a run that never did as the slowest. A run that "
        "reaches it only at its last evaluation is not counted as holding it."
    )
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    """Command line: the goals table and plot of benchmark CSVs (see the module's docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("csv", nargs="+", type=Path, help="benchmark CSVs (benchmarks.compare's output)")
    parser.add_argument("--reach", type=float, default=0.9, help="the fraction of the expert's level to reach, in (0, 1]")
    parser.add_argument(
        "--hold", type=float, default=0.8, help="the fraction no later evaluation may fall below, at most --reach"
    )
    parser.add_argument(
        "--env", nargs="+", help="keep only these envs' rows: env ids (Hopper-v4) or names of every version (Hopper)"
    )
    parser.add_argument(
        "--name", required=True, help="base name of the Markdown table, the plot and (from several CSVs) the merged CSV"
    )
    args = parser.parse_args(argv)
    if not 0.0 < args.reach <= 1.0:
        parser.error(f"--reach must be in (0, 1], got {args.reach}")
    if not 0.0 <= args.hold <= args.reach:
        parser.error(f"--hold must be in [0, --reach] = [0, {args.reach}], got {args.hold}")
    rows = [row for path in args.csv for row in read_csv(path)]
    if args.env:
        rows = [row for row in rows if row["env"] in args.env or row["env"].rsplit("-v", 1)[0] in args.env]
        if not rows:
            raise SystemExit(f"No rows of --env {' '.join(args.env)} in {' '.join(map(str, args.csv))}")
    if len(args.csv) > 1:  # the runs in one file, for the report and plot of benchmarks.compare --report-only
        with open(RESULTS / f"{args.name}.csv", "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows({key: row.get(key, "") for key in FIELDS} for row in rows)
    table = goals_table(rows, args.reach, args.hold)
    sources = " ".join(str(path) for path in args.csv) + (f" --env {' '.join(args.env)}" if args.env else "")
    plots = plot(rows, RESULTS, prefix=f"{args.name}_", levels=(args.reach, args.hold), from_random=True)
    (RESULTS / f"{args.name}.md").write_text(
        f"# Goals: {args.name}\n\nCommand: `python -m benchmarks.goals {sources} --reach {args.reach} --hold {args.hold} "
        f"--name {args.name}`\n\n{table}\n" + "".join(f"\n![{path.stem}]({path.name})\n" for path in plots)
    )
    print(table)


if __name__ == "__main__":
    main()
