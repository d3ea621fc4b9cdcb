"""Reading ``metrics/<name>.jsonl`` files fast, skipping torn and damaged lines; aggregates.

A torn line (not JSON: a process killed mid-write) is normal and skipped silently.  A line
that is JSON but not what the logger writes (a step that is not an integer, a value that is
not a number) is damage: it is skipped, and the file is named in what :func:`long_frame`
returns, so one bad line neither crashes an aggregate nor goes unnoticed.  Lines are checked
column by column after parsing, so well-formed files cost no per-value Python work.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple

from .files import METRICS_LIMIT, Damage, read_bytes

AGGREGATES = ("last", "first", "min", "max", "mean", "count")
RESERVED = ("hash", "experiment")  # columns the Reader adds to every metric row
_NAME = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*")
_INT64 = 2**63


def check_name(name: Any) -> str:
    """A metrics file name (``metrics/<name>.jsonl``), refused if it could leave the folder."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"metrics file name {name!r} is not valid: use letters, digits, '_', '-' and '.' "
            "(not first), as logger.log_metrics(..., name=...) does"
        )
    return name


class MetricFile(NamedTuple):
    """What one metrics file holds: its JSON objects, why the whole file could not be read
    (None when it could), and how many lines were JSON but not objects."""

    rows: list[dict[str, Any]]
    damage: str | None = None
    bad_lines: int = 0


def read_lines(run_dir: Path, name: str) -> MetricFile:
    """The JSON objects of one metrics file; torn lines are skipped without a word, and the
    objects' fields are checked by :func:`long_frame`."""
    try:
        data = read_bytes(run_dir, f"metrics/{check_name(name)}.jsonl", METRICS_LIMIT)
    except FileNotFoundError:
        return MetricFile([])
    except Damage as exc:
        return MetricFile([], str(exc))
    data = data.strip()
    if not data:
        return MetricFile([])
    try:  # the fast path: the whole file as one JSON array
        rows = json.loads(b"[" + data.replace(b"\n", b",") + b"]")
        if all(isinstance(r, dict) for r in rows):
            return MetricFile(rows)
    except (ValueError, RecursionError):
        pass
    rows, bad = [], 0
    for line in data.split(b"\n"):
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue  # torn
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad += 1
    return MetricFile(rows, None, bad)


def _lines_reason(name: str, count: int) -> str:
    return (
        f"metrics/{name}.jsonl: {count} line{'s' * (count != 1)} skipped (not an object with "
        "an integer step and numeric values)"
    )


class LongFrame(NamedTuple):
    """What :func:`long_frame` read: the rows, why lines were skipped (by hash), and the keys
    each run's lines hold, in the order they first appear (by hash)."""

    frame: Any
    damage: dict[str, str]
    keys: dict[str, tuple[str, ...]]


def long_frame(
    runs: Iterable[tuple[str, Path]], name: str, all_attempts: bool = False
) -> LongFrame:
    """One row per (run, step): ``hash``, ``attempt``, ``step``, ``time``, one column per metric;
    by hash, why lines of a run's file were skipped, and the keys its lines hold.

    Without ``all_attempts``, a step logged by several attempts of a resumed run keeps only
    the latest attempt's line.  The frame is not yet what a selection shows: see
    :func:`selection`.
    """
    import pandas as pd

    hashes: list[str] = []
    rows: list[dict[str, Any]] = []
    damage: dict[str, str] = {}
    bad_lines: dict[str, int] = {}
    keys: dict[str, tuple[str, ...]] = {}
    for run_hash, run_dir in runs:
        found = read_lines(run_dir, name)
        if found.damage:
            damage[run_hash] = found.damage
        if found.bad_lines:
            bad_lines[run_hash] = found.bad_lines
        rows.extend(found.rows)
        hashes.extend([run_hash] * len(found.rows))
        keys[run_hash] = tuple(dict.fromkeys(chain.from_iterable(found.rows)))
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame({"step": [], "attempt": []})
    clashing = [c for c in RESERVED if c in frame.columns]
    bad = frame[clashing].notna().any(axis=1)  # a line naming a metric hash or experiment
    frame = frame.drop(columns=clashing)
    frame.insert(0, "hash", pd.Series(hashes, dtype=str))  # as the runs frame has it
    frame, counts = _checked(frame, bad)
    for run_hash, count in counts.items():
        bad_lines[run_hash] = bad_lines.get(run_hash, 0) + count
    for run_hash, count in bad_lines.items():
        damage[run_hash] = _lines_reason(name, count)
    if not all_attempts and len(frame):
        # The latest attempt wins a step, whatever the order of lines in the file: an owner
        # that lost its claim may still append its older attempt's lines after the new
        # owner's (it records no outcome, but a line can be in flight).
        # Within that attempt, the lines of one step are one row: metrics logged by two
        # calls at the same step (``loss``, then ``acc``) are both kept, and a metric
        # logged twice at a step keeps its last value.
        if "attempt" in frame.columns:
            frame = frame.sort_values("attempt", kind="stable", na_position="first")
            latest = frame.groupby(["hash", "step"], sort=False)["attempt"].transform("max")
            same = (frame["attempt"] == latest) | (frame["attempt"].isna() & latest.isna())
            frame = frame[same]
        frame = frame.groupby(["hash", "step"], sort=False, as_index=False).last()
    if len(frame):
        frame = frame.sort_values(["hash", "step"], kind="stable").reset_index(drop=True)
    return LongFrame(frame, damage, keys)


