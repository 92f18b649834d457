"""Smoke test of an installed sb3-gail-plugin (scripts/package.sh runs it in a fresh venv with the built wheel)."""

import sysconfig
from importlib import metadata, resources
from pathlib import Path

import numpy as np
from stable_baselines3 import DQN

import sb3_gail_plugin
from sb3_gail_plugin import GailCallback, GailReplayBuffer, collect_demonstrations

site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
package_dir = Path(sb3_gail_plugin.__file__).resolve().parent
assert package_dir.parent == site_packages, f"imported {package_dir}, not the installed wheel in {site_packages}"
assert metadata.version("sb3-gail-plugin") == sb3_gail_plugin.__version__
assert resources.files("sb3_gail_plugin").joinpath("py.typed").is_file(), "py.typed is missing from the wheel"


class BalancePole:
    """A scripted CartPole expert: push the cart towards the side the pole falls to."""

    def predict(self, obs, deterministic=True):
        return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64), None


demonstrations = collect_demonstrations(BalancePole(), "CartPole-v1", n_episodes=2, seed=0)

# the two lines
model = DQN("MlpPolicy", "CartPole-v1", replay_buffer_class=GailReplayBuffer, learning_starts=100, seed=0)
model.learn(500, callback=(gail := GailCallback(demonstrations)))

assert gail.reward_model is not None and gail.reward_model.n_updates > 0, "the discriminator never trained"
print(
    f"sb3-gail-plugin {sb3_gail_plugin.__version__} from {package_dir}: {len(demonstrations)} expert transitions, "
    f"GAIL-DQN ran {model.num_timesteps} env steps, {gail.reward_model.n_updates} discriminator updates, "
    f"disc_loss {gail.last_stats['disc_loss']:.3f}"
)
