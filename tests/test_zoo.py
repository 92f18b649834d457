"""rl-zoo3 route: ZooGailCallback, the shipped conf files, and short runs through rl-zoo3's own entry point."""

import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import DQN, SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env

from sb3_gail_plugin import (
    DictGailReplayBuffer,
    GailReplayBuffer,
    Transitions,
    collect_demonstrations,
    save_demonstrations,
)
from sb3_gail_plugin.hyperparams import GAIL_DQN_CARTPOLE
from sb3_gail_plugin.zoo import DEMONSTRATIONS_ENV_VAR, ZooGailCallback
from tests.dict_cartpole import DictCartPole

REPO_ROOT = Path(__file__).resolve().parent.parent
CALLBACK_NAME = "sb3_gail_plugin.zoo.ZooGailCallback"


class PendulumHeuristicExpert:
    """Swing-up by energy pumping, then PD balancing at the top (about -370 per episode; the test expert for Pendulum-v1)."""

    def predict(self, obs: np.ndarray, deterministic: bool = True, **_: Any) -> Tuple[np.ndarray, None]:
        cos, sin, speed = obs[:, 0], obs[:, 1], obs[:, 2]
        energy = speed**2 / 6.0 + 5.0 * (cos - 1.0)  # 0 upright at rest
        swing = 2.0 * np.sign(speed + 1e-3) * (energy < 0)
        balance = -(10.0 * np.arctan2(sin, cos) + speed)
        return np.clip(np.where(cos > 0.85, balance, swing), -2.0, 2.0)[:, None].astype(np.float32), None


@pytest.fixture()
def demos_path(tmp_path: Path, cartpole_demos: Transitions) -> Path:
    path = tmp_path / "cartpole_demos.npz"
    save_demonstrations(cartpole_demos, path)
    return path


def _dqn(env: Any = "CartPole-v1", **kwargs: Any) -> DQN:
    settings: Dict[str, Any] = dict(learning_starts=64, train_freq=32, gradient_steps=2, buffer_size=2000, seed=0)
    settings.update(kwargs)
    return DQN("MlpPolicy", env, policy_kwargs=dict(net_arch=[16]), **settings)


# ZooGailCallback (no rl-zoo3 needed)


def test_zoo_callback_needs_demonstrations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEMONSTRATIONS_ENV_VAR, raising=False)
    with pytest.raises(ValueError, match=f"demonstrations=PATH or the environment variable {DEMONSTRATIONS_ENV_VAR}"):
        ZooGailCallback()


