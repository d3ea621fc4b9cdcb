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

A snapshot holds only what Git would commit, so jobs cannot silently depend on the live work
tree: ignored files go in only when listed in ``snapshot_include``, and the files of
submodules (and other nested repositories) only with ``snapshot_submodules = true``.  A
module the launcher imported from the work tree that the snapshot lacks stops the launch
with a message saying why it is missing and which setting brings it in.  File names are
always literal (a file called ``:(exclude)x.py`` is a file, not a pathspec).  Symbolic links
are stored as links; one whose relative target leaves the repository is extracted pointing
at the same place as in the work tree.

:func:`commit` builds the commit and its ref only (what provenance records for every
session, inline ones included: they run the work tree itself); :func:`take` also extracts
it for jobs to import.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError

POLICIES = ("snapshot", "error", "ignore")


REF_PREFIX = "refs/xprun/snapshots/"


@dataclass(frozen=True)
class Commit:
    """A snapshot commit of the work tree, kept by its hidden ref, not extracted."""

    commit: str
    base: str | None  # HEAD when it was taken (None in a repository with no commits)
    dirty: bool
    untracked: tuple[str, ...]
    top: Path  # the work tree it was taken from: its top level
    rootdir: str  # the project's rootdir relative to ``top``, posix ("." at the top)

    def record(self) -> dict[str, str]:
        """The ``snapshot`` object of ``run.json`` and of the session file."""
        return {
            "commit": self.commit,
            "ref": REF_PREFIX + self.commit,
            "repo": str(self.top),
            "rootdir": self.rootdir,
        }


@dataclass(frozen=True)
class Snapshot:
    """A snapshot of the code: its commit, and where the project's rootdir is inside it."""

    commit: str
    base: str | None  # HEAD when it was taken (None in a repository with no commits)
    dirty: bool
    untracked: tuple[str, ...]
    root: Path  # the extracted snapshot: the repository's top level
    rootdir: Path  # the project's rootdir inside the snapshot
    source: Path  # the work tree it was taken from: its top level

    def fields(self) -> dict[str, Any]:
        return {
            "snapshot": self.commit,
            "snapshot_base": self.base,
            "snapshot_dirty": self.dirty,
            "snapshot_dir": str(self.root),
        }

    @property
    def taken(self) -> Commit:
        """The commit alone (what :func:`commit` returns)."""
        relative = self.rootdir.relative_to(self.root).as_posix()
        return Commit(self.commit, self.base, self.dirty, self.untracked, self.source, relative)


class NotARepository(UsageError):
    """The code is not in a Git repository: the local pool runs from the work tree then."""


def _git(args: list[str], cwd: Path, env: dict[str, str] | None = None, **kwargs: Any) -> str:
    """``git --literal-pathspecs ARGS``: every path handed to git is a file name, never magic."""
    full_env = {**os.environ, **(env or {})}
    command = ["git", "--literal-pathspecs", *args]
    proc = subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, command, proc.stdout, proc.stderr)
    return proc.stdout


def _lines(output: str) -> list[str]:
    return [p for p in output.split("\0") if p]


def _policy(settings: dict[str, Any], key: str) -> str:
    value = settings.get(key, "snapshot")
    if value not in POLICIES:
        raise UsageError(f"[tool.xprun] {key} must be one of {', '.join(POLICIES)}, got {value!r}")
    return str(value)


def _includes(settings: dict[str, Any], rootdir: Path, top: Path, exclude: list[Path]) -> list[str]:
    """``snapshot_include``: ignored paths to put in anyway, relative to the repository top."""
    value = settings.get("snapshot_include") or []
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise UsageError(
            f"[tool.xprun] snapshot_include must be a list of paths, got {value!r}: "
            'e.g. snapshot_include = ["generated/", "local_config.py"]'
        )
    found = []
    for text in value:
        path = Path(os.path.abspath(rootdir / text))
        if not path.is_relative_to(top) or any(
            path.is_relative_to(e) or e.is_relative_to(path) for e in exclude
        ):
            raise UsageError(
                f"[tool.xprun] snapshot_include: {text!r} is outside the repository {top} or "
                "holds the log or snapshot folder; list files or folders of your code only"
            )
        if not os.path.lexists(path):
            raise UsageError(
                f"[tool.xprun] snapshot_include: {text!r} does not exist under {rootdir}; "
                "fix the path or remove it from the list"
            )
        found.append(path.relative_to(top).as_posix() or ".")
    return found


