"""The run directory on disk: atomic writes, claims with heartbeats, and a run's state.

Format version 1 (``docs/run-directory.md`` describes it for users)::

    <log_dir>/<experiment>/<hash>/
      run.json       identity, status, attempt, times, host, git... (atomic; final status last)
      config.yaml    the resolved config
      outcome.json   what the function returned, written as soon as it returned
      error.txt      the traceback of a failed or interrupted attempt
      git.patch      uncommitted changes of the code, when the tree was dirty
      stdout.log, stderr.log, metrics/<name>.jsonl, artifacts/, checkpoints/
      claim.<N>      exists while attempt N owns the run; its mtime is the heartbeat

**Claims.**  Attempt N of a run is owned by whoever creates ``claim.<N>`` exclusively (a hard
link that fails if the name exists, below) — atomic on local disks and on NFS (v3 and later),
where ``fcntl`` locks are not reliable.  The owner touches the file every few seconds (the
heartbeat).  A claim is stale when its heartbeat is older than the timeout — judged against
the file system's own clock, so hosts with skewed clocks agree — or, on the very same machine
(same boot, same PID namespace), when its process no longer exists.  A stale claim N is taken
over by creating ``claim.<N+1>``: only one process can, so two launchers never both take over
the same run.

A claim is published whole: its owner record (host, machine, pid, and a random ``token``) is
written to a temporary file first and hard-linked to ``claim.<N>`` (``link`` fails if the name
exists, atomically, NFS included); where hard links are not supported it is created with
``O_EXCL`` and written at once, as is the first claim of a run directory the claimant has
just made (no one can have been waiting on its name).  A claim with no readable owner (an
empty file left by a full disk or by an older xprun killed at the wrong moment) is therefore
not a live owner: it is stale once it is older than the heartbeat interval.

**Fencing.**  An owner paused longer than the timeout (SIGSTOP, a suspended laptop, an NFS
stall) loses its claim to another launcher.  Before it records anything that decides the run
(its outcome, its final record) the owner checks ``Claim.holds()``: its own claim file is still
the newest one and still carries its token.  Otherwise it writes nothing over the new owner's
run.
A heartbeat that keeps failing marks the claim lost, too: once no touch has succeeded
for half the stale timeout (``Claim.patience``), well before any other launcher may take the
run over, so a moment's failure (an NFS server that restarts) costs nothing, and a lasting one
stops the owner before another can start.  A claim found removed is lost at once.

**Atomic, durable files.**  Every file a reader may look at is written to a temporary name and
renamed into place, so no reader ever sees half of it.  The records that decide a run (the
outcome and the final ``run.json``) are also ``fsync``ed before the rename, and their
directory after it, so a power loss cannot leave them renamed but empty.  Temporary files of a
killed write are removed when the run's next attempt is claimed.

**The experiment folder marks a change to an existing run.**  A new run changes its
experiment folder's times (the run's folder is made in it); a record written into a run
folder that existed before the attempt (a rerun, a recovery) changes only that run folder's.
So after such a record is written, the experiment folder is touched (:func:`mark_changed`):
a Reader whose index saw the folder unchanged knows that its settled runs are unchanged
without looking at each of them (:mod:`xprun.reader.index`).
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import settings, ticker
from .errors import is_disk_full
from .states import Status
from .timestamps import timestamp

FORMAT_VERSION = 2
RUN_JSON = "run.json"
OUTCOME_JSON = "outcome.json"
CLAIM_PREFIX = "claim."
CLOCK_FILE = ".xprun-clock"

# The one set of heartbeat defaults lives in settings ([tool.xprun] heartbeat_*).

_HOST = socket.gethostname()


def host() -> str:
    return _HOST


def _machine_id() -> str:
    """Identifies this kernel boot and PID namespace: where a PID check means something."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        pidns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    return f"{boot}:{pidns}"


_MACHINE = _machine_id()
_OWNER_HEAD = json.dumps({"host": _HOST, "machine": _MACHINE})[:-1]  # a claim's first fields


