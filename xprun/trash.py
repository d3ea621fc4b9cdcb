"""The trash folder of a log directory: how ``xprun rm`` and ``xprun gc`` delete safely.

Deleting a run directory file by file takes time, and a process killed in the middle (kill
-9, a node lost) would leave half of it: a ``run.json`` without its outcome, or an outcome
without its metrics, which a later launch or the Reader would take for a run.  So a folder
is first renamed whole into ``<log_dir>/.xprun-trash/<random>`` (``os.rename``: atomic on one
file system, NFS included), and only then deleted.  Whatever a kill leaves is either the
whole run in its place or the whole run in the trash, where nothing looks (the Reader, the
collection, the skip check and ``xprun status`` skip every folder of the log directory whose
name starts with a dot); the next clean-up finishes deleting it (:func:`empty`).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import sys
import time
import uuid
from pathlib import Path

TRASH_DIR = ".xprun-trash"


class CrossDevice(OSError):
    """A folder on another file system than its log directory's trash (a linked experiment
    folder): it cannot be moved there atomically, so it is not deleted."""


def folder(holder: Path) -> Path:
    """The trash of ``holder``: the log directory (or the snapshot folder, for snapshots)."""
    return holder / TRASH_DIR


def move(holder: Path, path: Path) -> Path:
    """Rename ``path`` (a file or folder under ``holder``) into ``holder``'s trash; its new
    path.

    One atomic rename: afterwards nothing is left where it was.  A path on another file
    system raises :class:`CrossDevice` and stays where it is.
    """
    trash = folder(holder)
    trash.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = trash / f"{stamp}-{uuid.uuid4().hex[:8]}-{path.name}"
    try:
        os.rename(path, target)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            raise CrossDevice(exc.errno, f"{path} is on another file system than {trash}") from None
        raise
    return target


def delete(path: Path) -> None:
    """Delete a file or a folder tree (never following a link out of it); what another
    process deleted meanwhile (a second clean-up emptying the same trash) is not an error."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            if sys.version_info >= (3, 12):
                shutil.rmtree(path, onexc=_gone_is_fine)
            else:
                shutil.rmtree(path, onerror=lambda f, p, info: _gone_is_fine(f, p, info[1]))
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def _gone_is_fine(function: object, path: str, exc: BaseException) -> None:
    if not isinstance(exc, FileNotFoundError):
        raise exc


def leftovers(holder: Path) -> list[Path]:
    """What an earlier clean-up moved into ``holder``'s trash and did not delete (it was
    killed)."""
    try:
        return sorted(Path(entry.path) for entry in os.scandir(folder(holder)))
    except (FileNotFoundError, NotADirectoryError):
        return []


def size(path: Path) -> int:
    """Bytes of the regular files of ``path`` (a file, or a folder walked without following
    links): what deleting it frees, near enough to report."""
    try:
        info = os.lstat(path)
    except OSError:
        return 0
    if not stat.S_ISDIR(info.st_mode):
        return info.st_size if stat.S_ISREG(info.st_mode) else 0
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                info = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total
