"""Issue 9, the Reader's side: ordinary data never crashes the Reader, ``xprun show`` or
``xprun plot``; a damaged or hostile file is skipped and named, never hangs, never exhausts
memory; the query language gives a result or a ``QueryError``, whatever the text.

Runs are made by xprun itself, then damaged on disk as a crash, a colleague or a hostile
archive would.  Whatever could hang or eat memory on a broken Reader (FIFOs, links to
/dev/zero, alias bombs) is read in a child process with a memory limit and a time-out, so a
regression fails the test instead of taking the machine down.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xprun
from xprun.reader import QueryError

MEMORY_LIMIT = 3 << 30  # address space of a child that reads hostile files
GUARD = 120  # seconds: a guard against hangs, not a measurement


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_limited(project, *args: str) -> subprocess.CompletedProcess:
    """``python -m xprun ARGS`` with a memory limit; a hang fails the test at GUARD."""
    return subprocess.run(
        [sys.executable, "-m", "xprun", *args],
        cwd=project.root,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=GUARD,
        preexec_fn=_limit_memory,
    )


READ_ALL = """
import json, sys, warnings
import xprun

warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    reader = xprun.Reader(sys.argv[1])
    frame = reader.to_pandas()
    metrics = reader.metrics()
    agg = reader.groupby("config.kind").agg(loss=("metrics.loss.mean", "mean"))
print(json.dumps({
    "hashes": sorted(frame["hash"]),
    "skipped": {str(s.path): s.reason for s in reader.skipped},
    "warnings": [str(w.message) for w in caught],
    "metric_hashes": sorted(set(metrics["hash"])),
    "steps": sorted(set(int(s) for s in metrics["step"])),
    "groups": sorted(agg.index),
}))
"""


def read_all(project) -> dict:
    """The public API on the whole log directory, in a limited child process."""
    proc = subprocess.run(
        [sys.executable, "-c", READ_ALL, str(project.log_dir)],
        cwd=project.root,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=GUARD,
        preexec_fn=_limit_memory,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def csv(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text))


# -- item 1: a mixed-type column with gaps, read a second time --------------------------------

MODELS = """
import xprun

@xprun.grid(
    model=[{"kind": "svc", "gamma": "scale"}, {"kind": "svc", "gamma": 0.001}, {"kind": "rf"}],
    seed=[0, 1],
)
def xp_models(config, logger):
    acc = 0.5 + config.seed / 10 + (0.2 if config.model.kind == "svc" else 0.0)
    for step in range(3):
        logger.log_metrics({"loss": 1.0 / (step + 1 + config.seed)}, step=step)
    return {"acc": acc}
