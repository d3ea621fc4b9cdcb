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

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .fixtures import FixtureRequest, fixture
from .hookimpl import hookimpl
from .logger import Logger
from .readonlyconfig import readonly_config
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
