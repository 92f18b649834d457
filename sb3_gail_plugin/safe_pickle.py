"""A restricted unpickler for demonstration files, which are untrusted input."""

from __future__ import annotations

import builtins
import codecs
import collections
import functools
import importlib
import io
import pickle
from typing import IO, Any, Callable, Dict, Tuple

import numpy as np
import torch as th

# Python containers and numbers are pickle opcodes; these are the only builtins a pickle calls for them.
# Neither ``list``/``range`` nor ``bytes(int)``: a 40-byte pickle could then allocate gigabytes.
ALLOWED_BUILTINS = ("set", "frozenset", "complex")


def _bytes_like(kind: type) -> Callable[..., Any]:
    """``bytes``/``bytearray`` from bytes-like data only (protocols 0-2 pickle ``b""`` as ``bytes()``), never from a size."""

    def build(*args: Any) -> Any:
        if any(isinstance(arg, int) for arg in args[:1]):
            raise UnsafePickleError(f"Refused {kind.__name__}(<size>) in a demonstration pickle: it could exhaust memory")
        return kind(*args)

    return build


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle refers to a global that demonstration files never need (and that could run code)."""


def _numpy_private(module: str, name: str) -> Any:
    """``numpy._core`` (NumPy 2) was ``numpy.core`` (NumPy 1); pickles of either may name either."""
    for prefix in ("numpy._core.", "numpy.core."):
        try:
            return getattr(importlib.import_module(prefix + module), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"numpy.core.{module}.{name} is not available in NumPy {np.__version__}")


def _load_storage_from_bytes(data: bytes) -> Any:
    """
    Replace ``torch.storage._load_from_bytes``, which calls ``torch.load(weights_only=False)``:
    a tensor's storage is rebuilt with ``torch.load(weights_only=True)`` instead, on the CPU.
    """
    try:
        return th.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafePickleError(
            "Refused a tensor's storage that torch.load(weights_only=True) refuses (see the error above): "
            "loading it could run arbitrary code"
        ) from error


def _allowed_globals() -> Dict[Tuple[str, str], Callable[[], Any]]:
    """The globals a DI-engine pickle needs, each with a function that returns it (resolved on use)."""
    allowed: Dict[Tuple[str, str], Callable[[], Any]] = {}
    for name in ALLOWED_BUILTINS:
        # "__builtin__": the name in protocol 0-2 pickles written by Python 2
        allowed[("builtins", name)] = allowed[("__builtin__", name)] = functools.partial(getattr, builtins, name)
    for name, kind in (("bytes", bytes), ("bytearray", bytearray)):
        allowed[("builtins", name)] = allowed[("__builtin__", name)] = functools.partial(_bytes_like, kind)
    allowed[("_codecs", "encode")] = lambda: codecs.encode  # bytes in protocol 2 pickles
    allowed[("collections", "OrderedDict")] = lambda: collections.OrderedDict  # a tensor's backward hooks
    allowed[("numpy", "ndarray")] = lambda: np.ndarray
    allowed[("numpy", "dtype")] = lambda: np.dtype
    for prefix in ("numpy._core", "numpy.core"):
        allowed[(prefix + ".multiarray", "_reconstruct")] = lambda: _numpy_private("multiarray", "_reconstruct")
        allowed[(prefix + ".multiarray", "scalar")] = lambda: _numpy_private("multiarray", "scalar")
        allowed[(prefix + ".numeric", "_frombuffer")] = lambda: _numpy_private("numeric", "_frombuffer")
    allowed[("torch._utils", "_rebuild_tensor_v2")] = lambda: th._utils._rebuild_tensor_v2
    allowed[("torch._utils", "_rebuild_parameter")] = lambda: th._utils._rebuild_parameter
    allowed[("torch.storage", "_load_from_bytes")] = lambda: _load_storage_from_bytes
    return allowed


_ALLOWED_GLOBALS = _allowed_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """
    An unpickler that only rebuilds what demonstration pickles (DI-engine's lists of transition
    dicts) hold: Python containers and numbers, NumPy arrays, dtypes and scalars, torch tensors.
    Any other global (a function or class that could run code) raises :class:`UnsafePickleError`.

    :param file: A binary file open for reading
    """

    def find_class(self, module: str, name: str) -> Any:
        resolve = _ALLOWED_GLOBALS.get((module, name))
        if resolve is None:
            raise UnsafePickleError(
                f"Refused to unpickle the global {module}.{name}: a demonstration pickle may hold only Python containers "
                "and numbers, NumPy arrays and scalars, and torch tensors; any other global could run arbitrary code "
                "when loaded. If you trust the file, unpickle it yourself and pass its content to load_demonstrations "
                "(and save it in our pickle-free .npz format with save_demonstrations)"
            )
        return resolve()


def safe_load(file: IO[bytes]) -> Any:
    """
    Unpickle ``file`` with :class:`RestrictedUnpickler`.

    :param file: A binary file open for reading
    :return: The unpickled object
    """
    return RestrictedUnpickler(file).load()