# -- atomic files ------------------------------------------------------------------------------


_TMP_NAME = re.compile(r"\..+\.\d+\.tmp")


_PID: list[int] = []  # this process's id, once asked
_FORK_HOOK: list[bool] = []  # the hook that forgets it in a forked child is registered


def _forget_pid() -> None:
    _PID.clear()
    _TOKENS.clear()


def _pid() -> int:
    """This process's id, asked of the kernel once (a run names four temporary files and a
    claim with it); a child made by ``os.fork`` asks again (``os.register_at_fork``)."""
    if _PID:
        return _PID[0]
    if not _FORK_HOOK:
        os.register_at_fork(after_in_child=_forget_pid)
        _FORK_HOOK.append(True)
    pid = os.getpid()
    _PID.append(pid)
    return pid


_TOKENS: list[Any] = []  # [this process's random prefix, the claims it has made]


def _new_token() -> str:
    """A claim's token: 16 random hex digits drawn once per process, then a count of its
    claims (as unique as 32 random digits, without asking the kernel for each claim);
    a child made by ``os.fork`` draws its own (``_forget_pid``)."""
    if not _TOKENS:
        _pid()  # registers the at-fork hook that forgets this process's values
        _TOKENS[:] = [os.urandom(8).hex(), 0]
    _TOKENS[1] += 1
    return f"{_TOKENS[0]}{_TOKENS[1]:016x}"


def _tmp_name(path: str) -> str:
    """Where ``path`` is written before its rename: ``.<name>.<pid>.tmp`` beside it (a string:
    a run writes several files, and pathlib would cost more than writing them)."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{_pid()}.tmp")


def mark_changed(run_dir: Path | str) -> None:
    """Touch the experiment folder of ``run_dir`` after a record was written into a run
    folder that existed before this attempt: its times then say that a run in it changed
    (which the Reader's index trusts; see the module docstring).  Called after the write,
    never before, so a reader that sees the new times also sees the new record.  A folder
    whose times cannot be set (not ours, read-only) is left: the record itself is written."""
    try:
        os.utime(os.path.dirname(os.path.abspath(run_dir)))
    except OSError:
        pass


def fsync_dir(path: Path | str) -> None:
    """Make the entries of directory ``path`` (a rename into it) durable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # a platform that cannot open directories: nothing more can be done
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the file itself is synced
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path | str, data: bytes, durable: bool = False) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    ``durable``: also survive a power loss (the data is synced before the rename, the
    directory after it).  A write that fails (a full disk) leaves no temporary file behind.
    ``path`` may be text: the run protocol writes several files per run, and a ``Path`` per
    file costs more than the write's own work (issue 11).
    """
    target = path if type(path) is str else os.fspath(path)
    folder, _, name = target.rpartition("/")  # _tmp_name, inlined: one run writes five
    tmp = f"{folder}/.{name}.{_pid()}.tmp" if folder else _tmp_name(target)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:  # Ctrl-C too: no temporary file left behind; re-raised
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:  # a bare name is in the current folder: that is the one to sync
        fsync_dir(os.path.dirname(target) or os.curdir)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the descriptor ``fd`` (``os.write`` may write less)."""
    written = os.write(fd, data)
    if written == len(data):  # the common case: one call, no view
        return
    view = memoryview(data)[written:]
    while view:
        view = view[os.write(fd, view) :]


def write_text_atomic(path: Path | str, text: str, durable: bool = False) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), durable)


#: ``json.dumps(obj, ensure_ascii=False)``, made once: how records are encoded.
JSON = json.JSONEncoder(ensure_ascii=False)


def write_json_atomic(
    path: Path | str, obj: Any, durable: bool = False, text: str | None = None
) -> None:
    """``obj`` as JSON (``text``: that JSON, already made) written atomically."""
    data = (JSON.encode(obj) if text is None else text).encode("utf-8")
    write_bytes_atomic(path, data, durable)


