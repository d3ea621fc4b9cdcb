"""Git snapshots of the working tree, so queued jobs run the code as it was at launch.

The snapshot is a commit object built without touching the user's branch, index or stash:
a temporary index (``GIT_INDEX_FILE``) is filled from ``HEAD`` and the work tree (tracked
changes, and untracked files that are not ignored, by policy), written as a tree, and
committed with ``HEAD`` as parent.  A hidden ref ``refs/xprun/snapshots/<sha>`` keeps it from
garbage collection, so ``git.snapshot`` in ``run.json`` stays resolvable.  The commit is
extracted once into ``<snapshot_dir>/<sha>/`` (``git archive`` into a temporary folder, then
an atomic rename: concurrent launches never race, the loser discards its copy) and every job
imports the user's code from there.

Policies (``[tool.xprun] dirty`` and ``untracked``): ``snapshot`` (default: include the
changes / the untracked files), ``error`` (refuse to launch), ``ignore`` (leave them out:
``ignore`` for ``dirty`` snapshots ``HEAD`` as committed).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError

POLICIES = ("snapshot", "error", "ignore")


@dataclass(frozen=True)
class Snapshot:
    """A snapshot of the code: its commit, and where the project's rootdir is inside it."""

    commit: str
    base: str | None  # HEAD when it was taken (None in a repository with no commits)
    dirty: bool
    untracked: tuple[str, ...]
    root: Path  # the extracted snapshot: the repository's top level
    rootdir: Path  # the project's rootdir inside the snapshot

    def fields(self) -> dict[str, Any]:
        return {
            "snapshot": self.commit,
            "snapshot_base": self.base,
            "snapshot_dirty": self.dirty,
            "snapshot_dir": str(self.root),
        }


def _git(args: list[str], cwd: Path, env: dict[str, str] | None = None, **kwargs: Any) -> str:
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True, **kwargs
    )
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(
            proc.returncode, ["git", *args], proc.stdout, proc.stderr
        )
    return proc.stdout


def _lines(output: str) -> list[str]:
    return [p for p in output.split("\0") if p]


def _policy(settings: dict[str, Any], key: str) -> str:
    value = settings.get(key, "snapshot")
    if value not in POLICIES:
        raise UsageError(f"[tool.xprun] {key} must be one of {', '.join(POLICIES)}, got {value!r}")
    return str(value)


def take(
    rootdir: Path, snapshot_dir: Path, exclude: list[Path], settings: dict[str, Any]
) -> Snapshot:
    """Snapshot the repository holding ``rootdir``; ``UsageError`` when that is impossible."""
    dirty_policy = _policy(settings, "dirty")
    untracked_policy = _policy(settings, "untracked")
    try:
        top = Path(_git(["rev-parse", "--show-toplevel"], rootdir).strip())
    except (subprocess.CalledProcessError, FileNotFoundError):
        raise UsageError(
            f"{rootdir} is not in a Git repository, and this scheduler runs jobs from a Git "
            "snapshot of the code (so you can keep editing while they wait): run "
            "'git init && git add -A && git commit -m start', or pass --no-snapshot to run "
            "from the working tree as it will be when each job starts"
        ) from None
    try:
        base: str | None = _git(["rev-parse", "--verify", "-q", "HEAD"], top).strip() or None
    except subprocess.CalledProcessError:
        base = None
    specs = ["."] + [
        f":(exclude){p.resolve().relative_to(top.resolve()).as_posix()}"
        for p in exclude
        if p.resolve().is_relative_to(top.resolve())
    ]
    changed = _lines(_git(["diff", "-z", "--name-only", "HEAD", "--", *specs], top)) if base else []
    if not base:  # no commit yet: everything in the user's index counts as a change
        changed = _lines(_git(["ls-files", "-z", "--", *specs], top))
    untracked = _lines(
        _git(["ls-files", "-z", "--others", "--exclude-standard", "--", *specs], top)
    )
    if changed and dirty_policy == "error":
        raise UsageError(
            f"the work tree has uncommitted changes ({', '.join(changed[:5])}"
            f"{', ...' if len(changed) > 5 else ''}) and [tool.xprun] dirty = 'error': "
            "commit them, or set dirty = 'snapshot'"
        )
    if untracked and untracked_policy == "error":
        raise UsageError(
            f"the work tree has untracked files ({', '.join(untracked[:5])}"
            f"{', ...' if len(untracked) > 5 else ''}) and [tool.xprun] untracked = 'error': "
            "commit or ignore them, or set untracked = 'snapshot'"
        )
    with tempfile.TemporaryDirectory(prefix="xprun-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if base:
            _git(["read-tree", base], top, env)
        paths = []
        if dirty_policy == "snapshot":
            paths += changed  # staged or not, deletions included
        if untracked_policy == "snapshot":
            paths += untracked
        if paths:  # literal paths through stdin: no globbing, no argument-length limit
            _git(
                ["add", "-A", "--pathspec-from-file=-", "--pathspec-file-nul"],
                top,
                env,
                input="\0".join(paths),
            )
        tree = _git(["write-tree"], top, env).strip()
    identity = {
        "GIT_AUTHOR_NAME": "xprun",
        "GIT_AUTHOR_EMAIL": "xprun@localhost",
        "GIT_COMMITTER_NAME": "xprun",
        "GIT_COMMITTER_EMAIL": "xprun@localhost",
        "GIT_AUTHOR_DATE": "1970-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "1970-01-01T00:00:00Z",
    }
    parents = ["-p", base] if base else []
    commit = _git(["commit-tree", tree, *parents, "-m", "xprun snapshot"], top, identity).strip()
    _git(["update-ref", f"refs/xprun/snapshots/{commit}", commit], top)
    root = extract(top, commit, snapshot_dir)
    relative = rootdir.resolve().relative_to(top.resolve())
    dirty = bool(changed and dirty_policy == "snapshot") or bool(
        untracked and untracked_policy == "snapshot"
    )
    return Snapshot(commit, base, dirty, tuple(untracked), root, root / relative)


def extract(top: Path, commit: str, snapshot_dir: Path) -> Path:
    """``<snapshot_dir>/<commit>/``, extracted once, atomically."""
    final = snapshot_dir / commit
    if final.is_dir():
        return final
    snapshot_dir.mkdir(parents=True, exist_ok=True)
    tmp = snapshot_dir / f".{commit}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit], cwd=top, capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            tar.extractall(tmp, filter="data")
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another launch extracted it first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
