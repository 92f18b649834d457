"""
The batches one ``train()`` of an SB3 off-policy algorithm will sample, announced in advance, so that the replay buffer
draws and relabels them together: one discriminator forward pass per chunk of batches instead of one per gradient step.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, List, Optional, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

Samples = Union[ReplayBufferSamples, DictReplayBufferSamples]

#: Upper bound on the transition bytes (observations and next observations, as float32) that one chunk of
#: planned batches gathers and relabels at once
PLANNED_CHUNK_BYTES = 32 * 1024 * 1024
#: Upper bound on the transitions one chunk of planned batches gathers and relabels at once (the discriminator's
#: activations grow with them)
PLANNED_CHUNK_ROWS = 16_384


@dataclass
class SamplingPlan:
    """
    The ``sample()`` calls the next ``train()`` will make, the batches already drawn and relabelled for them, and
    what it takes to rewind the random streams to where one-by-one sampling would stand if the plan is dropped with
    batches drawn but not served.

    :param remaining: Calls still to come
    :param batch_size: Their batch size
    :param env: The ``VecNormalize`` the ready batches were normalised with
    :param ready: Batches drawn and relabelled, in the order the calls get them
    :param n_updates: The discriminator's update count when the ready batches were relabelled
    :param served: Batches of the current chunk already served
    :param numpy_state: NumPy's global random state before the current chunk was drawn
    :param reward_model: The reward model whose generator drew the current chunk's expert rows
    :param generator_state: The generator's state before the current chunk was drawn
    :param n_expert: Expert rows per batch of the current chunk
    :param numpy_state_drawn: NumPy's global random state right after the current chunk was drawn
    :param generator_state_drawn: The generator's state right after the current chunk was drawn
    """

    remaining: int = 0
    batch_size: int = 0
    env: Optional[VecNormalize] = None
    ready: Deque[Samples] = field(default_factory=deque)
    n_updates: int = 0
    served: int = 0
    numpy_state: Optional[Any] = None
    reward_model: Optional[Any] = None
    generator_state: Optional[th.Tensor] = None
    n_expert: int = 0
    numpy_state_drawn: Optional[Any] = None
    generator_state_drawn: Optional[th.Tensor] = None

    def give_back(self, redraw_batch: Callable[[], None]) -> None:
        """
        Give back the current chunk's batches that were drawn but not served: each random stream that nothing else
        has drawn from since the chunk was drawn is rewound to before the chunk, then advanced by the draws of the
        batches served, so that it stands where one-by-one sampling would have left it. A stream something else drew
        from in between (an exploration step, the discriminator's training) is left as it is: those draws are kept.

        :param redraw_batch: Makes the NumPy draws of one batch again
        """
        if self.numpy_state is not None and same_numpy_state(self.numpy_state_drawn):
            np.random.set_state(self.numpy_state)
            for _ in range(self.served):
                redraw_batch()
        reward_model, before, drawn = self.reward_model, self.generator_state, self.generator_state_drawn
        if reward_model is not None and before is not None and drawn is not None:
            if th.equal(reward_model.generator.get_state(), drawn):
                reward_model.generator.set_state(before)
                reward_model.sample_expert_index(self.served * self.n_expert)  # the served batches' expert rows


def same_numpy_state(state: Optional[Any]) -> bool:
    """Whether NumPy's global random state is still ``state`` (as ``np.random.get_state()`` returned it)."""
    if state is None:
        return False
    now: Any = np.random.get_state()
    return bool(now[0] == state[0] and np.array_equal(now[1], state[1]) and tuple(now[2:]) == tuple(state[2:]))


def chunk_batches(observation_space: spaces.Space, batch_size: int) -> int:
    """
    Planned batches gathered and relabelled at once: as many as fit in :data:`PLANNED_CHUNK_BYTES` and
    :data:`PLANNED_CHUNK_ROWS` (at least one).

    :param observation_space: The replay buffer's observation space
    :param batch_size: Transitions per batch
    """
    parts = observation_space.spaces.values() if isinstance(observation_space, spaces.Dict) else [observation_space]
    row_bytes = 8 * sum(math.prod(part.shape or ()) for part in parts)  # observation and next observation, float32
    return max(1, min(PLANNED_CHUNK_BYTES // (max(1, row_bytes) * batch_size), PLANNED_CHUNK_ROWS // batch_size))


def interleave(first: th.Tensor, second: th.Tensor, n_batches: int) -> th.Tensor:
    """
    Rows of ``n_batches`` batches, each made of its rows of ``first`` followed by its rows of ``second`` (both hold
    ``n_batches`` equal parts one after the other).
    """
    if n_batches == 1:
        return th.cat([first, second])
    shape = first.shape[1:]
    parts = [part.reshape(n_batches, len(part) // n_batches, *shape) for part in (first, second)]
    return th.cat(parts, dim=1).reshape(-1, *shape)


def split_batches(samples: Samples, n_batches: int) -> List[Samples]:
    """``samples`` holding ``n_batches`` equal batches one after the other, as ``n_batches`` samples tuples (views)."""
    if n_batches == 1:
        return [samples]
    size = len(samples.actions) // n_batches

    def part(value: Any, k: int) -> Any:
        if isinstance(value, dict):
            return {key: item[k * size : (k + 1) * size] for key, item in value.items()}
        return None if value is None else value[k * size : (k + 1) * size]

    return [type(samples)(*(part(value, k) for value in samples)) for k in range(n_batches)]
