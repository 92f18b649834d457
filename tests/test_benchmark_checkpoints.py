"""The benchmark harness's checkpoints: a long SAC/TD3 run stopped part-way goes on from its last evaluation."""

import argparse

import numpy as np
import pytest

methods = pytest.importorskip("benchmarks.methods", reason="needs the repository's benchmarks/ (not in the sdist)")
from benchmarks.checkpoints import RunCheckpoint  # noqa: E402
from benchmarks.compare import expert_demonstrations, run_checkpoint  # noqa: E402

SETTINGS = dict(budget=600, eval_every=200, eval_episodes=1)


class Stopped(Exception):
    """Stands for the end of a session part-way through a run."""


def _stop_at(monkeypatch, env_steps):
    evaluate = methods.Evaluator.__call__

    def stopping(self, policy, steps):
        if steps >= env_steps:
            raise Stopped
        evaluate(self, policy, steps)

    monkeypatch.setattr(methods.Evaluator, "__call__", stopping)


@pytest.mark.parametrize("method", ["ours_sac", "sac_true_reward"])
def test_a_run_stopped_part_way_goes_on_from_its_last_evaluation(tmp_path, monkeypatch, method):
    demos = expert_demonstrations("Pendulum-v1", 2)  # committed: nothing is trained here
    checkpoint = RunCheckpoint(tmp_path / "run", SETTINGS)
    with monkeypatch.context() as patch:
        _stop_at(patch, 400)
        with pytest.raises(Stopped):
            methods.run(method, "Pendulum-v1", demos, seed=0, budget=600, every=200, n_eval_episodes=1, checkpoint=checkpoint)
    assert checkpoint.latest() == tmp_path / "run" / "200_steps"
    model, reward_model, state = checkpoint.load(methods.SAC, "Pendulum-v1", seed=0)
    assert model.num_timesteps == 200 and model.replay_buffer.size() >= 199  # the step under way is not stored yet
    assert (reward_model is not None) == (method == "ours_sac")
    assert [r["env_steps"] for r in state["records"]] == [200]

    records = methods.run(
        method, "Pendulum-v1", demos, seed=0, budget=600, every=200, n_eval_episodes=1, checkpoint=checkpoint
    )
    assert [r["env_steps"] for r in records] == [200, 400, 600]
    assert records[0] == state["records"][0]  # kept from the checkpoint, not evaluated again
    assert all(np.isfinite(r["mean_return"]) for r in records)
    assert checkpoint.latest() == tmp_path / "run" / "600_steps"
    assert not (tmp_path / "run" / "200_steps").exists()  # only the last checkpoint is kept


def test_a_checkpoint_of_other_settings_is_refused(tmp_path, monkeypatch):
    demos = expert_demonstrations("Pendulum-v1", 2)
    with monkeypatch.context() as patch:
        _stop_at(patch, 400)
        with pytest.raises(Stopped):
            checkpoint = RunCheckpoint(tmp_path / "run", SETTINGS)
            methods.run("sac_true_reward", "Pendulum-v1", demos, 0, 600, 200, 1, checkpoint=checkpoint)
    with pytest.raises(ValueError, match=r"budget.: 600.*budget.: 900"):
        RunCheckpoint(tmp_path / "run", {**SETTINGS, "budget": 900}).load(methods.SAC, "Pendulum-v1", seed=0)


def test_only_resume_keeps_a_checkpoint_and_only_sac_and_td3_runs_have_one(tmp_path, monkeypatch):
    import benchmarks.compare as compare

    monkeypatch.setattr(compare, "CACHE", tmp_path)
    args = argparse.Namespace(budget=600, eval_every=200, eval_episodes=1, resume=True)
    csv_path = tmp_path / "name.csv"
    assert run_checkpoint(args, csv_path, "CartPole-v1", 10, "ours", 0) is None
    checkpoint = run_checkpoint(args, csv_path, "Hopper-v5", 10, "ours_sac", 1)
    assert (
        checkpoint is not None
        and checkpoint.directory == tmp_path / "checkpoints" / "name" / "Hopper-v5_10demos_ours_sac_seed1"
    )
    checkpoint.directory.mkdir(parents=True)
    (checkpoint.directory / "latest").write_text("200_steps")
    assert run_checkpoint(args, csv_path, "Hopper-v5", 10, "ours_sac", 1).latest() is not None
    args.resume = False
    assert run_checkpoint(args, csv_path, "Hopper-v5", 10, "ours_sac", 1).latest() is None
    assert not checkpoint.directory.exists()
