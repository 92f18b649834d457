"""
Should the discriminator see Box actions in the env's units or rescaled to [-1, 1] (the units SB3's off-policy
algorithms store)? GAIL-SAC on Pendulum-v1 (actions in [-2, 2]) from the committed SAC expert's episodes, both ways:

- ``env``: the package's behaviour, the discriminator sees torques in [-2, 2] (or, with ``--bounds LOW HIGH``, the
  same task behind gymnasium's ``RescaleAction`` to [LOW, HIGH], the expert's actions mapped there: wide, narrow or
  off-centre bounds);
- ``rescaled``: the same task behind ``RescaleAction`` to [-1, 1] and the expert's actions divided by 2, so that the
  discriminator sees the units SAC stores, and nothing else changes (SAC squashes to [-1, 1] and SB3 rescales to the
  bounds either way). It does not depend on ``--bounds``.

    python -m benchmarks.action_units --seeds 0 1 2 --steps 8000 --every 1000
    python -m benchmarks.action_units --seeds 0 1 2 --steps 8000 --every 1000 --units env --bounds 0 20

Writes benchmarks/results/action_units_Pendulum-v1.md (``_bounds_LOW_HIGH`` added with ``--bounds``). (MuJoCo's
Hopper and HalfCheetah have bounds [-1, 1]: there both are the same.)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List, Optional, Tuple

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.env_util import make_vec_env

from benchmarks.compare import ROOT, environment_note, expert_demonstrations, random_policy_return
from benchmarks.methods import EvalEveryK, Evaluator, continuous_settings
from sb3_gail_plugin import GailCallback, GailReplayBuffer, Transitions

ENV_ID = "Pendulum-v1"


def rescaled_env(low: float = -1.0, high: float = 1.0) -> gym.Env:
    """Pendulum-v1 behind ``RescaleAction`` to ``[low, high]``: the same task, its torque bounds [-2, 2] moved there."""
    return gym.wrappers.RescaleAction(gym.make(ENV_ID), np.full(1, low, np.float32), np.full(1, high, np.float32))


def run(
    units: str, demos: Transitions, seed: int, steps: int, every: int, bounds: Optional[Tuple[float, float]] = None
) -> List[float]:
    """
    True returns every ``every`` env steps of GAIL-SAC (rl-zoo3's Pendulum settings) with the given action units.

    :param units: ``"env"`` (the discriminator sees the env's units) or ``"rescaled"`` (the env's bounds are [-1, 1])
    :param bounds: The env's action bounds for ``units="env"`` (None: Pendulum's own, [-2, 2])
    """
    if units not in ("env", "rescaled"):
        raise ValueError(f"units must be 'env' or 'rescaled', got {units!r}")
    if units == "rescaled":
        bounds = (-1.0, 1.0)
    make_env: Any = ENV_ID if bounds is None else (lambda: rescaled_env(*bounds))
    if bounds is not None:
        low, high = bounds
        space = gym.make(ENV_ID).action_space
        assert isinstance(space, gym.spaces.Box) and demos.actions is not None
        if units == "rescaled":
            actions = demos.actions / space.high  # Pendulum's bounds are symmetric
        else:
            unit = (demos.actions - space.low) / (space.high - space.low)  # the expert's torques, 0 to 1 across them
            actions = (low + unit * (high - low)).astype(np.float32)
        demos = Transitions(
            observations=demos.observations,
            actions=actions,
            next_observations=demos.next_observations,
            dones=demos.dones,
            timeouts=demos.timeouts,
        )
    env = make_vec_env(make_env, n_envs=1, seed=seed)
    model = SAC("MlpPolicy", env, replay_buffer_class=GailReplayBuffer, seed=seed, **continuous_settings(ENV_ID, "sac"))
    # the true task (the rescaled env is the same task): make_vec_env takes the factory as it takes the id
    evaluator = Evaluator(make_env, seed, every=every)
    model.learn(steps, callback=[GailCallback(demos), EvalEveryK(evaluator)])
    return [record["mean_return"] for record in evaluator.records]


def main(argv: Optional[List[str]] = None) -> None:
    """Command line: run the action-units comparison (see the module's docstring) and write its Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--n-demos", type=int, default=5)
    parser.add_argument("--units", nargs="+", choices=["env", "rescaled"], default=["env", "rescaled"])
    parser.add_argument(
        "--bounds", nargs=2, type=float, metavar=("LOW", "HIGH"), help="the env's action bounds for --units env"
    )
    args = parser.parse_args(argv)
    if args.bounds is not None and not args.bounds[0] < args.bounds[1]:
        parser.error(f"--bounds needs LOW < HIGH, got {args.bounds[0]} {args.bounds[1]}")
    bounds = None if args.bounds is None else (args.bounds[0], args.bounds[1])
    th.set_num_threads(1)
    demos = expert_demonstrations(ENV_ID, args.n_demos)
    expert, random = float(np.mean(demos.episode_returns())), random_policy_return(ENV_ID)
    command = "python -m benchmarks.action_units " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"# Discriminator action units, GAIL-SAC on {ENV_ID}",
        "",
        f"`{command}`",
        "",
        environment_note(),
        "",
        f"{args.n_demos} expert episodes (return {expert:.1f}); random actions {random:.1f}. Normalised return: "
        "(return - random) / (expert - random). True return (10 episodes) every "
        f"{args.every:,} env steps.",
        "",
        "| units | seed | env steps to 90 % | mean normalised return, second half | returns |",
        "|---|---|---|---|---|",
    ]
    if bounds is not None:
        lines[6:6] = [f"`env`: the env's action bounds moved to [{bounds[0]:g}, {bounds[1]:g}] (Pendulum's: [-2, 2]).", ""]
    summary: Dict[str, List[float]] = {units: [] for units in args.units}
    for seed in args.seeds:
        for units in args.units:
            returns = run(units, demos, seed, args.steps, args.every, bounds)
            normalised = [(value - random) / (expert - random) for value in returns]
            first = next((args.every * (i + 1) for i, value in enumerate(normalised) if value >= 0.9), None)
            late = float(np.mean(normalised[len(normalised) // 2 :]))
            summary[units].append(late)
            shown = " ".join(f"{value:.0f}" for value in returns)
            lines.append(f"| {units} | {seed} | {'never' if first is None else f'{first:,}'} | {late:.2f} | {shown} |")
            print(lines[-1], flush=True)
    lines += [
        "",
        "Mean over seeds of the second-half normalised return: "
        + ", ".join(f"{units} {np.mean(values):.2f}" for units, values in summary.items()),
    ]
    suffix = "" if bounds is None else f"_bounds_{bounds[0]:g}_{bounds[1]:g}"
    out = ROOT / "results" / f"action_units_{ENV_ID}{suffix}.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
