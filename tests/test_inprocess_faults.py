"""Error paths of the run protocol, reached deterministically by fault injection (issue 10).

Each test runs a real session in the test's process (tests/inprocess.py) and makes one
function of ``xprun.store`` fail, or answer differently, at exactly the moment whose handling
it checks: a crash between the outcome and the final record, a claim lost between two writes,
a write refused by the file system.  A subprocess cannot be stopped at those points but by
luck; the paths a real signal or kill reaches reliably are tested through the CLI in
tests/test_trust_runs.py and tests/test_trust_signals.py, and not repeated here.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import inprocess as _inprocess
import pytest

from xprun import settings, store
from xprun.states import Status

inprocess = _inprocess.inprocess  # the fixture


class _Crash(BaseException):
    """Stands for the process dying at the injected point: nothing of xprun catches it."""


def _counted(project, name: str = "xp_count", body: str = "return {'value': 1}") -> Path:
    """An experiment that appends to a file each time it is executed; returns that file."""
    executions = project.root / "executions"
    project.write(
        f"{name}.py",
        f"def {name}():\n    open({str(executions)!r}, 'a').write('x')\n    {body}\n",
    )
    return executions


def _run_dir(result) -> Path:
    (run_dir,) = result.run_dirs()
    return run_dir


def _crash_on_final_record(monkeypatch) -> None:
    """The process dies once the outcome is saved, before ``run.json`` says complete."""
    real = store.write_json_atomic

    def write(path, obj, durable=False, **text):
        if os.path.basename(path) == store.RUN_JSON and obj.get("status") == Status.COMPLETE:
            raise _Crash
        real(path, obj, durable, **text)

    monkeypatch.setattr(store, "write_json_atomic", write)


# -- recovery of a run whose function returned -------------------------------------------------


def test_i10_01_a_run_that_returned_before_a_crash_is_recovered_without_running_again(
    inprocess, project, monkeypatch
):
    executions = _counted(project)
    with monkeypatch.context() as patch:
        _crash_on_final_record(patch)
        with pytest.raises(_Crash):
            inprocess.run("-qq")
    (record,) = inprocess.log_dir.glob("*/*/run.json")
    assert json.loads(record.read_text())["status"] == "running"
    result = inprocess.run()
    assert result.ret == 0, result.output
    (final,) = result.records()
    assert final["status"] == "complete" and final["recovered"] is True
    assert final["attempt"] == 1 and "error" not in final
    assert json.loads((_run_dir(result) / "outcome.json").read_text()) == {"value": 1}
    assert executions.read_text() == "x"  # executed once, recovered once
    assert not list(_run_dir(result).glob("claim.*"))


def test_i10_01_a_recovery_whose_claim_is_lost_records_nothing(inprocess, project, monkeypatch):
    _counted(project)
    with monkeypatch.context() as patch:
        _crash_on_final_record(patch)
        with pytest.raises(_Crash):
            inprocess.run("-qq")
    monkeypatch.setattr(store.Claim, "holds", lambda self: False)
    result = inprocess.run()
    assert result.ret == 1, result.output
    assert "lost claim" in result.output and "the recovered record" in result.output
    (record,) = result.records()
    assert record["status"] == "running" and "recovered" not in record


# -- teardown errors ---------------------------------------------------------------------------

TEARDOWNS = """
import xprun

@xprun.fixture
def first():
    yield 1
    open({closed!r}, "a").write("first\\n")
    raise {first}

@xprun.fixture
def second():
    yield 2
    open({closed!r}, "a").write("second\\n")
    raise {second}

def xp_td(first, second):
    {body}
