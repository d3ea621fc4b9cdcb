"""Discovery: experiment files and functions, conftest.py files, node ids.

pytest's conventions: files ``xp_*.py`` and functions ``xp_*`` (both configurable in
``[tool.xprun]``), found recursively under the given paths, skipping hidden folders, virtual
environments, ``norecursedirs``, the log directory and the snapshot directory.  The
``conftest.py`` files from the rootdir down to an experiment's folder are imported before the
experiment module and registered as plugins, so they hold fixtures and hook implementations.

A file that fails to import is a collection error reported with its traceback; the other
files are still collected and run.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .declare import ExperimentDeclaration, declaration
from .errors import CollectError
from .fixtures import FixtureDef, argnames
from .hookimpl import hookimpl

if TYPE_CHECKING:
    from .main import Config, Session


@dataclass(eq=False)
class Experiment:
    """One ``xp_*`` function as collected."""

    nodeid: str  # "sub/xp_a.py::xp_train"
    name: str  # the log folder name: "xp_a.xp_train" unless @config(experiment=...)
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
    except BaseException:
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
    here = os.path.dirname(__file__)
    start = next((i for i, f in enumerate(frames) if f.filename == str(path)), 0)
    shown = [f for f in frames[start:] if not (f.filename.startswith((here, "<frozen")))]
    lines = traceback.format_list(shown) if shown else []
    lines += traceback.format_exception_only(etype, value)
    return f"error importing {path}:\n" + "Traceback (most recent call last):\n" + "".join(lines)


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
            if not (inspect.isfunction(obj) and any(fnmatchcase(attr, p) for p in patterns)):
                continue
            if obj.__module__ != module.__name__:
                continue  # imported from elsewhere: collected where it is defined
            nodeid = f"{rel}::{attr}"
            decl = declaration(obj)
            names = argnames(obj)
            try:
                closure = session.fixtures.closure(names, "/" + rel, f"{nodeid}")
            except CollectError as exc:
                session.collect_errors.append((nodeid, str(exc)))
                continue
            experiments.append(
                Experiment(
                    nodeid=nodeid,
                    name=decl.name or f"{self.path.stem}.{attr}",
                    func=obj,
                    path=self.path,
                    declaration=decl,
                    argnames=names,
                    fixtures=closure,
                )
            )
        return experiments


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
