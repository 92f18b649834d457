"""
rl-zoo3 conf for GAIL with PPO: rl-zoo3's tuned PPO settings for every env it has them for, plus the GAIL callback.

    GAIL_DEMONSTRATIONS=demos.npz python -m rl_zoo3.train --algo ppo --env ENV --conf-file sb3_gail_plugin.zoo.ppo
"""

from sb3_gail_plugin.zoo.conf import zoo_hyperparams

hyperparams = zoo_hyperparams("ppo")
