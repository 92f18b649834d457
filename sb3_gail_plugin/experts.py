"""
Make expert demonstrations from scratch: train an SB3 expert, then record its episodes.

Command line::

    python -m sb3_gail_plugin.experts --env CartPole-v1 --n-episodes 10 --out demos/CartPole-v1.npz
    python -m sb3_gail_plugin.experts --env Pendulum-v1 --algo sac --n-episodes 10 --out demos/Pendulum-v1.npz
    python -m sb3_gail_plugin.experts --env Hopper-v5 --algo sac --checkpoint --out demos/Hopper-v5.npz  # resumable
    python -m sb3_gail_plugin.experts --env Hopper-v5 --algo sac --out demos/Hopper-v5.npz --model-out experts/h.zip
"""

from __future__ import annotations

import argparse
import os
import shutil
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Dict, Optional, Type, Union

import numpy as np
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from sb3_gail_plugin.demonstrations import collect_demonstrations, save_demonstrations
from sb3_gail_plugin.hyperparams import (
    ZOO_PPO_CARTPOLE,
    ZOO_PPO_CARTPOLE_N_ENVS,
    ZOO_PPO_HOPPER,
    ZOO_PPO_MUJOCO_DEFAULTS,
    ZOO_SAC,
    sac_settings,
)
from sb3_gail_plugin.transitions import Transitions

#: rl-zoo3's tuned PPO hyperparameters (hyperparams/ppo.yml); other envs use SB3's PPO defaults
EXPERT_PPO_HYPERPARAMS: Dict[str, Dict[str, Any]] = {
    "CartPole-v1": dict(n_envs=ZOO_PPO_CARTPOLE_N_ENVS, total_timesteps=100_000, **ZOO_PPO_CARTPOLE),
    "LunarLander-v2": dict(
        n_envs=16,
        total_timesteps=1_000_000,
        n_steps=1024,
        batch_size=64,
        gae_lambda=0.98,
        gamma=0.999,
        n_epochs=4,
        ent_coef=0.01,
    ),
    # rl-zoo3's Acrobot-v1 settings without observation normalisation, and a smaller budget
    "Acrobot-v1": dict(
        n_envs=16,
        total_timesteps=300_000,
        n_steps=256,
        gae_lambda=0.94,
        gamma=0.99,
        n_epochs=4,
        ent_coef=0.0,
    ),
}
EXPERT_PPO_HYPERPARAMS["LunarLander-v3"] = EXPERT_PPO_HYPERPARAMS["LunarLander-v2"]
# rl-zoo3's Hopper settings, with its VecNormalize (``normalize=True``: saved next to the expert)
for _hopper in ("Hopper-v4", "Hopper-v5"):
    EXPERT_PPO_HYPERPARAMS[_hopper] = dict(n_envs=1, total_timesteps=1_000_000, normalize=True, **ZOO_PPO_HOPPER)
for _pendulum in ("InvertedDoublePendulum-v4", "InvertedDoublePendulum-v5"):
    EXPERT_PPO_HYPERPARAMS[_pendulum] = dict(n_envs=1, total_timesteps=1_000_000, normalize=True, **ZOO_PPO_MUJOCO_DEFAULTS)


#: The algorithms an expert can be trained with
EXPERT_ALGORITHMS: Dict[str, Type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC}


def progress_bar_available() -> bool:
    """Whether SB3's progress bar (``learn(progress_bar=True)``) can be shown: it needs ``tqdm`` and ``rich``."""
    return find_spec("tqdm") is not None and find_spec("rich") is not None


def normalizer_path(model_path: Union[str, os.PathLike[str]]) -> Path:
    """Where the ``VecNormalize`` statistics of the expert saved at ``model_path`` go."""
    return Path(model_path).with_suffix(".vecnormalize.pkl")


