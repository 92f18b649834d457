"""
One GAIL run (DQN on CartPole-v1 by default; ``--algo sac`` or ``td3`` with rl-zoo3's settings for a Box env) with
reward-model overrides, printing the true return every ``--eval-every`` env steps and the discriminator's statistics
and the critic's values every ``--stats-every``: the probe behind docs/tuning_log.md.

    python -m benchmarks.single_run --n-demos 1 --dqn recommended --seed 0 --steps 75000 \
        --reward-model '{"gradient_penalty": 1}'
    python -m benchmarks.single_run --env MountainCarContinuous-v0 --algo sac --steps 50000 --eval-every 2500 \
        --stats-every 2500 --reward-model '{"center_on_absorbing": true}'
"""

from __future__ import annotations

import argparse
import json
from typing import Dict, List, cast

import numpy as np
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from benchmarks.compare import expert_demonstrations
from benchmarks.methods import CONTINUOUS_ALGORITHMS, EvalEveryK, Evaluator, dqn_settings, make_ours_continuous
from sb3_gail_plugin import GailCallback, GailReplayBuffer
from sb3_gail_plugin.demonstrations import subsample_episodes

SHOWN = ("disc_loss", "expert_acc", "agent_acc", "reward_mean", "expert_reward_mean", "absorbing_reward")


class PrintDiscriminatorStats(BaseCallback):
    """
    Prints the latest discriminator statistics of a :class:`GailCallback` every ``every`` env steps,
    with the Q-values on the expert's states and on replayed states (DQN: max over actions; SAC and TD3: the
    first critic on the stored actions, the expert's rescaled as the buffer stores them) and the share of
    terminations in the replay buffer.
    """

    def __init__(self, gail: GailCallback, every: int = 10_000) -> None:
        """
        :param gail: The run's GAIL callback
        :param every: Print every ``every`` env steps
        """
        super().__init__()
        self.gail, self.every = gail, every
        self.rng = np.random.default_rng(0)  # not NumPy's global generator, which SB3's sampling draws from

    def q_stats(self) -> Dict[str, float]:
        """
        Mean Q-values on the expert's pairs and on 1,000 replayed pairs (their minimum too), and the share of real
        terminations in the replay buffer.
        """
        reward_model, buffer = self.gail.reward_model, self.model.replay_buffer  # type: ignore[attr-defined]
        assert reward_model is not None
        filled = buffer.buffer_size if buffer.full else buffer.pos
        rows = self.rng.integers(filled, size=1000)
        device = self.model.device
        expert_obs = th.as_tensor(reward_model.expert_data.observations, device=device)
        replay_obs = th.as_tensor(buffer.observations[rows, 0], device=device)
        with th.no_grad():
            if isinstance(self.model, DQN):
                expert_q = self.model.q_net(expert_obs).max(dim=1).values
                replay_q = self.model.q_net(replay_obs).max(dim=1).values
            else:
                critic, policy = self.model.critic, self.model.policy  # type: ignore[attr-defined]
                assert reward_model.expert_data.actions is not None
                expert_actions = th.as_tensor(policy.scale_action(reward_model.expert_data.actions), device=device)
                expert_q = critic(expert_obs.float(), expert_actions.float())[0]
                replay_actions = th.as_tensor(buffer.actions[rows, 0], device=device)
                replay_q = critic(replay_obs.float(), replay_actions.float())[0]
        terminal_share = float(np.mean(buffer.dones[:filled] * (1 - buffer.timeouts[:filled])))
        return dict(
            q_expert=round(expert_q.mean().item(), 1),
            q_replay=round(replay_q.mean().item(), 1),
            q_replay_min=round(replay_q.min().item(), 1),
            terminal_share=round(terminal_share, 4),
        )

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every == 0 and self.gail.last_stats:
            stats = {key: round(value, 2) for key, value in self.gail.last_stats.items() if key in SHOWN}
            stats.update(self.q_stats())
            print(self.num_timesteps, stats, flush=True)
        return True


def main(argv: List[str] | None = None) -> None:
    """Command line: one GAIL run with its evaluations and, on request, discriminator and critic statistics."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--n-demos", type=int, default=10)
    parser.add_argument("--algo", choices=["dqn", *CONTINUOUS_ALGORITHMS], default="dqn")
    parser.add_argument("--dqn", choices=["recommended", "zoo"], default="recommended", help="DQN's settings")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--reward-model", default="{}", help="GailRewardModel keyword arguments, as JSON")
    parser.add_argument("--eval-every", type=int, default=5000)
    parser.add_argument("--stats-every", type=int, default=10_000)
    parser.add_argument("--subsample-every", type=int, default=1, help="keep every k-th expert transition (DAC)")
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    demos = subsample_episodes(expert_demonstrations(args.env, args.n_demos), args.subsample_every, seed=args.seed)
    evaluator = Evaluator(args.env, args.seed, every=args.eval_every)
    gail = GailCallback(demos, **json.loads(args.reward_model))
    model: OffPolicyAlgorithm
    if args.algo == "dqn":
        model = DQN(
            "MlpPolicy", args.env, replay_buffer_class=GailReplayBuffer, seed=args.seed, **dqn_settings(args.env, args.dqn)
        )
    else:
        model = cast(OffPolicyAlgorithm, make_ours_continuous(args.env, args.seed, args.algo))
    model.learn(args.steps, callback=[gail, PrintDiscriminatorStats(gail, args.stats_every), EvalEveryK(evaluator)])
    print(
        f"returns every {args.eval_every} env steps:",
        [round(r["mean_return"], 1) for r in evaluator.records],
        "episode lengths:",
        [round(r["mean_length"]) for r in evaluator.records],
        flush=True,
    )


if __name__ == "__main__":
    main()
