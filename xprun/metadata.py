"""What a run records about where and with what it ran: machine, packages, Git, scheduler.

Everything that is the same for all runs of a process is computed once.  Git state is read
once per session with plain ``git`` calls (no GitPython: its import alone cost each launch
~0.15 s of CPU); a missing Git, a repository with no commits, or a detached HEAD are recorded
as such, never raised.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import platform
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

from ._version import __version__
from .store import host

T = TypeVar("T")


class Soon(Generic[T]):
    """A value computed in a thread from now on, for the launcher to take when it needs it
    (:meth:`result`: waits, and raises what the computation raised).

    The launch path overlaps work so: the Git state and the provenance session's package
    list are read while the snapshot's git calls run.  A daemon thread: a launch that fails
    meanwhile never waits for it."""

    def __init__(self, compute: Callable[[], T]) -> None:
        self._compute = compute
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="xprun-soon", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._compute()
        except BaseException as exc:  # handed to the thread that takes the result
            self._error = exc

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


# Environment variables that name the job a run belongs to, by scheduler.
JOB_VARIABLES = {
    "slurm": ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT"),
    "oar": ("OAR_JOB_ID", "OAR_ARRAY_ID", "OAR_ARRAY_INDEX"),
    "pbs": ("PBS_JOBID", "PBS_ARRAY_INDEX"),
    "lsf": ("LSB_JOBID", "LSB_JOBINDEX"),
}

_PROCESS: dict[str, Any] = {}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError, ImportError):  # no name for this uid (KeyError before 3.13)
        return str(os.getuid()) if hasattr(os, "getuid") else "?"


def process_fields() -> dict[str, Any]:
    """Fields shared by every run of this process: the machine's and the interpreter's,
    kept for the process, and its command line and current folder as they are now (a
    notebook or a script may launch several sweeps, from several folders, in one process;
    callers compute these once per session)."""
    if not _PROCESS:
        _PROCESS.update(
            host=host(),
            user=_user(),
            pid=os.getpid(),
            python=platform.python_version(),
            python_executable=sys.executable,
            platform=platform.platform(),
            xprun=__version__,
        )
    return {**_PROCESS, "argv": list(sys.argv), "cwd": os.getcwd()}


def job_fields() -> dict[str, Any] | None:
    """The scheduler job this process runs in, from its environment (None outside one)."""
    for scheduler, names in JOB_VARIABLES.items():
        found = {name: os.environ[name] for name in names if name in os.environ}
        if found:
            return {"scheduler": scheduler, **found}
    return None


class PackageVersions:
    """Installed distributions of the top-level packages imported so far, with their
    versions, by distribution name (``GitPython``, ``PyYAML``: what ``pip install`` takes,
    not the import names ``git``, ``yaml``); the standard library and the user's own
    modules left out.

    Versions are cached for the whole process: an installed package does not change.
    """

    _versions: dict[str, tuple[str, str] | None] = {}  # module → (distribution, version)

    def __init__(self) -> None:
        self._seen_modules = 0
        self._current: dict[str, str] = {}

    def _version_of(self, module: str) -> tuple[str, str] | None:
        """The distribution that installed ``module`` and its version; for a module on the
        path that no distribution installed, its own name and ``__version__``."""
        loaded = sys.modules.get(module)
        for dist in import_distributions().get(module, []):  # editable installs too
            version = distribution_versions().get(dist)
            if version is not None:
                return dist, version
            import importlib.metadata as metadata  # not cached: asked, as it was then

            try:
                return dist, metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
        where = str(getattr(loaded, "__file__", "") or "")
        version = getattr(loaded, "__version__", None)
        if ("site-packages" in where or "dist-packages" in where) and isinstance(version, str):
            return module, version
        return None  # the user's own modules, and namespace packages

    def imported(self) -> dict[str, str]:
        modules = sys.modules
        if len(modules) != self._seen_modules:
            self._seen_modules = len(modules)
            stdlib = sys.stdlib_module_names
            versions = self._versions
            for name in list(modules):
                if "." in name or name in stdlib or name.startswith("_"):
                    continue
                if name not in versions:
                    versions[name] = self._version_of(name)
                found = versions[name]
                if found is not None:
                    self._current[found[0]] = found[1]
            self._current = dict(sorted(self._current.items(), key=lambda kv: kv[0].lower()))
        return self._current


_DISTRIBUTIONS: Mapping[str, list[str]] | None = None
_VERSIONS: Mapping[str, str] | None = None
#: Bumped when the cache file's content changes shape (it is part of the file's key).
_CACHE_FORMAT = 2


_METADATA_SUFFIXES = (".dist-info", ".egg-info", ".egg")


def _distributions_key() -> str:
    """What ``packages_distributions()`` reads, by name and modification time: each
    ``sys.path`` entry and, in each folder, its distributions' metadata folders (``.dist-info``,
    ``.egg-info``, ``.egg``; pip writes a new one, or renames a file in it, on every install).

    Keyed on the metadata folders rather than on the ``sys.path`` folder's own mtime, which
    changes whenever anything is added to it: the project's folder is first on the path of
    ``python -m xprun`` and of every pool worker, and gains its log folder on the first
    launch, so the map was built afresh by most processes.
    """
    key = []
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as children:
                found = sorted(
                    f"{child.name}\0{_mtime(child.path)}"
                    for child in children
                    if child.name.lower().endswith(_METADATA_SUFFIXES)
                )
        except NotADirectoryError:  # a zip file on the path: its own mtime
            found = [str(_mtime(entry))]
        except OSError:
            continue
        key.append("\0".join([entry, *found]))
    return "\n".join(key)


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def import_distributions() -> Mapping[str, list[str]]:
    """``importlib.metadata.packages_distributions()`` (import name → distributions), kept in
    a cache file keyed by the distributions installed on ``sys.path``.

    Building it reads the metadata of every installed distribution (a third of a second
    with 160 of them), which every process that records a run would pay.  The key is
    :func:`_distributions_key`: installing, upgrading or removing a distribution makes a new
    one, while a change to anything else in a ``sys.path`` folder (the project's own folder,
    first on the path, gains its log folder) keeps it.  The cache lives in
    ``$XDG_CACHE_HOME/xprun`` (``~/.cache``); a cache that cannot be read or written is only
    slower.
    """
    if _DISTRIBUTIONS is None or _VERSIONS is None:
        _load_distributions()
    assert _DISTRIBUTIONS is not None
    return _DISTRIBUTIONS


def distribution_versions() -> Mapping[str, str]:
    """``importlib.metadata.version(name)`` of every distribution :func:`import_distributions`
    names, by that name, cached with it: a process that reads the cache then records package
    versions without importing ``importlib.metadata`` (~20 ms of each pool worker's start-up)."""
    if _DISTRIBUTIONS is None or _VERSIONS is None:
        _load_distributions()
    assert _VERSIONS is not None
    return _VERSIONS


def _load_distributions() -> None:
    global _DISTRIBUTIONS, _VERSIONS
    import json

    import xxhash

    key = f"{_CACHE_FORMAT}\n{_distributions_key()}"
    digest = xxhash.xxh3_64_hexdigest(key.encode())
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base, "xprun", f"distributions-{digest}.json")
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        modules, versions = found["modules"], found["versions"]
        shaped = isinstance(modules, dict) and isinstance(versions, dict)
        if found["format"] == _CACHE_FORMAT and shaped:
            _DISTRIBUTIONS, _VERSIONS = modules, versions
            return
    except (OSError, ValueError, TypeError, KeyError):
        pass
    import importlib.metadata as metadata

    modules = metadata.packages_distributions()
    versions = {}
    for name in sorted({dist for dists in modules.values() for dist in dists}):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # asked again when recorded: the answer then is the one recorded
    _DISTRIBUTIONS, _VERSIONS = modules, versions
    try:
        from .store import write_text_atomic

        data = {"format": _CACHE_FORMAT, "modules": modules, "versions": versions}
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(data))
        _prune_cache(path.parent, keep=path)
    except OSError:
        pass  # a read-only home: computed again by the next process


