"""Summaries of the benchmark's evaluations: a Markdown table per env and demo count, and a plot."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

FIELDS = [
    "env",
    "n_demos",
    "method",
    "seed",
    "env_steps",
    "wall_s",
    "mean_return",
    "std_return",
    "expert_return",
    "random_return",
    "mean_length",
    "resumed_at",  # empty unless the run went on from a checkpoint (benchmarks/checkpoints.py) before this evaluation
]


def score_floor(random_return: float) -> float:
    """Return that counts as 0 % of the expert: 0, or a random policy's return where that is lower (Acrobot)."""
    return min(0.0, random_return)


def fraction_of_expert(fraction: float, expert_return: float, random_return: float = 0.0, from_random: bool = False) -> float:
    """
    The return ``fraction`` of the way from :func:`score_floor` to the expert's (0.95 * expert when returns are >= 0);
    with ``from_random``, from the random policy's return (issue 9's goals).
    """
    floor = random_return if from_random else score_floor(random_return)
    return floor + fraction * (expert_return - floor)


def random_return_of(row: Dict[str, str]) -> float:
    """A row's random-policy return; 0 for rows written before that column existed."""
    return float(row.get("random_return") or 0.0)


def read_csv(path: Path) -> List[Dict[str, str]]:
    """The rows of a benchmark CSV, as strings keyed by column."""
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def first_reach(records: Sequence[Dict[str, str]], threshold: float) -> Optional[int]:
    """Index of the first evaluation at or above ``threshold`` whose next evaluation is too (None if never)."""
    returns = [float(r["mean_return"]) for r in records]
    for i in range(len(returns) - 1):
        if returns[i] >= threshold and returns[i + 1] >= threshold:
            return i
    return None


def summarize_run(records: Sequence[Dict[str, str]], expert_return: float, random_return: float = 0.0) -> Dict[str, float]:
    """Per-run figures: steps and seconds to 95 % of expert, final return, min return after reaching, steps/s."""
    reach = first_reach(records, fraction_of_expert(0.95, expert_return, random_return))
    last = records[-1]
    steps, wall = float(last["env_steps"]), float(last["wall_s"])
    return dict(
        steps_to_95=float(records[reach]["env_steps"]) if reach is not None else np.nan,
        wall_to_95=float(records[reach]["wall_s"]) if reach is not None else np.nan,
        final_return=float(last["mean_return"]),
        min_after_95=min(float(r["mean_return"]) for r in records[reach:]) if reach is not None else np.nan,
        steps_per_s=steps / wall if wall > 0 and steps > 0 else np.nan,
        env_steps=steps,
    )


def _median_of(summaries: List[Dict[str, float]]) -> Callable[[str], float]:
    """Median over seeds of one figure; NaN (never) if any seed has NaN."""

    def median(key: str) -> float:
        values = np.array([summary[key] for summary in summaries])
        return float(np.median(values)) if not np.any(np.isnan(values)) else np.nan

    return median


def _fmt(value: float, digits: int = 0) -> str:
    return "never" if np.isnan(value) else f"{value:,.{digits}f}"


