"""Saving and loading objects by kind, safely: artifacts and checkpoints.

Kinds, their file suffix, what they hold and how they load:

- ``json`` (``.json``): mappings, lists, scalars; ``json``.
- ``npy`` (``.npy``): a NumPy array; ``numpy.load(allow_pickle=False)``.
- ``npz`` (``.npz``): a mapping of names to NumPy arrays; the same.
- ``text`` (``.txt``): a ``str``; ``bytes`` (``.bin``): ``bytes``.
- ``png`` (``.png``): a matplotlib figure; loads as the image's NumPy array.
- ``torch`` (``.pt``): anything holding torch tensors (a ``state_dict``, an optimizer's,
  nested dicts/lists/tuples of tensors and plain values); ``torch.load(weights_only=True)``.
- ``tree`` (``.tree.npz``): checkpoints, nested dicts/lists of scalars, strings and arrays,
  as JSON plus arrays in one ``.npz``; ``numpy.load(allow_pickle=False)``.
- ``pickle`` (``.pkl``): anything, only when asked for explicitly, both ways.

Nothing here runs code that a file supplies, except ``pickle`` when the caller asked for it:
a log directory may come from someone else.  The rule that follows, for artifacts and
checkpoints alike: **what is saved must load back without unpickling**, so :func:`encode`
refuses, before anything is written, what would not (a ``torch.nn.Module``, an optimizer, a
NumPy array inside a torch file, an arbitrary object), and says what to do instead: save its
``state_dict()``, convert it, or pass ``kind="pickle"`` both when saving and when loading.
Refusing at save time matters: a checkpoint that cannot be loaded fails every retry of the run.
"""

from __future__ import annotations

import collections
import io
import json
import math
import os
import pickle
import sys
from collections.abc import Callable, Mapping
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


