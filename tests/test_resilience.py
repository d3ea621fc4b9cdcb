"""Run records under kill -9, SIGTERM and concurrent launchers (real processes, real signals)."""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

STEPS = 10

TRAIN = """
import os
import time
import xprun

@xprun.fixture
def marker():
    yield
    with open({teardowns!r}, "a") as f:
        f.write("teardown\\n")

@xprun.grid(i=list(range({runs})))
def xp_train(config, logger, run, marker):
    state = logger.load_checkpoint() or {{"step": 0}}
    for step in range(state["step"], {steps}):
        time.sleep({sleep})
        logger.log_metrics({{"value": config.i * 100 + step}}, step=step)
        logger.save_checkpoint({{"step": step + 1}})
    # The side effect that must happen once per run: O_APPEND of one short line is atomic.
    fd = os.open({executions!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{{run.hash}}\\n".encode())
    os.close(fd)
    return {{"i": config.i, "attempt": run.attempt}}
"""


def setup_training(project, runs, sleep, log_dir=None):
    executions = project.root / "executions.log"
    teardowns = project.root / "teardowns.log"
    project.write(
        "xp_train.py",
        TRAIN.format(
            runs=runs,
            steps=STEPS,
            sleep=sleep,
            executions=str(executions),
            teardowns=str(teardowns),
        ),
    )
    if log_dir is not None:
        project.write(
            "pyproject.toml",
            f'[tool.xprun]\nlog_dir = "{log_dir}"\nheartbeat_interval = 0.2\nheartbeat_timeout = 2.0\n',
        )
        project.log_dir = Path(log_dir)
    return executions, teardowns


def metric_lines(run_dir):
    path = run_dir / "metrics" / "metrics.jsonl"
    good, torn = [], 0
    for line in path.read_text().splitlines():
        try:
            good.append(json.loads(line))
        except ValueError:
            torn += 1
    return good, torn


def fast_log_dir(tmp_path):
    """Runs on a RAM disk when there is one: the moment between the experiment's side effect
    and its saved outcome shrinks to microseconds, so a random kill (almost) never lands there."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path
    path = base / f"xprun-test-{os.getpid()}-{random.randrange(10**9)}"
    return path


def test_sigkill_at_random_moments_then_rerun_executes_each_run_once(project, tmp_path):
    log_dir = fast_log_dir(tmp_path)
    try:
        executions, _ = setup_training(project, runs=30, sleep=0.02, log_dir=str(log_dir))
        rng = random.Random(1234)
        for trial in range(4):
            proc = project.popen("-q")
            # Kill at a random moment while a run is executing (it holds a claim), whatever
            # the machine's load makes the start-up cost.
            deadline = time.monotonic() + 60
            while not any(log_dir.glob("*/*/claim.*")):
                assert proc.poll() is None, f"trial {trial}: the sweep ended before the kill"
                assert time.monotonic() < deadline, "no run started within 60 s"
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.15))
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
            assert proc.returncode == -signal.SIGKILL, f"trial {trial} finished before the kill"
            # A killed run is never left "running": the next look sees it interrupted.
            listing = project.run("--collect-only")
            states = collections.Counter(
                line.split()[0] for line in listing.stdout.splitlines() if "::" in line
            )
            assert states["running"] == 0, listing.stdout
        final = project.run()
        assert final.returncode == 0, final.output
        records = project.records()
        assert len(records) == 30 and {r["status"] for r in records} == {"complete"}
        counts = collections.Counter(executions.read_text().split())
        assert len(counts) == 30 and set(counts.values()) == {1}, counts
        assert max(r["attempt"] for r in records) >= 2  # some runs really were resumed
        for run_dir in project.run_dirs():
            assert not list(run_dir.glob("claim.*"))
            lines, torn = metric_lines(run_dir)
            assert torn == 0
            i = json.loads((run_dir / "outcome.json").read_text())["i"]
            assert {line["step"] for line in lines} == set(range(STEPS))
            assert all(line["value"] == i * 100 + line["step"] for line in lines)
            last = max(line["attempt"] for line in lines)
            last_steps = [line["step"] for line in lines if line["attempt"] == last]
            assert last_steps == list(range(last_steps[0], STEPS))  # resumed, then continued
    finally:
        import shutil

        shutil.rmtree(log_dir, ignore_errors=True)


def test_sigterm_interrupts_tears_down_and_rerun_resumes_from_checkpoint(project):
    executions, teardowns = setup_training(project, runs=1, sleep=0.15)
    proc = project.popen()
    deadline = time.time() + 30
    checkpoints = project.log_dir / "xp_train.xp_train"
    while time.time() < deadline:
        found = list(checkpoints.glob("*/checkpoints/ckpt-*"))
        if found and int(found[-1].name[5:13]) >= 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and proc.returncode == 2, out + err
    (record,) = project.records()
    assert record["status"] == "interrupted" and record["error"]["type"] == "Terminated"
    assert teardowns.read_text() == "teardown\n"
    assert not executions.exists()
    (run_dir,) = project.run_dirs()
    first, _ = metric_lines(run_dir)
    stopped_at = max(line["step"] for line in first)
    assert 2 <= stopped_at < STEPS - 1

    result = project.run()
    assert result.returncode == 0, result.output
    (record,) = project.records()
    assert record["status"] == "complete" and record["attempt"] == 2
    lines, _ = metric_lines(run_dir)
    second = [line["step"] for line in lines if line["attempt"] == 2]
    assert second[0] in (stopped_at, stopped_at + 1)  # continues from the checkpoint...
    assert second[-1] == STEPS - 1 and second == list(range(second[0], STEPS))  # ...not from 0
    assert json.loads((run_dir / "outcome.json").read_text()) == {"i": 0, "attempt": 2}


@pytest.mark.parametrize(("processes", "runs"), [(4, 40)])
def test_concurrent_launchers_execute_each_run_once(project, processes, runs):
    executions, _ = setup_training(project, runs=runs, sleep=0.002)
    procs = [project.popen("-q") for _ in range(processes)]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * processes, outputs
    counts = collections.Counter(executions.read_text().split())
    assert len(counts) == runs and set(counts.values()) == {1}
    records = project.records()
    assert len(records) == runs and {r["status"] for r in records} == {"complete"}
    assert {r["attempt"] for r in records} == {1}
