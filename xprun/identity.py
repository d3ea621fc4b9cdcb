"""A run's identity: a canonical encoding of what defines it, hashed with xxh3-128.

The encoding must never depend on the process: no ``hash()``, no dict order, no float
formatting quirks.  One spelling per value:

- mappings: entries sorted by the encoding of their keys (two keys encoding alike, such as
  an enum member and its name, are refused);
- lists and tuples: the same (``[...]``);
- a float with an integral value encodes as that int (``1 == 1.0``; ``-0.0 == 0``);
  other floats as ``repr`` (the shortest round-tripping form, the same on every platform
  since Python 3.1); NaN and the infinities by name;
- ``True``/``False``/``None`` as themselves (``True`` is not ``1``);
- strings JSON-quoted, so no string can imitate another type's spelling.

The digest is stored with its algorithm's name (``"xxh3_128:<hex>"``), so a future change of
algorithm reads as a cache miss, never as corruption.
"""

from __future__ import annotations

import enum
import fnmatch
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import xxhash

ALGORITHM = "xxh3_128"


# What ``json.dumps(text, ensure_ascii=False)`` returns for a string, without building a
# JSON encoder per call (``JSONEncoder.encode`` calls this very function).
_quoted = json.encoder.encode_basestring


def _encode(value: Any, out: list[str]) -> None:
    # The exact built-in types first (what configs hold), each spelled as in ``_encode_any``.
    kind = type(value)
    if kind is str:
        out.append("s" + _quoted(value))
    elif kind is int:
        out.append(f"i{value}")
    elif kind is dict:
        _encode_dict(value, out)
    elif kind is float:
        out.append(f"i{int(value)}" if value.is_integer() else f"d{float.__repr__(value)}")
    else:
        _encode_any(value, out)


def _encode_dict(value: dict[Any, Any], out: list[str]) -> None:
    """A dict of text keys, as ``_encode_mapping`` writes it, with fewer calls: its entries'
    order and their ``{key:`` / ``,key:`` prefixes are looked up by its keys (a sweep's
    configs share a few key sets), and scalar values are written in place."""
    keys = tuple(value)
    order = _ORDERS.get(keys)
    if order is None:
        order = _order(keys)
        if order is None:  # a key that is not exactly text: the careful path
            _encode_mapping(value, out)
            return
    elif not _TEXT.issuperset(map(type, keys)):
        _encode_mapping(value, out)  # equal keys of another type (a str subclass): careful
        return
    if not order:
        out.append("{}")
        return
    append = out.append
    for key, prefix in order:
        item = value[key]
        kind = type(item)
        if kind is str:
            append(prefix + "s" + _quoted(item))
        elif kind is int:
            append(f"{prefix}i{item}")
        elif kind is float and not item.is_integer():
            append(f"{prefix}d{float.__repr__(item)}")
        else:
            append(prefix)
            _encode(item, out)
    append("}")


def _order(keys: tuple[Any, ...]) -> list[tuple[str, str]] | None:
    """The entries of a mapping with these text keys in canonical order, each with the text
    written before its value; None when a key is not exactly ``str``.  Remembered (up to a
    bound) for the next mapping with the same keys."""
    if any(type(k) is not str for k in keys):
        return None
    encoded = sorted(("s" + _quoted(k), k) for k in keys)
    order = [(key, f",{text}:") for text, key in encoded]
    if order:
        order[0] = (order[0][0], "{" + order[0][1][1:])
    if len(_ORDERS) < _ORDERS_MAX:
        _ORDERS[keys] = order
    return order


_ORDERS: dict[tuple[Any, ...], list[tuple[str, str]]] = {}
_ORDERS_MAX = 4096  # key sets remembered; more (unusual) only costs speed
_TEXT = frozenset({str})


