"""Issue 14, the search loop (S1): ``@xprun.search``, ``--trials``, the ``trial`` fixture,
pruning, resuming, parallel trials and SLURM ask-batches, on known functions (a quadratic
bowl, Branin), through the command line as a user runs it.

Every trial is an ordinary run, so the assertions read what a user reads: the run
directories (``run.json``, ``config.yaml``, ``outcome.json``) and the exit codes.  Each
execution of an experiment appends its hash to ``executions.log`` (``O_APPEND``, one short
line), which is how "never run twice" is checked.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import Project, git_commit_all

import xprun

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

pytest.importorskip("optuna")

BOWL = """
import os, time
import xprun

def executed(run):
    fd = os.open(os.path.join(os.environ["EXEC_LOG"], "executions.log"),
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (run.hash + "\\n").encode())
    os.close(fd)

@xprun.config({"x": 0.0, "y": 0.0, "seed": 0, "pause": 0.0})
@xprun.search(x=xprun.uniform(-5, 5), y=xprun.uniform(-5, 5), objective="outcome.loss",
              trials=TRIALS, seed=0)
def xp_bowl(config, run):
    executed(run)
    kill_at = os.environ.get("KILL_AT_X")
    if kill_at and os.path.exists(kill_at):
        os.unlink(kill_at)
        os.kill(os.getpid(), 9)  # this launcher dies in the middle of this trial
    time.sleep(config.pause)
    return {"loss": (config.x - 1) ** 2 + (config.y + 2) ** 2 + config.seed}
