"""The index of a log directory: one row per run, cached in ``<log_dir>/.xprun-index/``.

Built on first use and refreshed incrementally: a run directory is read again only when its
modification time changed (every record write is a rename into it, which changes that time)
or when it changed too close to the last scan to be trusted (git's "racy" rule: same-tick
changes would be invisible).  Deleted runs disappear.  The cache is a Parquet file written
atomically (temporary name, then rename): several readers and running experiments can share a
log directory, nobody waits for anybody, and a reader on a read-only directory simply keeps
its index in memory.  Parquet is data, not code: a log directory from someone else cannot run
anything through it.

Rows are made by :mod:`xprun.reader.rows`; config and outcome values become
``config.<dotted key>`` and ``outcome.<dotted key>`` columns.
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
from .files import read_bytes
from .rows import INFO_COLUMNS, check_row_types, read_run, run_path

__all__ = ["INFO_COLUMNS", "Index", "Skipped", "read_run", "scan"]

INDEX_DIR = ".xprun-index"
INDEX_FILE = "runs.parquet"
INDEX_VERSION = 2  # 2: values checked and normalised when read (rows.py)
INDEX_LIMIT = 4 << 30
RACY_NS = 2_000_000_000  # changes this close to a scan are re-read on the next one


@dataclass(frozen=True)
class Skipped:
    """A run directory (or a file of one) that could not be read, and why."""

    path: Path
    reason: str


def scan(log_dir: Path) -> dict[str, tuple[str, int, str | None]]:
    """Every run directory under the log directory: key → (path, mtime in ns, damage).

    Experiment and run folders that are links to directories are followed; a link that
    leads nowhere (dangling, or a loop) is reported as damage under its own key rather than
    ending the scan.  Plain files beside the run folders are not runs and are ignored.
    """
    found: dict[str, tuple[str, int, str | None]] = {}
    try:
        experiments = [e for e in os.scandir(log_dir) if not e.name.startswith(".")]
    except FileNotFoundError:
        return found
    for experiment in experiments:
        if not _is_folder(experiment, experiment.name, found):
            continue
        try:
            runs = list(os.scandir(experiment.path))
        except OSError as exc:
            found[experiment.name] = (experiment.path, 0, f"cannot be listed ({exc.strerror})")
            continue
        for run in runs:
            key = f"{experiment.name}/{run.name}"
            if run.name.startswith(".") or not _is_folder(run, key, found):
                continue
            try:
                mtime = run.stat().st_mtime_ns
            except FileNotFoundError:
                continue
            except OSError as exc:
                found[key] = (run.path, 0, f"cannot be read ({exc.strerror})")
                continue
            found[key] = (run.path, mtime, None)
    return found


def _is_folder(entry: os.DirEntry[str], key: str, found: dict[str, Any]) -> bool:
    """Whether ``entry`` is a directory (through a link); a broken link is noted as damage."""
    try:
        if entry.is_dir():
            return True
    except OSError as exc:  # a link loop, or a link into something unreadable
        found[key] = (entry.path, 0, f"is a symbolic link that cannot be followed ({exc.strerror})")
        return False
    if entry.is_symlink():
        found[key] = (entry.path, 0, "is a symbolic link to nothing")
    return False


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

    def _load(self, now_ns: int) -> Any:
        """The cached index, or an empty one when it is missing, foreign or not to be trusted.

        The cache lives in a directory anyone may have written, so it is checked as closely
        as a run record: its version, every column's type, every row's path, and a scan time
        that is not in the future (which would make every row look fresh forever).  Whatever
        fails, the runs are simply read again.
        """
        import pandas as pd

        empty = pd.DataFrame(
            {"_key": pd.Series(dtype=object), "_mtime_ns": pd.Series(dtype="int64")}
        )
        try:
            frame, scanned_ns = self._read_cache()
        except Exception:  # missing, damaged or foreign: rebuilt from the run directories
            return empty
        if frame is None or scanned_ns > now_ns + RACY_NS or check_row_types(frame):
            return empty
        if not (frame["path"] == run_path(self.log_dir, "") + frame["_key"]).all():
            return empty  # moved, or paths that lead elsewhere
        self.scanned_ns = scanned_ns
        return frame

    def _read_cache(self) -> tuple[Any, int]:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        data = read_bytes(self.path.parent, INDEX_FILE, INDEX_LIMIT)
        table = pq.read_table(pa.BufferReader(data))
        info = json.loads((table.schema.metadata or {}).get(b"xprun", b"{}"))
        scanned_ns = info.get("scanned_ns") if isinstance(info, dict) else None
        if info.get("version") != INDEX_VERSION or not isinstance(scanned_ns, int):
            return None, 0
        frame = table.to_pandas()
        for name in info.get("json_columns", []):
            # Decoded from Arrow, not from pandas: pandas 3 turns missing text into NaN.
            values = [None if v is None else json.loads(v) for v in table.column(name).to_pylist()]
            frame[name] = pd.Series(values, index=frame.index, dtype=object)
        return frame, scanned_ns

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

        started_ns = int(clock.now() * 1e9)
        if self.frame is None:
            self.frame = self._load(started_ns)
        frame = self.frame
        found = scan(self.log_dir)
        known = dict(zip(frame["_key"], frame["_mtime_ns"], strict=True))
        trusted_before = self.scanned_ns - RACY_NS
        stale = {k for k in known if k not in found}
        new_rows = []
        for key, (path, mtime_ns, damage) in found.items():
            old = known.get(key)
            if old is not None and old == mtime_ns and mtime_ns < trusted_before:
                continue
            if damage is None:
                new_rows.append(read_run(Path(path), key, mtime_ns))
            else:
                new_rows.append({"_key": key, "_mtime_ns": mtime_ns, "_skip": damage, "path": path})
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