def remove_stale_temporaries(run_dir: Path) -> int:
    """Remove the temporary files of killed writes under ``run_dir``; return how many.

    Only called while holding a new claim: nobody else may be writing there.  A former owner
    that lost its claim and still writes fails its rename, which it takes as the lost claim.
    """
    removed = 0
    for folder, _, names in os.walk(run_dir):
        for name in names:
            if _TMP_NAME.fullmatch(name):
                try:
                    os.unlink(os.path.join(folder, name))
                    removed += 1
                except FileNotFoundError:
                    pass
    return removed


def disk_of(path: Path) -> Path:
    """The mount point of the file system holding ``path`` (to name a full disk)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        device = path.stat().st_dev
        while path != path.parent and path.parent.stat().st_dev == device:
            path = path.parent
    except OSError:
        pass
    return path


def disk_full_message(path: Path, exc: BaseException) -> str:
    """What to tell the user when writing under ``path`` failed for lack of space."""
    return (
        f"the disk holding {path} (the file system mounted at {disk_of(path)}) is full: {exc}; "
        "free some space there, then run xprun again (completed runs are kept)"
    )


RECORD_MAX_BYTES = 16 * 1024 * 1024


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    A FIFO, device or directory under a record's name (a damaged or hostile log directory)
    raises ``OSError`` instead of blocking or reading forever; so does a larger file.
    """
    return read_regular_stat(path, limit)[1]


def read_regular_stat(path: str | Path, limit: int) -> tuple[os.stat_result, bytes]:
    """``read_regular``, with the ``fstat`` of the very file read (what the completion
    summary pairs with its content)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path} is not a regular file")
        if info.st_size > limit:
            raise OSError(f"{path} is {info.st_size:,} bytes, more than {limit:,}")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return info, b"".join(chunks)
    finally:
        os.close(fd)


def read_json(path: str | Path, limit: int = RECORD_MAX_BYTES) -> Any:
    return json.loads(read_regular(path, limit))


# -- clocks and heartbeats ---------------------------------------------------------------------


class FsClock:
    """ "Now" as the file system that holds the heartbeats sees it.

    Heartbeat mtimes on a shared file system are stamped by its server; comparing them with
    this host's clock would make a skewed host misjudge them.  So the clock touches a file in
    the log directory and reads its mtime back (once a minute at most), then advances it with
    this host's monotonic clock.  A read-only log directory falls back to the local clock.
    """

    REPROBE_SECONDS = 60.0

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._probe: tuple[float, float] | None = None  # (fs time, monotonic) at the probe

    def now(self) -> float:
        mono = time.monotonic()
        if self._probe is None or mono - self._probe[1] > self.REPROBE_SECONDS:
            self._probe = (self._read_fs_time(), mono)
        return self._probe[0] + (mono - self._probe[1])

    def _read_fs_time(self) -> float:
        path = self.log_dir / CLOCK_FILE
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            # Non-blocking and no link followed: a FIFO or a planted link under this name
            # must not hang or redirect the probe (it falls back to the local clock).
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW, 0o644)
        except OSError:
            return time.time()
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return time.time()
            os.utime(fd)
            return os.fstat(fd).st_mtime
        except OSError:
            return time.time()
        finally:
            os.close(fd)


@dataclass(frozen=True)
class Heartbeat:
    """How often owners touch their claim, and when a silent claim counts as stale."""

    interval: float = settings.HEARTBEAT_INTERVAL
    timeout: float = settings.HEARTBEAT_TIMEOUT


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- claims ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimInfo:
    """One ``claim.<N>`` file as found on disk."""

    attempt: int
    path: Path
    mtime: float
    owner: dict[str, Any]

    def age(self, clock: FsClock) -> float:
        return clock.now() - self.mtime

    def is_stale(self, clock: FsClock, heartbeat: Heartbeat) -> bool:
        owner = self.owner
        if not owner:
            # No readable owner: never a live one (claims are published whole).  The short
            # grace covers file systems without hard links, where a claim is created empty
            # and written a moment later.
            return self.age(clock) > heartbeat.interval
        if owner.get("machine") and owner.get("machine") == _MACHINE:
            pid = owner.get("pid")
            if isinstance(pid, int) and not _pid_alive(pid):
                return True  # same machine, process gone: no need to wait for the timeout
        return self.age(clock) > heartbeat.timeout

    def describe(self, clock: FsClock) -> str:
        owner = self.owner
        who = f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}" if owner else "a process"
        return f"{who}, attempt {self.attempt}, heartbeat {self.age(clock):.0f}s ago"


_CLAIM_MAX_BYTES = 64 * 1024


def _read_claim(entry: os.DirEntry[str]) -> bytes:
    """A claim file's bytes; nothing from a FIFO, a device, a link or a directory.

    Claims are small regular files written by xprun; anything else under that name (a
    damaged or hostile log directory) has no owner in it, and reading it must not block.
    """
    if not entry.is_file(follow_symlinks=False):
        return b""
    return _read_claim_file(entry.path)


def _read_claim_file(path: str | Path) -> bytes:
    """``_read_claim`` by path: no link followed, nothing read but from a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        return os.read(fd, _CLAIM_MAX_BYTES)
    finally:
        os.close(fd)


