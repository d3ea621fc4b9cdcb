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


#: The modules whose code runs between the moment an interrupt is caught and the moment its
#: catcher holds the signals (the run protocol, the pool stopping its workers, the hold): a
#: second signal handled there waits for that hold (:meth:`SignalHold.arm`).
_CATCHERS = frozenset({"xprun.runner", "xprun.schedulers.pool", __name__})


class SignalHold:
    """Holds ``HELD_SIGNALS`` in the main thread while a run's record is being written.

    A second Ctrl-C, or the scheduler's SIGTERM after its SIGUSR2, arriving while a run is
    recorded must not cut the recording short: it is kept until ``release()``, and delivered
    (raised) then.  Blocking the signals is not enough on its own: threads xprun does not
    start (OpenBLAS, torch, a user's) accept them, and Python then runs the handler in the
    main thread anyway.  So the handlers themselves are swapped for one that only notes the
    signal, and the signals are blocked too.  ``hold()`` and ``release()`` may be called any
    number of times; only the main thread holds anything (signals are only handled there).

    Holding from the moment the code that catches an interrupt calls ``hold()`` leaves a
    window: a second signal handled between the catch and the hold raises out of that code,
    and the run is never recorded (a pool's worker that takes the terminal's Ctrl-C late gets
    the second one, sent by another worker's checkpoint hook, just then).  ``arm()`` closes
    it: until ``end()``, the Python handlers of ``HELD_SIGNALS`` are called through this
    object, and once one of them has raised, a further signal that arrives while xprun's own
    catching code runs (its frame is in :data:`_CATCHERS`) is noted, not raised, and
    delivered at ``release()``.  Anywhere else (the experiment's code, its ``finally``
    clauses, an experiment that caught the interrupt and goes on) it is raised at once, as
    without ``arm()``: the code that holds catches it as it would the first.
    """

    def __init__(self) -> None:
        self._mask: SignalMask | None = None
        self._armed: dict[int, Any] = {}  # the handlers arm() replaced, until end()
        self._swapped: dict[int, Any] = {}  # the handlers hold() replaced, until release()
        self._pending: list[int] = []
        self._held = False
        self._raising = False  # an interrupt raised through arm() is on its way to a hold
        self._main = threading.main_thread().ident
        self._handler = self._on_signal  # one bound method: compared by identity
        self._ended: dict[int, Any] = {}  # after end(): the handlers arm() stood in front of

    def arm(self) -> None:
        """Until :meth:`end`, the signals whose handler is Python's (``KeyboardInterrupt``'s,
        ``Terminated``'s) are handled through this object (see the class).

        The handler that routes them here (:func:`_dispatch`) is installed by the first
        ``arm()`` and stays between runs, routing to the handler it stands in front of when
        no hold is armed (:func:`disarm` takes it away at the session's end): a run then
        costs no ``sigaction`` for it."""
        if threading.get_ident() != self._main:
            return
        for sig in HELD_SIGNALS:
            handler = _raw_signal.getsignal(sig)
            if handler is _dispatch:
                self._armed[sig] = _behind.get(sig, _default(sig))
            elif callable(handler) and handler is not self._handler:
                if not _FORK_HOOK:
                    os.register_at_fork(after_in_child=_forget_armed)
                    _FORK_HOOK.append(True)
                self._armed[sig] = _behind[sig] = handler
                _raw_signal.signal(sig, _dispatch)
        if self._armed:
            _armed_holds.append(self)

    def hold(self) -> None:
        # Nothing but C functions and this module's until the signals are held: a signal
        # handled in another module's frame meanwhile would be raised (see the class).
        if self._held or threading.get_ident() != self._main:
            return
        self._held = True  # from here a signal that reaches this object's handler is noted
        self._mask = None
        for sig in HELD_SIGNALS:
            handler = _raw_signal.getsignal(sig)
            if handler is None or handler is self._handler:  # None: not Python's to swap
                continue
            if handler is _dispatch and sig in self._armed and _armed_holds[-1:] == [self]:
                continue  # routed to this object already
            self._swapped[sig] = handler
            _raw_signal.signal(sig, self._handler)
        self._mask = block_signals()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._held:
            self._pending.append(signum)
        elif signum in self._armed:
            if self._raising and frame is not None and frame.f_globals.get("__name__") in _CATCHERS:
                self._pending.append(signum)  # the interrupt raised is being caught: it waits
                return
            raising, self._raising = self._raising, True
            self._armed[signum](signum, frame)  # raises, as it would have without arm()
            self._raising = raising  # a handler that does not raise
        else:  # held no longer, its handler not put back yet (release() is at it)
            handler = self._swapped.get(signum) or self._ended.get(signum, _default(signum))
            self._put_back()
            if _raw_signal.getsignal(signum) is self._handler:  # not one hold() replaced
                _raw_signal.signal(signum, handler)
            self._deliver(signum, handler)

    def _put_back(self) -> None:
        """The handlers :meth:`hold` replaced, back (each forgotten once it is back)."""
        for sig in list(self._swapped):
            _raw_signal.signal(sig, self._swapped[sig])
            del self._swapped[sig]

    @staticmethod
    def _deliver(sig: int, handler: Any) -> bool:
        """Run ``handler`` as the signal's arrival would have; True if the default action
        was taken (nothing more to deliver)."""
        if callable(handler):
            handler(sig, None)  # raises, as it would have when the signal arrived
        elif handler == signal.SIG_DFL:
            os.kill(os.getpid(), sig)
            return True
        return False

    def release(self) -> None:
        """Stop holding; the first signal that arrived meanwhile is delivered now (its
        handler raises ``KeyboardInterrupt``/``Terminated``, or its default action runs)."""
        if not self._held:
            return
        self._held = self._raising = False  # the interrupt raised, if any, was caught
        restore_signals(self._mask)  # one still pending in the kernel reaches _on_signal now
        swapped = dict(self._swapped)
        self._put_back()
        pending, self._pending = self._pending, []
        for sig in pending:
            if sig in self._armed:
                self._on_signal(sig, None)  # raises
            elif self._deliver(sig, swapped.get(sig) or self._ended.get(sig)):
                return

    def end(self) -> None:
        """Stop routing the signals here (:meth:`arm`), and :meth:`release`: what was held is
        delivered (raised) now, through the handlers ``arm()`` stood in front of."""
        if not self._armed and not self._held:
            return
        self.hold()  # a signal is noted while this object stops being the armed one
        self._ended, self._armed = self._armed, {}
        if self in _armed_holds:
            _armed_holds.remove(self)
        self.release()


