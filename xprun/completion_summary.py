"""The completion summary of an experiment folder: which runs were complete, and how each
record looked then, so that a launch finding them complete again reads no ``run.json``.

``<log_dir>/<experiment>/.complete.json`` maps each run hash whose record was seen complete
to the ``stat`` signature of that ``run.json`` (inode, size, mtime, ctime in nanoseconds) and
the one thing the skip check needs beyond "complete": the recorded code digest (staleness),
stored once per distinct value and referenced by index.  The skip check stats each run's
``run.json`` (one stat per run, as the plainest loop would) and trusts an entry only when the
signature is equal; otherwise it reads and parses the record as before and updates the entry.

Why it cannot lie:

- every record xprun writes is a new file renamed over the old one (a new inode, a new
  ctime): a ``--force`` rerun, a failed attempt, ``xprun rm``, ``gc``, a record edited by
  hand, all change the signature, and the record is read again;
- the signature and the content come from the same open file (``fstat`` of the descriptor
  read), so a record replaced between the two is never paired with the other's content;
- an entry is stored only for a record whose ctime is older than the read by
  ``_RACY_NS``: a file changed in place within the same clock tick as it was read (same
  inode, same size, same times) could otherwise keep a signature it no longer deserves
  (git's "racily clean" index entries);
- two launchers at once each write the whole summary atomically: the last one wins, and an
  entry lost that way only costs a read next time;
- a summary that cannot be read, is damaged, or has another version is ignored (and
  replaced), never trusted.

It is a cache: deleting it is always safe (the next launch reads every record once, or
takes it from the run's results-journal line when that line's signature of ``run.json`` is
the file's own: :mod:`xprun.journal`).  Its
name starts with a dot, as xprun's own files do: the Reader, ``gc``, ``status``, ``rm`` and
node-id completion skip such names in experiment folders.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

from . import journal, store
from .staleness import code_digest_of

#: The summary's file name inside each experiment folder.
NAME = ".complete.json"
#: Its format; a summary of any other version is ignored (and rewritten).
VERSION = 1
#: A summary larger than this is not read (ignored as damaged).
_MAX_BYTES = 256 * 1024 * 1024
#: How much older than its read a record's ctime must be to be remembered (see above): more
#: than a coarse file-system clock tick.
_RACY_NS = 100_000_000
#: A summary's temporary file this old (seconds) is an abandoned write, not one in progress.
_ABANDONED_S = 3600.0


class Complete:
    """A run found complete, with the code digest its record names (None: none recorded).
    One instance per distinct digest of a folder: a large sweep shares a handful."""

    __slots__ = ("code_digest",)

    def __init__(self, code_digest: str | None) -> None:
        self.code_digest = code_digest

    def __repr__(self) -> str:
        return f"Complete({self.code_digest!r})"


def complete_runs(run_dirs: list[tuple[str, str]]) -> list[Complete | None]:
    """For each run directory (its experiment folder and name, as text), a ``Complete`` when
    its ``run.json`` says complete (what ``store.read_state`` would say), else None.

    One summary read and at most one write per folder, one ``stat`` per run known to the
    summary, one read of each other existing run's record.
    """
    by_folder: dict[str, list[int]] = {}
    for i, (folder, _) in enumerate(run_dirs):
        by_folder.setdefault(folder, []).append(i)
    found: list[Complete | None] = [None] * len(run_dirs)
    for folder, indices in by_folder.items():
        summary = _Folder(folder)
        summary.check([run_dirs[i][1] for i in indices], found, indices)
        summary.save()
    return found


class _Folder:
    """One experiment folder's summary, checked against its run directories."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.path = os.path.join(folder, NAME)
        self.codes, self.entries = _load(self.path)
        self.changed = False
        self._shared: dict[str | None, Complete] = {}
        self._index: dict[str | None, int] | None = None
        self._lines: dict[str, list[journal.Entry]] = {}  # the journal's, of runs to read

    def check(self, names: list[str], found: list[Complete | None], slots: list[int]) -> None:
        """Fill ``found[slot]`` for each run ``name`` of this folder: the hot loop of a
        relaunch (one ``stat`` per run the summary knows, no allocation beyond it)."""
        entries = self.entries
        known = [self._complete(code) for code in self.codes]
        prefix = os.path.join(self.folder, "")
        tail = "/" + store.RUN_JSON
        listing: set[str] | None = None
        now = time.time_ns()
        unknown = [name for name in names if name not in entries]
        self._lines = _journal_lines(self.folder, unknown)
        for name, slot in zip(names, slots, strict=True):
            path = prefix + name + tail
            entry = entries.get(name)
            if entry is not None:
                try:
                    info = os.stat(path)
                except OSError:
                    info = None
                if (
                    info is not None
                    and info.st_ino == entry[0]
                    and info.st_size == entry[1]
                    and info.st_mtime_ns == entry[2]
                    and info.st_ctime_ns == entry[3]
                ):
                    found[slot] = known[entry[4]]
                    continue
                del entries[name]
                self.changed = True
            else:
                if listing is None:  # a run never seen complete: does its directory exist?
                    listing = _entries(self.folder)
                if name not in listing:
                    continue
            found[slot] = self._read(name, path, now)

    def _read(self, name: str, path: str, now: int) -> Complete | None:
        """The record read and judged as ``store.certainly_complete`` does; remembered when
        complete and not racy.  Its results-journal line stands for it when the line's
        signature of ``run.json`` is the file's own (:mod:`xprun.journal`): then nothing is
        read but the file's ``lstat``."""
        lines = self._lines.pop(name, None)
        info, record = _journaled_record(path, lines) if lines else (None, None)
        if info is None:
            info, record = _read_record(path)
        if record is None or info is None:
            return None
        digest = code_digest_of(record)
        if max(info.st_ctime_ns, info.st_mtime_ns) < now - _RACY_NS:
            self.entries[name] = [*_signature(info), self._code_index(digest)]
            self.changed = True
        return self._complete(digest)

    def _complete(self, digest: str | None) -> Complete:
        shared = self._shared.get(digest)
        if shared is None:
            shared = self._shared[digest] = Complete(digest)
        return shared

    def _code_index(self, digest: str | None) -> int:
        if self._index is None:
            self._index = {code: i for i, code in enumerate(self.codes)}
        index = self._index.get(digest)
        if index is None:
            index = self._index[digest] = len(self.codes)
            self.codes.append(digest)
        return index

    def save(self) -> None:
        """Write the summary if it changed (atomically; no fsync: it is a cache).  A folder
        that cannot be written (read-only log directory, full disk) keeps its old summary,
        which stays safe to use."""
        if not self.changed:
            return
        used = sorted({entry[4] for entry in self.entries.values()})
        renumber = {old: new for new, old in enumerate(used)}
        data = {
            "version": VERSION,
            "codes": [self.codes[i] for i in used],
            "runs": {
                name: [*entry[:4], renumber[entry[4]]] for name, entry in self.entries.items()
            },
        }
        try:
            store.write_bytes_atomic(
                Path(self.path), json.dumps(data, separators=(",", ":")).encode()
            )
        except OSError:
            pass
        _remove_abandoned_writes(self.folder)


