"""The run protocol's decisions, each checked where mutation testing found it unchecked
(tools/mutation.py, xprun/runner.py): cached and forced runs, what a forced rerun sets aside,
who a lost claim names, the traceback kept, seeding, live output, a full disk while recording.

In-process sessions (tests/inprocess.py), so that a mutant of the runner is what they run;
the same behaviours are tested through the CLI elsewhere (tests/test_trust_runs.py).
"""

from __future__ import annotations

import errno
import json
import os
import random
import sys
import types
from pathlib import Path

import inprocess as _inprocess
import pytest

from xprun import runner, store
from xprun.states import Status

inprocess = _inprocess.inprocess  # the fixture

COUNTED = """
import xprun

@xprun.grid(i=[0, 1])
def xp_count(config):
    print("output of run", config.i)
    open({executions!r}, "a").write(str(config.i))
    return {{"i": config.i}}
"""


def _counted(project) -> Path:
    executions = project.root / "executions"
    project.write("xp_count.py", COUNTED.format(executions=str(executions)))
    return executions


class _Crash(BaseException):
    """Stands for the process dying at the injected point: nothing of xprun catches it."""


# -- cached and forced runs --------------------------------------------------------------------


def test_i10_03_a_complete_run_is_cached_and_force_runs_it_again_setting_the_old_aside(
    inprocess, project
):
    executions = _counted(project)
    assert inprocess.run().ret == 0
    cached = inprocess.run()
    assert cached.ret == 0 and "2 cached" in cached.output
    assert executions.read_text() == "01"
    forced = inprocess.run("--force")
    assert forced.ret == 0, forced.output
    assert "2 complete" in forced.output and executions.read_text() == "0101"
    for run_dir in forced.run_dirs():
        record = json.loads((run_dir / "run.json").read_text())
        assert record["status"] == "complete" and record["attempt"] == 2
        aside = run_dir / "previous" / "1"
        assert json.loads((aside / "run.json").read_text())["attempt"] == 1
        assert (aside / "stdout.log").read_text() == (run_dir / "stdout.log").read_text()
        assert sorted(p.name for p in aside.iterdir()) == [
            "outcome.json",
            "run.json",
            "stdout.log",
        ]
        outcome = json.loads((run_dir / "outcome.json").read_text())
        assert json.loads((aside / "outcome.json").read_text()) == outcome


def test_i10_03_a_forced_rerun_that_died_before_its_record_is_set_aside_again_whole(
    inprocess, project, monkeypatch
):
    # In-process: the window between setting the old attempt aside and the new record.
    executions = _counted(project)
    assert inprocess.run("-k", "i=0").ret == 0
    with monkeypatch.context() as patch:
        patch.setattr(runner, "start_record", lambda *a: (_ for _ in ()).throw(_Crash()))
        with pytest.raises(_Crash):
            inprocess.run("-k", "i=0", "--force")
    (run_dir,) = inprocess.log_dir.glob("xp_count.*/*")  # not the dot folders (sessions)
    # Until the new record says running, the run still reads complete, with its outcome.
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
    assert json.loads((run_dir / "outcome.json").read_text()) == {"i": 0}
    again = inprocess.run("-k", "i=0", "--force")
    assert again.ret == 0, again.output
    aside = run_dir / "previous" / "1"
    assert json.loads((aside / "run.json").read_text())["attempt"] == 1
    assert json.loads((aside / "outcome.json").read_text()) == {"i": 0}
    assert json.loads((run_dir / "run.json").read_text())["attempt"] == 2
    assert (run_dir / "stdout.log").read_text() == "output of run 0\n"  # the new attempt's only
    assert executions.read_text() == "00"


def test_i10_03_a_forced_rerun_that_died_keeps_the_replaced_attempts_files(
    inprocess, project, monkeypatch
):
    _counted(project)
    assert inprocess.run("-k", "i=0").ret == 0
    with monkeypatch.context() as patch:
        patch.setattr(runner, "start_record", lambda *a: (_ for _ in ()).throw(_Crash()))
        with pytest.raises(_Crash):
            inprocess.run("-k", "i=0", "--force")
    assert inprocess.run("-k", "i=0", "--force").ret == 0
    (run_dir,) = inprocess.log_dir.glob("xp_count.*/*")  # not the dot folders (sessions)
    assert (run_dir / "previous" / "1" / "stdout.log").read_text() == "output of run 0\n"
    assert [p.name for p in (run_dir / "previous").iterdir()] == ["1"]


