"""Reading metrics files: the latest attempt wins a step, two calls at one step are one row,
damaged lines are skipped and named, and the aggregates; each rule checked where mutation
testing found it unchecked (tools/mutation.py, xprun/reader/metrics.py).

Unit tests of ``xprun.reader.metrics`` on metrics files written as the logger writes them
(one JSON object a line): the Reader's tests that launch runs do so in a subprocess, which a
mutant loaded in this process does not reach.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from xprun.reader.metrics import aggregate, check_name, long_frame, read_lines


def write(run_dir: Path, lines: list, name: str = "train", raw: str = "") -> Path:
    (run_dir / "metrics").mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(line) + "\n" for line in lines) + raw
    (run_dir / "metrics" / f"{name}.jsonl").write_text(text)
    return run_dir


def rows(frame: pd.DataFrame, *columns: str) -> list[tuple]:
    """The frame's rows as tuples of plain values (NaN as None)."""
    out = []
    for record in frame[list(columns)].itertuples(index=False):
        out.append(tuple(None if _missing(v) else v for v in record))
    return out


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def test_i12_mut_two_calls_at_one_step_are_one_row(tmp_path: Path) -> None:
    run = write(
        tmp_path / "a",
        [
            {"step": 0, "attempt": 1, "time": 1.0, "loss": 1.0},
            {"step": 0, "attempt": 1, "time": 2.0, "acc": 0.5},
            {"step": 1, "attempt": 1, "time": 3.0, "loss": 0.5},
            {"step": 1, "attempt": 1, "time": 4.0, "loss": 0.25},  # logged twice: the last
        ],
    )
    frame, damage, _keys = long_frame([("h1", run)], "train")
    assert damage == {}
    assert rows(frame, "hash", "step", "attempt", "time", "loss", "acc") == [
        ("h1", 0, 1, 2.0, 1.0, 0.5),
        ("h1", 1, 1, 4.0, 0.25, None),
    ]
    assert list(frame.index) == [0, 1]
    assert list(frame.columns) == ["hash", "step", "attempt", "time", "loss", "acc"]


def test_i12_mut_the_latest_attempt_wins_a_step_whatever_the_order(tmp_path: Path) -> None:
    run = write(
        tmp_path / "a",
        [
            {"step": 0, "attempt": 2, "loss": 20.0},
            {"step": 1, "attempt": 2, "loss": 21.0},
            {"step": 0, "attempt": 1, "loss": 10.0, "acc": 1.0},  # an older owner, late
            {"step": 2, "attempt": 1, "loss": 12.0},  # only the first attempt got there
            {"step": 1, "attempt": 3, "acc": 3.0},
        ],
    )
    frame, _, _keys = long_frame([("h1", run)], "train")
    assert rows(frame, "step", "attempt", "loss", "acc") == [
        (0, 2, 20.0, None),
        (1, 3, None, 3.0),
        (2, 1, 12.0, None),
    ]
    every, _, _keys = long_frame([("h1", run)], "train", all_attempts=True)
    assert len(every) == 5
    assert list(every.columns) == ["hash", "step", "attempt", "loss", "acc"]
    assert rows(every, "step", "attempt") == [(0, 2), (0, 1), (1, 2), (1, 3), (2, 1)]


def test_i12_mut_lines_without_an_attempt_lose_to_those_with_one(tmp_path: Path) -> None:
    run = write(
        tmp_path / "a",
        [
            {"step": 0, "loss": 1.0},
            {"step": 0, "attempt": 1, "loss": 2.0},
            {"step": 1, "loss": 3.0},
            {"step": 1, "acc": 4.0},
            {"step": 2, "acc": 9.0},  # an older writer without attempts: loses the step
            {"step": 2, "attempt": 1, "loss": 5.0},
        ],
    )
    frame, damage, _keys = long_frame([("h1", run)], "train")
    assert damage == {}
    assert rows(frame, "step", "attempt", "loss", "acc") == [
        (0, 1, 2.0, None),
        (1, None, 3.0, 4.0),
        (2, 1, 5.0, None),
    ]


def test_i12_mut_runs_are_kept_apart_and_sorted_by_hash_then_step(tmp_path: Path) -> None:
    b = write(
        tmp_path / "b", [{"step": 1, "attempt": 1, "x": 1}, {"step": 0, "attempt": 1, "x": 2}]
    )
    a = write(tmp_path / "a", [{"step": 0, "attempt": 2, "x": 3}])
    frame, _, _keys = long_frame([("hb", b), ("ha", a), ("hc", tmp_path / "none")], "train")
    assert rows(frame, "hash", "step", "attempt", "x") == [
        ("ha", 0, 2, 3),
        ("hb", 0, 1, 2),
        ("hb", 1, 1, 1),
    ]


