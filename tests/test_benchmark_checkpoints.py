"""The benchmark harness's checkpoints: a long SAC/TD3 run stopped part-way goes on from its last evaluation."""

import argparse

import numpy as np
import pytest
import stable_baselines3
import torch as th

methods = pytest.importorskip("benchmarks.methods", reason="needs the repository's benchmarks/ (not in the sdist)")
import benchmarks.compare as compare  # noqa: E402
from benchmarks.checkpoints import RunCheckpoint  # noqa: E402
from benchmarks.compare import expert_demonstrations  # noqa: E402
from sb3_gail_plugin import GailCallback, GailRewardModel  # noqa: E402

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
            methods.run(method, "Pendulum-v1", demos, 0, 600, 200, n_eval_episodes=1, checkpoint=checkpoint)
    assert checkpoint.latest() == tmp_path / "run" / "200_steps"
    model, reward_model, state = checkpoint.load(methods.SAC, "Pendulum-v1", seed=0)
    assert model.num_timesteps == 200 and model.replay_buffer.size() >= 199  # the step under way is not stored yet
    assert [r["env_steps"] for r in state["records"]] == [200]
    if method == "ours_sac":
        assert reward_model is not None and reward_model.n_updates > 0  # the discriminator trained so far
    else:
        assert reward_model is None

    given = []  # what the resumed run's GailCallback is built from
    monkeypatch.setattr(methods, "GailCallback", lambda source, **kwargs: given.append(source) or GailCallback(source))
    records = methods.run(method, "Pendulum-v1", demos, 0, 600, 200, n_eval_episodes=1, checkpoint=checkpoint)
    assert [r["env_steps"] for r in records] == [200, 400, 600]
    assert records[0] == state["records"][0]  # kept from the checkpoint, not evaluated again
    assert "resumed_at" not in records[0] and [r["resumed_at"] for r in records[1:]] == [200, 200]
    assert all(np.isfinite(r["mean_return"]) for r in records)
    assert records[1]["wall_s"] > records[0]["wall_s"]  # the wall time goes on from the checkpoint's
    assert checkpoint.latest() == tmp_path / "run" / "600_steps"
    assert not (tmp_path / "run" / "200_steps").exists()  # only the last checkpoint is kept
    if method == "ours_sac":  # the reward model goes on from the checkpoint's, not from the demonstrations afresh
        assert len(given) == 1 and isinstance(given[0], GailRewardModel)
        _, final_reward_model, _ = checkpoint.load(methods.SAC, "Pendulum-v1", seed=0)
        assert final_reward_model.n_updates > reward_model.n_updates
    else:
        assert given == []


def test_a_run_stopped_while_saving_keeps_the_checkpoint_before(tmp_path, monkeypatch):
    model = methods.SAC("MlpPolicy", "Pendulum-v1", seed=0, buffer_size=1000)
    checkpoint = RunCheckpoint(tmp_path / "run", SETTINGS)
    checkpoint.save(model, dict(records=[], next_at=200, wall_s=0.0, resumed_at=[]))
    model.num_timesteps = 200
    with monkeypatch.context() as patch:
        patch.setattr(model, "save_replay_buffer", lambda path: (_ for _ in ()).throw(Stopped()))
        with pytest.raises(Stopped):
            checkpoint.save(model, dict(records=[], next_at=400, wall_s=1.0, resumed_at=[]))
    assert checkpoint.latest() == tmp_path / "run" / "0_steps"
    resumed, _, state = checkpoint.load(methods.SAC, "Pendulum-v1", seed=0)
    assert resumed.num_timesteps == 0 and state["next_at"] == 200
    checkpoint.save(model, dict(records=[], next_at=400, wall_s=1.0, resumed_at=[]))  # the next save completes
    assert checkpoint.latest() == tmp_path / "run" / "200_steps"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["200_steps", "latest"]
    checkpoint.remove()
    assert checkpoint.latest() is None and not (tmp_path / "run").exists()


def test_training_to_the_budget_is_plain_learn_for_a_fresh_model():
    """A run without a checkpoint learns exactly as ``model.learn(budget)`` does."""
    plain = methods.SAC("MlpPolicy", "Pendulum-v1", seed=0, learning_starts=50, buffer_size=1000)
    plain.learn(150)
    through = methods.SAC("MlpPolicy", "Pendulum-v1", seed=0, learning_starts=50, buffer_size=1000)
    methods.learn_to(through, 150, [])
    assert through.num_timesteps == plain.num_timesteps == 150
    for ours, theirs in zip(through.policy.parameters(), plain.policy.parameters()):
        assert th.equal(ours, theirs)


