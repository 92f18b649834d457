"""
GAIL-PPO on CartPole-v1 with rl-zoo3's PPO settings: one callback, no buffer class.

1. train a PPO expert and record its demonstrations (cached under demos/);
2. train PPO with GailCallback: at each rollout end the discriminator trains on that rollout, and
   the rollout buffer's rewards are replaced by its rewards before PPO's update;
3. print the true return the GAIL agent reached (the env reward is never shown to PPO).

Run: python examples/ppo_cartpole_gail.py [--timesteps 50000] [--n-episodes 5] [--seed 1]
"""

import argparse
import time
from pathlib import Path

from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_gail_plugin import GailCallback, load_demonstrations
from sb3_gail_plugin.experts import make_expert_demonstrations
from sb3_gail_plugin.hyperparams import ZOO_PPO_CARTPOLE, ZOO_PPO_CARTPOLE_N_ENVS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=50_000)
    parser.add_argument("--n-episodes", type=int, default=5, help="expert episodes")
    parser.add_argument("--seed", type=int, default=1, help="seed 0's untrained policy already balances 438 steps")
    parser.add_argument("--demos", default=None, help="demonstrations cache (default: demos/CartPole-v1_<n>_episodes.npz)")
    args = parser.parse_args()

    # 1. Expert demonstrations, made from scratch once
    demos_path = Path(args.demos or f"demos/CartPole-v1_{args.n_episodes}_episodes.npz")
    if demos_path.exists():
        demonstrations = load_demonstrations(demos_path)
    else:
        print("Training a PPO expert and recording its demonstrations ...")
        demonstrations = make_expert_demonstrations(
            "CartPole-v1", demos_path, n_episodes=args.n_episodes, model_path=demos_path.with_suffix(".expert.zip")
        )
    expert_return = demonstrations.episode_returns().mean()
    print(f"Demonstrations: {len(demonstrations)} transitions, expert return {expert_return:.1f}")

    # 2. Your PPO script, plus the callback
    env = make_vec_env("CartPole-v1", n_envs=ZOO_PPO_CARTPOLE_N_ENVS, seed=args.seed)
    model = PPO("MlpPolicy", env, seed=args.seed, verbose=0, **ZOO_PPO_CARTPOLE)
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=args.seed + 1000)
    evaluation = EvalCallback(eval_env, eval_freq=10_000 // env.num_envs, n_eval_episodes=10, verbose=1)
    start = time.time()
    model.learn(args.timesteps, callback=[GailCallback(demonstrations), evaluation])

    # 3. The true return reached
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=20, deterministic=True)
    print(f"GAIL-PPO after {args.timesteps} env steps ({time.time() - start:.0f} s): true return {mean:.1f} +/- {std:.1f}")
    print(f"Best evaluation during training: {evaluation.best_mean_reward:.1f} (expert: {expert_return:.1f})")


if __name__ == "__main__":
    main()
