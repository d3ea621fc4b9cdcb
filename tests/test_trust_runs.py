"""Trust in run records (issue 8, run protocol): no result lost, overwritten, mixed or wrongly
reused.  Real processes through the CLI; in-process fault injection only where a real crash or
race cannot be timed (each such test says why)."""

from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import xprun
from xprun import store

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)


def run_dir_of(project) -> Path:
    (run_dir,) = project.run_dirs()
    return run_dir


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


# -- item 2: --force starts clean --------------------------------------------------------------

FORCED = """
import xprun

@xprun.config({{"epochs": 8}})
def xp_fit(config, logger):
    print("attempt output")
    for epoch in range(config.epochs):
        logger.log_metrics({{"loss": 1.0 / (epoch + 1)}})
    logger.save_checkpoint({{"epoch": config.epochs}})
    return {{"loss": 1.0 / config.epochs}}
"""


def test_i8_02_force_starts_clean_and_keeps_the_replaced_attempt_aside(project):
    project.write("xp_fit.py", FORCED.format())
    assert project.run().returncode == 0
    first = project.run("--force")
    assert first.returncode == 0, first.output
    run_dir = run_dir_of(project)
    metrics = [json.loads(line) for line in lines(run_dir / "metrics" / "metrics.jsonl")]
    assert len(metrics) == 8  # not 16: nothing of the replaced attempt is mixed in
    assert {m["attempt"] for m in metrics} == {2}
    assert [m["step"] for m in metrics] == list(range(8))  # steps start over, too
    assert lines(run_dir / "stdout.log") == ["attempt output"]
    assert len(list((run_dir / "checkpoints").glob("ckpt-*"))) == 1
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "complete" and record["attempt"] == 2
    runs = xprun.Reader(project.log_dir).runs()
    assert len(runs.metrics()) == 8
    # The replaced attempt is kept aside, whole, never read as the run's own.
    aside = run_dir / "previous" / "1"
    assert json.loads((aside / "run.json").read_text())["attempt"] == 1
    assert len(lines(aside / "metrics" / "metrics.jsonl")) == 8
    assert json.loads((aside / "outcome.json").read_text()) == {"loss": 0.125}


# -- item 6: a failing teardown keeps a finished result ---------------------------------------


def test_i8_06_teardown_error_keeps_the_result_and_is_reported(project):
    executions = project.root / "executions"
    project.write(
        "xp_td.py",
        f"""
        import xprun

        @xprun.fixture
        def database():
            yield "db"
            raise ConnectionError("could not close the database")

        def xp_td(database):
            with open({str(executions)!r}, "a") as f:
                f.write("x")
            return {{"score": 1}}
        """,
    )
    result = project.run()
    assert result.returncode == 1, result.output  # an error, as pytest reports one
    assert "1 complete, 1 teardown error" in result.stdout
    assert "could not close the database" in result.stdout
    run_dir = run_dir_of(project)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "complete"
    assert record["teardown_error"] == {
        "type": "ConnectionError",
        "message": "could not close the database",
    }
    assert json.loads((run_dir / "outcome.json").read_text()) == {"score": 1}
    assert "could not close the database" in (run_dir / "error.txt").read_text()
    again = project.run()
    assert again.returncode == 0 and "1 cached" in again.stdout
    assert executions.read_text() == "x"  # never executed again


# -- item 8 (and 23, recovery): metrics logged before return survive a kill --------------------


def test_i8_08_metrics_logged_before_return_survive_a_kill_and_the_run_is_recovered(project):
    executions = project.root / "executions"
    # The `crash` fixture is set up after the logger, so it is torn down first: the process
    # is SIGKILLed right after the experiment returned, before the logger's own teardown.
    project.write(
        "xp_kill.py",
        f"""
        import os
        import signal
        import xprun

        @xprun.fixture
        def crash(logger):
            yield
            os.kill(os.getpid(), signal.SIGKILL)

        def xp_kill(logger, crash):
            with open({str(executions)!r}, "a") as f:
                f.write("x")
            for step in range(5):
                logger.log_metrics({{"loss": float(step)}})
            return {{"final": 4.0}}
        """,
    )
    killed = project.run(inprocess=False)  # it kills its own launcher: a process of its own
    assert killed.returncode == -signal.SIGKILL, killed.output
    run_dir = run_dir_of(project)
    metrics = [json.loads(line) for line in lines(run_dir / "metrics" / "metrics.jsonl")]
    assert [m["loss"] for m in metrics] == [0.0, 1.0, 2.0, 3.0, 4.0]

    again = project.run()
    assert again.returncode == 0, again.output
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "complete" and record["recovered"] is True
    assert executions.read_text() == "x"  # recovered, not run again
    assert len(lines(run_dir / "metrics" / "metrics.jsonl")) == 5


