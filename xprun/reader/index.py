"""The index of a log directory: one row per run, cached in ``<log_dir>/.xprun-index/``.

Built on first use and refreshed incrementally.  An experiment folder whose times are those
of the last scan (and were not too close to it) is not listed again: a run added to it or
removed from it would have changed them, and so would a record that xprun writes into one of
its existing runs (``store.mark_changed``); only its runs that were not settled then
(running, being created, damaged) are looked at.  In a listed folder, a run directory is
read again only when its modification or status-change time changed (every record write is
a rename into it, which changes both; the status-change time cannot be set back, so a
directory whose modification time was restored is still seen), when it changed too close to
the last scan to be trusted (git's "racy" rule: same-tick changes would be invisible), or
when it was skipped last time (a partial file completed in place changes no directory time).
Deleted runs disappear.  A file rewritten in place (not renamed into the directory) that
stays readable changes no directory time, and a file that another program renamed into a
settled run changes no experiment folder's: xprun never writes so, and
``Reader(...).refresh(full=True)`` lists every folder and re-reads every run's files.
The cache is an Arrow IPC file written atomically (temporary name, then rename):
several readers and running experiments can share a log directory, nobody waits for anybody,
and a reader on a read-only directory simply keeps its index in memory.  Arrow is data, not
code: a log directory from someone else cannot run anything through it.

Rows are made by :mod:`xprun.reader.rows`; config and outcome values become
``config.<dotted key>`` and ``outcome.<dotted key>`` columns.
A column whose values mix types that Arrow cannot hold together, or hold lists or mappings,
is stored as JSON text and decoded on load (its name is listed in the file's metadata).  The
frame in memory is always the one decoded from the table just saved, so the first read and
every later one give the same frame, missing values and types included.

In ``params.*``, ``config.*`` and ``outcome.*`` columns a key set to ``null`` is a value,
not a gap: a column holding one is JSON text (``"null"`` for the value, Arrow's null for a
run without the key), decoded to an object column holding ``None`` and ``pd.NA``.  Integers
stay integers: ``int64`` without gaps, pandas' nullable ``Int64`` with them (Arrow's
``to_pandas`` would make them floats).
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from .. import journal, store
from ..states import Status
from .files import read_bytes
from .rows import (
    CODE,
    INFO_COLUMNS,
    PREFIXES,
    check_row_types,
    journal_row,
    read_run,
    run_path,
)

__all__ = ["INFO_COLUMNS", "Index", "Skipped", "read_run", "scan"]

INDEX_DIR = ".xprun-index"
INDEX_FILE = "runs.arrow"
INDEX_VERSION = 7  # 2: values checked and normalised when read (rows.py); 3: _ctime_ns; 4: _code
# 5: _code keeps code.own (how the experiment's module was digested); pruned runs' outcomes
# 6: an Arrow IPC file (was Parquet: 3x slower to write, 3x to read), experiment folders' times
# 7: _code dictionary-encoded (each distinct text once)
FORMER_INDEX_FILES = ("runs.parquet",)  # removed when the index is saved
INDEX_LIMIT = 4 << 30
RACY_NS = 2_000_000_000  # changes this close to a scan are re-read on the next one


@dataclass(frozen=True)
class Skipped:
    """A run directory (or a file of one) that could not be read, and why."""

    path: Path
    reason: str


class Found(NamedTuple):
    """What a scan found, column by column: run keys, paths, times (ns), and damage by key.

    A damaged entry is in the columns too (times 0), so every key found is in ``keys``."""

    keys: list[str]
    paths: list[str]
    mtimes: list[int]
    ctimes: list[int]
    damage: dict[str, str]
    #: Each experiment folder listed or trusted: its times (mtime, ctime ns) before listing.
    folders: dict[str, tuple[int, int]]
    #: The experiment folders not listed, their times unchanged since the last scan.
    trusted: set[str]

    def add(self, key: str, path: str, mtime: int, ctime: int, damage: str | None) -> None:
        self.keys.append(key)
        self.paths.append(path)
        self.mtimes.append(mtime)
        self.ctimes.append(ctime)
        if damage is not None:
            self.damage[key] = damage


def scan(log_dir: Path, trust: Callable[[str, int, int], bool] | None = None) -> Found:
    """Every run directory under the log directory, with its times and any damage.

    ``trust(name, mtime_ns, ctime_ns)`` says whether an experiment folder with these times
    is unchanged since the last scan: such a folder is not listed (its name goes to
    ``trusted``).  Experiment and run folders that are links to directories are followed; a
    link that leads nowhere (dangling, or a loop) is reported as damage under its own key
    rather than ending the scan.  Plain files beside the run folders are not runs and are
    ignored.
    """
    found = Found([], [], [], [], {}, {}, set())
    try:
        experiments = [e for e in os.scandir(log_dir) if not e.name.startswith(".")]
    except FileNotFoundError:
        return found
    for experiment in experiments:
        if not _is_folder(experiment, experiment.name, found):
            continue
        if trust is not None:
            try:
                info = os.stat(experiment.path)
            except OSError:
                pass  # listed below, which names what is wrong
            else:
                times = (info.st_mtime_ns, info.st_ctime_ns)
                if trust(experiment.name, *times):
                    found.folders[experiment.name] = times
                    found.trusted.add(experiment.name)
                    continue
        list_experiment(experiment.name, experiment.path, found)
    return found


def list_experiment(name: str, path: str, found: Found) -> None:
    """The run directories of one experiment folder into ``found``, and the folder's times
    as they were before it was listed (a run added meanwhile changes them again)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        found.add(name, path, 0, 0, f"cannot be listed ({exc.strerror})")
        return
    try:
        info = os.fstat(fd)
        _scan_folder(fd, name, path, found)
    except OSError as exc:
        found.add(name, path, 0, 0, f"cannot be listed ({exc.strerror})")
    else:
        found.folders[name] = (info.st_mtime_ns, info.st_ctime_ns)
    finally:
        os.close(fd)


