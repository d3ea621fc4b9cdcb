"""One index row from one run directory, and the types every row's fields must have.

A row holds the info fields of ``run.json`` (:data:`INFO_TYPES`), then ``params.*``,
``config.*`` and ``outcome.*`` columns flattened from the record, ``config.yaml`` and
``outcome.json``.  Anything that is not what xprun writes (a field of the wrong type, a
value that is not data, two keys that would make the same column) makes the row a skipped
one whose reason names the file and the problem: one damaged run never hides the others.
"""

from __future__ import annotations

import base64
import datetime
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import journal, store
from ..states import Status
from .files import DATA_LIMIT, MAX_DEPTH, Damage, claims, open_dir, read_json, read_yaml

PRIVATE = ("_key", "_mtime_ns", "_ctime_ns", "_skip")
#: ``run.json``'s ``code`` (root and files) as JSON text, for the Reader's ``stale`` column,
#: which depends on today's files and so is computed when the index is loaded, never stored.
CODE = "_code"


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


# The info columns, in order, with what a value must be (None, meaning missing, is always
# allowed in the index; ``REQUIRED`` ones must be present in run.json).
INFO_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "experiment": (_is_str, "a string"),
    "hash": (_is_str, "a string"),
    "nodeid": (_is_str, "a string"),
    "status": (_is_str, "a string"),
    "attempt": (_is_int, "an integer"),
    "start": (_is_str, "a string"),
    "end": (_is_str, "a string"),
    "duration": (_is_number, "a number"),
    "host": (_is_str, "a string"),
    "user": (_is_str, "a string"),
    "error": (_is_str, "a string"),
    "recovered": (_is_bool, "a boolean"),
    "path": (_is_str, "a string"),
}
INFO_COLUMNS = tuple(INFO_TYPES)
REQUIRED = ("experiment", "hash", "status", "attempt")
_RECORD_INFO = tuple(name for name in INFO_COLUMNS if name not in ("error", "path"))
# The types of the info fields, in order, of records that passed the checks of INFO_TYPES
# (which look at a value's type only): a sweep's records share a few, checked once each.
_GOOD_KINDS: set[tuple[type, ...]] = set()
PREFIXES = ("params.", "config.", "outcome.")
#: The run.json formats this Reader knows: 2 added provenance fields (``session``,
#: ``snapshot``, ``code``), which no column depends on, so both read the same way.
READABLE_FORMATS = (1, store.FORMAT_VERSION)


def read_run(run_dir: Path | str, key: str, mtime_ns: int, ctime_ns: int = 0) -> dict[str, Any]:
    """One index row for a run directory (a row with ``_skip`` set when it is damaged)."""
    row: dict[str, Any] = {
        "_key": key,
        "_mtime_ns": mtime_ns,
        "_ctime_ns": ctime_ns,
        "_skip": None,
        "path": str(run_dir),
    }
    try:
        dir_fd: int | None = open_dir(run_dir)
    except OSError:  # gone or unreadable: each file read below says which
        dir_fd = None
    try:
        return _read_files(run_dir, row, dir_fd)
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def _read_files(run_dir: Path | str, row: dict[str, Any], dir_fd: int | None) -> dict[str, Any]:
    try:
        found = claims(run_dir, dir_fd)
        try:
            record = read_json(run_dir, store.RUN_JSON, dir_fd=dir_fd)
        except FileNotFoundError:
            if found:
                row["_skip"] = ""  # being created right now: not damage, not a run yet
                return row
            raise Damage("run.json is missing") from None
        fill_row(
            row,
            record,
            os.path.basename(run_dir),
            lambda: read_yaml(run_dir, "config.yaml", dir_fd=dir_fd),
            lambda: read_json(run_dir, store.OUTCOME_JSON, DATA_LIMIT, dir_fd),
        )
    except FileNotFoundError as exc:
        row["_skip"] = f"{Path(exc.filename or '?').name} is missing"
        return _only_private(row)
    except Damage as exc:
        row["_skip"] = str(exc)
        return _only_private(row)
    return row


