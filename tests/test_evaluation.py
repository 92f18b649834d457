"""EvalCallback next to GailCallback: an eval env wrapped like the training env, and a main job without warnings."""

import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import List

import pytest
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env

from sb3_gail_plugin import GailCallback, GailReplayBuffer, GailVecEnvWrapper

ROOT = Path(__file__).parent.parent
TYPE_WARNING = "Training and eval env are not of the same type"


def _learn(model: BaseAlgorithm, callbacks: list, steps: int) -> List[str]:
    """Train and return the messages of every warning raised meanwhile."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.learn(steps, callback=callbacks, reset_num_timesteps=False)
    return [str(warning.message) for warning in caught]


def _model(algorithm: str, env) -> BaseAlgorithm:
    if algorithm == "dqn":
        return DQN(
            "MlpPolicy",
            env,
            replay_buffer_class=GailReplayBuffer,
            learning_starts=64,
            train_freq=64,
            policy_kwargs=dict(net_arch=[16]),
            seed=0,
        )
    return PPO("MlpPolicy", env, n_steps=64, batch_size=64, policy_kwargs=dict(net_arch=[16]), seed=0)


@pytest.mark.parametrize("algorithm", ["dqn", "ppo"])
def test_eval_env_wrapped_like_the_training_env_gives_no_type_warning(cartpole_demos, algorithm):
    env = GailVecEnvWrapper(make_vec_env("CartPole-v1", seed=0))
    eval_env = GailVecEnvWrapper(make_vec_env("CartPole-v1", seed=1))  # no reward model: records nothing
    model = _model(algorithm, env)
    gail = GailCallback(cartpole_demos, update_per_collect=2)
    evaluation = EvalCallback(eval_env, eval_freq=128, n_eval_episodes=2)
    messages = _learn(model, [gail, evaluation], 256)
    # a second learn() (chunked training) meets the same chains
    again = EvalCallback(eval_env, eval_freq=128, n_eval_episodes=2)
    messages += _learn(model, [GailCallback(gail.reward_model), again], 256)

    assert [message for message in messages if TYPE_WARNING in message] == []
    assert evaluation.best_mean_reward > 0 and again.best_mean_reward > 0  # evaluations ran (true return)
    assert env.reward_model is gail.reward_model and gail.reward_model.n_updates > 0
    assert eval_env.reward_model is None  # evaluation episodes never reach the discriminator

    # the control: a plain eval env next to the wrapped training env is what SB3 warns about
    plain = EvalCallback(make_vec_env("CartPole-v1", seed=1), eval_freq=128, n_eval_episodes=2)
    messages = _learn(model, [GailCallback(gail.reward_model), plain], 64)
    assert any(TYPE_WARNING in message for message in messages)


def test_main_job_example_runs_without_warnings():
    """The main job's script (scripts/demo.sh), in small: any UserWarning (SB3's type warning included) fails it."""
    demos = ROOT / "benchmarks" / "experts" / "CartPole-v1_expert_demos.npz"
    if not demos.exists():
        pytest.skip("needs the repository's benchmarks/ (not in the sdist)")
    command = [sys.executable, "-W", "error::UserWarning", "examples/dqn_cartpole_gail.py", "--timesteps", "300"]
    result = subprocess.run(
        [*command, "--demos", str(demos)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},  # this tree's package
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Warning" not in result.stderr, result.stderr[-3000:]
    assert "GAIL-DQN after 300 env steps" in result.stdout
