"""Errors that have no caller to raise to, and defects found by typing the package (issue 10).

The ticker's thread (xprun/ticker.py) runs the heartbeats and the background metric flushes:
an error there is reported on the process's stderr, and in the run's ``stderr.log`` when it
concerns a run, never dropped.  Those tests inject the fault in the test's own process
(tests/inprocess.py): the moment a background write runs cannot be chosen from outside a
subprocess.  Each experiment waits for the fault to have happened (a marker file) instead of
sleeping, so no test depends on how fast the machine is.
"""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path

import inprocess as _inprocess
import numpy as np
import pytest

import xprun
from xprun import logger as xlogger
from xprun import store, ticker

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

inprocess = _inprocess.inprocess  # the fixture

#: How long an experiment waits for an injected fault before giving up (then the test fails
#: on what it finds, instead of hanging): a guard, not a timing assertion.
_GUARD_SECONDS = 60


def _waiting_experiment(project, marker: Path, body: str) -> None:
    """``xp_wait``: logs step 0, waits until ``marker`` exists, logs step 1, returns."""
    project.write(
        "xp_wait.py",
        f"""
        import os, time

        def xp_wait(logger):
            logger.log_metrics({{"loss": 1.0}}, step=0)
            deadline = time.monotonic() + {_GUARD_SECONDS}
            while not os.path.exists({str(marker)!r}) and time.monotonic() < deadline:
                time.sleep(0.01)
            logger.log_metrics({{"loss": 0.5}}, step=1)
            {body}
        """,
    )