def test_i11_mut_finishing_a_died_set_aside_replaces_nothing_set_aside_and_leaves_nothing(
    inprocess, project, monkeypatch
):
    # The died attempt wrote again what was set aside (a folder, a file where the set-aside
    # copy is a dangling link) and left other files: the set-aside copies stay the replaced
    # attempt's own, the died attempt's are removed, the others are set aside too, every one.
    _counted(project)
    assert inprocess.run("-k", "i=0").ret == 0
    with monkeypatch.context() as patch:
        patch.setattr(runner, "start_record", lambda *a: (_ for _ in ()).throw(_Crash()))
        with pytest.raises(_Crash):
            inprocess.run("-k", "i=0", "--force")
    (run_dir,) = inprocess.log_dir.glob("xp_count.*/*")
    aside = run_dir / "previous" / "1"
    (aside / "metrics").mkdir()
    (aside / "metrics" / "metrics.jsonl").write_text("replaced attempt's\n")
    (aside / "link").symlink_to(aside / "nowhere")
    (run_dir / "metrics").mkdir()
    (run_dir / "metrics" / "metrics.jsonl").write_text("died attempt's\n")
    (run_dir / "link").write_text("died attempt's")
    (aside / "linked").write_text("replaced attempt's")
    (project.root / "elsewhere").mkdir()
    (project.root / "elsewhere" / "keep.txt").write_text("not the run's")
    (run_dir / "linked").symlink_to(project.root / "elsewhere")  # a link to a folder
    others = [f"other{n:02d}.txt" for n in range(20)]
    for name in others:
        (run_dir / name).write_text(name)
    again = inprocess.run("-k", "i=0", "--force")
    assert again.ret == 0, again.output
    assert (aside / "metrics" / "metrics.jsonl").read_text() == "replaced attempt's\n"
    assert (aside / "link").is_symlink()
    assert not (run_dir / "metrics").exists() and not (run_dir / "link").exists()
    assert not (run_dir / "linked").is_symlink() and (aside / "linked").is_file()
    assert (project.root / "elsewhere" / "keep.txt").read_text() == "not the run's"
    assert all((aside / name).read_text() == name for name in others)
    assert not any((run_dir / name).exists() for name in others)
    assert json.loads((run_dir / "run.json").read_text())["attempt"] == 2


def test_i10_03_a_failed_run_is_run_again_with_its_old_outcome_and_traceback_gone(
    inprocess, project
):
    flag = project.root / "ok"
    project.write(
        "xp_flaky.py",
        f"""
        import pathlib

        def xp_flaky():
            if not pathlib.Path({str(flag)!r}).exists():
                raise RuntimeError("not yet")
            return 1
        """,
    )
    first = inprocess.run()
    assert first.ret == 1 and "not yet" in first.output
    (run_dir,) = first.run_dirs()
    assert "not yet" in (run_dir / "error.txt").read_text()
    flag.write_text("")
    second = inprocess.run()
    assert second.ret == 0, second.output
    assert not (run_dir / "error.txt").exists() and not (run_dir / "previous").exists()
    assert json.loads((run_dir / "run.json").read_text())["attempt"] == 2
    flag.unlink()
    assert inprocess.run().ret == 0  # complete: cached
    forced = inprocess.run("--force")  # fails again; only a complete attempt is set aside
    assert forced.ret == 1 and (run_dir / "previous" / "2" / "run.json").is_file()
    flag.write_text("")
    again = inprocess.run("--force")
    assert again.ret == 0, again.output
    assert sorted(p.name for p in (run_dir / "previous").iterdir()) == ["2"]
    assert not (run_dir / "error.txt").exists()


# -- a lost claim names the new owner ----------------------------------------------------------


def test_i10_03_a_lost_claim_names_the_attempt_and_process_that_took_the_run_over(
    inprocess, project, monkeypatch
):
    _counted(project)

    def taken_over(self):
        path = self.run_dir / f"claim.{self.attempt + 1}"
        path.write_text(json.dumps({"pid": 4242, "host": "otherhost", "token": "theirs"}))
        self.lost = True
        return False

    monkeypatch.setattr(store.Claim, "holds", taken_over)
    result = inprocess.run("-k", "i=0")
    assert result.ret == 1, result.output
    assert "taken over by attempt 2 (pid 4242 on otherhost)" in result.output
    assert "its outcome was not recorded" in result.output
    (run_dir,) = result.run_dirs()
    assert sorted(p.name for p in run_dir.glob("claim.*")) == ["claim.2"]  # theirs is kept


