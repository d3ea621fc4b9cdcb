"""What a run records about where and with what it ran: machine, packages, Git, scheduler.

Everything that is the same for all runs of a process is computed once.  Git state is read
once per session with GitPython (imported lazily); a missing Git, a repository with no
commits, or a detached HEAD are recorded as such, never raised.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._version import __version__
from .store import host

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
    """Fields shared by every run of this process."""
    if not _PROCESS:
        _PROCESS.update(
            host=host(),
            user=_user(),
            pid=os.getpid(),
            python=platform.python_version(),
            python_executable=sys.executable,
            platform=platform.platform(),
            xprun=__version__,
            argv=list(sys.argv),
            cwd=os.getcwd(),
        )
    return _PROCESS


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
        import importlib.metadata as metadata

        loaded = sys.modules.get(module)
        for dist in import_distributions().get(module, []):  # editable installs too
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
    global _DISTRIBUTIONS
    if _DISTRIBUTIONS is not None:
        return _DISTRIBUTIONS
    import importlib.metadata as metadata
    import json

    import xxhash

    digest = xxhash.xxh3_64_hexdigest(_distributions_key().encode())
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base, "xprun", f"distributions-{digest}.json")
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(found, dict):
            _DISTRIBUTIONS = found
            return found
    except (OSError, ValueError):
        pass
    _DISTRIBUTIONS = metadata.packages_distributions()
    try:
        from .store import write_text_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(_DISTRIBUTIONS))
        _prune_cache(path.parent, keep=path)
    except OSError:
        pass  # a read-only home: computed again by the next process
    return _DISTRIBUTIONS


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


def _untracked(repo: Any, exclude: list[Path]) -> list[str]:
    """Untracked, not ignored files; folders collapsed; the log and snapshot folders left out
    (git does not even walk them, which matters with 100,000 runs under the log folder)."""
    root = Path(repo.working_tree_dir)
    specs = ["."]
    for path in exclude:
        try:
            specs.append(f":(exclude){path.resolve().relative_to(root.resolve()).as_posix()}")
        except ValueError:
            continue  # outside the work tree
    # --no-empty-directory: an untracked folder holding only a left-out one (.xprun/ of
    # .xprun/snapshots) is not listed whole by --directory
    out = repo.git.ls_files(
        "--others", "--exclude-standard", "--directory", "--no-empty-directory", "--", *specs
    )
    return [line for line in out.splitlines() if line]


def _in_git_repository(path: Path) -> bool:
    """Whether ``path`` or a folder above it holds a ``.git`` (folder, or file of a worktree
    or submodule) or is itself a bare repository: where ``git.Repo(path,
    search_parent_directories=True)`` looks (the absolute path, symbolic links not resolved,
    then each parent), at the cost of a few ``stat`` calls.  With ``GIT_OBJECT_DIRECTORY``
    set, any folder with a ``HEAD`` may be a repository to GitPython: it is asked then."""
    if os.environ.get("GIT_OBJECT_DIRECTORY"):
        return True
    folder = Path(os.path.abspath(path))
    try:
        for candidate in (folder, *folder.parents):
            if (candidate / ".git").exists():
                return True
            if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
                return True  # a bare repository (or a .git folder itself)
    except OSError:
        return True  # a folder it cannot look into: GitPython says what is wrong
    return False


def git_state(path: Path, exclude: list[Path] | None = None) -> tuple[dict[str, Any], str | None]:
    """``(fields, patch)``: commit, branch, dirty flag, untracked files; the uncommitted diff."""
    if not _in_git_repository(path):
        # Without this look, every launch outside a repository imported GitPython (~0.15 s
        # of CPU, and a `git version` subprocess) only to be told so.
        return {"available": False, "reason": "not a Git repository"}, None
    try:
        import git
    except ImportError:
        return {"available": False, "reason": "GitPython or git is not installed"}, None
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return {"available": False, "reason": "not a Git repository"}, None
    except Exception as exc:  # GitPython's many errors on a repository it cannot read: recorded
        return {"available": False, "reason": f"cannot read the repository: {exc}"}, None
    fields: dict[str, Any] = {"available": True, "root": repo.working_tree_dir}
    patch: str | None = None
    try:
        fields["commit"] = repo.head.commit.hexsha
    except ValueError:
        fields["commit"] = None
        fields["reason"] = "the repository has no commits yet"
    try:
        fields["branch"] = repo.active_branch.name
        fields["detached"] = False
    except TypeError:
        fields["branch"] = None
        fields["detached"] = True
    try:
        fields["untracked"] = _untracked(repo, exclude or [])
        if fields["commit"] is not None:
            patch = repo.git.diff("HEAD", binary=True) or None
        fields["dirty"] = bool(patch) or bool(fields["untracked"])
    except Exception as exc:  # a broken index or a git error: record, never crash
        fields["dirty"] = None
        fields["error"] = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
    if patch and not patch.endswith("\n"):
        patch += "\n"
    return fields, patch
