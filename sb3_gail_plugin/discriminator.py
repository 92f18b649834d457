"""The discriminator network D: expert (logit > 0) versus agent (logit < 0)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Type, Union

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, preprocess_obs
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from sb3_gail_plugin.features import (
    apply_spectral_norm,
    build_features_extractor,
    default_features_extractor,
    extractor_space,
    observation_parts,
    preprocess_part,
)
from sb3_gail_plugin.transitions import check_action_space, index_obs

TensorObs = Union[th.Tensor, Dict[str, th.Tensor]]

DISCRIMINATOR_INPUTS = ("sa", "ss", "sas")

# forward() evaluates big batches (all the agent data, a whole rollout) in chunks of at most this many input
# values (64 MB of float32): a batch of images as floats, and the activations of a CNN, would not fit otherwise
EVAL_CHUNK_VALUES = 2**24


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
    Classifier with one logit output. Its input is the observation ``s`` and, depending on ``inputs``, the
    action ``a`` (one-hot for ``Discrete``, raw for ``Box``) and the next observation ``s'``; with
    ``absorbing=True`` an indicator feature marks the absorbing state (DAC), whose other features are zero.

    Observations go through a features extractor, as in SB3's policies: by default SB3's ``NatureCNN``
    for an image space and ``CombinedExtractor`` for a ``Dict`` space holding images (``s'`` goes through
    the same extractor as ``s``); otherwise they are flattened. The extracted (or flattened) features, the
    action, the indicator and the next observation's features are concatenated and fed to an MLP.

    :param observation_space: The env's observation space
    :param action_space: The env's action space
    :param hidden_dims: Width of each hidden layer of the MLP; an int means two hidden layers of that width
    :param inputs: ``"sa"`` for ``(s, a)``, ``"ss"`` for ``(s, s')`` (state-only), ``"sas"`` for ``(s, a, s')``
    :param absorbing: Add the absorbing-state indicator feature
    :param spectral_norm: Spectral normalisation of every linear layer (a Lipschitz constraint), and of every
        linear and convolution layer of the features extractor
    :param features_extractor_class: An SB3 features extractor class (a ``BaseFeaturesExtractor``) for the
        observations; ``None`` chooses as SB3 does: ``NatureCNN`` for images, ``CombinedExtractor`` for ``Dict``
        spaces holding images, and flattening otherwise
    :param features_extractor_kwargs: Keyword arguments of the features extractor (e.g. ``features_dim``)
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
        features_extractor_class: Optional[Type[BaseFeaturesExtractor]] = None,
        features_extractor_kwargs: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__()
        if inputs not in DISCRIMINATOR_INPUTS:
            raise ValueError(f"inputs must be one of {DISCRIMINATOR_INPUTS}, got {inputs!r}")
        if "a" in inputs:
            check_action_space(action_space)
        if features_extractor_class is not None and not (
            isinstance(features_extractor_class, type) and issubclass(features_extractor_class, BaseFeaturesExtractor)
        ):
            raise TypeError(
                "features_extractor_class must be a subclass of SB3's BaseFeaturesExtractor (e.g. NatureCNN) or None, "
                f"got {features_extractor_class!r}"
            )
        self.observation_space = observation_space
        self.action_space = action_space
        self.inputs = inputs
        self.absorbing = absorbing
        extractor_kwargs = dict(features_extractor_kwargs or {})
        self.features_extractor_class = features_extractor_class or default_features_extractor(observation_space)
        self.features_extractor_kwargs = extractor_kwargs
        if self.features_extractor_class is None and extractor_kwargs:
            raise ValueError(
                f"features_extractor_kwargs {extractor_kwargs} given without a features extractor: for {observation_space} "
                "the discriminator flattens the observations; pass features_extractor_class too"
            )
        self.obs_parts = observation_parts(
            observation_space,
            find_images=self.features_extractor_class is not None,
            normalized_image=bool(extractor_kwargs.get("normalized_image", False)),
        )
        self.obs_dim = int(get_flattened_obs_dim(observation_space))
        self.action_dim = int(get_flattened_obs_dim(action_space)) if "a" in inputs else 0
        widths = [hidden_dims, hidden_dims] if isinstance(hidden_dims, int) else list(hidden_dims)
        if not widths or any(int(width) < 1 for width in widths):
            raise ValueError(f"hidden_dims must be a positive int or a non-empty list of positive ints, got {hidden_dims}")
        # Standardisation of the non-image observation features (identity until set from the expert data);
        # saved with the weights
        n_standardized = self.obs_parts[-1].stop
        self.register_buffer("obs_mean", th.zeros(n_standardized))
        self.register_buffer("obs_std", th.ones(n_standardized))
        self.features_extractor: Optional[BaseFeaturesExtractor] = None
        obs_features = self.obs_dim
        if self.features_extractor_class is not None:
            self.features_extractor = build_features_extractor(
                self.features_extractor_class, extractor_space(observation_space, self.obs_parts), extractor_kwargs
            )
            if spectral_norm:
                apply_spectral_norm(self.features_extractor)
            obs_features = int(self.features_extractor.features_dim)
        layers: list[nn.Module] = []
        in_dim = obs_features * (2 if self.uses_next_obs else 1) + self.action_dim + int(absorbing)
        self.mlp_input_dim = in_dim  # the width of embed()'s output
        for width in widths:
            linear = nn.Linear(in_dim, int(width))
            layers += [nn.utils.parametrizations.spectral_norm(linear) if spectral_norm else linear, nn.Tanh()]
            in_dim = int(width)
        output = nn.Linear(in_dim, 1)
        layers.append(nn.utils.parametrizations.spectral_norm(output) if spectral_norm else output)
        self.net = nn.Sequential(*layers)
        values_per_sample = self.obs_dim * (2 if self.uses_next_obs else 1) + self.action_dim
        self.eval_chunk_size = max(1, EVAL_CHUNK_VALUES // max(1, values_per_sample))

    @property
    def uses_next_obs(self) -> bool:
        return self.inputs in ("ss", "sas")

    @property
    def uses_actions(self) -> bool:
        return "a" in self.inputs

    def set_obs_normalization(self, mean: th.Tensor, std: th.Tensor) -> None:
        """Standardise the non-image observation features with these statistics (e.g. the expert data's)."""
        self.obs_mean.copy_(mean)
        self.obs_std.copy_(th.where(std > 1e-6, std, th.ones_like(std)))

    def _parts(self, observations: TensorObs, what: str, images: bool = True) -> List[Optional[th.Tensor]]:
        """
        Each part of ``observations`` (see ``obs_parts``) preprocessed as SB3 does, before standardisation
        (``None`` for images when ``images=False``).
        """
        if isinstance(self.observation_space, spaces.Dict) != isinstance(observations, dict):
            raise ValueError(f"Expected {what}s for the space {self.observation_space}, got {type(observations).__name__}")
        if isinstance(observations, dict) and not {part.key for part in self.obs_parts} <= set(observations):
            raise ValueError(f"Expected {what} keys {[part.key for part in self.obs_parts]}, got {sorted(observations)}")
        return [
            None
            if part.image and not images
            else preprocess_part(observations if part.key is None else observations[part.key], part, what)  # type: ignore[index, arg-type]
            for part in self.obs_parts
        ]

    def standardization_features(self, observations: TensorObs) -> th.Tensor:
        """
        The observation features that ``normalize_obs`` standardises, not yet standardised: every part but images,
        preprocessed (one-hot for discrete spaces) and flattened.

        :return: Float tensor of shape ``(batch, len(obs_mean))``
        """
        n = _batch_size(observations)
        parts = [x.reshape(n, -1) for x in self._parts(observations, "observation", images=False) if x is not None]
        return th.cat(parts, dim=1) if parts else th.zeros(n, 0, device=self.obs_mean.device)

    def _preprocess_obs(self, observations: TensorObs, what: str) -> TensorObs:
        n = _batch_size(observations)
        inputs: Dict[Optional[str], th.Tensor] = {}
        for x, part in zip(self._parts(observations, what), self.obs_parts):
            assert x is not None
            if not part.image:
                flat = (x.reshape(n, -1) - self.obs_mean[part.start : part.stop]) / self.obs_std[part.start : part.stop]
                x = flat if self.features_extractor is None else flat.reshape(x.shape)
            elif part.channels_last:
                x = x.permute(0, 3, 1, 2)
            inputs[part.key] = x
        if self.features_extractor is None:
            columns = list(inputs.values())
            return columns[0] if len(columns) == 1 else th.cat(columns, dim=1)
        return inputs[None] if None in inputs else inputs  # type: ignore[return-value]

    def preprocess(
        self,
        observations: TensorObs,
        actions: Optional[th.Tensor] = None,
        next_observations: Optional[TensorObs] = None,
    ) -> List[TensorObs]:
        """
        The network's float inputs, before any features extractor: the observations (standardised but for
        images, which are scaled to [0, 1] and channel-first; flattened and concatenated without an extractor),
        the actions (for ``"sa"`` and ``"sas"``) and the next observations (for ``"ss"`` and ``"sas"``).

        :param observations: Batch of raw observations
        :param actions: Batch of actions in the env's action space
        :param next_observations: Batch of raw next observations
        :return: The inputs, in this order
        """
        parts = [self._preprocess_obs(observations, "observation")]
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
            parts.append(self._preprocess_obs(next_observations, "next observation"))
        sizes = [_batch_size(part) for part in parts]
        if any(size != sizes[0] for size in sizes):
            raise ValueError(f"Inputs have different batch sizes: {sizes}")
        return parts

    def embed(self, inputs: Sequence[TensorObs], absorbing: Optional[th.Tensor] = None) -> th.Tensor:
        """
        The MLP's input from :meth:`preprocess`'s: the observations' features (through the features extractor,
        if any), the actions and the next observations' features, concatenated, and the absorbing indicator.

        :param inputs: The output of :meth:`preprocess`
        :param absorbing: 1.0 for absorbing-state samples, 0.0 otherwise, shape ``(batch,)``
        """
        if self.features_extractor is None:
            features = th.cat(list(inputs), dim=1)  # type: ignore[arg-type]
        else:
            encoded = [self.features_extractor(inputs[0])]
            if self.uses_actions:
                encoded.append(inputs[1])  # type: ignore[arg-type]
            if self.uses_next_obs:
                encoded.append(self.features_extractor(inputs[-1]))
            features = th.cat(encoded, dim=1)
        if self.absorbing:
            if absorbing is None:  # no absorbing sample: the features as they are (x * 1.0 is x), and a zero flag
                return th.cat([features, th.zeros(features.shape[0], 1, device=features.device)], dim=1)
            flag = absorbing.reshape(-1, 1).float()
            features = th.cat([features * (1.0 - flag), flag], dim=1)
        return features

    def features(
        self,
        observations: TensorObs,
        actions: Optional[th.Tensor] = None,
        next_observations: Optional[TensorObs] = None,
        absorbing: Optional[th.Tensor] = None,
    ) -> th.Tensor:
        """
        The MLP's input: :meth:`embed` of :meth:`preprocess`.

        :param observations: Batch of raw observations
        :param actions: Batch of actions in the env's action space (for ``"sa"`` and ``"sas"``)
        :param next_observations: Batch of raw next observations (for ``"ss"`` and ``"sas"``)
        :param absorbing: 1.0 for absorbing-state samples, 0.0 otherwise, shape ``(batch,)``
        """
        return self.embed(self.preprocess(observations, actions, next_observations), absorbing)

    def penalty_inputs(self, inputs: List[TensorObs], features: th.Tensor) -> Union[th.Tensor, List[TensorObs]]:
        """
        What the gradient penalty interpolates, given :meth:`preprocess`'s ``inputs`` and :meth:`embed`'s
        ``features`` of a batch: the MLP's input vector without a features extractor, else the inputs before the
        extractor (images included), so that the extractor's slope is bounded too.
        """
        return features if self.features_extractor is None else inputs

    def penalty_logits(self, penalty_inputs: Union[th.Tensor, List[TensorObs]]) -> th.Tensor:
        """Logits of (interpolated) :meth:`penalty_inputs`, as real (non-absorbing) samples, shape ``(batch, 1)``."""
        if isinstance(penalty_inputs, th.Tensor):
            return self.net(penalty_inputs)
        return self.net(self.embed(penalty_inputs))

    def forward(
        self,
        observations: TensorObs,
        actions: Optional[th.Tensor] = None,
        next_observations: Optional[TensorObs] = None,
        absorbing: Optional[th.Tensor] = None,
    ) -> th.Tensor:
        """
        Logits of a batch, evaluated in chunks of ``eval_chunk_size`` samples (bounding the memory of big batches
        of images).

        :return: Logits of "expert", shape ``(batch,)``
        """
        n = _batch_size(observations)
        if n <= self.eval_chunk_size:
            return self.net(self.features(observations, actions, next_observations, absorbing)).squeeze(-1)
        chunks = []
        for start in range(0, n, self.eval_chunk_size):
            rows = slice(start, start + self.eval_chunk_size)
            chunks.append(
                self(
                    index_obs(observations, rows),
                    None if actions is None else actions[rows],
                    None if next_observations is None else index_obs(next_observations, rows),
                    None if absorbing is None else absorbing[rows],
                )
            )
        return th.cat(chunks)


def _batch_size(values: TensorObs) -> int:
    return int(next(iter(values.values())).shape[0]) if isinstance(values, dict) else int(values.shape[0])
