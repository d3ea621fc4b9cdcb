"""Finding the project's rootdir and reading its ``[tool.xprun]`` settings.

The rules are pytest's, so researchers already know them: the rootdir is the nearest parent
(of the common ancestor of the given paths) holding ``pyproject.toml``; failing that, the Git
work tree's root; failing that, the current directory.  Only ``tomllib`` is used here, so the
``--help`` path stays light.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError

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
    "heartbeat_interval": 5.0,
    "heartbeat_timeout": 60.0,
}


@dataclass(frozen=True)
class ProjectSettings:
    """Where the project is and what its ``[tool.xprun]`` table says (merged over DEFAULTS)."""

    rootdir: Path
    inifile: Path | None
    values: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def patterns(self, key: str) -> list[str]:
        value = self.values[key]
        return [value] if isinstance(value, str) else list(value)


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


def load_settings(args_paths: list[Path], cwd: Path) -> ProjectSettings:
    """Find the rootdir and read ``[tool.xprun]``; a malformed file is a usage error."""
    rootdir, inifile = find_rootdir(args_paths, cwd)
    values = dict(DEFAULTS)
    if inifile is not None:
        try:
            with inifile.open("rb") as f:
                data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{inifile}: not valid TOML ({exc}); fix the file.") from exc
        table = data.get("tool", {}).get("xprun", {})
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
        values.update(table)
    return ProjectSettings(rootdir=rootdir, inifile=inifile, values=values)