"""


def _bowl(project: Project, trials: int, extra: str = "") -> None:
    project.write("xp_bowl.py", BOWL.replace("TRIALS", str(trials)) + extra)


def _env(project: Project, **more: str) -> dict[str, str]:
    return {"EXEC_LOG": str(project.root), **more}


def _launch(project: Project, *args: str, env: dict[str, str]) -> subprocess.Popen:
    """``xprun ARGS`` started in the background, its output kept in memory."""
    return subprocess.Popen(
        [sys.executable, "-m", "xprun", *args],
        cwd=project.root,
        env={**project.env(), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _executions(project: Project) -> list[str]:
    path = project.root / "executions.log"
    return path.read_text().split() if path.exists() else []


def _trials(project: Project, experiment: str) -> list[dict]:
    """Each run of the experiment: its record, config and outcome, in start order."""
    found = []
    for run_dir in project.run_dirs(experiment):
        record = json.loads((run_dir / "run.json").read_text())
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        outcome_path = run_dir / "outcome.json"
        outcome = json.loads(outcome_path.read_text()) if outcome_path.exists() else None
        found.append({"record": record, "config": config, "outcome": outcome, "dir": run_dir})
    return sorted(found, key=lambda t: t["record"]["start"])


# -- declaration and spaces ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("search", "named"),
    [
        ("x=xprun.uniform(5, 1)", "low must be below high"),
        ("x=xprun.loguniform(0, 1)", "low > 0"),
        ("x=xprun.intrange(3, 3)", "xprun.intrange(3, 3)"),
        ("x=xprun.uniform(0, 1), sampler='bayes'", "unknown sampler 'bayes'"),
        ("x=xprun.uniform(0, 1), pruner='early'", "unknown pruner 'early'"),
        ("x=xprun.uniform(0, 1), direction='down'", "unknown direction 'down'"),
        ("z=xprun.uniform(0, 1)", "searched key 'z' is not in the config"),
        ("x=xprun.uniform(0, 1), objective='loss'", "objective 'loss'"),
    ],
)
def test_i14_declare_bad_arguments_are_usage_errors_naming_them(project, search, named):
    objective = "" if "objective=" in search else ", objective='outcome.loss'"
    project.write(
        "xp_s.py",
        "import xprun\n"
        "@xprun.config({'x': 0.5})\n"
        f"@xprun.search({search}{objective})\n"
        "def xp_s(config):\n"
        "    return {'loss': config.x}\n",
    )
    result = project.run()
    assert result.returncode == 4, result.output
    assert named in result.stderr
    assert project.run_dirs() == []  # nothing half-written


def test_i14_fixture_trial_outside_a_search_is_a_usage_error(project):
    project.write(
        "xp_t.py",
        "import xprun\n@xprun.config({'x': 1})\ndef xp_t(config, trial):\n    return {}\n",
    )
    result = project.run()
    assert result.returncode == 4
    assert "fixture 'trial' exists only for searched experiments" in result.stderr


# -- the loop, on known functions -----------------------------------------------------------


def _branin(x: float, y: float) -> float:
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x * x + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10


BRANIN_MIN = 0.397887


def _best_of(sampler: str, seed: int, trials: int = 64) -> float:
    """The best Branin value a search finds, proposal by proposal through the search loop's
    own ``propose`` (the history it is given is the trials so far, as the loop rebuilds
    it from the run directories)."""
    from xprun.search import propose
    from xprun.searchspace import Search, uniform
    from xprun.study import TrialRecord

    search = Search(
        space={"x": uniform(-5, 10), "y": uniform(0, 15)},
        objective="outcome.loss",
        trials=trials,
        sampler=sampler,
        seed=seed,
    )
    records: list[TrialRecord] = []
    while len(records) < trials:
        [(number, params)], _ = propose(search, records, 1)
        value = _branin(params["x"], params["y"])
        records.append(TrialRecord(f"h{number}", number, params, "complete", value, {}))
    return min(r.value for r in records if r.value is not None)


def test_i14_loop_tpe_beats_random_on_branin_and_nears_the_optimum():
    """64 trials, 5 seeds each: TPE's median best beats random search's, and is within 0.2
    of Branin's minimum (0.398).  In-process through ``propose`` (the loop's proposals,
    seeded per ask): 640 trials as processes would take minutes; the end-to-end loop is
    checked on the bowl below."""
    tpe = [_best_of("tpe", seed) for seed in range(5)]
    rand = [_best_of("random", seed) for seed in range(5)]
    assert statistics.median(tpe) < statistics.median(rand), (tpe, rand)
    assert statistics.median(tpe) - BRANIN_MIN < 0.2, tpe


def test_i14_loop_bowl_from_the_command_line_meets_the_budget_then_costs_nothing(project):
    _bowl(project, 16)
    result = project.run("-q", env=_env(project))
    assert result.returncode == 0, result.output
    trials = _trials(project, "xp_bowl.xp_bowl")
    assert len(trials) == 16 and {t["record"]["status"] for t in trials} == {"complete"}
    assert len(_executions(project)) == 16
    best = min(t["outcome"]["loss"] for t in trials)
    assert best < 1.0, best  # the bowl's minimum is 0 at (1, -2); random 16 in 100 area: ~2
    record = trials[0]["record"]
    assert record["search"] == {
        "objective": "outcome.loss",
        "direction": "minimize",
        "params": ["x", "y"],
    }
    again = project.run("-q", env=_env(project))
    assert again.returncode == 0, again.output
    assert len(_executions(project)) == 16  # the budget is met: nothing runs
    more = project.run("-q", "--trials", "18", env=_env(project))
    assert more.returncode == 0, more.output
    assert len(_trials(project, "xp_bowl.xp_bowl")) == 18  # --trials raises the target


def test_i14_loop_resumed_search_proposes_what_an_uninterrupted_one_does(project, tmp_path):
    """Killed (SIGKILL, from inside the trial: the only way to time it) in the middle of the
    fourth trial, then launched again: the same configs as a search that ran in one go."""
    _bowl(project, 7)
    whole = project.run("-q", env=_env(project))
    assert whole.returncode == 0, whole.output
    expected = [(t["config"]["x"], t["config"]["y"]) for t in _trials(project, "xp_bowl.xp_bowl")]
    shutil.rmtree(project.log_dir)
    (project.root / "executions.log").unlink()

    marker = tmp_path / "kill-now"
    killed = project.run("-q", "--trials", "3", env=_env(project))  # a first launch, stopped
    assert killed.returncode == 0
    marker.touch()
    # It kills its own launcher: a process of its own (in this one it would kill the test run).
    killed = project.run("-q", env=_env(project, KILL_AT_X=str(marker)), inprocess=False)
    assert killed.returncode == -signal.SIGKILL, killed.output
    statuses = Counter(t["record"]["status"] for t in _trials(project, "xp_bowl.xp_bowl"))
    assert statuses == {"complete": 3, "running": 1}  # the fourth, left half-done
    resumed = project.run("-q", env=_env(project))
    assert resumed.returncode == 0, resumed.output
    got = [(t["config"]["x"], t["config"]["y"]) for t in _trials(project, "xp_bowl.xp_bowl")]
    assert sorted(got) == sorted(expected)
    assert len(got) == 7


def test_i14_loop_sigkill_at_random_points_ends_with_exactly_the_budget(project):
    _bowl(project, 6)
    project.write("pyproject.toml", "[tool.xprun]\nlog_dir = 'xprun_logs'\n")
    rng = random.Random(14)
    kills = 0
    for _ in range(5):  # killed at random points (start-up, a trial, between trials)
        proc = _launch(project, "-q", "pause=0.2", env=_env(project))
        try:
            proc.communicate(timeout=rng.uniform(1.0, 5.0))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
            kills += 1
    assert kills  # (a launch that finished first is fine: the budget is a target)
    last = project.run("-q", "pause=0.2", env=_env(project))
    assert last.returncode == 0, last.output
    trials = _trials(project, "xp_bowl.xp_bowl")
    assert len(trials) == 6
    assert {t["record"]["status"] for t in trials} == {"complete"}
    configs = [(t["config"]["x"], t["config"]["y"]) for t in trials]
    assert len(set(configs)) == 6  # no config proposed twice
    executed = Counter(_executions(project))
    assert set(executed) == {t["dir"].name for t in trials}


def test_i14_loop_search_with_a_grid_runs_each_trial_on_every_point(project):
    _bowl(project, 2)
    result = project.run("-q", "seed=0,1,2", env=_env(project))
    assert result.returncode == 0, result.output
    trials = _trials(project, "xp_bowl.xp_bowl")
    assert len(trials) == 6
    by_point: dict[tuple, set] = {}
    for t in trials:
        by_point.setdefault((t["config"]["x"], t["config"]["y"]), set()).add(t["config"]["seed"])
    assert list(by_point.values()) == [{0, 1, 2}, {0, 1, 2}]
    again = project.run("-q", "seed=0,1,2", env=_env(project))
    assert again.returncode == 0 and len(_executions(project)) == 6


# -- command line ----------------------------------------------------------------------------


CLI = """
import xprun

