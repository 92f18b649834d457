import warnings
from typing import Any, Dict, List, Tuple, Union

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

from sb3_gail_plugin import GailCallback, GailReplayBuffer, GailRewardModel, GailVecEnvWrapper
from tests.dict_cartpole import DictCartPole

NEVER = 10**9


def _dqn(env, **kwargs) -> DQN:
    params = dict(
        learning_starts=100, train_freq=8, gradient_steps=1, buffer_size=5000, policy_kwargs=dict(net_arch=[16]), seed=0
    )
    params.update(kwargs)
    return DQN("MlpPolicy", env, replay_buffer_class=GailReplayBuffer, **params)


def _assert_wrapper_recorded_buffer(model: DQN, reward_model: GailRewardModel) -> None:
    """Everything the replay buffer stores is what the wrapper recorded, step by step and env by env."""
    buffer = model.replay_buffer
    data = reward_model.agent_data
    n_steps, n_envs = buffer.size(), buffer.n_envs
    assert len(data) == n_steps * n_envs
    obs = data.observations.reshape(n_steps, n_envs, -1)
    next_obs = data.next_observations.reshape(n_steps, n_envs, -1)
    np.testing.assert_array_equal(obs, buffer.observations[:n_steps])
    if buffer.optimize_memory_usage:
        not_done = ~data.dones.reshape(n_steps, n_envs)[:-1]
        np.testing.assert_array_equal(next_obs[:-1][not_done], buffer.observations[1:n_steps][not_done])
    else:
        # (under VecNormalize SB3 stores un-normalised terminal observations: equal up to float rounding)
        np.testing.assert_allclose(next_obs, buffer.next_observations[:n_steps], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(data.actions.reshape(n_steps, n_envs), buffer.actions[:n_steps, :, 0])
    np.testing.assert_array_equal(data.dones.reshape(n_steps, n_envs), buffer.dones[:n_steps])
    if buffer.handle_timeout_termination:
        np.testing.assert_array_equal(data.timeouts.reshape(n_steps, n_envs), buffer.timeouts[:n_steps])
    # the buffer keeps the truncations whatever handle_timeout_termination says
    np.testing.assert_array_equal(data.timeouts.reshape(n_steps, n_envs), buffer.truncations[:n_steps])
    # the recorded next observation at an episode end is the real terminal one, not the reset one
    ends = data.dones.reshape(n_steps, n_envs)[:-1]
    assert ends.any()
    assert not np.allclose(next_obs[:-1][ends], obs[1:][ends])


@pytest.mark.parametrize("vec_env_cls", [DummyVecEnv, SubprocVecEnv])
def test_wrapper_records_exactly_what_the_buffer_stores(cartpole_demos, vec_env_cls):
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0, vec_env_cls=vec_env_cls)
    model = _dqn(env)
    callback = GailCallback(cartpole_demos, target_new_data_count=NEVER, agent_data_source="rollout")
    model.learn(400, callback=callback)
    assert isinstance(model.get_env(), GailVecEnvWrapper)
    _assert_wrapper_recorded_buffer(model, callback.reward_model)
    env.close()


def test_wrapper_with_optimize_memory_usage(cartpole_demos):
    model = _dqn("CartPole-v1", optimize_memory_usage=True, replay_buffer_kwargs=dict(handle_timeout_termination=False))
    callback = GailCallback(cartpole_demos, target_new_data_count=NEVER, agent_data_source="rollout")
    model.learn(300, callback=callback)
    _assert_wrapper_recorded_buffer(model, callback.reward_model)
    # relabelled training runs: a fresh discriminator that trains (the first one never does)
    relabelling = GailCallback(cartpole_demos, target_new_data_count=64)
    with pytest.warns(UserWarning, match="replaces it with a fresh one"):
        model.learn(200, callback=relabelling, reset_num_timesteps=False)
    assert relabelling.reward_model.n_updates > 0 and model._n_updates > 0


def test_vecnormalize_wrapper_goes_below_and_sees_raw_observations(cartpole_demos):
    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0))
    model = _dqn(env)
    callback = GailCallback(cartpole_demos, target_new_data_count=NEVER, agent_data_source="rollout")
    model.learn(300, callback=callback)
    assert isinstance(model.get_env(), VecNormalize)
    assert isinstance(model.get_env().venv, GailVecEnvWrapper)
    _assert_wrapper_recorded_buffer(model, callback.reward_model)
    # raw CartPole positions stay in [-2.4, 2.4]; the normalised ones DQN sees do not match them
    normalized = env.normalize_obs(callback.reward_model.agent_data.observations)
    assert not np.allclose(normalized, callback.reward_model.agent_data.observations, atol=1e-2)


