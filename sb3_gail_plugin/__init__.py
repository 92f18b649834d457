"""sb3-gail-plugin: GAIL for Stable-Baselines3 algorithms (off-policy and on-policy), inside ``model.learn()``."""

from sb3_gail_plugin.buffers import DictGailReplayBuffer, GailReplayBuffer
from sb3_gail_plugin.callbacks import GailCallback, GailCheckpointCallback
from sb3_gail_plugin.demonstrations import collect_demonstrations, load_demonstrations, save_demonstrations
from sb3_gail_plugin.discriminator import Discriminator
from sb3_gail_plugin.minari_datasets import save_minari_dataset
from sb3_gail_plugin.reward_model import GailRewardModel
from sb3_gail_plugin.transitions import Transitions
from sb3_gail_plugin.vec_env import GailVecEnvWrapper

__version__ = "0.1.0"

__all__ = [
    "DictGailReplayBuffer",
    "Discriminator",
    "GailCallback",
    "GailCheckpointCallback",
    "GailReplayBuffer",
    "GailRewardModel",
    "GailVecEnvWrapper",
    "Transitions",
    "collect_demonstrations",
    "load_demonstrations",
    "save_demonstrations",
    "save_minari_dataset",
]
