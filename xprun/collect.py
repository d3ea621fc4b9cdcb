"""Discovery: experiment files and functions, conftest.py files, node ids.

pytest's conventions: files ``xp_*.py`` and functions ``xp_*`` (both configurable in
``[tool.xprun]``), found recursively under the given paths, skipping hidden folders, virtual
environments, ``norecursedirs``, the log directory and the snapshot directory.  The
``conftest.py`` files from the rootdir down to an experiment's folder are imported before the
experiment module and registered as plugins, so they hold fixtures and hook implementations.

A file that fails to import is a collection error reported with its traceback; the other
files are still collected and run.  So is an experiment xprun cannot call as a plain function
with its fixtures (``async def``, a generator, positional-only parameters).

Each experiment has its own folder in the log directory: its explicit ``experiment=`` name,
else its node id spelled with dots (``sub/xp_a.py::xp_train`` → ``sub.xp_a.xp_train``), so
the folder does not depend on which paths were given.  An experiment whose folder already
holds another experiment's runs is refused.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from .declare import ATTR, ExperimentDeclaration, declaration, experiment_name_problem
from .errors import CollectError, UsageError
from .fixtures import FixtureDef, argnames, not_injectable
from .hookimpl import hookimpl

if TYPE_CHECKING:
    from .config import Config
    from .runspec import RunSpec
    from .session import Session


@dataclass(eq=False)
class Experiment:
    """One ``xp_*`` function as collected."""

    nodeid: str  # "sub/xp_a.py::xp_train"
    name: str  # the log folder name: "sub.xp_a.xp_train" unless @config(experiment=...)
    func: Callable[..., Any]
    path: Path
    declaration: ExperimentDeclaration
    argnames: tuple[str, ...]
    fixtures: dict[str, FixtureDef]

    @property
    def identity(self) -> str:
        """What the run hash is computed over: an explicit name, else the node id."""
        return self.declaration.name or self.nodeid


def relpath(path: Path, rootdir: Path) -> str:
    """``path`` relative to rootdir with '/' separators (absolute when outside rootdir)."""
    try:
        return path.relative_to(rootdir).as_posix()
    except ValueError:
        return path.as_posix()


def import_path(path: Path, rootdir: Path) -> ModuleType:
    """Import a file as a fresh module named after its place under rootdir.

    The file's folder goes on ``sys.path`` (as pytest's default ``prepend`` mode) so the
    experiment can import its sibling modules.
    """
    rel = Path(relpath(path, rootdir)).with_suffix("")
    name = ".".join(p for p in rel.parts if p not in ("/", "")) or path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:  # whatever the import raised, even sys.exit(): undone, re-raised
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
        raise
    return module


def format_import_error(path: Path) -> str:
    """The traceback being handled, from the user's file on, without xprun's own frames."""
    etype, value, tb = sys.exc_info()
    frames = traceback.extract_tb(tb)
    own = (os.path.dirname(__file__), os.path.dirname(pluggy.__file__), "<frozen")
    start = next((i for i, f in enumerate(frames) if f.filename == str(path)), 0)
    shown = [f for f in frames[start:] if not f.filename.startswith(own)]
    lines = traceback.format_list(shown) if shown else []
    lines += traceback.format_exception_only(etype, value)
    if etype is not None and not issubclass(etype, Exception):
        lines.append(
            f"(importing {path.name} raised {etype.__name__}: code that exits or stops the "
            'program belongs under `if __name__ == "__main__":`)\n'
        )
    return f"error importing {path}:\n" + "Traceback (most recent call last):\n" + "".join(lines)


def default_name(rel: str, function: str) -> str:
    """An experiment's folder name from its node id: ``sub/xp_a.py`` + ``xp_train`` →
    ``sub.xp_a.xp_train`` (leading dots dropped, so no folder is hidden)."""
    stem = rel[: -len(".py")] if rel.endswith(".py") else rel
    parts = [part.lstrip(".") for part in stem.split("/")]
    return ".".join([*(part for part in parts if part), function])


def _folder_owner(folder: Path) -> str | None:
    """The ``experiment_id`` recorded by the first run found in a log folder, or None."""
    try:
        entries = os.scandir(folder)
    except OSError:
        return None
    with entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                record = json.loads(Path(entry.path, "run.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # not a run, or one still being created
            owner = record.get("experiment_id") if isinstance(record, dict) else None
            if isinstance(owner, str):
                return owner
    return None


def adopt_legacy_folder(name: str, nodeid: str, log_dir: Path) -> str:
    """Keep a nested experiment in the folder that xprun 0.1 gave it.

    xprun 0.1 named every folder ``<file stem>.<function>``, whatever the file's folder;
    now a nested file's folder includes its path (``sub.xp_a.xp_train``).  So that an
    upgrade does not silently rerun a finished sweep, an experiment whose new folder does
    not exist yet keeps its old one when the runs there are provably its own (their
    ``experiment_id`` is this node id, which the run hashes cover).
    """
    rel, _, function = nodeid.partition("::")
    legacy = f"{Path(rel).stem}.{function}"
    if legacy == name or (log_dir / name).exists():
        return name
    return legacy if _folder_owner(log_dir / legacy) == nodeid else name


def _not_runnable(func: Callable[..., Any]) -> str | None:
    """Why an experiment function cannot be run, or None."""
    if inspect.isgeneratorfunction(func):
        return (
            "is a generator function (it yields): an experiment returns its outcome; "
            "use return (a yield in a fixture is its teardown)"
        )
    return not_injectable(func)


class ModuleCollector:
    """Collects the experiments of one module (the default ``xprun_collect_file``)."""

    def __init__(self, session: Session, path: Path) -> None:
        self.session = session
        self.path = path

    def collect(self) -> list[Experiment]:
        session = self.session
        rootdir = session.config.rootdir
        module = import_path(self.path, rootdir)
        rel = relpath(self.path, rootdir)
        session.fixtures.parse_module(module, "/" + rel)
        patterns = session.config.settings.patterns("experiment_functions")
        experiments = []
        for attr, obj in list(vars(module).items()):
            if not inspect.isfunction(obj) or obj.__module__ != module.__name__:
                continue  # imported from elsewhere: collected where it is defined
            if not any(fnmatchcase(attr, p) for p in patterns):
                if ATTR in obj.__dict__:
                    _warn_not_collected(session, obj, rel, patterns)
                continue
            nodeid = f"{rel}::{attr}"
            decl = declaration(obj)
            names = argnames(obj)
            problem = _not_runnable(obj)
            if problem:
                code = obj.__code__
                where = f"{code.co_filename}:{code.co_firstlineno}"
                session.collect_errors.append((nodeid, f"{nodeid} ({where}) {problem}"))
                continue
            try:
                closure = session.fixtures.closure(names, "/" + rel, f"{nodeid}")
            except CollectError as exc:
                session.collect_errors.append((nodeid, str(exc)))
                continue
            name = decl.name or adopt_legacy_folder(
                default_name(rel, attr), nodeid, session.config.log_dir
            )
            problem = experiment_name_problem(name)
            if problem:  # an explicit name was checked when declared: this one is derived
                raise UsageError(
                    f"{nodeid}: its log folder name {name!r} {problem}; "
                    "name the experiment with @xprun.config(experiment='...')"
                )
            experiments.append(
                Experiment(
                    nodeid=nodeid,
                    name=name,
                    func=obj,
                    path=self.path,
                    declaration=decl,
                    argnames=names,
                    fixtures=closure,
                )
            )
        return experiments


def _warn_not_collected(
    session: Session, func: Callable[..., Any], rel: str, patterns: list[str]
) -> None:
    """A function decorated as an experiment whose name the ``experiment_functions``
    patterns leave out is not collected: say so (once per launch), or the user waits for
    runs that never come.  Through the terminal reporter's stream, so workers (which collect
    the same files again) and ``-p no:terminal`` stay quiet."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    code = func.__code__
    shown = " or ".join(repr(p) for p in patterns)
    example = patterns[0].replace("*", func.__name__, 1) if patterns else func.__name__
    sys.stderr.write(
        f"xprun: warning: {rel}:{code.co_firstlineno}: {func.__name__} is decorated as an "
        f"experiment but not collected: its name does not match {shown} "
        f"([tool.xprun] experiment_functions); rename it ({example}) or add a "
        "pattern that matches it\n"
    )


