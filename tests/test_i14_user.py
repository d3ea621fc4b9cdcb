"""Issue 14 as a demanding new user tries it: the defects found, each through the CLI."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import Project

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

pytest.importorskip("optuna")

GRIDDED = """
import xprun

@xprun.config({"lr": 0.1, "seed": 0})
@xprun.grid(lr=[0.1, 0.01], seed=[0, 1])
def xp_fit(config):
    return {"loss": (config.lr - 0.05) ** 2 + config.seed}
"""


def test_i14_user_cli_search_replaces_a_grid_axis(project: Project) -> None:
    """A command-line search of a key that @xprun.grid sweeps replaces that axis, as any
    command-line sweep of a gridded key does (the user cannot 'keep one' from the command
    line); the grid's other keys stay grid points of each trial."""
    project.write("xp_fit.py", GRIDDED)
    result = project.run(
        "--trials", "2", "lr=interval(0.001,0.5)", "--objective", "outcome.loss", "-q"
    )
    assert result.returncode == 0, result.output
    configs = [yaml.safe_load((d / "config.yaml").read_text()) for d in project.run_dirs()]
    assert len(configs) == 4  # 2 trials x the grid's 2 seeds
    assert sorted(c["seed"] for c in configs) == [0, 0, 1, 1]
    lrs = {c["lr"] for c in configs}
    assert len(lrs) == 2 and not lrs & {0.1, 0.01}
    assert all(0.001 <= lr <= 0.5 for lr in lrs)
    searched = [json.loads((d / "run.json").read_text())["search"] for d in project.run_dirs()]
    assert all(s["params"] == ["lr"] for s in searched)


def test_i14_user_declared_search_and_grid_still_refused(project: Project) -> None:
    """The refusal stays for a key that the code itself both searches and grids."""
    project.write(
        "xp_fit.py",
        GRIDDED.replace(
            "@xprun.grid(lr=[0.1, 0.01], seed=[0, 1])",
            '@xprun.search(lr=xprun.uniform(0.0, 1.0), objective="outcome.loss", trials=2)\n'
            "@xprun.grid(lr=[0.1, 0.01], seed=[0, 1])",
        ),
    )
    result = project.run("-q")
    assert result.returncode == 4
    assert "lr is both searched and swept by @xprun.grid" in result.output
    assert project.run_dirs() == []


def test_i14_user_misspelt_objective_is_named(project: Project) -> None:
    """Every trial complete but told as failed because the objective is not in any outcome
    (a typo in --objective): the summary says so and lists the outcome keys there are,
    instead of only '2 failed' beside runs that all completed."""
    project.write("xp_fit.py", GRIDDED.replace(", seed=[0, 1]", ""))
    result = project.run("--trials", "2", "lr=interval(0.001,0.5)", "--objective", "outcome.lsos")
    assert result.returncode == 0, result.output
    assert "2 of 2 trials ended (2 failed)" in result.output
    assert "no complete run recorded outcome.lsos" in result.output
    assert "outcome.loss" in result.output
    result = project.run("--trials", "2", "lr=interval(0.001,0.5)", "--objective", "outcome.loss")
    assert "no complete run recorded" not in result.output


def test_i14_user_study_view_of_a_search_with_a_grid(project: Project) -> None:
    """A search with a grid: the study view lists each trial's runs, so it shows the grid's
    key (which tells a trial's rows apart) and counts trials as the launcher does."""
    project.write(
        "xp_fit.py",
        GRIDDED.replace(
            "@xprun.grid(lr=[0.1, 0.01], seed=[0, 1])",
            '@xprun.search(lr=xprun.uniform(0.0, 1.0), objective="outcome.loss", trials=2,'
            ' sampler="random")\n@xprun.grid(seed=[0, 1])',
        ),
    )
    result = project.run("-q")
    assert result.returncode == 0, result.output
    assert len(project.run_dirs()) == 4
    shown = project.run("show")
    assert shown.returncode == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("xp_fit.xp_fit: 2 trials, 4 runs (4 complete)"), lines[0]
    header = lines[2].split()
    assert "config.seed" in header and "config.lr" in header
    seeds = sorted(line.split()[header.index("config.seed")] for line in lines[3:])
    assert seeds == ["0", "0", "1", "1"]
    rows = json.loads(project.run("show", "-f", "json").stdout)
    assert sorted(r["config.seed"] for r in rows) == [0, 0, 1, 1]


PRUNING = """
import xprun

@xprun.config({"x": 0.0, "epochs": 5})
@xprun.search(x=xprun.uniform(-3.0, 3.0), objective="metrics.val", trials=14,
              sampler="random", seed=1, pruner="median")
def xp_p(config, logger, trial):
    for e in range(config.epochs):
        v = (config.x - 1) ** 2 + 1 / (e + 1)
        logger.log_metrics({"val": v}, step=e)
        if trial.should_prune(e, v):
            return {"val": v, "stopped": e}
    return {"val": v, "stopped": None}
"""


def test_i14_user_reader_reads_a_pruned_runs_outcome(project: Project) -> None:
    """A pruned trial's outcome is saved (run-directory.md); the Reader, so ``xprun show``
    and ``xprun diff``, reads it as it reads a complete run's, not as missing."""
    import xprun

    project.write("xp_p.py", PRUNING)
    result = project.run("-q")
    assert result.returncode == 0, result.output
    pruned = [d for d in project.run_dirs() if '"pruned"' in (d / "run.json").read_text()]
    assert pruned, result.output
    frame = xprun.Reader(project.log_dir).filter("status == pruned").to_pandas()
    assert len(frame) == len(pruned)
    for run_dir in pruned:
        saved = json.loads((run_dir / "outcome.json").read_text())
        row = frame[frame["hash"] == run_dir.name].iloc[0]
        assert row["outcome.val"] == saved["val"]
        assert row["outcome.stopped"] == saved["stopped"]
