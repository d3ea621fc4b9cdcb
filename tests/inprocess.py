"""An in-process xprun session, as pytest's ``pytester``: for fault injection.

``project.run`` (tests/conftest.py) runs ``python -m xprun`` in a subprocess, which is how a
user runs it and what most tests should do.  Some error paths cannot be reached that way
without luck: a claim lost between two writes, a crash after the outcome but before the final
record, a disk that fails one particular write.  ``InProcess.run`` calls ``xprun.main(argv)``
in the test's own process instead, so a test can ``monkeypatch`` a function of ``xprun.store``,
``xprun.runner`` or ``xprun.record`` to fail at exactly that moment.

Everything a session changes in the process is restored afterwards: the working directory,
``sys.path``, the modules imported from the project (experiment files, conftests, so the next
run imports them afresh), the signal handlers and mask, and ``sys.stdout``/``sys.stderr``.
It is also what mutation testing (tools/mutation.py) runs: a mutant of ``xprun`` loaded in the
test's process is exercised by these sessions, where a subprocess would import the original.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Project

#: The signals a session installs handlers for or holds (SignalHold): restored afterwards.
_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR2") if hasattr(signal, name)
)


@dataclass
class InProcessResult:
    """What one in-process session did: its exit code, its output, where its runs are."""

    ret: int
    stdout: str
    stderr: str
    log_dir: Path

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def run_dirs(self) -> list[Path]:
        return sorted(p.parent for p in self.log_dir.glob("*/*/run.json"))

    def records(self) -> list[dict[str, Any]]:
        return [json.loads((d / "run.json").read_text()) for d in self.run_dirs()]


class InProcess:
    """Runs ``xprun.main(argv)`` in this process, in a temporary ``Project``."""

    def __init__(self, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
        self.project = project
        self._monkeypatch = monkeypatch

    @property
    def log_dir(self) -> Path:
        return self.project.log_dir

    def run(self, *args: str) -> InProcessResult:
        """``xprun ARGS`` in the project folder; the process is left as it was found."""
        import xprun

        root = self.project.root.resolve()
        saved_cwd = os.getcwd()
        saved_path = list(sys.path)
        saved_modules = dict(sys.modules)
        saved_handlers = {sig: signal.getsignal(sig) for sig in _SIGNALS}
        saved_mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        saved_streams = (sys.stdout, sys.stderr)
        out, err = io.StringIO(), io.StringIO()
        with self._monkeypatch.context() as patch:
            patch.setenv("XPRUN_DISABLE_PLUGIN_AUTOLOAD", "1")
            os.chdir(root)
            sys.stdout, sys.stderr = out, err
            try:
                ret = xprun.main(list(args))
            finally:
                sys.stdout, sys.stderr = saved_streams
                os.chdir(saved_cwd)
                sys.path[:] = saved_path
                _restore_modules(saved_modules, root)
                for sig, handler in saved_handlers.items():
                    if handler is not None:
                        signal.signal(sig, handler)
                signal.pthread_sigmask(signal.SIG_SETMASK, saved_mask)
        return InProcessResult(int(ret), out.getvalue(), err.getvalue(), self.log_dir)


def _restore_modules(saved: dict[str, Any], root: Path) -> None:
    """Forget the modules imported from the project (so the next run imports them afresh),
    and put back any they replaced: a project's ``conftest`` must not shadow the tests' own.
    """
    for name, module in list(sys.modules.items()):
        if saved.get(name) is not module and _imported_from(module, root):
            if name in saved:
                sys.modules[name] = saved[name]
            else:
                del sys.modules[name]


def _imported_from(module: Any, root: Path) -> bool:
    """Whether ``module`` was loaded from a file under ``root`` (the temporary project)."""
    file = getattr(module, "__file__", None)
    if not file:
        return False
    try:
        return Path(file).resolve().is_relative_to(root)
    except OSError:
        return False


@pytest.fixture
def inprocess(project: Project, monkeypatch: pytest.MonkeyPatch) -> InProcess:
    """An ``InProcess`` runner for the test's temporary project."""
    return InProcess(project, monkeypatch)
