"""SLURM, for real: a single-node cluster started by .ci/start-slurm.sh.

Without sbatch these tests skip; under CI=true a missing cluster fails them instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
from conftest import git_commit_all


def _cluster_up() -> bool:
    if not shutil.which("sbatch"):
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    return "UP" in ping.stdout


@pytest.fixture(scope="module")
def slurm():
    if not _cluster_up():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no SLURM cluster answers: .ci/run must start it")
        pytest.skip("no SLURM cluster here (run .ci/start-slurm.sh)")


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def job_records(project):
    return [
        json.loads(p.read_text()) for p in sorted(project.log_dir.glob(".xprun-jobs/*/job.json"))
    ]


def completed(project, count):
    return lambda: sum(r["status"] == "complete" for r in project.records()) == count


SWEEP = """
import xprun
from helpers import VERSION

@xprun.grid(a=[1, 2, 3], b=[10, 20, 30, 40])
def xp_cluster(config, run):
    return {"sum": config.a + config.b, "version": VERSION, "attempt": run.attempt}
"""


def test_sweep_is_one_array_runs_from_the_snapshot_and_is_not_submitted_twice(
    slurm, project, tmp_path
):
    calls = tmp_path / "sbatch-calls.log"
    wrapper = tmp_path / "bin" / "sbatch"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {shutil.which("sbatch")} "$@"\n')
    wrapper.chmod(0o755)
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\n[tool.xprun.slurm]\nsbatch_args = ["--hold"]\n',
    )
    project.write("helpers.py", "VERSION = 'as submitted'\n")
    project.write("xp_cluster.py", SWEEP)
    git_commit_all(project.root)
    env = project.with_path(wrapper.parent)
    submit = project.run("--scheduler", "slurm", env=env)
    assert submit.returncode == 0, submit.output
    assert "12 submitted" in submit.stdout
    lines = calls.read_text().splitlines()
    assert len(lines) == 1 and "--array=0-11" in lines[0] and "--signal=B:USR2@120" in lines[0]
    (job,) = job_records(project)
    assert len(job["job_ids"]) == 1 and len(job["runs"]) == 12

    # Edit the code while the jobs wait in the queue: they must run what was submitted.
    project.write("helpers.py", "VERSION = 'edited after submission'\n")
    again = project.run("--scheduler", "slurm", env=env)
    assert again.returncode == 0 and "12 running elsewhere" in again.stdout, again.stdout
    assert len(calls.read_text().splitlines()) == 1  # still queued: nothing submitted again
    subprocess.run(["scontrol", "release", job["job_ids"][0]], check=True)
    wait_for(completed(project, 12), 180, "12 complete runs")

    outcomes = [json.loads((d / "outcome.json").read_text()) for d in project.run_dirs()]
    assert sorted(o["sum"] for o in outcomes) == sorted(
        a + b for a in (1, 2, 3) for b in (10, 20, 30, 40)
    )
    assert {o["version"] for o in outcomes} == {"as submitted"}
    records = project.records()
    assert {r["job"]["SLURM_ARRAY_JOB_ID"] for r in records} == {job["job_ids"][0]}
    assert sorted(int(r["job"]["SLURM_ARRAY_TASK_ID"]) for r in records) == list(range(12))
    assert {r["git"]["snapshot"] for r in records} == {records[0]["git"]["snapshot"]}

    last = project.run("--scheduler", "slurm", env=env)
    assert last.returncode == 0 and "12 cached" in last.stdout
    assert len(calls.read_text().splitlines()) == 1

    status = project.run("status")
    assert status.returncode == 0
    assert status.stdout.splitlines()[1].split()[:4] == ["slurm", "0", "0", "12"]


RESUMABLE = """
import time
import xprun

@xprun.config({"steps": 40})
def xp_long(config, logger, run):
    state = logger.load_checkpoint() or {"step": 0}
    resumed = state["step"]
    logger.on_interrupt(lambda: {"step": state["step"]})  # saved on SIGUSR2 / SIGTERM
    for step in range(state["step"], config.steps):
        time.sleep(0.25)
        logger.log_metrics({"step_value": step}, step=step)
        state["step"] = step + 1
    return {"attempt": run.attempt, "resumed_from": resumed}
