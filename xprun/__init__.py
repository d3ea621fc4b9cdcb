"""xprun: pytest for experiments.

Write ``xp_*`` functions, declare their config and sweep with ``@xprun.config`` and
``@xprun.grid``, request fixtures by argument name, and run ``xprun``.
"""

from ._version import __version__
from .declare import config, grid, resources, zip
from .errors import ExitCode, UsageError
from .fixtures import fixture
from .hookimpl import hookimpl
from .main import main
from .runspec import RunInfo


def __getattr__(name: str) -> object:
    # The reader pulls in pandas and pyarrow: imported only when asked for.
    if name in ("Reader", "QueryError"):
        from . import reader

        return getattr(reader, name)
    raise AttributeError(f"module 'xprun' has no attribute {name!r}")


__all__ = [
    "ExitCode",
    "QueryError",
    "Reader",
    "RunInfo",
    "UsageError",
    "__version__",
    "config",
    "fixture",
    "grid",
    "hookimpl",
    "main",
    "resources",
    "zip",
]
