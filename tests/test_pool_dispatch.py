"""The local pool hands runs out ahead (issue 11, item 5), and keeps every guarantee.

Workers hold the next run before they finish the current one, so none waits on the launcher;
these tests check what that must not change: each run executes at most once (also when a
worker holding runs is killed), results reach the terminal as each run ends, ``-x`` starts
no run a worker was holding, Ctrl-C records only the runs that had started.  Runs block on
files the test creates, so the order of events is set by the test, never by timing.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import threading
import time

from conftest import git_commit_all
from foreground import FOREGROUND

# Each run appends "i pid" to executions.log when it starts, then waits for release<i>
# (when i is in BLOCKING) and fails when i is in FAILING.
BLOCKING_XP = """
import os
import pathlib
import time
import xprun

ROOT = pathlib.Path({root!r})

@xprun.grid(i=list(range({n})))
def xp_block(config):
    with open(ROOT / "executions.log", "a") as f:
        f.write(f"{{config.i}} {{os.getpid()}}\\n")
    (ROOT / f"started{{config.i}}").write_text(str(os.getpid()))
    if config.i in {blocking}:
        deadline = time.time() + 300
        while not (ROOT / f"release{{config.i}}").exists() and time.time() < deadline:
            time.sleep(0.02)
    if config.i in {failing}:
        raise RuntimeError("failing on purpose")
    time.sleep({sleep})
    return {{"i": config.i, "pid": os.getpid()}}
