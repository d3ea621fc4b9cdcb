"""A run's identity: a canonical encoding of what defines it, hashed with xxh3-128.

The encoding must never depend on the process: no ``hash()``, no dict order, no float
formatting quirks.  One spelling per value:

- mappings: entries sorted by the encoding of their keys;
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
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import xxhash

ALGORITHM = "xxh3_128"


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("n")
    elif value is True:
        out.append("t")
    elif value is False:
        out.append("f")
    elif isinstance(value, int):
        out.append(f"i{int(value)}")
    elif isinstance(value, float):
        if math.isfinite(value):
            # float's own repr: a subclass (NumPy's float64) may spell itself differently.
            out.append(f"i{int(value)}" if value.is_integer() else f"d{float.__repr__(value)}")
        else:
            out.append("dnan" if math.isnan(value) else ("dinf" if value > 0 else "d-inf"))
    elif isinstance(value, str):
        out.append("s" + json.dumps(value, ensure_ascii=False))
    elif isinstance(value, enum.Enum):
        out.append("s" + json.dumps(f"{type(value).__name__}.{value.name}", ensure_ascii=False))
    elif isinstance(value, bytes | bytearray):
        out.append("b" + bytes(value).hex())
    elif isinstance(value, Mapping):
        items = sorted(((canonical(k), v) for k, v in value.items()), key=lambda kv: kv[0])
        out.append("{")
        for index, (key, item) in enumerate(items):
            if index:
                out.append(",")
            out.append(key)
            out.append(":")
            _encode(item, out)
        out.append("}")
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


def canonical(value: Any) -> str:
    """The canonical text of ``value`` (see the module docstring)."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def run_digest(experiment_id: str, config: Mapping[str, Any], params: Mapping[str, str]) -> str:
    """``"xxh3_128:<hex>"`` of an experiment id, a resolved config and fixture-param ids."""
    text = canonical({"experiment": experiment_id, "config": config, "params": params})
    return f"{ALGORITHM}:{xxhash.xxh3_128_hexdigest(text.encode('utf-8'))}"


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A dotted-key glob: ``*`` stays inside one key, ``**`` crosses dots; no prefixes."""
    parts = re.split(r"(\*\*|\*|\?|\[[^\]]*\])", pattern)
    regex = []
    for part in parts:
        if part == "**":
            regex.append(".*")
        elif part == "*":
            regex.append("[^.]*")
        elif part == "?":
            regex.append("[^.]")
        elif part.startswith("[") and part.endswith("]") and len(part) > 2:
            regex.append(fnmatch.translate(part)[4:-3])  # keep fnmatch's class syntax
        else:
            regex.append(re.escape(part))
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
