"""
Observation inputs of the discriminator, as SB3 policies read them: which parts are images, SB3's
features extractors (``NatureCNN`` for images, ``CombinedExtractor`` for Dict spaces holding images)
and how a saved file names an extractor without running code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Type

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import (
    get_flattened_obs_dim,
    is_image_space,
    is_image_space_channels_first,
    preprocess_obs,
)
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor, NatureCNN
from torch import nn

# The extractors a saved reward model may name and load() rebuilds by itself (any other class must be passed to load())
KNOWN_FEATURES_EXTRACTORS: Dict[str, Type[BaseFeaturesExtractor]] = {
    f"{cls.__module__}.{cls.__qualname__}": cls for cls in (FlattenExtractor, NatureCNN, CombinedExtractor)
}


@dataclass(frozen=True)
class ObservationPart:
    """
    One array of an observation: the whole observation, or one key of a ``Dict`` observation.

    :param key: The key in a ``Dict`` observation (``None`` for the whole observation)
    :param space: Its space
    :param image: Whether it is an image (``is_image_space``): scaled to [0, 1] for uint8, never standardised
    :param channels_last: An image stored height x width x channels, given to the extractor channel-first
    :param start: First index of its flattened features in the standardisation statistics (non-images)
    :param stop: One past its last index there
    """

    key: Optional[str]
    space: spaces.Space
    image: bool
    channels_last: bool
    start: int
    stop: int


def _is_image(space: spaces.Space, normalized_image: bool) -> bool:
    return is_image_space(space, check_channels=False, normalized_image=normalized_image)


def holds_images(observation_space: spaces.Space, normalized_image: bool = False) -> bool:
    """Whether ``observation_space`` is an image space, or a ``Dict`` space with an image among its keys."""
    if isinstance(observation_space, spaces.Dict):
        return any(_is_image(space, normalized_image) for space in observation_space.spaces.values())
    return _is_image(observation_space, normalized_image)


def default_features_extractor(observation_space: spaces.Space) -> Optional[Type[BaseFeaturesExtractor]]:
    """
    The discriminator's features extractor when none is given, as SB3's ``CnnPolicy`` and ``MultiInputPolicy`` choose:
    ``NatureCNN`` for an image space, ``CombinedExtractor`` for a ``Dict`` space holding an image, and ``None`` (an MLP
    on the flattened observation) otherwise.
    """
    if isinstance(observation_space, spaces.Dict):
        return CombinedExtractor if holds_images(observation_space) else None
    return NatureCNN if holds_images(observation_space) else None


def observation_parts(
    observation_space: spaces.Space, find_images: bool, normalized_image: bool = False
) -> List[ObservationPart]:
    """
    The arrays of an observation, in the order SB3 concatenates them (the ``Dict`` space's key order).

    :param observation_space: The observation space (a ``Dict`` of non-``Dict`` spaces, or any other supported space)
    :param find_images: Mark images (with a features extractor); without one, every part is flattened and standardised
    :param normalized_image: Treat float 3-d ``Box`` spaces as images too (SB3's extractors' ``normalized_image``)
    :return: The parts, with the slices of the non-image parts in the standardisation statistics
    """
    if isinstance(observation_space, spaces.Dict):
        named: List[Any] = list(observation_space.spaces.items())
        nested = [key for key, space in named if isinstance(space, spaces.Dict)]
        if nested:
            raise TypeError(f"Nested Dict observation spaces are not supported, got Dict spaces under keys {nested}")
    else:
        named = [(None, observation_space)]
    parts, start = [], 0
    for key, space in named:
        image = find_images and _is_image(space, normalized_image)
        channels_last = image and not is_image_space_channels_first(space)
        stop = start if image else start + int(get_flattened_obs_dim(space))
        parts.append(ObservationPart(key, space, image, channels_last, start, stop))
        start = stop
    return parts


def _channels_first(space: spaces.Box) -> spaces.Box:
    """An image space with its channels moved first (what ``VecTransposeImage`` gives SB3's policies)."""
    low, high = (np.transpose(bound, (2, 0, 1)) for bound in (space.low, space.high))
    return spaces.Box(low=low, high=high, dtype=space.dtype)  # type: ignore[arg-type]


def extractor_space(observation_space: spaces.Space, parts: List[ObservationPart]) -> spaces.Space:
    """The observation space the features extractor is built for: channel-last images made channel-first."""
    if isinstance(observation_space, spaces.Dict):
        return spaces.Dict(
            {part.key: _channels_first(part.space) if part.channels_last else part.space for part in parts}  # type: ignore[misc, arg-type]
        )
    return _channels_first(observation_space) if parts[0].channels_last else observation_space  # type: ignore[arg-type]


def preprocess_part(values: th.Tensor, part: ObservationPart, what: str) -> th.Tensor:
    """
    One part of a batch of observations preprocessed as SB3 does (one-hot for discrete spaces, uint8 images
    scaled to [0, 1], floats otherwise), with a check of its size.

    :param values: The batch of that part's raw values
    :param part: The part
    :param what: How to call the values in error messages
    :return: Float tensor of shape ``(batch, *shape)``
    """
    space = part.space
    if isinstance(space, spaces.Discrete):
        values = values.reshape(-1)
    elif isinstance(space, spaces.MultiDiscrete):
        values = values.reshape(-1, len(space.nvec))
    name = what if part.key is None else f"{what}[{part.key!r}]"
    if part.image and tuple(values.shape[1:]) != tuple(space.shape):  # type: ignore[arg-type]
        raise ValueError(f"Expected {name} of shape {tuple(space.shape)} (space {space}), got {tuple(values.shape)}")  # type: ignore[arg-type]
    processed = preprocess_obs(values, space, normalize_images=True)
    assert isinstance(processed, th.Tensor)
    expected = int(get_flattened_obs_dim(space))
    if processed[0].numel() != expected:
        raise ValueError(
            f"Expected {expected} {name} features per sample (space {space}), got {tuple(processed.shape)} after preprocessing"
        )
    return processed


def apply_spectral_norm(module: nn.Module) -> None:
    """Spectral normalisation of every linear and convolution layer of ``module`` (in place)."""
    for layer in [m for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]:
        nn.utils.parametrizations.spectral_norm(layer)


def build_features_extractor(
    cls: Type[BaseFeaturesExtractor], observation_space: spaces.Space, kwargs: Dict[str, Any]
) -> BaseFeaturesExtractor:
    """``cls(observation_space, **kwargs)``, with a clear error when the extractor refuses the space."""
    try:
        return cls(observation_space, **kwargs)
    except (AssertionError, RuntimeError, ValueError, TypeError) as error:
        hint = " (NatureCNN's strides need images of at least 36x36 pixels)" if cls in (NatureCNN, CombinedExtractor) else ""
        raise ValueError(
            f"Cannot build the discriminator's features extractor {cls.__name__} with {kwargs} for the observation "
            f"space {observation_space}{hint}: {error}. Pass features_extractor_class (and features_extractor_kwargs) "
            "for an extractor that suits it"
        ) from error


def extractor_name(cls: Optional[type]) -> Optional[str]:
    """The import path a saved file records for a features extractor class (``None`` stays ``None``)."""
    return None if cls is None else f"{cls.__module__}.{cls.__qualname__}"


def extractor_from_name(name: Optional[str], given: Optional[type] = None) -> Optional[Type[BaseFeaturesExtractor]]:
    """
    The features extractor class a saved file names. SB3's known extractors (:data:`KNOWN_FEATURES_EXTRACTORS`) are
    rebuilt from their name; any other must be ``given`` (a file never makes ``load`` import code).

    :param name: The recorded import path (``None``: no extractor)
    :param given: The class the caller passed to ``load``, if any; it must have the recorded import path
    :return: The class
    """
    if given is not None:
        if extractor_name(given) != name:
            recorded = "without a features extractor" if name is None else f"with the features extractor {name}"
            raise ValueError(
                f"The file's discriminator was built {recorded}, got features_extractor_class={extractor_name(given)}"
            )
        return given  # type: ignore[return-value]
    if name is None:
        return None
    if name in KNOWN_FEATURES_EXTRACTORS:
        return KNOWN_FEATURES_EXTRACTORS[name]
    raise ValueError(
        f"The file's discriminator uses the features extractor {name}, which load() does not import by itself (a file "
        f"must not choose code to run; it rebuilds only {sorted(KNOWN_FEATURES_EXTRACTORS)}): pass the class, "
        "GailRewardModel.load(path, features_extractor_class=...)"
    )


def to_plain(value: Any, name: str) -> Any:
    """
    ``value`` as plain data that a reward model file can hold (NumPy scalars become Python numbers, tuples lists).

    :raises TypeError: for anything else than numbers, strings, ``None``, and lists, tuples and dicts of them
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        return [to_plain(item, f"{name}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, dict):
        bad_keys = [key for key in value if not isinstance(key, str)]
        if bad_keys:
            raise TypeError(f"Cannot save {name}: its keys must be strings, got {bad_keys}")
        return {key: to_plain(item, f"{name}[{key!r}]") for key, item in value.items()}
    if value is not None and not isinstance(value, (bool, int, float, str)):
        raise TypeError(
            f"Cannot save {name}={value!r}: a reward model file holds plain values only (numbers, strings, lists, "
            "dicts), so that loading it runs no code"
        )
    return value