def _steps(run_dir: Path) -> list[int]:
    lines = (run_dir / "metrics" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


def test_i10_types_background_metric_flush_failure_is_reported_and_the_run_completes(
    project, inprocess, monkeypatch, capfd
):
    """The first background flush of a run's metrics fails (a full disk, once): the warning
    reaches the process's stderr and the run's stderr.log, and the run still completes with
    every metric line (its own flush on return writes them)."""
    marker = project.root / "flush-failed"
    _waiting_experiment(project, marker, "return {'ok': 1}")
    real = xlogger._open_metrics

    def open_metrics(path):
        if threading.current_thread() is not threading.main_thread() and not marker.exists():
            marker.touch()
            raise OSError(errno.ENOSPC, "No space left on device (injected)", str(path))
        return real(path)

    monkeypatch.setattr(xlogger, "_open_metrics", open_metrics)
    result = inprocess.run()
    stderr = capfd.readouterr().err

    assert marker.exists(), "the background flush never ran"
    assert result.ret == 0, result.output
    (run_dir,) = result.run_dirs()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
    assert _steps(run_dir) == [0, 1]
    assert "xprun: warning: background flush" in stderr and "injected" in stderr
    log = (run_dir / "stderr.log").read_text()
    assert "xprun: warning: background flush" in log and "injected" in log


def test_i10_types_ticker_job_that_raises_is_reported_and_the_thread_keeps_running(capfd):
    """A job that raises, even ``SystemExit`` (which a thread otherwise dies of silently), is
    reported and dropped; the other jobs keep being called by the same thread."""
    after_failure = threading.Event()
    failed = threading.Event()

    def steady() -> None:
        if failed.is_set():
            after_failure.set()

    def broken() -> None:
        failed.set()
        raise SystemExit("a job called sys.exit()")

    keep = ticker.every(0.01, steady)
    bad = ticker.every(0.01, broken)
    try:
        assert after_failure.wait(_GUARD_SECONDS), "no job ran after the failing one"
    finally:
        keep.cancel()
        bad.cancel()
    stderr = capfd.readouterr().err
    assert "xprun: warning: background job" in stderr
    assert "a job called sys.exit()" in stderr
    assert bad.cancelled


def test_i10_types_report_never_raises_without_a_stderr(monkeypatch, tmp_path, capfd):
    """``ticker.report`` is called where nothing can catch: without a Python stderr it writes
    to the descriptor, and a run directory that cannot take the line costs nothing more."""
    monkeypatch.setattr("sys.__stderr__", None)
    ticker.report("no stream", tmp_path / "missing" / "run")
    assert "xprun: warning: no stream" in capfd.readouterr().err
    ticker.report("into the run", tmp_path)
    assert "xprun: warning: into the run" in (tmp_path / "stderr.log").read_text()


def test_i10_types_npz_arrays_named_like_savez_arguments_are_saved(project):
    """An ``npz`` artifact whose arrays are named ``allow_pickle`` or ``file`` (numpy.savez's
    own parameters) is saved whole: savez dropped the first from the file without a word and
    refused the second, failing the run with its own TypeError."""
    project.write(
        "xp_arrays.py",
        """
        import numpy as np

        def xp_arrays(logger):
            logger.log_artifact("named", {"allow_pickle": np.arange(3), "x": np.ones(2)})
            logger.log_artifact("file", {"file": np.arange(2.0)})
        """,
    )
    result = project.run()
    assert result.returncode == 0, result.output
    (run,) = xprun.Reader(project.log_dir)
    named = run.load_artifact("named")
    assert sorted(named) == ["allow_pickle", "x"]
    np.testing.assert_array_equal(named["allow_pickle"], np.arange(3))
    np.testing.assert_array_equal(run.load_artifact("file")["file"], np.arange(2.0))


def test_i10_types_npz_keys_that_collide_as_text_are_refused(project):
    """``{1: a, "1": b}`` would be one array named ``1``: refused before anything is written,
    instead of one of the two vanishing."""
    project.write(
        "xp_collide.py",
        """
        import numpy as np

        def xp_collide(logger):
            logger.log_artifact("both", {1: np.zeros(1), "1": np.ones(1)})
        """,
    )
    result = project.run()
    assert result.returncode == 1, result.output
    assert "same name as text" in result.output
    (run_dir,) = project.run_dirs()
    assert not list(run_dir.glob("artifacts/both*"))


@pytest.mark.skipif(not hasattr(os, "utime"), reason="needs os.utime")
def test_i10_types_failed_heartbeat_is_reported_and_explains_the_lost_claim(
    project, inprocess, monkeypatch, capfd
):
    """A heartbeat that cannot be written (an I/O error, again and again) makes the claim
    count as lost once it has failed for half the stale timeout (docs/architecture.md,
    fencing); the error itself is reported on stderr and in the run's stderr.log when it
    happens, and the lost-claim report says the heartbeat failed instead of naming this very
    process as the one that took the run over."""
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\nheartbeat_interval = 0.05\nheartbeat_timeout = 0.2\n',
    )
    marker = project.root / "heartbeat-failed"
    _waiting_experiment(project, marker, "return {'ok': 1}")
    real, real_touch = os.utime, store.Claim.touch

    def utime(path, *args, **kwargs):
        name = os.fspath(path).rsplit("/", 1)[-1]
        if name.startswith("claim.") and threading.current_thread() is not threading.main_thread():
            raise OSError(errno.EIO, "Input/output error (injected)", os.fspath(path))
        return real(path, *args, **kwargs)

    def touch(claim):  # the experiment returns once its claim counts as lost
        real_touch(claim)
        if claim.lost:
            marker.touch()

    monkeypatch.setattr(store.Claim, "touch", touch)
    monkeypatch.setattr(os, "utime", utime)
    result = inprocess.run()
    stderr = capfd.readouterr().err

    assert marker.exists(), "no heartbeat ran"
    assert "xprun: warning: heartbeat" in stderr and "injected" in stderr
    (run_dir,) = result.run_dirs()
    assert "injected" in (run_dir / "stderr.log").read_text()
    assert "lost claim" in result.output
    assert "lost claim: the heartbeat of attempt 1 of this run could not be" in result.output
    assert "Input/output error (injected)" in result.output
    assert f"pid {os.getpid()} " not in result.output  # not "taken over by" itself


def test_i10_types_run_record_config_of_an_empty_document_is_an_empty_mapping(project):
    """A ``config.yaml`` that is an empty YAML document (as some dumpers write ``{}``) is an
    empty config for the index, so ``RunRecord.config`` is ``{}`` too (it returned None, not
    the ``dict`` it is typed as)."""
    project.write("xp_empty.py", "def xp_empty():\n    return {'ok': 1}\n")
    result = project.run()
    assert result.returncode == 0, result.output
    (run_dir,) = project.run_dirs()
    (run_dir / "config.yaml").write_text("")
    (run,) = xprun.Reader(project.log_dir)
    assert run.config == {}
    assert run.outcome == {"ok": 1}
    assert run.record["status"] == "complete"