# -- what is recorded of a failure -------------------------------------------------------------


def _caught(fail_module: str) -> BaseException:
    """A ValueError raised in ``fail`` (defined in ``fail_module``), called and caught by
    functions of a module named ``xprun.fake``: as xprun calls an experiment."""
    user: dict = {"__name__": fail_module}
    exec("def fail():\n    raise ValueError('deep')\n", user)
    own: dict = {"__name__": "xprun.fake", "fail": user["fail"]}
    exec(
        "def outer():\n    fail()\n\n"
        "def catch():\n    try:\n        outer()\n    except ValueError as exc:\n        return exc\n",
        own,
    )
    return own["catch"]()


@pytest.mark.parametrize("fail_module", ["xp_user", "xprun.fake"])
def test_i10_03_a_traceback_starts_at_the_users_code_or_xpruns_last_frame(fail_module):
    text = runner._cut_traceback(_caught(fail_module))
    assert text.startswith("Traceback") and text.endswith("ValueError: deep\n")
    assert "in fail" in text
    assert "in outer" not in text and "in catch" not in text


def test_i10_03_error_txt_holds_the_users_frames_only(inprocess, project):
    project.write(
        "xp_fail.py", "def helper():\n    raise KeyError('k')\n\ndef xp_fail():\n    helper()\n"
    )
    result = inprocess.run()
    assert result.ret == 1
    (run_dir,) = result.run_dirs()
    text = (run_dir / "error.txt").read_text()
    assert "xp_fail.py" in text and "in xp_fail" in text and "in helper" in text
    assert "xprun" + "/runner.py" not in text and "pluggy" not in text


# -- seeding -----------------------------------------------------------------------------------


def test_i10_03_seeding_covers_random_numpy_modulo_2_32_and_torch_when_imported(monkeypatch):
    np = pytest.importorskip("numpy")
    seeded: list[int] = []
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(manual_seed=seeded.append))
    seed = 2**32 + 70
    runner.seed_everything(seed)
    drawn = (random.random(), np.random.random())
    random.seed(seed)
    np.random.seed(70)
    assert drawn == (random.random(), np.random.random())
    assert seeded == [seed]
    monkeypatch.delitem(sys.modules, "torch")
    runner.seed_everything(1)  # without torch imported: nothing to seed there


# -- live output -------------------------------------------------------------------------------


def test_i10_03_run_output_reaches_the_terminal_only_with_dash_s(inprocess, project):
    _counted(project)
    captured = inprocess.run("-k", "i=0")
    assert "output of run 0" not in captured.stdout
    (run_dir,) = captured.run_dirs()
    assert (run_dir / "stdout.log").read_text() == "output of run 0\n"
    live = inprocess.run("-k", "i=0", "--force", "-s")
    assert "output of run 0" in live.stdout


def test_i10_03_a_runs_reported_duration_is_its_own(inprocess, project):
    _counted(project)
    project.write(
        "conftest.py",
        f"""
        import xprun

        @xprun.hookimpl
        def xprun_run_logreport(report):
            open({str(project.root / "durations")!r}, "a").write(f"{{report.duration}}\\n")
        """,
    )
    assert inprocess.run().ret == 0
    durations = [float(d) for d in (project.root / "durations").read_text().split()]
    assert len(durations) == 2 and all(0 < d < 600 for d in durations)  # not a timestamp


# -- a full disk while recording ---------------------------------------------------------------


def _disk_full_on(monkeypatch, name: str, status: str | None = None) -> None:
    real = store.write_json_atomic if name.endswith(".json") else store.write_text_atomic

    def write(path, obj, durable=False, **text):
        if os.path.basename(path) == name and (status is None or obj.get("status") == status):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, obj, durable, **text)

    attribute = "write_json_atomic" if name.endswith(".json") else "write_text_atomic"
    monkeypatch.setattr(store, attribute, write)