def test_i12_mut_no_file_no_rows(tmp_path: Path) -> None:
    frame, damage, _keys = long_frame([("h", tmp_path)], "train")
    assert len(frame) == 0 and damage == {}
    assert {"hash", "step", "attempt"} <= set(frame.columns)
    write(tmp_path, [], raw="\n  \n")
    assert read_lines(tmp_path, "train") == ([], None, 0)


def test_i12_mut_damaged_lines_are_skipped_and_named(tmp_path: Path) -> None:
    run = write(
        tmp_path / "a",
        [
            {"step": 0, "loss": 1.0},
            {"step": 1.5, "loss": 2.0},  # not an integer step
            {"step": "2", "loss": 2.0},
            {"step": 3, "loss": "high"},  # not a number
            {"step": 4, "loss": [1]},
            [1, 2],  # JSON, not an object
            {"step": 5, "hash": 1.0},  # a reserved column
            {"step": 6, "attempt": 1.5, "loss": 1.0},
            {"step": 7, "loss": None, "ok": True},
            {"step": 8.0, "loss": 2**70},
        ],
        raw='{"step": 9, "loss"',  # torn: silently skipped
    )
    frame, damage, _keys = long_frame([("h1", run)], "train")
    assert rows(frame, "step", "loss") == [(0, 1.0), (7, None), (8, math.inf)]
    assert frame["step"].dtype == "int64"
    assert damage == {
        "h1": "metrics/train.jsonl: 7 lines skipped (not an object with an integer step and "
        "numeric values)"
    }


def test_i12_mut_one_damaged_line_is_named_in_the_singular(tmp_path: Path) -> None:
    run = write(tmp_path / "a", [{"step": 0, "loss": 1.0}, {"step": 1, "loss": "x"}])
    good = write(tmp_path / "b", [{"step": 0, "loss": 1.0}])
    frame, damage, _keys = long_frame([("h1", run), ("h2", good)], "train")
    assert damage == {
        "h1": "metrics/train.jsonl: 1 line skipped (not an object with an integer step and "
        "numeric values)"
    }
    assert rows(frame, "hash", "step", "loss") == [("h1", 0, 1.0), ("h2", 0, 1.0)]


def test_i12_mut_values_pandas_can_compute_with(tmp_path: Path) -> None:
    run = write(
        tmp_path / "a",
        [
            {"step": 0, "attempt": 1, "a": True, "b": -(2**70), "c": 2**63 - 1, "d": None},
            {"step": 1, "attempt": 1, "a": 1.5, "b": 2, "c": -(2**63), "d": 3},
            {"step": 2, "attempt": 1, "a": False, "b": 2**63, "c": 0, "d": 4.5},
        ],
    )
    frame, damage, _keys = long_frame([("h", run)], "train")
    assert damage == {}
    assert rows(frame, "a", "b", "d") == [
        (1.0, -math.inf, None),
        (1.5, 2.0, 3.0),
        (0.0, math.inf, 4.5),
    ]
    assert list(frame["c"]) == [2**63 - 1, -(2**63), 0]


def test_i12_mut_steps_out_of_int64_are_damage(tmp_path: Path) -> None:
    run = write(
        tmp_path / "a",
        [
            {"step": 2**63, "x": 1},
            {"step": -(2**63), "x": 2},
            {"step": 2**63 - 1, "x": 5},
            {"step": True, "x": 6},
        ],
    )
    frame, damage, _keys = long_frame([("h", run)], "train")
    assert rows(frame, "step", "x") == [(-(2**63), 2), (2**63 - 1, 5)]
    assert "2 lines skipped" in damage["h"]
    # written as floats (the checker accepts 1.0 as step 1)
    run = write(
        tmp_path / "b",
        [
            {"step": 2.0**63, "x": 3},
            {"step": -(2.0**63), "x": 4},
            {"step": -(2.0**62), "x": 8},
            {"step": 1.0, "x": 7},
            {"step": 2, "x": 9},
        ],
    )
    frame, damage, _keys = long_frame([("h", run)], "train")
    assert rows(frame, "step", "x") == [(-(2**62), 8), (1, 7), (2, 9)]
    assert "2 lines skipped" in damage["h"]