"""


def test_i9_01_a_mixed_type_column_with_gaps_reads_again_and_again(project):
    project.write("xp_models.py", MODELS)
    assert project.run("-q").returncode == 0
    expected = {}
    for run_dir in project.run_dirs():
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        expected[run_dir.name] = config["model"].get("gamma")
    for _ in range(3):  # the first read builds the index, the later ones load it
        frame = xprun.Reader(project.log_dir).to_pandas().set_index("hash")
        got = {h: (None if pd.isna(v) else v) for h, v in frame["config.model.gamma"].items()}
        assert got == expected
        assert len(xprun.Reader(project.log_dir).filter("config.model.gamma == scale")) == 2
    for _ in range(2):
        shown = project.run("show", "-g", "config.model.kind", "-c", "outcome.acc", "-f", "csv")
        assert shown.returncode == 0, shown.output
        assert sorted(csv(shown.stdout)["n"]) == [2, 4]
        listed = project.run("show", "-f", "csv")
        assert listed.returncode == 0, listed.output
        assert sorted(map(str, csv(listed.stdout)["config.model.gamma"])) == sorted(
            map(str, ["scale", "scale", 0.001, 0.001, "nan", "nan"])
        )


# -- item 2: one column asked for twice -------------------------------------------------------


def test_i9_02_one_column_asked_for_twice(project):
    project.write("xp_models.py", MODELS)
    assert project.run("-q").returncode == 0
    last_loss: dict[str, list[float]] = {}
    for run_dir in project.run_dirs():
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        lines = (run_dir / "metrics" / "metrics.jsonl").read_text().splitlines()
        last = json.loads(lines[-1])["loss"]
        last_loss.setdefault(config["model"]["kind"], []).append(last)
    shown = project.run("show", "-g", "config.model.kind", "-c", "metrics.loss.last", "-f", "json")
    assert shown.returncode == 0, shown.output
    groups = {g["config.model.kind"]: g for g in json.loads(shown.stdout)}
    for kind, values in last_loss.items():
        expected = pd.Series(values)
        assert groups[kind]["metrics.loss.last.mean"] == pytest.approx(expected.mean())
        assert groups[kind]["metrics.loss.last.std"] == pytest.approx(expected.std())
    reader = xprun.Reader(project.log_dir)
    table = reader.groupby("config.model.kind").agg(
        a=("metrics.loss.last", "mean"), b=("metrics.loss.last", "std")
    )
    for kind, values in last_loss.items():
        assert table.loc[kind, "a"] == pytest.approx(pd.Series(values).mean())
        assert table.loc[kind, "b"] == pytest.approx(pd.Series(values).std())
    both = reader.to_pandas(["hash", "metrics.loss.last", "metrics.loss.last"])
    assert list(both.columns) == ["hash", "metrics.loss.last", "metrics.loss.last"]


# -- item 3: ``in`` follows "booleans are not numbers" ---------------------------------------

FLAGS = """
import xprun

@xprun.grid(flag=[True, False, 1, 0, "1", 2.5])
def xp_flags(config):
    return {"flag": config.flag}
"""


def test_i9_03_in_follows_booleans_are_not_numbers(project):
    project.write("xp_flags.py", FLAGS)
    assert project.run("-q").returncode == 0
    reader = xprun.Reader(project.log_dir)

    def hashes(query: str) -> set[str]:
        return set(reader.filter(query).to_pandas(["hash"])["hash"])

    everything = hashes("")
    for key in ("config.flag", "outcome.flag"):
        for values, equalities in [
            ("[1]", [f"{key} == 1"]),
            ("[true]", [f"{key} == true"]),
            ("[0, false]", [f"{key} == 0", f"{key} == false"]),
            ("['1', 2.5]", [f"{key} == '1'", f"{key} == 2.5"]),
            ("[1, none]", [f"{key} == 1", f"{key} == none"]),
        ]:
            expected = set().union(*(hashes(q) for q in equalities))
            assert hashes(f"{key} in {values}") == expected, values
            assert hashes(f"{key} not in {values}") == everything - expected, values
        assert len(hashes(f"{key} in [1]")) == 1  # the 1, not True


# -- items 4, 5 and 7: every damage case beside healthy runs ----------------------------------

MANY = """
import xprun

@xprun.grid(i=list(range(30)))
@xprun.config({"i": 0, "kind": "k"})
def xp_many(config, logger):
    for step in range(3):
        logger.log_metrics({"loss": config.i + step, "acc": 0.5}, step=step)
    return {"i": config.i}
