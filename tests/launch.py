"""``python -m xprun ARGS`` without the process: ``project.run(..., inprocess=True)``.

A launch costs ~0.4 s of CPU, ~0.8 s under coverage (docs/quality.md, "CI time"), most of
it the interpreter's and the imports' start-up, and the suite makes about a thousand.  Where
the process boundary is not what a test checks, :func:`launch` calls the CLI's own entry
point (``xprun.cli.main``, what ``python -m xprun`` calls) in the test's process instead,
as pytest's own suite does with ``pytester.runpytest_inprocess``, and gives the same
result: the exit code ``sys.exit`` would have made, stdout and stderr as ``subprocess.run``
decodes them.

What the subprocess would get, the call gets: its working directory, exactly its
environment (``os.environ`` replaced, so the processes it starts inherit it too),
``sys.argv``, the ``sys.path`` a fresh ``python -m`` has there, Python's default warnings
filters, a root logger without handlers, stdin on ``/dev/null``, and stdout/stderr on
files at the file-descriptor level (xprun's capture and the processes it starts write
there), block- and line-buffered as on pipes.  Interpreter exit is mimicked: the
functions given to ``atexit`` are called (and not kept), the streams flushed.

What the call changes, is undone: the directory, the environment, ``sys.path``, the import
system's hooks and caches, the modules imported from outside the installed packages (the
project's experiment modules and ``conftest.py``: two tests in one xdist worker use the
same module names) and the import blockers it set (``sys.modules[name] = None``), signal handlers, mask and timer, the excepthooks, logging's handlers and
levels, warnings' filters, ``random``'s state, the process-wide memo of xprun that holds
the process's identity (``xprun.metadata``: argv, cwd).  Checked rather than undone: the
threads it started must have ended and the file descriptors it opened be closed, as a
process's would be at exit (a leak fails the test that made it).

It cannot stand in where the process is what is tested: the pool and its workers, SLURM,
signals and kills, exit by signal, ``--pdb``, start-up cost, what a fresh interpreter does
with ``PYTHON*`` variables.  Those launches stay subprocesses: :func:`needs_process` names
the arguments that send a call to one whatever the flag says, and a test passes
``inprocess=False`` for the rest (docs/quality.md, "CI time", third pass).
"""

from __future__ import annotations

import atexit
import builtins
import functools
import gc
import importlib
import json
import linecache
import locale
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: Arguments whose launch starts workers, a scheduler's jobs or a debugger: the process (and
#: its children, signals, terminal) is the subject, so these always run in a subprocess.
_PROCESS_ARGS = ("-n", "--numprocesses", "--scheduler", "--pdb", "--pdbcls", "--trace")
_PROCESS_COMMANDS = ("worker", "status")

#: Signals whose handlers a call may change (SIGKILL and SIGSTOP have none).
_SIGNALS = tuple(s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP))


def needs_process(args: Sequence[str], env: Mapping[str, str]) -> bool:
    """Whether ``python -m xprun ARGS`` with ``env`` must run in a process of its own."""
    for word in args:
        if word in _PROCESS_COMMANDS or word.split("=", 1)[0] in _PROCESS_ARGS:
            return True
        if word.startswith("-n") and word[2:].isdigit():  # -n2
            return True
    # What a fresh interpreter does with these (PYTHONPATH, PYTHONWARNINGS...) is the point.
    return any(
        name.startswith("PYTHON") and os.environ.get(name) != value for name, value in env.items()
    )


