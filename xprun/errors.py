"""Exit codes and the exceptions that map onto them (as pytest's ``ExitCode``)."""

from __future__ import annotations

import enum
import errno
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

# The C functions behind ``signal``'s (the module it wraps), without its enum conversion of
# every number and handler both ways: most of what holding signals cost a run.
_raw_signal: Any = getattr(signal, "_signal", signal)


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


# -- signals held while a record is written ----------------------------------------------------

#: The signals that end a run; held (blocked) while its record is written, and in every
#: thread xprun starts, so that only the main thread ever receives them.
HELD_SIGNALS = frozenset(
    getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGUSR2") if hasattr(signal, n)
)


#: A thread's signal mask as ``signal.pthread_sigmask`` returns it (typeshed: ints or
#: ``Signals``; at run time the members it can name are ``Signals``).
SignalMask = set[int | signal.Signals]


def block_signals() -> SignalMask:
    """Block ``HELD_SIGNALS`` in the calling thread; return the previous mask to restore.

    Threads inherit the mask of the thread that starts them, so a thread started inside
    ``block_signals()``/``restore_signals()`` never receives them: the kernel delivers them to
    the main thread instead (or keeps them pending while it blocks them too).
    """
    return _raw_signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)


def restore_signals(previous: SignalMask | None) -> None:
    if previous is not None:
        _raw_signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class SignalHold:
    """Holds ``HELD_SIGNALS`` in the main thread while a run's record is being written.

    A second Ctrl-C, or the scheduler's SIGTERM after its SIGUSR2, arriving while a run is
    recorded must not cut the recording short: it is kept until ``release()``, and delivered
    (raised) then.  Blocking the signals is not enough on its own: threads xprun does not
    start (OpenBLAS, torch, a user's) accept them, and Python then runs the handler in the
    main thread anyway.  So the handlers themselves are swapped for one that only notes the
    signal, and the signals are blocked too.  ``hold()`` and ``release()`` may be called any
    number of times; only the main thread holds anything (signals are only handled there).
    """

    def __init__(self) -> None:
        self._mask: SignalMask | None = None
        self._handlers: dict[int, Any] = {}
        self._pending: list[int] = []
        self._held = False

    def hold(self) -> None:
        if self._held or threading.current_thread() is not threading.main_thread():
            return
        self._pending = []
        self._handlers = {
            sig: handler
            for sig in HELD_SIGNALS
            if (handler := _raw_signal.getsignal(sig)) is not None  # None: not Python's to swap
        }
        for sig in self._handlers:
            _raw_signal.signal(sig, self._note)
        self._mask = block_signals()
        self._held = True

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self._pending.append(signum)

    def release(self) -> None:
        """Stop holding; the first signal that arrived meanwhile is delivered now (its
        handler raises ``KeyboardInterrupt``/``Terminated``, or its default action runs)."""
        if not self._held:
            return
        self._held = False
        restore_signals(self._mask)  # signals still pending in the kernel reach _note now
        for sig, handler in self._handlers.items():
            _raw_signal.signal(sig, handler)
        pending, self._pending = self._pending, []
        for sig in pending:
            handler = self._handlers[sig]
            if callable(handler):
                handler(sig, None)  # raises, as it would have when the signal arrived
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), sig)
                return


# -- a full disk ---------------------------------------------------------------------------------

_DISK_FULL = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the user's quota on it) is full."""
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL


def safe_str(exc: BaseException) -> str:
    """``str(exc)``, even when the exception's own ``__str__`` raises."""
    try:
        return str(exc)
    except (KeyboardInterrupt, Terminated):
        raise
    except BaseException as broken:  # a broken __str__ may raise anything, even SystemExit
        return f"<{type(exc).__qualname__}.__str__ raised {type(broken).__qualname__}>"