#: The handlers :func:`_dispatch` stands in front of, by signal (what ``arm()`` found).
_behind: dict[int, Any] = {}
#: The armed holds, the innermost last: :func:`_dispatch` routes to it.
_armed_holds: list[SignalHold] = []


def _default(sig: int) -> Any:
    return signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL


def _dispatch(signum: int, frame: FrameType | None) -> None:
    """The Python handler of ``HELD_SIGNALS`` from the first :meth:`SignalHold.arm` on: to
    the armed hold, or (between runs) to the handler it stands in front of."""
    if _armed_holds:
        _armed_holds[-1]._on_signal(signum, frame)
        return
    handler = _behind.get(signum, _default(signum))
    if callable(handler):
        handler(signum, frame)
    else:  # the default action, as if no Python handler had been there
        _raw_signal.signal(signum, handler)
        os.kill(os.getpid(), signum)


def raising_elsewhere() -> None:
    """An interrupt of the run that is not one of the held signals' (a time limit's
    ``RunTimeout``, raised by a SIGALRM handler) is being raised: as for one raised through
    :meth:`SignalHold.arm`, a held signal that arrives while xprun's code catches it waits for
    the run's hold (a Ctrl-C just after the time limit would otherwise escape the run, which
    would be left unrecorded)."""
    if _armed_holds and threading.get_ident() == _armed_holds[-1]._main:
        _armed_holds[-1]._raising = True


def disarm() -> None:
    """Put back the handlers :func:`_dispatch` stands in front of (the session's end)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, handler in list(_behind.items()):
        if _raw_signal.getsignal(sig) is _dispatch:
            _raw_signal.signal(sig, handler)
        del _behind[sig]


def _forget_armed() -> None:
    """In a forked child: the parent's armed holds are the parent's."""
    _armed_holds.clear()


_FORK_HOOK: list[bool] = []  # _forget_armed is registered (on the first arm(), not on import)


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