def test_env_reward_untouched(cartpole_demos):
    model = _dqn("CartPole-v1")
    model.learn(1000, callback=GailCallback(cartpole_demos))
    # Monitor reports the true CartPole return (1 per step), whatever the discriminator says
    episodes = list(model.ep_info_buffer)
    assert episodes and all(info["r"] == info["l"] for info in episodes)
    np.testing.assert_array_equal(model.replay_buffer.rewards[: model.replay_buffer.size()], 1.0)


def test_manual_wrapper_must_be_reset_first(cartpole_demos):
    env = gym.make("CartPole-v1")
    rm = GailRewardModel(env.observation_space, env.action_space, cartpole_demos)
    wrapper = GailVecEnvWrapper(make_vec_env("CartPole-v1"), rm)
    with pytest.raises(RuntimeError, match="reset"):
        wrapper.step(np.array([0]))
    wrapper.reset()
    wrapper.step(np.array([0]))
    assert rm.n_collected == 1


def test_wrapper_only_counts_when_the_agent_data_comes_from_the_replay_buffer(cartpole_demos):
    model = _dqn(make_vec_env("CartPole-v1", n_envs=2, seed=0))
    callback = GailCallback(cartpole_demos, target_new_data_count=NEVER)  # agent_data_source="replay": the default
    model.learn(300, callback=callback)
    reward_model = callback.reward_model
    # the replay buffer holds the transitions: the collected set only counts them, for ready_to_train()
    assert reward_model.n_collected == model.num_timesteps >= 300 and reward_model.agent_data is None
    with pytest.raises(RuntimeError, match=f"{model.num_timesteps} counted by GailVecEnvWrapper"):
        reward_model.train()
    reward_model.clear_data()
    assert reward_model.n_collected == 0
    with pytest.raises(ValueError, match="got -1"):
        reward_model.count_collected(-1)


class RolloutEndProbe(BaseCallback):
    """Records the reward model's collected-set size at every rollout end (after GailCallback ran)."""

    def __init__(self, gail: GailCallback) -> None:
        super().__init__()
        self.gail = gail
        self.sizes: List[int] = []
        self.updates: List[int] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.sizes.append(self.gail.reward_model.n_collected)
        self.updates.append(self.gail.reward_model.n_updates)


def test_collected_set_is_cleared_at_each_rollout_end(cartpole_demos):
    gail = GailCallback(cartpole_demos, batch_size=32, update_per_collect=3)
    probe = RolloutEndProbe(gail)
    model = _dqn("CartPole-v1", train_freq=32)
    model.learn(640, callback=CallbackList([gail, probe]))
    assert len(probe.sizes) == 20
    assert probe.sizes == [0] * 20
    assert probe.updates == [3 * (i + 1) for i in range(20)]


def test_discriminator_waits_for_enough_new_data(cartpole_demos):
    gail = GailCallback(cartpole_demos, batch_size=64, update_per_collect=1)
    probe = RolloutEndProbe(gail)
    model = _dqn("CartPole-v1", train_freq=4)  # DQN's default: 4 transitions per rollout
    model.learn(400, callback=[gail, probe])
    # no data lost: trains every 16 rollouts (64 transitions), keeps collecting in between
    assert probe.sizes[:16] == [4 * (i + 1) for i in range(15)] + [0]
    assert probe.updates[15] == 1 and probe.updates[14] == 0
    assert max(probe.sizes) < 64


def test_train_freq_in_episodes(cartpole_demos):
    gail = GailCallback(cartpole_demos, update_per_collect=2)
    probe = RolloutEndProbe(gail)
    model = _dqn("CartPole-v1", train_freq=(1, "episode"))
    model.learn(500, callback=[gail, probe])
    assert probe.updates[-1] > 0
    assert all(size < gail.reward_model.target_new_data_count for size in probe.sizes)


class MemoryWriter(KVWriter):
    def __init__(self) -> None:
        self.records: List[Dict[str, Any]] = []

    def write(self, key_values: Dict[str, Any], key_excluded: Dict[str, Union[str, Tuple[str, ...]]], step: int = 0) -> None:
        self.records.append(dict(key_values))

    def close(self) -> None:
        pass


