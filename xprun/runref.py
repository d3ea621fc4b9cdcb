"""Naming runs on the command line: words to run directories.

The commands that act on recorded runs (``xprun reproduce``, ``diff``, ``rm``, ``why``) take
the same words ``xprun`` itself takes to select runs, so one module resolves them:

- a **hash**, or a unique **prefix** of one (4 hexadecimal characters at least), as
  ``xprun HASH`` selects a run: one listing of each experiment folder, one record read per
  match, no index needed;
- a **node id** as ``run.json`` records it (``xp_a.py::xp_train[lr=0.1]``), its path
  relative to the rootdir or to the current folder; an experiment's node id without a label
  names all its runs;
- anything else is a **query** of the Reader's language (``"config.lr < 0.1 and status ==
  complete"``, see ``reader/query.py``), evaluated by the Reader.

A word that names nothing, or a prefix that names several runs where one is wanted, is a
``UsageError`` (exit 4) that names the word, and for a prefix lists the candidates.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import store
from .errors import UsageError

#: The shortest hash prefix accepted: fewer characters would name runs by accident.
MIN_PREFIX = 4
_HEX = re.compile(r"[0-9a-f]+")
_SHOWN = 20  # candidates listed in an ambiguity message


def is_hash_word(word: str) -> bool:
    """Whether ``word`` reads as a hash (prefix): lowercase hexadecimal only."""
    return bool(_HEX.fullmatch(word))


def ambiguous_prefix(prefix: str, names: Sequence[str]) -> str:
    """The message for a hash prefix that matches several runs (``names``: node ids or
    paths, listed sorted, at most 20)."""
    names = sorted(names)
    shown = "\n  ".join(names[:_SHOWN]) + ("\n  ..." if len(names) > _SHOWN else "")
    return (
        f"hash prefix {prefix} is ambiguous: it matches {len(names)} runs; give more of the "
        f"hash:\n  {shown}"
    )


def hash_matches(log_dir: Path, prefix: str) -> list[tuple[Path, dict[str, Any]]]:
    """The run directories of ``log_dir`` whose name starts with ``prefix``, each with its
    ``run.json`` (a directory without a readable record is left out); one listing per
    experiment folder, folders whose name starts with a dot (xprun's own) skipped."""
    found: list[tuple[Path, dict[str, Any]]] = []
    try:
        folders = sorted(e.path for e in os.scandir(log_dir) if e.is_dir() and e.name[:1] != ".")
    except OSError:
        return found
    for folder in folders:
        try:
            names = sorted(e.name for e in os.scandir(folder) if e.name.startswith(prefix))
        except OSError:
            continue
        for name in names:
            path = Path(folder, name)
            try:
                record = store.read_json(path / store.RUN_JSON)
            except (OSError, ValueError):
                continue
            if isinstance(record, dict):
                found.append((path, record))
    return found


def default_log_dir(given: str | None) -> Path:
    """The log directory named on the command line, else the project's (``[tool.xprun]``)."""
    from .show import default_log_dir as project_log_dir

    return project_log_dir(given)


def add_log_dir_option(parser: Any) -> None:
    """``--log-dir DIR``, as the commands that name runs take it."""
    parser.add_argument(
        "--log-dir",
        metavar="DIR",
        help="the log directory (default: the project's, from [tool.xprun])",
    )


class RunResolver:
    """Resolves words to run directories of one log directory (the Reader opened once, and
    only if a word needs it)."""

    def __init__(self, log_dir: Path, cwd: Path | None = None) -> None:
        self.log_dir = Path(log_dir).resolve()
        self.cwd = cwd or Path.cwd()
        self._frame: Any = None
        self._reader: Any = None

    def resolve(self, word: str) -> list[Path]:
        """Every run directory ``word`` names (at least one; else a ``UsageError``); a hash
        prefix names one run, or is a ``UsageError`` listing those it matches."""
        if not word.strip():
            raise UsageError("an empty word names no run: give a hash, a node id or a query")
        if "::" in word:
            found = self._nodeid(word)
            what = "node id"
        elif is_hash_word(word):
            if len(word) < MIN_PREFIX:
                raise UsageError(
                    f"hash prefix {word} is too short: give at least {MIN_PREFIX} characters"
                )
            found = [path for path, _ in hash_matches(self.log_dir, word)]
            if len(found) > 1:  # a prefix stands for one run, as `xprun HASH` reads it
                raise UsageError(ambiguous_prefix(word, [_name(path) for path in found]))
            what = "hash"
        else:
            found = self._query(word)
            what = "query"
        if not found:
            raise UsageError(
                f"no run in {self.log_dir} matches the {what} {word!r}"
                + (self._labels(word) if what == "node id" else "")
            )
        return found

    def _labels(self, word: str) -> str:
        """The node ids of the runs of the experiment ``word`` names, to pick one from."""
        experiment = word.partition("[")[0]
        nodeids = self._rows()["nodeid"].astype(str)
        names = sorted({n for n in nodeids if n == experiment or n.startswith(experiment + "[")})
        if not names:
            return ""
        shown = "\n  ".join(names[:_SHOWN]) + ("\n  ..." if len(names) > _SHOWN else "")
        return f"; the runs of {experiment} are:\n  {shown}"

    def resolve_one(self, word: str) -> Path:
        """The one run directory ``word`` names; several are a ``UsageError`` listing them."""
        found = self.resolve(word)
        if len(found) > 1:
            names = [_name(path) for path in found]
            shown = "\n  ".join(sorted(names)[:_SHOWN]) + ("\n  ..." if len(names) > _SHOWN else "")
            raise UsageError(
                f"{word!r} matches {len(found)} runs, and one is wanted: give its hash or its "
                f"node id with the label:\n  {shown}"
            )
        return found[0]

    def resolve_all(self, words: Iterable[str]) -> list[Path]:
        """The run directories all ``words`` name, each once, in the order first named."""
        found: dict[Path, None] = {}
        for word in words:
            found.update(dict.fromkeys(self.resolve(word)))
        return list(found)

    # -- node ids and queries: through the Reader ------------------------------------------

    def reader(self) -> Any:
        if self._reader is None:
            from .reader import Reader

            try:
                self._reader = Reader(self.log_dir).refresh()
            except FileNotFoundError as exc:
                raise UsageError(str(exc)) from None
        return self._reader

    def _rows(self) -> Any:
        if self._frame is None:
            self._frame = self.reader().to_pandas(["hash", "nodeid", "path"])
        return self._frame

    def _nodeid(self, word: str) -> list[Path]:
        frame = self._rows()
        found: list[Path] = []
        for spelling in self._nodeid_spellings(word):
            label = "[" in spelling.partition("::")[2]
            nodeids = frame["nodeid"].astype(str)
            hits = nodeids == spelling
            if not label:  # an experiment's node id: all its runs
                hits = hits | nodeids.str.startswith(spelling + "[", na=False)
            found += [Path(p) for p in frame.loc[hits, "path"]]
        return sorted(dict.fromkeys(found))

    def _nodeid_spellings(self, word: str) -> list[str]:
        """The node id as given, and with its path made relative to the rootdir when it was
        relative to the current folder (as ``xprun`` reads paths)."""
        spellings = [word]
        path, sep, rest = word.partition("::")
        here = (self.cwd / path).resolve()
        if os.path.exists(here):
            from .collect import relpath
            from .settings import load_settings

            rootdir = load_settings([], self.cwd).rootdir
            spellings.append(relpath(here, rootdir) + sep + rest)
        return list(dict.fromkeys(spellings))

    def _query(self, word: str) -> list[Path]:
        from .reader import QueryError

        try:
            runs = self.reader().runs().filter(word)
            frame = runs.to_pandas(["path"])
        except QueryError as exc:
            if (self.cwd / word).is_dir():  # `xprun rm xprun_logs`: the log directory meant
                raise UsageError(
                    f"{word!r} is a folder, not runs: to name the log directory, give "
                    f"--log-dir {word}, then the runs (e.g. --log-dir {word} "
                    '"status == failed")'
                ) from None
            raise UsageError(
                f"{word!r} is not a hash (4+ hex characters), a node id (path::xp_name[...]) "
                f"or a query the Reader understands: {exc}"
            ) from None
        return sorted(Path(p) for p in frame["path"])


def _name(path: Path) -> str:
    """How a run is listed in messages: its node id with its hash, else its path."""
    try:
        record = store.read_json(path / store.RUN_JSON)
    except (OSError, ValueError):
        return str(path)
    nodeid = record.get("nodeid") if isinstance(record, dict) else None
    return f"{path.name[:12]}  {nodeid}" if isinstance(nodeid, str) else str(path)


def resolve(log_dir: Path, words: Iterable[str]) -> list[Path]:
    """The run directories ``words`` name under ``log_dir`` (see the module docstring)."""
    return RunResolver(log_dir).resolve_all(words)


def resolve_one(log_dir: Path, word: str) -> Path:
    """The one run directory ``word`` names under ``log_dir``."""
    return RunResolver(log_dir).resolve_one(word)
