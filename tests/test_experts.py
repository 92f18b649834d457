"""Expert training shows SB3's progress bar where tqdm and rich are installed, and trains without it where not."""

from typing import Any, List

import pytest
from stable_baselines3 import PPO
from stable_baselines3.common import callbacks as sb3_callbacks

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
    monkeypatch.setattr(experts, "PPO", RecordingPPO)
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
