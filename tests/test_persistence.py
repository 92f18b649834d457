"""Exact save/load of the reward model, files that cannot execute code, checkpoints and resumed runs."""

import copy
import os
from pathlib import Path
from typing import Any, Dict

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from packaging.version import Version
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import unwrap_vec_wrapper

from sb3_gail_plugin import (
    GailCallback,
    GailCheckpointCallback,
    GailReplayBuffer,
    GailRewardModel,
    GailVecEnvWrapper,
    Transitions,
)
from sb3_gail_plugin.persistence import load_state, save_state, space_from_dict, space_to_dict

SMALL_DQN = dict(learning_starts=50, train_freq=16, gradient_steps=1, buffer_size=2000, policy_kwargs=dict(net_arch=[16]))


def _cartpole_spaces():
    env = gym.make("CartPole-v1")
    return env.observation_space, env.action_space


def _agent_batch(demos: Transitions, start: int, n: int = 100) -> Transitions:
    batch = demos[np.arange(start, start + n)]
    batch.actions = 1 - batch.actions
    return batch


def _assert_same_state(a: GailRewardModel, b: GailRewardModel) -> None:
    for (name, x), (_, y) in zip(a.discriminator.state_dict().items(), b.discriminator.state_dict().items()):
        th.testing.assert_close(x, y, rtol=0, atol=0, msg=name)
    th.testing.assert_close(a.generator.get_state(), b.generator.get_state(), rtol=0, atol=0)
    assert (a.n_updates, a.n_collected, a.gamma) == (b.n_updates, b.n_collected, b.gamma)
    assert (a.reward_stats.mean, a.reward_stats.var, a.reward_stats.count) == (
        b.reward_stats.mean,
        b.reward_stats.var,
        b.reward_stats.count,
    )


def test_loaded_model_trains_exactly_as_the_original(cartpole_demos, tmp_path):
    """Weights, optimiser, sampling generator, pending agent data, gamma and reward statistics all come along."""
    model = GailRewardModel(
        *_cartpole_spaces(), cartpole_demos, update_per_collect=7, gamma=0.97, normalize_reward=True, spectral_norm=True
    )
    model.collect_data(_agent_batch(cartpole_demos, 0))
    model.train()
    model.clear_data()
    model.collect_data(_agent_batch(cartpole_demos, 100, n=40))  # collected, not yet trained on
    model.save(tmp_path / "gail.pt")
    loaded = GailRewardModel.load(tmp_path / "gail.pt", device="cpu")
    _assert_same_state(model, loaded)
    np.testing.assert_array_equal(loaded.agent_data.observations, model.agent_data.observations)
    for rm in (model, loaded):
        rm.collect_data(_agent_batch(cartpole_demos, 200, n=60))
        rm.train()  # samples from the collected set with the generator, updates the optimiser and the statistics
    _assert_same_state(model, loaded)
    obs, actions = cartpole_demos.observations[:64], cartpole_demos.actions[:64]
    dones = np.arange(64) % 5 == 0
    th.testing.assert_close(loaded.estimate(obs, actions, dones=dones), model.estimate(obs, actions, dones=dones))


def test_counted_transitions_are_saved_and_files_without_them_still_load(cartpole_demos, tmp_path):
    model = GailRewardModel(*_cartpole_spaces(), cartpole_demos, target_new_data_count=100)
    model.count_collected(60)  # what GailVecEnvWrapper does with agent_data_source="replay"
    model.collect_data(_agent_batch(cartpole_demos, 0, n=30))
    model.save(tmp_path / "gail.pt")
    loaded = GailRewardModel.load(tmp_path / "gail.pt")
    assert loaded.n_collected == 90 and len(loaded.agent_data) == 30 and not loaded.ready_to_train()
    loaded.count_collected(10)
    assert loaded.ready_to_train()
    # a version 3 file (before counting) has no count: its stored transitions are all there is
    state = load_state(tmp_path / "gail.pt")
    del state["n_counted"]
    save_state({**state, "version": 3}, tmp_path / "v3.pt")
    assert GailRewardModel.load(tmp_path / "v3.pt").n_collected == 30


