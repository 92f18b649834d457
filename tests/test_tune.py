"""Optuna sweeps of GAIL's and the algorithm's arguments: spaces, objective, shared storage, several workers."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from optuna.pruners import BasePruner  # noqa: E402
from optuna.trial import FixedTrial, TrialState  # noqa: E402
from stable_baselines3 import DQN  # noqa: E402

from sb3_gail_plugin import GailReplayBuffer, Transitions, save_demonstrations  # noqa: E402
from sb3_gail_plugin.tune import (  # noqa: E402
    GAIL_SPACE,
    RL_SPACES,
    GailObjective,
    create_study,
    make_storage,
    sample_kwargs,
    split_params,
    suggest,
)
from sb3_gail_plugin.tune.__main__ import main, parse_kwargs  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def demos_path(tmp_path: Path, cartpole_demos: Transitions) -> Path:
    path = tmp_path / "cartpole_demos.npz"
    save_demonstrations(cartpole_demos, path)
    return path


def _load(storage: Path, name: str) -> "optuna.Study":
    return optuna.load_study(study_name=name, storage=make_storage(str(storage)))


def test_split_params_and_fixed_arguments() -> None:
    params = {"learning_rate": 3e-4, "gamma": 0.99, "gail_learning_rate": 1e-4, "gail_reward_clip": None}
    trial = FixedTrial(params)
    space = {"learning_rate": RL_SPACES["dqn"]["learning_rate"], "gamma": RL_SPACES["dqn"]["gamma"]}
    assert sample_kwargs(trial, space, fixed={"gamma": 0.9}) == {"learning_rate": 3e-4}
    gail = sample_kwargs(
        trial, {"learning_rate": GAIL_SPACE["learning_rate"], "reward_clip": GAIL_SPACE["reward_clip"]}, prefix="gail_"
    )
    assert gail == {"learning_rate": 1e-4, "reward_clip": None}
    assert split_params(params) == ({"learning_rate": 3e-4, "gamma": 0.99}, {"learning_rate": 1e-4, "reward_clip": None})
    with pytest.raises(
        ValueError, match="expected a kind among 'log', 'float', 'int_log', 'choice', got \\('uniform', 0, 1\\)"
    ):
        suggest(trial, "x", ("uniform", 0, 1))
    assert parse_kwargs(["gamma:0.9", "policy:MlpPolicy", "policy_kwargs:{'net_arch': [8]}", "reward_clip:None"]) == {
        "gamma": 0.9,
        "policy": "MlpPolicy",
        "policy_kwargs": {"net_arch": [8]},
        "reward_clip": None,
    }


def test_storage_is_a_journal_file_or_a_database(tmp_path: Path) -> None:
    assert make_storage(None) is None
    journal = make_storage(str(tmp_path / "new" / "sweep.log"))
    assert isinstance(journal, optuna.storages.JournalStorage) and (tmp_path / "new").is_dir()
    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    database = make_storage(url)
    assert isinstance(database, optuna.storages.RDBStorage) and database.heartbeat_interval == 60
    create_study("on-a-database", storage=url).enqueue_trial({"x": 1.0})
    assert optuna.load_study(study_name="on-a-database", storage=url).trials[0].state == TrialState.WAITING


def test_objective_builds_the_trial_model_from_sampled_and_fixed_arguments(demos_path: Path) -> None:
    objective = GailObjective(
        "dqn",
        "CartPole-v1",
        str(demos_path),
        n_timesteps=1000,
        hyperparams=dict(learning_starts=100, gamma=0.95, policy_kwargs=dict(net_arch=[8])),
        reward_model_kwargs=dict(hidden_dims=16),
        seed=7,
    )
    params: Dict[str, Any] = {
        "learning_rate": 5e-4,
        "target_update_interval": 100,
        "exploration_fraction": 0.2,
        "gail_learning_rate": 2e-4,
        "gail_update_per_collect": 20,
        "gail_gradient_penalty": 10.0,
        "gail_reward_clip": 5.0,
        "gail_batch_size": 128,
    }
    model, callback = objective.make_model(FixedTrial(params, number=3))
    assert isinstance(model, DQN) and model.replay_buffer_class is GailReplayBuffer and model.seed == 10
    assert (model.learning_rate, model.target_update_interval, model.exploration_fraction) == (5e-4, 100, 0.2)
    assert model.gamma == 0.95 and model.learning_starts == 100  # fixed: not sampled
    assert callback.reward_model_kwargs == dict(
        learning_rate=2e-4, update_per_collect=20, gradient_penalty=10.0, reward_clip=5.0, batch_size=128, hidden_dims=16
    )
    with pytest.raises(ValueError, match=r"expected one of .*'dqn'.*, got 'dqnn'"):
        GailObjective("dqnn", "CartPole-v1", str(demos_path), n_timesteps=10)


class _PruneAll(BasePruner):
    def prune(self, study: "optuna.Study", trial: Any) -> bool:
        return True


def test_pruning_stops_a_trial_at_its_first_evaluation(demos_path: Path, tmp_path: Path) -> None:
    objective = GailObjective(
        "ppo",
        "CartPole-v1",
        str(demos_path),
        n_timesteps=1000,
        hyperparams=dict(n_steps=64, batch_size=64, n_epochs=1),
        rl_space={},
        gail_space={},
        reward_model_kwargs=dict(update_per_collect=2),
        n_evaluations=3,
        n_eval_episodes=2,
    )
    study = create_study("pruned", storage=str(tmp_path / "pruned.log"), pruner=_PruneAll())
    study.optimize(objective, n_trials=1)
    trial = _load(tmp_path / "pruned.log", "pruned").trials[0]
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [251]  # the first of 3 evaluations (every 1000 // 4 + 1 steps), then it stopped


def test_evaluations_stay_inside_the_budget(demos_path: Path) -> None:
    """DQN collects 256 steps per rollout and so runs on to 768 env steps: no evaluation past the 600 asked for."""
    objective = GailObjective(
        "dqn",
        "CartPole-v1",
        str(demos_path),
        n_timesteps=600,
        hyperparams=dict(learning_starts=100, train_freq=256, gradient_steps=4, policy_kwargs=dict(net_arch=[16])),
        rl_space={},
        gail_space={},
        reward_model_kwargs=dict(update_per_collect=2),
        n_evaluations=2,
        n_eval_episodes=2,
    )
    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE and list(trial.intermediate_values) == [201, 402]


def _check_true_returns(trials: List[Any]) -> None:
    """Every finished trial's value is the mean true CartPole return (episode lengths: integers in [1, 500])."""
    for trial in trials:
        assert trial.state in (TrialState.COMPLETE, TrialState.PRUNED), trial.state
        if trial.state == TrialState.COMPLETE:
            returns = np.array(trial.user_attrs["returns"])
            assert len(returns) == 3 and np.all(returns == np.round(returns)) and np.all((returns >= 1) & (returns <= 500))
            assert trial.value == pytest.approx(returns.mean())
            assert trial.user_attrs["gail_n_updates"] > 0


