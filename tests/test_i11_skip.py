"""Issue 11, target 2: the skip check of a launch that finds its runs complete reports them
cached in one batch (``xprun_runs_cached``), without losing a report, a count or a stale
flag.  Counts, not times: through the CLI, with conftest plugins that write what they see.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import Project

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

XP = """\
import os

import xprun


@xprun.config({"seed": 0})
@xprun.grid(seed=range(int(os.environ.get("N", "7"))))
def xp_one(config):
    return {"seed": config.seed}


@xprun.config({"seed": 0})
@xprun.grid(seed=range(int(os.environ.get("M", "3"))))
def xp_two(config):
    return {"seed": config.seed}
"""

# A third-party listener: only the per-run hook, so it must still see every cached run.
PER_RUN = """\
import json
import os


def xprun_run_logreport(report):
    with open(os.environ["SEEN"], "a") as out:
        out.write(json.dumps([report.run.hash, str(report.status), report.stale]) + "\\n")
"""

# A listener of both hooks: the batch once, and no per-run report of the same runs.
BATCHED = (
    PER_RUN
    + """

def xprun_runs_cached(runs, stale):
    with open(os.environ["BATCH"], "a") as out:
        out.write(json.dumps([[run.hash for run in runs], list(stale)]) + "\\n")
"""
)

# Implementing xprun_run_skip (and deciding nothing) takes every run through the per-run
# skip check: the reference the batched path must print exactly as.
PER_RUN_SKIP = """\
def xprun_run_skip(run, context):
    return None
"""


def _lines(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _hashes(project: Project, experiment: str) -> set[str]:
    return {d.name for d in project.run_dirs(experiment)}


def _launch(project: Project, *args: str, **env: str):
    result = project.run(*args, env=env)
    assert result.returncode == 0, result.output
    return result


def test_i11_skip_per_run_listener_sees_every_cached_run(project: Project, tmp_path: Path) -> None:
    project.write("xp_skip.py", XP)
    _launch(project)  # 7 + 3 runs complete
    project.write("conftest.py", PER_RUN)
    seen = tmp_path / "seen.jsonl"
    result = _launch(project, N="9", SEEN=str(seen))  # 9 + 3: two new runs
    assert "2 complete, 10 cached" in result.stdout, result.stdout
    reports = _lines(seen)
    cached = [h for h, status, stale in reports if status == "cached"]
    assert sorted(cached) == sorted(
        (_hashes(project, "xp_skip.xp_one") | _hashes(project, "xp_skip.xp_two"))
        - {h for h, status, _ in reports if status == "complete"}
    )
    assert len(cached) == 10 and len(reports) == 12
    assert {stale for _, status, stale in reports if status == "cached"} == {False}

    # Today's code differs from the code the runs ran: every cached run is flagged stale,
    # to the per-run listener and in the summary.
    project.write("xp_skip.py", XP.replace("config.seed}", "config.seed + 0}"))
    seen.unlink()
    result = _launch(project, N="9", SEEN=str(seen))
    assert re.search(r"\b12 cached \(12 stale: code changed since they ran\)", result.stdout)
    reports = _lines(seen)
    assert len(reports) == 12 and {(s, st) for _, s, st in reports} == {("cached", True)}


def test_i11_skip_batched_listener_gets_one_batch(project: Project, tmp_path: Path) -> None:
    project.write("xp_skip.py", XP)
    _launch(project)
    project.write("conftest.py", BATCHED)
    seen, batch = tmp_path / "seen.jsonl", tmp_path / "batch.jsonl"
    result = _launch(project, N="9", SEEN=str(seen), BATCH=str(batch))
    assert "2 complete, 10 cached" in result.stdout, result.stdout
    ((hashes, stale),) = _lines(batch)  # one call for the ten, whatever their number
    expected = _hashes(project, "xp_skip.xp_one") | _hashes(project, "xp_skip.xp_two")
    assert len(hashes) == 10 and set(hashes) < expected
    assert stale == [False] * 10
    # The per-run hook saw only the two runs that ran, not the cached ones again.
    assert sorted(s for _, s, _ in _lines(seen)) == ["complete", "complete"]
    assert {h for h, _, _ in _lines(seen)} == expected - set(hashes)

    project.write("xp_skip.py", XP.replace("config.seed}", "config.seed + 0}"))
    batch.unlink()
    _launch(project, N="9", SEEN=str(seen), BATCH=str(batch))
    ((hashes, stale),) = _lines(batch)
    assert len(hashes) == 12 and stale == [True] * 12


@pytest.mark.parametrize("verbosity", ["-q", "", "-v"])
def test_i11_skip_batched_output_as_per_run(project: Project, verbosity: str) -> None:
    """The terminal's letters, wrapped lines, percentages, summary and exit code are the
    per-run path's, byte for byte (a narrow terminal: several wrapped lines each)."""
    project.write("xp_skip.py", XP)
    env = {"N": "130", "M": "70", "COLUMNS": "50"}
    _launch(project, **env)
    args = [verbosity] if verbosity else []
    batched = _launch(project, *args, **env)
    project.write("conftest.py", PER_RUN_SKIP)
    per_run = _launch(project, *args, **env)

    def shown(result) -> str:
        text = re.sub(r" in \d+(\.\d+)?s", " in Xs", result.stdout)
        return "\n".join(line for line in text.splitlines() if "rootdir" not in line)

    assert shown(batched) == shown(per_run)
    assert "200 cached" in batched.stdout
    if verbosity != "-v":
        letters = [line for line in batched.stdout.splitlines() if line.rstrip().endswith("%]")]
        assert sum(line.count("c") for line in letters) == 200
        # Wrapped where the per-run path always wrapped (before a fixed 50 - 2 columns), each
        # experiment's last line padded to the edge.
        assert {len(line) for line in letters} == {48, 50}