def test_optimizer_uses_multi_tensor_adam_also_after_loading_older_files(cartpole_demos, tmp_path):
    """Adam runs its multi-tensor path (the same values as PyTorch's per-parameter loop, at less overhead), also
    when loaded from a file whose optimiser state holds PyTorch's default."""
    model = GailRewardModel(*_cartpole_spaces(), cartpole_demos, update_per_collect=5, seed=3)
    reference = copy.deepcopy(model)
    reference.optimizer = th.optim.Adam(reference.discriminator.parameters(), lr=model.learning_rate, foreach=False)
    for rm in (model, reference):
        rm.train(_agent_batch(cartpole_demos, 0))
    if Version(th.__version__).release >= (2, 1):  # both paths update the moments with lerp since torch 2.1
        _assert_same_state(model, reference)
    assert all(group["foreach"] is True for group in model.optimizer.param_groups)
    model.save(tmp_path / "gail.pt")
    state = load_state(tmp_path / "gail.pt")
    for group in state["optimizer"]["param_groups"]:
        group["foreach"] = None  # as saved by earlier versions
    save_state(state, tmp_path / "old.pt")
    loaded = GailRewardModel.load(tmp_path / "old.pt")
    assert all(group["foreach"] is True for group in loaded.optimizer.param_groups)


def test_numpy_typed_arguments_save_and_load(cartpole_demos, tmp_path):
    """Arguments from a config sweep are often NumPy scalars: the file must still hold plain values only."""
    kwargs = dict(reward_clip=np.float64(5), hidden_dims=(np.int64(8), np.int64(8)), replay_window=np.int64(100))
    model = GailRewardModel(*_cartpole_spaces(), cartpole_demos, seed=np.int64(3), batch_size=np.int64(16), **kwargs)
    model.save(tmp_path / "gail.pt")
    loaded = GailRewardModel.load(tmp_path / "gail.pt")
    assert (loaded.reward_clip, loaded.hidden_dims, loaded.replay_window, loaded.seed) == (5.0, [8, 8], 100, 3)
    _assert_same_state(model, loaded)