"""

BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n"
    for p, n in zip("abcdefghi", "bcdefghij", strict=True)
)


def _record(run_dir: Path, **changes) -> None:
    record = json.loads((run_dir / "run.json").read_text())
    record.update(changes)
    (run_dir / "run.json").write_text(json.dumps(record))


def _replace(path: Path, make) -> None:
    path.unlink()
    make(path)


# name → (damage, words the reason must hold); each damages one run of xp_many
RUN_DAMAGE = {
    "run.json FIFO": (lambda d: _replace(d / "run.json", os.mkfifo), ["run.json", "FIFO"]),
    "claim FIFO": (lambda d: os.mkfifo(d / "claim.2"), ["claim.2", "FIFO"]),
    "claim directory": (lambda d: (d / "claim.2").mkdir(), ["claim.2", "directory"]),
    "run.json to /dev/zero": (
        lambda d: _replace(d / "run.json", lambda p: os.symlink("/dev/zero", p)),
        ["run.json", "link"],
    ),
    "config.yaml out of the run": (
        lambda d: _replace(d / "config.yaml", lambda p: os.symlink("/etc/hostname", p)),
        ["config.yaml", "link"],
    ),
    "alias bomb": (lambda d: (d / "config.yaml").write_text(BOMB), ["config.yaml", "alias"]),
    "recursive alias": (
        lambda d: (d / "config.yaml").write_text("i: &x [1, *x]\n"),
        ["config.yaml", "alias"],
    ),
    "params a list": (lambda d: _record(d, params=["a"]), ["params"]),
    "status not text": (lambda d: _record(d, status=3), ["status"]),
    "attempt not a number": (lambda d: _record(d, attempt="abc"), ["attempt"]),
    "dotted key conflict": (
        lambda d: (d / "config.yaml").write_text("i: 1\nkind: k\na.b: 1\na:\n  b: 2\n"),
        ["config.a.b", "'a.b'"],
    ),
}

# name → (damage, words the reason must hold); the run loads, its metrics file is named
METRIC_DAMAGE = {
    "metrics FIFO": (
        lambda d: _replace(d / "metrics" / "metrics.jsonl", os.mkfifo),
        ["metrics.jsonl", "FIFO"],
    ),
    "metrics to /dev/zero": (
        lambda d: _replace(d / "metrics" / "metrics.jsonl", lambda p: os.symlink("/dev/zero", p)),
        ["metrics.jsonl", "link"],
    ),
    "bad metric lines": (
        lambda d: (d / "metrics" / "metrics.jsonl").write_text(
            '{"step": 0, "loss": 1.0, "acc": 0.5}\n'
            '{"step": "x", "loss": 2.0}\n'
            '{"step": 1.5, "loss": 2.0}\n'
            '{"step": 2, "loss": "high"}\n'
            '{"step": 3, "loss": [1]}\n'
            "[1, 2]\n"
        ),
        ["metrics.jsonl", "5 lines"],
    ),
}

# not damage: values xprun itself can write; the run loads with them as text
ODD_VALUES = {
    "binary": ("blob: !!binary aGVsbG8=\n", "config.blob", "aGVsbG8="),
    "timestamp": ("when: 2024-01-02 03:04:05\n", "config.when", "2024-01-02T03:04:05"),
}


def test_i9_04_05_07_damage_is_skipped_and_named_and_the_healthy_runs_load(project):
    from optional import require

    require("matplotlib")
    project.write("xp_many.py", MANY)
    assert project.run("-q").returncode == 0
    dirs = project.run_dirs()
    assert len(dirs) == 30
    damaged: dict[Path, list[str]] = {}
    metric_damaged: dict[Path, list[str]] = {}
    odd: dict[str, tuple[str, str]] = {}
    pool = iter(dirs)
    for damage, words in RUN_DAMAGE.values():
        run_dir = next(pool)
        damage(run_dir)
        damaged[run_dir] = words
    for damage, words in METRIC_DAMAGE.values():
        run_dir = next(pool)
        damage(run_dir)
        metric_damaged[run_dir / "metrics" / "metrics.jsonl"] = words
    for text, column, value in ODD_VALUES.values():
        run_dir = next(pool)
        with open(run_dir / "config.yaml", "a") as f:
            f.write(text)
        odd[run_dir.name] = (column, value)
    loop = project.log_dir / "xp_loop"
    os.symlink("xp_loop", loop)  # an experiment folder that is a symlink loop
    damaged[loop] = ["link"]
    healthy = sorted(d.name for d in dirs if d not in damaged)

    for attempt in range(2):  # building the index, then loading it
        seen = read_all(project)
        assert seen["hashes"] == healthy, attempt
        assert seen["groups"] == ["k"]
        assert set(seen["skipped"]) == {str(p) for p in [*damaged, *metric_damaged]}
        for path, words in [*damaged.items(), *metric_damaged.items()]:
            reason = seen["skipped"][str(path)]
            assert all(w in reason for w in words), (path, reason, words)
            assert any(str(path) in w for w in seen["warnings"]), path
        assert seen["steps"] == [0, 1, 2]
        bad_lines = next(p for p in metric_damaged if "5 lines" in metric_damaged[p])
        assert bad_lines.parent.parent.name in seen["metric_hashes"]  # its good line counts

    frame = xprun.Reader(project.log_dir, warn=False).to_pandas().set_index("hash")
    for run_hash, (column, value) in odd.items():
        assert frame.loc[run_hash, column] == value

    shown = run_limited(project, "show", "-f", "csv")
    assert shown.returncode == 0, shown.stderr
    assert sorted(csv(shown.stdout)["hash"]) == sorted(h[:12] for h in healthy)
    for path in damaged:
        assert str(path) in shown.stderr
    grouped = run_limited(project, "show", "-g", "config.kind", "-c", "metrics.loss.mean")
    assert grouped.returncode == 0, grouped.stderr
    for path in metric_damaged:
        assert str(path) in grouped.stderr
    out = project.root / "loss.png"
    plotted = run_limited(project, "plot", "--y", "loss", "-o", str(out))
    assert plotted.returncode == 0, plotted.stderr
    assert out.read_bytes()[:4] == b"\x89PNG"
    for path in [*damaged, *metric_damaged]:
        assert str(path) in plotted.stderr


def _rewrite_index(project, change) -> None:
    path = project.log_dir / ".xprun-index" / "runs.arrow"
    table = pa.ipc.open_file(str(path)).read_all()
    info = json.loads(table.schema.metadata[b"xprun"])
    frame = table.to_pandas()
    frame, info = change(frame, info)
    new = pa.Table.from_pandas(frame, preserve_index=False)
    new = new.replace_schema_metadata({"xprun": json.dumps(info)})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, new.schema) as writer:
        writer.write_table(new)


def _future(frame, info):
    frame["outcome.i"] = 999  # what a stale or forged index would show
    info["scanned_ns"] = time.time_ns() + 10**18
    return frame, info


INDEX_DAMAGE = {
    "missing column": lambda f, i: (f.drop(columns=["_mtime_ns"]), i),
    "missing info column": lambda f, i: (f.drop(columns=["status"]), i),
    "mistyped column": lambda f, i: (f.assign(attempt="abc"), i),
    "paths elsewhere": lambda f, i: (f.assign(path="/tmp"), i),
    "scan in the future": _future,
}


@pytest.mark.parametrize("damage", INDEX_DAMAGE, ids=list(INDEX_DAMAGE))
def test_i9_05_an_index_that_cannot_be_trusted_is_rebuilt(project, damage):
    project.write("xp_many.py", MANY.replace("range(30)", "range(4)"))
    assert project.run("-q").returncode == 0
    old = time.time() - 3600  # runs written long ago: their rows in the index are trusted,
    for run_dir in project.run_dirs():  # not re-read for being too fresh
        os.utime(run_dir, (old, old))
    assert len(xprun.Reader(project.log_dir)) == 4  # builds and saves the index
    _rewrite_index(project, INDEX_DAMAGE[damage])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about: the runs are fine
        frame = xprun.Reader(project.log_dir).to_pandas()
    assert sorted(frame["outcome.i"]) == [0, 1, 2, 3]
    assert set(frame["status"]) == {"complete"} and list(frame["attempt"]) == [1, 1, 1, 1]
    assert sorted(frame["path"]) == sorted(str(d) for d in project.run_dirs())
    shown = project.run("show", "-f", "csv")
    assert shown.returncode == 0, shown.output
    assert sorted(csv(shown.stdout)["outcome.i"]) == [0, 1, 2, 3]


# -- item 6: the query language, whatever the text --------------------------------------------

QUERY_RUNS = """
import xprun

