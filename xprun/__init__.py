"""xprun: pytest for experiments.

Write ``xp_*`` functions, declare their config and sweep with ``@xprun.config`` and
``@xprun.grid``, request fixtures by argument name, and run ``xprun``.
"""

from ._version import __version__

# ``xprun.config`` is the decorator, not the module of the same name: the module is imported
# first, so that binding the decorator below is the last word (``from xprun.config import
# Config`` still finds the module, through ``sys.modules``).
from .config import main  # isort: skip
from .declare import config, grid, resources, zip  # isort: skip
from .errors import ExitCode, UsageError
from .fixtures import fixture
from .hookimpl import hookimpl
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
