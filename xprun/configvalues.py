"""What a config may hold: plain data that YAML, OmegaConf, the run hash and the Reader all
read back as it was written.

A config is ``None``, booleans, ints, floats and strings, in lists (or tuples) and mappings
with string (or int) keys, nested at most ``MAX_DEPTH`` levels.  NumPy scalars become the
Python number they hold (``.item()`` is exact, and the hash already treated them so), so
``@grid(lr=np.logspace(-4, -1, 4))`` works.  Everything else is refused before OmegaConf sees
it, with the place of the value and how to fix it: bytes (YAML would store them as
``!!binary``), sets (no order), arrays, enums, paths, objects and functions (not data), a
mapping that contains itself, nesting deep enough to exhaust the stack of OmegaConf or YAML,
and two entries with the same dotted path (``"a.b"`` next to ``{"a": {"b": ...}}``), which
overrides, exclusion patterns and the Reader's ``config.a.b`` column could not tell apart.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 32
"""Levels of nesting allowed; OmegaConf exhausts Python's stack at about 85."""

READABLE_DEPTH = 100
"""The deepest a value of a config or outcome may lie (keys and indices from the top) for
the Reader to read it back; an outcome deeper is refused when the run ends."""

_SCALARS = (bool, int, float, str)


class ConfigValueError(ValueError):
    """A value a config cannot hold; the message names where it is and how to fix it."""


class _Refused(Exception):
    """Raised where the fault is; each level adds its key on the way up (so a walk over
    good data builds no path text)."""

    def __init__(self, problem: str) -> None:
        self.problem = problem  # "{where}" stands for the value's dotted path
        self.keys: list[Any] = []


def plain(value: Any, where: str = "") -> Any:
    """A plain copy of ``value`` (NumPy scalars converted), or ``ConfigValueError``.

    ``where`` is the dotted path of ``value`` in the config, for messages.
    """
    ambiguous: list[bool] = []
    try:
        result = _plain(value, 0, set(), ambiguous)
    except _Refused as refused:
        path = where
        for key in reversed(refused.keys):
            path = f"{path}[{key}]" if isinstance(key, _Index) else _join(path, key)
        raise ConfigValueError(refused.problem.format(where=_name(path))) from None
    if ambiguous:
        _refuse_shared_paths(result, where)
    return result


class _Index(int):
    """A list index on a path (shown as ``[i]``, not ``.i``)."""


def _plain(value: Any, depth: int, active: set[int], ambiguous: list[bool]) -> Any:
    kind = type(value)
    if kind is str:
        if not value.isascii():
            _check_text(value)
        return value
    if value is None or kind in _SCALARS:
        return value
    is_dict = kind is dict or (kind is not list and isinstance(value, Mapping))
    if not (is_dict or kind is list or isinstance(value, list | tuple)):
        return _scalar(value)
    if depth >= MAX_DEPTH:
        raise _Refused(f"{{where}} is nested more than {MAX_DEPTH} levels deep; flatten it")
    if id(value) in active:
        raise _Refused("{where} contains itself; a config must be a tree")
    active.add(id(value))
    try:
        if not is_dict:
            return [_item(v, i, True, depth, active, ambiguous) for i, v in enumerate(value)]
        result = {}
        for key, item in value.items():
            if type(key) is str:
                if "." in key:
                    ambiguous.append(True)
                if not key.isascii():
                    _check_text(key)
            elif type(key) is int:
                ambiguous.append(True)  # 1 and "1" are the same column, the same override
            else:
                text = repr(key).replace("{", "{{").replace("}", "}}")
                raise _Refused(
                    f"{{where}} has the key {text} (type {type(key).__name__}); "
                    "config keys are strings"
                )
            result[key] = _item(item, key, False, depth, active, ambiguous)
        return result
    finally:
        active.discard(id(value))


def _item(
    value: Any, key: Any, index: bool, depth: int, active: set[int], ambiguous: list[bool]
) -> Any:
    """``_plain`` of an entry, adding its key to the path of a refusal."""
    try:
        return _plain(value, depth + 1, active, ambiguous)
    except _Refused as refused:
        refused.keys.append(_Index(key) if index else key)
        raise


def _check_text(text: str) -> None:
    """Text that UTF-8 cannot hold (lone surrogates, from undecodable bytes) is refused."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        shown = repr(text[max(0, exc.start - 10) : exc.end + 10]).replace("{", "{{")
        raise _Refused(
            f"{{where}} holds text that is not valid Unicode ({shown.replace('}', '}}')}): "
            "undecodable bytes; decode them with the right encoding"
        ) from None


def _scalar(value: Any) -> Any:
    """A NumPy scalar or a subclass of a plain type as the plain value; others refused."""
    if isinstance(value, enum.Enum):
        hint = f"use {type(value).__name__}.{value.name}.name or .value"
    elif type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        item = value.item()
        if type(item) in _SCALARS:
            return item
        hint = "convert it to a number or a string"
    elif isinstance(value, _SCALARS):
        return next(t for t in _SCALARS if isinstance(value, t))(value)
    elif type(value).__module__ == "numpy" or hasattr(value, "tolist"):
        hint = "convert the array to a list with .tolist()"
    elif isinstance(value, bytes | bytearray):
        hint = "decode the bytes to a str (YAML would store them as !!binary)"
    elif isinstance(value, set | frozenset):
        hint = "use a sorted list (a set has no order)"
    elif isinstance(value, os.PathLike):
        hint = "use str(path)"
    else:
        hint = "configs hold None, booleans, numbers, strings, lists and mappings"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    text = text.replace("{", "{{").replace("}", "}}")
    raise _Refused(f"{{where}} is {text} (type {type(value).__name__}); {hint}")


def shared_path(tree: Any, root: str = "config") -> tuple[str, str, str] | None:
    """Two entries of nested mappings whose dotted paths are the same text, or None.

    Returns the two spellings and the dotted path (``config['a.b']``, ``config['a']['b']``,
    ``'a.b'``): a config, and an outcome once flattened into Reader columns, can hold only
    one of them.
    """
    seen: dict[str, str] = {}

    def walk(node: Any, path: str, spelled: str) -> tuple[str, str, str] | None:
        for key, item in node.items():
            dotted = _join(path, key)
            shown = f"{spelled}[{key!r}]"
            other = seen.setdefault(dotted, shown)
            if other != shown:
                return other, shown, dotted
            if isinstance(item, dict):
                found = walk(item, dotted, shown)
                if found:
                    return found
        return None

    return walk(tree, "", root) if isinstance(tree, dict) else None


def _refuse_shared_paths(config: Any, where: str) -> None:
    """Refuse two entries whose dotted paths are the same text."""
    found = shared_path(config) if isinstance(config, dict) else None
    if found:
        other, shown, dotted = found
        dotted = _join(where, dotted) if where else dotted
        raise ConfigValueError(
            f"{other} and {shown} are both read as {dotted!r} (a key with dots as a "
            "nested path, an int key as text); keep one of them"
        )


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _name(path: str) -> str:
    if len(path) > 60:
        path = path[:57] + "..."
    return f"{path!r}" if path else "the config"