def _encode_any(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("n")
    elif value is True:
        out.append("t")
    elif value is False:
        out.append("f")
    elif isinstance(value, int):
        out.append(f"i{int(value)}")
    elif isinstance(value, float):
        # float's own repr, as a subclass (NumPy's float64) may spell itself differently;
        # NaN and the infinities are not integers, and spell nan, inf and -inf.
        out.append(f"i{int(value)}" if value.is_integer() else f"d{float.__repr__(value)}")
    elif isinstance(value, str):
        out.append("s" + _quoted(value))
    elif isinstance(value, enum.Enum):
        _encode(f"{type(value).__name__}.{value.name}", out)  # as its name's text
    elif isinstance(value, bytes | bytearray):
        out.append("b" + bytes(value).hex())
    elif isinstance(value, Mapping):
        _encode_mapping(value, out)
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif hasattr(value, "item") and callable(value.item):  # NumPy scalars
        _encode(value.item(), out)
    else:
        raise TypeError(
            f"cannot hash a config value of type {type(value).__name__} ({value!r}); "
            "use numbers, strings, booleans, None, lists and mappings"
        )


def _encode_mapping(value: Mapping[Any, Any], out: list[str]) -> None:
    encoded = {("s" + _quoted(k) if type(k) is str else canonical(k)): v for k, v in value.items()}
    if len(encoded) < len(value):  # Color.RED and "Color.RED": their order would decide it
        twin = next(k for k, n in Counter(_key(k) for k in value).items() if n > 1)
        raise TypeError(f"cannot hash a mapping with two keys that both encode as {twin}")
    separator = "{"
    for key in sorted(encoded):
        out.append(separator + key + ":")
        separator = ","
        _encode(encoded[key], out)
    out.append("}" if separator == "," else "{}")


def _key(key: Any) -> str:
    return "s" + _quoted(key) if type(key) is str else canonical(key)


def canonical(value: Any) -> str:
    """The canonical text of ``value`` (see the module docstring)."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


@dataclass(frozen=True)
class ParamIdentity:
    """How one fixture param enters a run's hash: ``key`` under the ``section`` mapping."""

    section: str  # PARAM_TEXT, PARAM_VALUE or PARAM_ID
    key: Any


PARAM_TEXT = "params"  # a simple value's text, as every param was hashed before values were
PARAM_VALUE = "param_values"  # the value itself, canonically encoded
PARAM_ID = "param_ids"  # a value that cannot be encoded: the id the user gave it
_SIMPLE = (str, int, float, bool, type(None))


def param_identity(value: Any, display_id: str, explicit_id: bool) -> ParamIdentity | None:
    """What identifies a fixture param in a run's hash; None when nothing can.

    A simple value whose id is its own text (``"mnist"``, ``16``) is hashed as that text,
    which is how params were hashed when the id was all the hash saw: runs recorded then keep
    their digests.  Any other value is hashed by value, so changing it is a new run even when
    its id does not change.  A value that cannot be encoded is identified by the id the user
    gave it (``ids=``), the user's promise that the id names the value; without one there is
    nothing to hash it by.
    """
    if isinstance(value, _SIMPLE) and display_id == str(value):
        return ParamIdentity(PARAM_TEXT, display_id)
    try:
        canonical(value)
    except (TypeError, ValueError, RecursionError):
        return ParamIdentity(PARAM_ID, display_id) if explicit_id else None
    return ParamIdentity(PARAM_VALUE, value)


def run_digest(
    experiment_id: str,
    config: Mapping[str, Any],
    params: Mapping[str, str | ParamIdentity],
    code_version: int | None = None,
) -> str:
    """``"xxh3_128:<hex>"`` of an experiment id, a resolved config and fixture params.

    A param given as a plain string is its text (``PARAM_TEXT``).  The ``params`` mapping is
    always encoded (empty or not); the other sections only when they hold something, so the
    digests of runs whose params are all text are those of earlier releases.  A
    ``code_version`` (``@xprun.config(code_version=N)``) is encoded only when given, for
    the same reason.
    """
    return run_digester(experiment_id, params, code_version)(config)


def run_digester(
    experiment_id: str,
    params: Mapping[str, str | ParamIdentity],
    code_version: int | None = None,
) -> Callable[[Mapping[str, Any]], str]:
    """``run_digest`` of these params for any config: the rest of the document is encoded
    once (a sweep's runs share it), around the config's own encoding."""
    document: dict[str, Any] = {"experiment": experiment_id, "config": _HOLE, PARAM_TEXT: {}}
    if code_version is not None:
        document["code_version"] = code_version
    for name, param in params.items():
        if isinstance(param, str):
            document[PARAM_TEXT][name] = param
        else:
            document.setdefault(param.section, {})[name] = param.key
    # The first occurrence of the marker is the config's: only "code_version" (an int) sorts
    # before "config"; a param or an experiment id holding the marker's text comes after.
    before, _, after = canonical(document).partition(_HOLE_TEXT)
    return lambda config: _digest(before + canonical(config) + after)


def _digest(text: str) -> str:
    return f"{ALGORITHM}:{xxhash.xxh3_128_hexdigest(text.encode())}"  # UTF-8


# Where the config goes in a run's document: encoded once, then replaced by each config's
# encoding.
_HOLE = "\x00xprun: the config goes here\x00"
_HOLE_TEXT = canonical(_HOLE)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A dotted-key glob: ``*`` stays inside one key, ``**`` crosses dots; no prefixes."""
    regex = []
    for part in re.split(r"(\*\*|\*|\?|\[[^\]]*\])", pattern):
        if part == "*":
            regex.append("[^.]*")
        elif part == "?":
            regex.append("[^.]")
        else:  # text, [classes] and ** (anything), as fnmatch spells them: "(?s:" ... ")\Z"
            regex.append(fnmatch.translate(part)[4:-3])
    return re.compile("".join(regex) + r"\Z")


class KeyExcluder:
    """Removes excluded keys (exact dotted paths or globs) from a config before hashing."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(dict.fromkeys(patterns))
        self._regexes = [_glob_regex(p) for p in self.patterns]

    def __bool__(self) -> bool:
        return bool(self._regexes)

    def excluded(self, dotted: str) -> bool:
        return any(r.match(dotted) for r in self._regexes)

    def apply(self, config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        """A copy of ``config`` without the excluded keys (nested mappings walked)."""
        result: dict[str, Any] = {}
        for key, value in config.items():
            dotted = f"{prefix}{key}"
            if self.excluded(dotted):
                continue
            result[key] = self.apply(value, dotted + ".") if isinstance(value, Mapping) else value
        return result
