"""xprun: pytest for experiments.

Write ``xp_*`` functions, declare their config and sweep with ``@xprun.config`` and
``@xprun.grid``, request fixtures by argument name, and run ``xprun``.

The public API is the names of ``__all__``: the decorators (``config``, ``grid``, ``zip``,
``resources``, ``fixture``, ``hookimpl``), the marks (``mark``, ``param``), ``main``, and the
types a user annotates with or receives (``Logger``, ``RunInfo``, ``FixtureRequest``,
``Reader``, ``Runs``, ``RunRecord``, ``Config``, ``Session``, ``RunSpec``, ``RunReport``,
``ExitCode``, ``Status``, ``UsageError``, ``QueryError``).  Importing ``xprun`` imports no
third-party package: each name is imported when it is first used (the Reader pulls in pandas,
the plugin manager pluggy), so an experiment module, ``xprun --version`` and ``xprun --help``
stay light.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .config import Config, main
    from .declare import config, grid, resources, search, zip
    from .errors import ExitCode, UsageError
    from .fixtures import FixtureRequest, fixture
    from .hookimpl import hookimpl
    from .logger import Logger
    from .marks import mark, param
    from .reader import QueryError, Reader, RunRecord, Runs
    from .reports import RunReport
    from .runspec import RunInfo, RunSpec
    from .searchspace import intrange, loguniform, uniform
    from .session import Session
    from .states import Status

# Public name → the module that defines it, imported on first use.
_LAZY = {
    "Config": "xprun.config",
    "ExitCode": "xprun.errors",
    "FixtureRequest": "xprun.fixtures",
    "Logger": "xprun.logger",
    "QueryError": "xprun.reader",
    "Reader": "xprun.reader",
    "RunInfo": "xprun.runspec",
    "RunRecord": "xprun.reader",
    "RunReport": "xprun.reports",
    "RunSpec": "xprun.runspec",
    "Runs": "xprun.reader",
    "Session": "xprun.session",
    "Status": "xprun.states",
    "UsageError": "xprun.errors",
    "config": "xprun.declare",
    "fixture": "xprun.fixtures",
    "grid": "xprun.declare",
    "hookimpl": "xprun.hookimpl",
    "main": "xprun.config",
    "mark": "xprun.marks",
    "param": "xprun.marks",
    "resources": "xprun.declare",
    "search": "xprun.declare",
    "uniform": "xprun.searchspace",
    "loguniform": "xprun.searchspace",
    "intrange": "xprun.searchspace",
    "zip": "xprun.declare",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xprun' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Package(types.ModuleType):
    """The ``xprun`` module: a public name is never replaced by a submodule of the same name.

    Importing ``xprun.config`` (the plugin manager, ``Config``) or ``xprun.hookimpl`` binds
    the submodule on the package, which would hide the ``config`` decorator and the
    ``hookimpl`` marker; with the names imported lazily, that import may come after them.
    ``from xprun.config import Config`` still finds the module, through ``sys.modules``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in __all__:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "Config",
    "ExitCode",
    "FixtureRequest",
    "Logger",
    "QueryError",
    "Reader",
    "RunInfo",
    "RunRecord",
    "RunReport",
    "RunSpec",
    "Runs",
    "Session",
    "Status",
    "UsageError",
    "__version__",
    "config",
    "fixture",
    "grid",
    "hookimpl",
    "intrange",
    "loguniform",
    "main",
    "mark",
    "param",
    "resources",
    "search",
    "uniform",
    "zip",
]