class _RunsCommand:
    """A pickle payload that would create a file when unpickled (as a malicious download could)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return os.system, (f"touch {self.marker}",)


def test_crafted_reward_model_file_does_not_execute_code(cartpole_demos, tmp_path):
    marker = tmp_path / "pwned"
    model = GailRewardModel(*_cartpole_spaces(), cartpole_demos)
    model.save(tmp_path / "gail.pt")
    state = th.load(tmp_path / "gail.pt", weights_only=True)
    state["kwargs"]["seed"] = _RunsCommand(marker)
    th.save(state, tmp_path / "crafted.pt")
    with pytest.raises(ValueError, match="can be loaded safely"):
        GailRewardModel.load(tmp_path / "crafted.pt")
    assert not marker.exists()
    with pytest.raises(ValueError, match="expected format"):
        th.save({"weights": th.zeros(2)}, tmp_path / "other.pt")
        GailRewardModel.load(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        GailRewardModel.load(tmp_path / "missing.pt")


@pytest.mark.parametrize(
    "space",
    [
        spaces.Box(-1.0, np.array([1.0, 2.0], dtype=np.float32), dtype=np.float32),
        spaces.Box(0, 255, (3, 8, 8), dtype=np.uint8),
        spaces.Discrete(5, start=-2),
        spaces.MultiDiscrete([3, 4]),
        spaces.MultiBinary(6),
        spaces.MultiBinary([2, 3]),
        spaces.Dict({"pos": spaces.Box(-1, 1, (2,), np.float32), "goal": spaces.Discrete(3)}),
    ],
)
def test_spaces_round_trip_as_plain_data(space):
    assert space_from_dict(space_to_dict(space)) == space


def test_same_seed_same_model_whatever_the_global_rng(cartpole_demos):
    th.manual_seed(1)
    state = th.random.get_rng_state()
    first = GailRewardModel(*_cartpole_spaces(), cartpole_demos, seed=5)
    th.testing.assert_close(th.random.get_rng_state(), state)  # a seeded model leaves the global RNG alone
    th.rand(3)  # another global RNG state
    second = GailRewardModel(*_cartpole_spaces(), cartpole_demos, seed=5)
    _assert_same_state(first, second)
    other = GailRewardModel(*_cartpole_spaces(), cartpole_demos, seed=6)
    assert not th.equal(other.discriminator.net[0].weight, first.discriminator.net[0].weight)
    for rm in (first, second):
        rm.collect_data(_agent_batch(cartpole_demos, 0))
        rm.train()
    _assert_same_state(first, second)
    # without a seed, the global torch seed decides (as for SB3 models)
    th.manual_seed(3)
    a = GailRewardModel(*_cartpole_spaces(), cartpole_demos)
    th.manual_seed(3)
    b = GailRewardModel(*_cartpole_spaces(), cartpole_demos)
    _assert_same_state(a, b)


def _reward_model_of(model: DQN) -> GailRewardModel:
    wrapper = unwrap_vec_wrapper(model.get_env(), GailVecEnvWrapper)
    assert wrapper is not None
    return wrapper.reward_model


class _Snapshot(BaseCallback):
    """Deep-copies the reward model at every ``every``-th step (right after a checkpoint was written)."""

    def __init__(self, gail: GailCallback, every: int) -> None:
        super().__init__()
        self.gail, self.every = gail, every
        self.copies: Dict[int, GailRewardModel] = {}

    def _on_step(self) -> bool:
        if self.n_calls % self.every == 0:
            self.copies[self.num_timesteps] = copy.deepcopy(self.gail.reward_model)
        return True


def test_checkpoint_and_resume_lose_nothing(cartpole_demos, tmp_path):
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = DQN("MlpPolicy", env, replay_buffer_class=GailReplayBuffer, seed=0, **SMALL_DQN)
    gail = GailCallback(cartpole_demos, update_per_collect=3, target_new_data_count=100)
    checkpoints = GailCheckpointCallback(save_freq=150, save_path=str(tmp_path / "run"), name_prefix="run")
    snapshot = _Snapshot(gail, 150)
    model.learn(600, callback=[gail, checkpoints, snapshot])
    files = sorted(path.name for path in (tmp_path / "run").iterdir())
    kinds = (("", "zip"), ("replay_buffer_", "pkl"), ("gail_", "pt"))
    assert files == sorted(f"run_{kind}{steps}_steps.{ext}" for steps in (300, 600) for kind, ext in kinds)
    # the checkpoint holds the reward model as it was at that step (trained, with transitions pending), and
    # trains on from there exactly as the uninterrupted one would have
    saved = GailRewardModel.load(tmp_path / "run" / "run_gail_600_steps.pt")
    live = snapshot.copies[600]
    _assert_same_state(live, saved)
    assert saved.n_updates > 0 and saved.n_collected > 0
    for rm in (live, saved):
        rm.collect_data(_agent_batch(cartpole_demos, 0))
        rm.train()
    _assert_same_state(live, saved)
    saved = GailRewardModel.load(tmp_path / "run" / "run_gail_600_steps.pt")
    # resume in fresh objects, as after a restart
    resumed = DQN.load(tmp_path / "run" / "run_600_steps.zip", env=make_vec_env("CartPole-v1", n_envs=2, seed=1))
    resumed.load_replay_buffer(tmp_path / "run" / "run_replay_buffer_600_steps.pkl")
    # SB3 calls on_step before it stores the step: the checkpointed buffer holds every step but the last
    stored = resumed.replay_buffer.pos
    assert stored == 600 // 2 - 1
    np.testing.assert_array_equal(resumed.replay_buffer.observations[:stored], model.replay_buffer.observations[:stored])
    np.testing.assert_array_equal(resumed.replay_buffer.truncations[:stored], model.replay_buffer.truncations[:stored])
    callback = GailCallback(saved)
    updates_before = saved.n_updates
    resumed.learn(300, callback=callback, reset_num_timesteps=False)
    assert resumed.num_timesteps >= 900
    assert _reward_model_of(resumed) is saved and resumed.replay_buffer.reward_model is saved
    assert saved.n_updates > updates_before and saved.gamma == resumed.gamma


def test_second_learn_keeps_the_trained_discriminator(cartpole_demos):
    model = DQN("MlpPolicy", "CartPole-v1", replay_buffer_class=GailReplayBuffer, seed=0, **SMALL_DQN)
    first = GailCallback(cartpole_demos, update_per_collect=2)
    model.learn(300, callback=first)
    trained = first.reward_model
    updates = trained.n_updates
    second = GailCallback(cartpole_demos)
    with pytest.warns(UserWarning, match="keeps training it"):
        model.learn(300, callback=second, reset_num_timesteps=False)
    assert second.reward_model is trained and trained.n_updates > updates
    assert model.replay_buffer.reward_model is trained and _reward_model_of(model) is trained