def test_a_tiny_study_with_two_trials(demos_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    storage = tmp_path / "sweeps" / "gail.log"
    common = ["--algo", "ppo", "--env", "CartPole-v1", "--demonstrations", str(demos_path), "--n-timesteps", "1024"]
    main([*common, "--n-trials", "2", "--storage", str(storage), "--study-name", "tiny", "--eval-episodes", "3"])
    study = _load(storage, "tiny")
    assert [trial.state for trial in study.trials] == [TrialState.COMPLETE] * 2
    # 2 evaluations inside the budget (8 envs: every 43 steps of each), then the final score
    assert [list(trial.intermediate_values) for trial in study.trials] == [[344, 688]] * 2
    _check_true_returns(study.trials)
    model_kwargs, reward_model_kwargs = split_params(study.trials[0].params)
    assert set(model_kwargs) == set(RL_SPACES["ppo"]) and set(reward_model_kwargs) == set(GAIL_SPACE)
    output = capsys.readouterr().out
    assert "Study 'tiny': 2 trials (2 complete), workers: 1" in output and "GailCallback arguments:" in output
    # a worker joining later with --max-total-trials 2 finds the study full and runs nothing
    main([*common, "--storage", str(storage), "--study-name", "tiny", "--max-total-trials", "2", "--tune", "gail"])
    assert len(_load(storage, "tiny").trials) == 2


@pytest.mark.slow
def test_two_worker_processes_share_one_journal_file(demos_path: Path, tmp_path: Path) -> None:
    storage = tmp_path / "shared.log"
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    command = [sys.executable, "-m", "sb3_gail_plugin.tune", "--algo", "ppo", "--env", "CartPole-v1"]
    command += ["--demonstrations", str(demos_path), "--n-timesteps", "1024", "--eval-episodes", "3", "--n-trials", "2"]
    command += ["--storage", str(storage), "--study-name", "shared", "--n-startup-trials", "2"]
    workers = [
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    trials = _load(storage, "shared").trials
    assert len(trials) == 4
    _check_true_returns(trials)
    by_worker: Dict[str, int] = {}
    for trial in trials:
        by_worker[trial.user_attrs["worker"]] = by_worker.get(trial.user_attrs["worker"], 0) + 1
    assert sorted(by_worker.values()) == [2, 2]  # each process ran its 2 trials in the one study
    assert {name.split(":")[1] for name in by_worker} == {str(worker.pid) for worker in workers}
    # the worker that finished last summed up all four trials
    assert any("Study 'shared': 4 trials" in output and "workers: 2" in output for output in outputs)