@functools.cache
def _fresh_interpreter(pythonpath: str | None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """``sys.path`` (without its first entry) and warnings filters of a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    probe = (
        "import json, sys, warnings\n"
        "p = lambda r: getattr(r, 'pattern', r)\n"  # a compiled pattern, a text or None
        "print(json.dumps([sys.path[1:], [(a, p(m), c.__name__, p(mod), n)"
        " for a, m, c, mod, n in warnings.filters]]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout
    path, filters = json.loads(out)
    return path, [tuple(f) for f in filters]


def _default_warnings(filters: list[tuple[Any, ...]]) -> None:
    warnings.resetwarnings()
    for action, message, category, module, lineno in filters:
        found = getattr(builtins, category, None)  # the default filters' are built-in
        if found is not None:
            warnings.filterwarnings(action, message or "", found, module or "", lineno, append=True)

    def show(msg: Any) -> None:  # warnings' own, to this sys.stderr (pytest records them)
        try:
            sys.stderr.write(warnings._formatwarnmsg(msg))  # type: ignore[attr-defined]
        except OSError:
            pass

    warnings._showwarnmsg_impl = show  # type: ignore[attr-defined]
    warnings.showwarning = warnings._showwarning_orig  # type: ignore[attr-defined]


def _installed_roots() -> tuple[str, ...]:
    """Folders whose modules may stay imported after a call: Python's, the environment's and
    xprun's own (an editable install)."""
    import xprun

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots.add(str(Path(xprun.__file__).resolve().parent))
    return tuple(os.path.join(os.path.realpath(r), "") for r in roots)


def _installed(module: Any, roots: tuple[str, ...]) -> bool:
    """Whether ``module`` may stay imported: built-in or frozen, made at run time by an
    installed package (no absolute file: torch's ``torch.ops`` says ``_ops.py``, and
    dropping it broke torch for the rest of the process), or loaded from under ``roots``."""
    files = [getattr(module, "__file__", None)]
    if files[0] is None:
        spec_path = getattr(module, "__path__", None)
        if spec_path is None:
            return True  # built-in or frozen
        files = list(spec_path)
    for file in files:
        if not isinstance(file, str) or not os.path.isabs(file):
            continue
        if not os.path.join(os.path.realpath(file), "").startswith(roots):
            return False
    return True


def _registered_by_the_call(func: Callable[..., Any]) -> bool:
    """Whether an ``atexit`` function belongs to what the call ran (the project's code, a
    test's plugin): a function of an installed module, or with no module (a C extension's),
    belongs to the process."""
    module = sys.modules.get(getattr(func, "__module__", None) or "")
    return module is not None and not _installed(module, _installed_roots())


_ABSENT = object()


def _restore_modules(saved: dict[str, Any]) -> None:
    """Forget modules the call imported from outside the installed packages (the project's,
    a plugin of the test's) and the import blockers it set (``sys.modules[name] = None``, as
    a project's ``conftest.py`` does to play "not installed": the next tests would find the
    package missing), and put back those it replaced (a project's ``conftest``)."""
    roots = _installed_roots()
    for name, module in list(sys.modules.items()):
        before = saved.get(name, _ABSENT)
        if before is module:
            continue
        if before is not _ABSENT:
            sys.modules[name] = before
        elif module is None or not _installed(module, roots):
            del sys.modules[name]


def _open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


class _Logging:
    """The logging configuration of the process: saved, emptied as a fresh one's, restored."""

    def __init__(self) -> None:
        manager = logging.Logger.manager
        self.disable = manager.disable
        self.loggers = {
            name: (logger.handlers[:], logger.level, logger.propagate, logger.disabled)
            for name, logger in [("", logging.root), *manager.loggerDict.items()]
            if isinstance(logger, logging.Logger)
        }

    def fresh(self) -> None:
        logging.root.handlers = []
        logging.root.setLevel(logging.WARNING)
        logging.disable(logging.NOTSET)

    def restore(self) -> None:
        manager = logging.Logger.manager
        for name in list(manager.loggerDict):
            if name not in self.loggers:
                del manager.loggerDict[name]
        for name, (handlers, level, propagate, disabled) in self.loggers.items():
            logger = logging.root if name == "" else logging.getLogger(name)
            logger.handlers = handlers
            logger.setLevel(level)
            logger.propagate, logger.disabled = propagate, disabled
        logging.disable(self.disable)
        manager._clear_cache()  # type: ignore[attr-defined]


def _exit_code(exc: SystemExit) -> int:
    """What the interpreter makes of ``sys.exit(code)``."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    sys.stderr.write(f"{code}\n")
    return 1


def _text(file: Any) -> str:
    """A captured stream as ``subprocess.run(text=True)`` decodes it (universal newlines)."""
    file.seek(0)
    data = file.read().decode(locale.getpreferredencoding(False))
    return data.replace("\r\n", "\n").replace("\r", "\n")


def launch(args: Sequence[str], cwd: Path, env: Mapping[str, str]) -> tuple[int, str, str]:
    """``python -m xprun ARGS`` in ``cwd`` with exactly ``env``, in this process: its exit
    code, stdout and stderr; the process is left as it was found."""
    import xprun.cli
    import xprun.metadata

    path, filters = _fresh_interpreter(env.get("PYTHONPATH"))
    saved_cwd = os.getcwd()
    saved_env = dict(os.environ)
    saved_sys = {
        name: getattr(sys, name)
        for name in (
            "argv",
            "stdin",
            "stdout",
            "stderr",
            "__stdout__",
            "__stderr__",
            "excepthook",
            "unraisablehook",
        )
    }
    saved_path, saved_meta, saved_hooks = sys.path[:], sys.meta_path[:], sys.path_hooks[:]
    saved_importer_cache = dict(sys.path_importer_cache)
    saved_modules = dict(sys.modules)
    saved_handlers = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    saved_mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    saved_timer = signal.getitimer(signal.ITIMER_REAL)
    saved_thread_hook = threading.excepthook
    saved_random = random.getstate()
    saved_umask = os.umask(0o22)
    os.umask(saved_umask)
    saved_logging = _Logging()
    threads_before = set(threading.enumerate())
    exit_functions: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []

    real_register, real_unregister = atexit.register, atexit.unregister

    def register(func: Callable[..., Any], *a: Any, **kw: Any) -> Callable[..., Any]:
        if not _registered_by_the_call(func):
            # An installed package imported during the call (torch, multiprocessing...)
            # registers for the process, which goes on: run at its real exit, not now
            # (torch's own functions, run after a call, broke torch for the next tests).
            return real_register(func, *a, **kw)
        exit_functions.append((func, a, kw))
        return func

    def unregister(func: Callable[..., Any]) -> None:
        exit_functions[:] = [f for f in exit_functions if f[0] != func]
        real_unregister(func)

    # pytest's capture holds fds 1 and 2: what it buffered goes out before they are moved.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    saved_fds = os.dup(1), os.dup(2)
    out_file = tempfile.TemporaryFile()  # noqa: SIM115 (read and closed after the call)
    err_file = tempfile.TemporaryFile()  # noqa: SIM115
    fds_before = _open_fds()
    stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 (closed below)
    encoding = locale.getpreferredencoding(False)
    try:
        os.dup2(out_file.fileno(), 1)
        os.dup2(err_file.fileno(), 2)
        out = open(1, "w", encoding=encoding, closefd=False)  # noqa: SIM115 (a pipe's)
        err = open(  # noqa: SIM115 (line-buffered, as Python's stderr on a pipe)
            2, "w", encoding=encoding, errors="backslashreplace", closefd=False, buffering=1
        )
        sys.stdin, sys.stdout, sys.stderr = stdin, out, err
        sys.__stdout__, sys.__stderr__ = out, err  # type: ignore[misc]
        sys.argv = [str(Path(xprun.cli.__file__).with_name("__main__.py")), *args]
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.path[:] = [str(Path(cwd).resolve()), *path]
        importlib.invalidate_caches()
        linecache.clearcache()
        xprun.metadata._PROCESS.clear()  # a memo of the process: argv, cwd, pid
        saved_logging.fresh()
        with warnings.catch_warnings():
            _default_warnings(filters)
            atexit_patch = (atexit.register, atexit.unregister)
            atexit.register, atexit.unregister = register, unregister  # type: ignore[assignment]
            try:
                try:
                    code = xprun.cli.main(list(args))
                except SystemExit as exc:
                    code = _exit_code(exc)
                except BaseException:  # the interpreter's last word on an uncaught error
                    traceback.print_exc()
                    code = 1
                _wait_for_threads(threads_before)
                for func, a, kw in reversed(exit_functions):
                    try:
                        func(*a, **kw)
                    except BaseException:
                        traceback.print_exc()
            finally:
                atexit.register, atexit.unregister = atexit_patch  # type: ignore[assignment]
            for stream in (out, err):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
    finally:
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        for fd in saved_fds:
            os.close(fd)
        for name, value in saved_sys.items():
            setattr(sys, name, value)
        stdin.close()
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:], sys.meta_path[:], sys.path_hooks[:] = saved_path, saved_meta, saved_hooks
        sys.path_importer_cache.clear()
        sys.path_importer_cache.update(saved_importer_cache)
        _restore_modules(saved_modules)
        importlib.invalidate_caches()
        linecache.clearcache()
        xprun.metadata._PROCESS.clear()
        _seed_finder_off()
        signal.setitimer(signal.ITIMER_REAL, *saved_timer)
        for sig, handler in saved_handlers.items():
            if handler is not None:
                try:
                    signal.signal(sig, handler)
                except (OSError, ValueError):
                    pass
        signal.pthread_sigmask(signal.SIG_SETMASK, saved_mask)
        threading.excepthook = saved_thread_hook
        random.setstate(saved_random)
        os.umask(saved_umask)
        saved_logging.restore()
    with out_file, err_file:
        stdout, stderr = _text(out_file), _text(err_file)
    leaked_threads = [t for t in threading.enumerate() if t not in threads_before]
    ticker = sys.modules.get("xprun.ticker")
    if ticker is not None:  # the process's one ticker thread: its jobs are the call's
        leaked_threads = [t for t in leaked_threads if t is not ticker._TICKER._thread]
        logger = sys.modules.get("xprun.logger")
        flusher = getattr(logger, "_flush_live", None)  # the process's, for live loggers
        jobs = [j.func for j in ticker._TICKER._jobs if not j.cancelled and j.func != flusher]
        assert not jobs, f"xprun {' '.join(args)} left ticker jobs scheduled: {jobs}"
        if logger is not None and logger._LIVE:
            gc.collect()  # a logger dropped unclosed leaves its weak entry until collected
        live = list(logger._LIVE) if logger is not None else []
        assert not live, f"xprun {' '.join(args)} left loggers open: {live}"
    assert not leaked_threads, f"xprun {' '.join(args)} left threads running: {leaked_threads}"
    # An installed library's read-only files may stay open in its caches (matplotlib's fonts).
    roots = _installed_roots()
    leaked_fds = {fd for fd in _open_fds() - fds_before if not _fd_target(fd).startswith(roots)}
    assert not leaked_fds, f"xprun {' '.join(args)} left file descriptors open: " + ", ".join(
        f"{fd} -> {_fd_target(fd)}" for fd in sorted(leaked_fds)
    )
    return code, stdout, stderr


def _fd_target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


def _wait_for_threads(before: set[threading.Thread]) -> None:
    """As the interpreter at exit: wait for the call's non-daemon threads; give its daemon
    threads (killed at a process's exit) a moment to end, so that a leak is one."""
    ticker = sys.modules.get("xprun.ticker")
    process_wide = ticker._TICKER._thread if ticker is not None else None
    for thread in threading.enumerate():
        if thread not in before and thread is not process_wide:
            thread.join(None if not thread.daemon else 5)


def _seed_finder_off() -> None:
    """A run's NumPy seed waits on ``sys.meta_path`` for NumPy's import (xprun's
    builtin_fixtures): ``sys.meta_path`` is restored; the pending seed is dropped too."""
    fixtures = sys.modules.get("xprun.builtin_fixtures")
    finder = getattr(fixtures, "_numpy_finder", None)
    if finder is not None:
        finder.seed = None