def test_stats_logged_through_sb3_logger_with_progress_bar(cartpole_demos):
    pytest.importorskip("tqdm")
    pytest.importorskip("rich")
    writer = MemoryWriter()
    model = _dqn("CartPole-v1", train_freq=64)
    model.set_logger(Logger(folder=None, output_formats=[writer]))
    model.learn(2000, callback=GailCallback(cartpole_demos, update_per_collect=2), log_interval=1, progress_bar=True)
    logged = [record for record in writer.records if "gail/disc_loss" in record]
    assert logged
    for key in ("gail/disc_loss", "gail/expert_acc", "gail/agent_acc", "gail/reward_mean", "gail/n_updates"):
        assert key in logged[-1]
    assert 0.0 <= logged[-1]["gail/expert_acc"] <= 1.0


def test_prebuilt_reward_model_and_manual_wrapper_are_reused(cartpole_demos):
    env = make_vec_env("CartPole-v1", n_envs=2, seed=1)
    rm = GailRewardModel(env.observation_space, env.action_space, cartpole_demos, update_per_collect=2)
    wrapped = GailVecEnvWrapper(env, rm)
    model = _dqn(wrapped)
    model.learn(200, callback=GailCallback(rm))
    assert model.get_env() is wrapped  # not wrapped twice
    assert model.replay_buffer.reward_model is rm and rm.n_updates > 0


def test_a_reward_model_on_another_device_than_the_model_is_warned_about(cartpole_demos):
    env = make_vec_env("CartPole-v1", n_envs=1, seed=1)
    rm = GailRewardModel(env.observation_space, env.action_space, cartpole_demos, device="cpu")
    rm.device = th.device("meta")  # stands for a GPU: CI has none
    with pytest.warns(UserWarning, match=r"reward model is on meta and the model on cpu.*device='cpu'"):
        _dqn(env).learn(0, callback=GailCallback(rm))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rm.device = th.device("cpu")
        _dqn(env).learn(0, callback=GailCallback(rm))


def test_unsupported_algorithm_and_buffer_and_spaces(cartpole_demos):
    # PPO is supported (tests/test_on_policy.py), with on-policy defaults; off-policy-only settings are refused
    ppo_gail = GailCallback(cartpole_demos, update_per_collect=1)
    PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=32).learn(64, callback=ppo_gail)
    assert ppo_gail.reward_model.n_updates == 1 and ppo_gail.reward_model.agent_data_source == "rollout"
    with pytest.raises(ValueError, match=r"PPO is on-policy.*policy_expert_fraction=0\.5"):
        mixing = GailCallback(cartpole_demos, policy_expert_fraction=0.5)
        PPO("MlpPolicy", "CartPole-v1", n_steps=64).learn(64, callback=mixing)
    with pytest.raises(TypeError, match=r"GailReplayBuffer.*got ReplayBuffer"):
        DQN("MlpPolicy", "CartPole-v1").learn(10, callback=GailCallback(cartpole_demos))
    with pytest.raises(ValueError, match=r"shape \(4,\) per transition, expected \(2,\)"):
        _dqn("MountainCar-v0").learn(10, callback=GailCallback(cartpole_demos))
    env = gym.make("CartPole-v1")
    rm = GailRewardModel(env.observation_space, env.action_space, cartpole_demos)
    with pytest.raises(ValueError, match="observation space must match"):
        _dqn("Acrobot-v1").learn(10, callback=GailCallback(rm))
    with pytest.raises(TypeError, match="only apply"):
        GailCallback(rm, batch_size=3)


def test_path_demonstrations_and_kwargs_reach_the_reward_model(cartpole_demos, tmp_path):
    from sb3_gail_plugin import save_demonstrations

    path = save_demonstrations(cartpole_demos, tmp_path / "demos.npz")
    gail = GailCallback(str(path), hidden_dims=[8], batch_size=16)
    _dqn("CartPole-v1").learn(64, callback=gail)
    assert gail.reward_model.batch_size == 16 and gail.reward_model.seed == 0
    assert gail.reward_model.discriminator.net[0].out_features == 8