def expert_env(env_id: str, model_path: Optional[Union[str, os.PathLike[str]]], seed: int) -> VecEnv:
    """
    One env to run the expert saved at ``model_path`` in: under its ``VecNormalize`` statistics (frozen,
    raw rewards) when it was trained with them.
    """
    env: VecEnv = make_vec_env(env_id, n_envs=1, seed=seed)
    if model_path is not None and normalizer_path(model_path).exists():
        env = VecNormalize.load(str(normalizer_path(model_path)), env)
        env.training, env.norm_reward = False, False
    return env


def _algorithm_class(algo: str) -> Type[BaseAlgorithm]:
    if algo not in EXPERT_ALGORITHMS:
        raise ValueError(f"Expected algo in {sorted(EXPERT_ALGORITHMS)}, got {algo!r}")
    return EXPERT_ALGORITHMS[algo]


class ExpertCheckpoint(BaseCallback):
    """
    Save a training expert every ``every`` env steps to ``directory``: the model, its replay buffer (off-policy
    algorithms) and its ``VecNormalize`` statistics (where it has them), so that :func:`train_expert` can resume a
    long run (its ``checkpoint_dir``) after an interruption.

    :param directory: Where the checkpoint goes (overwritten each time)
    :param every: Env steps between checkpoints
    """

    def __init__(self, directory: Union[str, os.PathLike[str]], every: int = 50_000) -> None:
        super().__init__()
        if every < 1:
            raise ValueError(f"Expected every >= 1 env steps between checkpoints, got {every}")
        self.directory = Path(directory)
        self.every = int(every)
        self._last = 0

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps

    def _on_step(self) -> bool:
        if self.num_timesteps - self._last >= self.every:
            self._last = self.num_timesteps
            save_checkpoint(self.model, self.directory)
        return True