def _remove_abandoned_writes(folder: str) -> None:
    """Remove the temporary files of summary writes whose launcher was killed mid-write
    (``kill -9``: nothing else removes them), once older than :data:`_ABANDONED_S`; a younger
    one may be another launcher's write in progress."""
    prefix = NAME + "."
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(".tmp")]
    except OSError:
        return
    old = time.time() - _ABANDONED_S
    for name in names:
        path = os.path.join(folder, name)
        try:
            if os.lstat(path).st_mtime < old:
                os.unlink(path)
        except OSError:
            continue  # gone meanwhile, or not ours to remove: left as it is


#: A folder's results journal is read when at least this many of its runs are unknown to
#: the summary (fewer are read faster from their records).
_JOURNAL_FROM = 64


def _journal_lines(folder: str, names: list[str]) -> dict[str, list[journal.Entry]]:
    """The results-journal lines of the runs ``names`` of the experiment ``folder``, by name
    (none when there are fewer than ``_JOURNAL_FROM``)."""
    if len(names) < _JOURNAL_FROM:
        return {}

    def read_file(directory: str, name: str, limit: int) -> bytes:
        return store.read_regular(os.path.join(directory, name), limit)

    return journal.read(folder, set(names), read_file)


def _journaled_record(
    path: str, lines: list[journal.Entry]
) -> tuple[os.stat_result | None, dict[str, Any] | None]:
    """``run.json``'s ``lstat`` and the record its journal lines give, when one of them has
    that very signature (and no other such line disagrees); else (None, None): read it."""
    try:
        info = os.lstat(path)
    except OSError:
        return None, None
    if not stat.S_ISREG(info.st_mode):
        return None, None
    signature = _signature(info)
    chosen: tuple[bytes, dict[str, Any]] | None = None
    for line in lines:
        record = journal.record_of(line, signature)  # the record alone, decoded
        if record is None:
            continue
        if chosen is not None and chosen[0] != line.body:
            return None, None  # two lines for this very file that disagree: read it
        chosen = (line.body, record)
    if chosen is None:
        return None, None
    record = chosen[1]
    return info, (record if store.is_complete_record(record) else None)


def _signature(info: os.stat_result) -> list[int]:
    return [info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]


def _entries(folder: str) -> set[str]:
    try:
        return {entry.name for entry in os.scandir(folder)}
    except OSError:  # no folder yet (or not one): no run directory in it
        return set()


def _read_record(path: str) -> tuple[os.stat_result | None, dict[str, Any] | None]:
    """The ``fstat`` of the record read and the record, when it says complete (trusted as
    ``store.read_record`` trusts a record)."""
    try:
        info, data = store.read_regular_stat(path, store.RECORD_MAX_BYTES)
        record = json.loads(data)
    except (OSError, ValueError):
        return None, None
    return (info, record) if store.is_complete_record(record) else (None, None)


def _load(path: str) -> tuple[list[str | None], dict[str, list[int]]]:
    """The summary's codes and entries; empty for a missing, damaged or foreign one.  Every
    entry is checked for shape: a summary is trusted no more than a record."""
    try:
        data = json.loads(store.read_regular(path, _MAX_BYTES))
    except (OSError, ValueError):
        return [], {}
    if type(data) is not dict or data.get("version") != VERSION:
        return [], {}
    codes, runs = data.get("codes"), data.get("runs")
    if type(codes) is not list or type(runs) is not dict:
        return [], {}
    if not all(code is None or type(code) is str for code in codes):
        return [], {}
    n = len(codes)
    for entry in runs.values():  # the signature's values need no check: compared only
        if type(entry) is not list or len(entry) != 5 or type(entry[4]) is not int:
            return [], {}
        if not 0 <= entry[4] < n:
            return [], {}
    return codes, runs