def _claim_number(name: str) -> int:
    """N for a ``claim.<N>`` name, else -1."""
    if not name.startswith(CLAIM_PREFIX):
        return -1
    number = name[len(CLAIM_PREFIX) :]
    return int(number) if number.isascii() and number.isdigit() else -1


def list_claims(run_dir: Path | str) -> list[ClaimInfo]:
    """The claims in ``run_dir``, lowest attempt first."""
    claims = []
    try:
        entries = list(os.scandir(run_dir))
    except OSError:  # missing, not a directory, a link loop: no claims to be found
        return []
    for entry in entries:
        number = _claim_number(entry.name)
        if number < 0:
            continue
        try:
            mtime = entry.stat(follow_symlinks=False).st_mtime
            raw = _read_claim(entry)
        except FileNotFoundError:
            continue  # released meanwhile
        except OSError:
            raw = b""  # unreadable: no owner to be found in it
        try:
            owner = json.loads(raw) if raw else {}
        except ValueError:
            owner = {}
        claims.append(
            ClaimInfo(
                number,
                Path(entry.path),
                mtime,
                owner if isinstance(owner, dict) else {},
            )
        )
    claims.sort(key=lambda c: c.attempt)
    return claims


class Claim:
    """This process's ownership of attempt ``attempt`` of a run."""

    def __init__(self, run_dir: Path, attempt: int) -> None:
        self.run_dir = run_dir
        self.attempt = attempt
        # Text, not a Path: the run protocol touches, reads and removes it once per run.
        self._path = os.path.join(run_dir, f"{CLAIM_PREFIX}{attempt}")
        self.token = _new_token()  # 32 hex digits, unique to this claim
        self.lost = False
        #: Why the heartbeat stopped, if it did: the error of the touch that failed.
        self.heartbeat_error: OSError | None = None
        #: Seconds a heartbeat may keep failing before the claim counts as lost (0: at the
        #: first failure).  ``acquire`` sets half the stale timeout: others take a run over
        #: only once its claim is a whole timeout old.
        self.patience = 0.0
        # When the last touch that succeeded began (monotonic): the claim's mtime is no
        # older than that, whatever the touch's own delay.
        self._beat = time.monotonic()
        self._failing = False  # a failure was reported, and no touch succeeded since
        self._owner = b""  # the owner record as written: what ``holds`` reads back

    @property
    def path(self) -> Path:
        return Path(self._path)

    @classmethod
    def try_create(cls, run_dir: Path, attempt: int, fresh: bool = False) -> Claim | None:
        """Create ``claim.<attempt>``, or None when it exists.  A full disk raises.

        ``fresh``: this process has just made ``run_dir``, so no other launcher can have
        looked into it before: the claim is created exclusively and written at once (one
        file operation instead of three).  A launcher that finds it empty in the moment
        between sees no live owner but no stale one either (an owner-less claim is stale
        only once older than the heartbeat interval), and reports the run running elsewhere.
        """
        claim = cls(run_dir, attempt)
        # json.dumps of {host, machine, pid, attempt, token, since}, its constant head encoded
        # once: the token is hex and the timestamp plain ASCII (nothing to escape).
        data = claim._owner = (
            f'{_OWNER_HEAD}, "pid": {_pid()}, "attempt": {int(attempt)}, '
            f'"token": "{claim.token}", "since": "{timestamp()}"}}'
        ).encode()
        if fresh:
            return claim if claim._create_exclusive(data, 0o666) else None
        tmp = _tmp_name(claim._path)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
            try:
                os.link(tmp, claim._path)  # published whole, or not at all
            except FileExistsError:
                return None
            except OSError:  # no hard links here: exclusive create, then write at once
                if not claim._create_exclusive(data):
                    return None
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass  # gone (linked and unlinked), or never made
        return claim

    def _create_exclusive(self, data: bytes, mode: int = 0o644) -> bool:
        fd = -1
        try:
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            write_all(fd, data)
        except FileExistsError:
            if fd >= 0:  # not open's: re-raised as any other error
                self._abandon(fd)
                raise
            return False
        except BaseException:  # Ctrl-C too: no empty claim left behind; re-raised
            self._abandon(fd)
            raise
        os.close(fd)
        return True

    def _abandon(self, fd: int) -> None:
        """Remove the claim this process began to write.  ``fd`` < 0: the interrupt came as
        ``open`` returned, before its descriptor was kept (Python runs signal handlers right
        after a call): the file is then this process's if it is empty (every other claim is
        published whole, by a link), and an empty claim would make the run look owned by
        nobody alive, yet not stale, until the heartbeat interval passed."""
        try:
            if fd >= 0:
                os.close(fd)
                os.unlink(self._path)
            elif os.lstat(self._path).st_size == 0:
                os.unlink(self._path)
        except OSError:
            pass  # never made, or gone: nothing to remove

    def touch(self) -> None:
        """The heartbeat.  A claim that vanished (taken over) is lost; one that cannot be
        touched is lost once no touch has succeeded for ``patience`` seconds.

        Never raises: a heartbeat that fails for good is a lost claim, which the owner checks
        before recording anything (see ``holds``), not a background job silently dropped.
        """
        if self.lost:
            return
        began = time.monotonic()
        try:
            os.utime(self._path)
        except OSError as exc:
            failing_for = began - self._beat
            if isinstance(exc, FileNotFoundError) or failing_for >= self.patience:
                self.lost = True
                self.heartbeat_error = exc
                ticker.report(  # from the ticker's thread: said now, and in the run's report
                    f"heartbeat of {self.run_dir} failed ({exc}): its claim counts as lost, so "
                    "this attempt records neither its outcome nor its final status",
                    self.run_dir,
                )
            elif not self._failing:
                self._failing = True
                ticker.report(
                    f"heartbeat of {self.run_dir} failed ({exc}); trying again: its claim "
                    f"counts as lost if none succeeds within {self.patience - failing_for:.0f} s",
                    self.run_dir,
                )
        else:
            self._beat = began
            self._failing = False

    def holds(self) -> bool:
        """Whether this process still owns the run: its claim file is the newest one and
        still carries its token, and no heartbeat failed.  Checked before each decisive write.
        """
        if self.lost:
            return False
        # The names tell which claim is the newest; only ours is read (for its token).  Every
        # name is looked at, not only claim.<N+1>'s: a racer whose listing missed ours and
        # the newest (taken while they were renamed) can claim a number of its own.
        if _newest_claim(self.run_dir) != self.attempt or self._token_on_disk() != self.token:
            self.lost = True
            return False
        return True

    def _token_on_disk(self) -> Any:
        try:
            raw = _read_claim_file(self._path)
            if raw and raw == self._owner:
                return self.token  # the very bytes written: no need to parse them
            owner = json.loads(raw or b"null")
        except (OSError, ValueError):
            return None
        return owner.get("token") if isinstance(owner, dict) else None

    def release(self) -> None:
        """Remove the claim, unless it is no longer ours (then it is not ours to remove)."""
        try:
            if self.lost and json.loads(self.path.read_bytes()).get("token") != self.token:
                return
            os.unlink(self._path)
        except (OSError, ValueError, AttributeError):
            pass  # gone, or not ours: a claim left behind goes stale and reads as interrupted