def test_i10_03_a_full_disk_at_the_final_record_fails_the_run_and_stops_the_sweep(
    inprocess, project, monkeypatch
):
    # In-process: a disk that fills at exactly the final record cannot be arranged for real.
    executions = _counted(project)
    _disk_full_on(monkeypatch, "run.json", Status.COMPLETE)
    result = inprocess.run()
    assert result.ret == 1, result.output
    assert "its final record could not be written (it reads as interrupted)" in result.output
    assert "is full" in result.output and "stopped launching runs" in result.output
    assert executions.read_text() == "0"  # the second run never started
    (record,) = result.records()
    assert record["status"] == "running"


def test_i10_03_a_full_disk_at_error_txt_still_records_the_failure(inprocess, project, monkeypatch):
    project.write("xp_fail.py", "def xp_fail():\n    raise RuntimeError('bad')\n")
    _disk_full_on(monkeypatch, "error.txt")
    result = inprocess.run()
    assert result.ret == 1, result.output
    assert "is full" in result.output
    (record,) = result.records()
    assert record["status"] == "failed" and record["error"]["message"] == "bad"
    (run_dir,) = result.run_dirs()
    assert not (run_dir / "error.txt").exists()


def test_i10_03_the_run_protocol_returns_the_report_it_logged(inprocess, project):
    _counted(project)
    seen = project.root / "seen"
    project.write(
        "conftest.py",
        f"""
        import xprun

        @xprun.hookimpl(wrapper=True)
        def xprun_run_protocol(run):
            report = yield
            open({str(seen)!r}, "a").write(f"{{report.status}}\\n")
            return report
        """,
    )
    assert inprocess.run().ret == 0
    assert inprocess.run("-k", "i=0").ret == 0
    assert seen.read_text().split("\n") == ["complete", "complete", "cached", ""]


def test_i10_03_a_full_disk_while_claiming_fails_the_run_and_starts_no_other(
    inprocess, project, monkeypatch
):
    executions = _counted(project)
    tried: list[int] = []

    def full(run_dir, attempt, fresh=False):
        tried.append(attempt)
        raise OSError(errno.ENOSPC, "No space left on device", str(run_dir))

    monkeypatch.setattr(store.Claim, "try_create", staticmethod(full))
    result = inprocess.run()
    assert result.ret == 1, result.output
    assert "1 failed" in result.output and "stopped launching runs" in result.output
    assert "is full" in result.output and tried == [1]
    assert not executions.exists()


def test_i10_03_a_run_claimed_by_another_launcher_after_the_state_check_runs_elsewhere(
    inprocess, project, monkeypatch
):
    # In-process: the other launcher's claim lands between the state check and ours.
    executions = _counted(project)
    real = store.acquire

    def another_launcher_first(run_dir, clock, heartbeat):
        run_dir.mkdir(parents=True, exist_ok=True)
        owner = {"host": "otherhost", "machine": "another-boot", "pid": 4242, "token": "t"}
        (run_dir / "claim.1").write_text(json.dumps(owner))
        return real(run_dir, clock, heartbeat)

    monkeypatch.setattr(store, "acquire", another_launcher_first)
    seen = project.root / "seen"
    project.write(
        "conftest.py",
        f"""
        import xprun

        @xprun.hookimpl
        def xprun_run_logreport(report):
            open({str(seen)!r}, "a").write(report.longrepr + "\\n")
        """,
    )
    result = inprocess.run("-k", "i=0")
    assert result.ret == 0, result.output
    assert "1 running elsewhere" in result.output
    assert "running elsewhere: pid 4242 on otherhost, attempt 1" in seen.read_text()
    assert not executions.exists()


def test_i10_03_a_cached_run_is_reported_without_claiming_it(inprocess, project, monkeypatch):
    _counted(project)
    assert inprocess.run().ret == 0

    def read_only(run_dir, attempt, fresh=False):
        raise OSError(errno.EROFS, "Read-only file system", str(run_dir))

    monkeypatch.setattr(store.Claim, "try_create", staticmethod(read_only))
    result = inprocess.run()  # e.g. the log dir mounted read-only to show results
    assert result.ret == 0, result.output
    assert "2 cached" in result.output


