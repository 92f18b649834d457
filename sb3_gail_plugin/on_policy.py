"""GAIL for on-policy algorithms (PPO, A2C, TRPO, ...): relabel the rollout buffer at rollout end."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping

import numpy as np
import torch as th
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.utils import obs_as_tensor

from sb3_gail_plugin.reward_model import GailRewardModel

#: What GailCallback passes to GailRewardModel for an on-policy algorithm unless given explicitly.
#: The discriminator trains on each rollout, once (there is no replay buffer to sample agent data
#: from, nor policy batches to mix expert transitions into).
ON_POLICY_DEFAULTS: Dict[str, Any] = dict(agent_data_source="rollout", policy_expert_fraction=0.0)

#: Unless given, update_per_collect is chosen so that the discriminator draws this many times as many
#: agent samples as the rollout holds: 100 updates of 64 for rl-zoo3's CartPole rollouts of 8 x 32
#: (the off-policy default), 6400 for imitation's 8 x 2048. With 4 passes GAIL-PPO reached 475 later
#: in 3 runs of 4 and wobbled more; with a fixed 100 and rollouts of 16,384 it learnt to drop the pole
#: (docs/tuning_log.md, "On-policy").
DISCRIMINATOR_PASSES = 25

# Reward model arguments that only mean something with a replay buffer, and the value that turns them off
_OFF_POLICY_ONLY: Dict[str, Any] = dict(agent_data_source="rollout", policy_expert_fraction=0.0, replay_window=None)


def _off_policy_settings(settings: Mapping[str, Any]) -> Dict[str, Any]:
    """The off-policy-only settings among ``settings`` that are on (``policy_expert_fraction=None`` is off)."""
    return {
        name: settings[name]
        for name, off in _OFF_POLICY_ONLY.items()
        if name in settings and settings[name] != off and not (name == "policy_expert_fraction" and settings[name] is None)
    }


def _listed(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in values.items())


def on_policy_update_per_collect(rollout_size: int, batch_size: int) -> int:
    """
    Default number of discriminator updates per rollout for on-policy algorithms.

    :param rollout_size: Transitions per rollout (``n_steps * n_envs``)
    :param batch_size: Agent transitions per discriminator update
    :return: ``ceil(DISCRIMINATOR_PASSES * rollout_size / batch_size)``
    """
    return max(1, math.ceil(DISCRIMINATOR_PASSES * rollout_size / batch_size))


def on_policy_reward_model_kwargs(
    reward_model_kwargs: Mapping[str, Any], algorithm: str, rollout_size: int, batch_size: int = 64
) -> Dict[str, Any]:
    """
    Arguments of the reward model that GailCallback builds for an on-policy algorithm: the user's,
    with :data:`ON_POLICY_DEFAULTS` for those not given, ``target_new_data_count`` one rollout (the
    discriminator trains at every rollout end) and ``update_per_collect`` from
    :func:`on_policy_update_per_collect`.

    :param reward_model_kwargs: The arguments given to GailCallback
    :param algorithm: Name of the algorithm (for the error message)
    :param rollout_size: Transitions per rollout (``n_steps * n_envs``)
    :param batch_size: ``GailRewardModel``'s default ``batch_size`` (used unless given)
    :return: The arguments to build the reward model with
    :raises ValueError: if an off-policy-only argument is given a value other than the one that turns it off, or
        ``target_new_data_count`` is given (the discriminator trains at every rollout end)
    """
    bad = _off_policy_settings(reward_model_kwargs)
    if bad:
        raise ValueError(
            f"{algorithm} is on-policy: the discriminator trains on each rollout and there is no replay buffer, so "
            f"{_listed(bad)} cannot apply; expected {_listed({name: _OFF_POLICY_ONLY[name] for name in bad})} or "
            "leaving the argument out"
        )
    if reward_model_kwargs.get("target_new_data_count") is not None:
        raise ValueError(
            f"{algorithm} is on-policy: the discriminator trains on every rollout ({rollout_size} transitions) at its "
            f"end, so target_new_data_count cannot apply; expected target_new_data_count=None or leaving it out, "
            f"got {reward_model_kwargs['target_new_data_count']}"
        )
    batch_size = int(reward_model_kwargs.get("batch_size", batch_size))
    update_per_collect = on_policy_update_per_collect(rollout_size, batch_size)
    # policy_expert_fraction=None (GailRewardModel's default) means the algorithm's default: none on-policy
    given = dict(reward_model_kwargs)
    given.pop("target_new_data_count", None)
    if given.get("policy_expert_fraction", 0.0) is None:
        del given["policy_expert_fraction"]
    return {**ON_POLICY_DEFAULTS, "target_new_data_count": rollout_size, "update_per_collect": update_per_collect, **given}


def check_on_policy_reward_model(reward_model: GailRewardModel, algorithm: str, rollout_size: int) -> None:
    """
    Check that a reward model suits an on-policy algorithm.

    :param reward_model: The reward model
    :param algorithm: Name of the algorithm (for the error message)
    :param rollout_size: Transitions per rollout (``n_steps * n_envs``)
    :raises ValueError: if it has off-policy-only settings (``target_new_data_count`` is not used on-policy:
        the discriminator trains at every rollout end)
    """
    bad = _off_policy_settings({name: getattr(reward_model, name) for name in _OFF_POLICY_ONLY})
    if bad:
        suggested = {name: _OFF_POLICY_ONLY[name] for name in bad}
        suggested["update_per_collect"] = on_policy_update_per_collect(rollout_size, reward_model.batch_size)
        raise ValueError(
            f"{algorithm} is on-policy, but the reward model has off-policy-only settings {_listed(bad)}: build it "
            f"with GailRewardModel(..., {_listed(suggested)}) (update_per_collect: {DISCRIMINATOR_PASSES} passes over "
            f"a rollout of {rollout_size}), or pass the demonstrations to GailCallback, which uses on-policy defaults"
        )


def _last_values(model: OnPolicyAlgorithm) -> th.Tensor:
    """
    ``V(s_T)`` of the observations the next rollout starts from, as ``collect_rollouts`` computed it before
    ``compute_returns_and_advantage`` (MaskablePPO and RecurrentPPO do not pass it to the callback's locals).
    """
    obs = obs_as_tensor(model._last_obs, model.device)  # type: ignore[arg-type]
    with th.no_grad():
        lstm_states = getattr(model, "_last_lstm_states", None)
        if lstm_states is not None:  # sb3-contrib's RecurrentPPO
            episode_starts = th.tensor(model._last_episode_starts, dtype=th.float32, device=model.device)
            return model.policy.predict_values(obs, lstm_states.vf, episode_starts)  # type: ignore[call-arg]
        return model.policy.predict_values(obs)


class RolloutRelabeler:
    """
    Replaces the env rewards of an on-policy rollout with the discriminator's, at rollout end.

    SB3 calls ``on_rollout_end`` after ``compute_returns_and_advantage`` and before ``train()``. There,
    :meth:`relabel` trains the discriminator on the rollout that :class:`GailVecEnvWrapper` recorded (raw
    observations, the actions the env received, real terminal observations), clears that set, writes
    the just-trained discriminator's rewards into ``rollout_buffer.rewards`` row by row and env by env,
    and recomputes returns and advantages with the buffer's own GAE.

    Terminations get the absorbing state's value folded in (exact with GAE, which does not bootstrap
    after a termination). Time-limit truncations keep SB3's bootstrap ``gamma * V(terminal_obs)``, which
    SB3 adds to the stored reward after ``on_step``: :meth:`record_step` copies each step's env reward
    before that, so that at rollout end the bootstrap is the stored reward minus the copy.
    """

    def __init__(self) -> None:
        self._step_rewards: List[np.ndarray] = []

    def reset(self) -> None:
        """Forget the recorded steps (at rollout start)."""
        self._step_rewards = []

    def record_step(self, rewards: np.ndarray) -> None:
        """
        Record one env step's rewards, from the callback's ``on_step`` (before SB3 adds the bootstrap to them).

        :param rewards: The VecEnv's rewards, shape ``(n_envs,)``
        """
        self._step_rewards.append(np.array(rewards, dtype=np.float64).reshape(-1))

    def relabel(self, model: OnPolicyAlgorithm, reward_model: GailRewardModel) -> Dict[str, float]:
        """
        Train the discriminator on the rollout, relabel ``model.rollout_buffer`` and recompute its
        returns and advantages.

        :param model: The on-policy algorithm, at rollout end
        :param reward_model: The reward model whose collected set holds this rollout
        :return: The discriminator's training statistics
        """
        buffer = model.rollout_buffer
        n_steps, n_envs = buffer.buffer_size, buffer.n_envs
        data = reward_model.agent_data
        n_recorded = 0 if data is None else len(data)
        if n_recorded != n_steps * n_envs or len(self._step_rewards) != n_steps or not buffer.full:
            raise RuntimeError(
                f"Expected the rollout's n_steps * n_envs = {n_steps} * {n_envs} = {n_steps * n_envs} transitions, "
                f"got {n_recorded} recorded by GailVecEnvWrapper ({len(self._step_rewards)} steps seen by GailCallback, "
                f"{buffer.pos} rows in the rollout buffer): the wrapper must wrap the training env once, and "
                "GailCallback must get every step (top level or in a CallbackList)"
            )
        assert data is not None
        dones = data.dones.reshape(n_steps, n_envs)
        if not (
            np.array_equal(dones[:-1], buffer.episode_starts[1:].astype(bool))
            and np.array_equal(dones[-1], np.asarray(model._last_episode_starts, dtype=bool))
        ):
            raise RuntimeError(
                "The episode ends GailVecEnvWrapper recorded do not match the rollout buffer's: the wrapper must "
                "wrap the training env, below any wrapper that changes episode ends"
            )
        stats = reward_model.train()
        reward_model.clear_data()

        rewards = reward_model.estimate(data.observations, data.actions, data.next_observations, data.terminals)
        rewards_np = rewards.cpu().numpy().astype(np.float64).reshape(n_steps, n_envs)
        # the steps SB3 bootstrapped: the time-limit truncations the wrapper recorded
        truncated = data.timeouts.reshape(n_steps, n_envs)
        bootstrap = np.where(truncated, buffer.rewards - np.stack(self._step_rewards), 0.0)
        buffer.rewards[:] = rewards_np + bootstrap
        buffer.compute_returns_and_advantage(last_values=_last_values(model), dones=np.asarray(model._last_episode_starts))
        self.reset()
        return stats