def test_dict_observations_with_vecnormalize_end_to_end():
    from sb3_gail_plugin import DictGailReplayBuffer, collect_demonstrations

    class DictExpert:
        def predict(self, obs, deterministic=True):
            return (obs["pole"][:, 0] + 0.5 * obs["pole"][:, 1] > 0).astype(np.int64), None

    def make_env():
        return DictCartPole(gym.make("CartPole-v1"))

    demos = collect_demonstrations(DictExpert(), make_vec_env(make_env, n_envs=2, seed=0), n_episodes=2)
    assert set(demos.observations) == {"cart", "pole"} and np.all(demos.episode_returns() == 500)
    env = VecNormalize(make_vec_env(make_env, n_envs=2, seed=1))
    model = DQN(
        "MultiInputPolicy",
        env,
        replay_buffer_class=DictGailReplayBuffer,
        learning_starts=100,
        train_freq=64,
        gradient_steps=4,
        buffer_size=5000,
        policy_kwargs=dict(net_arch=[16]),
        seed=0,
    )
    gail = GailCallback(demos, update_per_collect=5, target_new_data_count=NEVER, agent_data_source="rollout")
    model.learn(512, callback=gail)
    data = gail.reward_model.agent_data
    n = model.replay_buffer.size()
    np.testing.assert_array_equal(data.observations["pole"].reshape(n, 2, 2), model.replay_buffer.observations["pole"][:n])
    gail.reward_model.train()
    np.random.seed(0)
    raw = model.replay_buffer.sample(32)  # env=None: raw observations
    np.testing.assert_allclose(raw.rewards, gail.reward_model.estimate(raw.observations, raw.actions, dones=raw.dones))
    # the defaults end to end: D trained on replay samples of the Dict buffer, expert rows in policy batches
    defaults = GailCallback(demos, update_per_collect=3)
    with pytest.warns(UserWarning, match="replaces it with a fresh one"):
        model.learn(256, callback=defaults, reset_num_timesteps=False)
    assert defaults.reward_model is not gail.reward_model
    assert defaults.last_stats["n_agent_transitions"] == defaults.reward_model.batch_size * 3
    assert defaults.reward_model.n_collected == 0


@pytest.mark.parametrize("agent_data_source", ["replay", "rollout"])
def test_wrapper_stops_recording_after_learn_and_resumes_on_the_next(cartpole_demos, agent_data_source):
    gail = GailCallback(cartpole_demos, agent_data_source=agent_data_source, update_per_collect=2, target_new_data_count=NEVER)
    model = _dqn("CartPole-v1")
    model.learn(200, callback=gail)
    collected = gail.reward_model.n_collected
    assert collected == 200
    env = model.get_env()
    obs = env.reset()
    for _ in range(300):  # SB3's usual evaluation loop on the training env
        obs, _, _, _ = env.step(model.predict(obs, deterministic=True)[0])
    assert gail.reward_model.n_collected == collected
    model.learn(100, callback=gail, reset_num_timesteps=False)
    assert gail.reward_model.n_collected == model.num_timesteps > collected  # the new learn() steps only


def test_state_only_demonstrations_train_dqn_without_expert_mixing(cartpole_demos):
    demos = cartpole_demos.without_actions()
    gail = GailCallback(demos, inputs="ss", update_per_collect=2)
    model = _dqn("CartPole-v1", learning_starts=50, train_freq=16, gradient_steps=2)
    model.learn(300, callback=gail)  # gradient steps ran: the buffer was sampled and relabelled
    assert gail.reward_model.policy_expert_fraction == 0.0 and gail.reward_model.n_updates > 0
    assert model._n_updates > 0
    with pytest.raises(ValueError, match=r"policy_expert_fraction=0\.5 .*needs expert actions"):
        _dqn("CartPole-v1").learn(10, callback=GailCallback(demos, inputs="ss", policy_expert_fraction=0.5))


def test_gamma_is_the_models_and_checked(cartpole_demos):
    gail = GailCallback(cartpole_demos, update_per_collect=1)
    _dqn("CartPole-v1", gamma=0.9).learn(200, callback=gail)
    assert gail.reward_model.gamma == 0.9
    with pytest.warns(UserWarning, match="gamma=0.9999 discounts over about 10000 steps"):
        _dqn("CartPole-v1", gamma=0.9999).learn(10, callback=GailCallback(cartpole_demos))
    with pytest.raises(ValueError, match=r"gamma in \[0, 1\), got gamma=1.0"):
        _dqn("CartPole-v1", gamma=1.0).learn(10, callback=GailCallback(cartpole_demos))
    _dqn("CartPole-v1", gamma=1.0).learn(200, callback=GailCallback(cartpole_demos, absorbing=False))
    env = gym.make("CartPole-v1")
    mismatched = GailRewardModel(env.observation_space, env.action_space, cartpole_demos, gamma=0.95)
    with pytest.raises(ValueError, match=r"expected 0\.99, got 0\.95"):
        _dqn("CartPole-v1").learn(10, callback=GailCallback(mismatched))
    # without the callback, nothing sets gamma: sampling says what to do instead of folding with a made-up one
    manual = GailRewardModel(env.observation_space, env.action_space, cartpole_demos)
    model = _dqn("CartPole-v1", learning_starts=1000)
    model.learn(200)  # fills the buffer; no gradient step, so no reward model needed yet
    model.replay_buffer.set_reward_model(manual)
    with pytest.raises(RuntimeError, match=r"gamma=model\.gamma"):
        model.replay_buffer.sample(64)
    manual.gamma = model.gamma
    assert model.replay_buffer.sample(64).rewards.shape == (64, 1)


