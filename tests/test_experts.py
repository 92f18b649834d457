"""
Expert training shows SB3's progress bar where tqdm and rich are installed, and trains without it where not; a long
training checkpoints and resumes.
"""

from typing import Any, List

import pytest
from stable_baselines3 import PPO, SAC
from stable_baselines3.common import callbacks as sb3_callbacks
from stable_baselines3.common.vec_env import VecNormalize

from sb3_gail_plugin import experts


class RecordingPPO(PPO):
    """PPO that records the ``progress_bar`` argument of each ``learn()``."""

    progress_bars: List[bool] = []

    def learn(self, *args: Any, progress_bar: bool = False, **kwargs: Any) -> Any:  # type: ignore[override]
        RecordingPPO.progress_bars.append(progress_bar)
        return super().learn(*args, progress_bar=progress_bar, **kwargs)


@pytest.fixture
def recording_ppo(monkeypatch):
    RecordingPPO.progress_bars = []
    monkeypatch.setitem(experts.EXPERT_ALGORITHMS, "ppo", RecordingPPO)
    return RecordingPPO


def test_expert_training_shows_the_progress_bar_when_tqdm_and_rich_are_installed(recording_ppo):
    pytest.importorskip("tqdm")
    pytest.importorskip("rich")
    assert experts.progress_bar_available()
    model = experts.train_expert("CartPole-v1", total_timesteps=256, seed=0)
    assert recording_ppo.progress_bars == [True]
    assert model.num_timesteps >= 256


def test_expert_training_without_rich_trains_without_progress_bar(monkeypatch, recording_ppo):
    # as if rich were not installed: our check finds no rich, and SB3's progress bar refuses to start
    monkeypatch.setattr(experts, "find_spec", lambda name: None if name == "rich" else object())
    monkeypatch.setattr(sb3_callbacks, "tqdm", None)
    assert not experts.progress_bar_available()
    model = experts.train_expert("CartPole-v1", total_timesteps=256, seed=0)
    assert recording_ppo.progress_bars == [False]
    assert model.num_timesteps >= 256
    # asked for explicitly, the missing packages are reported by SB3 rather than ignored
    with pytest.raises(ImportError, match="tqdm and rich"):
        experts.train_expert("CartPole-v1", total_timesteps=256, seed=0, progress_bar=True)


def test_expert_training_checkpoints_and_resumes(tmp_path, monkeypatch):
    checkpoint = tmp_path / "checkpoint"
    saved_at: List[int] = []
    save = experts.save_checkpoint

    def recording_save(model, directory):
        saved_at.append(model.num_timesteps)
        save(model, directory)

    monkeypatch.setattr(experts, "save_checkpoint", recording_save)
    model = experts.train_expert(
        "Pendulum-v1", total_timesteps=300, algo="sac", progress_bar=False, checkpoint_dir=checkpoint, checkpoint_every=100
    )
    assert saved_at == [100, 200, 300, 300]  # every 100 env steps, and at the end
    assert sorted(path.name for path in checkpoint.iterdir()) == ["model.zip", "replay_buffer.pkl"]  # no temporary file
    saved = SAC.load(checkpoint / "model.zip")
    assert saved.num_timesteps == model.num_timesteps == 300
    # a longer budget goes on from the checkpoint, with its replay buffer
    resumed = experts.train_expert(
        "Pendulum-v1", total_timesteps=450, algo="sac", progress_bar=False, checkpoint_dir=checkpoint
    )
    assert resumed.num_timesteps == 450 and resumed.replay_buffer.size() == 450
    # a budget already reached trains no further
    assert experts.train_expert("Pendulum-v1", total_timesteps=450, algo="sac", checkpoint_dir=checkpoint).num_timesteps == 450
    with pytest.raises(ValueError, match="every >= 1 env steps between checkpoints, got 0"):
        experts.ExpertCheckpoint(checkpoint, every=0)


def test_a_resumed_expert_keeps_one_vec_normalize(tmp_path, monkeypatch):
    settings = dict(n_envs=1, total_timesteps=128, normalize=True, n_steps=64, batch_size=32, n_epochs=1)
    monkeypatch.setitem(experts.EXPERT_PPO_HYPERPARAMS, "CartPole-v1", settings)
    checkpoint = tmp_path / "checkpoint"
    first = experts.train_expert("CartPole-v1", progress_bar=False, checkpoint_dir=checkpoint)
    assert (checkpoint / "vecnormalize.pkl").exists()
    resumed = experts.train_expert("CartPole-v1", total_timesteps=256, progress_bar=False, checkpoint_dir=checkpoint)
    env = resumed.get_env()
    assert isinstance(env, VecNormalize) and not isinstance(env.venv, VecNormalize)
    assert resumed.num_timesteps == 256
    # the statistics go on from the checkpoint's
    assert env.obs_rms.count > first.get_vec_normalize_env().obs_rms.count


def test_the_checkpoint_is_removed_once_the_expert_is_saved(tmp_path, monkeypatch):
    settings = dict(n_envs=1, total_timesteps=64, n_steps=32, batch_size=32, n_epochs=1)
    monkeypatch.setitem(experts.EXPERT_PPO_HYPERPARAMS, "CartPole-v1", settings)
    checkpoint = tmp_path / "checkpoint"
    experts.make_expert_demonstrations(
        "CartPole-v1", tmp_path / "demos.npz", n_episodes=1, model_path=tmp_path / "expert.zip", checkpoint_dir=checkpoint
    )
    assert (tmp_path / "expert.zip").exists() and not checkpoint.exists()


def test_the_command_line_keeps_the_expert_where_model_out_says(tmp_path, monkeypatch):
    settings = dict(n_envs=1, total_timesteps=64, n_steps=32, batch_size=32, n_epochs=1)
    monkeypatch.setitem(experts.EXPERT_PPO_HYPERPARAMS, "CartPole-v1", settings)
    model_out = tmp_path / "CartPole-v1_expert.zip"
    argv = ["--env", "CartPole-v1", "--n-episodes", "1", "--out", str(tmp_path / "demos.npz")]
    experts.main([*argv, "--model-out", str(model_out), "--no-progress-bar"])
    assert model_out.exists() and not (tmp_path / "demos.expert.zip").exists()
    assert (tmp_path / "demos.npz").exists()
    # the default keeps it next to --out
    experts.main([*argv[:-1], str(tmp_path / "other.npz"), "--no-progress-bar"])
    assert (tmp_path / "other.expert.zip").exists()