@dataclass(frozen=True)
class Acquired:
    """What ``acquire`` got: our claim and the record read under it, or the live owner."""

    claim: Claim | None
    record: dict[str, Any] | None = None
    owner: ClaimInfo | None = None
    #: The run directory was made by this claim's owner, who is its first: nothing of an
    #: earlier attempt (metrics, checkpoints) can be in it, so there is nothing to look for.
    new: bool = False


class UnusableRunDir(Exception):
    """A run's directory cannot be made: a broken or looping link, or a file, stands there.

    Only that run fails (with this message); the rest of the sweep goes on.
    """

    def __init__(self, run_dir: Path, cause: OSError) -> None:
        super().__init__(
            f"cannot use the run directory {run_dir}: {cause.strerror or cause} (a broken or "
            "looping symbolic link, or a file, stands in the log directory); remove or repair "
            "it and launch again"
        )


def _make_run_dir(run_dir: Path) -> bool:
    """Make ``run_dir`` (and its experiment folder); True if this call made it."""
    error: OSError
    try:
        try:
            os.mkdir(run_dir)
        except FileNotFoundError:  # the experiment's folder is new too
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            run_dir.mkdir()
    except FileExistsError as exc:
        if os.path.isdir(run_dir):
            return False
        error = exc  # a file, or a broken or looping link, stands there
    except OSError as exc:
        error = exc
    else:
        return True
    if is_disk_full(error):
        raise error
    raise UnusableRunDir(run_dir, error) from error


