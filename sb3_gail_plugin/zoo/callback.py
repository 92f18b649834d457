"""The GAIL callback for rl-zoo3: demonstrations from its arguments or an environment variable, relabelling buffer included."""

from __future__ import annotations

import importlib
import os
from typing import Any, Dict, Optional, Type

from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from sb3_gail_plugin.buffers import DictGailReplayBuffer, GailRelabelMixin, GailReplayBuffer
from sb3_gail_plugin.callbacks import GailCallback
from sb3_gail_plugin.demonstrations import DemonstrationSource, load_demonstrations

DEMONSTRATIONS_ENV_VAR = "GAIL_DEMONSTRATIONS"

# SB3's default replay buffers, and the relabelling buffer that takes each one's place
_GAIL_BUFFERS: Dict[type, Type[ReplayBuffer]] = {ReplayBuffer: GailReplayBuffer, DictReplayBuffer: DictGailReplayBuffer}


def _class_by_name(name: str) -> type:
    """The class at a dotted import path (``package.module.Class``), as rl-zoo3 imports callbacks by name."""
    module_name, _, class_name = name.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), class_name) if module_name else None
    except (ImportError, AttributeError):
        found = None
    if not isinstance(found, type):
        raise ValueError(f"features_extractor_class must name a class as package.module.Class, got {name!r}")
    return found


class ZooGailCallback(GailCallback):
    """
    :class:`~sb3_gail_plugin.GailCallback` for rl-zoo3, which builds callbacks by name with keyword
    arguments (``callback:`` in a YAML or Python conf file) and cannot name a replay buffer class
    from outside its own namespace in YAML:

    - the demonstrations come from ``demonstrations`` or, when it is left out, from the path in the
      ``GAIL_DEMONSTRATIONS`` environment variable; they are loaded when the callback is built, so
      that a wrong path fails before any env is stepped;
    - for an off-policy algorithm whose replay buffer is SB3's default one (``ReplayBuffer`` or
      ``DictReplayBuffer``) and still empty, it puts the relabelling buffer
      (``GailReplayBuffer`` / ``DictGailReplayBuffer``) in its place at training start, with the
      model's buffer arguments, and sets ``model.replay_buffer_class`` so that a saved model reloads
      with it. A buffer that already holds transitions is refused (they would be lost); any other
      buffer class is left to ``GailCallback``, which accepts only the relabelling buffers.

    YAML (rl-zoo3's own format)::

        CartPole-v1:
          # ... rl-zoo3's settings
          callback:
            - sb3_gail_plugin.zoo.ZooGailCallback:
                demonstrations: demos/CartPole-v1.npz
                learning_rate: 0.0003
                # a class by its import path, as rl-zoo3 names callbacks and wrappers
                features_extractor_class: stable_baselines3.common.torch_layers.NatureCNN

    :param demonstrations: Expert demonstrations (anything :func:`~sb3_gail_plugin.load_demonstrations`
        reads); ``None`` (default): the path in the ``GAIL_DEMONSTRATIONS`` environment variable
    :param verbose: Verbosity level of :class:`~sb3_gail_plugin.GailCallback`
    :param reward_model_kwargs: Arguments of :class:`~sb3_gail_plugin.GailRewardModel`
    """

    def __init__(
        self, demonstrations: Optional[DemonstrationSource] = None, verbose: int = 0, **reward_model_kwargs: Any
    ) -> None:
        if demonstrations is None:
            demonstrations = os.environ.get(DEMONSTRATIONS_ENV_VAR) or None
        if demonstrations is None:
            raise ValueError(
                "ZooGailCallback needs expert demonstrations: expected the callback argument demonstrations=PATH or the "
                f"environment variable {DEMONSTRATIONS_ENV_VAR}=PATH, got neither"
            )
        self.demonstrations_source = demonstrations
        extractor = reward_model_kwargs.get("features_extractor_class")
        if isinstance(extractor, str):  # YAML names classes: "stable_baselines3.common.torch_layers.NatureCNN"
            reward_model_kwargs["features_extractor_class"] = _class_by_name(extractor)
        super().__init__(load_demonstrations(demonstrations), verbose, **reward_model_kwargs)

    def _on_training_start(self) -> None:
        if isinstance(self.model, OffPolicyAlgorithm):
            self._install_replay_buffer(self.model)
        super()._on_training_start()

    def _install_replay_buffer(self, model: OffPolicyAlgorithm) -> None:
        buffer = model.replay_buffer
        gail_buffer_class = _GAIL_BUFFERS.get(type(buffer))
        if buffer is None or isinstance(buffer, GailRelabelMixin) or gail_buffer_class is None:
            return
        if buffer.size() > 0:
            raise ValueError(
                f"ZooGailCallback replaces the model's {type(buffer).__name__} with a {gail_buffer_class.__name__} only "
                f"while it is empty, but it holds {buffer.size()} transitions per env: create the model with "
                f"replay_buffer_class={gail_buffer_class.__name__} (e.g. in a Python conf file) to keep them"
            )
        model.replay_buffer = gail_buffer_class(
            model.buffer_size,
            model.observation_space,
            model.action_space,
            device=model.device,
            n_envs=model.n_envs,
            optimize_memory_usage=model.optimize_memory_usage,
            **model.replay_buffer_kwargs,
        )
        model.replay_buffer_class = gail_buffer_class
        self._info(f"GAIL: replaced the model's {type(buffer).__name__} with a {gail_buffer_class.__name__}")
