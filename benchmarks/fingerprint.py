"""
Learning-result fingerprints: short seeded GAIL runs whose trained weights and relabelled rewards are
saved, so that a speed change can be checked to leave the learning results bit for bit as they were.

    PYTHONPATH=/path/to/base python benchmarks/fingerprint.py --out base.npz      # the base commit's package
    PYTHONPATH=. python benchmarks/fingerprint.py --out new.npz
    python benchmarks/fingerprint.py --compare base.npz new.npz

Runs as a script (not ``-m``) so that ``PYTHONPATH`` picks the package version under test. Cases:
GAIL-DQN on CartPole-v1 (package defaults, ``GAIL_DQN_CARTPOLE``), GAIL-DQN under ``VecNormalize``,
GAIL-SAC on Pendulum-v1 (SB3 defaults), GAIL-SAC under ``VecNormalize`` and GAIL-PPO on CartPole-v1
(rl-zoo3's settings, 8 envs). Each records the discriminator's and the policy's parameters, the
discriminator's statistics and the relabelled rewards of a seeded replay (or rollout) batch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch as th
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

import sb3_gail_plugin
from sb3_gail_plugin import GailCallback, GailReplayBuffer, Transitions, collect_demonstrations, load_demonstrations
from sb3_gail_plugin.hyperparams import GAIL_DQN_CARTPOLE, ZOO_PPO_CARTPOLE, ZOO_PPO_CARTPOLE_N_ENVS

CARTPOLE_DEMOS = Path(__file__).resolve().parent / "experts" / "CartPole-v1_expert_demos.npz"


class SwingPolicy:
    """A seeded, state-dependent Pendulum controller (energy pumping with noise): demonstrations for the cases."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def predict(self, obs: np.ndarray, deterministic: bool = True, **_: Any) -> Tuple[np.ndarray, None]:
        torque = 2.0 * np.sign(obs[:, 2:3] * obs[:, 0:1]) + self.rng.normal(0.0, 0.3, size=(len(obs), 1))
        return np.clip(torque, -2.0, 2.0).astype(np.float32), None


def cartpole_demos() -> Transitions:
    demos = load_demonstrations(CARTPOLE_DEMOS)
    return demos[np.arange(np.flatnonzero(demos.dones)[4] + 1)]  # 5 episodes


def pendulum_demos() -> Transitions:
    return collect_demonstrations(SwingPolicy(), make_vec_env("Pendulum-v1", n_envs=1, seed=123), n_episodes=3)


def _params(prefix: str, module: th.nn.Module) -> Dict[str, np.ndarray]:
    return {f"{prefix}/{name}": value.detach().cpu().numpy().copy() for name, value in module.state_dict().items()}


def _record(model: Any, gail: GailCallback) -> Dict[str, np.ndarray]:
    reward_model = gail.reward_model
    assert reward_model is not None
    record = {**_params("policy", model.policy), **_params("discriminator", reward_model.discriminator)}
    record.update({f"stats/{key}": np.array(value) for key, value in gail.last_stats.items()})
    record["stats/n_updates"] = np.array(reward_model.n_updates)
    record["stats/n_collected"] = np.array(reward_model.n_collected)
    record["generator"] = reward_model.generator.get_state().numpy()
    if hasattr(model, "replay_buffer"):
        np.random.seed(1)
        batch = model.replay_buffer.sample(256, env=model.get_vec_normalize_env())
        record.update(
            relabelled_rewards=batch.rewards.cpu().numpy(),
            batch_observations=batch.observations.cpu().numpy(),
            batch_actions=batch.actions.cpu().numpy(),
            batch_dones=batch.dones.cpu().numpy(),
        )
    else:
        record["rollout_rewards"] = np.array(model.rollout_buffer.rewards)
        record["rollout_advantages"] = np.array(model.rollout_buffer.advantages)
    return record


def dqn_cartpole(normalize: bool = False) -> Dict[str, np.ndarray]:
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    if normalize:
        env = VecNormalize(env, gamma=GAIL_DQN_CARTPOLE["gamma"])
    settings = {**GAIL_DQN_CARTPOLE, "learning_starts": 500}
    model = DQN("MlpPolicy", env, replay_buffer_class=GailReplayBuffer, seed=0, **settings)
    gail = GailCallback(cartpole_demos())
    model.learn(2600, callback=gail)
    return _record(model, gail)


def sac_pendulum(normalize: bool = False) -> Dict[str, np.ndarray]:
    env = make_vec_env("Pendulum-v1", n_envs=1, seed=0)
    if normalize:
        env = VecNormalize(env)
    model = SAC("MlpPolicy", env, replay_buffer_class=GailReplayBuffer, seed=0, learning_starts=200, batch_size=64)
    gail = GailCallback(pendulum_demos())
    model.learn(700 if normalize else 1200, callback=gail)
    return _record(model, gail)


def ppo_cartpole() -> Dict[str, np.ndarray]:
    env = make_vec_env("CartPole-v1", n_envs=ZOO_PPO_CARTPOLE_N_ENVS, seed=0)
    model = PPO("MlpPolicy", env, seed=0, **ZOO_PPO_CARTPOLE)
    gail = GailCallback(cartpole_demos())
    model.learn(2560, callback=gail)
    return _record(model, gail)


CASES: Dict[str, Callable[[], Dict[str, np.ndarray]]] = {
    "dqn_cartpole": dqn_cartpole,
    "dqn_cartpole_vecnormalize": lambda: dqn_cartpole(normalize=True),
    "sac_pendulum": sac_pendulum,
    "sac_pendulum_vecnormalize": lambda: sac_pendulum(normalize=True),
    "ppo_cartpole": ppo_cartpole,
}


def record(cases: List[str], out: Path) -> None:
    th.set_num_threads(1)
    print(f"sb3_gail_plugin from {Path(sb3_gail_plugin.__file__).parent}", flush=True)
    arrays: Dict[str, np.ndarray] = {}
    for case in cases:
        print(f"{case} ...", flush=True)
        arrays.update({f"{case}:{key}": value for key, value in CASES[case]().items()})
    np.savez(out, **arrays)  # type: ignore[arg-type]
    print(f"Wrote {len(arrays)} arrays to {out}")


def compare(first: Path, second: Path) -> bool:
    """Print, case by case, whether every array is bit-identical; return whether all are."""
    a, b = np.load(first), np.load(second)
    same = True
    for case in sorted({key.split(":")[0] for key in list(a.files) + list(b.files)}):
        keys = sorted({key for key in list(a.files) + list(b.files) if key.startswith(case + ":")})
        differing = [
            key
            for key in keys
            if key not in a.files or key not in b.files or a[key].shape != b[key].shape or a[key].tobytes() != b[key].tobytes()
        ]
        print(f"{case}: {'bit-identical' if not differing else 'DIFFERENT'} ({len(keys)} arrays)")
        for key in differing:
            detail = ""
            if key in a.files and key in b.files and a[key].shape == b[key].shape:
                detail = f" max abs diff {np.max(np.abs(a[key].astype(np.float64) - b[key].astype(np.float64))):.3g}"
            print(f"    {key}{detail}")
        same = same and not differing
    return same


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="record the cases into this .npz file")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("FIRST", "SECOND"))
    args = parser.parse_args(argv)
    if args.compare:
        sys.exit(0 if compare(*args.compare) else 1)
    if args.out is None:
        parser.error("expected --out FILE or --compare FIRST SECOND")
    record(args.cases, args.out)


if __name__ == "__main__":
    main()
