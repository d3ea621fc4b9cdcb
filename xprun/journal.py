"""The results journal of an experiment folder: each finished attempt, written as it ends,
so that a Reader meeting a log directory for the first time reads one file per writer
instead of three per run.

``<log_dir>/.xprun-journal/<experiment>/<writer>.jsonl`` is appended to by one process only
(its name is made unique by the process that creates it, with ``O_EXCL``), one line per
attempt that wrote its final record, after the record is durable and the claim released.
A line holds what the Reader's row of the run is made of: the fields of ``run.json`` that
are columns (not its packages, machine or Git details), the config as JSON (the values
``config.yaml`` holds) and, for a complete or pruned run, the outcome as written to
``outcome.json``.  With it, the **signature** of the files it describes: ``run.json``'s
inode, size, modification and change times (taken while the claim was held) and the run
folder's modification and change times (taken once the claim was released).

Why it cannot lie (the Reader uses a line only when all of this holds, else it reads the
run's files as before):

- every write into a run folder is a new file renamed in (a record, a claim, a file of a
  rerun) or a removal: each changes the folder's times, and a record rewritten changes
  ``run.json``'s inode and change time too, so a line describes the run only while both
  are what they were when it was written.  A rerun (``--force``, a retry, a takeover), a
  recovery, ``xprun rm``, a record edited with an editor, a file another program renamed
  in: all make the line's signature differ;
- the change time cannot be set back by anyone but the kernel, and a copy of the log
  directory (``cp``, ``rsync``, an archive) gets new inodes, so a journal is trusted only
  on the file system and in the very folder where it was written;
- a line is written by the process that holds the run's claim while it reads ``run.json``'s
  signature: no other xprun process writes the run meanwhile;
- each line carries an ``xxh64`` checksum of its text; a line that is torn (a crash
  mid-write), damaged or of another version is ignored, never trusted.  Two lines that both
  match a run's files and disagree make the Reader read the files;
- what a line holds is checked exactly as the files are (:mod:`xprun.reader.rows`), and the
  config is journaled only when its JSON decodes to what ``config.yaml``'s YAML does (plain
  text keys, plain values); otherwise the line has no config and the run's files are read.

What is given up: ``config.yaml`` or ``outcome.json`` written over in place (the same
inode) changes no time the Reader looks at; the index's warm reads do not see those either
(``Reader.refresh(full=True)`` reads every run's files, never the journal).  The journal
is a cache: deleting ``<log_dir>/.xprun-journal`` is always safe; lines of runs deleted or
rerun are ignored.  A run pays an ``lstat`` of its record and a ``stat`` of its folder; the
lines are made and written in batches (:class:`Writer`); a journal that cannot be written
never fails a run.

The format, line by line (``<checksum>`` is the hex ``xxh64`` of the rest of the line)::

    xprun-journal 1                                   the first line of every file
    <checksum> c <key> <JSON code object>             a record's ``code``, once per file
    <checksum> r <hash> <JSON [signature, record, config, outcome]>

``<key>`` names a code object that later ``r`` lines of the same file use as their
record's ``code`` (``{"ref": <key>}``): a project's digested files are written once, not
once per run.
"""

from __future__ import annotations

import json
import os
import time
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

import xxhash

#: The journals' folder in the log directory (a dot name: no experiment), one folder per
#: experiment in it, named as the experiment's folder.
FOLDER = ".xprun-journal"


def journal_folder(experiment_folder: str) -> str:
    """Where the journal files of the runs of ``experiment_folder`` are: beside it, in the
    log directory's journal folder, so that an experiment folder holds its runs only."""
    log_dir, name = os.path.split(os.path.normpath(experiment_folder))
    return os.path.join(log_dir, FOLDER, name)


#: The first line of every journal file; a file that starts otherwise is ignored.
HEADER = b"xprun-journal 1\n"
#: The fields of ``run.json`` a line keeps: those the Reader's row is made of.
RECORD_FIELDS = (
    "format",
    "hash",
    "experiment",
    "nodeid",
    "params",
    "status",
    "attempt",
    "start",
    "end",
    "duration",
    "host",
    "user",
    "recovered",
    "error",
    "code",
)
#: A line longer than this is not written (the run's files are read instead): a journal
#: stays quick to read when an experiment returns a large outcome.
MAX_LINE = 1 << 20
#: A journal file larger than this is not read.
MAX_FILE = 4 << 30

