"""The discriminator network D(s, a): expert (logit > 0) versus agent (logit < 0)."""

from __future__ import annotations

from typing import Dict, Sequence, Union

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, preprocess_obs
from torch import nn

from sb3_gail_plugin.transitions import check_action_space

TensorObs = Union[th.Tensor, Dict[str, th.Tensor]]


def flatten_input(values: TensorObs, space: spaces.Space) -> th.Tensor:
    """
    Preprocess observations or actions as SB3 does (one-hot for discrete spaces, images scaled to
    [0, 1], floats otherwise) and flatten them to ``(batch, features)``.

    :param values: A batch of samples of ``space`` (a dict of batches for ``Dict`` spaces)
    :param space: The space the samples come from
    :return: Float tensor of shape ``(batch, get_flattened_obs_dim(space))``
    """
    if isinstance(space, spaces.Dict):
        assert isinstance(values, dict)
        return th.cat([flatten_input(values[key], subspace) for key, subspace in space.spaces.items()], dim=1)
    assert isinstance(values, th.Tensor)
    if isinstance(space, spaces.Discrete):
        values = values.reshape(-1)
    elif isinstance(space, spaces.MultiDiscrete):
        values = values.reshape(-1, len(space.nvec))
    processed = preprocess_obs(values, space, normalize_images=True)
    assert isinstance(processed, th.Tensor)
    return processed.reshape(processed.shape[0], -1)


class Discriminator(nn.Module):
    """
    MLP classifier on the flattened observation concatenated with the action
    (one-hot for ``Discrete``, raw for ``Box``), with one logit output.

    :param observation_space: The env's observation space
    :param action_space: The env's action space
    :param hidden_dims: Width of each hidden layer; an int means two hidden layers of that width
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        hidden_dims: Union[int, Sequence[int]] = 64,
    ) -> None:
        super().__init__()
        check_action_space(action_space)
        self.observation_space = observation_space
        self.action_space = action_space
        self.obs_dim = int(get_flattened_obs_dim(observation_space))
        self.action_dim = int(get_flattened_obs_dim(action_space))
        widths = [hidden_dims, hidden_dims] if isinstance(hidden_dims, int) else list(hidden_dims)
        if not widths or any(width < 1 for width in widths):
            raise ValueError(f"hidden_dims must be a positive int or a non-empty list of positive ints, got {hidden_dims}")
        layers: list[nn.Module] = []
        in_dim = self.obs_dim + self.action_dim
        for width in widths:
            layers += [nn.Linear(in_dim, width), nn.Tanh()]
            in_dim = width
        layers.append(nn.Linear(in_dim, 1))
        self.net = nn.Sequential(*layers)

    def features(self, observations: TensorObs, actions: th.Tensor) -> th.Tensor:
        """The network input: flattened observations and actions, concatenated."""
        obs = flatten_input(observations, self.observation_space)
        act = flatten_input(actions, self.action_space)
        if obs.shape[1] != self.obs_dim or act.shape[1] != self.action_dim or obs.shape[0] != act.shape[0]:
            raise ValueError(
                f"Expected {self.obs_dim} observation features and {self.action_dim} action features per sample "
                f"(spaces {self.observation_space} and {self.action_space}), got observations of shape "
                f"{tuple(obs.shape)} and actions of shape {tuple(act.shape)} after flattening"
            )
        return th.cat([obs, act], dim=1)

    def forward(self, observations: TensorObs, actions: th.Tensor) -> th.Tensor:
        """
        :param observations: Batch of raw observations
        :param actions: Batch of actions in the env's action space
        :return: Logits of "expert", shape ``(batch,)``
        """
        return self.net(self.features(observations, actions)).squeeze(-1)
