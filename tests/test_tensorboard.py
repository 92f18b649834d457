"""TensorBoard: the gail/* scalars and the reward histograms, read back from the event file."""

import json
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.logger import configure

from sb3_gail_plugin import GailCallback, GailReplayBuffer

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

HISTOGRAM_TAGS = {"gail/agent_rewards", "gail/expert_rewards"}
SCALAR_TAGS = {"gail/disc_loss", "gail/reward_mean", "gail/expert_reward_mean", "gail/n_agent_transitions", "gail/n_updates"}


def _read_events(log_dir: Path):
    event_files = list(log_dir.rglob("events.out.tfevents.*"))
    assert len(event_files) == 1, event_files
    accumulator = event_accumulator.EventAccumulator(
        str(event_files[0].parent), size_guidance={event_accumulator.HISTOGRAMS: 0, event_accumulator.SCALARS: 0}
    )
    accumulator.Reload()
    return accumulator


def _check_histograms_match_scalars(events, batch_size: int) -> None:
    """Each histogram holds the rewards that the round's scalars were computed from."""
    tags = events.Tags()
    assert HISTOGRAM_TAGS <= set(tags["histograms"])
    assert SCALAR_TAGS <= set(tags["scalars"])
    scalars = {tag: {event.step: event.value for event in events.Scalars(tag)} for tag in SCALAR_TAGS}
    agent = events.Histograms("gail/agent_rewards")
    expert = events.Histograms("gail/expert_rewards")
    assert len(agent) == len(expert) >= 2  # one per logged round
    for agent_event, expert_event in zip(agent, expert):
        step, agent_values, expert_values = agent_event.step, agent_event.histogram_value, expert_event.histogram_value
        assert expert_event.step == step
        n_agent = scalars["gail/n_agent_transitions"][step]
        assert agent_values.num == n_agent
        assert expert_values.num == min(n_agent, batch_size)
        np.testing.assert_allclose(
            agent_values.sum / agent_values.num, scalars["gail/reward_mean"][step], rtol=1e-4, atol=1e-5
        )
        np.testing.assert_allclose(
            expert_values.sum / expert_values.num, scalars["gail/expert_reward_mean"][step], rtol=1e-4, atol=1e-5
        )
        assert agent_values.min < agent_values.max  # a spread of rewards, not one value


def test_dqn_tensorboard_log_has_gail_scalars_and_reward_histograms(cartpole_demos, tmp_path):
    model = DQN(
        "MlpPolicy",
        "CartPole-v1",
        replay_buffer_class=GailReplayBuffer,
        learning_starts=64,
        train_freq=32,
        policy_kwargs=dict(net_arch=[32]),
        tensorboard_log=str(tmp_path),
        verbose=1,  # stdout too: it must skip the histograms
        seed=0,
    )
    gail = GailCallback(cartpole_demos, update_per_collect=5)
    model.learn(400, callback=gail, log_interval=1)
    _check_histograms_match_scalars(_read_events(tmp_path), batch_size=gail.reward_model.batch_size)


def test_ppo_tensorboard_log_has_gail_scalars_and_reward_histograms(cartpole_demos, tmp_path):
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=32, n_epochs=1, tensorboard_log=str(tmp_path), seed=0)
    model.learn(256, callback=GailCallback(cartpole_demos, batch_size=32, update_per_collect=5))
    _check_histograms_match_scalars(_read_events(tmp_path), batch_size=32)


def test_reward_histograms_skip_the_text_formats(cartpole_demos, tmp_path):
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32, n_epochs=1, seed=0)
    model.set_logger(configure(str(tmp_path), ["stdout", "log", "json", "csv", "tensorboard"]))
    model.learn(64, callback=GailCallback(cartpole_demos, batch_size=32, update_per_collect=2))
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    records = [json.loads(line) for line in (tmp_path / "progress.json").read_text().splitlines()]
    for keys in (set(header), set(records[-1])):
        assert "gail/reward_mean" in keys
        assert not keys & HISTOGRAM_TAGS
    log = (tmp_path / "log.txt").read_text()  # the stdout table: "gail/" heads the group, then "reward_mean"
    assert "expert_reward_mean" in log
    assert "agent_rewards" not in log and "expert_rewards" not in log
    assert HISTOGRAM_TAGS <= set(_read_events(tmp_path).Tags()["histograms"])