_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
#: The same text from one C encoder made once (``JSONEncoder.encode`` makes one per call:
#: a third of encoding a small record).  No cycle check: a line's values were encoded into
#: the run's own files first, so they hold none.
_C_ENCODER = (
    None
    if c_make_encoder is None
    else c_make_encoder(None, None, encode_basestring, None, ":", ",", False, False, True)
)


def _encode(value: Any) -> str:
    if _C_ENCODER is None:  # an interpreter without json's C accelerator
        return _ENCODE(value)
    return "".join(_C_ENCODER(value, 0))


#: The fields of a record that a writer's lines share (its session's and experiment's).
_SHARED = ("format", "experiment", "host", "user")
#: The fields of a record that change from run to run, as a line keeps them.
_OWN = tuple(name for name in RECORD_FIELDS if name not in _SHARED and name != "code")
#: The fields of a record a line keeps that are not in its head (``record.record_texts``):
#: the session's, shared, and the attempt's own.
_SESSION = ("host", "user")
_AFTER_HEAD = ("recovered", "error")


_ABSENT = object()  # a field the record does not have


def _checked(rest: bytes) -> bytes:
    return b"%016x %s\n" % (xxhash.xxh64_intdigest(rest), rest)


#: What :meth:`Writer.append` keeps of an attempt until its line is made: the run's hash,
#: the signature, the record, the config's JSON, the outcome, and the texts already made.
_Pending = tuple[str, list[int], dict[str, Any], "str | None", Any, "str | None", "str | None"]