def test_i10_03_a_recovered_record_is_written_durably(inprocess, project, monkeypatch):
    _counted(project)
    real = store.write_json_atomic

    def crash_at_final_record(path, obj, durable=False, **text):
        if os.path.basename(path) == "run.json" and obj.get("status") == "complete":
            raise _Crash
        real(path, obj, durable, **text)

    with monkeypatch.context() as patch:
        patch.setattr(store, "write_json_atomic", crash_at_final_record)
        with pytest.raises(_Crash):
            inprocess.run("-k", "i=0")
    durable: list[tuple[str, bool]] = []

    def spy(path, obj, durable_=False, **kwargs):
        durable.append((obj.get("status"), kwargs.get("durable", durable_)))
        real(path, obj, kwargs.get("durable", durable_))

    monkeypatch.setattr(store, "write_json_atomic", spy)
    result = inprocess.run("-k", "i=0")
    assert result.ret == 0, result.output
    assert result.records()[0]["recovered"] is True
    assert durable == [("complete", True)]


def test_i10_03_a_failed_run_is_not_taken_for_a_full_disk_and_the_sweep_goes_on(inprocess, project):
    project.write(
        "xp_half.py",
        """
        import xprun

        @xprun.grid(i=[0, 1])
        def xp_half(config):
            if config.i == 0:
                raise OSError(5, "Input/output error")  # an OSError, but not ENOSPC
            return config.i
        """,
    )
    result = inprocess.run()
    assert result.ret == 1, result.output
    assert "1 complete, 1 failed" in result.output
    assert "full" not in result.output and "stopped launching" not in result.output


def test_i10_03_an_experiment_that_hits_a_full_disk_stops_the_sweep(inprocess, project):
    project.write(
        "xp_full.py",
        """
        import xprun

        @xprun.grid(i=[0, 1])
        def xp_full(config):
            raise OSError(28, "No space left on device")
        """,
    )
    result = inprocess.run()
    assert result.ret == 1, result.output
    assert "is full" in result.output and "stopped launching runs" in result.output
    assert len(result.records()) == 1  # the second run never started


# -- the skip check when a plugin takes part, and what a lost claim says --------------------------


def test_i10_mut_a_complete_run_is_cached_by_the_run_protocol_when_a_conftest_skips_too(
    inprocess, project
):
    # With a conftest implementing xprun_run_skip, the session's batched "complete, so cached"
    # shortcut is not taken: the built-in skip check of the run protocol decides.
    executions = _counted(project)
    project.write("conftest.py", "def xprun_run_skip(run, context):\n    return None\n")
    assert inprocess.run().ret == 0
    cached = inprocess.run()
    assert cached.ret == 0 and "2 cached" in cached.output, cached.output
    assert executions.read_text() == "01"


def test_i10_mut_a_claim_removed_during_the_run_is_reported_taken_over_not_a_heartbeat(
    inprocess, project
):
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\nheartbeat_interval = 60\nheartbeat_timeout = 600\n',
    )  # no heartbeat during the run: the claim is lost by its removal alone
    project.write(
        "xp_gone.py",
        "def xp_gone(run_dir):\n"
        "    for claim in run_dir.glob('claim.*'):\n"
        "        claim.unlink()\n"
        "    return 1\n",
    )
    result = inprocess.run()
    assert result.ret == 1, result.output
    assert "lost claim: attempt 1 of this run was taken over by another launcher" in result.output
    assert "heartbeat of attempt" not in result.output


def test_i10_mut_a_failed_heartbeat_is_what_the_lost_claim_report_names(
    inprocess, project, monkeypatch
):
    # In-process: a heartbeat failing during the run cannot be timed against it from outside.
    _counted(project)

    def heartbeat_failed(self):
        self.heartbeat_error = OSError(errno.EIO, "Input/output error", str(self.path))
        self.lost = True
        return False

    monkeypatch.setattr(store.Claim, "holds", heartbeat_failed)
    result = inprocess.run("-k", "i=0")
    assert result.ret == 1, result.output
    assert "the heartbeat of attempt 1 of this run could not be written" in result.output
    assert "Input/output error" in result.output and "taken over" not in result.output


