"""Transition batches as tensors on the reward model's device."""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch as th

from sb3_gail_plugin.discriminator import EVAL_CHUNK_VALUES, Discriminator, TensorObs
from sb3_gail_plugin.transitions import ObsArray, Transitions, index_obs


def to_tensor(values: Any, device: th.device) -> Any:
    """A tensor (or a dict of tensors) on ``device`` from numpy arrays, tensors or nested dicts of them."""
    if isinstance(values, Mapping):
        return {key: to_tensor(value, device) for key, value in values.items()}
    return th.as_tensor(np.asarray(values) if not isinstance(values, th.Tensor) else values, device=device)


def copy_obs(obs: Any) -> ObsArray:
    """A numpy copy of a batch of observations (an array or a dict of arrays)."""
    if isinstance(obs, dict):
        return {key: np.array(value) for key, value in obs.items()}
    return np.array(obs)


class TransitionTensors:
    """
    Transitions as tensors on a device, followed by one absorbing sample per termination when asked
    (an absorbing sample copies a terminal row; the discriminator zeroes all its features but the flag).

    :param transitions: The transitions
    :param device: Where the tensors live
    :param absorbing: Append one absorbing sample per termination (not per time-limit truncation)
    """

    def __init__(self, transitions: Transitions, device: th.device, absorbing: bool) -> None:
        n = len(transitions)
        rows = np.arange(n)
        self.n_real = n
        if absorbing:
            rows = np.concatenate([rows, np.flatnonzero(transitions.terminals)])
        selected = transitions[rows]
        self.obs = to_tensor(selected.observations, device)
        self.actions = None if selected.actions is None else to_tensor(selected.actions, device)
        self.next_obs = to_tensor(selected.next_observations, device)
        self.absorbing = th.zeros(len(rows), device=device)
        self.absorbing[n:] = 1.0
        self.terminals = th.as_tensor(selected.terminals, dtype=th.float32, device=device)

    def __len__(self) -> int:
        return len(self.absorbing)

    def inputs(self, index: th.Tensor) -> Tuple[TensorObs, Optional[th.Tensor], TensorObs, th.Tensor]:
        """Discriminator inputs of rows ``index``: observations, actions, next observations, absorbing flags."""
        actions = None if self.actions is None else self.actions[index]
        return index_obs(self.obs, index), actions, index_obs(self.next_obs, index), self.absorbing[index]


class DiscriminatorBatches:
    """
    Minibatches of the discriminator's training inputs, drawn from transitions by row index.

    Without a features extractor, the MLP's input (:meth:`Discriminator.features`: standardisation, one-hot
    actions, absorbing flag) depends on no trained weight and is computed row by row, so it is computed once for
    every row (when the table holds at most ``max_values`` values) and a minibatch is rows of that table: the
    values are those of the minibatch computed on its own. With a features extractor, which trains, each
    minibatch is preprocessed and embedded on its own.

    :param data: The transitions
    :param discriminator: The discriminator
    :param max_values: Largest table to compute up front (values); larger ones are computed minibatch by minibatch
    """

    def __init__(self, data: TransitionTensors, discriminator: Discriminator, max_values: int = EVAL_CHUNK_VALUES) -> None:
        self.data = data
        self.discriminator = discriminator
        self.table: Optional[th.Tensor] = None
        if discriminator.features_extractor is None and len(data) * discriminator.mlp_input_dim <= max_values:
            with th.no_grad():
                self.table = discriminator.features(data.obs, data.actions, data.next_obs, data.absorbing)

    def __call__(self, index: th.Tensor) -> Tuple[Union[th.Tensor, List[TensorObs]], th.Tensor, th.Tensor]:
        """
        The minibatch of rows ``index``.

        :return: What the gradient penalty interpolates (:meth:`Discriminator.penalty_inputs`), the MLP's input, and
            the absorbing flags
        """
        if self.table is not None:
            features = self.table[index]
            return features, features, self.data.absorbing[index]
        obs, actions, next_obs, absorbing = self.data.inputs(index)
        inputs = self.discriminator.preprocess(obs, actions, next_obs)
        features = self.discriminator.embed(inputs, absorbing)
        return self.discriminator.penalty_inputs(inputs, features), features, absorbing