class Writer:
    """This process's journal file of one experiment folder, opened on its first line.

    Lines are kept in memory and written in batches (every :data:`_FLUSH_EVERY` lines, or
    once :data:`_FLUSH_AFTER` seconds passed since the last write, and when the session
    ends): made in a tight loop they cost a third of what they cost between two runs, and
    one ``write`` serves many.  Lines lost with a killed process only make the Reader read
    those runs' files."""

    __slots__ = (
        "_code_texts",
        "_codes",
        "_failed",
        "_fd",
        "_pending",
        "_shared_texts",
        "_since",
        "_written",
        "folder",
    )

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._fd = -1
        #: The code objects written to this file: ``id`` → (the object, its key).
        self._codes: dict[int, tuple[Any, str]] = {}
        self._written: set[str] = set()  # the keys of the code objects defined in it
        self._shared_texts: dict[tuple[Any, ...], str] = {}
        self._code_texts: dict[int, tuple[Any, str]] = {}  # id -> (code object, member text)
        self._failed = False
        self._pending: list[_Pending] = []  # the lines to write, not yet made
        self._since = time.monotonic()  # the last write

    def _open(self) -> int:
        journal = journal_folder(self.folder)
        os.makedirs(journal, exist_ok=True)
        name = f"{os.getpid()}-{os.urandom(6).hex()}.jsonl"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(os.path.join(journal, name), flags, 0o666)
        try:
            os.write(fd, HEADER)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _code_ref(self, code: Any, lines: list[bytes]) -> Any:
        """What the line's record holds as ``code``: a reference to a code object written
        once per file (its definition line is added to ``lines`` the first time)."""
        if type(code) is not dict:
            return code
        known = self._codes.get(id(code))
        if known is not None and known[0] is code:
            return {"ref": known[1]}
        text = _ENCODE(code).encode()
        key = xxhash.xxh3_128_hexdigest(text)
        if key not in self._written:  # else an equal object was defined before
            lines.append(_checked(b"c %s %s" % (key.encode(), text)))
            self._written.add(key)
        if len(self._codes) < 1024:
            self._codes[id(code)] = (code, key)
        return {"ref": key}

    def append(
        self,
        run_hash: str,
        signature: list[int],
        record: dict[str, Any],
        config_json: str | None,
        outcome: Any,
        *,
        head_json: str | None = None,
        outcome_json: str | None = None,
    ) -> None:
        """Journal one finished attempt (see the module docstring for what each part is).
        ``head_json`` (the JSON text, without braces, of the record's head fields as
        ``run.json`` holds them: format to duration) and ``outcome_json`` (the outcome's
        text) are what the run protocol has already encoded: then not encoded again.
        Never raises for a journal that cannot be written: it is a cache."""
        if self._failed:
            return
        pending = self._pending
        pending.append((run_hash, signature, record, config_json, outcome, head_json, outcome_json))
        if len(pending) >= _FLUSH_EVERY or time.monotonic() - self._since >= _FLUSH_AFTER:
            self.flush()

    def flush(self) -> None:
        """Make and write the lines kept so far (one ``write``)."""
        pending, self._pending = self._pending, []
        self._since = time.monotonic()
        if self._failed or not pending:
            return
        lines: list[bytes] = []
        for entry in pending:
            self._line(entry, lines)
        data = b"".join(lines)
        try:
            if self._fd < 0:
                self._fd = self._open()
            if os.write(self._fd, data) != len(data):
                raise OSError("short write")  # a full disk: a torn line is never trusted
        except OSError:
            self._failed = True  # a read-only folder, a full disk: no journal from here on

    def _line(self, entry: _Pending, lines: list[bytes]) -> None:
        """One attempt's line (after the definition of its code object, if new) into
        ``lines``; none when a value cannot be held or the line is too long."""
        run_hash, signature, record, config_json, outcome, head_json, outcome_json = entry
        try:
            if head_json is None:
                parts, names = [self._shared(record, _SHARED)], _OWN
            else:
                parts, names = [head_json, self._shared(record, _SESSION)], _AFTER_HEAD
            own = {name: record[name] for name in names if name in record}
            error = own.get("error")
            if type(error) is dict:
                own["error"] = {"type": error.get("type")}
            if own:
                parts.append(_encode(own)[1:-1])
            if "code" in record:
                parts.append(self._code_text(record["code"], lines))
            kept = "{" + ",".join(part for part in parts if part) + "}"
            if outcome_json is None:
                outcome_json = _encode(outcome)
            sig = ",".join(map(str, signature))
            body = f"[[{sig}],{kept},{config_json or 'null'},{outcome_json}]"
            line = _checked(f"r {run_hash} {body}".encode())
        except (ValueError, TypeError, UnicodeError, RecursionError):
            return  # a value JSON cannot hold: this run's files are read instead
        if len(line) <= MAX_LINE:
            lines.append(line)

    def _code_text(self, code: Any, lines: list[bytes]) -> str:
        """The ``"code": ...`` member of a line's record (see :meth:`_code_ref`), its text
        made once per code object."""
        known = self._code_texts.get(id(code))
        if known is not None and known[0] is code:
            return known[1]
        text = '"code":' + _encode(self._code_ref(code, lines))
        if type(code) is dict and len(self._code_texts) < 1024:
            self._code_texts[id(code)] = (code, text)
        return text

    def _shared(self, record: dict[str, Any], names: tuple[str, ...]) -> str:
        """The JSON text (without braces) of the record's fields ``names``, which the lines
        of this writer share, made once per distinct value."""
        values = (names, *(record.get(name, _ABSENT) for name in names))
        text = self._shared_texts.get(values)
        if text is None:
            present = {n: v for n, v in zip(names, values[1:], strict=True) if v is not _ABSENT}
            text = _encode(present)[1:-1]
            if len(self._shared_texts) >= 64:
                self._shared_texts.clear()
            self._shared_texts[values] = text
        return text

    def close(self) -> None:
        """Write what is kept, and close the file."""
        self.flush()
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1

    def forget(self) -> None:
        """In a forked child: the parent's lines and file stay the parent's."""
        self._pending = []
        if self._fd >= 0:
            try:
                os.close(self._fd)  # the child's copy of the descriptor
            except OSError:
                pass
            self._fd = -1


_writers: dict[str, Writer] = {}
_FORK_HOOK: list[bool] = []
#: A writer writes its lines once it holds this many, or once this many seconds passed.
_FLUSH_EVERY = 256
_FLUSH_AFTER = 1.0


def close_all() -> None:
    """Write and close this process's journal files (the end of a session)."""
    for found in _writers.values():
        found.close()
    _writers.clear()


def _forget_all() -> None:
    """In a forked child (a pool worker): one writer per file, and the parent's lines are
    the parent's to write."""
    for found in _writers.values():
        found.forget()
    _writers.clear()


