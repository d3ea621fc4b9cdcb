"""Time limits per run: ``--timeout SECONDS`` and ``@xprun.config(timeout=...)``.

A run past its time is stopped where it is (as pytest-timeout's ``signal`` method): a timer
(``signal.setitimer``) started with the run's fixture setup raises :class:`RunTimeout` in the
main thread when it expires.  The run protocol treats it as an interrupt of that run only:
the loggers' ``on_interrupt`` callbacks save their checkpoints, the fixtures are torn down,
the run is recorded ``timeout``, and the session goes on with the next run.  The timer runs in
the process that executes the run, so the same code serves the inline scheduler, the local
pool's workers and cluster jobs.

The limit covers fixture setup and the experiment's call; teardown and recording are not
timed (a checkpoint being saved is not cut short).  ``@xprun.config(timeout=...)`` overrides
the command line for its experiment (``0`` turns the limit off), as pytest-timeout's mark
overrides its option.  The command line's value reaches workers and cluster jobs through the
project settings recorded in their job spec (``[tool.xprun.timeout] timeout``, which a project
may also set as its default).

Only the main thread can receive the signal: a run executed on another thread (a plugin's
scheduler) is not timed, with a warning.  The timer replaces any ``SIGALRM`` handler and
interval timer for the duration of the run, and puts the handler back after it.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

from .errors import raising_elsewhere

if TYPE_CHECKING:
    from .config import Config
    from .runcontext import RunContext
    from .runspec import RunSpec

#: The settings table that holds the project's default (and carries the option to workers).
SETTINGS_TABLE = "timeout"


class RunTimeout(BaseException):
    """The run went past its time limit.

    A ``BaseException``, as ``KeyboardInterrupt``: an experiment's ``except Exception`` does
    not swallow it.  It ends the run, never the session.
    """


def seconds(text: Any) -> float:
    """A time limit: a finite number of seconds, 0 or more (0: no limit)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds, got {text!r}; 0 means no limit"
        ) from None
    if isinstance(text, bool) or not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds, 0 or more, got {text!r}; 0 means no limit"
        )
    return value


def xprun_addoption(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    table = settings.get(SETTINGS_TABLE)
    default = table.get("timeout") if isinstance(table, dict) else None
    group = parser.add_argument_group("time limit")
    group.add_argument(
        "--timeout",
        type=seconds,
        default=default,
        metavar="SECONDS",
        help="stop a run that takes longer than SECONDS (its setup and call) and record it "
        "'timeout', its checkpoints saved; the session goes on. "
        "@xprun.config(timeout=...) overrides it for its experiment; 0: no limit "
        "(default: [tool.xprun.timeout] timeout, else none)",
    )


class _Limit:
    """The session's time limit and the timer of the run being executed."""

    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self.previous: Any = None  # the SIGALRM handler the timer replaced
        self.armed = False

    def start(self, run: RunSpec) -> None:
        declared = getattr(run.experiment.declaration, "timeout", None)
        limit, source = (
            (declared, "@xprun.config(timeout=...)")
            if declared is not None
            else (self.limit, "--timeout")
        )
        if not limit or self.armed:
            return
        if threading.current_thread() is not threading.main_thread():
            sys.stderr.write(
                f"xprun: warning: {run.nodeid} is not timed: its run executes outside the "
                "main thread, where the time limit's signal cannot be received\n"
            )
            return

        def expired(signum: int, frame: FrameType | None) -> None:
            self.cancel()
            raising_elsewhere()  # a Ctrl-C now waits for the record of the timeout
            raise RunTimeout(f"the run took longer than its time limit of {limit:g} s ({source})")

        self.previous = signal.signal(signal.SIGALRM, expired)
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, limit)

    def cancel(self) -> None:
        if not self.armed:
            return
        self.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous)
        self.previous = None


_limits: list[_Limit] = []  # the configured session's (one session configures at a time)


def xprun_configure(config: Config) -> None:
    limit = config.option.timeout
    if limit is not None and not isinstance(limit, float):  # from the settings, unchecked
        from .errors import UsageError

        try:
            limit = seconds(limit)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"[tool.xprun.{SETTINGS_TABLE}] timeout: {exc}") from None
    if limit is not None:
        # Job specs record the settings: workers and cluster jobs get the same limit.
        table = config.settings.values.get(SETTINGS_TABLE)
        table = dict(table) if isinstance(table, dict) else {}
        config.settings.values[SETTINGS_TABLE] = {**table, "timeout": limit}
    _limits[:] = [_Limit(limit)]


def xprun_unconfigure(config: Config) -> None:
    for limit in _limits:
        limit.cancel()
    _limits.clear()


def xprun_run_setup(run: RunSpec, context: RunContext) -> None:
    """The timer starts with the run's fixture setup (the built-in setup is ``trylast``)."""
    for limit in _limits:
        limit.start(run)


def xprun_run_returned(run: RunSpec, context: RunContext) -> None:
    """The timer stops as soon as the experiment has returned: its result is kept."""
    for limit in _limits:
        limit.cancel()


def xprun_run_teardown(run: RunSpec, context: RunContext) -> None:
    """Teardown is never timed (nor is anything after a failed setup or call)."""
    for limit in _limits:
        limit.cancel()