#: Cache files kept besides a new one: a few environments (venvs, upgrades) alternate.
CACHE_KEEP = 16


def _prune_cache(folder: Path, keep: Path) -> None:
    """Remove all but the :data:`CACHE_KEEP` most recently written cache files: each install
    makes a new key, and the folder must not grow with every environment ever seen."""
    found = []
    for entry in folder.glob("distributions-*.json"):
        if entry != keep:
            with contextlib.suppress(OSError):
                found.append((entry.stat().st_mtime_ns, entry))
    found.sort(reverse=True)
    for _, entry in found[CACHE_KEEP:]:
        with contextlib.suppress(OSError):
            entry.unlink()  # another process may have removed it, or be reading it: harmless


#: How git is run for the Git state: English messages (as GitPython ran it, whose answers
#: the recorded fields kept), and never a write to the user's index (``git status`` would
#: otherwise refresh it, racing the user's own git commands).
_GIT = ("git", "--no-optional-locks")
_GIT_ENV = {"LANGUAGE": "C", "LC_ALL": "C"}


class _GitFailed(Exception):
    """A git command exited non-zero; ``str()`` is the last line of what it printed
    (``quiet``: it printed nothing, as ``rev-parse -q --verify`` of a missing commit)."""

    def __init__(self, message: str, quiet: bool = False) -> None:
        super().__init__(message)
        self.quiet = quiet