@xprun.config({"lr": 0.001, "depth": 4, "optimizer": "adam"})
def xp_train(config):
    loss = abs(__import__("math").log10(config.lr) + 3) + config.depth / 10
    return {"val_loss": loss + (0.5 if config.optimizer == "sgd" else 0.0)}
"""


def test_i14_cli_hydra_grammar_is_the_space_with_trials(project):
    project.write("xp_train.py", CLI)
    space = ["lr=tag(log,interval(1e-5,1e-1))", "depth=range(2,9)", "optimizer=sgd,adam"]
    plain = project.run(*space)
    assert plain.returncode == 4 and "interval() and glob() sweeps are not supported" in (
        plain.stderr
    )
    result = project.run("--trials", "6", *space, "--objective", "outcome.val_loss", "-q")
    assert result.returncode == 0, result.output
    trials = _trials(project, "xp_train.xp_train")
    assert len(trials) == 6
    for t in trials:
        config = t["config"]
        assert 1e-5 <= config["lr"] <= 1e-1
        assert config["depth"] in range(2, 9) and isinstance(config["depth"], int)
        assert config["optimizer"] in ("sgd", "adam")
    assert len({t["config"]["lr"] for t in trials}) == 6
    missing = project.run("--trials", "6", *space)
    assert missing.returncode == 4 and "--objective" in missing.stderr
    nothing = project.run("--trials", "6", "--objective", "outcome.val_loss")
    assert nothing.returncode == 4 and "no experiment of this launch is searched" in (
        nothing.stderr
    )
    assert len(_trials(project, "xp_train.xp_train")) == 6  # neither ran anything


# -- pruning -------------------------------------------------------------------------------


PRUNED = """
import math, os
import xprun

@xprun.config({"lr": 0.1, "epochs": 9})
@xprun.search(lr=xprun.loguniform(1e-4, 1.0), objective="outcome.val_loss", trials=14,
              seed=0, pruner="hyperband")
def xp_train(config, logger, trial, run):
    with open(os.path.join(os.environ["EXEC_LOG"], "executions.log"), "a") as f:
        f.write(run.hash + "\\n")
    assert trial.params == {"lr": config.lr}
    for epoch in range(config.epochs):
        v = abs(math.log10(config.lr) + 2) + 1.0 / (epoch + 1)
        logger.log_metrics({"val_loss": v}, step=epoch)
        if trial.should_prune(epoch, v):
            return {"val_loss": v, "epochs": epoch + 1}
    return {"val_loss": v, "epochs": config.epochs}