"""


@pytest.mark.parametrize("how", ["usr2", "requeue"])
def test_preempted_job_checkpoints_requeues_and_resumes(slurm, project, how):
    project.write("xp_long.py", RESUMABLE)
    git_commit_all(project.root)
    submit = project.run("--scheduler", "slurm")
    assert submit.returncode == 0, submit.output
    (job,) = job_records(project)
    job_id = job["job_ids"][0]
    metrics = lambda: list(project.log_dir.glob("*/*/metrics/metrics.jsonl"))  # noqa: E731
    wait_for(
        lambda: metrics() and len(metrics()[0].read_text().splitlines()) >= 8,
        120,
        "the job to log 8 steps",
    )
    if how == "usr2":  # what SLURM sends before a time limit or a preemption
        subprocess.run(["scancel", "--batch", "--signal=USR2", f"{job_id}_0"], check=True)
    else:
        subprocess.run(["scontrol", "requeue", f"{job_id}_0"], check=True)
    wait_for(
        lambda: project.records() and project.records()[0]["status"] == "interrupted",
        60,
        "the run to be recorded interrupted",
    )
    (run_dir,) = project.run_dirs()
    assert list((run_dir / "checkpoints").iterdir()), "no checkpoint saved on the signal"
    wait_for(completed(project, 1), 240, "the requeued job to complete")
    (record,) = project.records()
    assert record["attempt"] == 2 and int(record["job"]["SLURM_RESTART_COUNT"]) >= 1
    outcome = json.loads((run_dir / "outcome.json").read_text())
    assert outcome["attempt"] == 2 and outcome["resumed_from"] >= 8
    lines = [
        json.loads(x) for x in (run_dir / "metrics" / "metrics.jsonl").read_text().splitlines()
    ]
    second = [x["step"] for x in lines if x["attempt"] == 2]
    assert second[0] == outcome["resumed_from"] and second[-1] == 39  # continued, not restarted
    assert {x["step"] for x in lines} == set(range(40))


def test_a_cluster_scheduler_needs_git(slurm, project):
    project.write("xp_a.py", "def xp_a():\n    pass\n")
    result = project.run("--scheduler", "slurm")
    assert result.returncode == 4
    assert "not in a Git repository" in result.stderr and "--no-snapshot" in result.stderr
    assert not list(project.log_dir.glob("*/*/run.json"))


def test_arrays_beyond_max_array_size_are_split_and_wait_reports_the_outcome(slurm, project):
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\n[tool.xprun.slurm]\nmax_array_size = 5\npoll_seconds = 0.5\n',
    )
    project.write(
        "xp_split.py",
        "import xprun\n\n@xprun.grid(i=list(range(12)))\ndef xp_split(config):\n"
        "    if config.i == 11:\n        raise ValueError('eleven')\n    return {'i': config.i}\n",
    )
    git_commit_all(project.root)
    result = project.run("--scheduler", "slurm", "--wait", timeout=300)
    assert result.returncode == 1, result.output  # one run failed
    assert "12 submitted" in result.stdout
    assert "11 complete" in result.stdout and "1 failed" in result.stdout
    assert "ValueError: eleven" in result.stdout
    # The submission's and the queue's lines (on stderr) interrupt the letters: each line of
    # letters ends first, and the results start a line of their own, named.
    letters = [
        line.split()[1] for line in result.stdout.splitlines() if line.startswith("xp_split.py")
    ]
    assert letters[0] == "S" * 12 and sorted(letters[1]) == sorted("." * 11 + "F"), letters
    (job,) = job_records(project)
    assert len(job["job_ids"]) == 3  # 5 + 5 + 2
    offsets = sorted(int(r["job"]["SLURM_ARRAY_TASK_ID"]) for r in project.records())
    assert offsets == [0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 4]
