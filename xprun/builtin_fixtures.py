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

from collections.abc import Iterator
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
    from omegaconf import OmegaConf

    return OmegaConf.create(_run(request).config, flags={"readonly": True})


@fixture(name="seed")
def seed_fixture(request: FixtureRequest) -> int:
    return int(_run(request).seed)


@fixture(name="run_dir")
def run_dir_fixture(request: FixtureRequest) -> Path:
    return Path(_run(request).run_dir)


@fixture(name="run")
def run_fixture(request: FixtureRequest) -> RunInfo:
    return RunInfo.of(_run(request))


@fixture(name="logger")
def logger_fixture(request: FixtureRequest) -> Iterator[Logger]:
    run = _run(request)
    logger = Logger(run.run_dir, attempt=run.attempt)
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