def take(
    rootdir: Path,
    snapshot_dir: Path,
    exclude: list[Path],
    settings: dict[str, Any],
    needed: Iterable[Path] = (),
    taken: Commit | None = None,
) -> Snapshot:
    """Snapshot the repository holding ``rootdir`` and extract it; ``UsageError`` when that
    is impossible.

    ``needed``: files the code was imported from (see :func:`imported_files`); one that the
    snapshot lacks is a ``UsageError`` saying why and how to include it.  ``taken``: a commit
    this session already made (:func:`commit`), extracted instead of a new one when the
    policies are the default ones (it holds what they would put in), so a session keeps one
    snapshot commit.
    """
    if taken is None or {_policy(settings, k) for k in ("dirty", "untracked")} != {"snapshot"}:
        taken = commit(rootdir, exclude, settings)
    exclude = [p.resolve() for p in exclude]
    root = extract(taken.top, taken.commit, snapshot_dir)
    _check_needed(taken.top, root, needed, exclude, settings, rootdir.resolve())
    return Snapshot(
        taken.commit,
        taken.base,
        taken.dirty,
        taken.untracked,
        root,
        root / taken.rootdir,
        taken.top,
    )


def commit(rootdir: Path, exclude: list[Path], settings: dict[str, Any]) -> Commit:
    """The snapshot commit of the repository holding ``rootdir`` and its hidden ref, by the
    policies of ``settings``; ``NotARepository`` outside Git, ``UsageError`` when a policy
    refuses.  Nothing is extracted."""
    dirty_policy = _policy(settings, "dirty")
    untracked_policy = _policy(settings, "untracked")
    top, git_dir, base, base_tree = _locate(rootdir)
    exclude = [p.resolve() for p in exclude]
    included = _includes(settings, rootdir.resolve(), top, exclude)
    # The log and snapshot folders are left out: git does not even walk them.
    specs = ["."] + [
        f":(exclude,literal){p.relative_to(top).as_posix()}"
        for p in exclude
        if p.is_relative_to(top) and p != top
    ]
    magic = ["--no-literal-pathspecs"]
    if base:
        changed = _lines(_git([*magic, "diff", "-z", "--name-only", "HEAD", "--", *specs], top))
    else:  # no commit yet: everything in the user's index counts as a change
        changed = _lines(_git([*magic, "ls-files", "-z", "--", *specs], top))
    untracked = _lines(
        _git([*magic, "ls-files", "-z", "--others", "--exclude-standard", "--", *specs], top)
    )
    if included:  # ignored files the user asked for, counted as untracked ones
        listing = ["ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--"]
        untracked += _lines(_git([*listing, *included], top))
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
    paths = []
    if dirty_policy == "snapshot":
        paths += changed  # staged or not, deletions included
    if untracked_policy == "snapshot":
        paths += untracked
    submodules = bool(settings.get("snapshot_submodules"))
    if base_tree and not paths and not submodules:
        tree = base_tree  # nothing to add: what an index read from HEAD would write
    else:
        with tempfile.TemporaryDirectory(prefix="xprun-index-") as tmp:
            index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if base:
                _git(["read-tree", base], top, index)
            _add(top, index, paths)
            if submodules:
                _inline_submodules(top, git_dir, index, Path(tmp), untracked_policy)
            tree = _git(["write-tree"], top, index).strip()
    identity = {
        "GIT_AUTHOR_NAME": "xprun",
        "GIT_AUTHOR_EMAIL": "xprun@localhost",
        "GIT_COMMITTER_NAME": "xprun",
        "GIT_COMMITTER_EMAIL": "xprun@localhost",
        "GIT_AUTHOR_DATE": "1970-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "1970-01-01T00:00:00Z",
    }
    parents = ["-p", base] if base else []
    sha = _git(["commit-tree", tree, *parents, "-m", "xprun snapshot"], top, identity).strip()
    _git(["update-ref", REF_PREFIX + sha, sha], top)
    relative = rootdir.resolve().relative_to(top).as_posix()
    dirty = bool(changed and dirty_policy == "snapshot") or bool(
        untracked and untracked_policy == "snapshot"
    )
    return Commit(sha, base, dirty, tuple(untracked), top, relative)


_HEX = frozenset("0123456789abcdef")