def fill_row(
    row: dict[str, Any],
    record: Any,
    dirname: str,
    config: Callable[[], Any],
    outcome: Callable[[], Any],
) -> None:
    """The columns of one run from its record, ``config()`` (what ``config.yaml`` holds) and
    ``outcome()`` (what ``outcome.json`` holds, asked for a complete or pruned run only):
    the one place a row is made, from the run's files or from its results-journal line.
    Raises :class:`Damage` for anything that is not what xprun writes."""
    row.update(_info(record, dirname))
    row[CODE] = code_text(record.get("code"))
    # The columns go straight into the row: a damaged run keeps only its private fields.
    _columns("params", record.get("params") or {}, row, "run.json params")
    _columns("config", _mapping(config()), row, "config.yaml")
    if record["status"] in (Status.COMPLETE, Status.PRUNED):  # pruned: saved as well
        _columns("outcome", _mapping(outcome(), store.OUTCOME_JSON), row, store.OUTCOME_JSON)


def journal_row(
    lines: list[journal.Entry], key: str, dirname: str, path: str, mtime_ns: int, ctime_ns: int
) -> dict[str, Any] | None:
    """The row of a run from its results-journal lines, or None when they do not describe
    its files as they are (see :mod:`xprun.journal`): no line whose signature is that of
    ``run.json`` and of the run folder (``mtime_ns``, ``ctime_ns``, from the scan), two
    such lines that disagree, or one whose content is not what xprun writes.  The caller
    then reads the files, which name any damage."""
    on_disk = journal.record_signature(path)
    if on_disk is None:
        return None
    signature = [*on_disk, mtime_ns, ctime_ns]
    chosen: tuple[bytes, Any, Any, Any] | None = None
    for line in lines:
        try:
            written, record, config, outcome = line.parse()
        except ValueError:
            continue
        if written != signature:
            continue
        if chosen is not None and chosen[0] != line.body:
            return None  # two lines for these very files that disagree: read the files
        chosen = (line.body, record, config, outcome)
    if chosen is None or chosen[2] is None:  # no config journaled: config.yaml says it
        return None
    _, record, config, outcome = chosen
    row: dict[str, Any] = {
        "_key": key,
        "_mtime_ns": mtime_ns,
        "_ctime_ns": ctime_ns,
        "_skip": None,
        "path": path,
    }
    try:
        fill_row(row, record, dirname, lambda: config, lambda: outcome)
    except (Damage, RecursionError):
        return None
    return row


def _only_private(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in (*PRIVATE, "path")}


def _mapping(value: Any, name: str = "config.yaml") -> dict[Any, Any]:
    if value is None and name == "config.yaml":
        return {}  # an empty config is written as an empty document by some YAML dumpers
    if not isinstance(value, dict):
        raise Damage(f"{name} does not hold a mapping")
    return value


def _info(record: Any, dirname: str) -> dict[str, Any]:
    """The info fields of ``run.json``, each checked against :data:`INFO_TYPES`."""
    if not isinstance(record, dict):
        raise Damage("run.json is not a run record (not a JSON object)")
    if record.get("format") not in READABLE_FORMATS:
        raise Damage(f"run.json has format {record.get('format')!r}; this xprun reads 1 and 2")
    error = record.get("error")
    if error is not None and not isinstance(error, dict):
        raise Damage(f"run.json: error must be an object, got {type(error).__name__}")
    info = {name: record.get(name) for name in _RECORD_INFO}
    info["error"] = error.get("type") if error else None
    info["recovered"] = record.get("recovered", False)
    kinds = tuple(map(type, info.values()))
    if kinds not in _GOOD_KINDS:  # each check depends on the value's type alone
        for name, value in info.items():
            check, what = INFO_TYPES[name]
            if value is None and name not in REQUIRED:
                continue
            if not check(value):
                raise Damage(f"run.json: {name} must be {what}, got {value!r:.60}")
        if len(_GOOD_KINDS) < 1024:
            _GOOD_KINDS.add(kinds)
    if record["hash"] != dirname:
        raise Damage(f"run.json: hash {record['hash']!r:.60} is not the directory's name")
    if isinstance(info["duration"], float) and not math.isfinite(info["duration"]):
        raise Damage(f"run.json: duration must be finite, got {info['duration']!r}")
    params = record.get("params")
    if params is not None and not isinstance(params, dict):
        raise Damage(f"run.json: params must be an object, got {type(params).__name__}")
    return info