def writer(folder: str) -> Writer:
    """This process's writer for the experiment folder ``folder``."""
    found = _writers.get(folder)
    if found is None:
        if not _FORK_HOOK:
            os.register_at_fork(after_in_child=_forget_all)
            _FORK_HOOK.append(True)
        found = _writers[folder] = Writer(folder)
    return found


def record_signature(run_dir: str) -> list[int] | None:
    """``run.json``'s part of a line's signature: its inode, size, mtime and ctime (ns), not
    followed through a link; None when it cannot be looked at."""
    try:
        info = os.lstat(run_dir + "/run.json")  # a Reader asks this of every run: no join
    except OSError:
        return None
    return [info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]


def folder_signature(run_dir: str) -> list[int] | None:
    """The run folder's part of a line's signature (mtime, ctime in ns)."""
    try:
        info = os.stat(run_dir)
    except OSError:
        return None
    return [info.st_mtime_ns, info.st_ctime_ns]


# -- reading -----------------------------------------------------------------------------------


class _File:
    """The code objects one journal file defines (by key, as text), parsed once each."""

    __slots__ = ("codes", "parsed")

    def __init__(self) -> None:
        self.codes: dict[str, bytes] = {}
        self.parsed: dict[str, Any] = {}

    def code(self, key: Any) -> Any:
        found = self.parsed.get(key) if type(key) is str else None
        if found is None:
            text = self.codes.get(key) if type(key) is str else None
            if text is None:
                raise ValueError("a code object that its file does not define")
            try:
                found = self.parsed[key] = json.loads(text)
            except RecursionError:
                raise ValueError("nested too deeply") from None
        return found


class Entry:
    """One journal line about a run, kept as read: its text is checked against its checksum
    and decoded only when used (most lines of a run rerun many times never are), and its
    file (whose code objects its record may refer to)."""

    __slots__ = ("file", "line", "parsed")

    def __init__(self, line: bytes, file: _File) -> None:
        self.line = line  # ``<checksum> r <hash> <JSON>``, the hash at _KEY
        self.file = file
        self.parsed: Any = None  # the JSON value of ``body``, once decoded (``parse_all``)

    @property
    def body(self) -> bytes:
        """The line's JSON text."""
        line = self.line
        return line[line.index(b" ", _KEY) + 1 :]

    def intact(self) -> bool:
        """Whether the line is the text its writer checksummed (not torn, not damaged)."""
        line = self.line
        try:
            return int(line[:16], 16) == xxhash.xxh64_intdigest(memoryview(line)[17:])
        except ValueError:
            return False

    def parse(self) -> tuple[list[int], dict[str, Any], Any, Any]:
        """The line's signature, record, config and outcome (None: not journaled).  Raises
        ``ValueError`` for a line that is not what a writer writes (then it is not used).
        A record's code object is shared by the lines of its file (read, never changed)."""
        parsed, self.parsed = self.parsed, None
        if not self.intact():
            raise ValueError("not the text its checksum is of")
        if parsed is None:
            try:
                parsed = json.loads(self.body)
            except RecursionError:
                raise ValueError("nested too deeply") from None
        if type(parsed) is not list or len(parsed) != 4:
            raise ValueError("not a journal line")
        signature, record, config, outcome = parsed
        if type(signature) is not list or len(signature) != 6:
            raise ValueError("no signature")
        if not all(type(n) is int for n in signature) or type(record) is not dict:
            raise ValueError("no signature")
        code = record.get("code")
        if type(code) is dict and len(code) == 1 and "ref" in code:
            record["code"] = self.file.code(code["ref"])
        return signature, record, config, outcome


#: Where a run line's hash begins: ``<16 hex digits> r <hash> <JSON>``.
_KEY = 19


_DECODER = json.JSONDecoder()


def record_of(entry: Entry, record_signature: list[int]) -> dict[str, Any] | None:
    """The record of a line whose signature begins with ``record_signature`` (``run.json``'s
    part), decoded alone (not the line's config and outcome); None for a line that does not
    match or is not what a writer writes.  The skip check's question, cheaply: it needs a
    run's status and code, for every run of a sweep."""
    if not entry.intact():
        return None
    body = entry.body
    try:
        end = body.index(b"],", 2)
        if body[:2] != b"[[":
            return None
        signature = [int(n) for n in body[2:end].split(b",")]
        if len(signature) != 6 or signature[:4] != record_signature:
            return None
        rest = body[end + 2 :].decode("utf-8")
        record, _ = _DECODER.raw_decode(rest, len(rest) - len(rest.lstrip()))
        if type(record) is not dict:
            return None
        code = record.get("code")
        if type(code) is dict and len(code) == 1 and "ref" in code:
            record["code"] = entry.file.code(code["ref"])
    except (ValueError, RecursionError):
        return None
    return record