def test_zoo_callback_takes_the_environment_variable_unless_given_a_path(
    demos_path: Path, cartpole_demos: Transitions, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(DEMONSTRATIONS_ENV_VAR, str(demos_path))
    callback = ZooGailCallback(learning_rate=3e-4, verbose=1)
    assert callback.demonstrations_source == str(demos_path) and callback.verbose == 1
    assert callback.reward_model_kwargs == {"learning_rate": 3e-4}
    np.testing.assert_array_equal(callback.demonstrations.observations, cartpole_demos.observations)
    # an explicit path wins; a wrong one fails when the callback is built, before any env is stepped
    monkeypatch.setenv(DEMONSTRATIONS_ENV_VAR, str(tmp_path / "missing.npz"))
    assert len(ZooGailCallback(str(demos_path)).demonstrations) == len(cartpole_demos)
    with pytest.raises(FileNotFoundError):
        ZooGailCallback()


def test_zoo_callback_installs_the_relabelling_buffer(demos_path: Path, tmp_path: Path) -> None:
    model = _dqn(replay_buffer_kwargs=dict(handle_timeout_termination=False))
    assert type(model.replay_buffer) is ReplayBuffer
    callback = ZooGailCallback(str(demos_path), update_per_collect=2)
    model.learn(192, callback=callback)
    buffer = model.replay_buffer
    assert type(buffer) is GailReplayBuffer and model.replay_buffer_class is GailReplayBuffer
    assert buffer.reward_model is callback.reward_model and buffer.size() == 192
    assert buffer.buffer_size == 2000 and not buffer.handle_timeout_termination  # the model's buffer arguments
    assert callback.reward_model.n_updates > 0
    # a saved model reloads with the relabelling buffer
    model.save(tmp_path / "model.zip")
    assert type(DQN.load(tmp_path / "model.zip").replay_buffer) is GailReplayBuffer


def test_zoo_callback_installs_the_dict_buffer_for_dict_observations() -> None:
    class DictExpert:
        def predict(self, obs: Dict[str, np.ndarray], deterministic: bool = True) -> Tuple[np.ndarray, None]:
            return (obs["pole"][:, 0] + 0.5 * obs["pole"][:, 1] > 0).astype(np.int64), None

    env = make_vec_env(lambda: DictCartPole(gym.make("CartPole-v1")), n_envs=1, seed=0)
    demos = collect_demonstrations(DictExpert(), env, n_episodes=1)
    model = DQN("MultiInputPolicy", env, learning_starts=64, train_freq=32, buffer_size=1000, seed=0)
    model.learn(100, callback=ZooGailCallback(demos, update_per_collect=1))
    assert type(model.replay_buffer) is DictGailReplayBuffer and model.replay_buffer_class is DictGailReplayBuffer


def test_zoo_callback_refuses_to_drop_collected_transitions(demos_path: Path) -> None:
    model = _dqn()
    model.learn(96)  # the plain buffer now holds transitions collected without GAIL
    with pytest.raises(ValueError, match="holds 96 transitions per env: create the model with replay_buffer_class"):
        model.learn(100, callback=ZooGailCallback(str(demos_path)), reset_num_timesteps=False)


def test_zoo_callback_leaves_a_relabelling_buffer_in_place(demos_path: Path) -> None:
    model = _dqn(replay_buffer_class=GailReplayBuffer)
    buffer = model.replay_buffer
    model.learn(100, callback=ZooGailCallback(str(demos_path), update_per_collect=1))
    assert model.replay_buffer is buffer


# The conf tables (rl-zoo3's YAML files)


def test_zoo_tables_add_the_callback_to_rl_zoo3_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("rl_zoo3")
    from sb3_gail_plugin.zoo import zoo_hyperparams

    monkeypatch.delenv(DEMONSTRATIONS_ENV_VAR, raising=False)
    dqn = zoo_hyperparams("dqn")
    cartpole = dqn["CartPole-v1"]
    assert cartpole["callback"] == [{CALLBACK_NAME: {}}]
    # GAIL_DQN_CARTPOLE's changes to rl-zoo3's settings, the rest as in rl-zoo3's dqn.yml
    assert cartpole["learning_rate"] == GAIL_DQN_CARTPOLE["learning_rate"] == 1e-3
    assert cartpole["target_update_interval"] == GAIL_DQN_CARTPOLE["target_update_interval"] == 1000
    assert cartpole["train_freq"] == 256 and cartpole["policy_kwargs"] == "dict(net_arch=[256, 256])"
    assert "replay_buffer_class" not in cartpole  # the callback installs the buffer
    for algo in ("sac", "ppo"):
        assert all(entry["callback"][-1] == {CALLBACK_NAME: {}} for entry in zoo_hyperparams(algo).values())
    assert zoo_hyperparams("ppo")["CartPole-v1"]["n_envs"] == 8
    # the environment variable's path is written into the callback's arguments (rl-zoo3's config.yml records it)
    monkeypatch.setenv(DEMONSTRATIONS_ENV_VAR, "demos.npz")
    assert zoo_hyperparams("sac")["Pendulum-v1"]["callback"] == [{CALLBACK_NAME: {"demonstrations": "demos.npz"}}]
    assert importlib.reload(importlib.import_module("sb3_gail_plugin.zoo.ppo")).hyperparams == zoo_hyperparams("ppo")
    # callbacks already there are kept; overrides apply last; each call builds a new table
    table = zoo_hyperparams(
        "sac",
        callback_kwargs={"demonstrations": "d.npz", "learning_rate": 3e-4},
        overrides={"Pendulum-v1": {"callback": "rl_zoo3.callbacks.ParallelTrainCallback", "n_timesteps": 1000}},
    )
    assert table["Pendulum-v1"]["callback"] == [
        "rl_zoo3.callbacks.ParallelTrainCallback",
        {CALLBACK_NAME: {"demonstrations": "d.npz", "learning_rate": 3e-4}},
    ]
    assert table["Pendulum-v1"]["n_timesteps"] == 1000 and zoo_hyperparams("sac")["Pendulum-v1"]["n_timesteps"] == 20000


def test_zoo_tables_reject_unknown_names() -> None:
    pytest.importorskip("rl_zoo3")
    from sb3_gail_plugin.zoo import zoo_hyperparams

    with pytest.raises(ValueError, match=r"expected one of .*'dqn'.*, got 'dqnn'"):
        zoo_hyperparams("dqnn")
    with pytest.raises(ValueError, match="got 'CartPole-v9'"):
        zoo_hyperparams("dqn", overrides={"CartPole-v9": {"n_timesteps": 10}})


# Short runs through rl-zoo3's own entry point


def _zoo_train(
    tmp_path: Path, algo: str, env_id: str, conf: str, args: List[str], demonstrations: Optional[Path] = None
) -> Tuple[str, Path]:
    """``python -m rl_zoo3.train`` in ``tmp_path`` (this checkout's package first on the path): its output and run folder."""
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    env.pop(DEMONSTRATIONS_ENV_VAR, None)
    if demonstrations is not None:
        env[DEMONSTRATIONS_ENV_VAR] = str(demonstrations)
    command = [sys.executable, "-m", "rl_zoo3.train", "--algo", algo, "--env", env_id, "--conf-file", conf]
    command += ["--seed", "0", "--num-threads", "1", "-f", "logs", *args]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout, tmp_path / "logs" / algo / f"{env_id}_1"


def _logged(output: str, section: str, key: str) -> List[float]:
    """Values of ``section/key`` in the logger tables that rl-zoo3 printed (SB3's human-readable format)."""
    values, current = [], None
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("|") if cell.strip()]
        if len(cells) == 1 and cells[0].endswith("/"):
            current = cells[0][:-1]
        elif len(cells) == 2 and current == section and cells[0] == key:
            values.append(float(cells[1]))
    return values