def _newest_claim(run_dir: Path | str) -> int:
    """The highest claim number in ``run_dir`` by name (-1: none)."""
    try:
        names = os.listdir(run_dir)
    except OSError:
        return -1
    return max(map(_claim_number, names), default=-1)


def acquire(run_dir: Path, clock: FsClock, heartbeat: Heartbeat) -> Acquired:
    """Claim the next attempt of a run, or find who holds it.

    The next attempt is one more than both the highest claim and the recorded attempt;
    stale claims below ours are removed once ours exists.  The record is read again under
    the claim, so the caller sees any attempt that finished meanwhile.

    A directory this call made has no claim and no record to look at first: it tries
    ``claim.1`` at once, created exclusively (which fails if a racer made it first), and the
    record is read under the claim as always.
    """
    made = _make_run_dir(run_dir)
    for tries in range(8):
        if made and tries == 0:
            claims: list[ClaimInfo] = []
            attempt = 1
        else:
            claims = list_claims(run_dir)
            top = claims[-1] if claims else None
            if top is not None and not top.is_stale(clock, heartbeat):
                return Acquired(None, owner=top)
            recorded = read_record(run_dir)
            floor = int(recorded.get("attempt", 0)) if recorded else 0
            attempt = max(floor, top.attempt if top else 0) + 1
        fresh = made and tries == 0
        claim = Claim.try_create(run_dir, attempt, fresh=fresh)
        if claim is None:
            continue  # another process took this attempt first: look again
        if not fresh and _newest_claim(run_dir) > attempt:
            # Our listing missed a newer claim: a takeover linked it and removed the stale
            # one we were reading meanwhile.  Ours is not the next attempt: look again.
            claim.release()
            continue
        claim.patience = heartbeat.timeout / 2
        for stale in claims:
            try:
                stale.path.unlink(missing_ok=True)
            except OSError:
                pass  # not a file (a damaged directory): ours is higher, it no longer counts
        recorded = read_record(run_dir)
        if recorded and int(recorded.get("attempt", 0)) >= attempt:
            claim.release()  # a finisher recorded this attempt meanwhile: take the next one
            continue
        new = made and attempt == 1 and recorded is None
        if not new:  # a directory just made holds no temporaries of killed writes
            remove_stale_temporaries(run_dir)
        return Acquired(claim, record=recorded, new=new)
    claims = list_claims(run_dir)
    return Acquired(None, owner=claims[-1] if claims else None)