def test_a_checkpoint_of_other_settings_is_refused(tmp_path, monkeypatch):
    demos = expert_demonstrations("Pendulum-v1", 2)
    with monkeypatch.context() as patch:
        _stop_at(patch, 400)
        with pytest.raises(Stopped):
            checkpoint = RunCheckpoint(tmp_path / "run", SETTINGS)
            methods.run("sac_true_reward", "Pendulum-v1", demos, 0, 600, 200, 1, checkpoint=checkpoint)
    with pytest.raises(ValueError, match=r"budget.: 600.*budget.: 900"):
        RunCheckpoint(tmp_path / "run", {**SETTINGS, "budget": 900}).load(methods.SAC, "Pendulum-v1", seed=0)


def _args(**overrides):
    settings = dict(
        env=["Pendulum-v1"],
        n_demos=[2],
        methods=["sac_true_reward"],
        seeds=[0],
        budget=200,
        eval_every=200,
        eval_episodes=1,
        on_policy_budget=None,
        quick=False,
        resume=True,
    )
    return argparse.Namespace(**{**settings, **overrides})


def test_checkpoints_are_kept_per_csv_and_know_the_run_they_belong_to(monkeypatch, tmp_path):
    monkeypatch.setattr(compare, "CACHE", tmp_path)
    assert compare.checkpoints_folder(compare.ROOT / "results" / "name.csv") == tmp_path / "checkpoints" / "name"
    quick = compare.checkpoints_folder(compare.ROOT / "results" / "quick" / "quick.csv")
    assert quick == tmp_path / "checkpoints" / "quick" / "quick"  # not the folder of --name quick
    demos = expert_demonstrations("Pendulum-v1", 2)
    assert compare.run_checkpoint(_args(), tmp_path, "Pendulum-v1", 2, "ours", 0, demos) is None  # DQN: not resumable
    checkpoint = compare.run_checkpoint(_args(), tmp_path, "Pendulum-v1", 2, "ours_sac", 1, demos)
    assert checkpoint is not None and checkpoint.directory == tmp_path / "Pendulum-v1_2demos_ours_sac_seed1"
    other_demos = compare.run_checkpoint(_args(), tmp_path, "Pendulum-v1", 2, "ours_sac", 1, demos[np.arange(200)])
    quick_run = compare.run_checkpoint(_args(quick=True), tmp_path, "Pendulum-v1", 2, "ours_sac", 1, demos)
    assert checkpoint.settings != other_demos.settings and checkpoint.settings != quick_run.settings
    assert checkpoint.settings["stable_baselines3"] == stable_baselines3.__version__


def test_run_all_clears_checkpoints_unless_resuming_and_removes_those_of_written_runs(monkeypatch, tmp_path):
    monkeypatch.setattr(compare, "CACHE", tmp_path)
    csv_path = tmp_path / "name.csv"
    folder = compare.checkpoints_folder(csv_path)
    stale = folder / "Pendulum-v1_2demos_ours_sac_seed5"  # a run this call never reaches
    stale.mkdir(parents=True)
    compare.run_all(_args(resume=False), csv_path)
    assert not stale.exists()  # an earlier attempt's checkpoint is gone: a later --resume cannot pick it up
    assert not (folder / "Pendulum-v1_2demos_sac_true_reward_seed0").exists()  # removed once its rows are written
    rows = compare.read_csv(csv_path)
    assert [(r["method"], r["env_steps"]) for r in rows] == [("sac_true_reward", "200")]

    left = folder / "Pendulum-v1_2demos_sac_true_reward_seed0"  # left by a run stopped after its rows were written
    left.mkdir(parents=True)
    compare.run_all(_args(), csv_path)
    assert not left.exists() and len(compare.read_csv(csv_path)) == 1  # kept from the CSV, not run again
    assert not folder.exists()  # the CSV's folder goes too once no run of it is left to resume


def test_a_checkpoint_records_the_code_that_wrote_it_and_a_resume_across_versions_says_so(tmp_path, monkeypatch, capsys):
    import benchmarks.checkpoints as checkpoints

    model = methods.SAC("MlpPolicy", "Pendulum-v1", seed=0, buffer_size=1000)
    checkpoint = RunCheckpoint(tmp_path / "run", SETTINGS)
    monkeypatch.setattr(checkpoints, "code_version", lambda: "abc1234")
    checkpoint.save(model, dict(records=[], next_at=200, wall_s=0.0, resumed_at=[]))
    checkpoint.load(methods.SAC, "Pendulum-v1", seed=0)
    assert "written by the code" not in capsys.readouterr().out  # the same code: nothing to say
    monkeypatch.setattr(checkpoints, "code_version", lambda: "def5678-dirty")
    checkpoint.load(methods.SAC, "Pendulum-v1", seed=0)
    assert "was written by the code at abc1234; it goes on at def5678-dirty" in capsys.readouterr().out
