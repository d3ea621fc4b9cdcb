"""Saving and loading objects by kind, safely: artifacts and checkpoints.

Kinds, their file suffix, what they hold and how they load:

- ``json`` (``.json``): mappings, lists, scalars; ``json``.
- ``npy`` (``.npy``): a NumPy array; ``numpy.load(allow_pickle=False)``.
- ``npz`` (``.npz``): a mapping of names to NumPy arrays; the same.
- ``text`` (``.txt``): a ``str``; ``bytes`` (``.bin``): ``bytes``.
- ``png`` (``.png``): a matplotlib figure; loads as the image's NumPy array.
- ``torch`` (``.pt``): torch tensors, mappings of them, a module's ``state_dict``;
  ``torch.load(weights_only=True)``.
- ``tree`` (``.tree.npz``): checkpoints, nested dicts/lists of scalars, strings and arrays,
  as JSON plus arrays in one ``.npz``; ``numpy.load(allow_pickle=False)``.
- ``pickle`` (``.pkl``): anything, only when asked for explicitly, both ways.

Nothing here runs code that a file supplies, except ``pickle`` when the caller asked for it:
a log directory may come from someone else.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SUFFIXES = {
    "json": ".json",
    "npy": ".npy",
    "npz": ".npz",
    "text": ".txt",
    "bytes": ".bin",
    "png": ".png",
    "torch": ".pt",
    "tree": ".tree.npz",
    "pickle": ".pkl",
}
KINDS_BY_SUFFIX = {suffix: kind for kind, suffix in SUFFIXES.items()}


class UnsafeLoadError(Exception):
    """Loading this file would run code from it; the caller must ask for pickle."""


def _is_torch(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    return isinstance(obj, torch.Tensor | torch.nn.Module) or (
        isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


def _is_figure(obj: Any) -> bool:
    figure = sys.modules.get("matplotlib.figure")
    return figure is not None and isinstance(obj, figure.Figure)


def _is_ndarray(obj: Any) -> bool:
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(obj, numpy.ndarray)


def kind_of(obj: Any) -> str:
    """The kind an object is saved as when the caller does not say."""
    if isinstance(obj, str):
        return "text"
    if isinstance(obj, bytes | bytearray):
        return "bytes"
    if _is_ndarray(obj):
        return "npy"
    if _is_figure(obj):
        return "png"
    if _is_torch(obj):
        return "torch"
    if isinstance(obj, Mapping) and obj and all(_is_ndarray(v) for v in obj.values()):
        return "npz"
    if obj is None or isinstance(obj, bool | int | float | list | tuple | Mapping):
        return "json"
    raise TypeError(
        f"cannot choose how to save a {type(obj).__name__}: use kind='pickle' if you trust "
        "whoever will load it, or convert it to arrays, mappings or text"
    )


def encode(obj: Any, kind: str) -> bytes:
    """The bytes of ``obj`` saved as ``kind``."""
    if kind == "json":
        return json.dumps(obj, ensure_ascii=False, default=_json_default).encode("utf-8")
    if kind == "text":
        if not isinstance(obj, str):
            raise TypeError(f"kind='text' needs a str, got {type(obj).__name__}")
        return obj.encode("utf-8")
    if kind == "bytes":
        return bytes(obj)
    buffer = io.BytesIO()
    if kind == "npy":
        import numpy

        numpy.save(buffer, numpy.asarray(obj), allow_pickle=False)
    elif kind == "npz":
        import numpy

        numpy.savez(buffer, **{str(k): numpy.asarray(v) for k, v in obj.items()})
    elif kind == "png":
        obj.savefig(buffer, format="png")
    elif kind == "torch":
        import torch

        torch.save(obj.state_dict() if isinstance(obj, torch.nn.Module) else obj, buffer)
    elif kind == "tree":
        _save_tree(obj, buffer)
    elif kind == "pickle":
        pickle.dump(obj, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    else:
        raise ValueError(f"unknown kind {kind!r}; known kinds: {', '.join(SUFFIXES)}")
    return buffer.getvalue()


def decode(path: Path, kind: str, allow_pickle: bool = False) -> Any:
    """Load a file saved as ``kind``; pickle only when ``allow_pickle``."""
    if kind == "json":
        return json.loads(path.read_bytes())
    if kind == "text":
        return path.read_text(encoding="utf-8")
    if kind == "bytes":
        return path.read_bytes()
    if kind in ("npy", "npz"):
        import numpy

        loaded = numpy.load(path, allow_pickle=False)
        if kind == "npz":
            with loaded:
                return {k: loaded[k] for k in loaded.files}
        return loaded
    if kind == "png":
        import matplotlib.image

        return matplotlib.image.imread(path, format="png")
    if kind == "torch":
        import torch

        try:
            return torch.load(path, weights_only=True)
        except pickle.UnpicklingError as exc:
            raise UnsafeLoadError(
                f"{path} holds more than tensors and plain data; loading it would run code "
                "from the file: pass kind='pickle' only if you trust this log directory"
            ) from exc
    if kind == "tree":
        return _load_tree(path)
    if kind == "pickle":
        if not allow_pickle:
            raise UnsafeLoadError(
                f"{path} is a pickle: loading it runs code from the file; pass "
                "kind='pickle' only if you trust this log directory"
            )
        with open(path, "rb") as f:
            return pickle.load(f)
    raise ValueError(f"unknown kind {kind!r}; known kinds: {', '.join(SUFFIXES)}")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON-serializable; pass kind='pickle'")


# -- checkpoint trees: JSON structure + NumPy arrays in one .npz, loaded without pickle --------


def _save_tree(obj: Any, buffer: io.BytesIO) -> None:
    import numpy

    arrays: dict[str, Any] = {}

    def walk(value: Any, where: str) -> Any:
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, Mapping):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"checkpoint keys must be strings (at {where or 'top'})")
            return {"__dict__": {k: walk(v, f"{where}.{k}") for k, v in value.items()}}
        if isinstance(value, list | tuple):
            items = [walk(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return {"__tuple__": items} if isinstance(value, tuple) else items
        if isinstance(value, bytes):
            return {"__bytes__": value.hex()}
        if _is_ndarray(value) or hasattr(value, "dtype"):  # arrays and NumPy scalars
            array = numpy.asarray(value)
            if array.dtype.hasobject:
                raise TypeError(f"checkpoint array at {where or 'top'} holds Python objects")
            name = f"a{len(arrays)}"
            arrays[name] = array
            return {"__array__": name, "scalar": array.ndim == 0 and not _is_ndarray(value)}
        raise TypeError(
            f"checkpoint value at {where or 'top'} is a {type(value).__name__}: use numbers, "
            "strings, lists, dicts and NumPy arrays, or save_checkpoint(state, kind='pickle')"
        )

    structure = walk(obj, "")
    arrays["__tree__"] = numpy.frombuffer(json.dumps(structure).encode("utf-8"), dtype=numpy.uint8)
    numpy.savez(buffer, **arrays)


def _load_tree(path: Path) -> Any:
    import numpy

    with numpy.load(path, allow_pickle=False) as data:
        structure = json.loads(bytes(data["__tree__"]).decode("utf-8"))
        arrays = {k: data[k] for k in data.files if k != "__tree__"}

    def build(value: Any) -> Any:
        if isinstance(value, list):
            return [build(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__dict__" in value:
            return {k: build(v) for k, v in value["__dict__"].items()}
        if "__tuple__" in value:
            return tuple(build(v) for v in value["__tuple__"])
        if "__bytes__" in value:
            return bytes.fromhex(value["__bytes__"])
        if "__float__" in value:
            return float(value["__float__"])
        if "__array__" in value:
            array = arrays[value["__array__"]]
            return array[()] if value.get("scalar") else array
        raise ValueError(f"{path}: unknown node in checkpoint tree")

    return build(structure)


def safe_child(root: Path, name: str) -> Path:
    """``root/name`` for a user-given name; never a path outside ``root``."""
    if not isinstance(name, str) or not name or name.strip() != name:
        raise ValueError(f"artifact name must be a non-empty string without outer spaces: {name!r}")
    parts = name.replace("\\", "/").split("/")
    if os.path.isabs(name) or any(p in ("", ".", "..") for p in parts):
        raise ValueError(
            f"artifact name {name!r} must be a relative path inside the run directory "
            "(no '..', no absolute path, no empty parts)"
        )
    path = root.joinpath(*parts)
    resolved_root = root.resolve()
    if not path.resolve().is_relative_to(resolved_root):
        raise ValueError(f"artifact name {name!r} leads outside the run directory")
    return path