# -- item 9: SystemExit inside a run is a failed run -------------------------------------------


def test_i8_09_system_exit_in_an_experiment_or_fixture_fails_that_run_and_the_sweep_goes_on(
    project,
):
    project.write(
        "xp_exit.py",
        """
        import sys
        import xprun

        @xprun.fixture
        def guard(config):
            if config.where == "setup":
                sys.exit(0)
            yield
            if config.where == "teardown":
                sys.exit(3)

        @xprun.grid(where=["call", "setup", "teardown", "none"])
        def xp_exit(config, guard):
            if config.where == "call":
                sys.exit(0)
            return {"where": config.where}
        """,
    )
    result = project.run("-v")
    assert result.returncode == 1, result.output
    by_where = {}
    for run_dir in project.run_dirs():
        record = json.loads((run_dir / "run.json").read_text())
        by_where[record["nodeid"].split("where=")[1].rstrip("]")] = (run_dir, record)
    assert set(by_where) == {"call", "setup", "teardown", "none"}  # every run ran
    for where in ("call", "setup"):
        run_dir, record = by_where[where]
        assert record["status"] == "failed" and record["error"]["type"] == "SystemExit"
        assert "SystemExit" in (run_dir / "error.txt").read_text()
        assert not (run_dir / "outcome.json").exists()
    _, record = by_where["teardown"]
    assert record["status"] == "complete" and record["teardown_error"]["type"] == "SystemExit"
    assert by_where["none"][1]["status"] == "complete"
    assert "2 complete, 2 failed, 1 teardown error" in result.stdout


# -- item 11 (and 23, the lost claim race): a taken-over owner records nothing -----------------


def test_i8_11_an_owner_that_lost_its_claim_records_nothing_over_the_new_owner(project):
    # Fault injection from the experiment itself (real files, no mock): while it runs, another
    # launcher "takes over" exactly as store.acquire does after a stale heartbeat — it creates
    # claim.2 and removes claim.1.  A real pause past the timeout is tested with SIGSTOP in
    # test_trust_signals.py; this one pins the race deterministically.
    project.write(
        "xp_lost.py",
        """
        import json
        import os
        import xprun

        def xp_lost(run_dir):
            (run_dir / "claim.2").write_text(json.dumps(
                {"host": "node-9", "machine": "other", "pid": 4242, "attempt": 2,
                 "token": "theirs"}))
            os.unlink(run_dir / "claim.1")
            return {"mine": True}
        """,
    )
    result = project.run()
    assert result.returncode == 1, result.output
    assert "1 lost claim" in result.stdout and "node-9" in result.stdout
    run_dir = run_dir_of(project)
    assert not (run_dir / "outcome.json").exists()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "running" and record["attempt"] == 1  # not marked complete
    assert (run_dir / "claim.2").exists()  # the new owner's claim is not ours to remove


def test_i8_11_a_heartbeat_that_cannot_be_written_is_a_lost_claim(tmp_path):
    # A heartbeat failing with EIO or ESTALE (an NFS server gone) cannot be provoked on a
    # local disk; a claim replaced by a symbolic link loop makes utime fail with ELOOP.
    run_dir = tmp_path / "xp" / "abc"
    heartbeat = store.Heartbeat(0.5, 0.6)
    acquired = store.acquire(run_dir, store.FsClock(tmp_path), heartbeat)
    claim = acquired.claim
    assert claim is not None and claim.holds()
    claim.path.unlink()
    os.symlink(claim.path.name, claim.path)
    claim.touch()  # never raises (the ticker would drop it silently)
    # Within its patience (half the stale timeout) the heartbeat is tried again, but the
    # decisive check already fails: the claim no longer carries the owner's token.
    assert not claim.holds() and claim.lost
    # A heartbeat failing past its patience is a lost claim by itself (the file is fine now).
    acquired = store.acquire(tmp_path / "xp" / "def", store.FsClock(tmp_path), heartbeat)
    claim = acquired.claim
    assert claim is not None and claim.patience == heartbeat.timeout / 2
    claim.path.unlink()
    os.symlink(claim.path.name, claim.path)
    time.sleep(claim.patience)
    claim.touch()
    assert claim.lost and isinstance(claim.heartbeat_error, OSError)


