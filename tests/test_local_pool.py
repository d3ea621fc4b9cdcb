"""The local scheduler: a pool of worker processes (-n), worker death, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import time

from conftest import git_commit_all
from foreground import FOREGROUND

POOL_XP = """
import os
import time
import xprun

@xprun.grid(i=list(range(20)))
def xp_pool(config, run):
    if config.i == 7:
        with open({pidfile!r}, "w") as f:
            f.write(str(os.getpid()))
        time.sleep({slow})
    time.sleep(0.1)
    return {{"i": config.i, "pid": os.getpid()}}
"""


def test_twenty_runs_use_both_workers_and_a_killed_worker_leaves_its_run_interrupted(project):
    pidfile = project.root / "worker.pid"
    project.write("xp_pool.py", POOL_XP.format(pidfile=str(pidfile), slow=60))
    git_commit_all(project.root)
    proc = project.popen("-n", "2")
    deadline = time.time() + 60
    while not pidfile.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    worker_pid = int(pidfile.read_text())
    os.kill(worker_pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert "19 complete, 1 interrupted" in out, out
    assert f"worker pid {worker_pid} died (signal SIGKILL)" in out
    records = {r["nodeid"]: r for r in project.records()}
    assert len(records) == 20
    pids = set()
    for run_dir in project.run_dirs():
        record = json.loads((run_dir / "run.json").read_text())
        if record["status"] == "complete":
            pids.add(json.loads((run_dir / "outcome.json").read_text())["pid"])
    assert len(pids) >= 2  # both workers (and the replacement) ran runs
    assert os.getpid() not in pids
    listing = project.run("--collect-only", "-q")
    states = [line.split()[0] for line in listing.stdout.splitlines() if "::" in line]
    assert states.count("interrupted") == 1 and states.count("complete") == 19

    project.write("xp_pool.py", POOL_XP.format(pidfile=str(pidfile), slow=0))
    git_commit_all(project.root, "fast now")
    again = project.run("-n", "2")
    assert again.returncode == 0, again.output
    assert "1 complete, 19 cached" in again.stdout
    assert {r["status"] for r in project.records()} == {"complete"}
    assert max(r["attempt"] for r in project.records()) == 2


def test_ctrl_c_stops_workers_cleanly(project):
    started = project.root / "started"
    project.write(
        "xp_wait.py",
        f"""
        import pathlib, time
        import xprun

        @xprun.fixture
        def marker():
            yield
            with open({str(project.root / "teardowns")!r}, "a") as f:
                f.write("x")

        @xprun.grid(i=[1, 2, 3, 4])
        def xp_wait(config, marker):
            pathlib.Path({str(started)!r} + str(config.i)).write_text("")
            time.sleep(60)
        """,
    )
    git_commit_all(project.root)
    proc = project.popen("-n", "2", start_new_session=True, **FOREGROUND)
    deadline = time.time() + 60
    while len(list(project.root.glob("started*"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    statuses = sorted(r["status"] for r in project.records())
    assert statuses == ["interrupted", "interrupted"]
    assert (project.root / "teardowns").read_text() == "xx"


def test_pool_runs_from_a_snapshot_of_the_code(project):
    project.write("helper.py", "VALUE = 'committed'\n")
    project.write(
        "xp_snap.py", "import helper\n\ndef xp_snap():\n    return {'value': helper.VALUE}\n"
    )
    git_commit_all(project.root)
    project.write("helper.py", "VALUE = 'edited, not committed'\n")
    result = project.run("-n", "1")
    assert result.returncode == 0, result.output
    (run_dir,) = project.run_dirs()
    assert json.loads((run_dir / "outcome.json").read_text()) == {"value": "edited, not committed"}
    record = json.loads((run_dir / "run.json").read_text())
    assert record["git"]["snapshot_dirty"] is True and record["scheduler"] == "local"
    snapshot = project.root / ".xprun" / "snapshots" / record["git"]["snapshot"]
    assert (snapshot / "helper.py").read_text() == "VALUE = 'edited, not committed'\n"


def test_pool_without_git_runs_from_the_work_tree_and_says_so(project):
    project.write("xp_plain.py", "def xp_plain():\n    return {'ok': 1}\n")
    result = project.run("-n", "2")
    assert result.returncode == 0, result.output
    assert "running from the work tree" in result.stderr
    assert project.records()[0]["status"] == "complete"


def test_bad_worker_count_is_a_usage_error(project):
    project.write("xp_plain.py", "def xp_plain():\n    pass\n")
    result = project.run("-n", "zero")
    assert result.returncode == 4 and "-n must be" in result.stderr
