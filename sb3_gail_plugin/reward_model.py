"""GAIL reward model: a discriminator trained on expert versus collected agent transitions."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.utils import get_device

from sb3_gail_plugin.demonstrations import DemonstrationSource, load_demonstrations
from sb3_gail_plugin.discriminator import Discriminator, TensorObs
from sb3_gail_plugin.transitions import ObsArray, Transitions, conform_transitions

ArrayOrTensor = Union[np.ndarray, th.Tensor]
ObsInput = Union[ArrayOrTensor, Mapping[str, ArrayOrTensor]]


def _to_tensor(values: Any, device: th.device) -> Any:
    if isinstance(values, dict):
        return {key: _to_tensor(value, device) for key, value in values.items()}
    return th.as_tensor(np.asarray(values) if not isinstance(values, th.Tensor) else values, device=device)


def _index(values: TensorObs, index: th.Tensor) -> TensorObs:
    if isinstance(values, dict):
        return {key: value[index] for key, value in values.items()}
    return values[index]


def _copy_obs(obs: Any) -> ObsArray:
    if isinstance(obs, dict):
        return {key: np.array(value) for key, value in obs.items()}
    return np.array(obs)


class GailRewardModel:
    """
    GAIL reward model (Ho & Ermon, 2016), organised as DI-engine's IRL loop: collect agent
    transitions, train the discriminator on them against expert transitions, clear them, and
    relabel policy batches with :meth:`estimate`.

    The discriminator D(s, a) outputs the logit of "expert"; the agent's reward is
    ``-log(1 - D(s, a)) = softplus(logit)``, computed stably from the logit.

    :param observation_space: The env's observation space
    :param action_space: The env's action space (Discrete, Box, MultiDiscrete or MultiBinary)
    :param demonstrations: Expert transitions, or anything :func:`load_demonstrations` reads
    :param hidden_dims: Width of the discriminator's two hidden layers (or a list of widths)
    :param batch_size: Expert and agent transitions per discriminator update (``batch_size`` of each)
    :param update_per_collect: Discriminator updates per call to :meth:`train`
    :param learning_rate: Adam learning rate of the discriminator
    :param target_new_data_count: New agent transitions needed before :meth:`ready_to_train` says yes;
        defaults to ``batch_size``
    :param device: Torch device of the discriminator
    :param seed: Seed of the minibatch sampling
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        demonstrations: DemonstrationSource,
        hidden_dims: Union[int, Sequence[int]] = 64,
        batch_size: int = 64,
        update_per_collect: int = 100,
        learning_rate: float = 1e-3,
        target_new_data_count: Optional[int] = None,
        device: Union[th.device, str] = "auto",
        seed: Optional[int] = None,
    ) -> None:
        for name, value in (("batch_size", batch_size), ("update_per_collect", update_per_collect)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate}")
        self.observation_space = observation_space
        self.action_space = action_space
        self.hidden_dims = hidden_dims
        self.batch_size = int(batch_size)
        self.update_per_collect = int(update_per_collect)
        self.learning_rate = float(learning_rate)
        self.target_new_data_count = self.batch_size if target_new_data_count is None else int(target_new_data_count)
        self.device = get_device(device)
        self.seed = seed

        self.discriminator = Discriminator(observation_space, action_space, hidden_dims).to(self.device)
        self.expert_data = conform_transitions(load_demonstrations(demonstrations), observation_space, action_space)
        self.optimizer = th.optim.Adam(self.discriminator.parameters(), lr=self.learning_rate)
        self.generator = th.Generator(device="cpu")
        if seed is not None:
            self.generator.manual_seed(seed)
        self._expert_obs = _to_tensor(self.expert_data.observations, self.device)
        self._expert_actions = _to_tensor(self.expert_data.actions, self.device)
        self._collected: List[Transitions] = []
        self.n_updates = 0

    # ----------------------------------------------------------------------------------- data
    def collect_data(
        self,
        observations: Union[ObsArray, Transitions, Sequence[Dict[str, Any]]],
        actions: Optional[np.ndarray] = None,
        next_observations: Optional[ObsArray] = None,
        dones: Optional[np.ndarray] = None,
        timeouts: Optional[np.ndarray] = None,
    ) -> None:
        """
        Add agent transitions (one env step of every env, or any batch) to the training set.

        Either pass the arrays, or a single :class:`Transitions` batch or list of DI-engine style
        transition dicts as ``observations``.

        :param observations: Raw observations ``s``, shape ``(n, *obs_shape)``
        :param actions: Actions in the env's action space, shape ``(n, *action_shape)``
        :param next_observations: Raw next observations ``s'`` (real terminal observations at episode ends)
        :param dones: Episode ends, shape ``(n,)``
        :param timeouts: Which episode ends are time-limit truncations, shape ``(n,)``
        """
        if actions is None and next_observations is None and dones is None:
            self._collected.append(replace(load_demonstrations(observations), rewards=None))
            return
        if actions is None or next_observations is None or dones is None:
            raise TypeError("collect_data() needs observations, actions, next_observations and dones (or one batch)")
        dones = np.array(dones, dtype=bool).reshape(-1)
        self._collected.append(
            Transitions(
                observations=_copy_obs(observations),
                actions=np.array(actions),
                next_observations=_copy_obs(next_observations),
                dones=dones,
                timeouts=np.zeros_like(dones) if timeouts is None else np.array(timeouts, dtype=bool).reshape(-1) & dones,
            )
        )

    @property
    def n_collected(self) -> int:
        """Number of agent transitions in the training set."""
        return sum(len(part) for part in self._collected)

    @property
    def agent_data(self) -> Optional[Transitions]:
        """The collected agent transitions (``None`` when the set is empty)."""
        if not self._collected:
            return None
        return Transitions.concatenate(self._collected)

    def ready_to_train(self) -> bool:
        """Whether at least ``target_new_data_count`` transitions were collected since the last clear."""
        return self.n_collected >= self.target_new_data_count

    def clear_data(self) -> None:
        """Empty the agent training set (done after each :meth:`train`)."""
        self._collected = []

    # ----------------------------------------------------------------------------------- training
    def _sample(self, n: int) -> th.Tensor:
        return th.randint(n, (self.batch_size,), generator=self.generator).to(self.device)

    def train(self) -> Dict[str, float]:
        """
        Train the discriminator for ``update_per_collect`` steps, each on ``batch_size`` expert and
        ``batch_size`` collected agent transitions (sampled with replacement), with a binary
        cross-entropy loss on the logits (expert = 1, agent = 0).

        :return: Training statistics: ``disc_loss``, ``expert_acc``, ``agent_acc`` (training accuracies),
            ``reward_mean`` and ``expert_reward_mean`` (mean reward on all collected agent transitions
            and on as many expert transitions, after training), ``n_agent_transitions``
        """
        agent = self.agent_data
        if agent is None:
            raise RuntimeError("No agent transitions collected: call collect_data() before train()")
        agent = conform_transitions(agent, self.observation_space, self.action_space, name="collected agent data")
        agent_obs = _to_tensor(agent.observations, self.device)
        agent_actions = _to_tensor(agent.actions, self.device)
        n_expert, n_agent = len(self.expert_data), len(agent)
        labels = th.cat([th.ones(self.batch_size), th.zeros(self.batch_size)]).to(self.device)

        self.discriminator.train()
        losses, expert_acc, agent_acc = [], [], []
        for _ in range(self.update_per_collect):
            expert_index, agent_index = self._sample(n_expert), self._sample(n_agent)
            expert_logits = self.discriminator(_index(self._expert_obs, expert_index), self._expert_actions[expert_index])
            agent_logits = self.discriminator(_index(agent_obs, agent_index), agent_actions[agent_index])
            loss = F.binary_cross_entropy_with_logits(th.cat([expert_logits, agent_logits]), labels)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(loss.detach())
            expert_acc.append((expert_logits.detach() > 0).float().mean())
            agent_acc.append((agent_logits.detach() < 0).float().mean())
        self.n_updates += self.update_per_collect
        self.discriminator.eval()

        with th.no_grad():
            expert_index = self._sample(n_expert)[: min(n_agent, self.batch_size)]
            agent_rewards = self.reward_from_logits(self.discriminator(agent_obs, agent_actions))
            expert_rewards = self.reward_from_logits(
                self.discriminator(_index(self._expert_obs, expert_index), self._expert_actions[expert_index])
            )
        return {
            "disc_loss": th.stack(losses).mean().item(),
            "expert_acc": th.stack(expert_acc).mean().item(),
            "agent_acc": th.stack(agent_acc).mean().item(),
            "reward_mean": agent_rewards.mean().item(),
            "expert_reward_mean": expert_rewards.mean().item(),
            "n_agent_transitions": float(n_agent),
        }

    # ----------------------------------------------------------------------------------- rewards
    @staticmethod
    def reward_from_logits(logits: th.Tensor) -> th.Tensor:
        """GAIL reward ``-log(1 - D) = softplus(logit)``, stable for any logit."""
        return F.softplus(logits)

    def estimate(
        self,
        obs: ObsInput,
        actions: ArrayOrTensor,
        next_obs: Optional[ObsInput] = None,
        dones: Optional[ArrayOrTensor] = None,
    ) -> th.Tensor:
        """
        Reward of a batch of transitions under the current discriminator (no gradient).

        :param obs: Raw observations, shape ``(batch, *obs_shape)``
        :param actions: Actions in the env's action space, shape ``(batch, *action_shape)``
            (``(batch,)`` or ``(batch, 1)`` for ``Discrete``)
        :param next_obs: Next observations (unused by the ``(s, a)`` discriminator)
        :param dones: Terminations (unused by the ``(s, a)`` discriminator)
        :return: Rewards, float tensor of shape ``(batch, 1)`` (the layout of SB3's
            ``ReplayBufferSamples.rewards``), on the device of ``actions`` if it is a tensor,
            else on the reward model's device
        """
        out_device = actions.device if isinstance(actions, th.Tensor) else self.device
        with th.no_grad():
            logits = self.discriminator(_to_tensor(obs, self.device), _to_tensor(actions, self.device))
            rewards = self.reward_from_logits(logits)
        return rewards.reshape(-1, 1).to(out_device)

    # ----------------------------------------------------------------------------------- persistence
    def _init_kwargs(self) -> Dict[str, Any]:
        return dict(
            hidden_dims=self.hidden_dims,
            batch_size=self.batch_size,
            update_per_collect=self.update_per_collect,
            learning_rate=self.learning_rate,
            target_new_data_count=self.target_new_data_count,
            seed=self.seed,
        )

    def save(self, path: Union[str, os.PathLike[str]]) -> None:
        """
        Save the reward model: spaces, arguments, discriminator and optimiser weights, and the
        expert demonstrations (so that training can go on after :meth:`load`). The collected
        agent set is not saved.

        :param path: File to write (a torch pickle)
        """
        th.save(
            {
                "observation_space": self.observation_space,
                "action_space": self.action_space,
                "kwargs": self._init_kwargs(),
                "expert_data": self.expert_data,
                "discriminator": self.discriminator.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "n_updates": self.n_updates,
            },
            path,
        )

    @classmethod
    def load(cls, path: Union[str, os.PathLike[str]], device: Union[th.device, str] = "auto") -> GailRewardModel:
        """
        Load a reward model written by :meth:`save` (a class method, like SB3's ``DQN.load``).

        :param path: File written by :meth:`save`
        :param device: Device to load the discriminator onto
        :return: The reward model
        """
        data = th.load(path, map_location=get_device(device), weights_only=False)
        model = cls(
            data["observation_space"],
            data["action_space"],
            data["expert_data"],
            device=device,
            **data["kwargs"],
        )
        model.discriminator.load_state_dict(data["discriminator"])
        model.optimizer.load_state_dict(data["optimizer"])
        model.n_updates = data["n_updates"]
        return model
