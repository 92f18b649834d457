"""
One GAIL-PPO run with reward-model overrides, printing the true return every 10k env steps (10
episodes) and the discriminator's statistics: the probe behind the on-policy section of
docs/tuning_log.md. On CartPole-v1 the demonstrations are 5 episodes of the scripted expert the tests
use; on other envs, the benchmark's expert episodes (benchmarks/experts/).

    python -m benchmarks.on_policy_run --ppo zoo --seed 0 --steps 150000 --reward-model '{"normalize_reward": true}'
    python -m benchmarks.on_policy_run --env InvertedDoublePendulum-v4 --n-demos 10 --every 25000 --steps 150000
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from benchmarks.methods import EvalEveryK, Evaluator, make_ppo_env, ppo_settings
from sb3_gail_plugin import GailCallback, Transitions, collect_demonstrations


class CartPoleScriptedExpert:
    """The scripted CartPole-v1 controller of tests/conftest.py (return 500)."""

    def predict(self, obs: np.ndarray, deterministic: bool = True, **_: Any) -> Tuple[np.ndarray, Optional[Any]]:
        return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64), None


def scripted_demonstrations(n_episodes: int = 5) -> Transitions:
    """The tests' ``cartpole_demos`` fixture: episodes of the scripted expert, seed 123."""
    return collect_demonstrations(CartPoleScriptedExpert(), "CartPole-v1", n_episodes=n_episodes, seed=123)


SHOWN = ("disc_loss", "expert_acc", "agent_acc", "reward_mean", "expert_reward_mean", "absorbing_reward")


class PrintDiscriminatorStats(BaseCallback):
    """Prints the latest statistics of a :class:`GailCallback` at the first rollout end after every K env steps."""

    def __init__(self, gail: GailCallback, every: int) -> None:
        super().__init__()
        self.gail, self.every, self.next_at = gail, every, every

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps >= self.next_at and self.gail.last_stats:
            print(self.num_timesteps, {key: round(self.gail.last_stats[key], 2) for key in SHOWN}, flush=True)
            while self.next_at <= self.num_timesteps:
                self.next_at += self.every


def summarize(records: List[Dict[str, float]], threshold: float = 475.0, after: int = 0) -> Dict[str, Any]:
    """
    First evaluation at or above ``threshold``, and whether every later evaluation stayed there.

    :param after: Ignore evaluations up to this many env steps (before the first policy update, an untrained
        deterministic policy can balance the pole by chance)
    """
    records = [r for r in records if r["env_steps"] > after]
    returns = [r["mean_return"] for r in records]
    first = next((i for i, value in enumerate(returns) if value >= threshold), None)
    if first is None:
        return dict(first_at=None, first_wall_s=None, held=False, min_after=None, final=returns[-1] if returns else None)
    return dict(
        first_at=int(records[first]["env_steps"]),
        first_wall_s=round(records[first]["wall_s"], 1),
        held=all(value >= threshold for value in returns[first:]),
        min_after=round(min(returns[first:])),
        final=round(returns[-1]),
    )


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--ppo", choices=["zoo", "tutorial"], default="zoo", help="rl-zoo3's or imitation's tutorial's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=150_000)
    parser.add_argument("--n-demos", type=int, default=5)
    parser.add_argument("--every", type=int, default=10_000, help="evaluate every this many env steps")
    parser.add_argument("--reward-model", default="{}", help="GailRewardModel keyword arguments, as JSON")
    parser.add_argument("--true-reward", action="store_true", help="plain PPO on the env reward (no GAIL)")
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    settings, n_envs, normalize = ppo_settings(args.env, args.ppo)
    env = make_ppo_env(args.env, n_envs, args.seed, normalize, settings.get("gamma", 0.99))
    model = PPO("MlpPolicy", env, seed=args.seed, **settings)
    evaluator = Evaluator(args.env, args.seed, every=args.every)
    if args.env == "CartPole-v1":
        demos = scripted_demonstrations(args.n_demos)
    else:
        from benchmarks.compare import expert_demonstrations

        demos = expert_demonstrations(args.env, args.n_demos)
    callbacks: List[Any] = [EvalEveryK(evaluator)]
    gail = None
    if not args.true_reward:
        gail = GailCallback(demos, **json.loads(args.reward_model))
        callbacks = [gail, PrintDiscriminatorStats(gail, args.every), *callbacks]
    start = time.perf_counter()
    model.learn(args.steps, callback=callbacks)
    wall = time.perf_counter() - start
    print("returns:", [round(r["mean_return"]) for r in evaluator.records], flush=True)
    if gail is not None:
        print("last D stats:", {key: round(value, 2) for key, value in gail.last_stats.items()}, flush=True)
    summary = dict(env=args.env, ppo=args.ppo, seed=args.seed, reward_model=args.reward_model, true_reward=args.true_reward)
    threshold = 475.0 if args.env == "CartPole-v1" else 0.95 * float(np.mean(demos.episode_returns()))
    after = n_envs * settings.get("n_steps", 2048)
    summary.update(summarize(evaluator.records, threshold=threshold, after=after), wall_s=round(wall, 1))
    print("summary:", json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