def save_checkpoint(model: BaseAlgorithm, directory: Union[str, os.PathLike[str]]) -> None:
    """
    Write ``model`` (``model.zip``), its replay buffer (``replay_buffer.pkl``) and its ``VecNormalize`` statistics
    (``vecnormalize.pkl``) to ``directory``. Each file is written under a temporary name, then moved into place, the
    model last: an interruption leaves the previous checkpoint (or one whose buffer is a little newer) usable.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if isinstance(model, OffPolicyAlgorithm):
        model.save_replay_buffer(directory / "replay_buffer.tmp.pkl")
        written.append("replay_buffer")
    normalizer = model.get_vec_normalize_env()
    if normalizer is not None:
        normalizer.save(str(directory / "vecnormalize.tmp.pkl"))
        written.append("vecnormalize")
    model.save(directory / "model.tmp.zip")
    for name in written:
        os.replace(directory / f"{name}.tmp.pkl", directory / f"{name}.pkl")
    os.replace(directory / "model.tmp.zip", directory / "model.zip")


def _resume(model_class: Type[BaseAlgorithm], directory: Path, env: VecEnv) -> BaseAlgorithm:
    """The model checkpointed in ``directory`` by :func:`save_checkpoint`, on ``env``, with its replay buffer."""
    if (directory / "vecnormalize.pkl").exists():
        env = VecNormalize.load(str(directory / "vecnormalize.pkl"), env)
    model = model_class.load(directory / "model.zip", env=env)
    if isinstance(model, OffPolicyAlgorithm) and (directory / "replay_buffer.pkl").exists():
        model.load_replay_buffer(directory / "replay_buffer.pkl")
    return model


def train_expert(
    env_id: str,
    total_timesteps: Optional[int] = None,
    seed: int = 0,
    verbose: int = 0,
    progress_bar: Optional[bool] = None,
    algo: str = "ppo",
    checkpoint_dir: Optional[Union[str, os.PathLike[str]]] = None,
    checkpoint_every: int = 50_000,
) -> BaseAlgorithm:
    """
    Train an expert on ``env_id``: PPO (rl-zoo3's tuned settings where we ship them, SB3 defaults otherwise) or
    SAC (rl-zoo3's settings from :data:`~sb3_gail_plugin.hyperparams.ZOO_SAC`, SB3 defaults otherwise).

    :param env_id: Gymnasium env id
    :param total_timesteps: Training budget (default: the tuned budget, else 200k)
    :param seed: Random seed
    :param verbose: SB3 verbosity
    :param progress_bar: Show SB3's progress bar; ``None`` (default): shown when ``tqdm`` and ``rich``
        are installed (``pip install tqdm rich``), left out otherwise
    :param algo: ``"ppo"`` or ``"sac"``
    :param checkpoint_dir: Save the run there every ``checkpoint_every`` env steps (:class:`ExpertCheckpoint`), and
        resume it from there when a checkpoint is already there (the env and random streams start afresh on
        resumption, so a resumed run is not bit-identical to an uninterrupted one)
    :param checkpoint_every: Env steps between checkpoints
    :return: The trained model
    """
    if progress_bar is None:
        progress_bar = progress_bar_available()
    model_class = _algorithm_class(algo)
    if model_class is SAC:
        params = sac_settings(env_id)
        budget = ZOO_SAC.get(env_id, {}).get("n_timesteps", 200_000) if total_timesteps is None else total_timesteps
        env: VecEnv = make_vec_env(env_id, n_envs=1, seed=seed)
    else:
        params = dict(EXPERT_PPO_HYPERPARAMS.get(env_id, {"n_envs": 8, "total_timesteps": 200_000}))
        n_envs = params.pop("n_envs")
        budget = params.pop("total_timesteps") if total_timesteps is None else total_timesteps
        params.pop("total_timesteps", None)
        env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    normalize = params.pop("normalize", False)
    callback = None
    if checkpoint_dir is not None and (Path(checkpoint_dir) / "model.zip").exists():
        model = _resume(model_class, Path(checkpoint_dir), env)  # under the checkpoint's own VecNormalize, if any
        if verbose > 0:
            print(f"Resuming the expert from {checkpoint_dir} at {model.num_timesteps} env steps")
    else:
        if normalize:
            env = VecNormalize(env, gamma=params.get("gamma", 0.99))  # rl-zoo3 discounts reward statistics with gamma
        model = model_class("MlpPolicy", env, seed=seed, verbose=verbose, **params)
    if checkpoint_dir is not None:
        callback = ExpertCheckpoint(checkpoint_dir, checkpoint_every)
    remaining = budget - model.num_timesteps
    if remaining > 0:
        model.learn(remaining, progress_bar=progress_bar, callback=callback, reset_num_timesteps=False)
        if checkpoint_dir is not None:
            save_checkpoint(model, checkpoint_dir)
    return model


def make_expert_demonstrations(
    env_id: str,
    path: Union[str, os.PathLike[str]],
    n_episodes: int = 10,
    total_timesteps: Optional[int] = None,
    seed: int = 0,
    model_path: Optional[Union[str, os.PathLike[str]]] = None,
    progress_bar: Optional[bool] = None,
    algo: str = "ppo",
    checkpoint_dir: Optional[Union[str, os.PathLike[str]]] = None,
) -> Transitions:
    """
    Train an expert (or load it from ``model_path`` when that file exists), record ``n_episodes``
    deterministic episodes and save them to ``path``; the trained expert is saved to ``model_path``
    (with its ``VecNormalize`` statistics next to it, see :func:`normalizer_path`, where it has them).

    :param env_id: Gymnasium env id
    :param path: Where to write the ``.npz`` demonstrations
    :param n_episodes: Number of expert episodes
    :param total_timesteps: Expert training budget
    :param seed: Random seed (training and collection)
    :param model_path: Optional cache of the trained expert (SB3 ``.zip``)
    :param progress_bar: Show SB3's progress bar while the expert trains (see :func:`train_expert`)
    :param algo: The expert's algorithm, ``"ppo"`` or ``"sac"`` (see :func:`train_expert`)
    :param checkpoint_dir: Checkpoint the expert's training there, and resume it from there (see :func:`train_expert`);
        removed once the expert is saved to ``model_path``
    :return: The demonstrations
    """
    if model_path is not None and Path(model_path).exists():
        model: BaseAlgorithm = _algorithm_class(algo).load(Path(model_path))
    else:
        model = train_expert(
            env_id, total_timesteps, seed, progress_bar=progress_bar, algo=algo, checkpoint_dir=checkpoint_dir
        )
        if model_path is not None:
            Path(model_path).parent.mkdir(parents=True, exist_ok=True)
            model.save(Path(model_path))
            normalizer = model.get_vec_normalize_env()
            if normalizer is not None:
                normalizer.save(str(normalizer_path(model_path)))
            else:  # statistics of an earlier expert saved there would be applied to this one
                normalizer_path(model_path).unlink(missing_ok=True)
            if checkpoint_dir is not None:  # the expert is kept: a later training must not resume a finished one
                shutil.rmtree(checkpoint_dir, ignore_errors=True)
    env = expert_env(env_id, model_path, seed + 1)
    if model_path is None and model.get_vec_normalize_env() is not None:
        env = VecNormalize(env, training=False, norm_reward=False)
        env.obs_rms = model.get_vec_normalize_env().obs_rms  # type: ignore[union-attr]
    demonstrations = collect_demonstrations(model, env, n_episodes=n_episodes, seed=seed + 1)
    save_demonstrations(demonstrations, path)
    return demonstrations


def main(argv: Optional[list] = None) -> None:
    parser = argparse.ArgumentParser(description="Train an SB3 PPO or SAC expert and save its demonstrations (.npz)")
    parser.add_argument("--env", default="CartPole-v1", help="Gymnasium env id")
    parser.add_argument("--algo", choices=sorted(EXPERT_ALGORITHMS), default="ppo", help="the expert's algorithm")
    parser.add_argument("--n-episodes", type=int, default=10, help="expert episodes to record")
    parser.add_argument("--timesteps", type=int, default=None, help="expert training budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="output .npz (default: demos/<env>.npz)")
    parser.add_argument(
        "--model-out",
        default=None,
        help="where the trained expert is kept, an SB3 .zip reused on the next call (default: the --out path with the "
        "suffix .expert.zip; the benchmark harness reads benchmarks/experts/<env>_expert.zip)",
    )
    parser.add_argument(
        "--progress-bar",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="SB3's progress bar while the expert trains (default: shown when tqdm and rich are installed)",
    )
    parser.add_argument(
        "--checkpoint",
        action="store_true",
        help="checkpoint the expert every 50k env steps next to --out (the --out path with the suffix .checkpoint, a "
        "folder), resume from there, and remove it once the expert is saved",
    )
    args = parser.parse_args(argv)
    out = Path(args.out or f"demos/{args.env}.npz")
    model_path = Path(args.model_out) if args.model_out else out.with_suffix(".expert.zip")
    demonstrations = make_expert_demonstrations(
        args.env,
        out,
        args.n_episodes,
        args.timesteps,
        args.seed,
        model_path=model_path,
        progress_bar=args.progress_bar,
        algo=args.algo,
        checkpoint_dir=out.with_suffix(".checkpoint") if args.checkpoint else None,
    )
    returns = demonstrations.episode_returns()
    print(f"Saved {len(demonstrations)} transitions of {len(returns)} episodes to {out}")
    print(f"Expert return: {np.mean(returns):.1f} +/- {np.std(returns):.1f}")
    env = expert_env(args.env, model_path, args.seed + 2)
    model = _algorithm_class(args.algo).load(model_path)
    mean, std = evaluate_policy(model, env, n_eval_episodes=10, deterministic=True)
    print(f"Expert evaluation (10 episodes): {mean:.1f} +/- {std:.1f}")


if __name__ == "__main__":
    main()
