"""The Reader on sweeps made by xprun: values agree with the files, damage is survived,
the index refreshes incrementally."""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import xprun
from xprun.reader import index as index_module

SWEEP = """
import xprun

@xprun.config({"lr": 0.1, "opt": "sgd", "model": {"width": 8}})
@xprun.grid(lr=[0.1, 0.01], opt=["sgd", "adam"], seed=[0, 1, 2])
def xp_fit(config, logger, seed):
    score = 0.0
    for step in range(5):
        score = config.lr * (step + 1) + seed / 10 + (0.5 if config.opt == "adam" else 0.0)
        logger.log_metrics({"loss": 1 / (step + 1 + seed), "acc": score}, step=step)
    logger.log_metrics({"acc": score * 2}, name="eval")
    return {"score": score, "nested": {"n": seed}}
"""


@pytest.fixture
def sweep(project):
    project.write("xp_fit.py", SWEEP)
    result = project.run("-q")
    assert result.returncode == 0, result.output
    return project


def files_of(run_dir: Path):
    record = json.loads((run_dir / "run.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    outcome = json.loads((run_dir / "outcome.json").read_text())
    lines = [
        json.loads(x) for x in (run_dir / "metrics" / "metrics.jsonl").read_text().splitlines()
    ]
    return record, config, outcome, lines


def test_to_pandas_metrics_and_groupby_agree_with_the_files(sweep):
    reader = xprun.Reader(sweep.log_dir)
    assert len(reader) == 12
    frame = reader.to_pandas().set_index("hash")
    expected_scores, expected_groups, expected_last = {}, {}, {}
    all_lines = []
    for run_dir in sweep.run_dirs():
        record, config, outcome, lines = files_of(run_dir)
        row = frame.loc[record["hash"]]
        assert row["status"] == record["status"] and row["attempt"] == record["attempt"]
        assert row["experiment"] == "xp_fit.xp_fit" and row["nodeid"] == record["nodeid"]
        assert row["start"] == record["start"] and row["host"] == record["host"]
        assert row["config.lr"] == config["lr"] and row["config.opt"] == config["opt"]
        assert row["config.model.width"] == 8 and row["config.seed"] == config["seed"]
        assert (
            row["outcome.score"] == outcome["score"]
            and row["outcome.nested.n"] == outcome["nested"]["n"]
        )
        expected_scores[record["hash"]] = outcome["score"]
        expected_groups.setdefault((config["opt"], config["lr"]), []).append(outcome["score"])
        expected_last[record["hash"]] = lines[-1]["loss"]
        all_lines += [(record["hash"], x["step"], x["loss"], x["acc"]) for x in lines]

    metrics = reader.metrics(columns=["config.lr"])
    assert len(metrics) == len(all_lines) == 60
    got = sorted(
        zip(metrics["hash"], metrics["step"], metrics["loss"], metrics["acc"], strict=True)
    )
    assert got == sorted(all_lines)
    assert set(metrics.columns) >= {
        "experiment",
        "hash",
        "attempt",
        "step",
        "time",
        "loss",
        "acc",
        "config.lr",
    }
    assert (
        dict(zip(metrics["hash"], metrics["config.lr"], strict=True))
        == frame["config.lr"].to_dict()
    )

    grouped = reader.groupby("config.opt", "config.lr").agg(
        score=("outcome.score", "mean"),
        spread=("outcome.score", "std"),
        n=("hash", "count"),
        last_loss=("metrics.loss.last", "mean"),
    )
    assert list(grouped.index.names) == ["config.opt", "config.lr"]
    for (opt, lr), scores in expected_groups.items():
        assert grouped.loc[(opt, lr), "score"] == pytest.approx(np.mean(scores))
        assert grouped.loc[(opt, lr), "spread"] == pytest.approx(np.std(scores, ddof=1))
        assert grouped.loc[(opt, lr), "n"] == 3
    overall_last = reader.to_pandas(columns=["hash", "metrics.loss.last", "metrics.eval:acc.max"])
    assert (
        dict(zip(overall_last["hash"], overall_last["metrics.loss.last"], strict=True))
        == expected_last
    )
    eval_max = dict(zip(overall_last["hash"], overall_last["metrics.eval:acc.max"], strict=True))
    assert eval_max == pytest.approx({h: s * 2 for h, s in expected_scores.items()})


def test_filter_is_lazy_and_selects(sweep, monkeypatch):
    reader = xprun.Reader(sweep.log_dir)
    calls = []
    real = index_module.read_run
    monkeypatch.setattr(index_module, "read_run", lambda *a: calls.append(a) or real(*a))
    selection = (
        reader.filter("config.lr < 0.05").filter("config.opt == adam").experiment("xp_fit.xp_fit")
    )
    assert calls == []  # nothing read yet
    assert len(selection) == 3
    assert len(calls) == 12
    assert {r.status for r in selection} == {"complete"}
    record = next(iter(selection))
    assert record.config["lr"] == 0.01 and record.outcome["score"] == record["outcome.score"]
    assert len(reader.filter("metrics.loss.min < 0.2")) == 12 - 4  # seed 0: min 1/5
    with pytest.warns(UserWarning, match=r"did you mean config\.lr"):  # missing, not an error
        assert len(reader.filter("config.lrr < 1")) == 0
    with pytest.raises(KeyError, match=r"xp_fit\.xp_fit"):
        len(reader.experiment("xp_fit.xp_fitt"))


def test_index_is_cached_and_refreshed_incrementally(sweep, monkeypatch):
    old = time.time() - 3600  # runs written long ago: their rows in the index are trusted,
    for run_dir in sweep.run_dirs():  # not re-read for being too fresh (no sleep past that)
        os.utime(run_dir, (old, old))
    first = xprun.Reader(sweep.log_dir)
    assert len(first) == 12
    assert (sweep.log_dir / ".xprun-index" / "runs.arrow").is_file()

    calls = []
    real = index_module.read_run
    monkeypatch.setattr(index_module, "read_run", lambda *a: calls.append(a) or real(*a))
    warm = xprun.Reader(sweep.log_dir)
    assert len(warm) == 12 and calls == []  # nothing re-read

    doomed = sweep.run_dirs()[0]
    result = sweep.run("-q", "lr=0.5", "seed=0")  # 2 new runs
    assert result.returncode == 0, result.output
    shutil.rmtree(doomed)
    again = xprun.Reader(sweep.log_dir)
    assert len(again) == 13
    new_runs = [
        d.name
        for d in sweep.run_dirs()
        if yaml.safe_load((d / "config.yaml").read_text())["lr"] == 0.5
    ]
    assert len(new_runs) == 2
    assert sorted(Path(c[0]).name for c in calls) == sorted(new_runs)  # only the new runs were read
    assert doomed.name not in set(again.to_pandas()["hash"])


def test_a_change_right_after_indexing_is_not_missed(sweep):
    reader = xprun.Reader(sweep.log_dir)
    assert set(reader.to_pandas()["status"]) == {"complete"}
    run_dir = sweep.run_dirs()[0]
    record = json.loads((run_dir / "run.json").read_text())
    record["status"] = "failed"
    (run_dir / "run.json").write_text(json.dumps(record))  # within the same clock tick, maybe
    fresh = xprun.Reader(sweep.log_dir)
    assert sorted(fresh.to_pandas()["status"]) == ["complete"] * 11 + ["failed"]


DAMAGE = {
    "run.json missing": lambda d: (d / "run.json").unlink(),
    "run.json empty": lambda d: (d / "run.json").write_text(""),
    "run.json truncated": lambda d: (d / "run.json").write_text((d / "run.json").read_text()[:40]),
    "run.json not JSON": lambda d: (d / "run.json").write_text("<html>oops</html>"),
    "config.yaml missing": lambda d: (d / "config.yaml").unlink(),
    # Replaced (a new file renamed in, as an editor, sed -i or a copy write it): a config or
    # outcome rewritten in place is seen by refresh(full=True) (tests/test_i11_journal.py).
    "config.yaml broken": lambda d: _replace(d / "config.yaml", "lr: [1, 2\n  : {"),
    "outcome.json missing": lambda d: (d / "outcome.json").unlink(),
    "outcome.json truncated": lambda d: _replace(d / "outcome.json", '{"score": 0.'),
}


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(".replacing")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_damaged_runs_are_skipped_and_named_and_the_rest_load(project):
    project.write(
        "xp_many.py",
        "import xprun\n\n@xprun.grid(i=list(range(160)))\ndef xp_many(config, logger):\n"
        "    logger.log_metrics({'x': config.i})\n    return {'i': config.i}\n",
    )
    assert project.run("-q").returncode == 0
    dirs = project.run_dirs()
    damaged = {}
    for (kind, damage), run_dir in zip(DAMAGE.items(), dirs[::20], strict=True):  # 8 of 160 = 5%
        damage(run_dir)
        damaged[run_dir] = kind
    with open(dirs[1] / "metrics" / "metrics.jsonl", "a") as f:
        f.write('{"step": 7, "x"')  # a torn metric line is not damage
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reader = xprun.Reader(project.log_dir)
        frame = reader.to_pandas()
    assert len(frame) == 152
    assert {s.path for s in reader.skipped} == set(damaged)
    for skipped in reader.skipped:
        what = damaged[skipped.path].split()[0]
        assert what in skipped.reason, (skipped.reason, damaged[skipped.path])
    messages = " ".join(str(w.message) for w in caught)
    for run_dir in damaged:
        assert str(run_dir) in messages
    metrics = reader.metrics()
    assert len(metrics) == 152 and set(metrics["step"]) == {0}
    assert sorted(frame["outcome.i"]) == sorted(frame["config.i"])


def test_live_and_stale_running_runs(project):
    project.write("xp_one.py", "def xp_one():\n    return {'x': 1}\n")
    assert project.run("-q").returncode == 0
    (run_dir,) = project.run_dirs()
    record = json.loads((run_dir / "run.json").read_text())
    record["status"] = "running"
    (run_dir / "run.json").write_text(json.dumps(record))
    claim = run_dir / f"claim.{record['attempt']}"
    claim.write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    assert list(xprun.Reader(project.log_dir).to_pandas()["status"]) == ["running"]
    old = time.time() - 3600
    os.utime(claim, (old, old))
    assert list(xprun.Reader(project.log_dir).to_pandas()["status"]) == ["interrupted"]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_show_and_plot_on_the_quickstart(tmp_path):
    from optional import require

    require("matplotlib")
    from conftest import Project

    example = Path(__file__).parent.parent / "conftest_examples" / "quickstart"
    root = tmp_path / "quickstart"
    shutil.copytree(example, root, ignore=shutil.ignore_patterns("xprun_logs", "__pycache__"))
    project = Project.__new__(Project)
    project.root, project.log_dir, project.inprocess = root, root / "xprun_logs", False
    assert project.run("-q", "seed=0,1").returncode == 0

    shown = project.run("show", "--format", "csv")
    assert shown.returncode == 0, shown.output
    table = pd.read_csv(__import__("io").StringIO(shown.stdout))
    assert len(table) == 12 and {"config.lr", "config.optimizer", "outcome.loss"} <= set(
        table.columns
    )

    grouped = project.run(
        "show", "-g", "config.optimizer", "--where", "config.lr == 0.1", "-f", "json"
    )
    assert grouped.returncode == 0, grouped.output
    groups = json.loads(grouped.stdout)
    assert sorted(g["config.optimizer"] for g in groups) == ["momentum", "nesterov", "sgd"]
    assert all(g["n"] == 2 for g in groups)

    markdown = project.run("show", "-c", "config.lr", "metrics.loss.last", "-f", "markdown")
    assert markdown.stdout.splitlines()[0] == "| config.lr | metrics.loss.last |"

    bad = project.run("show", "--where", "config.lr >")
    assert bad.returncode == 4 and "column 12" in bad.stderr

    out = root / "loss.png"
    plotted = project.run(
        "plot",
        "--y",
        "loss",
        "--hue",
        "config.optimizer",
        "-o",
        str(out),
        "--size",
        "6x4",
        "--dpi",
        "50",
    )
    assert plotted.returncode == 0, plotted.output
    assert png_size(out) == (300, 200)
    import matplotlib.image

    pixels = matplotlib.image.imread(out)
    assert pixels.std() > 0.05  # lines and bands, not a blank canvas
    assert (pixels[..., :3] < 0.9).mean() > 0.01  # enough non-white pixels
    missing = project.run("plot", "--y", "nope", "-o", str(root / "x.png"))
    assert missing.returncode == 4 and "loss" in missing.stderr


def test_i12_reader_metrics_logged_by_two_calls_at_one_step_are_both_kept(project):
    """``log_metrics({'loss': ...}, step=s)`` then ``log_metrics({'acc': ...}, step=s)`` is
    the common way to log training and evaluation: both values belong to step s.  The
    one-line-per-step rule (the latest attempt wins a step) dropped the first call's metrics."""
    project.write(
        "xp_two_calls.py",
        """
        def xp_two_calls(logger):
            for step in range(3):
                logger.log_metrics({"loss": 10.0 - step}, step=step)
                logger.log_metrics({"acc": 0.5 + step / 10, "loss_twice": 1.0}, step=step)
                logger.log_metrics({"loss_twice": 2.0}, step=step)
            return {"done": True}
        """,
    )
    assert project.run("-q").returncode == 0
    for _ in range(2):  # read twice: the second read comes from the cached index
        metrics = xprun.Reader(project.log_dir).metrics()
        assert metrics["step"].tolist() == [0, 1, 2]
        assert metrics["loss"].tolist() == [10.0, 9.0, 8.0]
        assert metrics["acc"].tolist() == [0.5, 0.6, 0.7]
        assert metrics["loss_twice"].tolist() == [2.0, 2.0, 2.0]  # the last value of a step
