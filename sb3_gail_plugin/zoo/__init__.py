"""
GAIL with rl-zoo3 (``pip install 'sb3-gail-plugin[zoo]'``).

Train with the shipped conf files, one per algorithm (rl-zoo3's tuned settings for every env, with
:class:`ZooGailCallback` added; the demonstrations path in ``GAIL_DEMONSTRATIONS``)::

    GAIL_DEMONSTRATIONS=demos.npz python -m rl_zoo3.train --algo dqn --env CartPole-v1 --conf-file sb3_gail_plugin.zoo.dqn
    GAIL_DEMONSTRATIONS=demos.npz python -m rl_zoo3.train --algo sac --env Pendulum-v1 --conf-file sb3_gail_plugin.zoo.sac
    GAIL_DEMONSTRATIONS=demos.npz python -m rl_zoo3.train --algo ppo --env CartPole-v1 --conf-file sb3_gail_plugin.zoo.ppo

or add ``callback: [sb3_gail_plugin.zoo.ZooGailCallback: {demonstrations: demos.npz}]`` to an entry of
a YAML conf file of your own, or build a Python conf file with :func:`zoo_hyperparams`.
"""

from sb3_gail_plugin.zoo.callback import DEMONSTRATIONS_ENV_VAR, ZooGailCallback
from sb3_gail_plugin.zoo.conf import GAIL_OVERRIDES, zoo_hyperparams, zoo_hyperparams_path

__all__ = ["DEMONSTRATIONS_ENV_VAR", "GAIL_OVERRIDES", "ZooGailCallback", "zoo_hyperparams", "zoo_hyperparams_path"]