# -- item 12: the decisive records are fsynced -------------------------------------------------


def test_i8_12_outcome_and_final_record_are_fsynced_with_their_directory(project, monkeypatch):
    # In-process: a power loss cannot be simulated, so the fsync calls themselves are observed.
    project.write("xp_sync.py", "def xp_sync():\n    return {'ok': 1}\n")
    synced: list[str] = []
    real_fsync = os.fsync

    def spying_fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spying_fsync)
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("XPRUN_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert xprun.main(["-qq"]) == 0
    run_dir = str(run_dir_of(project))
    names = [Path(p).name for p in synced]
    assert any(n.startswith(".outcome.json.") for n in names), synced
    assert any(n.startswith(".run.json.") for n in names), synced
    assert synced.count(run_dir) >= 2, synced  # the directory after each rename


# -- item 17: a full disk ------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MB tmpfs, unmounted afterwards (skipped where mounting is not permitted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path):
    """Write zeros to ``path`` until its disk is full."""
    with open(path, "wb", buffering=0) as f:
        for size in (65536, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass


FILL = inspect.getsource(fill)  # the experiments fill the disk with the same code


def test_i8_17_a_full_disk_names_the_disk_stops_launching_and_leaves_records_honest(
    project, small_disk
):
    flag = project.root / "fill"
    flag.write_text("")
    project.write("pyproject.toml", f'[tool.xprun]\nlog_dir = "{small_disk / "logs"}"\n')
    project.log_dir = small_disk / "logs"
    project.write("fillup.py", FILL)
    project.write(
        "xp_disk.py",
        f"""
        import os
        import xprun
        from fillup import fill

        @xprun.grid(i=[0, 1, 2])
        def xp_disk(config, run_dir):
            if config.i == 0 and os.path.exists({str(flag)!r}):
                fill({str(small_disk / "filler")!r})
                raise RuntimeError("the experiment failed on a full disk")
            return {{"i": config.i}}
        """,
    )
    result = project.run()
    assert "INTERNAL ERROR" not in result.output, result.output
    assert result.returncode == 1, result.output
    assert f"mounted at {small_disk}" in result.output and "is full" in result.output
    assert "stopped launching runs" in result.output
    assert len(list((small_disk / "logs").glob("xp_disk.*/*"))) == 1  # the rest: not attempted
    listing = project.run("--collect-only")
    states = [line.split()[0] for line in listing.stdout.splitlines() if "::" in line]
    assert "running" not in states and "complete" not in states, listing.stdout
    assert not list((small_disk / "logs").glob("*/*/claim.*"))
    assert not list((small_disk / "logs").rglob("*.tmp"))

    (small_disk / "filler").unlink()
    flag.unlink()
    again = project.run()
    assert again.returncode == 0, again.output
    assert {r["status"] for r in project.records()} == {"complete"}
    assert len(project.records()) == 3


def test_i8_17_a_full_disk_at_claim_time_leaves_no_claim(project, small_disk):
    project.write("pyproject.toml", f'[tool.xprun]\nlog_dir = "{small_disk / "logs"}"\n')
    project.log_dir = small_disk / "logs"
    project.write("xp_full.py", "def xp_full():\n    return 1\n")
    (small_disk / "logs" / "xp_full.xp_full").mkdir(parents=True)
    fill(small_disk / "filler")
    result = project.run()
    assert "INTERNAL ERROR" not in result.output, result.output
    assert result.returncode == 1 and f"mounted at {small_disk}" in result.output
    assert not list((small_disk / "logs").rglob("claim.*"))
    assert not list((small_disk / "logs").rglob("*.tmp"))
    (small_disk / "filler").unlink()
    assert project.run().returncode == 0


def test_i8_17_an_empty_claim_is_not_a_live_owner(project):
    project.write("xp_empty.py", "def xp_empty():\n    return 1\n")
    listing = project.run("--collect-only", "-q")
    digest = next(line.split()[1] for line in listing.stdout.splitlines() if "::" in line)
    run_dir = project.log_dir / "xp_empty.xp_empty" / digest
    run_dir.mkdir(parents=True)
    claim = run_dir / "claim.1"
    claim.write_bytes(b"")  # what a full disk left between create and write
    then = claim.stat().st_mtime - 30  # well within the 60 s heartbeat timeout
    os.utime(claim, (then, then))
    result = project.run()
    assert result.returncode == 0, result.output
    assert "1 complete" in result.stdout
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"


# -- issue 9 item 6/7: exceptions, outcomes and temporaries ------------------------------------


def test_i9_06_an_exception_whose_str_raises_is_a_recorded_failed_run(project):
    project.write(
        "xp_str.py",
        """
        class Weird(Exception):
            def __str__(self):
                raise ValueError("no text for you")

        def xp_str():
            raise Weird()
        """,
    )
    result = project.run()
    assert "INTERNAL ERROR" not in result.output
    assert result.returncode == 1, result.output
    (record,) = project.records()
    assert record["status"] == "failed" and record["error"]["type"] == "Weird"
    assert "__str__ raised ValueError" in record["error"]["message"]


def test_i9_06_an_outcome_with_keys_equal_in_json_is_refused(project):
    project.write("xp_keys.py", "def xp_keys():\n    return {1: 'int', '1': 'str'}\n")
    result = project.run()
    assert result.returncode == 1, result.output
    assert "same in JSON" in result.stdout
    (record,) = project.records()
    assert record["status"] == "failed"
    assert not (run_dir_of(project) / "outcome.json").exists()


def test_i9_07_temporary_files_of_killed_writes_are_removed_when_the_run_is_claimed_again(
    project,
):
    marker = project.root / "fail"
    marker.write_text("")
    project.write(
        "xp_tmp.py",
        f"""
        import os

        def xp_tmp():
            if os.path.exists({str(marker)!r}):
                raise RuntimeError("first attempt fails")
            return 1
        """,
    )
    assert project.run().returncode == 1
    run_dir = run_dir_of(project)
    leftovers = [
        run_dir / ".outcome.json.4242.tmp",
        run_dir / "checkpoints" / ".ckpt-00000003.npz.977.tmp",
        run_dir / "artifacts" / "deep" / ".model.pt.31337.tmp",
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 1000)
    keep = run_dir / "artifacts" / "notes.tmp"  # a user's file, not a temporary of xprun
    keep.write_text("mine")
    marker.unlink()
    assert project.run().returncode == 0
    assert not [p for p in leftovers if p.exists()]
    assert keep.read_text() == "mine"


# -- item 23: the untested paths, deterministically --------------------------------------------


def test_i8_23_a_run_completed_by_another_process_before_the_claim_is_reported_cached(
    project, monkeypatch
):
    # In-process: the window between the state check and the claim is microseconds wide; the
    # other process's completion is injected into it by wrapping store.acquire.
    executions = project.root / "executions"
    project.write(
        "xp_race.py",
        f"def xp_race():\n    open({str(executions)!r}, 'a').write('x')\n    return 1\n",
    )
    real_acquire = store.acquire
    finished = {}

    def acquire_after_another_finished(run_dir, clock, heartbeat):
        run_dir.mkdir(parents=True, exist_ok=True)
        finished["record"] = {"format": 1, "status": "complete", "attempt": 1, "by": "other"}
        store.write_json_atomic(run_dir / "outcome.json", {"value": "theirs"})
        store.write_json_atomic(run_dir / "run.json", finished["record"])
        return real_acquire(run_dir, clock, heartbeat)

    monkeypatch.setattr(store, "acquire", acquire_after_another_finished)
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("XPRUN_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert xprun.main(["-qq"]) == 0
    run_dir = run_dir_of(project)
    assert json.loads((run_dir / "run.json").read_text()) == finished["record"]
    assert json.loads((run_dir / "outcome.json").read_text()) == {"value": "theirs"}
    assert not executions.exists()
    assert not list(run_dir.glob("claim.*"))


def test_i8_23_an_internal_error_exits_3_with_the_run_recorded_and_its_claim_released(project):
    project.write("xp_ok.py", "def xp_ok():\n    return {'ok': True}\n")
    project.write(
        "conftest.py",
        """
        import xprun

        @xprun.hookimpl
        def xprun_run_logreport(report):
            raise RuntimeError("a reporting plugin is broken")
        """,
    )
    result = project.run()
    assert result.returncode == 3, result.output
    assert "INTERNAL ERROR" in result.stderr and "a reporting plugin is broken" in result.stderr
    run_dir = run_dir_of(project)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
    assert not list(run_dir.glob("claim.*"))


def test_i8_23_claims_are_published_whole_with_a_token(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    claim = store.Claim.try_create(run_dir, 1)
    assert claim is not None and store.Claim.try_create(run_dir, 1) is None
    owner = json.loads((run_dir / "claim.1").read_text())
    assert owner["token"] == claim.token and owner["pid"] == os.getpid()
    assert uuid.UUID(hex=claim.token)
    assert not list(run_dir.glob(".*.tmp"))
