"""A heartbeat that fails for a moment keeps its claim; one that keeps failing loses it
before any other launcher may take the run over (``Claim.patience``, xprun/store.py).

A failing touch is injected by replacing ``os.utime`` for the claim's path: a file system
that fails a moment and recovers (an NFS server restarting) cannot be produced here.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import inprocess as _inprocess
import pytest

from xprun import store

inprocess = _inprocess.inprocess  # the fixture


class _FailingTouches:
    """``os.utime`` failing with ``error`` for paths named ``claim.*``, ``failures`` times."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, failures: int, error: int = errno.EIO):
        self.left = failures
        self.error = error
        self.calls = 0
        self._utime = os.utime
        monkeypatch.setattr(os, "utime", self)

    def __call__(self, path, *args, **kwargs):
        if isinstance(path, str | Path) and os.path.basename(path).startswith("claim."):
            self.calls += 1
            if self.left:
                self.left -= 1
                raise OSError(self.error, os.strerror(self.error), str(path))
        return self._utime(path, *args, **kwargs)


class _Clock:
    """``time.monotonic`` under the test's control."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        monkeypatch.setattr(time, "monotonic", lambda: self.now)


def test_a_heartbeat_failing_for_a_moment_keeps_the_claim(tmp_path, monkeypatch, capfd):
    clock = _Clock(monkeypatch)
    claim = store.Claim.try_create(tmp_path, 1)
    assert claim is not None
    claim.patience = 30.0
    touches = _FailingTouches(monkeypatch, failures=3)
    for _ in range(3):  # 3 failures over 29 s: within the patience
        clock.now += 9.6
        claim.touch()
        assert not claim.lost
    assert capfd.readouterr().err.count("trying again") == 1  # said once, not per failure
    clock.now += 5
    claim.touch()  # succeeds
    assert touches.calls == 4 and not claim.lost and claim.heartbeat_error is None
    assert claim.holds()
    # The patience counts from the last touch that succeeded, not from the claim's creation.
    touches.left = 1
    clock.now += 25
    claim.touch()
    assert not claim.lost and claim.holds()
    assert capfd.readouterr().err.count("trying again") == 1  # a new failure: said again


def test_a_heartbeat_failing_past_its_patience_loses_the_claim(tmp_path, monkeypatch, capfd):
    clock = _Clock(monkeypatch)
    claim = store.Claim.try_create(tmp_path, 1)
    assert claim is not None
    claim.patience = 30.0
    _FailingTouches(monkeypatch, failures=100)
    clock.now += 29.9
    claim.touch()
    assert not claim.lost and claim.holds()
    clock.now += 0.1  # 30 s since the last touch that succeeded (the claim's creation)
    claim.touch()
    assert claim.lost and not claim.holds()
    assert isinstance(claim.heartbeat_error, OSError)
    assert claim.heartbeat_error.errno == errno.EIO
    assert "its claim counts as lost" in capfd.readouterr().err
    # Lost stays lost, even if the file system recovers.
    monkeypatch.undo()
    claim.touch()
    assert claim.lost and not claim.holds()


def test_a_claim_found_removed_is_lost_at_once(tmp_path, monkeypatch):
    _Clock(monkeypatch)
    claim = store.Claim.try_create(tmp_path, 1)
    assert claim is not None
    claim.patience = 30.0
    _FailingTouches(monkeypatch, failures=1, error=errno.ENOENT)
    claim.touch()
    assert claim.lost and claim.heartbeat_error is not None


def test_without_patience_the_first_failure_loses_the_claim(tmp_path, monkeypatch):
    claim = store.Claim.try_create(tmp_path, 1)
    assert claim is not None
    _FailingTouches(monkeypatch, failures=1)
    claim.touch()
    assert claim.lost


def test_acquire_gives_claims_half_the_stale_timeout(tmp_path):
    """Another launcher takes a run over once its claim is a whole timeout old: an owner
    whose heartbeat fails gives up at half of it, well before."""
    heartbeat = store.Heartbeat(interval=1.0, timeout=10.0)
    acquired = store.acquire(tmp_path / "run", store.FsClock(tmp_path), heartbeat)
    assert acquired.claim is not None and acquired.claim.patience == 5.0


SLOW = """
import time

def xp_slow(config):
    time.sleep(1.0)
    return {"done": 1}
"""


def test_a_run_whose_heartbeat_fails_for_a_moment_records_its_outcome(
    inprocess, project, monkeypatch
):
    # In-process: the failing touches are injected into the launcher's own os.utime.
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\nheartbeat_interval = 0.05\nheartbeat_timeout = 30\n',
    )
    project.write("xp_slow.py", SLOW)
    touches = _FailingTouches(monkeypatch, failures=2)
    result = inprocess.run()
    assert result.ret == 0, result.output
    assert touches.calls > 2  # the failures happened, and touches went on after them
    (record,) = result.records()
    assert record["status"] == "complete"
    (run_dir,) = result.run_dirs()
    assert (run_dir / "outcome.json").is_file()
    assert "trying again" in (run_dir / "stderr.log").read_text()
