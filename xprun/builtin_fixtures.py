"""The built-in fixtures, defined with the same ``@fixture`` as users' ones (overridable).

``config`` (the resolved, read-only ``DictConfig``), ``seed``, ``run_dir``, ``run`` (the run's
identity) and ``logger``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .fixtures import FixtureRequest, fixture
from .logger import Logger
from .runspec import RunInfo


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