@xprun.grid(
    lr=[0.1, 0.001],
    name=["a", "b c"],
    flag=[True, 1],
    mixed=["scale", 0.5, [1, 2]],
)
def xp_q(config):
    return {"score": config.lr * 2, "maybe": None if config.name == "a" else "x"}
"""


@pytest.fixture(scope="module")
def query_reader(tmp_path_factory):
    from conftest import Project

    project = Project(tmp_path_factory.mktemp("query") / "proj")
    project.write("xp_q.py", QUERY_RUNS)
    assert project.run("-q").returncode == 0
    reader = xprun.Reader(project.log_dir)
    assert len(reader) == 24
    return reader


KEYS = [
    "config.lr",
    "config.name",
    "config.flag",
    "config.mixed",
    "outcome.score",
    "outcome.maybe",
    "status",
    "attempt",
    "duration",
    "config.never",
    "metrics.loss.last",
    "nokey",
]
VALUES = [
    "1",
    "-0.5",
    "1e-3",
    ".5",
    "1e400",
    "-1e400",
    "4" * 400,
    "-" + "9" * 400,
    "7" * 5000,
    "1." + "1" * 5000,
    "true",
    "False",
    "none",
    "'b c'",
    '"x"',
    "scale",
    "complete",
    "'unterminated",
    "nan",
    "in",
]
OPS = ["==", "!=", "<", "<=", ">", ">=", "=", "in", "not in", ""]


@st.composite
def near_valid(draw) -> str:
    """Comparisons joined by and/or, nested in parentheses and not, with pieces missing."""

    def comparison() -> str:
        key, op = draw(st.sampled_from(KEYS)), draw(st.sampled_from(OPS))
        if op.endswith("in") and draw(st.booleans()):
            items = draw(st.lists(st.sampled_from(VALUES), max_size=4))
            return f"{key} {op} [{', '.join(items)}{draw(st.sampled_from(['', ',']))}]"
        return f"{key} {op} {draw(st.sampled_from(VALUES))}"

    parts = [comparison() for _ in range(draw(st.integers(1, 4)))]
    text = parts[0]
    for part in parts[1:]:
        text = f"{text} {draw(st.sampled_from(['and', 'or', 'AND', '', 'not']))} {part}"
    depth = draw(st.integers(0, 3))
    for _ in range(depth):
        text = draw(st.sampled_from(["({})", "not ({})", "not {}", "(({})", "{})"])).format(text)
    return text


def _check(reader, text: str) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            selected = reader.filter(text)
            count = len(selected)
    except QueryError as exc:
        assert str(exc)  # the documented error, with a message
        return
    assert 0 <= count <= 24


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(
        alphabet=st.sampled_from(list("()[]<>=!,.'\" \\-+e1_a.notandorin")) | st.characters(),
        max_size=60,
    )
)
def test_i9_06_query_fuzz_random_text(query_reader, text):
    _check(query_reader, text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=near_valid())
def test_i9_06_query_fuzz_near_valid(query_reader, text):
    _check(query_reader, text)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 1000 + "config.lr == 1" + ")" * 1000,
        "not " * 1000 + "config.lr == 1",
        "(not " * 600 + "config.lr == 1" + ")" * 600,
        " or ".join(["config.lr == 1"] * 3000),
        " and ".join(["config.lr < 1"] * 3000),
        "config.lr == " + "1" * 5000,
        "config.lr in [" + "1" * 5000 + "]",
    ],
    ids=["parens", "not", "not-parens", "or-chain", "and-chain", "long-int", "long-in"],
)
def test_i9_06_deep_and_huge_queries_are_query_errors_or_results(query_reader, text):
    _check(query_reader, text)


def test_i9_06_huge_numbers_compare_as_numbers(query_reader):
    huge = "4" * 400
    assert len(query_reader.filter(f"config.lr < {huge}")) == 24
    assert len(query_reader.filter(f"config.lr > -{huge}")) == 24
    assert len(query_reader.filter(f"config.lr >= {huge}")) == 0
    assert len(query_reader.filter(f"config.lr == {huge}")) == 0
    assert len(query_reader.filter(f"config.mixed < {huge}")) == 8  # only the 0.5 runs
    assert len(query_reader.filter("config.lr < 1e400")) == 24
    with pytest.raises(QueryError, match="digits"):
        query_reader.filter("config.lr < " + "7" * 5000)
    with pytest.raises(QueryError, match="deep"):
        query_reader.filter("(" * 1000 + "config.lr == 1" + ")" * 1000)


def test_i9_06_show_turns_bad_queries_into_usage_errors(project):
    project.write("xp_q.py", QUERY_RUNS)
    assert project.run("-q").returncode == 0
    for text in ["(" * 1000 + "config.lr == 1" + ")" * 1000, "config.lr < " + "7" * 5000]:
        shown = project.run("show", "-w", text)
        assert shown.returncode == 4, shown.output
        assert "ERROR" in shown.stderr and "Traceback" not in shown.stderr
    fine = project.run("show", "-w", "config.lr < " + "4" * 400, "-f", "csv")
    assert fine.returncode == 0, fine.output
    assert len(csv(fine.stdout)) == 24


# -- item 7: absent columns, project heartbeat ----------------------------------------------


def test_i9_07_a_well_formed_key_no_run_has_is_all_missing(project):
    project.write("xp_models.py", MODELS)
    assert project.run("-q").returncode == 0
    reader = xprun.Reader(project.log_dir)
    assert len(reader.filter("config.never == 1")) == 0
    assert len(reader.filter("config.never == none")) == 6
    assert len(reader.filter("outcome.not_yet != none or params.p == 1")) == 0
    frame = reader.to_pandas(["hash", "config.never", "outcome.later.x"])
    assert len(frame) == 6 and frame[["config.never", "outcome.later.x"]].isna().all().all()
    table = reader.groupby("config.model.kind").agg(x=("outcome.never", "mean"))
    assert table["x"].isna().all() and len(table) == 2
    with pytest.raises(QueryError, match="unknown key"):
        len(reader.filter("statuz == complete"))  # not a config/outcome/params key
    shown = project.run("show", "-c", "hash", "config.never", "-f", "csv")
    assert shown.returncode == 0, shown.output
    assert csv(shown.stdout)["config.never"].isna().all()
    typo = project.run("show", "-w", "config.sed == 1", "-f", "csv")
    assert typo.returncode == 0, typo.output
    assert "config.seed" in typo.stderr  # a likely typo is pointed out
    bad = project.run("show", "-w", "statuz == complete")
    assert bad.returncode == 4 and "unknown key" in bad.stderr


def test_i9_07_show_judges_heartbeats_by_the_project_settings(project):
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\nheartbeat_interval = 1\nheartbeat_timeout = 5\n',
    )
    project.write("xp_one.py", "def xp_one():\n    return {'x': 1}\n")
    assert project.run("-q").returncode == 0
    (run_dir,) = project.run_dirs()
    record = json.loads((run_dir / "run.json").read_text())
    _record(run_dir, status="running")
    claim = run_dir / f"claim.{record['attempt']}"
    claim.write_text(json.dumps({"host": "elsewhere", "machine": "elsewhere", "pid": 1}))
    old = time.time() - 30  # older than this project's 5 s, younger than the default 60 s
    os.utime(claim, (old, old))
    collected = project.run("--collect-only")
    assert "interrupted" in collected.stdout, collected.output
    shown = project.run("show", "-f", "json")
    assert shown.returncode == 0, shown.output
    assert [r["status"] for r in json.loads(shown.stdout)] == ["interrupted"]
    assert list(xprun.Reader(project.log_dir).to_pandas()["status"]) == ["interrupted"]
    patient = xprun.Reader(project.log_dir, heartbeat_timeout=3600)
    assert list(patient.to_pandas()["status"]) == ["running"]


def test_i9_07_a_bad_project_setting_is_a_usage_error_in_show(project):
    project.write("xp_one.py", "def xp_one():\n    return {'x': 1}\n")
    assert project.run("-q").returncode == 0
    project.write(
        "pyproject.toml",
        textwrap.dedent(
            """
            [tool.xprun]
            log_dir = "xprun_logs"
            heartbeat_timeout = -1
            """
        ),
    )
    shown = project.run("show", "xprun_logs")
    assert shown.returncode == 4, shown.output
    assert "heartbeat_timeout" in shown.stderr