def _locate(rootdir: Path) -> tuple[Path, Path, str | None, str | None]:
    """``(top, git dir, HEAD, HEAD's tree)`` of the repository holding ``rootdir`` (HEAD and
    its tree None before the first commit); ``NotARepository`` outside one.

    One ``git rev-parse`` for all four in a repository with commits (the launch path's
    common case), else one call each, as git answers them."""
    try:
        found = _git(
            ["rev-parse", "--show-toplevel", "--absolute-git-dir", "HEAD", "HEAD^{tree}", "--"],
            rootdir,
        ).split("\n")
    except (subprocess.CalledProcessError, FileNotFoundError):
        found = []
    if len(found) == 6 and found[4:] == ["--", ""] and all(_is_hex(v) for v in found[2:4]):
        return Path(found[0]).resolve(), Path(found[1]), found[2], found[3]
    try:
        top = Path(_git(["rev-parse", "--show-toplevel"], rootdir).strip()).resolve()
    except (subprocess.CalledProcessError, FileNotFoundError):
        raise NotARepository(
            f"{rootdir} is not in a Git repository, and this scheduler runs jobs from a Git "
            "snapshot of the code (so you can keep editing while they wait): run "
            "'git init && git add -A && git commit -m start', or pass --no-snapshot to run "
            "from the working tree as it will be when each job starts"
        ) from None
    try:
        base: str | None = _git(["rev-parse", "--verify", "-q", "HEAD"], top).strip() or None
    except subprocess.CalledProcessError:
        base = None
    git_dir = Path(_git(["rev-parse", "--absolute-git-dir"], top).strip())
    return top, git_dir, base, None


def _is_hex(text: str) -> bool:
    return len(text) in (40, 64) and set(text) <= _HEX


def _add(work_tree: Path, env: dict[str, str], paths: list[str]) -> None:
    """Stage ``paths`` (literal names, through stdin: no argument-length limit) into the
    index of ``env``; ``-f``, because every path here was chosen on purpose."""
    if paths:
        _git(
            ["add", "-A", "-f", "--pathspec-from-file=-", "--pathspec-file-nul"],
            work_tree,
            env,
            input="\0".join(paths),
        )


def _inline_submodules(
    top: Path, git_dir: Path, index: dict[str, str], tmp: Path, untracked_policy: str
) -> None:
    """Replace every gitlink of the index by the files of that nested repository's work
    tree, written into this repository's object store (so the snapshot is self-contained)."""
    for number, entry in enumerate(_lines(_git(["ls-files", "-z", "-s"], top, index))):
        meta, path = entry.split("\t", 1)
        if not meta.startswith("160000 ") or not (top / path / ".git").exists():
            continue  # not a gitlink, or a submodule that is not checked out
        sub = top / path
        files = _lines(_git(["ls-files", "-z", "--cached", "--recurse-submodules"], sub))
        if untracked_policy == "snapshot":
            files += _lines(_git(["ls-files", "-z", "--others", "--exclude-standard"], sub))
        files = sorted({f for f in files if os.path.lexists(sub / f)})
        # This repository's object store, the submodule's files: its own temporary index.
        env = {
            "GIT_DIR": str(git_dir),
            "GIT_WORK_TREE": str(sub),
            "GIT_INDEX_FILE": str(tmp / f"sub-{number}"),
        }
        _add(sub, env, files)
        subtree = _git(["write-tree"], sub, env).strip()
        _git(["update-index", "--force-remove", "--", path], top, index)
        _git(["read-tree", f"--prefix={path}/", subtree], top, index)


def imported_files() -> list[Path]:
    """The source files of the modules imported so far, installed packages left out: the
    code a job will import again, which its snapshot must therefore hold."""
    # Strings, not Paths: this runs over every module (hundreds) on the launcher's way to
    # its first run, twice (the snapshot, the session's sources); same test as _installed.
    inside = tuple(os.path.join(str(p), "") for p in _install_prefixes())
    folders: dict[str, str] = {}  # folder → its real path: modules share few folders
    found = []
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if not isinstance(name, str) or not name:
            continue
        folder, base = os.path.split(os.path.abspath(name))
        if folder not in folders:
            folders[folder] = os.path.realpath(folder)
        real = os.path.join(folders[folder], base)
        if os.path.islink(real):
            real = os.path.realpath(real)
        parts = real.split(os.sep)
        if "site-packages" in parts or "dist-packages" in parts or real.startswith(inside):
            continue
        found.append(Path(name))
    return found


def _install_prefixes() -> set[Path]:
    """The Python installation's folders and xprun's own, resolved."""
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    prefixes.add(Path(__file__).resolve().parent)
    return prefixes


def _installed(path: Path) -> bool:
    """Whether ``path`` (resolved) belongs to the Python installation, a virtual environment
    (even one inside the repository) or xprun itself: not the user's code."""
    if "site-packages" in path.parts or "dist-packages" in path.parts:
        return True
    return any(path.is_relative_to(p) for p in _install_prefixes())


