"""The two-line usage: an SB3 DQN script plus GAIL. Needs demos/CartPole-v1.npz
(make it with: python -m sb3_gail_plugin.experts --env CartPole-v1)."""

from stable_baselines3 import DQN

from sb3_gail_plugin import GailCallback, GailReplayBuffer, load_demonstrations
from sb3_gail_plugin.hyperparams import GAIL_DQN_CARTPOLE

model = DQN("MlpPolicy", "CartPole-v1", replay_buffer_class=GailReplayBuffer, **GAIL_DQN_CARTPOLE)
model.learn(50_000, callback=GailCallback(load_demonstrations("demos/CartPole-v1.npz")))
