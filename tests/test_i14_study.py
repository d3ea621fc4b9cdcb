"""Issue 14, the study side: a searched experiment's history read from its run directories
(``xprun.study.trial_records``), the Optuna study rebuilt from it (``build_study``), and the
study view of ``xprun show`` and ``xprun plot --history/--importance``.

Trial-shaped runs are made with an ordinary grid experiment whose config holds the searched
keys, run through the real CLI; a pruned trial is a record marked so by hand (the status a
searched run records).  Expected values are computed from the experiment's own formula.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import Project, launches_inprocess

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

optuna = pytest.importorskip("optuna")

from xprun import store  # noqa: E402
from xprun.errors import UsageError  # noqa: E402
from xprun.study import (  # noqa: E402
    TrialRecord,
    best_so_far,
    build_study,
    parse_objective,
    search_record,
    search_settings,
    trial_records,
)

EXPERIMENT = "xp_bowl.xp_bowl"
PARAMS = ["x", "y", "opt"]
BOWL = """
import xprun


def curve(x, y, step):
    return (x - 0.5) ** 2 + (y - 1) ** 2 + abs(step - 1) * 0.25


@xprun.config({"x": 0.0, "y": 0, "opt": "a"})
@xprun.grid(x=[-1.0, 0.5, 2.0], y=[0, 3], opt=["a", "b"])
def xp_bowl(config, logger):
    for step in range(4):
        v = curve(config.x, config.y, step)
        logger.log_metrics({"val_loss": v}, step=step)
    if config.x == 2.0 and config.opt == "b":
        raise RuntimeError("diverged")
    if config.x == -1.0 and config.opt == "b":
        return {"other": 1.0}  # a complete run without the objective
    return {"val_loss": v}
