"""Finding the project's rootdir and reading its ``[tool.xprun]`` settings.

The rules are pytest's, so researchers already know them: the rootdir is the nearest parent
(of the common ancestor of the given paths) holding ``pyproject.toml``; failing that, the Git
work tree's root; failing that, the current directory.  Only the standard library is used
here, and ``tomllib`` only once a file is read, so ``--help`` stays light.

Every flat key is checked against the type it must have before anything uses it, so a wrong
value (``log_dir = 5``, ``exclude = [1]``, ``heartbeat_interval = nan``) is a usage error naming
the key, not a crash or a silent misbehaviour later.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeGuard

from .errors import UsageError

#: Seconds between two touches of a claim (the heartbeat), and of silence after which a claim
#: is stale: the defaults of ``[tool.xprun]`` and of ``store.Heartbeat`` (the Reader's too).
HEARTBEAT_INTERVAL = 5.0
HEARTBEAT_TIMEOUT = 60.0

DEFAULTS: dict[str, Any] = {
    "log_dir": "xprun_logs",
    "experiment_files": ["xp_*.py"],
    "experiment_functions": ["xp_*"],
    "exclude": [],
    "norecursedirs": [
        "*.egg",
        ".*",
        "_darcs",
        "build",
        "CVS",
        "dist",
        "node_modules",
        "venv",
        "{arch}",
        "__pycache__",
    ],
    "snapshot_dir": ".xprun/snapshots",
    "scheduler": "inline",
    "dirty": "snapshot",
    "untracked": "snapshot",
    "snapshot_include": [],
    "snapshot_submodules": False,
    "heartbeat_interval": HEARTBEAT_INTERVAL,
    "heartbeat_timeout": HEARTBEAT_TIMEOUT,
    "addopts": [],
    "markers": [],
}


class ProjectSettings:
    """Where the project is and what its ``[tool.xprun]`` table says (merged over DEFAULTS).

    A plain class rather than a dataclass: ``dataclasses`` (and the ``inspect`` it imports)
    would be the largest part of what ``xprun --help`` imports.
    """

    __slots__ = ("inifile", "rootdir", "values")

    def __init__(
        self, rootdir: Path, inifile: Path | None, values: dict[str, Any] | None = None
    ) -> None:
        self.rootdir = rootdir
        self.inifile = inifile
        self.values: dict[str, Any] = {} if values is None else values

    def __repr__(self) -> str:
        return (
            f"ProjectSettings(rootdir={self.rootdir!r}, inifile={self.inifile!r}, "
            f"values={self.values!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProjectSettings):
            return NotImplemented
        return (self.rootdir, self.inifile, self.values) == (
            other.rootdir,
            other.inifile,
            other.values,
        )

    __hash__ = None  # type: ignore[assignment]  # values is a dict (the dataclass hash raised)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def patterns(self, key: str) -> list[str]:
        value = self.values[key]
        return [value] if isinstance(value, str) else list(value)


ADDOPTS_VARIABLE = "XPRUN_ADDOPTS"


def addopts(settings: ProjectSettings) -> list[str]:
    """The words to put before the command line, as pytest's ``addopts``: ``[tool.xprun]
    addopts``, then the environment variable ``XPRUN_ADDOPTS`` (so the command line, last,
    wins where an option is given twice).  A string is split with ``shlex``, as a shell
    would; one that does not split (an open quote) is a usage error naming its source."""
    import shlex

    words: list[str] = []
    sources = [
        (settings.values.get("addopts", []), f"{settings.inifile}: [tool.xprun] addopts"),
        (os.environ.get(ADDOPTS_VARIABLE, ""), f"the environment variable {ADDOPTS_VARIABLE}"),
    ]
    for value, source in sources:
        if isinstance(value, list):
            words += value
            continue
        try:
            words += shlex.split(value)
        except ValueError as exc:
            raise UsageError(
                f"{source} = {value!r} cannot be split into words ({exc}); close the quote"
            ) from None
    return words


def _common_ancestor(paths: list[Path]) -> Path:
    return Path(os.path.commonpath([str(p) for p in paths]))


def find_rootdir(args_paths: list[Path], cwd: Path) -> tuple[Path, Path | None]:
    """Return (rootdir, pyproject.toml or None) for the given existing paths."""
    start = _common_ancestor(args_paths) if args_paths else cwd
    if start.is_file():
        start = start.parent
    for candidate in (start, *start.parents):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file():
            return candidate, pyproject
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate, None
    return cwd, None


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != "" and "\0" not in value


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _is_patterns(value: Any) -> bool:
    items = [value] if isinstance(value, str) else value
    return isinstance(items, list) and all(isinstance(item, str) for item in items)


def _is_marker_line(value: Any) -> bool:
    """``"slow: what it means"`` (pytest's ``markers`` lines): a mark name (letters, digits,
    underscores, not starting with one), then optionally ``(args)`` and ``: description``."""
    if not isinstance(value, str):
        return False
    name = value.split(":", 1)[0].split("(", 1)[0].strip()
    return name.isidentifier() and not name.startswith("_")


MIN_HEARTBEAT_INTERVAL = 0.01  # seconds; anything shorter is a busy loop of file touches


def _is_seconds(value: Any) -> TypeGuard[float]:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= MIN_HEARTBEAT_INTERVAL
    )


_PATTERNS = "a glob string or an array of glob strings"
# key → (check, what the value must be); every key of DEFAULTS has one.
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "log_dir": (_is_path, "a non-empty string (a folder, relative to the rootdir)"),
    "experiment_files": (_is_patterns, _PATTERNS),
    "experiment_functions": (_is_patterns, _PATTERNS),
    "exclude": (_is_patterns, _PATTERNS + " (config keys)"),
    "norecursedirs": (_is_patterns, _PATTERNS),
    "snapshot_dir": (_is_path, "a non-empty string (a folder, relative to the rootdir)"),
    "scheduler": (_is_name, "a non-empty string (a scheduler name: inline, local, slurm, oar)"),
    "dirty": (_is_name, "a string (snapshot, error or ignore)"),
    "untracked": (_is_name, "a string (snapshot, error or ignore)"),
    "snapshot_include": (
        lambda v: isinstance(v, list) and all(_is_path(i) for i in v),
        "an array of paths (ignored files or folders to put in snapshots)",
    ),
    "snapshot_submodules": (lambda v: isinstance(v, bool), "a boolean"),
    "heartbeat_interval": (
        _is_seconds,
        f"a finite number of seconds, at least {MIN_HEARTBEAT_INTERVAL}",
    ),
    "heartbeat_timeout": (
        _is_seconds,
        f"a finite number of seconds, at least {MIN_HEARTBEAT_INTERVAL}",
    ),
    "addopts": (
        _is_patterns,
        "a string (split as a shell would) or an array of strings (command-line words)",
    ),
    "markers": (
        lambda v: isinstance(v, list) and all(_is_marker_line(i) for i in v),
        'an array of "name: description" strings, one per mark (markers = ["slow: slow runs"])',
    ),
}

_TOML_TYPES = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    list: "an array",
    dict: "a table",
}


def _shown(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} ({_TOML_TYPES.get(type(value), type(value).__name__)})"


def check_values(values: dict[str, Any]) -> list[str]:
    """What is wrong with these settings: one sentence per bad key, naming it."""
    problems = [
        f"{key} must be {expected}, got {_shown(values[key])}"
        for key, (check, expected) in _CHECKS.items()
        if key in values and not check(values[key])
    ]
    interval, timeout = values.get("heartbeat_interval"), values.get("heartbeat_timeout")
    if _is_seconds(interval) and _is_seconds(timeout) and timeout < 2 * interval:
        problems.append(
            f"heartbeat_timeout ({timeout}) must be at least twice heartbeat_interval "
            f"({interval}), or a live run could be taken for a dead one"
        )
    return problems


def load_settings(args_paths: list[Path], cwd: Path) -> ProjectSettings:
    """Find the rootdir and read ``[tool.xprun]``; a malformed file is a usage error."""
    rootdir, inifile = find_rootdir(args_paths, cwd)
    values = dict(DEFAULTS)
    if inifile is not None:
        import tomllib

        try:
            with inifile.open("rb") as f:
                data = tomllib.load(f)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{inifile}: not valid TOML ({exc}); fix the file.") from exc
        except OSError as exc:
            raise UsageError(f"{inifile}: cannot be read ({exc.strerror}).") from exc
        tool = data.get("tool", {})
        table = tool.get("xprun", {}) if isinstance(tool, dict) else {}
        if not isinstance(table, dict):
            raise UsageError(f"{inifile}: [tool.xprun] must be a table.")
        # Sub-tables ([tool.xprun.<plugin>]) belong to plugins; flat keys must be known.
        unknown = sorted(
            k for k, v in table.items() if k not in DEFAULTS and not isinstance(v, dict)
        )
        if unknown:
            raise UsageError(
                f"{inifile}: unknown [tool.xprun] setting(s) {', '.join(unknown)}; "
                f"known settings: {', '.join(sorted(DEFAULTS))}."
            )
        problems = check_values({**values, **table})
        if problems:
            raise UsageError(
                f"{inifile}: [tool.xprun] " + "; ".join(problems) + ". Fix the setting(s)."
            )
        values.update(table)
    return ProjectSettings(rootdir=rootdir, inifile=inifile, values=values)