"""


def test_i14_prune_hyperband_prunes_and_pruned_trials_are_not_rerun(project):
    project.write("xp_train.py", PRUNED)
    result = project.run(env=_env(project))
    assert result.returncode == 0, result.output
    trials = _trials(project, "xp_train.xp_train")
    statuses = Counter(t["record"]["status"] for t in trials)
    assert statuses["pruned"] >= 1 and statuses["complete"] >= 1
    assert sum(statuses.values()) == 14
    assert f"{statuses['pruned']} pruned" in result.stdout  # in the summary
    for t in trials:
        stopped = t["outcome"]["epochs"] < 9
        assert stopped == (t["record"]["status"] == "pruned")
    executed = len(_executions(project))
    again = project.run(env=_env(project))
    assert again.returncode == 0, again.output
    assert len(_executions(project)) == executed == 14  # pruned trials are ended: not rerun


# -- parallel --------------------------------------------------------------------------------


def test_i14_parallel_n2_and_two_launchers_never_run_a_config_twice(project):
    _bowl(project, 6)
    git_commit_all(project.root)
    first = _launch(project, "-q", "-n", "2", "pause=0.2", env=_env(project))
    second = _launch(project, "-q", "pause=0.2", env=_env(project))
    outputs = [p.communicate(timeout=300) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    executed = Counter(_executions(project))
    assert executed and max(executed.values()) == 1, executed  # each config run once
    trials = _trials(project, "xp_bowl.xp_bowl")
    assert len(trials) >= 6  # the budget met; a proposal in flight on both sides may add one
    assert {t["record"]["status"] for t in trials} == {"complete"}
    configs = [(t["config"]["x"], t["config"]["y"]) for t in trials]
    assert len(set(configs)) == len(configs)


# -- SLURM -------------------------------------------------------------------------------------


def _slurm_env() -> dict[str, str] | None:
    conf = Path("/tmp/xprun-slurm/etc/slurm.conf")
    if not conf.exists() or shutil.which("sbatch") is None:
        return None
    env = {"SLURM_CONF": str(conf)}
    probe = subprocess.run(["sinfo", "-h"], capture_output=True, env={**os.environ, **env})
    return env if probe.returncode == 0 else None


def test_i14_slurm_search_completes_three_batches_as_three_arrays(project):
    env = _slurm_env()
    if env is None:
        pytest.skip("no SLURM cluster here (run .ci/start-slurm.sh)")
    _bowl(project, 6)
    project.write(
        "pyproject.toml",
        "[tool.xprun]\nlog_dir = 'xprun_logs'\n[tool.xprun.slurm]\npoll_seconds = 0.5\n",
    )
    git_commit_all(project.root)
    result = project.run(
        "--scheduler", "slurm", "--batch", "2", "--wait", env={**_env(project), **env}, timeout=600
    )
    assert result.returncode == 0, result.output
    jobs = sorted((project.log_dir / ".xprun-jobs").glob("*/job.json"))
    submissions = [json.loads(p.read_text()) for p in jobs]
    assert len(submissions) == 3
    assert [len(s["runs"]) for s in submissions] == [2, 2, 2]
    assert len({s["job_ids"][0] for s in submissions}) == 3  # three arrays
    trials = _trials(project, "xp_bowl.xp_bowl")
    assert len(trials) == 6 and {t["record"]["status"] for t in trials} == {"complete"}


def test_i14_slurm_without_wait_each_invocation_submits_the_next_batch(project):
    env = _slurm_env()
    if env is None:
        pytest.skip("no SLURM cluster here (run .ci/start-slurm.sh)")
    _bowl(project, 5)
    project.write(  # held: the trials stay queued, so only the submission records know them
        "pyproject.toml",
        "[tool.xprun]\nlog_dir = 'xprun_logs'\n[tool.xprun.slurm]\nsbatch_args = ['--hold']\n",
    )
    git_commit_all(project.root)
    submitted: list[list[tuple[float, float]]] = []
    try:
        for _ in range(4):
            result = project.run(
                "--scheduler", "slurm", "--batch", "2", env={**_env(project), **env}
            )
            assert result.returncode == 0, result.output
            specs = sorted((project.log_dir / ".xprun-jobs").glob("*/spec.json"))
            configs = [
                [(r["config"]["x"], r["config"]["y"]) for r in json.loads(p.read_text())["runs"]]
                for p in specs
            ]
            submitted = configs
    finally:
        jobs = [
            json.loads(p.read_text())["job_ids"]
            for p in (project.log_dir / ".xprun-jobs").glob("*/job.json")
        ]
        ids = [j for ids in jobs for j in ids]
        if ids:  # this test's jobs only
            subprocess.run(["scancel", *ids], env={**os.environ, **env}, check=False)
    assert [len(batch) for batch in submitted] == [2, 2, 1]  # the budget: 5, then nothing
    flat = [config for batch in submitted for config in batch]
    assert len(set(flat)) == 5  # each invocation the next trials, never the same again


def test_i14_loop_grid_sampler_stops_when_its_grid_is_used_up(project):
    project.write(
        "xp_g.py",
        "import xprun\n"
        "@xprun.config({'k': 0, 'c': 'a'})\n"
        "@xprun.search(k=xprun.intrange(0, 2), c=['a'], sampler='grid', trials=5,\n"
        "              objective='outcome.v')\n"
        "def xp_g(config):\n"
        "    return {'v': config.k}\n",
    )
    result = project.run()
    assert result.returncode == 0, result.output
    assert "the search space looks used up" in result.stderr
    assert sorted(t["config"]["k"] for t in _trials(project, "xp_g.xp_g")) == [0, 1, 2]
    assert "3 of 5 trials ended (3 complete); best outcome.v = 0" in result.stdout


def test_i14_declare_a_search_without_optuna_says_how_to_install_it(project):
    project.write("conftest.py", "import sys\nsys.modules['optuna'] = None  # not installed\n")
    _bowl(project, 2)
    result = project.run(env=_env(project))
    assert result.returncode == 4
    assert "pip install 'xprun[search]'" in result.stderr
    assert project.run_dirs() == []


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes", "qmc"])
def test_i14_loop_every_sampler_proposes_new_trials_from_a_rebuilt_history(sampler):
    """Each ask rebuilds the study (as every launch does): samplers that keep state in the
    study (QMC's sample counter, CMA-ES's generation) must still propose new trials, and the
    same history must give the same proposal."""
    from xprun.search import propose
    from xprun.searchspace import Search, intrange, uniform
    from xprun.study import TrialRecord

    search = Search(
        space={"x": uniform(-5, 5), "n": intrange(0, 50)},
        objective="outcome.loss",
        sampler=sampler,
        seed=3,
    )
    records: list[TrialRecord] = []
    for _ in range(12):
        [(number, params)], exhausted = propose(search, records, 1)
        assert not exhausted
        assert propose(search, records, 1)[0] == [(number, params)]  # same history, same ask
        loss = (params["x"] - 1) ** 2 + params["n"]
        records.append(TrialRecord(f"h{number}", number, params, "complete", loss, {}))
    assert len({(r.params["x"], r.params["n"]) for r in records}) == 12


def test_i14_cli_sweeps_become_these_dimensions():
    """Hydra's sweeps as a space, by hydra-core's own parser: the stop of range() excluded
    (as Hydra lists it), the log tag kept, quoted choices as text, plain overrides left."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    from xprun.searchspace import distributions, space_from_overrides

    space, rest = space_from_overrides(
        [
            "lr=tag(log,interval(1e-5,1e-1))",
            "m=interval(0,0.99)",
            "depth=range(2,9)",
            "width=range(8,40,8)",
            "optimizer=sgd,adam",
            "act=choice(relu,'leaky relu')",
            "epochs=5",
        ]
    )
    assert rest == ["epochs=5"]
    assert distributions(space) == {
        "lr": FloatDistribution(1e-5, 1e-1, log=True),
        "m": FloatDistribution(0.0, 0.99),
        "depth": IntDistribution(2, 8),
        "width": IntDistribution(8, 32, step=8),
        "optimizer": CategoricalDistribution(("sgd", "adam")),
        "act": CategoricalDistribution(("relu", "leaky relu")),
    }
    with pytest.raises(xprun.UsageError, match="range\\(3,4,1\\) must hold two values"):
        space_from_overrides(["depth=range(3,4)"])
    with pytest.raises(xprun.UsageError, match="a log scale needs low > 0"):
        space_from_overrides(["lr=tag(log,interval(0,1))"])
