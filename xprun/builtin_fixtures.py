"""The built-in fixtures, defined with the same ``@fixture`` as users' ones (overridable).

``config`` (the resolved, read-only ``DictConfig``), ``seed``, ``run_dir``, ``run`` (the run's
identity) and ``logger``.

This module is also the plugin through which loggers act when their run returns (metrics
flushed before the outcome is saved) or is interrupted (``on_interrupt`` checkpoints): the
run protocol only calls ``xprun_run_returned`` and ``xprun_run_interrupted``, and names no
fixture.  Loggers are found by type among the run's fixture values, so a project may rename
or wrap the ``logger`` fixture.
"""

from __future__ import annotations

import io
import pickle
import sys
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .fixtures import FixtureRequest, fixture
from .hookimpl import hookimpl
from .logger import Logger
from .runspec import RunInfo

if TYPE_CHECKING:
    from .runspec import RunSpec


def _run(request: FixtureRequest) -> Any:
    if request.run is None:
        raise RuntimeError("this fixture needs a run")
    return request.run


@fixture(name="config")
def config_fixture(request: FixtureRequest) -> Any:
    """The run's resolved config, a read-only OmegaConf ``DictConfig`` (``config.lr``).

    The same values as the run's ``config.yaml``: base config, grid point and overrides,
    interpolations resolved; what the run's hash covers (but for excluded keys).
    """
    return readonly_config(_run(request).config)


# -- the read-only DictConfig, fast ----------------------------------------------------------
#
# ``OmegaConf.create`` validates and wraps every value into a node: ~0.3 ms for 11 keys, a
# quarter of a trivial run.  The runs of a sweep share their config's shape (its keys and
# containers) and differ in leaf values, and in an untyped config every plain leaf becomes the
# same node type (``AnyNode``) holding the value as it is.  So the DictConfig is built once per
# shape by ``OmegaConf.create`` itself, with placeholder leaves, and pickled (OmegaConf supports
# pickling) with the placeholders left out as persistent ids; each run unpickles that template
# with its own leaves put back.  Anything outside plain dicts, lists and scalars with string
# keys takes ``OmegaConf.create`` as before.

_LEAF = "leaf"  # a plain scalar in a shape
_LEAF_TYPES = frozenset((str, int, float, bool, type(None)))
_MAX_TEMPLATES = 64
_templates: dict[Hashable, bytes | None] = {}  # shape -> pickled template (None: not usable)


def _shape(value: Any, leaves: list[Any]) -> Hashable | None:
    """The keys and containers of ``value`` (its scalars appended to ``leaves`` in order), or
    None when it holds anything the fast path does not cover."""
    kind = type(value)
    if kind in _LEAF_TYPES:
        leaves.append(value)
        return _LEAF
    if kind is dict:
        items = []
        for key, item in value.items():
            if type(key) is not str:
                return None
            shape = _shape(item, leaves)
            if shape is None:
                return None
            items.append((key, shape))
        return (dict, tuple(items))
    if kind is list:
        shapes = []
        for item in value:
            shape = _shape(item, leaves)
            if shape is None:
                return None
            shapes.append(shape)
        return (list, tuple(shapes))
    return None


