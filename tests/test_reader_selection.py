"""What the Reader selects: a log directory, not a folder inside one; and ``metrics()`` of
a selection, one frame whatever the reader read before.

The reader reads each run's metrics file once and keeps the rows; a selection's frame is
cut from them.  Read together with other runs, a run's rows gain their metric columns
(empty) and a type that fits them all (an integer metric float where another run lacks it,
a boolean object): the frame a selection gets must not depend on that (found by a user
session: ``r.filter(q).metrics()`` had more columns, and other types, after ``r.metrics()``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

import xprun
from xprun.reader.metrics import BASE_COLUMNS, long_frame, selection

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

EXPERIMENT = """
import math
import xprun

@xprun.grid(x=[1, 2, 3])
def xp_m(config, logger):
    if config.x == 1:
        logger.log_metrics({"a": 1, "flag": True}, step=0)
        logger.log_metrics({"a": 2, "flag": False}, step=1)
    elif config.x == 2:
        logger.log_metrics({"b": 1.5, "a": 3}, step=0)
        logger.log_metrics({"nan_only": math.nan}, step=1)
    return {"x": config.x}
"""


@pytest.fixture
def log_dir(project) -> Path:
    project.write("xp_m.py", EXPERIMENT)
    result = project.run("-q")
    assert result.returncode == 0, result.output
    return project.log_dir


QUERIES = ["config.x == 1", "config.x == 2", "config.x == 3", "config.x >= 2", "config.x != 2"]


@pytest.mark.parametrize("query", QUERIES)
def test_a_selections_metrics_are_the_same_whatever_was_read_before(log_dir, query):
    alone = xprun.Reader(log_dir).filter(query).metrics()
    reader = xprun.Reader(log_dir)
    wider = reader.metrics()  # every run read first
    after = reader.filter(query).metrics()
    pd.testing.assert_frame_equal(after, alone)
    for other in QUERIES:  # and after any other selection
        reader = xprun.Reader(log_dir)
        reader.filter(other).metrics()
        pd.testing.assert_frame_equal(reader.filter(query).metrics(), alone)
    assert len(wider) == 4  # x=1: steps 0 and 1; x=2: steps 0 and 1


def test_the_columns_are_the_selections_own_with_time_always(log_dir):
    reader = xprun.Reader(log_dir)
    reader.metrics()
    first = ["experiment", "hash", "attempt", "step", "time"]
    assert list(reader.filter("config.x == 1").metrics().columns) == [*first, "a", "flag"]
    # a metric logged only as NaN is still a column of the run that logged it
    assert list(reader.filter("config.x == 2").metrics().columns) == [
        *first,
        "b",
        "a",
        "nan_only",
    ]
    none = reader.filter("config.x == 3").metrics()
    assert list(none.columns) == first and len(none) == 0  # no metrics: time all the same
    every = reader.metrics()
    assert list(every.columns) == [*first, "a", "flag", "b", "nan_only"] or list(every.columns) == [
        *first,
        "b",
        "a",
        "nan_only",
        "flag",
    ]  # first appearance, in the runs' order


def test_metric_values_are_floats_booleans_0_and_1(log_dir):
    frame = xprun.Reader(log_dir).filter("config.x == 1").metrics()
    assert frame["a"].dtype == "float64" and frame["flag"].dtype == "float64"
    assert frame["a"].tolist() == [1.0, 2.0] and frame["flag"].tolist() == [1.0, 0.0]
    assert frame["step"].dtype == "int64" and frame["attempt"].dtype == "int64"
    assert frame["time"].dtype == "float64" and frame["time"].notna().all()


def test_all_attempts_gives_the_same_columns(log_dir):
    reader = xprun.Reader(log_dir)
    latest = reader.filter("config.x == 1").metrics()
    every = reader.filter("config.x == 1").metrics(all_attempts=True)
    pd.testing.assert_frame_equal(every, latest)  # one attempt each: the same rows


def _write(run: Path, lines: list[dict]) -> Path:
    (run / "metrics").mkdir(parents=True)
    text = "".join(json.dumps(line) + "\n" for line in lines)
    (run / "metrics" / "train.jsonl").write_text(text)
    return run


def test_selection_unit_keys_order_types_and_absent_runs(tmp_path):
    a = _write(tmp_path / "a", [{"step": 0, "time": 1.0, "attempt": 1, "z": 1, "ok": True}])
    b = _write(tmp_path / "b", [{"step": 0, "time": 2.0, "y": 0.5}, {"step": 1, "z": None}])
    read = long_frame([("ha", a), ("hb", b), ("hc", tmp_path / "c")], "train")
    assert read.keys == {
        "ha": ("step", "time", "attempt", "z", "ok"),
        "hb": ("step", "time", "y", "z"),
        "hc": (),
    }
    only_b = selection(read.frame, ["hb"], read.keys)
    assert list(only_b.columns) == [*BASE_COLUMNS, "y", "z"]
    assert only_b["attempt"].isna().all() and only_b["attempt"].dtype == "float64"  # no attempt
    assert math.isnan(only_b["time"].tolist()[1])
    only_a = selection(read.frame, ["ha"], read.keys)
    assert list(only_a.columns) == [*BASE_COLUMNS, "z", "ok"]
    assert only_a["attempt"].dtype == "int64"  # int again, once b's missing attempt is not there
    assert only_a["z"].tolist() == [1.0] and only_a["ok"].tolist() == [1.0]
    none = selection(read.frame, ["hc"], read.keys)
    assert list(none.columns) == list(BASE_COLUMNS) and len(none) == 0
    # the order of first appearance follows the order of the runs asked for
    both = selection(read.frame, ["hb", "ha"], read.keys)
    assert list(both.columns) == [*BASE_COLUMNS, "y", "z", "ok"]


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_folder_inside_the_log_directory_is_refused_with_the_one_to_pass(project, log_dir):
    """An experiment's folder (or a run's) given for the log directory was read as runs
    that are all damaged (hundreds of warnings, no runs) and got an index written into it."""
    from xprun.reader.files import NotALogDirectory

    folder = log_dir / "xp_m.xp_m"
    run_dir = next(p for p in folder.iterdir() if p.is_dir())
    before = _listing(folder)
    with pytest.raises(NotALogDirectory) as refused:
        xprun.Reader(folder)
    message = str(refused.value)
    assert f"it is the folder of experiment xp_m.xp_m in the log directory {log_dir}" in message
    assert f"Reader({str(log_dir)!r}).experiment('xp_m.xp_m')" in message
    with pytest.raises(FileNotFoundError, match=r"the directory of a run of xp_m\.xp_m"):
        xprun.Reader(run_dir)
    assert _listing(folder) == before  # no index, no clock written into it
    shown = project.run("show", str(folder))
    assert shown.returncode == 4, shown.output
    assert "is not a log directory" in shown.stderr and "warning" not in shown.stderr
    assert len(xprun.Reader(log_dir).experiment("xp_m.xp_m")) == 3  # the one it names


def test_show_takes_the_log_directory_as_the_other_commands_do(project, log_dir):
    # `xprun show --log-dir DIR` was refused ("unrecognized arguments") while the launcher,
    # rm, gc, diff and reproduce take --log-dir.
    elsewhere = project.root / "sub"
    elsewhere.mkdir()
    positional = project.run("show", str(log_dir), cwd=elsewhere)
    option = project.run("show", "--log-dir", str(log_dir), cwd=elsewhere)
    assert positional.returncode == option.returncode == 0, option.output
    assert option.stdout == positional.stdout and "xp_m.xp_m" in option.stdout
    same = project.run("show", str(log_dir), "--log-dir", "xprun_logs")
    assert same.returncode == 0, same.output  # the same folder twice
    two = project.run("show", str(log_dir), "--log-dir", str(elsewhere))
    assert two.returncode == 4, two.output
    assert "two log directories given" in two.stderr


def test_rm_given_the_log_directory_as_a_word_says_how_to_name_it(project, log_dir):
    # `xprun rm xprun_logs` (the log directory, where runs are asked for) was a query error.
    before = _listing(log_dir / "xp_m.xp_m")
    result = project.run("rm", "xprun_logs")
    assert result.returncode == 4, result.output
    assert "'xprun_logs' is a folder, not runs" in result.stderr
    assert '--log-dir xprun_logs "status == failed"' in result.stderr
    assert _listing(log_dir / "xp_m.xp_m") == before  # no run removed
    broken = project.run("rm", "status ==")  # a query that is not one: its own error
    assert broken.returncode == 4 and "expected a value" in broken.stderr
