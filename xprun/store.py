"""The run directory on disk: atomic writes, the claim, and reading a run's state.

Format version 1 (see ``docs/run-directory.md``)::

    <log_dir>/<experiment>/<hash>/
      run.json       identity, status, attempt, times, host... (written last, atomically)
      config.yaml    the resolved config
      outcome.json   the function's return value
      error.txt      the traceback of a failed run
      stdout.log, stderr.log, metrics/<name>.jsonl
      claim          exists while a process owns the run: its owner (host, pid, since),
                     created with O_CREAT|O_EXCL

Every file a reader may look at is written to a temporary name and renamed into place, so
no reader ever sees half of it.  Exclusive create (``O_EXCL``) is atomic on local disks and
on NFS (v3 and later), which is why the claim is a file created that way rather than an
``fcntl`` lock, which NFS does not reliably honour.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
RUN_JSON = "run.json"
CLAIM = "claim"

STATUS_RUNNING = "running"
STATUS_COMPLETE = "complete"
STATUS_FAILED = "failed"
STATUS_INTERRUPTED = "interrupted"

_HOST = socket.gethostname()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, json.dumps(obj, ensure_ascii=False).encode("utf-8"))


def read_json(path: Path) -> Any:
    with open(path, "rb") as f:
        return json.loads(f.read())


@dataclass(frozen=True)
class RunState:
    """What a run directory says: ``new`` when there is no record yet."""

    status: str  # new | running | complete | failed | interrupted
    attempt: int
    record: dict[str, Any] | None
    owner: dict[str, Any] | None = None

    @property
    def complete(self) -> bool:
        return self.status == STATUS_COMPLETE


def read_state(run_dir: Path) -> RunState:
    """Read a run's state; a damaged ``run.json`` reads as a run that must run again."""
    try:
        record = read_json(run_dir / RUN_JSON)
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict):
        record = None
    owner = read_owner(run_dir)
    attempt = int(record.get("attempt", 0)) if record else 0
    status = record.get("status", "new") if record else "new"
    if owner is not None and status != STATUS_COMPLETE:
        status = STATUS_RUNNING
    elif status == STATUS_RUNNING:  # the record says running but nobody owns it any more
        status = STATUS_INTERRUPTED
    return RunState(status=status, attempt=attempt, record=record, owner=owner)


def read_owner(run_dir: Path) -> dict[str, Any] | None:
    """The claim's owner; None when unclaimed, {} when the claim is being written."""
    try:
        owner = read_json(run_dir / CLAIM)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def describe_owner(owner: dict[str, Any] | None) -> str:
    if not owner:
        return "another process"
    pid, where, since = (owner.get(k, "?") for k in ("pid", "host", "since"))
    return f"pid {pid} on {where} since {since}"


class Claim:
    """Exclusive ownership of one run directory: a file created with ``O_EXCL``."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / CLAIM

    @classmethod
    def acquire(cls, run_dir: Path) -> Claim | None:
        """Claim ``run_dir`` (creating it); None when another process holds it."""
        run_dir.mkdir(parents=True, exist_ok=True)
        claim = cls(run_dir)
        try:
            fd = os.open(claim.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return None
        owner = {
            "host": _HOST,
            "pid": os.getpid(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        try:
            os.write(fd, json.dumps(owner).encode())
        finally:
            os.close(fd)
        return claim

    def release(self) -> None:
        self.path.unlink(missing_ok=True)


def host() -> str:
    return _HOST