def about_folder(entries: list[Entry], mtime_ns: int, ctime_ns: int) -> list[Entry]:
    """The lines among ``entries`` whose signature ends with these run-folder times, found
    in their text, not decoded.  The others describe an earlier state of the folder (an
    attempt rerun since, a file set aside or removed) and could never be used: a run rerun
    many times has many such lines, and decoding them made a first read slower than reading
    the files.  A line written otherwise than a writer writes it is left out too; its run is
    then read from its files."""
    tail = b",%d,%d" % (mtime_ns, ctime_ns)
    kept = []
    for entry in entries:
        line = entry.line
        start = line.find(b" ", _KEY)
        end = line.find(b"]", start, start + _SIGNATURE_TEXT)
        if start > 0 and end > 0 and line.startswith(tail, end - len(tail)):
            kept.append(entry)
    return kept


#: The most characters a signature's text takes: six integers of at most 20 digits.
_SIGNATURE_TEXT = 2 + 6 * 21 + 1


def parse_all(entries: list[Entry]) -> None:
    """Decode the lines of ``entries`` many at a time (one ``json.loads`` of a batch costs a
    fraction of one call per line); a batch that does not decode whole is left to
    :meth:`Entry.parse`, line by line, which names nothing but skips the bad ones."""
    for start in range(0, len(entries), _BATCH):
        batch = entries[start : start + _BATCH]
        try:
            values = json.loads(b"[" + b",".join(e.body for e in batch) + b"]")
        except (ValueError, RecursionError):
            continue
        if len(values) == len(batch):  # else a body held a comma-separated pair: by line
            for entry, value in zip(batch, values, strict=True):
                entry.parsed = value


#: Lines decoded together by :func:`parse_all` (their values are held until used).
_BATCH = 512


def read(folder: str, wanted: set[str], read_file: Any) -> dict[str, list[Entry]]:
    """The journal lines of the runs named in ``wanted`` (hashes), by hash, from every
    journal file of the experiment folder ``folder``.  ``read_file(folder, name, limit)``
    reads one file without following links (the Reader's careful read).  Lines that are
    torn, damaged or of another version are skipped: their runs are read from their files.
    """
    journal = journal_folder(folder)
    try:
        names = sorted(n for n in os.listdir(journal) if n.endswith(".jsonl"))
    except OSError:
        return {}
    found: dict[str, list[Entry]] = {}
    for name in names:
        try:
            data = read_file(journal, name, MAX_FILE)
        except Exception:  # gone meanwhile, not a regular file, too large: not used
            continue
        if data.startswith(HEADER):
            _read_lines(data, wanted, found)
    return found


def _read_lines(data: bytes, wanted: set[str], found: dict[str, list[Entry]]) -> None:
    """The lines of one journal file (its header already checked) into ``found``: a run's
    line by its hash, its checksum checked when it is used (see
    :class:`Entry`); a code object's at once (few, and used by many)."""
    file = _File()
    lines = data.split(b"\n")
    lines.pop()  # what follows the last newline: nothing, or a line torn by a crash
    for line in lines[1:]:
        kind = line[16:19]
        if kind == b" r ":
            end = line.find(b" ", _KEY)
            if end < 0:
                continue
            name = line[_KEY:end].decode("ascii", "replace")
            if name in wanted:
                found.setdefault(name, []).append(Entry(line, file))
        elif kind == b" c ":
            _code_line(line, file)


def _code_line(line: bytes, file: _File) -> None:
    """A code object's line into ``file``, if it is the text its checksum is of."""
    parts = line.split(b" ", 3)
    if len(parts) != 4 or len(parts[0]) != 16:
        return
    try:
        if int(parts[0], 16) != xxhash.xxh64_intdigest(line[17:]):
            return
    except ValueError:
        return
    file.codes[parts[2].decode("ascii", "replace")] = parts[3]