def test_verbosity_levels(cartpole_demos, capsys):
    for verbose in (0, 1, 2):
        _dqn(VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0))).learn(
            256, callback=GailCallback(cartpole_demos, update_per_collect=1, verbose=verbose)
        )
        out = capsys.readouterr().out
        if verbose == 0:
            assert out == ""
        else:
            assert "built a reward model from 2500 expert transitions" in out
            assert "below VecNormalize" in out
        assert ("GAIL at" in out) == (verbose == 2)


def test_logging_docs_list_every_logged_key(cartpole_demos):
    from pathlib import Path

    writer = MemoryWriter()
    model = _dqn("CartPole-v1", train_freq=64)
    model.set_logger(Logger(folder=None, output_formats=[writer]))
    model.learn(1000, callback=GailCallback(cartpole_demos, update_per_collect=2), log_interval=1)
    logged = {key for record in writer.records for key in record if key.startswith("gail/")}
    assert {"gail/absorbing_reward", "gail/grad_penalty", "gail/disc_loss"} <= logged
    docs = (Path(__file__).parent.parent / "docs" / "logging.md").read_text()
    assert [key for key in sorted(logged) if f"`{key}`" not in docs] == []


class _FailsAtRolloutEnd(BaseCallback):
    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.n_calls >= 100:
            raise KeyboardInterrupt  # as a Ctrl-C during training


def test_interrupted_learn_stops_recording(cartpole_demos):
    gail = GailCallback(cartpole_demos, target_new_data_count=NEVER)
    model = _dqn("CartPole-v1")
    with pytest.raises(KeyboardInterrupt):
        model.learn(1000, callback=[gail, _FailsAtRolloutEnd()])
    collected = gail.reward_model.n_collected
    assert 100 <= collected < 1000
    env = model.get_env()
    obs = env.reset()
    for _ in range(50):
        obs, _, _, _ = env.step(model.predict(obs)[0])
    assert gail.reward_model.n_collected == collected


def test_continuing_training_reuses_only_this_models_discriminator_with_the_same_arguments(cartpole_demos):
    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0))
    first = GailCallback(cartpole_demos, update_per_collect=2)
    model = _dqn(env)
    model.learn(300, callback=first)
    # chunked training with the same arguments: the trained discriminator carries on
    again = GailCallback(cartpole_demos, update_per_collect=2, hidden_dims=64)
    with pytest.warns(UserWarning, match="keeps training it"):
        model.learn(300, callback=again, reset_num_timesteps=False)
    assert again.reward_model is first.reward_model
    # other arguments: a fresh discriminator, said out loud
    other = GailCallback(cartpole_demos, update_per_collect=3)
    with pytest.warns(UserWarning, match=r"replaces it with a fresh one, since \['update_per_collect'\] differ"):
        model.learn(300, callback=other, reset_num_timesteps=False)
    assert other.reward_model is not first.reward_model
    # another model on the same (already wrapped) VecNormalize gets its own discriminator and gamma
    second = GailCallback(cartpole_demos, update_per_collect=2)
    _dqn(env, gamma=0.9).learn(300, callback=second)
    assert second.reward_model is not other.reward_model and second.reward_model.gamma == 0.9


@pytest.mark.parametrize("algorithm", ["dqn", "ppo"])
def test_eval_callback_under_vecnormalize_with_a_matching_eval_env(cartpole_demos, algorithm):
    """SB3 syncs VecNormalize statistics along both wrapper chains: the eval env gets the same layers."""
    from stable_baselines3.common.callbacks import EvalCallback

    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0))
    eval_env = VecNormalize(GailVecEnvWrapper(make_vec_env("CartPole-v1", seed=1)), training=False, norm_reward=False)
    evaluation = EvalCallback(eval_env, eval_freq=64, n_eval_episodes=2, verbose=0)
    if algorithm == "dqn":
        model = _dqn(env)
    else:
        model = PPO("MlpPolicy", env, n_steps=64, batch_size=64, seed=0)
    model.learn(512, callback=[GailCallback(cartpole_demos, update_per_collect=2), evaluation])
    assert evaluation.best_mean_reward > 0  # evaluations ran (the true return of CartPole is positive)
    np.testing.assert_allclose(eval_env.obs_rms.mean, env.obs_rms.mean)  # synced through the matching chains
