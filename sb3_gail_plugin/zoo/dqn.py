"""
rl-zoo3 conf for GAIL with DQN: rl-zoo3's tuned DQN settings for every env it has them for, plus the GAIL callback.

    GAIL_DEMONSTRATIONS=demos.npz python -m rl_zoo3.train --algo dqn --env ENV --conf-file sb3_gail_plugin.zoo.dqn
"""

from sb3_gail_plugin.zoo.conf import zoo_hyperparams

hyperparams = zoo_hyperparams("dqn")
