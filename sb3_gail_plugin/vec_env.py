"""VecEnv wrapper that feeds every transition to the reward model's training set."""

from __future__ import annotations

import weakref
from copy import deepcopy
from typing import Any, Optional

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from sb3_gail_plugin.reward_model import GailRewardModel
from sb3_gail_plugin.transitions import TIME_LIMIT_KEY


def _stack_terminal_obs(new_obs: VecEnvObs, dones: np.ndarray, infos: list) -> Any:
    """``new_obs`` with the real terminal observation in place of the reset one where an episode ended."""
    next_obs = deepcopy(new_obs)
    for i in np.flatnonzero(dones):
        terminal = infos[i].get("terminal_observation")
        if terminal is None:
            continue
        if isinstance(next_obs, dict):
            for key in next_obs:
                next_obs[key][i] = terminal[key]
        else:
            next_obs[i] = terminal  # type: ignore[index]
    return next_obs


class GailVecEnvWrapper(VecEnvWrapper):
    """
    Records ``(obs, action, next_obs, done)`` of every env step into the reward model's training
    set, with the real terminal observation on auto-reset (``infos[i]["terminal_observation"]``).
    With ``agent_data_source="replay"`` the discriminator's agent data comes from the replay buffer,
    which stores the same transitions: the wrapper then only counts them
    (:meth:`GailRewardModel.count_collected`), which is all the reward model needs to know when to train.
    Observations, rewards and infos pass through unchanged, so Monitor and EvalCallback still
    report the true return.

    Place it where the observations are the raw ones the replay buffer stores: below
    ``VecNormalize`` (``GailCallback`` does that for you).

    Recording is on while ``recording`` is True: ``GailCallback`` turns it on at each rollout start
    and off at each rollout end and at training end, so that stepping ``model.get_env()`` after
    ``learn()`` (SB3's usual ``model.predict`` loop) feeds nothing to the discriminator.

    :param venv: The vectorized environment to wrap
    :param reward_model: The reward model that collects the transitions (can be set later)
    """

    def __init__(self, venv: VecEnv, reward_model: Optional[GailRewardModel] = None) -> None:
        super().__init__(venv)
        self.reward_model = reward_model
        self.recording = True
        self._owner: Optional[weakref.ReferenceType] = None
        self._last_obs: Any = None
        self._actions: Optional[np.ndarray] = None

    @property
    def owner(self) -> Any:
        """The SB3 model whose ``GailCallback`` set this wrapper up last (``None`` if none, or if it is gone)."""
        return None if self._owner is None else self._owner()

    @owner.setter
    def owner(self, model: Any) -> None:
        self._owner = None if model is None else weakref.ref(model)

    def set_last_obs(self, obs: Any) -> None:
        """Set the observations the next step starts from (for an env that was reset before wrapping)."""
        self._last_obs = deepcopy(obs)

    def reset(self) -> VecEnvObs:
        obs = self.venv.reset()
        self._last_obs = deepcopy(obs)
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.array(actions)
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        new_obs, rewards, dones, infos = self.venv.step_wait()
        if self.reward_model is not None and self.recording:
            if self._last_obs is None or self._actions is None:
                raise RuntimeError(
                    "GailVecEnvWrapper does not know the observations this step started from: reset() the "
                    "wrapper, or call set_last_obs() if the env was reset before it was wrapped"
                )
            if self.reward_model.agent_data_source == "replay":
                self.reward_model.count_collected(len(dones))
            else:
                timeouts = np.array([info.get(TIME_LIMIT_KEY, False) for info in infos], dtype=bool)
                self.reward_model.collect_data(
                    self._last_obs, self._actions, _stack_terminal_obs(new_obs, dones, infos), dones, timeouts
                )
        self._last_obs = deepcopy(new_obs)
        return new_obs, rewards, dones, infos
