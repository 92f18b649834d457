"""
GAIL-DQN on CartPole-v1, end to end, with every piece of the GAIL round written out:

1. train a PPO expert and record its demonstrations (cached under demos/);
2. build the reward model (discriminator), wrap the env so every transition reaches it,
   use the relabelling replay buffer, and run the round with GailCallback;
3. print the true return the GAIL agent reached (the env reward is never shown to DQN).

Run: python examples/dqn_cartpole_gail.py [--timesteps 50000] [--n-episodes 10] [--seed 0]
"""

import argparse
import time
from pathlib import Path

from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_gail_plugin import GailCallback, GailReplayBuffer, GailRewardModel, GailVecEnvWrapper, load_demonstrations
from sb3_gail_plugin.experts import make_expert_demonstrations
from sb3_gail_plugin.hyperparams import GAIL_DQN_CARTPOLE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=50_000)
    parser.add_argument("--n-episodes", type=int, default=10, help="expert episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--demos", default="demos/CartPole-v1.npz")
    args = parser.parse_args()

    # 1. Expert demonstrations, made from scratch once
    demos_path = Path(args.demos)
    if demos_path.exists():
        demonstrations = load_demonstrations(demos_path)
    else:
        print("Training a PPO expert and recording its demonstrations ...")
        demonstrations = make_expert_demonstrations(
            "CartPole-v1", demos_path, n_episodes=args.n_episodes, model_path=demos_path.with_suffix(".expert.zip")
        )
    expert_return = demonstrations.episode_returns().mean()
    print(f"Demonstrations: {len(demonstrations)} transitions, expert return {expert_return:.1f}")

    # 2. The GAIL round, piece by piece
    env = make_vec_env("CartPole-v1", n_envs=1, seed=args.seed)
    reward_model = GailRewardModel(env.observation_space, env.action_space, demonstrations, seed=args.seed)
    env = GailVecEnvWrapper(env, reward_model)  # every env step -> reward_model.collect_data()
    model = DQN("MlpPolicy", env, replay_buffer_class=GailReplayBuffer, seed=args.seed, verbose=0, **GAIL_DQN_CARTPOLE)
    # The eval env gets the same wrapper types as the training chain, as SB3's EvalCallback expects; without a
    # reward model the wrapper records nothing, so evaluation episodes never reach the discriminator
    eval_env = GailVecEnvWrapper(make_vec_env("CartPole-v1", n_envs=1, seed=args.seed + 1000))
    evaluation = EvalCallback(eval_env, eval_freq=5000, n_eval_episodes=10, verbose=1)
    start = time.time()
    # GailCallback attaches the reward model to the buffer and trains D at each rollout end
    model.learn(args.timesteps, callback=[GailCallback(reward_model), evaluation])

    # 3. The true return reached
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=20, deterministic=True)
    print(f"GAIL-DQN after {args.timesteps} env steps ({time.time() - start:.0f} s): true return {mean:.1f} +/- {std:.1f}")
    print(f"Best evaluation during training: {evaluation.best_mean_reward:.1f} (expert: {expert_return:.1f})")


if __name__ == "__main__":
    main()