def test_i11_mut_the_built_in_skip_check_answers_cached_for_a_complete_run(inprocess, project):
    # The hook's contract (hookspec.py): xprun_run_skip returns the report of a run that must
    # not start, so a plugin wrapping it sees "cached" for a complete run, and no claim is
    # taken to find that out.
    _counted(project)
    seen = project.root / "seen"
    project.write(
        "conftest.py",
        "import xprun\n\n"
        "@xprun.hookimpl(wrapper=True)\n"
        "def xprun_run_skip(run, context):\n"
        "    report = yield\n"
        f"    with open({str(seen)!r}, 'a') as out:\n"
        "        out.write(f'{None if report is None else report.status}\\n')\n"
        "    return report\n",
    )
    assert inprocess.run().ret == 0
    assert seen.read_text().split() == ["None", "None"]  # new runs: nothing to skip
    cached = inprocess.run()
    assert cached.ret == 0 and "2 cached" in cached.output, cached.output
    assert seen.read_text().split() == ["None", "None", "cached", "cached"]


PHASED = """
import time
import xprun


@xprun.fixture
def slow():
    time.sleep(0.05)
    yield 1
    time.sleep(0.08)


def xp_phased(slow):
    time.sleep(0.11)
    return {"v": slow}


def xp_failing_setup(broken):
    return {}


@xprun.fixture
def broken():
    time.sleep(0.05)
    raise RuntimeError("setup fails")
"""


def test_i11_mut_each_phase_is_timed_where_the_run_executes(inprocess, project):
    # The run protocol times setup, call and teardown itself (--durations, --report-log read
    # them): each phase's own seconds, a phase that raises timed too, none that did not run.
    project.write("xp_phased.py", PHASED)
    result = inprocess.run("-q", "--report-log", "log.jsonl")
    assert result.ret == 1, result.output
    lines = [json.loads(line) for line in (project.root / "log.jsonl").read_text().splitlines()]
    phases = {line["nodeid"].split("::")[-1]: line["phases"] for line in lines if "phases" in line}
    ok, failed = phases["xp_phased"], phases["xp_failing_setup"]
    assert list(ok) == ["setup", "call", "teardown"]
    assert 0.05 <= ok["setup"] < 5 and 0.11 <= ok["call"] < 5 and 0.08 <= ok["teardown"] < 5
    assert list(failed) == ["setup", "teardown"]  # the call never ran
    assert 0.05 <= failed["setup"] < 5 and 0 <= failed["teardown"] < 5


def test_i11_mut_a_timed_out_run_reports_its_limit_not_a_traceback(inprocess, project):
    # A time limit's frame says nothing (where the timer happened to stop): the report and
    # error.txt give its message only, unless --full-trace.
    project.write("xp_slow.py", "import time\n\ndef xp_slow():\n    time.sleep(5)\n")
    result = inprocess.run("-q", "--timeout", "0.2")
    assert result.ret == 1, result.output
    (run_dir,) = result.run_dirs()
    text = (run_dir / "error.txt").read_text()
    assert text.startswith("RunTimeout: the run took longer than its time limit of 0.2 s")
    assert "Traceback" not in text and "time.sleep" not in result.output
    full = inprocess.run("-q", "--timeout", "0.2", "--full-trace")
    assert full.ret == 1
    assert "Traceback" in (run_dir / "error.txt").read_text()


def test_i11_mut_running_an_existing_run_again_marks_its_experiment_folder_changed(
    inprocess, project
):
    # The Reader's index trusts the experiment folder's times (store.mark_changed): a run
    # directory that existed before this attempt must touch them; a new one changes them
    # anyway (it is a new entry of the folder).
    _counted(project)
    assert inprocess.run("-k", "i=0").ret == 0
    (run_dir,) = inprocess.log_dir.glob("xp_count.*/*")
    folder = run_dir.parent
    os.utime(folder, (1000.0, 1000.0))
    assert inprocess.run("-k", "i=0", "--force").ret == 0
    assert folder.stat().st_mtime > 1000.0


def test_i11_mut_a_failed_heartbeat_with_no_claim_left_is_not_called_a_takeover(
    inprocess, project, monkeypatch
):
    # The heartbeat failed and no claim is there at all (nobody made one after ours): what
    # the report names is the heartbeat, not another launcher.
    _counted(project)

    def heartbeat_failed_and_claim_gone(self):
        self.heartbeat_error = OSError(errno.EIO, "Input/output error", str(self.path))
        self.lost = True
        os.unlink(self.path)
        return False

    monkeypatch.setattr(store.Claim, "holds", heartbeat_failed_and_claim_gone)
    result = inprocess.run("-k", "i=0")
    assert result.ret == 1, result.output
    assert "the heartbeat of attempt 1 of this run could not be written" in result.output
    assert "taken over" not in result.output