"""


def curve(x: float, y: int, step: int) -> float:
    return (x - 0.5) ** 2 + (y - 1) ** 2 + abs(step - 1) * 0.25


def space() -> dict:
    d = optuna.distributions
    return {
        "x": d.FloatDistribution(-1.0, 2.0),
        "y": d.IntDistribution(0, 3),
        "opt": d.CategoricalDistribution(["a", "b"]),
    }


def _rewrite(run_dir: Path, **fields) -> None:
    record = json.loads((run_dir / store.RUN_JSON).read_text())
    record.update(fields)
    store.write_json_atomic(run_dir / store.RUN_JSON, record)


def _config(run_dir: Path) -> dict:
    import yaml

    return yaml.safe_load((run_dir / "config.yaml").read_text())


@pytest.fixture(scope="module")
def bowl(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Project:
    """Twelve trial-shaped runs: seven complete, two failed, two complete without the
    objective, and the run at x=2, y=0, opt=a marked pruned by hand (its status only)."""
    project = Project(tmp_path_factory.mktemp("i14") / "proj", launches_inprocess(request.node))
    project.write("xp_bowl.py", BOWL)
    result = project.run("-q")
    assert result.returncode == 1, result.output  # two runs raise
    for run_dir in project.run_dirs(EXPERIMENT):
        config = _config(run_dir)
        if (config["x"], config["y"], config["opt"]) == (2.0, 0, "a"):
            _rewrite(run_dir, status="pruned")
    return project


def _by_params(records: list[TrialRecord]) -> dict[tuple, TrialRecord]:
    return {(r.params["x"], r.params["y"], r.params["opt"]): r for r in records}


# -- trial_records --------------------------------------------------------------------------


def test_i14_study_records_params_values_states(bowl: Project) -> None:
    records = trial_records(bowl.log_dir, EXPERIMENT, PARAMS, "outcome.val_loss")
    assert len(records) == 12
    dirs = {d.name: d for d in bowl.run_dirs(EXPERIMENT)}
    assert {r.hash for r in records} == set(dirs)
    for record in records:
        config = _config(dirs[record.hash])
        assert record.params == {k: config[k] for k in PARAMS}
        x, y, opt = config["x"], config["y"], config["opt"]
        steps = {s: curve(x, y, s) for s in range(4)}
        assert record.intermediate == pytest.approx(steps)
        if (x, y, opt) == (2.0, 0, "a"):
            assert (record.state, record.value) == ("pruned", pytest.approx(steps[3]))
        elif opt == "b" and x in (2.0, -1.0):  # raised, or returned no val_loss
            assert (record.state, record.value) == ("failed", None)
        else:
            assert (record.state, record.value) == ("complete", pytest.approx(steps[3]))
    states = [r.state for r in records]
    assert (states.count("complete"), states.count("failed"), states.count("pruned")) == (7, 4, 1)


def test_i14_study_records_numbered_by_start(bowl: Project) -> None:
    records = trial_records(bowl.log_dir, EXPERIMENT, PARAMS, "outcome.val_loss")
    assert [r.number for r in records] == list(range(len(records)))
    starts = {d.name: json.loads((d / "run.json").read_text())["start"] for d in bowl.run_dirs()}
    expected = sorted(starts, key=lambda h: (starts[h], h))
    assert [r.hash for r in records] == expected


def test_i14_study_records_metric_objective_and_where(bowl: Project) -> None:
    last = _by_params(trial_records(bowl.log_dir, EXPERIMENT, PARAMS, "metrics.val_loss"))
    best = _by_params(trial_records(bowl.log_dir, EXPERIMENT, PARAMS, "metrics.val_loss.min"))
    for key, record in last.items():
        x, y, _ = key
        if record.state == "complete":  # the runs without val_loss in their outcome too
            assert record.value == pytest.approx(curve(x, y, 3))
            assert best[key].value == pytest.approx(curve(x, y, 1))  # the lowest step
    assert last[(-1.0, 0, "b")].state == "complete"
    assert last[(2.0, 3, "b")].state == "failed"  # raised: failed whatever the objective
    only_a = trial_records(bowl.log_dir, EXPERIMENT, PARAMS, "outcome.val_loss", {"opt": "a"})
    assert {r.params["opt"] for r in only_a} == {"a"} and len(only_a) == 6
    assert [r.number for r in only_a] == list(range(6))
    assert trial_records(bowl.log_dir, EXPERIMENT, PARAMS, "outcome.val_loss", {"y": 3.0})
    assert not trial_records(bowl.log_dir, EXPERIMENT, PARAMS, "outcome.val_loss", {"y": True})


def test_i14_study_records_of_nothing(bowl: Project, tmp_path: Path) -> None:
    assert trial_records(tmp_path / "nowhere", EXPERIMENT, PARAMS, "outcome.val_loss") == []
    assert trial_records(bowl.log_dir, "xp_other.xp_other", PARAMS, "outcome.val_loss") == []
    # a key no run's config has: no run is a trial of that space
    assert trial_records(bowl.log_dir, EXPERIMENT, ["x", "lr"], "outcome.val_loss") == []


def test_i14_study_records_read_a_format_1_run(bowl: Project, tmp_path: Path) -> None:
    """A run directory written with run.json format 1 (the first format) is a trial."""
    import shutil

    copy = tmp_path / "logs"
    shutil.copytree(bowl.log_dir, copy, ignore=shutil.ignore_patterns(".xprun-index"))
    for run_dir in sorted((copy / EXPERIMENT).iterdir()):
        _rewrite(run_dir, format=1)
    records = trial_records(copy, EXPERIMENT, PARAMS, "outcome.val_loss")
    original = trial_records(bowl.log_dir, EXPERIMENT, PARAMS, "outcome.val_loss")
    assert [(r.hash, r.state, r.value) for r in records] == [
        (r.hash, r.state, r.value) for r in original
    ]


def test_i14_study_records_objective_not_a_number_is_failed(bowl: Project, tmp_path: Path) -> None:
    """A complete run whose objective is NaN, text or a boolean is told as failed; an
    infinite one is a value (Optuna takes it)."""
    import shutil

    copy = tmp_path / "logs"
    shutil.copytree(bowl.log_dir, copy, ignore=shutil.ignore_patterns(".xprun-index"))
    original = trial_records(bowl.log_dir, EXPERIMENT, PARAMS, "outcome.val_loss")
    complete = [r for r in original if r.state == "complete"]
    texts = [
        '{"val_loss": NaN}',
        '{"val_loss": "low"}',
        '{"val_loss": true}',
        '{"val_loss": Infinity}',
    ]
    for record, text in zip(complete, texts, strict=False):
        (copy / EXPERIMENT / record.hash / "outcome.json").write_text(text)
    changed = {r.hash: r for r in trial_records(copy, EXPERIMENT, PARAMS, "outcome.val_loss")}
    assert [(changed[r.hash].state, changed[r.hash].value) for r in complete[:4]] == [
        ("failed", None),
        ("failed", None),
        ("failed", None),
        ("complete", float("inf")),
    ]
    assert all(changed[r.hash] == r for r in original if r not in complete[:4])


SLOW = """
import os, time
import xprun

@xprun.config({"x": 0.5, "y": 1, "opt": "a"})
def xp_slow(config, logger):
    logger.log_metrics({"val_loss": 1.0}, step=0)
    open(os.environ["XP_STARTED"], "w").close()
    time.sleep(60)
    return {"val_loss": 1.0}