def is_virtualenv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file() or (path / "bin" / "activate").is_file()


@hookimpl(trylast=True)
def xprun_collect_file(file_path: Path, session: Session) -> list[Experiment] | None:
    if file_path.suffix != ".py":
        return None
    return ModuleCollector(session, file_path).collect()


@hookimpl
def xprun_ignore_collect(collection_path: Path, config: Config) -> bool | None:
    if collection_path.is_dir():
        name = collection_path.name
        if any(fnmatchcase(name, p) for p in config.settings.patterns("norecursedirs")):
            return True
        if is_virtualenv(collection_path):
            return True
        for special in (config.log_dir, config.snapshot_dir):
            if collection_path == special:
                return True
    return None


def check_log_folder(experiment: Experiment, log_dir: Path) -> None:
    """Refuse an experiment whose log folder holds another experiment's runs.

    Every ``run.json`` records the identity its run's hash covers (``experiment_id``), so the
    first record found tells whose folder it is.  Only reads: nothing is written before the
    runs are.
    """
    folder = log_dir / experiment.name
    owner = _folder_owner(folder)
    if owner is not None and owner != experiment.identity:
        raise UsageError(
            f"{experiment.nodeid} would share the log folder {folder} with experiment "
            f"{owner}; give one of them another name with @xprun.config(experiment='...')"
        )


# -- selecting runs by node id or hash --------------------------------------------------------

#: The shortest hash prefix that selects a run (git's shortest abbreviation).
HASH_PREFIX_MIN = 4