def holds_torch(obj: Any) -> bool:
    """Whether ``obj`` is, or holds in its dicts, lists and tuples, a torch tensor or module."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, torch.Tensor | torch.nn.Module):
            return True
        if isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    return False


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
    if holds_torch(obj):
        return "torch"
    if isinstance(obj, Mapping) and obj and all(_is_ndarray(v) for v in obj.values()):
        return "npz"
    if obj is None or isinstance(obj, bool | int | float | list | tuple | Mapping):
        return "json"
    raise TypeError(
        f"cannot choose how to save a {type(obj).__name__}: use kind='pickle' if you trust "
        "whoever will load it, or convert it to arrays, mappings or text"
    )


def suffix_of(kind: str) -> str:
    """The file suffix of ``kind``; an unknown kind is a ``ValueError`` listing the known."""
    suffix = SUFFIXES.get(kind) if isinstance(kind, str) else None
    if suffix is None:
        raise ValueError(f"unknown kind {kind!r}; known kinds: {', '.join(SUFFIXES)}")
    return suffix


def encode(obj: Any, kind: str) -> bytes:
    """The bytes of ``obj`` saved as ``kind``; ``TypeError`` if they would not load back
    without unpickling (unless ``kind`` is ``"pickle"``)."""
    suffix_of(kind)
    if kind == "json":
        return json.dumps(jsonable(obj, default=_refuse_json), ensure_ascii=False).encode("utf-8")
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

        arrays = {str(k): numpy.asarray(v) for k, v in obj.items()}
        if len(arrays) != len(obj):
            raise TypeError("kind='npz': two keys are the same name as text (such as 1 and '1')")
        for name, array in arrays.items():
            _check_plain_array(array, f"[{name!r}]")
        _savez(buffer, arrays)
    elif kind == "png":
        obj.savefig(buffer, format="png")
    elif kind == "torch":
        import torch

        _check_weights_only(obj, torch)
        torch.save(obj, buffer)
    elif kind == "tree":
        _save_tree(obj, buffer)
    elif kind == "pickle":
        pickle.dump(obj, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    return buffer.getvalue()


def decode(path: Path, kind: str, allow_pickle: bool = False) -> Any:
    """Load a file saved as ``kind``; unpickle only when ``allow_pickle`` (a ``.pkl`` file,
    or a ``.pt`` file holding more than tensors and plain data)."""
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
            return torch.load(path, weights_only=not allow_pickle)
        except pickle.UnpicklingError as exc:
            raise UnsafeLoadError(
                f"{path} holds more than tensors and plain data; loading it would run code "
                "from the file: load it with kind='pickle' only if you trust this log directory"
            ) from exc
    if kind == "tree":
        return _load_tree(path)
    if kind == "pickle":
        if not allow_pickle:
            raise UnsafeLoadError(
                f"{path} is a pickle: loading it runs code from the file; load it with "
                "kind='pickle' only if you trust this log directory"
            )
        with open(path, "rb") as f:
            return pickle.load(f)
    raise ValueError(f"unknown kind {kind!r}; known kinds: {', '.join(SUFFIXES)}")


def _refuse_json(value: Any, where: str) -> Any:
    raise _refused(value, where, "numbers, strings, lists and dicts")


def jsonable(
    value: Any,
    where: str = "",
    default: Callable[[Any, str], Any] | None = None,
    *,
    limit: int | None = None,
    depth: int = 0,
) -> Any:
    """``value`` as JSON data: the one conversion xprun makes before writing JSON (outcomes,
    ``json`` artifacts, job specs).

    None, booleans, numbers (NaN and infinities kept: Python's json reads them back) and text
    stay as they are; lists and tuples become lists; NumPy arrays and scalars go through
    ``tolist()``, torch tensors through ``tolist()`` (a 0-d one is its number), a part of a
    config (OmegaConf's ``ListConfig``, ``DictConfig``) as plain lists and mappings, other
    scalars with an ``item()`` through it, a dataclass instance as the mapping of its fields
    (``dataclasses.asdict``); a mapping's keys become text (``1`` becomes
    ``"1"``), and two keys that would become the same text (``1`` and ``"1"``) are refused
    rather than silently merged.  Anything else is ``default(value, where)``, which returns
    its replacement or raises (as ``json.dumps``'s ``default``; without one, a ``TypeError``
    naming its type), ``where`` being its dotted path from the top.

    ``limit``: the deepest a value may lie (``depth`` is ``value``'s own: how many keys and
    indices lead to it); a value deeper is a ``TypeError`` naming where, before Python's
    stack could run out.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    # A container with something in it at the limit: its items would lie deeper.  (A dataclass
    # or an array is checked as what it converts to, at the same depth.)
    if limit is not None and depth >= limit and isinstance(value, Mapping | list | tuple) and value:
        shown = where if len(where) <= 80 else f"{where[:77]}..."
        raise TypeError(
            f"the value at {shown or 'the top level'!r} holds values nested deeper than "
            f"{limit} levels, more than xprun reads back; flatten it (or save it with "
            "logger.log_artifact and return its name)"
        )
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            text = str(key)
            if text in result:
                raise TypeError(
                    f"the mapping at {where or 'the top level'!r} has keys that are the same in "
                    f"JSON ({text!r} twice, e.g. 1 and '1'); make its keys distinct strings"
                )
            at = f"{where}.{text}" if where else text
            result[text] = jsonable(item, at, default, limit=limit, depth=depth + 1)
        return result
    if isinstance(value, list | tuple):
        return [
            jsonable(v, f"{where}[{i}]", default, limit=limit, depth=depth + 1)
            for i, v in enumerate(value)
        ]
    if type(value).__module__.startswith("omegaconf."):  # a part of the run's config
        from omegaconf import OmegaConf

        if OmegaConf.is_config(value):
            plain = OmegaConf.to_container(value, resolve=True)
            return jsonable(plain, where, default, limit=limit, depth=depth)
    if hasattr(type(value), "__dataclass_fields__"):  # a dataclass instance
        import dataclasses  # only here: not a cost of every import of xprun

        # Its fields as ``dataclasses.asdict`` has them, converted one by one rather than
        # through asdict, which deep-copies every value first (and fails on one that cannot
        # be copied before the conversion could name it).
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return jsonable(fields, where, default, limit=limit, depth=depth)
    if callable(getattr(value, "tolist", None)):  # NumPy arrays and scalars, torch tensors
        return jsonable(value.tolist(), where, default, limit=limit, depth=depth)
    if callable(getattr(value, "item", None)):  # scalars of other array libraries
        return jsonable(value.item(), where, default, limit=limit, depth=depth)
    if default is not None:
        return default(value, where)
    raise TypeError(f"a {type(value).__name__} at {where or 'the top level'!r} is not JSON data")


# -- what loads back without unpickling, and the refusal that says what to do -----------------


_PICKLE_OPT_IN = (
    "or, if you trust whoever will load it, pass kind='pickle' both to save it and to load it"
)


def _describe(value: Any) -> str:
    kind = type(value)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.nn.Module):
        return f"torch.nn.Module ({kind.__name__})"
    if torch is not None and isinstance(value, torch.optim.Optimizer):
        return f"torch.optim.Optimizer ({kind.__name__})"
    if kind.__module__ == "numpy" or _is_ndarray(value):
        return f"NumPy {'array' if _is_ndarray(value) else 'scalar'} ({kind.__name__})"
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def _refused(value: Any, where: str | None, accepted: str) -> TypeError:
    """The error for a value that would not load back without unpickling: what, where, and
    how to save it instead."""
    at = f" at {where or 'the top level'}" if where is not None else ""
    if callable(getattr(value, "state_dict", None)):
        fix = "save its state_dict() instead (and load_state_dict() it back)"
    elif _is_ndarray(value) or type(value).__module__ == "numpy":
        fix = f"convert it with torch.as_tensor() or .tolist(), or use {accepted}"
    else:
        fix = f"use {accepted}"
    what = _describe(value)
    article = "an" if what[0] in "aeiouAEIOU" else "a"
    return TypeError(
        f"cannot save {article} {what}{at} in a format that loads without unpickling: "
        f"{fix}; {_PICKLE_OPT_IN}"
    )