"""


def write_xp(project, n: int, blocking=(), failing=(), sleep: float = 0.0) -> None:
    project.write(
        "xp_block.py",
        BLOCKING_XP.format(
            root=str(project.root), n=n, blocking=list(blocking), failing=list(failing), sleep=sleep
        ),
    )
    git_commit_all(project.root)


def wait_for(predicate, proc, what: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"xprun exited ({proc.returncode}) before {what}:\n{out}{err}")
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def executions(project) -> list[int]:
    path = project.root / "executions.log"
    if not path.exists():
        return []
    return sorted(int(line.split()[0]) for line in path.read_text().splitlines())


def test_i11_05_a_worker_starts_its_next_run_while_the_launcher_is_stopped(project):
    # Fails on the old pool: a worker asked the launcher for each next run and waited.
    write_xp(project, 4, blocking=[0])
    proc = project.popen("-n", "1")
    try:
        wait_for(lambda: (project.root / "started0").exists(), proc, "run 0 to start")
        os.kill(proc.pid, signal.SIGSTOP)  # the launcher alone: its worker goes on
        (project.root / "release0").write_text("")
        wait_for(lambda: (project.root / "started1").exists(), proc, "run 1 to start", 30)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert "4 complete" in out
    assert executions(project) == [0, 1, 2, 3]


def test_i11_05_each_run_is_reported_as_it_ends_even_when_handed_out_in_batches(project):
    # One worker holds runs 0..3 a few at a time; each blocks until the test releases it.
    # Run i's line must reach the terminal while run i+1 is still blocked: reported as it
    # ends, not when the worker's batch is done.
    write_xp(project, 4, blocking=[0, 1, 2, 3])
    proc = project.popen("-n", "1", "-v")
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout])
    reader.start()
    seen: list[str] = []

    def reported(i: int) -> bool:
        while not lines.empty():
            seen.append(lines.get())
        return any(f"[i={i}]" in line and "COMPLETE" in line for line in seen)

    try:
        for i in range(4):
            wait_for(lambda i=i: (project.root / f"started{i}").exists(), proc, f"run {i}")
            assert not reported(i)
            (project.root / f"release{i}").write_text("")
            wait_for(lambda i=i: reported(i), proc, f"run {i} reported")
            assert not any(f"[i={i + 1}]" in line for line in seen)  # still blocked
    finally:
        for i in range(4):
            (project.root / f"release{i}").write_text("")
        proc.wait(timeout=120)
        reader.join()
    assert proc.returncode == 0, "".join(seen) + proc.stderr.read()
    done = [next(i for i in range(4) if f"[i={i}]" in line) for line in seen if "COMPLETE" in line]
    assert done == [0, 1, 2, 3]


def test_i11_05_a_worker_killed_mid_batch_loses_no_run_and_runs_none_twice(project):
    # The killed worker holds run 5 (started, blocked) and the run handed to it after: run 5
    # is reported interrupted, the other goes to another worker; no run executes twice.
    write_xp(project, 12, blocking=[5], sleep=0.05)
    proc = project.popen("-n", "2")
    started = project.root / "started5"
    wait_for(started.exists, proc, "run 5 to start")
    wait_for(lambda: started.read_text() != "", proc, "run 5's pid")
    pid = int(started.read_text())
    os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert "11 complete, 1 interrupted" in out, out
    assert f"worker pid {pid} died (signal SIGKILL)" in out
    assert executions(project) == list(range(12))  # each run once, the killed one included
    records = project.records()
    assert len(records) == 12
    assert {r["attempt"] for r in records} == {1}
    assert sorted(r["status"] for r in records)[:11] == ["complete"] * 11
    killed = next(r for r in records if r["status"] != "complete")
    assert killed["nodeid"].endswith("[i=5]"), killed["nodeid"]
    listing = project.run("--collect-only", "-q")  # its owner is gone: it reads interrupted
    states = [line.split()[0] for line in listing.stdout.splitlines() if "::" in line]
    assert sorted(states) == ["complete"] * 11 + ["interrupted"], listing.stdout


def test_i11_05_exitfirst_starts_no_run_a_worker_was_holding(project):
    # Run 0 fails while its worker already holds run 1: with -x, run 1 never starts.
    write_xp(project, 4, blocking=[0], failing=[0])
    proc = project.popen("-n", "1", "-x")
    wait_for(lambda: (project.root / "started0").exists(), proc, "run 0 to start")
    (project.root / "release0").write_text("")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert "1 failed" in out and "complete" not in out.splitlines()[-1], out
    assert executions(project) == [0]
    assert [r["status"] for r in project.records()] == ["failed"]


def test_i11_05_ctrl_c_records_only_the_runs_that_started(project):
    # The worker holds runs 0 and 1; run 0 is interrupted, run 1 was never started: it is
    # neither recorded nor reported, and runs on the next launch.
    write_xp(project, 3, blocking=[0])
    proc = project.popen("-n", "1", start_new_session=True, **FOREGROUND)
    wait_for(lambda: (project.root / "started0").exists(), proc, "run 0 to start")
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, out + err
    assert "1 interrupted" in out and "failed" not in out, out
    assert executions(project) == [0]
    assert [r["status"] for r in project.records()] == ["interrupted"]
    (project.root / "release0").write_text("")
    again = project.run("-n", "1")
    assert again.returncode == 0, again.output
    assert "3 complete" in again.stdout
    assert executions(project) == [0, 0, 1, 2]
    outcome = json.loads((project.run_dirs()[0] / "outcome.json").read_text())
    assert outcome["pid"] != os.getpid()


def test_i11_05_a_worker_spawned_before_the_spec_exits_cleanly_without_one(project):
    # The pool starts workers before the snapshot: when the snapshot is refused (a module
    # the launcher imported is missing from it), they get no spec and exit, and nothing runs.
    project.write(
        "xp_needs.py", "import helper\n\ndef xp_needs():\n    return {'v': helper.VALUE}\n"
    )
    git_commit_all(project.root)
    with (project.root / ".gitignore").open("a") as f:
        f.write("helper.py\n")
    project.write("helper.py", "VALUE = 1\n")  # ignored: imported, not in the snapshot
    proc = project.popen("-n", "2")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, out + err
    assert "helper.py" in err and "ignored by Git" in err
    assert project.records() == []
    assert "Traceback" not in err
