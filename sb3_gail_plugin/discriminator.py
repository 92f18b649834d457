"""The discriminator network D: expert (logit > 0) versus agent (logit < 0)."""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Union

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, preprocess_obs
from torch import nn

from sb3_gail_plugin.transitions import check_action_space

TensorObs = Union[th.Tensor, Dict[str, th.Tensor]]

DISCRIMINATOR_INPUTS = ("sa", "ss", "sas")


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
    MLP classifier with one logit output. Its input is the flattened observation ``s`` and, depending on
    ``inputs``, the action ``a`` (one-hot for ``Discrete``, raw for ``Box``) and the next observation
    ``s'``; with ``absorbing=True`` an indicator feature marks the absorbing state (DAC), whose other
    features are zero.

    :param observation_space: The env's observation space
    :param action_space: The env's action space
    :param hidden_dims: Width of each hidden layer; an int means two hidden layers of that width
    :param inputs: ``"sa"`` for ``(s, a)``, ``"ss"`` for ``(s, s')`` (state-only), ``"sas"`` for ``(s, a, s')``
    :param absorbing: Add the absorbing-state indicator feature
    :param spectral_norm: Spectral normalisation of every linear layer (a Lipschitz constraint)
    """

    obs_mean: th.Tensor
    obs_std: th.Tensor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        hidden_dims: Union[int, Sequence[int]] = 64,
        inputs: str = "sa",
        absorbing: bool = False,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        if inputs not in DISCRIMINATOR_INPUTS:
            raise ValueError(f"inputs must be one of {DISCRIMINATOR_INPUTS}, got {inputs!r}")
        if "a" in inputs:
            check_action_space(action_space)
        self.observation_space = observation_space
        self.action_space = action_space
        self.inputs = inputs
        self.absorbing = absorbing
        self.obs_dim = int(get_flattened_obs_dim(observation_space))
        self.action_dim = int(get_flattened_obs_dim(action_space)) if "a" in inputs else 0
        widths = [hidden_dims, hidden_dims] if isinstance(hidden_dims, int) else list(hidden_dims)
        if not widths or any(int(width) < 1 for width in widths):
            raise ValueError(f"hidden_dims must be a positive int or a non-empty list of positive ints, got {hidden_dims}")
        # Observation normalisation (identity until set from the expert data); saved with the weights
        self.register_buffer("obs_mean", th.zeros(self.obs_dim))
        self.register_buffer("obs_std", th.ones(self.obs_dim))
        layers: list[nn.Module] = []
        in_dim = self.obs_dim * (2 if self.uses_next_obs else 1) + self.action_dim + int(absorbing)
        for width in widths:
            linear = nn.Linear(in_dim, int(width))
            layers += [nn.utils.parametrizations.spectral_norm(linear) if spectral_norm else linear, nn.Tanh()]
            in_dim = int(width)
        output = nn.Linear(in_dim, 1)
        layers.append(nn.utils.parametrizations.spectral_norm(output) if spectral_norm else output)
        self.net = nn.Sequential(*layers)

    @property
    def uses_next_obs(self) -> bool:
        return self.inputs in ("ss", "sas")

    @property
    def uses_actions(self) -> bool:
        return "a" in self.inputs

    def set_obs_normalization(self, mean: th.Tensor, std: th.Tensor) -> None:
        """Standardise flattened observation features with these statistics (e.g. the expert data's)."""
        self.obs_mean.copy_(mean)
        self.obs_std.copy_(th.where(std > 1e-6, std, th.ones_like(std)))

    def _obs_features(self, observations: TensorObs, what: str) -> th.Tensor:
        features = flatten_input(observations, self.observation_space)
        if features.shape[1] != self.obs_dim:
            raise ValueError(
                f"Expected {self.obs_dim} {what} features per sample (space {self.observation_space}), "
                f"got {tuple(features.shape)} after flattening"
            )
        return (features - self.obs_mean) / self.obs_std

    def features(
        self,
        observations: TensorObs,
        actions: Optional[th.Tensor] = None,
        next_observations: Optional[TensorObs] = None,
        absorbing: Optional[th.Tensor] = None,
    ) -> th.Tensor:
        """
        The network input: flattened (normalised) observations, actions and next observations as
        ``inputs`` says, concatenated, and the absorbing indicator.

        :param observations: Batch of raw observations
        :param actions: Batch of actions in the env's action space (for ``"sa"`` and ``"sas"``)
        :param next_observations: Batch of raw next observations (for ``"ss"`` and ``"sas"``)
        :param absorbing: 1.0 for absorbing-state samples, 0.0 otherwise, shape ``(batch,)``
        """
        parts = [self._obs_features(observations, "observation")]
        if self.uses_actions:
            if actions is None:
                raise ValueError(f"The discriminator takes actions (inputs={self.inputs!r}), got none")
            act = flatten_input(actions, self.action_space)
            if act.shape[1] != self.action_dim:
                raise ValueError(
                    f"Expected {self.action_dim} action features per sample (space {self.action_space}), "
                    f"got {tuple(act.shape)} after flattening"
                )
            parts.append(act)
        if self.uses_next_obs:
            if next_observations is None:
                raise ValueError(f"The discriminator takes next observations (inputs={self.inputs!r}), got none")
            parts.append(self._obs_features(next_observations, "next observation"))
        if any(part.shape[0] != parts[0].shape[0] for part in parts):
            raise ValueError(f"Inputs have different batch sizes: {[part.shape[0] for part in parts]}")
        features = th.cat(parts, dim=1)
        if self.absorbing:
            flag = (
                th.zeros(features.shape[0], 1, device=features.device)
                if absorbing is None
                else absorbing.reshape(-1, 1).float()
            )
            features = th.cat([features * (1.0 - flag), flag], dim=1)
        return features

    def forward(
        self,
        observations: TensorObs,
        actions: Optional[th.Tensor] = None,
        next_observations: Optional[TensorObs] = None,
        absorbing: Optional[th.Tensor] = None,
    ) -> th.Tensor:
        """
        :return: Logits of "expert", shape ``(batch,)``
        """
        return self.net(self.features(observations, actions, next_observations, absorbing)).squeeze(-1)