def _scan_folder(fd: int, experiment: str, folder: str, found: Found) -> None:
    """The run directories of one experiment folder (opened as ``fd``) into ``found``.

    The hot loop of every refresh, one ``stat`` per run and little else: a listing of names
    and a ``stat`` relative to the folder (no ``DirEntry`` objects, no path joined per run
    but for the key); anything that is not plainly a directory takes the careful path."""
    keys, paths, mtimes, ctimes = found.keys, found.paths, found.mtimes, found.ctimes
    prefix, base = experiment + "/", os.path.join(folder, "")
    stat = os.stat
    for name in os.listdir(fd):
        if name[0] == ".":
            continue
        try:
            info = stat(name, dir_fd=fd)  # through a link, as a run folder may be one
        except OSError:
            info = None
        if info is None or info.st_mode & 0o170000 != 0o040000:  # not a directory
            _not_a_run(fd, name, prefix + name, base + name, info, found)
            continue
        keys.append(prefix + name)
        paths.append(base + name)
        mtimes.append(info.st_mtime_ns)
        ctimes.append(info.st_ctime_ns)


def _not_a_run(
    fd: int, name: str, key: str, path: str, info: os.stat_result | None, found: Found
) -> None:
    """What an entry that is not a directory (or could not be looked at) means: a plain
    file is no run and is ignored, as is one deleted meanwhile; a link that leads nowhere
    or loops, or an entry that cannot be looked at, is damage under its key."""
    if info is not None:
        return  # a file beside the runs
    try:
        os.stat(name, dir_fd=fd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if os.path.islink(path):
            reason = f"is a symbolic link that cannot be followed ({exc.strerror})"
        else:
            reason = f"cannot be read ({exc.strerror})"
        found.add(key, path, 0, 0, reason)
        return
    else:
        return  # appeared meanwhile: the next scan sees it
    if os.path.islink(path):
        found.add(key, path, 0, 0, "is a symbolic link to nothing")


def _is_folder(entry: os.DirEntry[str], key: str, found: Found) -> bool:
    """Whether ``entry`` is a directory (through a link); a broken link is noted as damage."""
    try:
        if entry.is_dir():
            return True
    except OSError as exc:  # a link loop, or a link into something unreadable
        reason = f"is a symbolic link that cannot be followed ({exc.strerror})"
        found.add(key, entry.path, 0, 0, reason)
        return False
    if entry.is_symlink():
        found.add(key, entry.path, 0, 0, "is a symbolic link to nothing")
    return False


class Index:
    """Loads, refreshes and saves the index of one log directory.

    The index is a DataFrame with one row per run directory (damaged ones included, with
    ``_skip`` set), plus the private columns ``_key``, ``_mtime_ns`` and ``_ctime_ns``.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self.path = self.log_dir / INDEX_DIR / INDEX_FILE
        self.frame: Any = None
        #: The Arrow table ``frame`` was decoded from (None while the index is empty): what
        #: is saved, and what a refresh merges new rows into.
        self.table: Any = None
        self.scanned_ns = 0
        #: The experiment folders' times (mtime, ctime ns) at ``scanned_ns``, by name.
        self.folders: dict[str, tuple[int, int]] = {}
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
            {
                "_key": pd.Series(dtype=object),
                "_mtime_ns": pd.Series(dtype="int64"),
                "_ctime_ns": pd.Series(dtype="int64"),
                "_skip": pd.Series(dtype=object),
            }
        )
        try:
            table, frame, scanned_ns, folders = self._read_cache()
        except Exception:  # missing, damaged or foreign: rebuilt from the run directories
            return empty
        if frame is None or scanned_ns > now_ns + RACY_NS or check_row_types(frame):
            return empty
        if not (frame["path"] == run_path(self.log_dir, "") + frame["_key"]).all():
            return empty  # moved, or paths that lead elsewhere
        self.table, self.scanned_ns, self.folders = table, scanned_ns, folders
        return frame

    def _read_cache(self) -> tuple[Any, Any, int, dict[str, tuple[int, int]]]:
        import pyarrow as pa

        data = read_bytes(self.path.parent, INDEX_FILE, INDEX_LIMIT)
        table = pa.ipc.open_file(pa.BufferReader(data)).read_all()
        table.validate(full=True)  # offsets and lengths within the buffers: the file is anyone's
        info = json.loads((table.schema.metadata or {}).get(b"xprun", b"{}"))
        scanned_ns = info.get("scanned_ns") if isinstance(info, dict) else None
        if info.get("version") != INDEX_VERSION or not isinstance(scanned_ns, int):
            return None, None, 0, {}
        json_columns = info.get("json_columns", [])
        if not (isinstance(json_columns, list) and set(json_columns) <= set(table.column_names)):
            return None, None, 0, {}
        frame = _decode(table, json_columns)
        return table, frame, scanned_ns, _folders(info.get("folders"))

    def _save(self, table: Any) -> None:
        """Write the index atomically (a temporary file, then a rename) as an Arrow IPC file,
        uncompressed (LZ4 took seconds to decompress at 1M runs; the file is read whole, not
        mapped, so a file truncated under the reader cannot crash it); the index files of
        earlier versions are removed."""
        import pyarrow as pa

        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{INDEX_FILE}.{os.getpid()}.tmp"
            table = table.unify_dictionaries()  # an IPC file holds one dictionary per column
            with (
                pa.OSFile(str(tmp), "wb") as sink,
                pa.ipc.new_file(sink, table.schema) as writer,
            ):
                writer.write_table(table)
            os.replace(tmp, self.path)
            for name in FORMER_INDEX_FILES:
                (folder / name).unlink(missing_ok=True)
        except OSError:
            pass  # a read-only log directory: the index stays in memory

    # -- refresh ------------------------------------------------------------------------------

    def refresh(self, clock: store.FsClock, full: bool = False) -> bool:
        """Bring the index up to date (``full``: read every run again); True when any row
        changed.  Rows are kept in run order (experiment, hash), so readers need not sort."""
        import numpy as np

        started_ns = int(clock.now() * 1e9)
        if self.frame is None:
            self.frame = self._load(started_ns)
        frame = self.frame
        found = scan(self.log_dir, None if full else self._trust)
        trusted_rows = self._look_at_unsettled(found)
        # Which rows are still good, compared column by column (no Python work per run):
        # same times, old enough not to be racy, and not skipped last time (a partial file
        # may be whole now).
        where = _positions(frame["_key"], found.keys)  # -1: a new key
        known = where >= 0
        at = where[known]
        good = np.zeros(len(found.keys), dtype=bool)
        if not full and len(at):
            mtimes = np.asarray(found.mtimes, dtype=np.int64)[known]
            good[known] = (
                (frame["_mtime_ns"].to_numpy()[at] == mtimes)
                & (frame["_ctime_ns"].to_numpy()[at] == np.asarray(found.ctimes)[known])
                & (mtimes < self.scanned_ns - RACY_NS)
                & frame["_skip"].isna().to_numpy()[at]
            )
        kept_rows = trusted_rows.copy()  # settled runs of folders not listed
        kept_rows[where[good]] = True
        stale = not kept_rows.all()
        new_rows = Columns()
        collecting = gc.isenabled()
        gc.disable()  # many small objects, no cycles: the collector's passes would grow with them
        try:
            self._read_rows(found, np.flatnonzero(~good).tolist(), new_rows, journaled=not full)
        finally:
            if collecting:
                gc.enable()
        changed = bool(stale or new_rows.count)
        if changed:
            if self.table is None or not len(frame):
                table = _in_run_order_table(_table(new_rows.columns))
            else:
                table = self._merged(kept_rows if stale else None, new_rows)
            self.table, self.frame = table, _table_frame(table)
            self.version += 1
        newest = max(new_rows.columns.get("_mtime_ns", [0]))
        racy = new_rows.count > 0 and newest >= started_ns - RACY_NS
        moved = found.folders != self.folders
        if changed or racy or moved or not self.path.exists():
            self.scanned_ns, self.folders = started_ns, found.folders
            if self.table is None:
                self.table = _encode_frame(self.frame)
            self._save(_with_info(self.table, self.scanned_ns, self.folders))
        return changed

    def _merged(self, kept_rows: Any, new_rows: Columns) -> Any:
        """The index's table with only ``kept_rows`` (None: all) and the new rows, in run
        order, as a cold read of the same runs would make it (the frame is then decoded
        from the table that is saved)."""
        import pyarrow as pa

        kept = self.table if kept_rows is None else self.table.filter(pa.array(kept_rows))
        if not new_rows.count:
            return kept
        added = _in_run_order_table(_table(new_rows.columns))
        return _in_run_order_table(_concat_tables(kept, added), len(kept))

    def _trust(self, name: str, mtime_ns: int, ctime_ns: int) -> bool:
        """Whether an experiment folder with these times holds no run changed since the last
        scan: the times it had then, and older than that scan by more than a clock tick could
        hide (git's racy rule, as for runs)."""
        return self.folders.get(name) == (mtime_ns, ctime_ns) and (
            mtime_ns < self.scanned_ns - RACY_NS
        )

    def _look_at_unsettled(self, found: Found) -> Any:
        """The rows of the trusted experiment folders that stay as they are (a boolean mask of
        the frame's rows); their runs that were not settled when read (running, being
        created, damaged) go into ``found``, to be compared as in a listed folder."""
        import numpy as np

        frame = self.frame
        if not found.trusted or not len(frame):
            return np.zeros(len(frame), dtype=bool)
        inside = _in_experiments(frame["_key"], found.trusted)
        unsettled = frame["_skip"].notna().to_numpy(dtype=bool, copy=True)
        if "status" in frame.columns:
            running = frame["status"] == Status.RUNNING
            unsettled = unsettled | running.to_numpy(dtype=bool, na_value=False)
        look = np.flatnonzero(inside & unsettled)
        keys, paths = frame["_key"].take(look).tolist(), frame["path"].take(look).tolist()
        for key, path in zip(keys, paths, strict=True):
            try:
                info = os.stat(path)
            except OSError:  # read again: the row says what is wrong
                found.add(key, path, 0, 0, None)
            else:
                found.add(key, path, info.st_mtime_ns, info.st_ctime_ns, None)
        return inside & ~unsettled

    @staticmethod
    def _read_rows(
        found: Found, positions: list[int], rows: Columns, journaled: bool = True
    ) -> None:
        """Read the runs at ``positions`` of a scan into ``rows``, in that order, in this
        thread (threads that parse contend for Python's lock: on a warm page cache 8 of them
        were 2.3 times slower than one).

        Many runs are read chunk by chunk; once a chunk had to be read from the disk (a cold
        page cache, as the kernel counts this thread's reads), a helper process runs ahead
        (:mod:`.prefetch`): it is sent the run folders of the next ``_AHEAD`` chunks and
        asks the kernel to read their files in while this thread parses, so the disk's
        waits overlap.  On a warm cache it is never started (it would only cost CPU).  It
        is never waited for, and the rows do not depend on it."""
        # From the results journal where it describes the files (``journaled``: not on a
        # full refresh, which reads every run's files), in scan order with the others.
        from_journal: _JournalLines | dict[int, Any] = (
            _JournalLines(found, positions) if journaled else {}
        )
        if len(positions) - len(from_journal) < _PREFETCH_FROM:
            for start in range(0, len(positions), _CHUNK):
                for row in _read_chunk(found, positions[start : start + _CHUNK], from_journal):
                    rows.add(row)
            return
        from .prefetch import Prefetcher, blocks_read

        chunks = [positions[i : i + _CHUNK] for i in range(0, len(positions), _CHUNK)]
        helper: Prefetcher | None = None
        sent: int  # the chunks before this one were sent to the helper, or read before it
        try:
            for n, chunk in enumerate(chunks):
                blocks = blocks_read()
                for row in _read_chunk(found, chunk, from_journal):
                    rows.add(row)
                if helper is None and blocks_read() - blocks > _COLD_BLOCKS * len(chunk):
                    helper, sent = Prefetcher(), n + 1
                if helper is not None:  # the chunks up to _AHEAD after this one
                    for ahead in chunks[sent : n + _AHEAD + 1]:
                        helper.send(_folders_to_read(found, ahead, from_journal))
                    sent = n + _AHEAD + 1
        finally:
            if helper is not None:
                helper.close()

    def skipped(self) -> list[Skipped]:
        frame = self.frame
        if frame is None or "_skip" not in frame.columns:
            return []
        reasons = frame["_skip"]
        if not reasons.notna().any():
            return []
        rows = frame[reasons.notna() & (reasons != "")]  # "": being created, not damage
        return [Skipped(Path(p), r) for p, r in zip(rows["path"], rows["_skip"], strict=True)]


#: Runs read in chunks of ``_CHUNK`` from this many on, the prefetching helper started once
#: a chunk read more than ``_COLD_BLOCKS`` blocks of 512 bytes per run from the disk (a file
#: read cold is 8 or more; one on a warm cache, none), and sent ``_AHEAD`` chunks ahead.
_PREFETCH_FROM = 512
_CHUNK = 256
_AHEAD = 32
_COLD_BLOCKS = 4


def _folders_to_read(
    found: Found, positions: list[int], journaled: _JournalLines | dict[int, Any]
) -> list[str]:
    """The run folders at ``positions`` of a scan whose files will be read (not the damaged
    ones, nor those whose rows come from the results journal)."""
    damage, keys, paths = found.damage, found.keys, found.paths
    return [paths[n] for n in positions if keys[n] not in damage and n not in journaled]


def _read_chunk(
    found: Found, positions: list[int], journaled: _JournalLines | dict[int, Any]
) -> list[dict[str, Any]]:
    """The index rows of the runs at ``positions`` of a scan: from their results-journal
    lines (``journaled``, by position; used up here) where those describe their files, else
    from the files."""
    rows = []
    keys, paths, mtimes, ctimes, damage = (
        found.keys,
        found.paths,
        found.mtimes,
        found.ctimes,
        found.damage,
    )
    lines = {}
    for n in positions:
        if n in journaled:
            entries = journaled.pop(n)
            if entries:  # only lines that can describe the folder as the scan saw it
                lines[n] = journal.about_folder(entries, mtimes[n], ctimes[n])
    journal.parse_all([entry for entries in lines.values() for entry in entries])
    for n in positions:
        key, path, mtime_ns, ctime_ns = keys[n], paths[n], mtimes[n], ctimes[n]
        entries = lines.get(n)
        if entries:
            row = journal_row(entries, key, key.rpartition("/")[2], path, mtime_ns, ctime_ns)
            if row is not None:
                rows.append(row)
                continue
        reason = damage.get(key)
        if reason is None:
            rows.append(read_run(path, key, mtime_ns, ctime_ns))
        else:
            done = {"_key": key, "_mtime_ns": mtime_ns, "_ctime_ns": ctime_ns}
            rows.append({**done, "_skip": reason, "path": path})
    return rows


#: An experiment folder's results journal is read when at least this many of its runs are
#: to be read (fewer are read faster from their own files than by reading the journal).
_JOURNAL_FROM = 64


class _JournalLines:
    """The results-journal lines (:mod:`xprun.journal`), by scan position, of the runs at
    ``positions`` whose experiment folder has ``_JOURNAL_FROM`` or more of them to read.

    A folder's journal is read when the first of its runs is asked for, and its lines are
    given up as they are used (:meth:`pop`), decoded chunk by chunk (:func:`_read_chunk`):
    a scan lists folder after folder, so a million runs are never held at once, as text or
    decoded."""

    def __init__(self, found: Found, positions: list[int]) -> None:
        self._found = found
        self._folder_of: dict[int, str] = {}  # position -> its folder, while not read
        self._wanted: dict[str, dict[str, int]] = {}  # folder -> its runs' names -> positions
        self._lines: dict[int, list[journal.Entry]] = {}
        by_folder: dict[str, dict[str, int]] = {}
        keys, damage = found.keys, found.damage
        for n in positions:
            key = keys[n]
            if key not in damage:
                experiment, _, name = key.rpartition("/")
                by_folder.setdefault(experiment, {})[name] = n
        for experiment, wanted in by_folder.items():
            if len(wanted) >= _JOURNAL_FROM:
                self._wanted[experiment] = wanted
                for n in wanted.values():
                    self._folder_of[n] = experiment

    def __contains__(self, n: int) -> bool:
        return n in self._folder_of or n in self._lines

    def __len__(self) -> int:
        return len(self._folder_of) + len(self._lines)

    def pop(self, n: int) -> list[journal.Entry] | None:
        """The lines of the run at position ``n`` (None: none), given up."""
        experiment = self._folder_of.get(n)
        if experiment is not None:
            self._read(experiment)
        return self._lines.pop(n, None)

    def _read(self, experiment: str) -> None:
        wanted = self._wanted.pop(experiment)
        for n in wanted.values():
            del self._folder_of[n]
        folder = os.path.dirname(self._found.paths[next(iter(wanted.values()))])
        for name, entries in journal.read(folder, set(wanted), read_bytes).items():
            self._lines[wanted[name]] = entries


#: Row shapes :class:`Columns` remembers at once (logs whose runs all differ in keys).
_MAX_SHAPES = 256


class Columns:
    """Rows as they are read, stored column by column (a dict of lists): no row object is
    kept, so memory holds each value once, and the table is built from lists directly."""

    def __init__(self) -> None:
        import pandas as pd

        self.columns: dict[str, list[Any]] = {}
        self.count = 0
        self._absent = pd.NA  # a run without the key (None is a key set to null)
        # A row's keys → (the lists its values go to, the lists it leaves missing).  Runs of
        # a sweep share a few shapes (complete, failed): a row then costs its appends only,
        # whatever the other shapes added; a new column makes every shape be worked out anew.
        self._shapes: dict[tuple[str, ...], tuple[tuple[list[Any], ...], ...]] = {}

    def add(self, row: dict[str, Any]) -> None:
        keys = tuple(row)
        shape = self._shapes.get(keys)
        if shape is None:
            shape = self._shape(keys)
        present, missing = shape
        for column, value in zip(present, row.values()):  # noqa: B905 (same length)
            column.append(value)
        absent = self._absent
        for column in missing:
            column.append(absent)
        self.count += 1

    def _shape(self, keys: tuple[str, ...]) -> tuple[tuple[list[Any], ...], ...]:
        columns = self.columns
        added = [name for name in keys if name not in columns]
        for name in added:  # earlier rows lack it
            columns[name] = [self._absent] * self.count
        if added or len(self._shapes) >= _MAX_SHAPES:
            self._shapes.clear()
        names = set(keys)
        present = tuple(columns[name] for name in keys)
        missing = tuple(column for name, column in columns.items() if name not in names)
        shape = self._shapes[keys] = (present, missing)
        return shape


def _in_experiments(keys: Any, names: set[str]) -> Any:
    """Which of the index's ``keys`` (``<experiment>/<hash>``) are runs of the experiments
    ``names`` (a boolean array), worked out in Arrow, not per row in Python."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = pa.array(keys, type=pa.large_string())
    if len(names) <= 16:  # a prefix test per experiment: no per-row strings made
        inside = None
        for name in names:
            starts = pc.starts_with(keys, pattern=name + "/")
            inside = starts if inside is None else pc.or_(inside, starts)
        return pc.fill_null(inside, False).to_numpy(zero_copy_only=False)
    experiment = pc.list_element(pc.split_pattern(keys, "/", max_splits=1), 0)
    wanted = pa.array(sorted(names), type=pa.large_string())
    inside = pc.and_(pc.is_in(experiment, value_set=wanted), pc.match_substring(keys, "/"))
    return inside.to_numpy(zero_copy_only=False)


def _folders(value: Any) -> dict[str, tuple[int, int]]:
    """The experiment folders' times from a cache's metadata; anything not as written is
    none at all (every folder is then listed)."""
    if not isinstance(value, dict):
        return {}
    folders = {}
    for name, times in value.items():
        if not (
            isinstance(name, str)
            and isinstance(times, list)
            and len(times) == 2
            and all(type(t) is int for t in times)
        ):
            return {}
        folders[name] = (times[0], times[1])
    return folders


def _json_columns(table: Any) -> set[str]:
    """The columns of a table made by :func:`_table` that hold JSON text."""
    return set(json.loads(table.schema.metadata[b"xprun"])["json_columns"])


def _concat_tables(kept: Any, added: Any) -> Any:
    """``kept``'s rows then ``added``'s, both made by :func:`_table`, as :func:`_table`
    would make the table of all their rows (what a cold read gives).  A column of one type
    in both (or holding no value on one side) is joined as it is, in Arrow: the usual
    refresh, a few runs added or changed.  A column whose types differ (integers, then a
    float; text, then a list) is made again from both sides' values, as :func:`_table` makes
    any column: only such a column costs Python work per row."""
    import pyarrow as pa

    kept_json, added_json = _json_columns(kept), _json_columns(added)
    known = set(kept.column_names)
    names = [*kept.column_names, *(n for n in added.column_names if n not in known)]
    arrays, json_columns = {}, []
    for name in names:
        one = kept.column(name) if name in kept.column_names else None
        other = added.column(name) if name in added.column_names else None
        one_json, other_json = name in kept_json, name in added_json
        if one is None or (other is not None and pa.types.is_null(one.type)):
            one, one_json = pa.nulls(len(kept), other.type), other_json  # type: ignore[union-attr]
        if other is None or pa.types.is_null(other.type):
            other, other_json = pa.nulls(len(added), one.type), one_json
        if one.type == other.type and one_json == other_json:
            chunks = [*_chunks(one), *_chunks(other)]
            array, is_json = pa.chunked_array(chunks, type=one.type), one_json
        else:
            data = name.startswith(PREFIXES)
            values = _values(one, one_json, data) + _values(other, other_json, data)
            array, is_json = _column(name, values)
        arrays[name] = array
        if is_json:
            json_columns.append(name)
    table = pa.table(arrays)
    return table.replace_schema_metadata({"xprun": json.dumps({"json_columns": json_columns})})


def _chunks(array: Any) -> list[Any]:
    return list(array.chunks) if hasattr(array, "chunks") else [array]


def _values(array: Any, is_json: bool, data: bool) -> list[Any]:
    """The Python values a column of :func:`_table` was made from: JSON text decoded, and a
    missing value ``pd.NA`` in data columns (where ``None`` is a key set to null)."""
    import pandas as pd

    absent = pd.NA if data else None
    if is_json:
        return [absent if v is None else json.loads(v) for v in array.to_pylist()]
    return [absent if v is None else v for v in array.to_pylist()]


def _in_run_order_table(table: Any, first_added: int | None = None) -> Any:
    """``table`` sorted by experiment, then hash, stably, rows without them last (as
    ``DataFrame.sort_values(..., kind="stable", na_position="last")``).

    ``first_added``: the rows from there on were appended to rows in run order, each part
    with its damaged rows (no experiment) last.  The added readable rows usually belong
    after the kept ones (a new experiment, later hashes): moving the kept damaged rows
    behind them, by slices that copy nothing, then makes a sort unneeded."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = table.column_names
    if "experiment" not in names or "hash" not in names:
        return table
    experiment, run_hash = table.column("experiment"), table.column("hash")
    if _ordered(experiment, run_hash):
        return table
    if first_added is not None:
        valid = pc.is_valid(experiment).to_numpy(zero_copy_only=False)
        kept_good = _leading(valid[:first_added])
        added_good = first_added + _leading(valid[first_added:])
        parts = [(0, kept_good), (first_added, added_good), (kept_good, first_added)]
        parts.append((added_good, len(table)))
        moved = pa.concat_tables([table.slice(a, b - a) for a, b in parts if b > a])
        if _ordered_readable(moved, kept_good + added_good - first_added):
            return moved if moved.column(0).num_chunks <= 32 else moved.combine_chunks()
    # Missing values go last by default, in every pyarrow (naming it is deprecated in 25).
    order = pc.sort_indices(table, sort_keys=[("experiment", "ascending"), ("hash", "ascending")])
    return table.take(order)


def _leading(valid: Any) -> int:
    """How many of ``valid``'s first values are True."""
    import numpy as np

    false = np.flatnonzero(~valid)
    return int(false[0]) if len(false) else len(valid)


def _ordered_readable(table: Any, readable: int) -> bool:
    """Whether the first ``readable`` rows are in run order and none after them is readable."""

    head = table.slice(0, readable)
    tail = table.column("experiment").slice(readable)
    if tail.null_count != len(tail):
        return False
    return _ordered(head.column("experiment"), head.column("hash"))


def _positions(keys: Any, found: list[str]) -> Any:
    """The row of each found key in the index's ``keys`` (-1 for a new one), hashed in Arrow
    (``pd.Index.get_indexer`` on Arrow-backed text is several times slower)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    known = pa.array(keys, type=pa.large_string())
    where = pc.index_in(pa.array(found, type=pa.large_string()), value_set=known)
    return where.fill_null(-1).to_numpy(zero_copy_only=False).astype("int64")


def in_run_order(frame: Any) -> bool:
    """Whether ``frame``'s rows are sorted by experiment, then hash (checked in Arrow, not
    per row in Python)."""
    import pyarrow as pa

    if len(frame) < 2:
        return True
    try:
        experiment, run_hash = pa.array(frame["experiment"]), pa.array(frame["hash"])
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return False
    return _ordered(experiment, run_hash)


def _ordered(experiment: Any, run_hash: Any) -> bool:
    """Whether rows with these experiment and hash arrays are in run order, none missing."""
    import pyarrow.compute as pc

    if experiment.null_count or run_hash.null_count:
        return False
    n = len(experiment) - 1
    if n < 1:
        return True
    e0, e1, h0, h1 = experiment[:n], experiment[1:], run_hash[:n], run_hash[1:]
    ordered = pc.or_(pc.less(e0, e1), pc.and_(pc.equal(e0, e1), pc.less_equal(h0, h1)))
    return bool(pc.all(ordered).as_py())


# -- the table: a DataFrame's columns as Arrow arrays, JSON text where Arrow cannot ------------

_ARROW_ERRORS: tuple[type[BaseException], ...] = (TypeError, OverflowError, ValueError)


def _arrow(values: Any) -> Any:
    """``values`` as a flat Arrow array, or None when it takes JSON text (mixed types, lists,
    mappings, integers beyond 64 bits)."""
    import pyarrow as pa

    try:
        array = pa.array(values, from_pandas=True)  # NaN is missing, as pandas has it
    except (pa.ArrowInvalid, pa.ArrowTypeError, *_ARROW_ERRORS):
        return None
    if pa.types.is_nested(array.type):
        return None
    if pa.types.is_string(array.type):  # as pandas holds text: loaded without a copy
        return array.cast(pa.large_string())
    return array


def _json_array(values: Any, null_is_value: bool) -> Any:
    """JSON text of each value; missing ones are Arrow's null (and so is ``None`` unless
    ``null_is_value``: a data column's ``null``, written as the text ``null``)."""
    import pyarrow as pa

    missing = _is_absent if null_is_value else _is_missing
    return pa.array(
        [None if missing(v) else json.dumps(v, allow_nan=True) for v in values],
        type=pa.large_string(),
    )


def _table(columns: dict[str, Any]) -> Any:
    import pyarrow as pa

    arrays, json_columns = {}, []
    for name, values in columns.items():
        arrays[name], is_json = _column(name, values)
        if is_json:
            json_columns.append(name)
    table = pa.table(arrays)
    return table.replace_schema_metadata({"xprun": json.dumps({"json_columns": json_columns})})


def _column(name: str, values: Any) -> tuple[Any, bool]:
    """One column's Arrow array, and whether it is JSON text (mixed types, lists, mappings;
    or in a data column, a key set to null beside missing values)."""
    import pyarrow as pa

    array = _arrow(values)
    data = name.startswith(PREFIXES)
    # A gap in a data column may be a key set to null, which Arrow's null would lose.
    if array is None or (data and array.null_count and _holds_none(values)):
        return _json_array(values, null_is_value=data), True
    if name == CODE and pa.types.is_large_string(array.type):
        # Each distinct text once: a sweep's runs share a few, and each is the list of the
        # files a run imported (a kilobyte or more per row, most of a 100k-run index).
        array = array.dictionary_encode()
    return array, False


def _holds_none(values: Any) -> bool:
    """Whether ``values`` (a list, or a frame's column) holds ``None`` itself (not ``pd.NA``
    or NaN): only object columns can."""
    dtype = getattr(values, "dtype", None)
    if dtype is not None and dtype.kind != "O":
        return False
    return any(v is None for v in values)


def _encode_frame(frame: Any) -> Any:
    return _table({name: frame[name] for name in frame.columns})


def _with_info(table: Any, scanned_ns: int, folders: dict[str, tuple[int, int]]) -> Any:
    """``table`` with the metadata the cache is checked against when loaded."""
    info = json.loads(table.schema.metadata[b"xprun"])
    info.update(version=INDEX_VERSION, scanned_ns=scanned_ns, folders=folders)
    return table.replace_schema_metadata({"xprun": json.dumps(info)})


def _decode(table: Any, json_columns: list[str]) -> Any:
    """The DataFrame of a table, JSON columns decoded from Arrow, not from pandas (pandas 3
    turns missing text into NaN).  In info and private columns a missing value is ``None``
    (object columns); in data columns it is ``pd.NA`` (NaN in float columns, as pandas has
    it) and ``None`` is a key set to null.  Integer columns with gaps are ``Int64``."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    frame = table.to_pandas()
    decoded = set(json_columns)
    for name in table.column_names:
        column = table.column(name)
        data = name.startswith(PREFIXES)
        if name in decoded:
            absent = pd.NA if data else None
            values = [absent if v is None else json.loads(v) for v in column.to_pylist()]
            frame[name] = pd.Series(values, index=frame.index, dtype=object)
        elif not data or not column.null_count:
            continue
        elif pa.types.is_integer(column.type) and pa.types.is_signed_integer(column.type):
            numbers = column.cast(pa.int64()).fill_null(0).to_numpy()
            mask = column.is_null().to_numpy(zero_copy_only=False)
            frame[name] = pd.Series(
                pd.arrays.IntegerArray(np.asarray(numbers, dtype=np.int64), mask),
                index=frame.index,
            )
        elif frame[name].dtype == object:  # booleans, text (pandas 2) or no value at all
            frame[name] = frame[name].astype(object).where(frame[name].notna(), pd.NA)
    return frame


def _table_frame(table: Any) -> Any:
    """The DataFrame of a table made by :func:`_table` (its JSON columns named within)."""
    return _decode(table, json.loads(table.schema.metadata[b"xprun"])["json_columns"])


def _is_missing(value: Any) -> bool:
    return value is None or _is_absent(value)


def _is_absent(value: Any) -> bool:
    """A run without the key: ``pd.NA`` (or NaN, as pandas fills gaps of float columns)."""
    if isinstance(value, float):
        return value != value
    return type(value).__name__ == "NAType"