@pytest.mark.slow
def test_zoo_dqn_cartpole_with_the_shipped_conf(tmp_path: Path, demos_path: Path) -> None:
    pytest.importorskip("rl_zoo3")
    output, run = _zoo_train(
        tmp_path,
        "dqn",
        "CartPole-v1",
        "sb3_gail_plugin.zoo.dqn",
        ["-n", "5000", "--eval-freq", "2500", "--eval-episodes", "3"],
        demonstrations=demos_path,
    )
    assert "Loading hyperparameters from: sb3_gail_plugin.zoo.dqn" in output
    assert max(_logged(output, "gail", "n_updates")) >= 1000  # the discriminator trained along
    # the zoo's evaluation reports the true return: on CartPole, the episode length
    evaluations = np.load(run / "evaluations.npz")
    np.testing.assert_array_equal(evaluations["timesteps"], [2500, 5000])
    np.testing.assert_array_equal(evaluations["results"], evaluations["ep_lengths"])
    assert evaluations["results"].max() >= 200  # it learnt from the demonstrations (random play: about 20)
    assert type(DQN.load(run / "CartPole-v1.zip").replay_buffer) is GailReplayBuffer
    assert str(demos_path) in (run / "CartPole-v1" / "config.yml").read_text()


@pytest.mark.slow
def test_zoo_sac_pendulum_with_a_yaml_conf(tmp_path: Path) -> None:
    pytest.importorskip("rl_zoo3")
    demos = collect_demonstrations(PendulumHeuristicExpert(), "Pendulum-v1", n_episodes=3, seed=1)
    save_demonstrations(demos, tmp_path / "pendulum_demos.npz")
    # a user's YAML file: rl-zoo3's Pendulum settings, and the callback by name with its arguments
    (tmp_path / "gail_sac.yml").write_text(
        "Pendulum-v1:\n"
        "  n_timesteps: 20000\n"
        "  policy: 'MlpPolicy'\n"
        "  learning_rate: !!float 1e-3\n"
        "  learning_starts: 100\n"
        "  callback:\n"
        f"    - {CALLBACK_NAME}:\n"
        "        demonstrations: pendulum_demos.npz\n"
        "        update_per_collect: 20\n"
        "        verbose: 1\n"
    )
    output, run = _zoo_train(
        tmp_path, "sac", "Pendulum-v1", "gail_sac.yml", ["-n", "600", "--eval-freq", "300", "--eval-episodes", "2"]
    )
    assert "GAIL: replaced the model's ReplayBuffer with a GailReplayBuffer" in output
    assert max(_logged(output, "gail", "n_updates")) > 0
    evaluations = np.load(run / "evaluations.npz")
    np.testing.assert_array_equal(evaluations["ep_lengths"], np.full((2, 2), 200))
    # true returns: Pendulum's rewards are in [-16.3, 0] per step
    assert np.all(evaluations["results"] <= 0) and np.all(evaluations["results"] >= -16.3 * 200)
    assert type(SAC.load(run / "Pendulum-v1.zip").replay_buffer) is GailReplayBuffer