def confine_imports(source: Path, root: Path) -> None:
    """Make ``sys.path`` lead into the snapshot ``root`` instead of the work tree ``source``.

    A worker starts in the launcher's folder, which ``python -m`` puts first on
    ``sys.path``, and ``PYTHONPATH`` or ``.pth`` files may name folders of the work tree too:
    each such entry is replaced by the same folder in the snapshot (dropped when the
    snapshot has none), so a module missing from the snapshot is an ``ImportError``, never a
    silent import of the live work tree.
    """
    source, root = source.resolve(), root.resolve()
    confined: list[str] = []
    for entry in sys.path:
        path = Path(os.path.abspath(entry or os.curdir)).resolve()
        if path.is_relative_to(source) and not path.is_relative_to(root) and not _installed(path):
            inside = root / path.relative_to(source)
            if not inside.is_dir():
                continue
            entry = str(inside)
        if entry not in confined:
            confined.append(entry)
    sys.path[:] = confined


def _check_needed(
    top: Path,
    root: Path,
    needed: Iterable[Path],
    exclude: list[Path],
    settings: dict[str, Any],
    rootdir: Path,
) -> None:
    missing = []
    for path in needed:
        path = Path(path).resolve()
        if not path.is_relative_to(top) or any(path.is_relative_to(e) for e in exclude):
            continue
        rel = path.relative_to(top)
        if not os.path.exists(root / rel) and os.path.exists(path):
            missing.append(rel)
    if not missing:
        return
    reasons = [f"{rel.as_posix()}: {_why_missing(top, rel, settings, rootdir)}" for rel in missing]
    raise UsageError(
        "the code imports files that its Git snapshot lacks, so jobs (which import only from "
        "the snapshot) would not find them:\n  "
        + "\n  ".join(sorted(set(reasons)))
        + "\nor pass --no-snapshot to run from the work tree as it is when each run starts"
    )


def _why_missing(top: Path, rel: Path, settings: dict[str, Any], rootdir: Path) -> str:
    for parent in reversed(rel.parents[:-1]):  # the shallowest folder first
        if (top / parent / ".git").exists():
            return (
                f"it is inside the submodule (nested repository) {parent.as_posix()}, whose "
                "files a snapshot leaves out: set [tool.xprun] snapshot_submodules = true"
            )
    try:
        # check-ignore takes no literal pathspecs; the name only feeds this message.
        check = ["--no-literal-pathspecs", "check-ignore", "-v", "-z", "--no-index", "--stdin"]
        rule = _git(check, top, input=rel.as_posix() + "\0")
    except subprocess.CalledProcessError:
        rule = ""
    if rule:
        source, line, pattern = _lines(rule)[:3]
        try:
            shown = (top / rel).relative_to(rootdir).as_posix()
        except ValueError:
            shown = rel.as_posix()
        return (
            f"it is ignored by Git ({source}:{line}: {pattern}): commit it, or add it to "
            f'[tool.xprun] snapshot_include (e.g. snapshot_include = ["{shown}"])'
        )
    if settings.get("untracked") == "ignore":
        return "it is untracked and [tool.xprun] untracked = 'ignore': commit it"
    return "commit it"


def _extractable(top: Path) -> Any:
    """A tar filter: ``data`` for everything but symbolic links, which are kept as links;
    a link whose relative target leaves the tree is pointed at the same place as in the
    work tree (its target is outside the snapshot either way)."""

    def keep(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        if not member.issym():
            return tarfile.data_filter(member, dest)
        target = member.linkname
        if not posixpath.isabs(target):
            inside = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), target))
            if inside == ".." or inside.startswith("../"):
                target = os.path.normpath(top / posixpath.dirname(member.name) / target)
        safe = tarfile.tar_filter(member.replace(linkname=target, deep=False), dest)
        # None leaves an attribute unset on extraction (tarfile's documented way: the extracting
        # user owns the files, with its umask); typeshed's TarInfo.replace does not list None.
        unset: dict[str, Any] = dict.fromkeys(("uid", "gid", "uname", "gname", "mode"))
        return safe.replace(deep=False, **unset)

    return keep


def extract(top: Path, commit: str, snapshot_dir: Path) -> Path:
    """``<snapshot_dir>/<commit>/``, extracted once, atomically."""
    final = snapshot_dir / commit
    if final.is_dir():
        return final
    snapshot_dir.mkdir(parents=True, exist_ok=True)
    ignore = snapshot_dir / ".gitignore"  # as pytest's cache: git status stays clean
    if not ignore.exists():
        with contextlib.suppress(OSError):
            ignore.write_text("# created by xprun: code snapshots, never committed\n*\n")
    tmp = snapshot_dir / f".{commit}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit], cwd=top, capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            tar.extractall(tmp, filter=_extractable(top))
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another launch extracted it first
    except BaseException:  # Ctrl-C too: no half-extracted copy left behind; re-raised
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
