"""Issue 9 item 4 on the launcher's side: a damaged or hostile run directory never hangs,
crashes or misleads ``xprun`` itself (the Reader's side is in test_trust_reader.py).

Each case damages a real run directory left by a real sweep, then launches again; a hang
shows up as the subprocess timeout, a crash as exit 3 / a traceback.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

import xprun

# xprun launched in the test's process (tests/launch.py), but for the launches on damaged runs:
# their hang shows up as the subprocess's timeout, which an in-process launch cannot enforce.
pytestmark = pytest.mark.inprocess

EXPERIMENT = """
import xprun

@xprun.grid(k=[1, 2, 3, 4, 5, 6])
@xprun.config({"k": 0})
def xp_a(config):
    return {"k": config.k}
"""


def _sweep(project):
    project.write("xp_a.py", EXPERIMENT)
    first = project.run()
    assert first.returncode == 0, first.output
    dirs = project.run_dirs()
    assert len(dirs) == 6
    return dirs


def _record(run_dir):
    return json.loads((run_dir / "run.json").read_text())


def test_i9_04_fifos_and_odd_entries_in_run_dirs_neither_hang_nor_crash_a_launch(project):
    dirs = _sweep(project)
    fifo_record, fifo_claim, dir_claim, odd_claim, bad_attempt, healthy = dirs
    (fifo_record / "run.json").unlink()
    os.mkfifo(fifo_record / "run.json")  # a launch that reads it would block forever
    os.mkfifo(fifo_claim / "claim.1")
    (dir_claim / "claim.2").mkdir()
    (odd_claim / "claim.\u00b2").write_text("{}")  # isdigit() but not int()
    damaged = {**_record(bad_attempt), "status": "failed", "attempt": "abc"}
    (bad_attempt / "run.json").write_text(json.dumps(damaged))
    os.mkfifo(project.log_dir / ".xprun-clock")

    again = project.run("-v", timeout=60, inprocess=False)
    assert again.returncode == 0, again.output
    assert "INTERNAL ERROR" not in again.output and "Traceback" not in again.output
    # A record that cannot be trusted is replaced by a real one; healthy runs stay cached.
    for run_dir in (fifo_record, bad_attempt):
        assert _record(run_dir)["status"] == "complete"
    assert "4 cached" in again.output, again.output  # the four whose records are intact
    assert _record(healthy)["attempt"] == 1


def test_i9_04_the_reader_and_status_survive_a_fifo_clock_file(project):
    _sweep(project)
    os.mkfifo(project.log_dir / ".xprun-clock")
    shown = project.run("show", timeout=60, inprocess=False)
    assert shown.returncode == 0, shown.output
    assert len(xprun.Reader(project.log_dir).to_pandas()) == 6
    status = project.run("status", timeout=60, inprocess=False)
    assert status.returncode == 0, status.output


def test_i8_09_sys_exit_in_a_session_fixture_teardown_is_its_error_not_the_end(project):
    project.write(
        "conftest.py",
        """
        import sys
        import xprun

        @xprun.fixture(scope="session")
        def resource():
            yield 1
            sys.exit(0)

        @xprun.fixture(scope="session")
        def other():
            yield 2
            open("other_closed.txt", "w").close()
        """,
    )
    project.write("xp_a.py", "def xp_a(other, resource):\n    return {'r': resource}\n")
    result = project.run()
    assert result.returncode == 0, result.output
    assert "error in session fixture teardown" in result.stderr
    assert "SystemExit" in result.stderr
    assert (project.root / "other_closed.txt").exists()  # the other teardown still ran
    assert "1 complete" in result.stdout  # the session reported its summary


# -- found by the adversarial pass after the fixes ------------------------------------------------


def test_i9_05_a_broken_link_as_a_run_or_experiment_folder_fails_that_run_only(project):
    project.write("xp_a.py", EXPERIMENT.replace("[1, 2, 3, 4, 5, 6]", "[1, 2]"))
    assert project.run().returncode == 0
    linked, other = project.run_dirs()
    shutil.rmtree(linked)
    linked.symlink_to("/nonexistent-disk/" + linked.name)  # as after an unmount
    other_record = _record(other)
    result = project.run(timeout=60, inprocess=False)
    assert result.returncode == 1, result.output
    assert "INTERNAL ERROR" not in result.output
    assert str(linked) in result.output and "symbolic link" in result.output
    assert "1 failed" in result.output and "1 cached" in result.output
    assert _record(other) == other_record
    # The experiment folder itself a link loop: each run fails, named; no traceback.
    folder = linked.parent
    shutil.rmtree(folder)
    folder.symlink_to(folder)
    looped = project.run(timeout=60, inprocess=False)
    assert looped.returncode == 1, looped.output
    assert "INTERNAL ERROR" not in looped.output and "2 failed" in looped.output


def test_i9_04_a_fifo_metrics_file_fails_the_run_instead_of_hanging_it(project):
    project.write(
        "xp_m.py",
        "def xp_m(logger, run):\n"
        "    if run.attempt == 1:\n"
        "        raise RuntimeError('first attempt fails')\n"
        "    logger.log_metrics({'loss': 1.0})\n"
        "    logger.flush()\n"
        "    return {}\n",
    )
    assert project.run().returncode == 1
    (run_dir,) = project.run_dirs()
    (run_dir / "metrics").mkdir(exist_ok=True)
    os.mkfifo(run_dir / "metrics" / "metrics.jsonl")
    result = project.run(timeout=60, inprocess=False)
    assert result.returncode == 1, result.output
    assert "metrics.jsonl is not a regular file" in result.output
    assert _record(run_dir)["status"] == "failed"


def test_i9_07_an_outcome_whose_keys_make_one_column_twice_is_refused(project):
    project.write("xp_o.py", "def xp_o():\n    return {'val.loss': 0.5, 'val': {'loss': 0.4}}\n")
    result = project.run()
    assert result.returncode == 1, result.output
    assert "outcome.val.loss" in result.output
    (run_dir,) = project.run_dirs()
    assert _record(run_dir)["status"] == "failed"
    assert not (run_dir / "outcome.json").exists()
    frame = xprun.Reader(project.log_dir).to_pandas()
    assert list(frame["status"]) == ["failed"]  # shown, not skipped as damaged


def test_i8_11_a_step_keeps_the_latest_attempts_line_whatever_the_file_order(project):
    """An owner that lost its claim may append its older attempt's lines after the new
    owner's (reproduced with SIGSTOP by hand); the Reader must not let them win."""
    project.write(
        "xp_s.py",
        "def xp_s(logger):\n"
        "    for step in range(4):\n"
        "        logger.log_metrics({'loss': float(step)}, step=step)\n"
        "    return {}\n",
    )
    assert project.run().returncode == 0
    (run_dir,) = project.run_dirs()
    path = run_dir / "metrics" / "metrics.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    newest = max(line["attempt"] for line in lines)
    stale = {**lines[1], "attempt": newest - 1, "loss": 999.0}
    with open(path, "a") as f:
        f.write(json.dumps(stale) + "\n")
    metrics = xprun.Reader(project.log_dir).metrics()
    assert list(metrics["loss"]) == [0.0, 1.0, 2.0, 3.0]
    summary = xprun.Reader(project.log_dir).groupby("status").agg(top=("metrics.loss.max", "max"))
    assert list(summary["top"]) == [3.0]
