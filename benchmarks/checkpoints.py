"""
Checkpoints of one benchmark run, so that a long run stopped part-way (at a session's end) goes on from its last
evaluation with ``--resume`` instead of starting over.

A checkpoint holds the SB3 model, its replay buffer, the GAIL reward model where the run has one
(:meth:`GailRewardModel.save`, the package's own persistence) and the evaluations so far. It is written after each
evaluation, into a folder per step count (written under a temporary name, then renamed), and a ``latest`` file
naming that folder is replaced last, so that a run killed while saving leaves the previous checkpoint intact. As
with SB3's ``CheckpointCallback``, a resumed run starts from a reset env: the episode under way when the run
stopped is lost, so a resumed run is like, not identical to, an unbroken one (the harness prints where it resumed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Type

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import unwrap_vec_wrapper

from sb3_gail_plugin import GailRewardModel
from sb3_gail_plugin.vec_env import GailVecEnvWrapper

MODEL, REPLAY_BUFFER, REWARD_MODEL, EVALUATIONS, LATEST = (
    "model.zip",
    "replay_buffer.pkl",
    "reward_model.pt",
    "evaluations.json",
    "latest",
)


class RunCheckpoint:
    """
    The checkpoints of one run in ``directory``.

    :param directory: Folder of this run's checkpoints (one per (env, demo count, method, seed))
    :param settings: What the run was started with (budget, evaluation interval, ...): a checkpoint made with other
        settings is refused rather than resumed
    """

    def __init__(self, directory: Path, settings: Dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.settings = dict(settings)

    def latest(self) -> Optional[Path]:
        """The folder of the last complete checkpoint, or None when there is none."""
        marker = self.directory / LATEST
        if not marker.exists():
            return None
        return self.directory / marker.read_text().strip()

    def save(self, model: BaseAlgorithm, evaluator_state: Dict[str, Any]) -> None:
        """Write a checkpoint of ``model`` (with its replay buffer and GAIL reward model) and the evaluator's state."""
        folder = self.directory / f"{model.num_timesteps}_steps"
        written = self.directory / f"{folder.name}.tmp"  # renamed to ``folder`` once complete
        shutil.rmtree(written, ignore_errors=True)
        written.mkdir(parents=True)
        model.save(written / MODEL)
        if isinstance(model, OffPolicyAlgorithm):
            model.save_replay_buffer(written / REPLAY_BUFFER)
        wrapper = unwrap_vec_wrapper(model.get_env(), GailVecEnvWrapper)  # type: ignore[arg-type]
        reward_model = getattr(wrapper, "reward_model", None)
        if reward_model is not None:
            reward_model.save(written / REWARD_MODEL)
        state = dict(
            settings=self.settings,
            evaluator=evaluator_state,
            num_timesteps=model.num_timesteps,
            code_version=code_version(),
        )
        (written / EVALUATIONS).write_text(json.dumps(state))
        previous = self.latest()
        if previous == folder:  # the same step count saved again: ``latest`` must not name a folder being replaced
            (self.directory / LATEST).unlink()
            previous = None
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(written, folder)
        marker = self.directory / f"{LATEST}.tmp"
        marker.write_text(folder.name)
        os.replace(marker, self.directory / LATEST)
        if previous is not None and previous != folder:
            shutil.rmtree(previous, ignore_errors=True)

    def load(
        self, algorithm_class: Type[BaseAlgorithm], env_id: str, seed: int
    ) -> Optional[Tuple[BaseAlgorithm, Optional[GailRewardModel], Dict[str, Any]]]:
        """
        The last checkpoint: the model on a fresh env (seeded from ``seed`` and the step count, so that the resumed
        run meets new episodes), its GAIL reward model (None for a run without one) and the evaluator's state;
        None when there is no checkpoint.
        """
        folder = self.latest()
        if folder is None:
            return None
        state = json.loads((folder / EVALUATIONS).read_text())
        if state["settings"] != self.settings:
            raise ValueError(
                f"The checkpoint in {folder} was made with {state['settings']}, this run asks {self.settings}: run "
                f"with the same settings, or delete {self.directory} to start the run afresh"
            )
        steps = int(state["num_timesteps"])
        written_by, now = state.get("code_version"), code_version()
        if written_by != now:  # allowed (the settings match), but a result resumed across code changes should say so
            print(
                f"{folder} was written by the code at {written_by or 'an unrecorded version'}; it goes on at {now}",
                flush=True,
            )
        resumed_seed = resume_seed(seed, steps, "training")
        model = algorithm_class.load(folder / MODEL, env=make_vec_env(env_id, n_envs=1, seed=resumed_seed))
        model.set_random_seed(resumed_seed)
        if isinstance(model, OffPolicyAlgorithm):
            model.load_replay_buffer(folder / REPLAY_BUFFER)
        reward_model = GailRewardModel.load(folder / REWARD_MODEL) if (folder / REWARD_MODEL).exists() else None
        return model, reward_model, state["evaluator"]

    def remove(self) -> None:
        """Delete this run's checkpoints (``latest`` first, so that a kill part-way leaves no checkpoint to resume)."""
        (self.directory / LATEST).unlink(missing_ok=True)
        shutil.rmtree(self.directory, ignore_errors=True)


def resume_seed(seed: int, env_steps: int, purpose: str) -> int:
    """
    The seed of a run's ``purpose`` (``"training"``, ``"evaluation"``) from a resume at ``env_steps`` on: unrelated to
    the run's first seeds and to other purposes', so a resumed run meets new episodes, not its first ones again.
    """
    return int(np.random.SeedSequence([seed, env_steps, sum(map(ord, purpose))]).generate_state(1)[0])


def code_version() -> Optional[str]:
    """The repository's commit (``git describe --always --dirty``), or None outside a git checkout."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return described.stdout.strip() or None