def _check_plain_array(array: Any, where: str) -> None:
    """Refuse a NumPy array of Python objects: ``numpy.load(allow_pickle=False)`` would not."""
    if array.dtype.hasobject:
        raise TypeError(
            f"cannot save a NumPy array of Python objects at {where or 'the top level'} in a "
            f"format that loads without unpickling: use an array of numbers or strings; "
            f"{_PICKLE_OPT_IN}"
        )


_TORCH_ACCEPTED = "tensors, numbers, strings, bytes, and lists, tuples, sets and dicts of them"


def _check_weights_only(obj: Any, torch: Any) -> None:
    """Refuse what ``torch.load(weights_only=True)`` would not load: only exact plain types,
    tensors and the torch values a ``state_dict`` holds pass (subclasses are pickled by
    reference to their class, which that load refuses)."""
    leaves: tuple[type, ...] = (type(None), bool, int, float, complex, str, bytes, bytearray)
    leaves += (torch.Tensor, torch.nn.Parameter, torch.Size, torch.dtype, torch.device)
    containers = (dict, collections.OrderedDict, list, tuple, set)
    stack: list[tuple[Any, str]] = [(obj, "")]
    while stack:
        value, where = stack.pop()
        kind = type(value)
        if kind in leaves:
            continue
        if kind not in containers:
            raise _refused(value, where, _TORCH_ACCEPTED)
        if kind in (dict, collections.OrderedDict):
            for key, item in value.items():
                stack.append((key, f"a key of {where or 'the top level'}"))
                stack.append((item, f"{where}[{key!r}]"))
        else:
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(value))


# -- checkpoint trees: JSON structure + NumPy arrays in one .npz, loaded without pickle --------


_TREE_ACCEPTED = "numbers, strings, bytes, NumPy arrays, and lists, tuples and dicts of them"


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
                raise TypeError(f"checkpoint keys must be strings (at {where or 'the top level'})")
            return {"__dict__": {k: walk(v, f"{where}[{k!r}]") for k, v in value.items()}}
        if isinstance(value, list | tuple):
            items = [walk(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return {"__tuple__": items} if isinstance(value, tuple) else items
        if isinstance(value, bytes):
            return {"__bytes__": value.hex()}
        if _is_ndarray(value) or hasattr(value, "dtype"):  # arrays and NumPy scalars
            array = numpy.asarray(value)
            _check_plain_array(array, where)
            name = f"a{len(arrays)}"
            arrays[name] = array
            return {"__array__": name, "scalar": array.ndim == 0 and not _is_ndarray(value)}
        raise _refused(value, where, _TREE_ACCEPTED)

    structure = walk(obj, "")
    arrays["__tree__"] = numpy.frombuffer(json.dumps(structure).encode("utf-8"), dtype=numpy.uint8)
    _savez(buffer, arrays)


def _savez(buffer: io.BytesIO, arrays: Mapping[str, Any]) -> None:
    """What ``numpy.savez(buffer, **arrays)`` writes (``numpy.load`` reads it), whatever the
    names: ``savez`` would take an array named ``allow_pickle`` for its argument (and leave
    it out of the file) and refuse one named ``file``."""
    import zipfile

    import numpy.lib.format

    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                numpy.lib.format.write_array(member, array, allow_pickle=False)


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