class _LeafPickler(pickle.Pickler):
    """Pickles a template, each placeholder leaf replaced by its index."""

    def __init__(self, file: io.BytesIO, placeholders: list[str]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._placeholders = placeholders
        self._index = {id(p): i for i, p in enumerate(placeholders)}
        self.seen: list[int] = []

    def persistent_id(self, obj: Any) -> int | None:
        if type(obj) is str:
            index = self._index.get(id(obj))
            if index is not None and obj is self._placeholders[index]:
                self.seen.append(index)
                return index
        return None


class _LeafUnpickler(pickle.Unpickler):
    """Unpickles a template with a run's leaves in place of the placeholders."""

    def __init__(self, data: bytes, leaves: list[Any]) -> None:
        super().__init__(io.BytesIO(data))
        self._leaves = leaves

    def persistent_load(self, pid: Any) -> Any:
        return self._leaves[pid]


def _template(shape: Hashable) -> bytes | None:
    """The pickled read-only DictConfig of ``shape``, built by ``OmegaConf.create`` with
    placeholder leaves; None if a placeholder is not found exactly once in its pickle."""
    from omegaconf import OmegaConf

    placeholders: list[str] = []

    def build(part: Any) -> Any:
        if part == _LEAF:
            # A new string object per leaf: found again by identity, never by value.
            placeholders.append("".join(("\0xprun-leaf-", str(len(placeholders)))))
            return placeholders[-1]
        kind, items = part
        if kind is dict:
            return {key: build(item) for key, item in items}
        return [build(item) for item in items]

    template = OmegaConf.create(build(shape), flags={"readonly": True})
    buffer = io.BytesIO()
    pickler = _LeafPickler(buffer, placeholders)
    pickler.dump(template)
    if sorted(pickler.seen) != list(range(len(placeholders))):
        return None
    return buffer.getvalue()


def readonly_config(config: dict[str, Any]) -> Any:
    """``OmegaConf.create(config, flags={"readonly": True})``, built from a cached template of
    the config's shape when it is plain data (the same DictConfig, several times faster)."""
    leaves: list[Any] = []
    shape = _shape(config, leaves)
    if shape is not None and type(config) is dict:
        try:
            data = _templates[shape]
        except KeyError:
            if len(_templates) >= _MAX_TEMPLATES:
                _templates.clear()
            data = _templates[shape] = _template(shape)
        if data is not None:
            return _LeafUnpickler(data, leaves).load()
    from omegaconf import OmegaConf

    return OmegaConf.create(config, flags={"readonly": True})


@fixture(name="seed")
def seed_fixture(request: FixtureRequest) -> int:
    """The run's seed, its config's ``seed`` (0 unless set): an integer in the run's hash.

    Python's ``random`` and NumPy's global generator (torch's too, when imported) are seeded
    with it before the run's fixtures are set up; NumPy's also when the run imports it later.
    """
    return int(_run(request).seed)


# -- seeding NumPy without importing it ----------------------------------------------------
#
# Importing NumPy and its ``random`` package costs a process about 0.2 CPU-seconds, which a
# run that never uses NumPy should not pay (a pool worker paid it once per worker, a sweep of
# short runs felt it).  NumPy's global generator (``numpy.random.seed``, the legacy
# ``RandomState`` behind ``numpy.random.random()``...) lives in ``numpy.random``, which
# ``import numpy`` does not import: it is loaded on first use.  So when ``numpy.random`` is
# loaded already, it is seeded at once; otherwise a finder on ``sys.meta_path`` seeds it with
# the current run's seed the moment it is loaded, before any code can draw from it: the
# generator's state is then exactly what seeding before the run would have left.


class _SeedNumpyOnImport:
    """Seeds ``numpy.random`` with :attr:`seed` as soon as it is loaded (a meta-path finder
    that hands the import to the finders after it and wraps their loader)."""

    def __init__(self) -> None:
        self.seed: int | None = None

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "numpy.random" or self.seed is None:
            return None
        finders = sys.meta_path[sys.meta_path.index(self) + 1 :] if self in sys.meta_path else []
        for finder in finders:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _SeedingLoader(spec.loader, self)
                return spec
        return None


class _SeedingLoader:
    """``loader``, then ``numpy.random.seed``; puts ``loader`` back as the module's own."""

    def __init__(self, loader: Any, finder: _SeedNumpyOnImport) -> None:
        self.loader = loader
        self.finder = finder

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        if self.finder.seed is not None:
            module.seed(self.finder.seed % 2**32)


_numpy_finder = _SeedNumpyOnImport()


def seed_numpy(seed: int) -> None:
    """Seed NumPy's global generator with ``seed`` (modulo 2**32) now if ``numpy.random`` is
    loaded, else as soon as this process loads it: NumPy is never imported for it."""
    module = sys.modules.get("numpy.random")
    if module is not None:
        _numpy_finder.seed = None
        module.seed(seed % 2**32)
        return
    _numpy_finder.seed = seed
    if sys.meta_path[:1] != [_numpy_finder]:  # first, ahead of import hooks added since
        if _numpy_finder in sys.meta_path:
            sys.meta_path.remove(_numpy_finder)
        sys.meta_path.insert(0, _numpy_finder)


@fixture(name="run_dir")
def run_dir_fixture(request: FixtureRequest) -> Path:
    """The run's directory (a ``pathlib.Path``), where its records and files go."""
    return Path(_run(request).run_dir)


@fixture(name="run")
def run_fixture(request: FixtureRequest) -> RunInfo:
    """The run's identity, an ``xprun.RunInfo``.

    ``hash``, ``digest``, ``experiment``, ``nodeid``, ``attempt``, ``run_dir`` and ``params``
    (the ids of its fixture params).
    """
    return RunInfo.of(_run(request))


@fixture(name="trial")
def trial_fixture(request: FixtureRequest) -> Any:
    """A searched experiment's trial (``xprun.search.Trial``): ``params``, ``number``,
    ``should_prune(step, value)``; only for searched experiments (see docs/search.md)."""
    from .search import trial_fixture as make

    return make(request.run)


@fixture(name="logger")
def logger_fixture(request: FixtureRequest) -> Iterator[Logger]:
    """The run's ``xprun.Logger``: metrics, artifacts and checkpoints in its directory.

    ``log_metrics(values, step=None, name="metrics")``, ``log_artifact(name, obj)``,
    ``save_checkpoint(state, keep=None)``, ``load_checkpoint()`` (the last one of any
    attempt, None on a fresh run), ``on_interrupt(fn)``; flushed when the run returns.
    """
    run = _run(request)
    logger = Logger(run.run_dir, attempt=run.attempt, new_run_dir=request.new_run_dir)
    try:
        yield logger
    finally:
        logger.close()


def _run_loggers(run: RunSpec) -> Iterator[Logger]:
    """The ``Logger`` objects among this run's fixture values, whatever their fixture's name."""
    request = run.request
    if request is None:
        return
    for name in run.experiment.fixtures:
        value = request.cached_value(name)
        if isinstance(value, Logger):
            yield value


@hookimpl
def xprun_run_returned(run: RunSpec) -> None:
    """Metrics logged before ``return`` are on disk before the outcome says it returned."""
    for logger in _run_loggers(run):
        logger.flush()


@hookimpl
def xprun_run_interrupted(run: RunSpec) -> None:
    """The loggers' ``on_interrupt`` callbacks: checkpoints saved before teardown."""
    for logger in _run_loggers(run):
        logger.interrupted()
