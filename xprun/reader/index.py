"""The index of a log directory: one row per run, cached in ``<log_dir>/.xprun-index/``.

Built on first use and refreshed incrementally: a run directory is read again only when its
modification time changed (every record write is a rename into it, which changes that time)
or when it changed too close to the last scan to be trusted (git's "racy" rule: same-tick
changes would be invisible).  Deleted runs disappear.  The cache is a Parquet file written
atomically (temporary name, then rename): several readers and running experiments can share a
log directory, nobody waits for anybody, and a reader on a read-only directory simply keeps
its index in memory.  Parquet is data, not code: a log directory from someone else cannot run
anything through it.

Config and outcome values become ``config.<dotted key>`` and ``outcome.<dotted key>`` columns.
A column whose values mix types that Parquet cannot hold together is stored as JSON text and
decoded on load (its name is listed in the file's metadata).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import store

INDEX_DIR = ".xprun-index"
INDEX_FILE = "runs.parquet"
INDEX_VERSION = 1
RACY_NS = 2_000_000_000  # changes this close to a scan are re-read on the next one

# Columns every row has, in this order (then params.*, config.*, outcome.*).
INFO_COLUMNS = (
    "experiment",
    "hash",
    "nodeid",
    "status",
    "attempt",
    "start",
    "end",
    "duration",
    "host",
    "user",
    "error",
    "recovered",
    "path",
)
PRIVATE = ("_key", "_mtime_ns", "_skip")


@dataclass(frozen=True)
class Skipped:
    """A run directory that could not be read, and why."""

    path: Path
    reason: str


def flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            flatten(f"{prefix}.{key}", item, out)
    else:
        out[prefix] = value


def _load_yaml(path: Path) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, "rb") as f:
        return yaml.load(f, Loader=loader)


def _read_json_file(path: Path, what: str) -> Any:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _Damage(f"{what} is missing") from None
    if not data.strip():
        raise _Damage(f"{what} is empty")
    try:
        return json.loads(data)
    except ValueError as exc:
        raise _Damage(f"{what} is not valid JSON ({exc})") from None


class _Damage(Exception):
    pass


def read_run(run_dir: Path, key: str, mtime_ns: int) -> dict[str, Any]:
    """One index row for a run directory (a row with ``_skip`` set when it is damaged)."""
    row: dict[str, Any] = {"_key": key, "_mtime_ns": mtime_ns, "_skip": None, "path": str(run_dir)}
    try:
        if not (run_dir / store.RUN_JSON).exists() and store.list_claims(run_dir):
            row["_skip"] = ""  # being created right now: not damage, not a run yet
            return row
        record = _read_json_file(run_dir / store.RUN_JSON, "run.json")
        if not isinstance(record, dict) or "hash" not in record or "status" not in record:
            raise _Damage("run.json is not a run record")
        if record.get("format") != store.FORMAT_VERSION:
            raise _Damage(f"run.json has format {record.get('format')!r}; this xprun reads 1")
        try:
            config = _load_yaml(run_dir / "config.yaml")
        except FileNotFoundError:
            raise _Damage("config.yaml is missing") from None
        except Exception as exc:
            raise _Damage(f"config.yaml is not valid YAML ({type(exc).__name__})") from None
        if not isinstance(config, dict):
            raise _Damage("config.yaml does not hold a mapping")
        outcome: Any = None
        if record["status"] == store.STATUS_COMPLETE:
            outcome = _read_json_file(run_dir / store.OUTCOME_JSON, "outcome.json")
            if not isinstance(outcome, dict):
                raise _Damage("outcome.json does not hold a mapping")
    except _Damage as exc:
        row["_skip"] = str(exc)
        return row
    except OSError as exc:
        row["_skip"] = f"cannot be read ({exc})"
        return row
    error = record.get("error")
    row.update(
        experiment=record.get("experiment"),
        hash=record.get("hash"),
        nodeid=record.get("nodeid"),
        status=record.get("status"),
        attempt=record.get("attempt"),
        start=record.get("start"),
        end=record.get("end"),
        duration=record.get("duration"),
        host=record.get("host"),
        user=record.get("user"),
        error=error.get("type") if isinstance(error, dict) else None,
        recovered=bool(record.get("recovered", False)),
    )
    for name, value in (record.get("params") or {}).items():
        row[f"params.{name}"] = value
    for name, value in config.items():
        flatten(f"config.{name}", value, row)
    for name, value in (outcome or {}).items():
        flatten(f"outcome.{name}", value, row)
    return row


def scan(log_dir: Path) -> dict[str, tuple[str, int]]:
    """Every run directory under the log directory: key → (path, mtime in ns)."""
    found: dict[str, tuple[str, int]] = {}
    try:
        experiments = [e for e in os.scandir(log_dir) if e.is_dir() and not e.name.startswith(".")]
    except FileNotFoundError:
        return found
    for experiment in experiments:
        try:
            runs = list(os.scandir(experiment.path))
        except OSError:
            continue
        for run in runs:
            if run.name.startswith(".") or not run.is_dir():
                continue
            try:
                mtime = run.stat().st_mtime_ns
            except FileNotFoundError:
                continue
            found[f"{experiment.name}/{run.name}"] = (run.path, mtime)
    return found


class Index:
    """Loads, refreshes and saves the index of one log directory.

    The index is a DataFrame with one row per run directory (damaged ones included, with
    ``_skip`` set), plus the private columns ``_key`` and ``_mtime_ns``.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self.path = self.log_dir / INDEX_DIR / INDEX_FILE
        self.frame: Any = None
        self.scanned_ns = 0
        self.version = 0  # bumped whenever rows change

    # -- persistence --------------------------------------------------------------------------

    def _load(self) -> Any:
        import pandas as pd
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(self.path)
            info = json.loads((table.schema.metadata or {}).get(b"xprun", b"{}"))
        except Exception:
            info = {}  # missing, damaged or foreign: rebuilt from the run directories
        if info.get("version") != INDEX_VERSION:
            return pd.DataFrame(
                {"_key": pd.Series(dtype=object), "_mtime_ns": pd.Series(dtype="int64")}
            )
        frame = table.to_pandas()
        for name in info.get("json_columns", []):
            frame[name] = frame[name].map(lambda v: None if v is None else json.loads(v))
        self.scanned_ns = int(info.get("scanned_ns", 0))
        return frame

    def _save(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays, json_columns = {}, []
        for name in self.frame.columns:
            column = self.frame[name]
            try:
                arrays[name] = pa.array(column, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError, ValueError):
                json_columns.append(name)
                arrays[name] = pa.array(
                    [None if _is_missing(v) else json.dumps(v, allow_nan=True) for v in column],
                    type=pa.string(),
                )
        info = {
            "version": INDEX_VERSION,
            "scanned_ns": self.scanned_ns,
            "json_columns": json_columns,
        }
        table = pa.table(arrays).replace_schema_metadata({"xprun": json.dumps(info)})
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{INDEX_FILE}.{os.getpid()}.tmp"
            pq.write_table(table, tmp)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only log directory: the index stays in memory

    # -- refresh ------------------------------------------------------------------------------

    def refresh(self, clock: store.FsClock) -> bool:
        """Bring the index up to date; True when any row changed."""
        import pandas as pd

        if self.frame is None:
            self.frame = self._load()
        frame = self.frame
        started_ns = int(clock.now() * 1e9)
        found = scan(self.log_dir)
        known = dict(zip(frame["_key"], frame["_mtime_ns"], strict=True))
        trusted_before = self.scanned_ns - RACY_NS
        stale = {k for k in known if k not in found}
        new_rows = []
        for key, (path, mtime_ns) in found.items():
            old = known.get(key)
            if old is not None and old == mtime_ns and mtime_ns < trusted_before:
                continue
            new_rows.append(read_run(Path(path), key, mtime_ns))
            if old is not None:
                stale.add(key)
        changed = bool(stale or new_rows)
        if changed:
            kept = frame[~frame["_key"].isin(stale)] if stale else frame
            added = pd.DataFrame.from_records(new_rows) if new_rows else None
            parts = [p for p in (kept, added) if p is not None and len(p)]
            self.frame = pd.concat(parts, ignore_index=True, sort=False) if parts else kept
            self.version += 1
        racy = bool(new_rows) and any(r["_mtime_ns"] >= started_ns - RACY_NS for r in new_rows)
        if changed or racy or not self.path.exists():
            self.scanned_ns = started_ns
            self._save()
        return changed

    def skipped(self) -> list[Skipped]:
        frame = self.frame
        if frame is None or "_skip" not in frame.columns:
            return []
        rows = frame[frame["_skip"].map(lambda v: isinstance(v, str) and v != "")]
        return [Skipped(Path(p), r) for p, r in zip(rows["path"], rows["_skip"], strict=True)]


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