def markdown_tables(rows: List[Dict[str, str]]) -> str:
    """One table per (env, n_demos): medians over seeds of each method's figures."""
    runs: Dict[tuple, List[Dict[str, str]]] = defaultdict(list)
    for row in rows:
        runs[(row["env"], row["n_demos"], row["method"], row["seed"])].append(row)
    groups: Dict[tuple, Dict[str, List[Dict[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for (env, n_demos, method, _), records in runs.items():
        records.sort(key=lambda r: float(r["env_steps"]))
        groups[(env, n_demos)][method].append(
            summarize_run(records, float(records[0]["expert_return"]), random_return_of(records[0]))
        )
    lines = []
    for (env, n_demos), methods in sorted(groups.items()):
        first = next(r for r in rows if r["env"] == env and r["n_demos"] == n_demos)
        expert, random_return = float(first["expert_return"]), random_return_of(first)
        target, hold = fraction_of_expert(0.95, expert, random_return), fraction_of_expert(0.9, expert, random_return)
        lines += [
            f"### {env}, {n_demos} expert episode(s) (expert return {expert:.1f}, random policy {random_return:.1f}; "
            f"95 % = {target:.1f}, 90 % = {hold:.1f})",
            "",
            "| method | seeds | env steps to 95 % | wall s to 95 % | final return | min return after 95 % "
            "| held >= 90 % | env steps / s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for method, summaries in sorted(methods.items()):
            median = _median_of(summaries)
            if all(s["env_steps"] == 0 for s in summaries):  # trained without env steps (BC): one evaluation
                lines.append(
                    f"| {method} | {len(summaries)} | no env steps | - | {_fmt(median('final_return'), 1)} | - | - | - |"
                )
                continue
            held = sum(1 for s in summaries if not np.isnan(s["min_after_95"]) and s["min_after_95"] >= hold)
            lines.append(
                f"| {method} | {len(summaries)} | {_fmt(median('steps_to_95'))} | {_fmt(median('wall_to_95'), 1)} "
                f"| {_fmt(median('final_return'), 1)} | {_fmt(median('min_after_95'), 1)} | {held}/{len(summaries)} "
                f"| {_fmt(median('steps_per_s'))} |"
            )
        lines.append("")
    lines.append(
        "Medians over seeds; 'never' when at least one seed never reached 95 % (and stayed on the next evaluation). "
        "Percentages run from 0, or from a random policy's return where that is lower, to the expert's return."
    )
    return "\n".join(lines)


def plot(
    rows: List[Dict[str, str]],
    out_dir: Path,
    prefix: str = "",
    levels: Sequence[float] = (0.95,),
    from_random: bool = False,
) -> List[Path]:
    """
    Return against env steps per (env, n_demos): median and min-max band over seeds, a line per method.

    :param prefix: Start of the file names (the run's name), so that runs in one folder keep their own plots
    :param levels: Fractions of the expert's return drawn as dashed reference lines
    :param from_random: Measure ``levels`` from the random policy's return (as :mod:`benchmarks.goals` does) instead
        of from :func:`score_floor`
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    keys = sorted({(r["env"], r["n_demos"]) for r in rows})
    for env, n_demos in keys:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        subset = [r for r in rows if r["env"] == env and r["n_demos"] == n_demos]
        for method in sorted({r["method"] for r in subset}):
            by_step: Dict[float, List[float]] = defaultdict(list)
            for r in subset:
                if r["method"] == method:
                    by_step[float(r["env_steps"])].append(float(r["mean_return"]))
            steps = np.array(sorted(by_step))
            values = [np.array(by_step[s]) for s in steps]
            if len(steps) == 1 and steps[0] == 0:  # no env steps (behaviour cloning): a reference line
                ax.axhline(float(np.median(values[0])), linestyle=":", color="gray", label=f"{method} (no env steps)")
                continue
            median = np.array([np.median(v) for v in values])
            line = ax.plot(steps, median, label=method)[0]
            ax.fill_between(steps, [v.min() for v in values], [v.max() for v in values], alpha=0.15, color=line.get_color())
        expert, random_return = float(subset[0]["expert_return"]), random_return_of(subset[0])
        for i, level in enumerate(levels):
            ax.axhline(
                fraction_of_expert(level, expert, random_return, from_random),
                linestyle="--",
                color="black",
                linewidth=0.8 if i == 0 else 0.5,
                label=f"{level:.0%} of expert" + (" (from random)" if from_random else ""),
            )
        ax.set(
            xlabel="env steps",
            ylabel="true return (mean over deterministic episodes)",
            title=f"{env}, {n_demos} expert episode(s)",
        )
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        path = out_dir / f"{prefix}{env}_{n_demos}demos.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
