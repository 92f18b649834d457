"""Expert mixing: real expert transitions in a share of every policy batch, as DAC and SQIL do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict

import torch as th

from sb3_gail_plugin.batch_plan import interleave
from sb3_gail_plugin.reward_model import GailRewardModel


@dataclass
class ExpertRows:
    """
    A reward model's real expert transitions in a replay buffer's layout, dtypes and device, for expert mixing.

    :param reward_model: The reward model they come from (and whose generator draws them)
    :param observations: Observations (a dict of tensors for ``Dict`` spaces)
    :param actions: Actions in the units and layout the buffer stores
    :param next_observations: Next observations
    :param terminals: Episode ends that are not time-limit truncations, shape ``(n, 1)``
    """

    reward_model: GailRewardModel
    observations: Any
    actions: th.Tensor
    next_observations: Any
    terminals: th.Tensor

    @classmethod
    def like(
        cls, reward_model: GailRewardModel, agent: Dict[str, Any], to_buffer_actions: Callable[[th.Tensor], th.Tensor]
    ) -> ExpertRows:
        """
        The reward model's real expert transitions in the layout, dtypes and device of the agent tensors ``agent``
        (``observations``, ``actions``, ``next_observations``, ``dones``), as views of the reward model's tensors where
        nothing needs converting.

        :param reward_model: The reward model
        :param agent: Agent tensors as the replay buffer gathers them
        :param to_buffer_actions: Maps env actions to the buffer's units and layout
        """

        def conform(expert: Any, reference: Any) -> Any:
            if isinstance(reference, dict):
                return {key: conform(expert[key], reference[key]) for key in reference}
            return expert.to(device=reference.device, dtype=reference.dtype).reshape(-1, *reference.shape[1:])

        obs, actions, next_obs, terminals = reward_model.expert_transitions()
        return cls(
            reward_model=reward_model,
            observations=conform(obs, agent["observations"]),
            actions=conform(to_buffer_actions(actions), agent["actions"]),
            next_observations=conform(next_obs, agent["next_observations"]),
            terminals=conform(terminals, agent["dones"]),
        )

    def mix_into(self, agent: Dict[str, Any], n_batches: int, n_expert: int) -> Dict[str, Any]:
        """
        Insert ``n_expert`` expert transitions, drawn with the reward model's generator, after the agent rows of each
        of the ``n_batches`` equal batches that the agent tensors ``agent`` hold one after the other.

        :param agent: ``observations``, ``actions``, ``next_observations``, ``dones`` and ``terminations``
        :param n_batches: Batches held one after the other
        :param n_expert: Expert transitions per batch
        :return: The mixed tensors, under the same keys
        """
        index = self.reward_model.sample_expert_index(n_batches * n_expert)  # the draws of n_batches calls, in order

        def join(agent_part: Any, expert_part: Any) -> Any:
            if isinstance(agent_part, dict):
                return {key: join(agent_part[key], expert_part[key]) for key in agent_part}
            return interleave(agent_part, expert_part[index.to(expert_part.device)], n_batches)

        return dict(
            observations=join(agent["observations"], self.observations),
            actions=join(agent["actions"], self.actions),
            next_observations=join(agent["next_observations"], self.next_observations),
            dones=join(agent["dones"], self.terminals),
            terminations=join(agent["terminations"], self.terminals),
        )