_code_texts: dict[str, tuple[dict[str, Any], str]] = {}  # digest → (code, its text)


def code_text(code: Any) -> str | None:
    """The ``_code`` column of a record's ``code``: ``{"root", "files", "own"}`` as JSON text, or
    None when it has none or it is not what xprun writes (its staleness is then unknown).
    The runs of a sweep share a few: each text is made once (the record compared whole)."""
    if type(code) is not dict:
        return None
    digest = code.get("digest")
    known = _code_texts.get(digest) if type(digest) is str else None
    if known is not None and known[0] == code:
        return known[1]
    root, files = code.get("root"), code.get("files")
    if type(root) is not str or type(files) is not dict:
        return None
    if not all(type(k) is str and type(v) is str for k, v in files.items()):
        return None
    kept: dict[str, Any] = {"root": root, "files": files}
    own = code.get("own")  # how the experiment's own module was digested (codedigest)
    if type(own) is dict and type(own.get("file")) is str and type(own.get("function")) is str:
        patterns = own.get("patterns")
        if type(patterns) is list and all(type(p) is str for p in patterns):
            kept["own"] = {"file": own["file"], "function": own["function"], "patterns": patterns}
    text = json.dumps(kept, sort_keys=True)
    if type(digest) is str and len(_code_texts) < 1024:
        _code_texts[digest] = (code, text)
    return text


def _columns(prefix: str, value: dict[Any, Any], out: dict[str, Any], where: str) -> None:
    """The ``prefix.*`` columns of one mapping: :func:`_plain_columns` when it can, else the
    careful :func:`_flatten` (which names what is wrong)."""
    first = len(out)
    if not _plain_columns(prefix, value, out, 0):
        for name in list(out)[first:]:  # what the plain path wrote before it gave up
            del out[name]
        _flatten(prefix, value, out, {}, where)


_SCALARS = (str, int, float, bool, type(None))


def _plain_columns(prefix: str, value: dict[Any, Any], out: dict[str, Any], depth: int) -> bool:
    """Columns of a mapping whose keys are non-empty text without dots (so no two keys can
    make one column) and whose values are scalars or such mappings; False for anything else
    (lists, other types, deep nesting), which the careful path reads."""
    if depth >= MAX_DEPTH:
        return False
    for key, item in value.items():
        if type(key) is not str or not key or "." in key:
            return False
        name = f"{prefix}.{key}"
        kind = type(item)
        if kind is dict:
            if not item:
                out[name] = {}
            elif not _plain_columns(name, item, out, depth + 1):
                return False
        elif kind in _SCALARS:
            out[name] = item
        else:
            return False
    return True


