"""GAIL with on-policy algorithms: the rollout buffer relabelled at rollout end, before train()."""

from copy import deepcopy
from dataclasses import replace
from typing import Any, Dict, List

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, EveryNTimesteps
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

from sb3_gail_plugin import GailCallback, GailReplayBuffer, GailRewardModel, GailVecEnvWrapper, collect_demonstrations
from sb3_gail_plugin.hyperparams import ZOO_PPO_CARTPOLE, ZOO_PPO_CARTPOLE_N_ENVS
from sb3_gail_plugin.on_policy import DISCRIMINATOR_PASSES, ON_POLICY_DEFAULTS
from tests.dict_cartpole import DictCartPole

N_STEPS, N_ENVS, GAMMA, GAE_LAMBDA = 16, 3, 0.9, 0.8


def _stack(values: List[np.ndarray]) -> np.ndarray:
    return np.stack([np.asarray(value) for value in values])


def _gae(rewards: np.ndarray, episode_starts: np.ndarray, last_dones: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """GAE advantages of ``rewards`` with all values zero (written out here, independently of SB3)."""
    advantages = np.zeros_like(rewards, dtype=np.float64)
    running = np.zeros(rewards.shape[1])
    for t in reversed(range(len(rewards))):
        non_terminal = 1.0 - (last_dones if t == len(rewards) - 1 else episode_starts[t + 1])
        running = rewards[t] + gamma * lam * non_terminal * running
        advantages[t] = running
    return advantages


class StepProbe(BaseCallback):
    """
    Records each step of a rollout independently of GailCallback: the raw observation it started from,
    the action the env received, the env reward, episode ends, and SB3's time-limit bootstrap
    ``gamma * V(terminal_obs)`` computed with the policy. At rollout end (placed before GailCallback) it
    keeps SB3's own rewards and advantages, and the collected set GailCallback is about to train on.
    """

    def __init__(self) -> None:
        super().__init__()
        self.steps: List[Dict[str, np.ndarray]] = []
        self.sb3: Dict[str, np.ndarray] = {}
        self.collected: Any = None

    def _raw_obs(self, obs: np.ndarray) -> np.ndarray:
        normalizer = self.model.get_vec_normalize_env()
        return np.array(normalizer.get_original_obs() if normalizer is not None else obs)

    def _on_rollout_start(self) -> None:
        self.steps = []
        self._start_obs = self._raw_obs(self.model._last_obs)

    def _on_step(self) -> bool:
        dones, infos = np.array(self.locals["dones"]), self.locals["infos"]
        truncated = np.array([done and info.get("TimeLimit.truncated", False) for done, info in zip(dones, infos)])
        bootstrap = np.zeros(len(dones))
        if not hasattr(self.model, "_last_lstm_states"):  # RecurrentPPO's values also need the LSTM state
            for i in np.flatnonzero(truncated):
                terminal_obs = self.model.policy.obs_to_tensor(infos[i]["terminal_observation"])[0]
                with th.no_grad():
                    bootstrap[i] = self.model.gamma * self.model.policy.predict_values(terminal_obs).item()
        self.steps.append(
            dict(
                obs=self._start_obs,
                actions=np.array(self.locals.get("clipped_actions", self.locals["actions"])),
                env_rewards=np.array(self.locals["rewards"], dtype=np.float64),
                terminated=dones & ~truncated,
                truncated=truncated,
                bootstrap=bootstrap,
            )
        )
        self._start_obs = self._raw_obs(self.locals["new_obs"])
        return True

    def _on_rollout_end(self) -> None:
        buffer = self.model.rollout_buffer
        self.sb3 = dict(rewards=buffer.rewards.copy(), advantages=buffer.advantages.copy(), returns=buffer.returns.copy())


def _watch_train(model: OnPolicyAlgorithm, probe: StepProbe, gail: GailCallback) -> List[Dict[str, Any]]:
    """Snapshot, at each call of ``model.train()``, the rollout buffer and what the rewards should be."""
    snapshots: List[Dict[str, Any]] = []
    train = model.train

    def watched_train() -> None:
        buffer = model.rollout_buffer
        steps = {key: _stack([step[key] for step in probe.steps]) for key in probe.steps[0]}
        n = N_STEPS * N_ENVS
        obs = steps["obs"].reshape(n, *steps["obs"].shape[2:])
        actions = steps["actions"].reshape(n, *steps["actions"].shape[2:])
        rm = gail.reward_model
        snapshots.append(
            dict(
                steps=steps,
                sb3=dict(probe.sb3),
                collected=probe.collected,
                buffer={key: np.array(getattr(buffer, key)) for key in ("rewards", "advantages", "returns", "values")},
                episode_starts=buffer.episode_starts.copy(),
                last_dones=np.array(model._last_episode_starts, dtype=np.float64),
                buffer_obs=buffer.observations.copy(),
                buffer_actions=buffer.actions.copy(),
                d_rewards=rm.estimate(obs, actions, dones=steps["terminated"].reshape(-1)).numpy().reshape(N_STEPS, N_ENVS),
                d_rewards_no_absorbing=rm.estimate(obs, actions).numpy().reshape(N_STEPS, N_ENVS),
                absorbing_value=(rm.estimate(obs[:1], actions[:1], dones=[1.0]) - rm.estimate(obs[:1], actions[:1])).item(),
                n_collected=rm.n_collected,
                stats=dict(gail.last_stats),
            )
        )
        train()

    model.train = watched_train  # type: ignore[method-assign]
    return snapshots


class CollectedSetProbe(BaseCallback):
    """Placed before GailCallback: keeps the collected set GailCallback is about to train on."""

    def __init__(self, gail: GailCallback, probe: StepProbe) -> None:
        super().__init__()
        self.gail, self.probe = gail, probe

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.probe.collected = deepcopy(self.gail.reward_model.agent_data)


def _pendulum_demos():
    class Swing:
        def predict(self, obs, deterministic=True, **_):
            return np.clip(-2.0 * obs[:, 2:3], -2.0, 2.0).astype(np.float32), None

    return collect_demonstrations(Swing(), make_vec_env("Pendulum-v1", env_kwargs=dict(max_episode_steps=50)), n_episodes=2)


def _run(algorithm: Any, env: Any, demos: Any, n_rollouts: int = 3, **kwargs: Any):
    """Train ``n_rollouts`` rollouts with GailCallback, snapshotting the buffer at each train()."""
    model = algorithm(env=env, n_steps=N_STEPS, gamma=GAMMA, gae_lambda=GAE_LAMBDA, seed=0, **kwargs)
    gail = GailCallback(demos, update_per_collect=5, batch_size=16)
    probe = StepProbe()
    snapshots = _watch_train(model, probe, gail)
    model.learn(N_STEPS * N_ENVS * n_rollouts, callback=CallbackList([probe, CollectedSetProbe(gail, probe), gail]))
    assert len(snapshots) == n_rollouts
    return model, gail, snapshots


def _check_snapshot(snap: Dict[str, Any], model: OnPolicyAlgorithm, recurrent: bool = False) -> None:
    """The contract at train() time, checked against the probe's independent records."""
    steps, buffer, sb3 = snap["steps"], snap["buffer"], snap["sb3"]
    truncated, terminated = steps["truncated"], steps["terminated"]
    # D trained on exactly this rollout, row by row and env by env, then cleared
    collected = snap["collected"]
    assert len(collected) == N_STEPS * N_ENVS and snap["n_collected"] == 0
    assert snap["stats"]["n_agent_transitions"] == N_STEPS * N_ENVS
    np.testing.assert_array_equal(collected.observations, steps["obs"].reshape(len(collected), -1))
    np.testing.assert_array_equal(collected.actions.reshape(steps["actions"].shape), steps["actions"])
    np.testing.assert_array_equal(collected.timeouts.reshape(N_STEPS, N_ENVS), truncated)
    np.testing.assert_array_equal(collected.terminals.reshape(N_STEPS, N_ENVS), terminated)
    # SB3 stored env reward + gamma * V(terminal_obs) on truncated steps (the probe's understanding of SB3)
    sb3_bootstrap = sb3["rewards"] - steps["env_rewards"]
    if not recurrent:
        np.testing.assert_allclose(sb3_bootstrap, steps["bootstrap"], rtol=1e-5, atol=1e-5)
    # the relabelled rewards: the just-trained D's, absorbing value on terminations, SB3's bootstrap kept on truncations
    expected_rewards = snap["d_rewards"] + np.where(truncated, sb3_bootstrap, 0)
    np.testing.assert_allclose(buffer["rewards"], expected_rewards, rtol=1e-5, atol=1e-5)
    # advantages recomputed with GAE from the new rewards (GAE is linear in the rewards), returns = advantages + values
    expected_advantages = sb3["advantages"] + _gae(
        buffer["rewards"] - sb3["rewards"], snap["episode_starts"], snap["last_dones"], model.gamma, model.gae_lambda
    )
    np.testing.assert_allclose(buffer["advantages"], expected_advantages, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(buffer["returns"], buffer["advantages"] + buffer["values"], rtol=1e-5, atol=1e-5)


def _cartpole(n_envs: int = N_ENVS, vec_env_cls: Any = DummyVecEnv, max_episode_steps: int = 20, seed: int = 0):
    # a short time limit: random policies both terminate (pole falls) and get truncated
    return make_vec_env(
        "CartPole-v1", n_envs=n_envs, seed=seed, vec_env_cls=vec_env_cls, env_kwargs=dict(max_episode_steps=max_episode_steps)
    )


@pytest.mark.parametrize("algorithm", [PPO, A2C])
@pytest.mark.parametrize("vec_env_cls", [DummyVecEnv, SubprocVecEnv])
def test_rollout_relabelled_before_train(cartpole_demos, algorithm, vec_env_cls):
    env = _cartpole(vec_env_cls=vec_env_cls)
    kwargs = dict(batch_size=N_STEPS * N_ENVS) if algorithm is PPO else {}
    model, gail, snapshots = _run(lambda **kw: algorithm("MlpPolicy", **kw), env, cartpole_demos, **kwargs)
    for snap in snapshots:
        _check_snapshot(snap, model)
        # the rollout buffer's observations are the ones D saw (no VecNormalize)
        np.testing.assert_array_equal(snap["buffer_obs"], snap["steps"]["obs"])
    truncated = np.concatenate([snap["steps"]["truncated"] for snap in snapshots])
    terminated = np.concatenate([snap["steps"]["terminated"] for snap in snapshots])
    assert truncated.sum() >= 2 and terminated.sum() >= 2  # both kinds of episode end
    assert len(set(np.flatnonzero(truncated.any(axis=0)))) > 1
    # the bootstrap is not negligible once V has trained (dropping it would fail the checks above)
    later = snapshots[-1]["steps"]
    assert np.abs(later["bootstrap"][later["truncated"]]).max() > 0.05
    assert gail.reward_model is not None and gail.reward_model.gamma == GAMMA
    env.close()


def test_episode_ends_on_a_rollouts_last_row(cartpole_demos):
    # a time limit that divides n_steps: episodes end on the rollout's last row, where GAE must not bootstrap
    # V(s_T) of the next episode's first observation (the dones SB3 passes to compute_returns_and_advantage)
    env = _cartpole(max_episode_steps=N_STEPS // 2)
    model, _, snapshots = _run(lambda **kw: PPO("MlpPolicy", **kw), env, cartpole_demos, batch_size=N_STEPS * N_ENVS)
    assert sum(int(np.sum(snap["last_dones"])) for snap in snapshots) >= 2
    for snap in snapshots:
        _check_snapshot(snap, model)


def test_nested_where_rollout_events_do_not_arrive(cartpole_demos):
    # EventCallback children get on_step but not on_rollout_start/end: D would never train, PPO would learn the env reward
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=64, seed=0)
    with pytest.raises(RuntimeError, match=r"outside a rollout.*EveryNTimesteps"):
        model.learn(128, callback=EveryNTimesteps(1, GailCallback(cartpole_demos, update_per_collect=1)))


def test_wrapper_above_vecnormalize_refused(cartpole_demos):
    env = GailVecEnvWrapper(VecNormalize(_cartpole()))
    with pytest.raises(ValueError, match=r"above VecNormalize.*expected VecNormalize\(GailVecEnvWrapper\(venv\)\)"):
        PPO("MlpPolicy", env, n_steps=N_STEPS, seed=0).learn(N_STEPS, callback=GailCallback(cartpole_demos))


def test_absorbing_value_on_terminations_only(cartpole_demos):
    _, gail, snapshots = _run(lambda **kw: PPO("MlpPolicy", **kw), _cartpole(), cartpole_demos, batch_size=48)
    for snap in snapshots:
        steps = snap["steps"]
        extra = snap["buffer"]["rewards"] - snap["d_rewards_no_absorbing"]
        # terminations: gamma / (1 - gamma) * r_abs (the absorbing state's value) folded into the reward
        assert abs(snap["absorbing_value"]) > 0.1
        np.testing.assert_allclose(extra[steps["terminated"]], snap["absorbing_value"], rtol=1e-5, atol=1e-5)
        # truncations: only SB3's bootstrap; other steps: nothing
        np.testing.assert_allclose(extra[steps["truncated"]], steps["bootstrap"][steps["truncated"]], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(extra[~steps["terminated"] & ~steps["truncated"]], 0.0, atol=1e-6)
    rm = gail.reward_model
    assert rm.absorbing and rm.gamma == GAMMA
    with th.no_grad():
        r_abs = rm._transform(rm._absorbing_reward()).item()
    assert snapshots[-1]["absorbing_value"] == pytest.approx(GAMMA / (1 - GAMMA) * r_abs, rel=1e-5)


def test_vecnormalize_discriminator_sees_raw_observations(cartpole_demos):
    env = VecNormalize(_cartpole())
    model, gail, snapshots = _run(lambda **kw: PPO("MlpPolicy", **kw), env, cartpole_demos, batch_size=48)
    assert isinstance(model.get_env(), VecNormalize) and isinstance(model.get_env().venv, GailVecEnvWrapper)
    for snap in snapshots:
        _check_snapshot(snap, model)  # the probe's observations are the raw ones (VecNormalize.get_original_obs)
        # the buffer holds normalised observations, which would give D other rewards
        assert not np.allclose(snap["buffer_obs"], snap["steps"]["obs"], atol=1e-2)
        n = N_STEPS * N_ENVS
        normalized = gail.reward_model.estimate(snap["buffer_obs"].reshape(n, -1), snap["steps"]["actions"].reshape(n))
        assert not np.allclose(normalized.numpy().reshape(N_STEPS, N_ENVS), snap["d_rewards_no_absorbing"], atol=1e-2)


@pytest.mark.parametrize("vec_env_cls", [DummyVecEnv, SubprocVecEnv])
def test_box_actions_discriminator_sees_clipped_env_actions(vec_env_cls):
    env = make_vec_env("Pendulum-v1", n_envs=N_ENVS, seed=0, vec_env_cls=vec_env_cls, env_kwargs=dict(max_episode_steps=10))
    # a wide Gaussian (std e^1): many sampled actions fall outside Pendulum's [-2, 2]
    model, gail, snapshots = _run(
        lambda **kw: PPO("MlpPolicy", **kw), env, _pendulum_demos(), batch_size=48, policy_kwargs=dict(log_std_init=1.0)
    )
    n = N_STEPS * N_ENVS
    for snap in snapshots:
        _check_snapshot(snap, model)
        env_actions, sampled = snap["steps"]["actions"], snap["buffer_actions"]
        assert np.abs(env_actions).max() <= 2.0 and np.abs(sampled).max() > 2.0
        np.testing.assert_array_equal(env_actions, np.clip(sampled, -2.0, 2.0))
        unclipped = gail.reward_model.estimate(snap["steps"]["obs"].reshape(n, -1), sampled.reshape(n, 1))
        assert not np.allclose(unclipped.numpy().reshape(N_STEPS, N_ENVS), snap["d_rewards_no_absorbing"], atol=1e-3)
    env.close()


@pytest.mark.parametrize("algorithm", [PPO, A2C])
def test_squashed_gsde_actions_reach_the_discriminator_in_env_units(algorithm):
    """With squash_output the buffer holds tanh samples in [-1, 1]; the env (and D) get them rescaled to [-2, 2]."""
    env = make_vec_env("Pendulum-v1", n_envs=N_ENVS, seed=0, env_kwargs=dict(max_episode_steps=10))
    kwargs = dict(use_sde=True, policy_kwargs=dict(squash_output=True, log_std_init=1.0))
    if algorithm is PPO:
        kwargs["batch_size"] = 48
    model, _, snapshots = _run(lambda **kw: algorithm("MlpPolicy", **kw), env, _pendulum_demos(), **kwargs)
    for snap in snapshots:
        _check_snapshot(snap, model)
        env_actions, stored = snap["steps"]["actions"], snap["buffer_actions"]
        assert np.abs(stored).max() <= 1.0 and np.abs(env_actions).max() > 1.0  # not the buffer's units
        np.testing.assert_allclose(env_actions, model.policy.unscale_action(stored), rtol=1e-5, atol=1e-5)


def test_dict_observations(cartpole_demos):
    demos = {"cart": cartpole_demos.observations[:, :2], "pole": cartpole_demos.observations[:, 2:]}
    next_demos = {"cart": cartpole_demos.next_observations[:, :2], "pole": cartpole_demos.next_observations[:, 2:]}
    dict_demos = replace(cartpole_demos, observations=demos, next_observations=next_demos)
    env = make_vec_env(lambda: DictCartPole(gym.make("CartPole-v1", max_episode_steps=12)), n_envs=N_ENVS, seed=0)
    model = PPO("MultiInputPolicy", env, n_steps=N_STEPS, batch_size=48, seed=0)
    gail = GailCallback(dict_demos, update_per_collect=5)
    rewards: List[np.ndarray] = []
    train = model.train

    def watched_train() -> None:
        buffer = model.rollout_buffer
        obs = {key: value.reshape(N_STEPS * N_ENVS, 2) for key, value in buffer.observations.items()}
        expected = gail.reward_model.estimate(obs, buffer.actions.reshape(-1)).numpy().reshape(N_STEPS, N_ENVS)
        ends = np.concatenate([buffer.episode_starts[1:], model._last_episode_starts[None]]).astype(bool)
        rewards.append(np.abs(buffer.rewards - expected)[~ends].max())
        train()

    model.train = watched_train  # type: ignore[method-assign]
    model.learn(N_STEPS * N_ENVS * 2, callback=gail)
    assert len(rewards) == 2 and max(rewards) < 1e-5


def test_interrupted_rollout_then_learn_again(cartpole_demos):
    class StopAt(BaseCallback):
        def _on_step(self) -> bool:
            return self.n_calls < 5

    model = PPO("MlpPolicy", _cartpole(), n_steps=N_STEPS, batch_size=48, seed=0)
    gail = GailCallback(cartpole_demos, update_per_collect=2)
    model.learn(10 * N_STEPS * N_ENVS, callback=[gail, StopAt()])
    assert gail.reward_model.n_collected == 5 * N_ENVS and gail.reward_model.n_updates == 0
    # the partial rollout is dropped at the next rollout start; training goes on relabelled
    model.learn(2 * N_STEPS * N_ENVS, callback=gail, reset_num_timesteps=False)
    assert gail.reward_model.n_updates == 2 * 2 and gail.reward_model.n_collected == 0


def test_collected_set_must_match_the_rollout(cartpole_demos):
    class ExtraData(BaseCallback):
        """Adds a transition the rollout buffer does not hold (as a second wrapper would)."""

        def __init__(self, gail: GailCallback) -> None:
            super().__init__()
            self.gail = gail

        def _on_step(self) -> bool:
            if self.n_calls == 3:
                data = self.gail.reward_model.agent_data[np.arange(1)]
                self.gail.reward_model.collect_data(data)
            return True

    gail = GailCallback(cartpole_demos, update_per_collect=2)
    model = PPO("MlpPolicy", _cartpole(), n_steps=N_STEPS, batch_size=48, seed=0)
    with pytest.raises(RuntimeError, match=r"n_steps \* n_envs = 16 \* 3 = 48 transitions, got 49"):
        model.learn(N_STEPS * N_ENVS, callback=[gail, ExtraData(gail)])


def test_env_reward_untouched_and_stats_logged(cartpole_demos):
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=64, seed=0)
    gail = GailCallback(cartpole_demos, update_per_collect=3)
    model.learn(640, callback=gail)
    episodes = list(model.ep_info_buffer)
    assert episodes and all(info["r"] == info["l"] for info in episodes)  # Monitor: the true return
    assert not np.allclose(model.rollout_buffer.rewards, 1.0)
    assert gail.reward_model.n_updates == 30 and gail.last_stats["n_agent_transitions"] == 64
    assert isinstance(model.get_env(), GailVecEnvWrapper)


def test_on_policy_defaults_and_refused_off_policy_options(cartpole_demos):
    def learn(callback: GailCallback) -> GailCallback:
        PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=64, seed=0).learn(64, callback=callback)
        return callback

    gail = learn(GailCallback(cartpole_demos, update_per_collect=1))
    for name, value in ON_POLICY_DEFAULTS.items():
        assert getattr(gail.reward_model, name) == value
    assert gail.reward_model.agent_data_source == "rollout" and gail.reward_model.policy_expert_fraction == 0.0
    assert gail.reward_model.update_per_collect == 1 and gail.reward_model.target_new_data_count == 64
    # update_per_collect defaults to DISCRIMINATOR_PASSES passes over the rollout, with D's own batch size
    gail = learn(GailCallback(cartpole_demos))
    assert DISCRIMINATOR_PASSES == 25 and gail.reward_model.update_per_collect == 25 * 64 // gail.reward_model.batch_size
    assert learn(GailCallback(cartpole_demos, batch_size=32)).reward_model.update_per_collect == 50
    # explicit values that turn the off-policy options off are fine
    learn(GailCallback(cartpole_demos, update_per_collect=1, agent_data_source="rollout", policy_expert_fraction=0.0))
    for name, value in (("agent_data_source", "replay"), ("policy_expert_fraction", 0.5), ("replay_window", 1000)):
        with pytest.raises(ValueError, match=rf"PPO is on-policy.*{name}={value!r}"):
            learn(GailCallback(cartpole_demos, **{name: value}))
    env = gym.make("CartPole-v1")
    prebuilt = GailRewardModel(env.observation_space, env.action_space, cartpole_demos)  # off-policy defaults
    # the message names every setting to pass, the on-policy update_per_collect included (25 passes over 64)
    with pytest.raises(ValueError, match=r"agent_data_source='rollout', policy_expert_fraction=0\.0, update_per_collect=25\)"):
        learn(GailCallback(prebuilt))
    spaces = (env.observation_space, env.action_space)
    fitting = GailRewardModel(*spaces, cartpole_demos, update_per_collect=1, **ON_POLICY_DEFAULTS)
    assert learn(GailCallback(fitting)).reward_model is fitting and fitting.n_updates == 1
    # target_new_data_count is not used on-policy (D trains at every rollout end): refused when given
    with pytest.raises(ValueError, match=r"PPO is on-policy.*target_new_data_count=None.*got 10000"):
        learn(GailCallback(cartpole_demos, target_new_data_count=10_000))
    # and a prebuilt model's is ignored: A2C's 5-step rollouts are fine
    a2c_ready = GailRewardModel(*spaces, cartpole_demos, update_per_collect=1, **ON_POLICY_DEFAULTS)
    A2C("MlpPolicy", "CartPole-v1", seed=0).learn(20, callback=GailCallback(a2c_ready))
    assert a2c_ready.n_updates == 4
    # policy_expert_fraction=None (GailRewardModel's default) means no mixing: accepted
    learn(GailCallback(cartpole_demos, update_per_collect=1, policy_expert_fraction=None))
    # off-policy algorithms keep their own defaults
    dqn_gail = GailCallback(cartpole_demos)
    DQN("MlpPolicy", "CartPole-v1", replay_buffer_class=GailReplayBuffer, learning_starts=10).learn(8, callback=dqn_gail)
    assert dqn_gail.reward_model.agent_data_source == "replay" and dqn_gail.reward_model.policy_expert_fraction == 0.5


# ------------------------------------------------------------------------------------- sb3-contrib


def _both_actions_allowed(env: gym.Env) -> np.ndarray:
    return np.ones(2, dtype=bool)


def test_trpo(cartpole_demos):
    sb3_contrib = pytest.importorskip("sb3_contrib")
    model, _, snapshots = _run(lambda **kw: sb3_contrib.TRPO("MlpPolicy", **kw), _cartpole(), cartpole_demos, batch_size=48)
    for snap in snapshots:
        _check_snapshot(snap, model)


def test_maskable_ppo(cartpole_demos):
    """MaskablePPO does not pass the last values to the callback's locals: the relabeler computes them itself."""
    sb3_contrib = pytest.importorskip("sb3_contrib")
    from sb3_contrib.common.wrappers import ActionMasker

    env = make_vec_env(
        "CartPole-v1",
        n_envs=N_ENVS,
        seed=0,
        env_kwargs=dict(max_episode_steps=20),
        wrapper_class=ActionMasker,
        wrapper_kwargs=dict(action_mask_fn=_both_actions_allowed),
    )
    model, _, snapshots = _run(lambda **kw: sb3_contrib.MaskablePPO("MlpPolicy", **kw), env, cartpole_demos, batch_size=48)
    for snap in snapshots:
        _check_snapshot(snap, model)


def test_recurrent_ppo(cartpole_demos):
    sb3_contrib = pytest.importorskip("sb3_contrib")
    model, _, snapshots = _run(
        lambda **kw: sb3_contrib.RecurrentPPO("MlpLstmPolicy", **kw),
        _cartpole(),
        cartpole_demos,
        batch_size=48,
        policy_kwargs=dict(lstm_hidden_size=8, net_arch=[8]),
    )
    for snap in snapshots:
        _check_snapshot(snap, model, recurrent=True)


def test_algorithm_that_is_neither_on_nor_off_policy(cartpole_demos):
    sb3_contrib = pytest.importorskip("sb3_contrib")
    with pytest.raises(TypeError, match=r"off-policy algorithm.*or an on-policy algorithm.*got ARS"):
        sb3_contrib.ARS("LinearPolicy", "CartPole-v1", n_delta=2, seed=0).learn(100, callback=GailCallback(cartpole_demos))


# ------------------------------------------------------------------------------------- learning


# seed 0's untrained deterministic policy already balances the pole for 438 steps on average; seed 1's for 9
LEARNING_SEED = 1


def _zoo_ppo() -> PPO:
    env = make_vec_env("CartPole-v1", n_envs=ZOO_PPO_CARTPOLE_N_ENVS, seed=LEARNING_SEED)
    return PPO("MlpPolicy", env, seed=LEARNING_SEED, **ZOO_PPO_CARTPOLE)


@pytest.mark.slow
def test_gail_ppo_reaches_expert_return_from_5_episodes(cartpole_demos):
    """rl-zoo3's PPO settings for CartPole-v1 with the on-policy defaults; the env reward is never shown to PPO."""
    assert len(cartpole_demos.episode_returns()) == 5
    model = _zoo_ppo()
    gail = GailCallback(cartpole_demos)
    model.learn(80_000, callback=gail)  # 50k gave 459 and 500 on seeds 1 and 2 (latest stack): margin matters here
    mean, _ = evaluate_policy(model, make_vec_env("CartPole-v1", seed=7), n_eval_episodes=20, deterministic=True)
    assert mean >= 475, f"true return {mean}"
    assert gail.reward_model.n_updates == 100 * (80_000 // 256 + 1)
    assert not np.allclose(model.rollout_buffer.rewards, 1.0)  # PPO trained on the discriminator's rewards


def test_untrained_policy_is_far_below():
    """Sanity check of the evaluation above: the untrained PPO of that seed does not pass it."""
    mean, _ = evaluate_policy(_zoo_ppo(), make_vec_env("CartPole-v1", seed=7), n_eval_episodes=20, deterministic=True)
    assert mean < 100


def test_second_learn_continues_the_discriminator_with_the_same_arguments(cartpole_demos):
    """On-policy defaults derived for the algorithm do not count as arguments that ask for a fresh discriminator."""
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=64, seed=0)
    first = GailCallback(cartpole_demos, update_per_collect=5)
    model.learn(128, callback=first)
    with pytest.warns(UserWarning, match="keeps training it"):
        model.learn(128, callback=GailCallback(cartpole_demos), reset_num_timesteps=False)
    assert first.reward_model.n_updates == 4 * 5
    fresh = GailCallback(cartpole_demos, update_per_collect=2)
    with pytest.warns(UserWarning, match="replaces it"):
        model.learn(64, callback=fresh, reset_num_timesteps=False)
    assert fresh.reward_model is not first.reward_model and fresh.reward_model.n_updates == 2