#: The columns every metrics frame has, first, whatever its runs logged.
BASE_COLUMNS = ("hash", "attempt", "step", "time")


def selection(frame: Any, hashes: Iterable[str], keys: dict[str, tuple[str, ...]]) -> Any:
    """The metrics of the runs ``hashes`` (in that order) from ``frame``, which may hold other
    runs' too: the same frame whichever runs were read with them.

    Read together with others, a run's rows gain the others' metric columns (empty), and a
    column's type is the one that fits every run read (an integer metric becomes float
    where another run lacks it; a boolean, object).  So the columns are those the selected
    runs' lines hold, in the order they first appear, after :data:`BASE_COLUMNS` (``time``
    even when no line has one); metric values are floats (booleans 0 and 1), ``step`` and
    ``attempt`` integers (``attempt`` float when some line has none: lines of old versions).
    """
    import pandas as pd

    order = list(hashes)
    frame = frame[frame["hash"].isin(order)]
    named = dict.fromkeys(chain.from_iterable(keys.get(h, ()) for h in order))
    metrics = [k for k in named if k not in BASE_COLUMNS and k not in RESERVED]
    columns: dict[str, Any] = {"hash": frame["hash"]}
    for column in BASE_COLUMNS[1:]:
        if column in frame.columns:
            columns[column] = frame[column]
        else:
            columns[column] = pd.Series(math.nan, index=frame.index, dtype="float64")
    for column in ("attempt", "step"):
        values = columns[column]
        if values.dtype != "int64" and values.notna().all():  # none missing, or no rows
            columns[column] = values.astype("int64")
    for column in metrics:
        values = frame[column] if column in frame.columns else math.nan
        columns[column] = pd.Series(values, index=frame.index).astype("float64")
    return pd.DataFrame(columns, index=frame.index)


def _checked(frame: Any, bad: Any) -> tuple[Any, dict[str, int]]:
    """``frame`` without its damaged lines (and those already ``bad``), metric columns
    numeric; the number of damaged lines by hash."""
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_float_dtype, is_integer_dtype

    if not len(frame):
        return frame, {}
    converted = []
    for column in frame.columns:
        if column == "hash":
            continue
        values = frame[column]
        integer = is_integer_dtype(values) and not is_bool_dtype(values)
        if column in ("step", "attempt"):
            if integer:
                continue
            ok = values.map(_integral)
            if column == "attempt":  # lines without an attempt are accepted
                ok = ok | values.isna()
        elif integer or is_float_dtype(values) or is_bool_dtype(values):
            continue
        else:
            ok = values.map(_numeric)
        converted.append(column)
        bad = bad | ~ok.astype(bool)
    counts = frame.loc[bad, "hash"].value_counts().to_dict() if bad.any() else {}
    if bad.any():
        frame = frame[~bad]
    if converted:
        frame = frame.assign(
            **{c: pd.to_numeric(frame[c].map(_number), errors="coerce") for c in converted}
        )
    if "step" in converted:
        frame = frame.assign(step=frame["step"].astype("int64"))
    return frame, counts


def _integral(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -_INT64 <= value < _INT64
    return isinstance(value, float) and value.is_integer() and abs(value) < _INT64


def _numeric(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float)


def _number(value: Any) -> Any:
    """A metric value pandas can compute with: booleans as 0/1, huge integers as floats."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and not -_INT64 <= value < _INT64:
        return math.inf if value > 0 else -math.inf
    return value


def aggregate(frame: Any, wanted: list[tuple[str, str]]) -> Any:
    """Per-run aggregates over steps, one column per ``(metric, how)``, indexed by hash.

    One groupby computes them all; missing values are skipped (``last`` is the last value
    logged), and a metric no run logged gives an all-missing column.
    """
    import pandas as pd

    for _, how in wanted:
        if how not in AGGREGATES:
            raise ValueError(f"unknown aggregate {how!r}; use one of {', '.join(AGGREGATES)}")
    wanted = list(dict.fromkeys(wanted))
    present = sorted({m for m, _ in wanted if m in frame.columns and m != "hash"})
    hows = sorted({h for _, h in wanted})
    if present and len(frame):
        table = frame.groupby("hash", sort=False)[present].agg(hows)
    else:
        table = pd.DataFrame(index=pd.Index([], name="hash"))
    columns = {}
    for metric, how in wanted:
        if (metric, how) in table.columns:
            columns[(metric, how)] = table[(metric, how)]
        else:
            columns[(metric, how)] = pd.Series(float("nan"), index=table.index)
    return pd.DataFrame(columns, index=table.index)