@pytest.mark.slow
def test_zoo_ppo_cartpole_with_the_shipped_conf(tmp_path: Path, demos_path: Path) -> None:
    pytest.importorskip("rl_zoo3")
    output, run = _zoo_train(
        tmp_path,
        "ppo",
        "CartPole-v1",
        "sb3_gail_plugin.zoo.ppo",
        ["-n", "4096", "--eval-freq", "2048", "--eval-episodes", "3"],
        demonstrations=demos_path,
    )
    assert "Using 8 environments" in output
    assert len(_logged(output, "gail", "n_updates")) == 4096 // 256  # one discriminator round per rollout (8 x 32)
    evaluations = np.load(run / "evaluations.npz")
    np.testing.assert_array_equal(evaluations["timesteps"], [2048, 4096])
    np.testing.assert_array_equal(evaluations["results"], evaluations["ep_lengths"])


class MountainCarExpert:
    """Pushes in the direction of the car's velocity: reaches the flag in about 100 steps."""

    def predict(self, obs: np.ndarray, deterministic: bool = True, **_: Any) -> Tuple[np.ndarray, None]:
        return np.where(obs[:, 1:2] >= 0, 1.0, -1.0).astype(np.float32), None


@pytest.mark.slow
def test_zoo_ppo_under_vecnormalize_evaluates(tmp_path: Path) -> None:
    # rl-zoo3's normalize: true (all its MuJoCo PPO settings): its eval env gets the training env's layers, so SB3's
    # EvalCallback can copy the VecNormalize statistics (without GailVecEnvWrapper in vec_env_wrapper it stops with
    # "expected the eval env to be a VecEnvWrapper" at the first evaluation)
    pytest.importorskip("rl_zoo3")
    demos = collect_demonstrations(MountainCarExpert(), "MountainCarContinuous-v0", n_episodes=2, seed=1)
    save_demonstrations(demos, tmp_path / "car_demos.npz")
    output, run = _zoo_train(
        tmp_path,
        "ppo",
        "MountainCarContinuous-v0",
        "sb3_gail_plugin.zoo.ppo",
        ["-n", "1024", "--eval-freq", "512", "--eval-episodes", "1"],
        demonstrations=tmp_path / "car_demos.npz",
    )
    assert "Normalization activated" in output
    assert len(_logged(output, "gail", "n_updates")) >= 1
    evaluations = np.load(run / "evaluations.npz")
    np.testing.assert_array_equal(evaluations["timesteps"], [512, 1024])


def test_zoo_callback_takes_a_features_extractor_by_name(demos_path: Path) -> None:
    from stable_baselines3.common.torch_layers import FlattenExtractor

    gail = ZooGailCallback(str(demos_path), features_extractor_class="stable_baselines3.common.torch_layers.FlattenExtractor")
    assert gail.reward_model_kwargs["features_extractor_class"] is FlattenExtractor
    with pytest.raises(ValueError, match=r"package.module.Class, got 'FlattenExtractor'"):
        ZooGailCallback(str(demos_path), features_extractor_class="FlattenExtractor")
    with pytest.raises(ValueError, match=r"got 'stable_baselines3.common.torch_layers.NoSuchExtractor'"):
        ZooGailCallback(str(demos_path), features_extractor_class="stable_baselines3.common.torch_layers.NoSuchExtractor")