# -- a run's state -----------------------------------------------------------------------------


def read_record(run_dir: Path | str) -> dict[str, Any] | None:
    """``run.json``, or None when it is missing or damaged."""
    try:
        record = read_json(os.path.join(run_dir, RUN_JSON))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    attempt = record.get("attempt", 0)
    if type(attempt) is not int or attempt < 0 or not isinstance(record.get("status", ""), str):
        return None  # damaged: not a record to trust (the run is attempted again)
    return record


@dataclass(frozen=True)
class RunState:
    """What a run directory says, with live claims and stale heartbeats taken into account."""

    status: str  # a Status: new | running | complete | failed | interrupted
    attempt: int
    record: dict[str, Any] | None
    owner: ClaimInfo | None = None  # the live claim, when running

    @property
    def complete(self) -> bool:
        return self.status == Status.COMPLETE


_NEW_STATE = RunState(Status.NEW, 0, None)


def read_state(run_dir: Path | str, clock: FsClock, heartbeat: Heartbeat) -> RunState:
    """A run's state.  ``running`` only with a live claim: a stale one reads ``interrupted``.

    A run directory that does not exist is ``new`` at the price of one ``stat`` (what a new
    run of a sweep meets: its record and its claims need not be looked for one by one)."""
    try:
        os.stat(run_dir)
    except FileNotFoundError:
        return _NEW_STATE
    except OSError:
        pass  # not ours to judge here: the record and the claims say what they can
    record = read_record(run_dir)
    attempt = int(record.get("attempt", 0)) if record else 0
    status = str(record.get("status", Status.NEW)) if record else Status.NEW
    if status == Status.COMPLETE:
        return RunState(status, attempt, record)
    claims = list_claims(run_dir)
    if claims:
        top = claims[-1]
        if not top.is_stale(clock, heartbeat):
            return RunState(Status.RUNNING, max(attempt, top.attempt), record, owner=top)
        return RunState(Status.INTERRUPTED, max(attempt, top.attempt), record)
    if status == Status.RUNNING:  # recorded as running, but nobody owns it any more
        status = Status.INTERRUPTED
    return RunState(status, attempt, record)


def certainly_complete(run_dirs: list[tuple[str, str]]) -> list[bool]:
    """For each run directory (its folder and name, as text: no ``Path`` per run), whether
    its record says ``complete`` (what ``read_state`` would say), learnt with one listing of
    each experiment folder and one small read per run directory that exists.

    Only "complete" is decided here: a complete record is final (a ``--force`` rerun keeps it
    until its own final record), so skipping it cannot be wrong after a crash or beside
    other launchers; anything else goes through the claim.  Trusted as ``read_record``
    trusts a record.  The skip check of a launch uses the same judgement through the
    experiment folder's completion summary (``xprun.completion_summary``), which spares it
    the read of each record already seen complete.
    """
    present: dict[str, set[str]] = {}
    found: list[bool] = []
    for folder, name in run_dirs:
        names = present.get(folder)
        if names is None:
            try:
                names = present[folder] = {entry.name for entry in os.scandir(folder)}
            except OSError:
                names = present[folder] = set()
        found.append(name in names and _record_complete(os.path.join(folder, name, RUN_JSON)))
    return found


def _record_complete(path: str) -> bool:
    try:
        record = json.loads(read_regular(path, RECORD_MAX_BYTES))
    except (OSError, ValueError):
        return False
    return is_complete_record(record)


def is_complete_record(record: Any) -> bool:
    """Whether a parsed ``run.json`` says complete, with a plausible attempt number."""
    if not isinstance(record, dict):
        return False
    attempt = record.get("attempt", 0)
    return record.get("status") == Status.COMPLETE and type(attempt) is int and attempt >= 0