def _flatten(
    prefix: str,
    value: Any,
    out: dict[str, Any],
    origins: dict[str, tuple[str, ...]],
    where: str,
    path: tuple[str, ...] = (),
) -> None:
    """``config.a.b`` columns from nested mappings; two keys making one column are damage."""
    if len(path) > MAX_DEPTH:
        raise Damage(f"{where} nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict) and (value or not path):
        for key, item in value.items():
            name = key if isinstance(key, str) else _scalar_key(key, where)
            _flatten(f"{prefix}.{name}", item, out, origins, where, (*path, name))
        return
    if prefix in out:
        first = " → ".join(repr(k) for k in origins[prefix])
        second = " → ".join(repr(k) for k in path)
        raise Damage(
            f"{where}: keys {first} and {second} both make the column {prefix}; rename one "
            "(the Reader cannot tell which is meant)"
        )
    out[prefix] = _plain(value, where, len(path))
    origins[prefix] = path


def _scalar_key(key: Any, where: str) -> str:
    if isinstance(key, bool | int | float) or key is None:
        return str(key)
    raise Damage(f"{where} has a key of type {type(key).__name__} ({key!r:.40})")


def _plain(value: Any, where: str, depth: int) -> Any:
    """``value`` as JSON data: YAML's timestamps become ISO 8601 text and binary values the
    base64 text that ``config.yaml`` shows; anything else that is not data is damage."""
    if depth > MAX_DEPTH:
        raise Damage(f"{where} nests deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {
            k if isinstance(k, str) else _scalar_key(k, where): _plain(v, where, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_plain(v, where, depth + 1) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_plain(v, where, depth + 1) for v in value), key=repr)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    raise Damage(f"{where} holds a value of type {type(value).__name__}")


def check_row_types(frame: Any) -> str | None:
    """Why a loaded index frame cannot be trusted (missing or mistyped columns), or None."""
    import pandas as pd

    for name in (*PRIVATE, "path"):
        if name not in frame.columns:
            return f"column {name} is missing"
    for name in ("_mtime_ns", "_ctime_ns"):
        if not pd.api.types.is_integer_dtype(frame[name]):
            return f"column {name} is not integer"
    for name in frame.columns:
        if not isinstance(name, str):
            return f"column {name!r} is not named by a string"
        if name in PRIVATE or name == CODE or name.startswith(PREFIXES):
            continue
        if name not in INFO_TYPES:
            return f"column {name} is not an index column"
    if not _column_ok(frame["_key"], _is_str, False) or _has_duplicates(frame["_key"]):
        return "column _key must hold distinct strings"
    if not _column_ok(frame["_skip"], _is_str, True):
        return "column _skip must hold strings"
    readable = readable_rows(frame)  # damaged rows' info columns are empty
    for name, (check, what) in INFO_TYPES.items():
        if name not in readable.columns:
            if name in REQUIRED and len(readable):
                return f"column {name} is missing"
            continue
        if not _column_ok(readable[name], check, name not in REQUIRED):
            return f"column {name} must hold {what}"
    return None


def readable_rows(frame: Any) -> Any:
    """The rows of an index frame that are runs, not damage (``_skip`` missing).  Damaged
    rows sort last, so this is usually a slice of the frame, not a copy of it."""
    import numpy as np

    skipped = frame["_skip"].notna().to_numpy(dtype=bool)
    if not skipped.any():
        return frame
    first = int(np.argmax(skipped))
    if skipped[first:].all():
        return frame.iloc[:first]
    return frame[~skipped]


def _has_duplicates(values: Any) -> bool:
    """Whether a column of strings holds one twice (hashed in Arrow: pandas' ``duplicated``
    on Arrow-backed text takes a quarter of a second at 100k rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = pa.array(values, type=pa.large_string())
    return len(pc.unique(array)) != len(array)


def _column_ok(values: Any, check: Callable[[Any], bool], optional: bool) -> bool:
    """Whether every value passes ``check`` (or is missing, when ``optional``); the column's
    type answers for most columns without looking at each value."""
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_float_dtype, is_integer_dtype

    missing = values.isna()
    if missing.all():
        return optional or not len(values)
    if not optional and missing.any():
        return False
    dtype = values.dtype
    if check is _is_str and isinstance(dtype, pd.StringDtype):
        return True
    if check is _is_bool and is_bool_dtype(dtype):
        return True
    if check in (_is_int, _is_number) and is_integer_dtype(dtype) and not is_bool_dtype(dtype):
        return True
    if check is _is_number and is_float_dtype(dtype):
        return True
    if check is _is_int and is_float_dtype(dtype):  # integers with gaps
        present = values.dropna()
        return bool((present == present.round()).all())
    return bool(values.map(lambda v: check(v) or (optional and _missing(v))).all())


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def run_path(log_dir: Path, key: str) -> str:
    """The path of a run directory as the scan names it (never resolved)."""
    return os.path.join(log_dir, key)