def _git(args: list[str], cwd: str) -> subprocess.Popen[bytes]:
    """Start ``git ARGS`` in ``cwd`` (not waited for: the calls of one state run at once)."""
    return subprocess.Popen(
        [*_GIT, *args],
        cwd=cwd,
        env={**os.environ, **_GIT_ENV},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _output(proc: subprocess.Popen[bytes]) -> bytes:
    """What ``proc`` printed, once it exited 0; ``_GitFailed`` otherwise."""
    out, err = proc.communicate()
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        if not lines:
            raise _GitFailed(f"git exited with code {proc.returncode}", quiet=True)
        raise _GitFailed(lines[-1].strip())
    return out


def _text(out: bytes) -> str:
    """Git's output as GitPython gave it: one trailing newline cut, UTF-8 with undecodable
    bytes kept (``surrogateescape``)."""
    return out.removesuffix(b"\n").decode("utf-8", "surrogateescape")


def _work_tree(path: Path) -> tuple[bool, str | None]:
    """``(maybe a repository, its work tree)``, by a look for ``.git`` from ``path`` (made
    absolute, symbolic links resolved) up to ``/``, with GitPython's rule (which the recorded
    ``root`` kept): the first folder holding a ``.git`` file (a submodule, a linked work
    tree: git says if it is broken) or a ``.git`` folder that is a repository (an empty one
    is skipped, as git and GitPython skip it).

    ``(False, None)``: in no repository, told by a few ``stat`` calls, without git;
    ``(True, None)``: git must say (a bare repository, ``GIT_DIR`` or
    ``GIT_OBJECT_DIRECTORY`` set, a folder that cannot be looked into)."""
    if any(os.environ.get(name) for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_OBJECT_DIRECTORY")):
        return True, None
    try:
        folder = Path(path).resolve()
        for candidate in (folder, *folder.parents):
            dotgit = candidate / ".git"
            if dotgit.is_dir():
                if _is_git_dir(dotgit):
                    return True, str(candidate)
            elif dotgit.exists():
                return True, str(candidate)
            elif _is_git_dir(candidate):
                return True, None  # a bare repository (or a .git folder itself)
    except OSError:
        return True, None
    return False, None


def _is_git_dir(folder: Path) -> bool:
    """Whether ``folder`` holds a repository's ``HEAD`` and object store (git's own test,
    ``is_git_directory``, in short: a linked work tree's has a ``commondir`` instead)."""
    if not (folder / "HEAD").is_file():
        return False
    return (folder / "commondir").is_file() or (
        (folder / "objects").is_dir() and (folder / "refs").is_dir()
    )


def _untracked_args(top: str, exclude: list[Path]) -> list[str]:
    """Untracked, not ignored files; folders collapsed; the log and snapshot folders left out
    (git does not even walk them, which matters with 100,000 runs under the log folder)."""
    root = Path(top).resolve()
    specs = ["."]
    for path in exclude:
        try:
            specs.append(f":(exclude){path.resolve().relative_to(root).as_posix()}")
        except ValueError:
            continue  # outside the work tree
    # --no-empty-directory: an untracked folder holding only a left-out one (.xprun/ of
    # .xprun/snapshots) is not listed whole by --directory
    return [
        "ls-files",
        "--others",
        "--exclude-standard",
        "--directory",
        "--no-empty-directory",
        "--",
        *specs,
    ]


#: ``git status`` for the commit, the branch and whether any tracked file changed: no
#: untracked walk (``ls-files`` lists those, with the log folder left out), and every
#: submodule change counted, so that it never says "unchanged" where ``git diff HEAD`` would
#: print something (whatever ``diff.ignoreSubmodules`` or ``submodule.*.ignore`` say).
_STATUS = [
    "status",
    "--porcelain=v2",
    "--branch",
    "-z",
    "--untracked-files=no",
    "--ignore-submodules=none",
]


def git_state(path: Path, exclude: list[Path] | None = None) -> tuple[dict[str, Any], str | None]:
    """``(fields, patch)``: commit, branch, dirty flag, untracked files; the uncommitted diff.

    Read with plain git, two or three calls: ``git status`` (commit, branch, any change to a
    tracked file) and ``git ls-files`` (the untracked files) at once, then ``git diff HEAD``
    when something changed.  Importing GitPython for this cost each launch ~0.15 s of CPU on
    the way to its first run.  A missing git, a repository with no commits, a detached HEAD
    or a repository git cannot read are recorded as such, never raised.
    """
    maybe, top = _work_tree(path)
    if not maybe:
        return {"available": False, "reason": "not a Git repository"}, None
    try:
        if top is None:
            found = _output(_git(["rev-parse", "--show-toplevel"], str(Path(path).resolve())))
            top = _text(found)
            if not top:  # a bare repository: no work tree to describe
                raise _GitFailed("fatal: this operation must be run in a work tree")
        status = _git(_STATUS, top)
        others = _git(_untracked_args(top, exclude or []), top)
    except FileNotFoundError as exc:
        if exc.filename == _GIT[0]:
            return {"available": False, "reason": "git is not installed"}, None
        return {"available": False, "reason": f"cannot read the repository: {exc}"}, None
    except _GitFailed as exc:
        return _unreadable(str(exc)), None
    fields: dict[str, Any] = {"available": True, "root": top}
    try:
        head, branch, changed = _parse_status(_output(status))
    except _GitFailed as exc:
        others.communicate()
        if _NOT_A_REPOSITORY in str(exc) or "invalid gitfile" in str(exc):
            return {"available": False, "reason": "not a Git repository"}, None
        return _head_only(fields, top, str(exc)), None
    fields["commit"] = head
    if head is None:
        fields["reason"] = "the repository has no commits yet"
    fields["branch"] = branch
    fields["detached"] = branch is None
    patch: str | None = None
    try:
        fields["untracked"] = [line for line in _text(_output(others)).splitlines() if line]
        if head is not None and changed:
            patch = _text(_output(_git(["diff", "--binary", "HEAD"], top))) or None
        fields["dirty"] = bool(patch) or bool(fields["untracked"])
    except _GitFailed as exc:  # a broken index or a git error: record, never crash
        fields["dirty"] = None
        fields["error"] = str(exc)
    if patch and not patch.endswith("\n"):
        patch += "\n"
    return fields, patch


_NOT_A_REPOSITORY = "not a git repository"


def _unreadable(error: str) -> dict[str, Any]:
    if _NOT_A_REPOSITORY in error or "must be run in a work tree" in error:
        return {"available": False, "reason": "not a Git repository"}
    return {"available": False, "reason": f"cannot read the repository: {error}"}


def _parse_status(out: bytes) -> tuple[str | None, str | None, bool]:
    """``(commit, branch, changed)`` from ``git status --porcelain=v2 --branch -z``: the
    commit is None in a repository without commits (``(initial)``), the branch None when
    HEAD is detached; ``changed``: any entry for a tracked file (staged or not, submodules
    included)."""
    head: str | None = None
    branch: str | None = None
    changed = False
    for entry in out.split(b"\0"):
        if entry.startswith(b"# branch.oid "):
            oid = entry[len(b"# branch.oid ") :].decode()
            head = None if oid == "(initial)" else oid
        elif entry.startswith(b"# branch.head "):
            name = _text(entry[len(b"# branch.head ") :])
            branch = None if name == "(detached)" else name
        elif entry[:2] in (b"1 ", b"2 ", b"u "):
            changed = True
    return head, branch, changed


def _head_only(fields: dict[str, Any], top: str, error: str) -> dict[str, Any]:
    """The commit and branch of a repository whose work tree git cannot tell (a broken
    index: ``git status`` failed), with that error and ``dirty`` unknown; a repository whose
    HEAD git cannot read either is unreadable."""
    try:
        commit = _none_or(["rev-parse", "-q", "--verify", "HEAD^{commit}"], top)
        ref = _none_or(["symbolic-ref", "-q", "HEAD"], top)
    except _GitFailed:
        return _unreadable(error)
    fields["commit"] = commit or None
    if not commit:
        fields["reason"] = "the repository has no commits yet"
    fields["branch"] = ref.split("/", 2)[2] if ref.count("/") >= 2 else None
    fields["detached"] = not ref
    fields["dirty"] = None
    fields["error"] = error
    return fields


def _none_or(args: list[str], top: str) -> str:
    """The answer of a git query run with ``-q`` (``""`` when it quietly has none: no
    commit, no branch); ``_GitFailed`` when git could not answer."""
    try:
        return _text(_output(_git(args, top)))
    except _GitFailed as exc:
        if exc.quiet:
            return ""
        raise
