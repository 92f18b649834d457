"""
Relabelling, expert mixing and ``VecNormalize`` normalisation stay on the model's device: no tensor goes back to the
host while a replay buffer serves batches. The ``device`` tests need CUDA (skipped without it); the same checks run
on the CPU in CI, where a host round trip still shows up as a call to ``.cpu()``, ``.numpy()``, ``.item()``...
"""

from typing import Any, List

import pytest
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from sb3_gail_plugin import GailCallback, GailReplayBuffer, Transitions
from tests.pendulum_data import random_pendulum_demos

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.device)]


def _pendulum_demos() -> Transitions:
    demos = random_pendulum_demos(200)
    demos.dones[::50] = True  # expert terminations: the absorbing fold runs on mixed-in expert rows too
    return demos


def _forbid_host_transfers(monkeypatch: pytest.MonkeyPatch, calls: List[str]) -> None:
    """Record, and refuse, every way a tensor's values reach the host."""

    def refuse(name: str) -> Any:
        def method(self: th.Tensor, *args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"Tensor.{name}() while sampling: a device-to-host transfer")

        return method

    for name in ["cpu", "numpy", "item", "tolist", "__array__", "__float__", "__int__", "__bool__"]:
        monkeypatch.setattr(th.Tensor, name, refuse(name))


@pytest.mark.parametrize("planned", [False, True], ids=["one-by-one", "planned"])
@pytest.mark.parametrize("device", DEVICES)
def test_sampling_keeps_relabelling_mixing_and_normalisation_on_the_models_device(device, planned, monkeypatch):
    """
    Both ways a ``train()`` gets its batches: one ``sample()`` at a time (SAC's default single gradient step), and
    the planned chunks ``GailCallback`` announces for several gradient steps, relabelled together.
    """
    if device == "cuda" and not th.cuda.is_available():
        pytest.skip("needs a CUDA device")
    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=1, seed=0))
    model = SAC(
        "MlpPolicy",
        env,
        replay_buffer_class=GailReplayBuffer,
        learning_starts=100,
        buffer_size=1000,
        batch_size=64,
        policy_kwargs=dict(net_arch=[16]),
        device=device,
        seed=0,
    )
    callback = GailCallback(_pendulum_demos(), update_per_collect=2, batch_size=32, policy_expert_fraction=0.25)
    model.learn(300, callback=callback)
    reward_model = callback.reward_model
    assert reward_model.n_updates > 0
    assert {p.device.type for p in reward_model.discriminator.parameters()} == {th.device(device).type}

    calls: List[str] = []
    with monkeypatch.context() as patch:
        if planned:
            model.replay_buffer.plan_samples(3, 64)
        _forbid_host_transfers(patch, calls)
        batches = [model.replay_buffer.sample(64, env=model.get_vec_normalize_env()) for _ in range(3)]
        assert model.replay_buffer._plan.served == (3 if planned else 0)  # the planned chunk served all three
    assert calls == []
    for batch in batches:
        for tensor in batch[:5]:
            assert tensor.device.type == th.device(device).type
