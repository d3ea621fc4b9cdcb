"""A search relaunched as a grid is: the collection line counts the searched experiment, and
the trials a previous launch completed are reported cached (not "no runs ran")."""

from __future__ import annotations

import re

import pytest
from conftest import Project

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

pytest.importorskip("optuna")

BOWL = """
import xprun

@xprun.config({"x": 0.0, "seed": 0})
@xprun.search(x=xprun.uniform(-2.0, 2.0), objective="outcome.loss", trials=3, seed=1)
def xp_bowl(config):
    return {"loss": (config.x - 0.5) ** 2}
"""


def _summary(output: str) -> str:
    return output.strip().splitlines()[-1]


def test_i14_relaunch_collection_counts_the_searched_experiment(project: Project) -> None:
    project.write("xp_bowl.py", BOWL)
    result = project.run("--collect-only")
    assert result.returncode == 0, result.output
    assert "collected 0 runs from 1 experiment\n" in result.stdout
    assert "search xp_bowl.py::xp_bowl: 3 trials of x=uniform(-2.0, 2.0)" in result.stdout
    assert re.search(r"=+ 0 runs collected \(and 1 search\) in ", _summary(result.stdout))
    assert project.run_dirs() == []
    blocked = project.run("--collect-only", "-p", "no:search")  # then it is a plain config
    assert "collected 1 run from 1 experiment\n" in blocked.stdout, blocked.output


def test_i14_relaunch_reports_completed_trials_cached(project: Project) -> None:
    project.write("xp_bowl.py", BOWL)
    first = project.run()
    assert first.returncode == 0, first.output
    assert re.search(r"=+ 3 complete in ", _summary(first.stdout)), first.stdout
    again = project.run()
    assert again.returncode == 0, again.output
    assert re.search(r"=+ 3 cached in ", _summary(again.stdout)), again.stdout
    assert len(project.run_dirs()) == 3
    more = project.run("--trials", "5")
    assert more.returncode == 0, more.output
    assert re.search(r"=+ 2 complete, 3 cached in ", _summary(more.stdout)), more.stdout
    assert len(project.run_dirs()) == 5


def test_i14_relaunch_a_failed_trial_is_not_reported_cached(project: Project) -> None:
    """A failed trial counts toward the budget and is not rerun, but it is no cached
    result: only complete trials are reported so."""
    project.write(
        "xp_bowl.py",
        BOWL.replace('return {"loss"', 'assert config.x < 1.0\n    return {"loss"'),
    )
    first = project.run()
    failed = (
        int(re.search(r"(\d+) failed", _summary(first.stdout)).group(1))
        if ("failed" in _summary(first.stdout))
        else 0
    )
    again = project.run()
    assert len(project.run_dirs()) == 3
    cached = re.search(r"(\d+) cached", _summary(again.stdout))
    assert (int(cached.group(1)) if cached else 0) == 3 - failed, again.stdout


def test_i14_relaunch_show_numbers_runs_by_their_trial_as_the_launcher_does(
    project: Project,
) -> None:
    """With a grid, a trial is several runs (``[trial=N-seed=S]``): ``xprun show`` numbers
    each run by its trial, as the labels and the launcher's summary do (it numbered runs)."""
    project.write(
        "xp_bowl.py",
        BOWL.replace("@xprun.search", "@xprun.grid(seed=[0, 1])\n@xprun.search").replace(
            "** 2}", "** 2 + config.seed}"
        ),
    )
    result = project.run()
    assert result.returncode == 0, result.output
    best = re.search(r"best outcome\.loss = \S+ \(trial (\d+):", result.stdout)
    assert best, result.stdout
    labels = {}
    for record in project.records():
        found = re.search(r"\[trial=(\d+)-seed=\d\]", record["nodeid"])
        assert found, record["nodeid"]
        labels[record["hash"]] = int(found.group(1))
    assert sorted(labels.values()) == [0, 0, 1, 1, 2, 2]
    shown = project.run("show", "--format", "csv")
    assert shown.returncode == 0, shown.output
    rows = [line.split(",") for line in shown.stdout.strip().splitlines()]
    header, rows = rows[0], rows[1:]
    number, hash_ = header.index("number"), header.index("hash")
    assert {row[hash_]: int(row[number]) for row in rows} == labels
    # the best trial's runs come first (each its own value; the launcher's is their mean)
    assert int(rows[0][number]) == int(best.group(1))