def test_i12_mut_a_boolean_attempt_is_damage(tmp_path: Path) -> None:
    run = write(tmp_path / "a", [{"step": 0, "attempt": True, "x": 1}, {"step": 1, "x": 2}])
    frame, damage, _keys = long_frame([("h", run)], "train")
    assert rows(frame, "step", "x") == [(1, 2)]
    assert "1 line skipped" in damage["h"]


def test_i12_mut_a_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    (tmp_path / "a" / "metrics" / "train.jsonl").mkdir(parents=True)
    found = read_lines(tmp_path / "a", "train")
    assert found.rows == [] and found.damage
    frame, damage, _keys = long_frame([("h", tmp_path / "a")], "train")
    assert len(frame) == 0 and damage == {"h": found.damage}


def test_i12_mut_json_that_is_not_an_object_is_counted(tmp_path: Path) -> None:
    write(tmp_path, [{"step": 0}, 3, "x", {"step": 1}], raw="[[[\n")  # a torn line too
    assert read_lines(tmp_path, "train") == ([{"step": 0}, {"step": 1}], None, 2)
    write(tmp_path, [{"step": 0}, [1], {"step": 1}])  # every line JSON: the fast path's
    assert read_lines(tmp_path, "train") == ([{"step": 0}, {"step": 1}], None, 1)


@pytest.mark.parametrize("name", ["train", "a.b", "_x", "-x", "x-1.jsonl", "A9"])
def test_i12_mut_metric_file_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", ".x", "a/b", "../x", "a b", None, 3, "x\n"])
def test_i12_mut_metric_file_names_that_could_leave_the_folder(name) -> None:
    with pytest.raises(ValueError, match=r"metrics file name .* is not valid"):
        check_name(name)


def test_i12_mut_aggregates(tmp_path: Path) -> None:
    a = write(tmp_path / "a", [{"step": s, "loss": v} for s, v in enumerate([3.0, None, 1.0, 2.0])])
    b = write(tmp_path / "b", [{"step": 0, "acc": 1.0}])
    frame, _, _keys = long_frame([("ha", a), ("hb", b)], "train")
    wanted = [(m, h) for m in ("loss", "acc", "nope") for h in ("last", "first", "min", "max")]
    wanted += [("loss", "mean"), ("loss", "count"), ("loss", "last")]
    table = aggregate(frame, wanted)
    assert list(table.columns) == list(dict.fromkeys(wanted))
    assert table.loc["ha", ("loss", "last")] == 2.0
    assert table.loc["ha", ("loss", "first")] == 3.0
    assert table.loc["ha", ("loss", "min")] == 1.0
    assert table.loc["ha", ("loss", "max")] == 3.0
    assert table.loc["ha", ("loss", "mean")] == 2.0
    assert table.loc["ha", ("loss", "count")] == 3
    assert table.loc["hb", ("acc", "max")] == 1.0
    assert math.isnan(table.loc["hb", ("loss", "last")])
    assert table[("nope", "min")].isna().all() and len(table) == 2
    with pytest.raises(ValueError, match=r"unknown aggregate 'median'; use one of last, first"):
        aggregate(frame, [("loss", "median")])
    empty = aggregate(frame.iloc[0:0], [("loss", "max")])
    assert len(empty) == 0 and list(empty.columns) == [("loss", "max")]
    assert list(aggregate(frame, [("hash", "max")]).columns) == [("hash", "max")]


def test_i12_mut_a_torn_line_amid_others_is_skipped_alone(tmp_path: Path) -> None:
    """A process killed mid-write, then resumed: the lines after the torn one are read."""
    write(tmp_path, [{"step": 0, "x": 1}], raw='{"step": 1, "x"\n{"step": 2, "x": 3}\n')
    assert read_lines(tmp_path, "train") == ([{"step": 0, "x": 1}, {"step": 2, "x": 3}], None, 0)


def test_i12_mut_each_column_is_checked_after_a_numeric_one(tmp_path: Path) -> None:
    run = write(
        tmp_path / "a",
        [{"step": 0, "a": 1.0, "b": 1.0}, {"step": 1, "a": 2.0, "b": "x"}],
    )
    frame, damage, _keys = long_frame([("h", run)], "train")
    assert rows(frame, "step", "a", "b") == [(0, 1.0, 1.0)]
    assert "1 line skipped" in damage["h"]


def test_i12_mut_a_column_of_booleans_keeps_them(tmp_path: Path) -> None:
    run = write(tmp_path / "a", [{"step": 0, "ok": True}, {"step": 1, "ok": False}])
    frame, damage, _keys = long_frame([("h", run)], "train")
    assert damage == {} and frame["ok"].dtype == bool
    assert frame["ok"].tolist() == [True, False]
