"""
rl-zoo3 conf for GAIL with SAC: rl-zoo3's tuned SAC settings for every env it has them for, plus the GAIL callback.

    GAIL_DEMONSTRATIONS=demos.npz python -m rl_zoo3.train --algo sac --env ENV --conf-file sb3_gail_plugin.zoo.sac
"""

from sb3_gail_plugin.zoo.conf import zoo_hyperparams

hyperparams = zoo_hyperparams("sac")