@dataclass(eq=False)
class Target:
    """One positional selector of the command line: a file or folder, an experiment, one run
    (``file.py::xp_name[label]``), or a run's hash (a prefix of it)."""

    text: str  # as given, for "not found"
    function: str = ""  # "" = every experiment of the file(s)
    label: str = ""  # "lr=0.1-optimizer=sgd", without brackets
    hash: str = ""  # a hash prefix
    found: bool = False  # matched an experiment (no label, no hash) or a run
    matches: list[str] | None = None  # for a hash: the node ids of the runs it matched

    @classmethod
    def of_arg(cls, arg: str) -> Target:
        """``path[::function[label]]``: what a path or node id selects."""
        selector = arg.partition("::")[2]
        function, bracket, label = selector.partition("[")
        if bracket and label.endswith("]"):
            label = label[:-1]
        return cls(arg, function, label, found=not selector)

    @property
    def some_runs(self) -> bool:
        """Whether only some runs of an experiment are meant (a label or a hash)."""
        return bool(self.label or self.hash)

    def wants(self, experiment: Experiment) -> bool:
        return not self.function or self.function == experiment.func.__name__


def find_run_dirs(log_dir: Path, prefix: str) -> list[tuple[str, str]]:
    """The run directories of the log directory whose hash starts with ``prefix``, each as
    (its ``experiment_id``, its ``nodeid``) from ``run.json`` (``runref.hash_matches``: one
    listing per experiment folder, one record read per match)."""
    from .runref import hash_matches

    return [
        (record["experiment_id"], str(record.get("nodeid") or path.name))
        for path, record in hash_matches(log_dir, prefix)
        if isinstance(record.get("experiment_id"), str)
    ]


def select_runs(runs: list[RunSpec], targets: list[Target]) -> list[RunSpec]:
    """The runs of one experiment that ``targets`` (labels, hashes) select, each target
    marked found when it selects one.

    A label selects the run labelled so in this launch; failing that, every run whose
    config holds each ``key=value`` of the label (so an id copied from ``run.json`` selects
    its run in a launch where other keys vary: ``seed=0`` fixed by the config is not in the
    label then).  A hash prefix selects the runs whose hash starts with it.
    """
    chosen: set[int] = set()
    for target in targets:
        if target.hash:
            hits = [i for i, run in enumerate(runs) if run.hash.startswith(target.hash)]
            target.matches = (target.matches or []) + [runs[i].nodeid for i in hits]
        else:
            exact = f"[{target.label}]"
            hits = [i for i, run in enumerate(runs) if run.label == exact]
            if not hits:
                hits = [i for i, run in enumerate(runs) if _labels(target.label, run)]
        target.found = target.found or bool(hits)
        chosen.update(hits)
    return [run for i, run in enumerate(runs) if i in chosen]


def _parts(run: RunSpec) -> set[str]:
    """What a label of ``run`` may be made of: ``key=value`` for every config entry (dotted
    paths, whole subtrees too), its fixture param ids and its hash prefix."""
    from .expand import _format_value  # the label's own spelling of a value

    parts = {run.hash[:8], *run.param_ids.values()}
    stack: list[tuple[str, Any]] = [("", run.config)]
    while stack:
        prefix, value = stack.pop()
        if prefix:
            parts.add(f"{prefix}={_format_value(value)}")
        if isinstance(value, dict):
            stack.extend((f"{prefix}.{k}" if prefix else str(k), v) for k, v in value.items())
    return parts


def _labels(label: str, run: RunSpec) -> bool:
    """Whether ``label`` describes ``run``: each of its ``-``-joined pieces is a piece of the
    run's own label (``_parts``) or names one of its config items as ``-k`` would
    (``lr=1e-3`` for 0.001)."""
    from .keyword import item_matcher

    parts, matches = _parts(run), item_matcher(run)
    return _covered(label, lambda piece: piece in parts or matches(piece))


def _covered(label: str, accepts: Callable[[str], bool]) -> bool:
    """Whether ``label`` is pieces ``accepts`` takes joined by ``-`` (values may hold ``-``
    too, so every split is tried: a label is short)."""
    starts, seen = [0], {0}
    while starts:
        start = starts.pop()
        for end in [i for i, c in enumerate(label) if c == "-" and i > start] + [len(label)]:
            if accepts(label[start:end]):
                if end == len(label):
                    return True
                if end + 1 not in seen:
                    seen.add(end + 1)
                    starts.append(end + 1)
    return False


def missing_parts(label: str, runs: list[RunSpec]) -> list[str]:
    """The ``key=value`` words of ``label`` that no run holds (for a "not found" hint)."""
    held: set[str] = set()
    for run in runs:
        held |= _parts(run)
    words: list[str] = []
    for piece in label.split("-"):  # a piece without "=" continues a value ("lr=1e-3")
        if words and "=" not in piece and piece not in held:
            words[-1] += "-" + piece
        else:
            words.append(piece)
    from .keyword import item_matcher

    matchers = [item_matcher(run) for run in runs]
    return [w for w in words if "=" in w and w not in held and not any(m(w) for m in matchers)]