"""


def test_i14_study_records_running_and_interrupted(project: Project, tmp_path: Path) -> None:
    """A run in flight (a live claim) is ``running``; killed (SIGKILL), ``interrupted``;
    both are RUNNING trials in the study, so no sampler takes their config as free."""
    project.write("xp_slow.py", SLOW)
    started = tmp_path / "started"
    env = {**project.env(), "XP_STARTED": str(started)}
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "xprun", "-q"],
        cwd=project.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        (record,) = trial_records(project.log_dir, "xp_slow.xp_slow", PARAMS, "outcome.val_loss")
        assert (record.state, record.value) == ("running", None)
        study = build_study([record], space(), "minimize", optuna.samplers.RandomSampler(0))
        assert [t.state for t in study.trials] == [optuna.trial.TrialState.RUNNING]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    (record,) = trial_records(project.log_dir, "xp_slow.xp_slow", PARAMS, "outcome.val_loss")
    assert record.state == "interrupted"
    study = build_study([record], space(), "minimize", optuna.samplers.RandomSampler(0))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.RUNNING]
    shown = project.run("show", "--study", "-e", "xp_slow.xp_slow")
    assert shown.returncode == 4 and "record no search" in shown.stderr, shown.output


# -- the objective path ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "file", "metric"),
    [
        ("outcome.val_loss", "outcome.val_loss", "metrics", "val_loss"),
        ("outcome.eval.loss", "outcome.eval.loss", "metrics", "loss"),
        ("metrics.val_loss", "metrics.val_loss.last", "metrics", "val_loss"),
        ("metrics.val_loss.min", "metrics.val_loss.min", "metrics", "val_loss"),
        ("metrics.eval:acc", "metrics.eval:acc.last", "eval", "acc"),
        ("metrics.eval:acc.max", "metrics.eval:acc.max", "eval", "acc"),
    ],
)
def test_i14_study_objective_paths(text: str, key: str, file: str, metric: str) -> None:
    parsed = parse_objective(text)
    assert (parsed.key, parsed.file, parsed.metric) == (key, file, metric)


@pytest.mark.parametrize(
    "text",
    ["val_loss", "outcome.", "metrics.", "config.lr", "outcome..x", "", "metrics.a/b:x", 3],
)
def test_i14_study_objective_bad_paths_name_it(text: object) -> None:
    with pytest.raises(UsageError, match="objective") as info:
        parse_objective(text)
    assert repr(text) in str(info.value)


def test_i14_study_bad_objective_is_refused_before_reading(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="'loss'"):
        trial_records(tmp_path / "nowhere", EXPERIMENT, PARAMS, "loss")


# -- build_study ------------------------------------------------------------------------------


def test_i14_study_build_best_equals_best_run(bowl: Project) -> None:
    records = trial_records(bowl.log_dir, EXPERIMENT, PARAMS, "outcome.val_loss")
    sampler = optuna.samplers.TPESampler(seed=0)
    study = build_study(records, space(), "minimize", sampler)
    complete = [r for r in records if r.state == "complete"]
    best = min(complete, key=lambda r: r.value)
    assert study.best_value == best.value
    assert study.best_params == best.params
    assert study.best_trial.user_attrs["xprun.hash"] == best.hash
    states = [t.state.name for t in study.trials]
    assert states == [{"failed": "FAIL"}.get(r.state, r.state.upper()) for r in records]
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert [t.intermediate_values for t in pruned] == [
        r.intermediate for r in records if r.state == "pruned"
    ]
    highest = build_study(records, space(), "maximize", optuna.samplers.TPESampler(seed=0))
    assert highest.best_value == max(r.value for r in complete)


def test_i14_study_seeded_sampler_proposes_the_same_on_rebuilds(bowl: Project) -> None:
    records = trial_records(bowl.log_dir, EXPERIMENT, PARAMS, "outcome.val_loss")

    def proposals(history: list[TrialRecord]) -> list[dict]:
        sampler = optuna.samplers.TPESampler(seed=7, n_startup_trials=2)
        study = build_study(history, space(), "minimize", sampler)
        return [study.ask(space()).params for _ in range(3)]

    first = proposals(records)
    shuffled = list(records)
    random.Random(1).shuffle(shuffled)
    assert proposals(shuffled) == first  # the records' number, not their order, counts
    assert proposals(records) == first
    other = [
        TrialRecord(r.hash, r.number, r.params, r.state, r.value and -r.value, {}) for r in records
    ]
    assert proposals(other) != first  # the history is what decides


def test_i14_study_records_outside_the_space_are_left_out(bowl: Project) -> None:
    records = trial_records(bowl.log_dir, EXPERIMENT, PARAMS, "outcome.val_loss")
    narrowed = {**space(), "x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    study = build_study(records, narrowed, "minimize", optuna.samplers.RandomSampler(0))
    assert len(study.trials) == sum(r.params["x"] == 0.5 for r in records) == 4
    fewer = {k: v for k, v in space().items() if k != "opt"}
    assert build_study(records, fewer, "minimize", None).trials == []
    with pytest.raises(UsageError, match="'down'"):
        build_study(records, space(), "down", None)


@pytest.mark.parametrize("pruner", ["hyperband", "halving", "median"])
def test_i14_study_pruner_decides_as_in_a_live_study(pruner: str) -> None:
    """A study rebuilt from the records of a live Optuna study leaves its pruner the state
    it had (successive halving and Hyperband keep rung values in the trials themselves):
    the same rung values, and the same decisions on new trials."""
    make = {
        "hyperband": lambda: optuna.pruners.HyperbandPruner(1, 27, 3),
        "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1),
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3),
    }[pruner]
    x_space = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}

    def run(study: optuna.Study, x: float | None = None) -> TrialRecord:
        trial = study.ask(x_space) if x is None else study.ask({"x": x_space["x"]})
        x = trial.params["x"] if x is None else x
        steps = {}
        for step in range(27):
            steps[step] = (x - 0.3) ** 2 + 1 / (step + 1)
            trial.report(steps[step], step)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                return TrialRecord(
                    str(trial.number), trial.number, {"x": x}, "pruned", steps[step], steps
                )
        study.tell(trial, steps[26])
        return TrialRecord(str(trial.number), trial.number, {"x": x}, "complete", steps[26], steps)

    live = optuna.create_study(
        study_name="xprun", sampler=optuna.samplers.RandomSampler(seed=1), pruner=make()
    )
    records = [run(live) for _ in range(40)]
    assert any(r.state == "pruned" for r in records)
    rebuilt = build_study(
        records, x_space, "minimize", optuna.samplers.RandomSampler(seed=1), make()
    )
    assert [t.system_attrs for t in rebuilt.trials] == [t.system_attrs for t in live.trials]
    assert [t.state for t in rebuilt.trials] == [t.state for t in live.trials]
    assert [t.values for t in rebuilt.trials] == [t.values for t in live.trials]
    fates = [[run(s, x).state for x in (0.05, 0.3, 0.95, 0.6)] for s in (live, rebuilt)]
    assert fates[0] == fates[1]
    plain = build_study(records, x_space, "minimize", None, make(), replay=False)
    assert all(not t.system_attrs for t in plain.trials)  # restored otherwise by the caller


def test_i14_study_best_so_far() -> None:
    def record(n: int, state: str, value: float | None) -> TrialRecord:
        return TrialRecord(str(n), n, {}, state, value, {})

    history = [record(2, "complete", 3.0), record(0, "complete", 5.0), record(1, "pruned", 1.0)]
    history += [record(3, "failed", None), record(4, "complete", 4.0)]
    assert best_so_far(history, "minimize") == [(0, 5.0), (2, 3.0), (4, 3.0)]
    assert best_so_far(history, "maximize") == [(0, 5.0), (2, 5.0), (4, 5.0)]


def test_i14_study_search_settings_read_back() -> None:
    written = search_record(space(), "outcome.val_loss", "maximize")
    read = search_settings(json.loads(json.dumps({"search": written})))
    assert read is not None
    assert (read.objective, read.direction, read.params) == ("outcome.val_loss", "maximize", PARAMS)
    assert read.distributions == space()
    keys_only = {"objective": "metrics.loss", "direction": "minimize", "params": ["x"]}
    read = search_settings({"search": keys_only})
    assert read is not None and (read.params, read.distributions) == (["x"], None)
    for bad in (
        None,
        "tpe",
        {**keys_only, "direction": "down"},
        {**keys_only, "objective": 3},
        {**keys_only, "params": "x"},
        {**keys_only, "params": None, "space": {"x": {"name": "NoSuchDistribution"}}},
    ):
        assert search_settings({"search": bad}) is None, bad
    assert search_settings({}) is None


# -- xprun show and xprun plot -----------------------------------------------------------------


def _searched(bowl: Project, tmp_path: Path, keys_only: bool = False) -> Path:
    """A copy of the bowl's log directory whose records say what was searched, as the search
    plugin writes them (``search``: with the space, or the searched keys only)."""
    import shutil

    copy = tmp_path / "logs"
    shutil.copytree(bowl.log_dir, copy, ignore=shutil.ignore_patterns(".xprun-index"))
    field = search_record(space(), "outcome.val_loss", "minimize")
    if keys_only:
        field = {k: field[k] for k in ("objective", "direction", "params")}
    for run_dir in (copy / EXPERIMENT).iterdir():
        _rewrite(run_dir, search=field)
    return copy


def test_i14_study_show_best_trial_first(bowl: Project, tmp_path: Path) -> None:
    logs = _searched(bowl, tmp_path)
    records = trial_records(logs, EXPERIMENT, PARAMS, "outcome.val_loss")
    complete = sorted((r for r in records if r.state == "complete"), key=lambda r: r.value)
    shown = bowl.run("show", str(logs), "-f", "json")  # searched: the study view by default
    assert shown.returncode == 0, shown.output
    rows = json.loads(shown.stdout)
    assert rows[0]["hash"] == complete[0].hash and rows[0]["state"] == "complete"
    values = [row["outcome.val_loss"] for row in rows if row["state"] == "complete"]
    assert values == sorted(values) == [r.value for r in complete]
    assert [row["state"] for row in rows[len(values) :]] == ["pruned", *["failed"] * 4]
    assert {row["config.opt"] for row in rows} == {"a", "b"}
    table = bowl.run("show", str(logs))
    lines = table.stdout.splitlines()
    assert lines[0].startswith(f"{EXPERIMENT}: 12 trials (7 complete, 1 pruned, 4 failed)")
    assert lines[1].startswith(f"best: trial {complete[0].number} ({complete[0].hash[:12]})")
    assert lines[3].split()[1] == complete[0].hash[:12]
    upward = json.loads(bowl.run("show", str(logs), "--direction", "maximize", "-f", "json").stdout)
    assert upward[0]["outcome.val_loss"] == complete[-1].value  # two runs tie: either
    assert [r["outcome.val_loss"] for r in upward[:7]] == [r.value for r in complete[::-1]]
    plain = bowl.run("show", str(logs), "--no-study", "-f", "json")
    assert "status" in json.loads(plain.stdout)[0]


def test_i14_study_show_given_objective(bowl: Project) -> None:
    """Runs that record no search: the objective on the command line; several experiments
    or --group-by with the study view are usage errors."""
    shown = bowl.run("show", "--objective", "metrics.val_loss.min", "-f", "json")
    assert shown.returncode == 0, shown.output
    rows = json.loads(shown.stdout)
    best = min(
        (r for r in rows if r["state"] == "complete"), key=lambda r: r["metrics.val_loss.min"]
    )
    assert rows[0] == best
    assert rows[0]["metrics.val_loss.min"] == pytest.approx(curve(0.5, 0, 1))
    bad = bowl.run("show", "--objective", "loss")
    assert bad.returncode == 4 and "objective 'loss'" in bad.stderr
    grouped = bowl.run("show", "--study", "--group-by", "config.opt")
    assert grouped.returncode == 4 and "--group-by" in grouped.stderr


def _is_png(path: Path) -> bool:
    return path.stat().st_size > 0 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_i14_study_plot_history_and_importance(bowl: Project, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    logs = _searched(bowl, tmp_path, keys_only=True)  # the space is read from the values
    history, importance = tmp_path / "history.png", tmp_path / "importance.png"
    done = bowl.run("plot", str(logs), "--history", "-o", str(history))
    assert done.returncode == 0 and "(8 trials)" in done.stdout, done.output
    assert _is_png(history)
    done = bowl.run("plot", str(logs), "--importance", "-o", str(importance))
    assert done.returncode == 0 and "(3 keys)" in done.stdout, done.output
    assert _is_png(importance)
    for bad in (
        ["--history", "--y", "val_loss"],
        ["--history", "--importance"],
        ["--importance", "--logy"],
        ["--objective", "outcome.val_loss", "--y", "val_loss"],
        [],
    ):
        out = tmp_path / "bad.png"
        result = bowl.run("plot", str(logs), *bad, "-o", str(out))
        assert result.returncode == 4, (bad, result.output)
        assert not out.exists()
    few = bowl.run(
        "plot",
        "--importance",
        "--objective",
        "outcome.val_loss",
        "-w",
        "config.x == 0.5 and config.y == 0 and config.opt == a",
        "-o",
        str(tmp_path / "few.png"),
    )
    assert few.returncode == 4 and "at least 2 complete" in few.stderr, few.output
