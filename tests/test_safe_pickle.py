"""Demonstration pickles are untrusted input: loading one must never run code."""

import contextlib
import os
import pickle

import numpy as np
import pytest
import torch as th

from sb3_gail_plugin import load_demonstrations
from sb3_gail_plugin.safe_pickle import UnsafePickleError


class _RunsCommand:
    """A pickle payload that runs a shell command when unpickled."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _RunsThroughTorchStorage:
    """A payload hidden in a tensor storage's bytes, which ``torch.storage._load_from_bytes`` loads with weights_only=False."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return th.storage._load_from_bytes, (pickle.dumps(_RunsCommand(self.command), protocol=2),)


def _rows(n: int = 6, as_tensor: bool = False):
    rows = []
    for i in range(n):
        obs = np.array([i, -i], dtype=np.float32)
        row = dict(obs=obs, action=np.int64(i % 2), next_obs=obs + 1, reward=1.0, done=i == n - 1)
        if as_tensor:
            row.update(
                obs=th.as_tensor(obs), action=th.tensor([i % 2]), next_obs=th.as_tensor(obs + 1), reward=th.tensor([1.0])
            )
        rows.append(row)
    return rows


@pytest.mark.parametrize("payload", [_RunsCommand, _RunsThroughTorchStorage])
def test_malicious_pickle_is_refused_without_running_code(tmp_path, payload):
    marker = tmp_path / "pwned"
    rows = _rows()
    rows[2]["obs"] = payload(f"touch {marker}")
    path = tmp_path / "expert_data.pkl"
    with open(path, "wb") as file:
        pickle.dump(rows, file)
    with pytest.raises(UnsafePickleError, match=r"(posix|os)\.system|torch\.load\(weights_only=True\)") as error:
        load_demonstrations(path)
    assert not marker.exists()
    assert str(path) in str(error.value) and "arbitrary code" in str(error.value)
    assert isinstance(error.value, ValueError) and isinstance(error.value, pickle.UnpicklingError)
    # the payload is live: a plain pickle.load of the same file runs the command
    with open(path, "rb") as file, contextlib.suppress(RuntimeError):  # torch then finds no magic number
        pickle.load(file)
    assert marker.exists()


@pytest.mark.parametrize("name", ["builtins eval", "builtins getattr", "builtins __import__", "subprocess Popen"])
def test_dangerous_globals_are_refused(tmp_path, name):
    module, attribute = name.split()
    path = tmp_path / "expert_data.pkl"
    # protocol 0: GLOBAL module\nname\n, then call it with one string argument
    path.write_bytes(f"c{module}\n{attribute}\n(S'1'\ntR.".encode())
    with pytest.raises(UnsafePickleError, match=f"global {module}.{attribute}"):
        load_demonstrations(path)


@pytest.mark.parametrize(
    "program, refused",
    [
        ("c__builtin__\nlist\n(c__builtin__\nrange\n(I1000\ntRtR.", "global __builtin__.list"),  # list(range(n))
        ("cbuiltins\nbytes\n(I1000\ntR.", "bytes"),  # bytes(n): n zero bytes
        ("c__builtin__\nbytearray\n(I1000\ntR.", "bytearray"),
    ],
)
def test_pickles_that_would_allocate_from_a_size_are_refused(tmp_path, program, refused):
    """A 40-byte file must not make the loader allocate gigabytes: no list(range(n)), no bytes(n)."""
    path = tmp_path / "expert_data.pkl"
    path.write_bytes(program.encode())
    with pytest.raises(UnsafePickleError, match=refused):
        load_demonstrations(path)


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_di_engine_pickles_with_numpy_or_torch_values_load(tmp_path, monkeypatch, protocol, as_tensor):
    rows = _rows(as_tensor=as_tensor)
    rows[0]["reward"] = np.float32(0.5)  # a NumPy scalar
    if as_tensor:
        rows[1]["obs"] = th.tensor([[0.0, 1.0, 9.0]])[0, 1:].requires_grad_()  # a view with autograd, from a bigger storage
    path = tmp_path / "expert_data.pkl"
    with open(path, "wb") as file:
        pickle.dump(rows, file, protocol=protocol)

    def never(_):
        raise AssertionError("torch.storage._load_from_bytes loads with weights_only=False")

    monkeypatch.setattr(th.storage, "_load_from_bytes", never)
    demos = load_demonstrations(path, timeouts=[False])  # one episode, a termination
    expected_obs = np.array([[i, -i] for i in range(6)], dtype=np.float32)
    if as_tensor:
        expected_obs[1] = [1.0, 9.0]
    np.testing.assert_array_equal(demos.observations, expected_obs)
    np.testing.assert_array_equal(demos.actions.reshape(-1), [0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(demos.rewards, [0.5, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(demos.dones, [False] * 5 + [True])


def test_pickle_that_is_not_a_list_of_transitions(tmp_path):
    path = tmp_path / "expert_data.pkl"
    with open(path, "wb") as file:
        pickle.dump({"obs": np.zeros((3, 2))}, file)
    with pytest.raises(ValueError, match="holds a pickled dict, expected a list of DI-engine transition dicts"):
        load_demonstrations(path)
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match=r"neither a \.npz demonstrations file nor a pickle"):
        load_demonstrations(path)