"""


def _teardowns(project, first: str, second: str, body: str = "return {'ok': 1}") -> Path:
    closed = project.root / "closed"
    project.write(
        "xp_td.py", TEARDOWNS.format(closed=str(closed), first=first, second=second, body=body)
    )
    return closed


def test_i10_01_an_interrupt_in_teardown_after_return_keeps_the_result_and_every_teardown_runs(
    inprocess, project
):
    # In-process: a real Ctrl-C cannot be timed to land inside one particular teardown.
    closed = _teardowns(project, "KeyboardInterrupt", "SystemExit(3)")
    result = inprocess.run()
    assert result.ret == 2, result.output  # interrupted: the session stops
    assert closed.read_text().splitlines() == ["second", "first"]  # newest first, both
    (record,) = result.records()
    assert record["status"] == "complete"
    assert record["teardown_error"]["type"] == "KeyboardInterrupt"  # the interrupt wins
    assert json.loads((_run_dir(result) / "outcome.json").read_text()) == {"ok": 1}


def test_i10_01_an_interrupt_in_the_teardown_of_a_failed_run_records_it_interrupted(
    inprocess, project
):
    closed = _teardowns(
        project, "ValueError('x')", "KeyboardInterrupt", body="raise OSError('boom')"
    )
    result = inprocess.run()
    assert result.ret == 2, result.output
    assert closed.read_text().splitlines() == ["second", "first"]
    (record,) = result.records()
    assert record["status"] == "interrupted"
    assert record["error"]["type"] == "OSError"  # the run's own error stays the recorded one
    assert record["teardown_error"]["type"] == "KeyboardInterrupt"
    assert not (_run_dir(result) / "outcome.json").exists()
    text = (_run_dir(result) / "error.txt").read_text()
    assert "boom" in text and "error in fixture teardown" in text


def test_i10_01_a_teardown_error_of_a_failed_run_is_recorded_beside_its_error(inprocess, project):
    _teardowns(
        project, "ValueError('first')", "RuntimeError('second')", body="raise OSError('boom')"
    )
    result = inprocess.run()
    assert result.ret == 1, result.output
    (record,) = result.records()
    assert record["status"] == "failed" and record["error"]["type"] == "OSError"
    assert record["teardown_error"] == {"type": "RuntimeError", "message": "second"}


# -- a lost claim race -------------------------------------------------------------------------


def _holds_until(monkeypatch, answers: list[bool]) -> None:
    """``Claim.holds`` answers ``answers`` in turn (then False): the claim is lost there."""
    pending = list(answers)

    def holds(self):
        answer = pending.pop(0) if pending else False
        if not answer:
            self.lost = True
        return answer

    monkeypatch.setattr(store.Claim, "holds", holds)


def test_i10_01_a_claim_lost_before_the_outcome_writes_no_outcome(inprocess, project, monkeypatch):
    # In-process: a takeover between the return and the outcome write is a race of microseconds.
    _counted(project)
    _holds_until(monkeypatch, [])
    result = inprocess.run()
    assert result.ret == 1, result.output
    assert "lost claim" in result.output and "its outcome was not recorded" in result.output
    run_dir = _run_dir(result)
    assert not (run_dir / "outcome.json").exists()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"


def test_i10_01_a_claim_lost_after_the_outcome_leaves_the_final_record_to_the_new_owner(
    inprocess, project, monkeypatch
):
    executions = _counted(project)
    _holds_until(monkeypatch, [True])
    result = inprocess.run("-x")
    assert result.ret == 1, result.output
    assert "its final record was not recorded" in result.output
    run_dir = _run_dir(result)
    assert json.loads((run_dir / "outcome.json").read_text()) == {"value": 1}
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    monkeypatch.undo()
    again = inprocess.run()  # the next launch finds a returned run: recovered, not re-run
    assert again.ret == 0, again.output
    assert again.records()[0]["recovered"] is True
    assert executions.read_text() == "x"


def test_i10_01_an_attempt_taken_by_another_launcher_first_is_not_taken_twice(
    inprocess, project, monkeypatch
):
    # In-process: two launchers creating the same claim.<N> in the same microsecond.
    _counted(project)
    real = store.Claim.try_create
    tried: list[int] = []

    def other_first(run_dir, attempt, fresh=False):
        tried.append(attempt)
        if len(tried) == 1:
            return None  # claim.<attempt> was created by another launcher, which then finished
        return real(run_dir, attempt, fresh)

    monkeypatch.setattr(store.Claim, "try_create", staticmethod(other_first))
    result = inprocess.run()
    assert result.ret == 0, result.output
    assert tried == [1, 1]  # looked again, and that claim was gone: attempt 1 is free
    (record,) = result.records()
    assert record["status"] == "complete" and record["attempt"] == 1


# -- a corrupt claim file ----------------------------------------------------------------------


def _claim(inprocess, project, content: bytes, age: float) -> Path:
    """A ``claim.1`` holding ``content`` whose heartbeat is ``age`` seconds old."""
    result = inprocess.run("-qq")  # the run directory, complete
    run_dir = _run_dir(result)
    record = json.loads((run_dir / "run.json").read_text())
    store.write_json_atomic(run_dir / "run.json", {**record, "status": "interrupted"})
    (run_dir / "outcome.json").unlink()  # an attempt that never returned
    claim = run_dir / "claim.1"
    claim.write_bytes(content)
    then = claim.stat().st_mtime - age
    os.utime(claim, (then, then))
    return run_dir


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"", b"\xff\xfe"])
def test_i10_01_a_corrupt_claim_is_not_a_live_owner_once_older_than_a_heartbeat(
    inprocess, project, content
):
    executions = _counted(project)
    run_dir = _claim(inprocess, project, content, age=settings.HEARTBEAT_INTERVAL * 3)
    result = inprocess.run()
    assert result.ret == 0, result.output
    (record,) = result.records()
    assert record["status"] == "complete" and record["attempt"] == 2
    assert executions.read_text() == "xx"
    assert not list(run_dir.glob("claim.*"))


def test_i10_01_a_fresh_corrupt_claim_reads_as_running_elsewhere(inprocess, project):
    executions = _counted(project)
    run_dir = _claim(inprocess, project, b"{not json", age=0)
    result = inprocess.run()
    assert result.ret == 0, result.output
    assert "1 running elsewhere" in result.output
    assert executions.read_text() == "x"
    assert (run_dir / "claim.1").read_bytes() == b"{not json"  # not ours to remove


def test_i10_01_an_unreadable_claim_is_not_a_live_owner(inprocess, project, monkeypatch):
    # In-process: root reads any file, so the unreadable claim is injected.
    executions = _counted(project)
    run_dir = _claim(inprocess, project, b'{"pid": 1}', age=settings.HEARTBEAT_INTERVAL * 3)
    real = os.open

    def refuse_claims(path, flags, *args, **kwargs):
        if Path(os.fsdecode(path)) == run_dir / "claim.1" and not flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse_claims)
    result = inprocess.run()
    assert result.ret == 0, result.output
    assert executions.read_text() == "xx"
    assert not list(run_dir.glob("claim.*"))


# -- a read-only log directory -----------------------------------------------------------------


def _read_only(monkeypatch, root: Path) -> None:
    """Writes under ``root`` fail as on a read-only mount (root ignores file permissions)."""
    real_open, real_access = os.open, os.access

    def refuse(path, flags, *args, **kwargs):
        writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        if writing and Path(os.fsdecode(path)).resolve().is_relative_to(root):
            raise OSError(errno.EROFS, "Read-only file system", os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    def access(path, mode, **kwargs):
        if mode & os.W_OK and Path(os.fsdecode(path)).resolve().is_relative_to(root):
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    monkeypatch.setattr(os, "access", access)


def test_i10_01_a_read_only_log_directory_is_a_usage_error_with_nothing_written(
    inprocess, project, monkeypatch
):
    executions = _counted(project)
    project.log_dir.mkdir()
    _read_only(monkeypatch, project.log_dir.resolve())
    result = inprocess.run()
    assert result.ret == 4, result.output
    assert "is not writable by this user" in result.stderr and str(project.log_dir) in result.stderr
    assert not executions.exists()
    assert list(project.log_dir.iterdir()) == []


def test_i10_01_the_clock_of_a_read_only_log_directory_is_the_local_one(tmp_path, monkeypatch):
    _read_only(monkeypatch, tmp_path.resolve())
    monkeypatch.setattr(store.time, "time", lambda: 1234.0)
    assert store.FsClock(tmp_path).now() == pytest.approx(1234.0, abs=1.0)


# -- exit code 3 -------------------------------------------------------------------------------


def test_i10_01_an_io_error_while_claiming_is_an_internal_error_that_leaves_no_claim(
    inprocess, project, monkeypatch
):
    # In-process: an EIO from the file system cannot be provoked on a healthy disk.
    executions = _counted(project)

    def write_config(run, run_dir=None):
        raise OSError(errno.EIO, "Input/output error", str(run.run_dir / "config.yaml"))

    monkeypatch.setattr("xprun.runner.write_config", write_config)
    result = inprocess.run()
    assert result.ret == 3, result.output
    assert "INTERNAL ERROR" in result.stderr and "Input/output error" in result.stderr
    assert not executions.exists()
    assert not list(project.log_dir.glob("*/*/claim.*"))
    monkeypatch.undo()
    again = inprocess.run()  # nothing half-written stands in the way of the next launch
    assert again.ret == 0, again.output
    assert executions.read_text() == "x"


# -- an interrupt-hook failure -----------------------------------------------------------------


def test_i10_01_a_failing_interrupt_hook_is_recorded_and_the_run_still_interrupted(
    inprocess, project
):
    # In-process and without a signal: the experiment raises KeyboardInterrupt itself, so the
    # interrupt lands inside the run, never before it or in the recording.
    _counted(project, body="raise KeyboardInterrupt")
    project.write(
        "conftest.py",
        """
        import xprun

        @xprun.hookimpl
        def xprun_run_interrupted(reason):
            raise ValueError("cannot save the optimizer")
        """,
    )
    result = inprocess.run()
    assert result.ret == 2, result.output
    assert "saving state on interrupt failed" in result.stderr
    (record,) = result.records()
    assert record["status"] == "interrupted"
    assert record["error"]["type"] == "KeyboardInterrupt"
    assert record["interrupt_hook_error"] == {
        "type": "ValueError",
        "message": "cannot save the optimizer",
    }
    assert not list(_run_dir(result).glob("claim.*"))


def test_i10_01_the_in_process_runner_restores_the_process(inprocess, project):
    import signal
    import sys

    _counted(project)
    project.write("helper_module_of_the_project.py", "VALUE = 1\n")
    project.write("conftest.py", "import helper_module_of_the_project\n")
    tests_conftest = sys.modules.get("conftest")
    before = (os.getcwd(), list(sys.path), signal.getsignal(signal.SIGTERM), sys.stdout)
    result = inprocess.run()
    assert result.ret == 0, result.output
    assert "helper_module_of_the_project" not in sys.modules
    assert sys.modules.get("conftest") is tests_conftest  # not the project's conftest
    after = (os.getcwd(), list(sys.path), signal.getsignal(signal.SIGTERM), sys.stdout)
    assert after == before
