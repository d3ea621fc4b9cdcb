"""Exit codes and the exceptions that map onto them (as pytest's ``ExitCode``)."""

from __future__ import annotations

import enum
import signal
from collections.abc import Callable
from types import FrameType


class ExitCode(enum.IntEnum):
    """What ``xprun`` returns to the shell; the same numbers as pytest."""

    OK = 0
    RUNS_FAILED = 1
    INTERRUPTED = 2
    INTERNAL_ERROR = 3
    USAGE_ERROR = 4
    NO_RUNS_COLLECTED = 5


class UsageError(Exception):
    """Bad input from the user (command line, config, override): exit code 4, nothing run."""


class CollectError(Exception):
    """An experiment or fixture is declared wrongly; reported against its file."""


class Terminated(BaseException):
    """Raised in the main thread when SIGTERM arrives, so a run ends as ``interrupted``.

    A ``BaseException`` like ``KeyboardInterrupt``, so ``except Exception`` in user code does
    not swallow it.
    """


class Preempted(Terminated):
    """SIGUSR2: the scheduler warns of a time limit or a preemption; the job requeues."""


def raising(exc_type: type[BaseException]) -> Callable[[int, FrameType | None], None]:
    """A signal handler that raises ``exc_type`` in the main thread (where the run is)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise exc_type(f"received signal {signal.Signals(signum).name}")

    return handler
