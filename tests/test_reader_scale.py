"""The Reader at scale (issue 11, item 6) and its API (issue 10): the cached index never
lies, the first read and every later one give the same frame, the fast YAML path agrees with
PyYAML, and ``Reader``/``Runs`` have real, documented methods.

No timing here: the figures are in benchmarks/bench_reader.py.
"""

from __future__ import annotations

import json
import math
import os
import pydoc
import random
import shutil
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml

import xprun
from xprun.reader import Runs

# A sweep whose outcome has a column of mixed types with gaps (text, a number, missing),
# a column missing in some runs, and configs with values PyYAML reads in surprising ways.
MIXED = """
import os
import xprun

@xprun.config({"word": "yes", "text": "1e3", "none_text": "null", "big": 10**20,
               "tiny": 1.0e-5, "inf": float("inf"), "flag": True,
               "layers": [64, 32], "nested": {"a": {"b": "x-y/z"}}})
@xprun.grid(seed=[0, 1, 2, 3])
def xp_mixed(config, seed):
    bump = float(os.environ.get("XP_BUMP", "0"))
    out = {"score": seed + bump}
    if seed == 1:
        out["mixed"] = "text"
    elif seed == 2:
        out["mixed"] = 2.5
    if seed != 3:
        out["some"] = seed
    return out
"""


def _age(run_dirs, seconds: float = 3600) -> None:
    """Set the run folders' times back, so that rows in the index are trusted rather than
    re-read for being too fresh (the racy rule): what is tested is the key, not the clock."""
    old = time.time() - seconds
    for run_dir in run_dirs:
        os.utime(run_dir, (old, old))


def _frames_identical(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal values, dtypes, and the same kind of missing value (None vs NaN) everywhere."""
    pd.testing.assert_frame_equal(a, b)
    for column in a.columns:
        assert [repr(v) for v in a[column]] == [repr(v) for v in b[column]], column


@pytest.fixture
def mixed(project):
    project.write("xp_mixed.py", MIXED)
    result = project.run("-q")
    assert result.returncode == 0, result.output
    return project


def test_i11_06_read_twice_gives_identical_frames(mixed):
    """Fails on the old code: a missing value in a mixed-type column read as NaN when the
    index was built and as None once loaded from the cache."""
    first = xprun.Reader(mixed.log_dir).to_pandas()
    assert (mixed.log_dir / ".xprun-index" / "runs.arrow").is_file()
    second = xprun.Reader(mixed.log_dir).to_pandas()
    third = xprun.Reader(mixed.log_dir).to_pandas()
    _frames_identical(first, second)
    _frames_identical(second, third)
    assert len(first) == 4
    # runs without the key: pd.NA (None would be a key set to null; docs/reader.md)
    assert sorted(first["outcome.mixed"].map(repr)) == ["'text'", "2.5", "<NA>", "<NA>"]


def test_i11_06_a_refreshed_index_equals_one_built_from_scratch(mixed):
    """Rows added to a loaded index and rows read in one go make the same frame."""
    _age(mixed.run_dirs())
    assert len(xprun.Reader(mixed.log_dir)) == 4
    result = mixed.run("-q", "seed=7")
    assert result.returncode == 0, result.output
    refreshed = xprun.Reader(mixed.log_dir).to_pandas()
    assert len(refreshed) == 5
    shutil.rmtree(mixed.log_dir / ".xprun-index")
    scratch = xprun.Reader(mixed.log_dir).to_pandas()
    _frames_identical(refreshed, scratch)


def test_i11_06_config_values_read_as_pyyaml_reads_them(mixed):
    """Through the fast path or not, every config value is what ``yaml.safe_load`` gives."""
    frame = xprun.Reader(mixed.log_dir).to_pandas().set_index("hash")
    for run_dir in mixed.run_dirs():
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        row = frame.loc[run_dir.name]
        assert row["config.word"] == "yes" and row["config.text"] == "1e3"
        assert row["config.none_text"] == "null" and row["config.big"] == 10**20
        assert row["config.tiny"] == config["tiny"] and math.isinf(row["config.inf"])
        assert row["config.flag"] is True or row["config.flag"] == True  # noqa: E712
        assert list(row["config.layers"]) == config["layers"] == [64, 32]
        assert row["config.nested.a.b"] == "x-y/z"


def test_i11_06_an_empty_mapping_in_a_config_is_read(project):
    """Fails on the old code: Parquet cannot hold an empty mapping, and saving the index
    crashed the Reader."""
    project.write(
        "xp_empty.py",
        """
        import xprun

        @xprun.config({"opts": {}, "lr": 0.1})
        def xp_empty(config):
            return {"extra": {}}
        """,
    )
    assert project.run("-q").returncode == 0
    for _ in range(2):  # built, then loaded
        frame = xprun.Reader(project.log_dir).to_pandas()
        assert frame["config.opts"].tolist() == [{}] and frame["outcome.extra"].tolist() == [{}]
        assert frame["config.lr"].tolist() == [0.1]


def test_i11_06_forced_rerun_is_seen(mixed):
    """Passes on the old code too: a rerun renames new records into the run folder."""
    _age(mixed.run_dirs())
    before = xprun.Reader(mixed.log_dir).to_pandas()
    assert sorted(before["outcome.score"]) == [0, 1, 2, 3]
    result = mixed.run("-q", "--force", env={"XP_BUMP": "10"})
    assert result.returncode == 0, result.output
    _age(mixed.run_dirs(), seconds=7200)  # not fresh either: seen by its key alone
    after = xprun.Reader(mixed.log_dir).to_pandas()
    assert sorted(after["outcome.score"]) == [10, 11, 12, 13]


def test_i11_06_a_partial_file_completed_later_is_seen(mixed):
    """A file read while partial (a copy in progress, a writer that died mid-write and
    whose work is redone in place) skips the run; once whole, the next read has it.
    Fails on the old code: a skipped row was trusted like any other."""
    run_dir = mixed.run_dirs()[0]
    outcome = run_dir / "outcome.json"
    whole = outcome.read_bytes()
    with open(outcome, "r+b") as f:  # in place: the run folder's times do not change
        f.truncate(len(whole) // 2)
    _age(mixed.run_dirs())
    with pytest.warns(xprun.reader.ReaderWarning, match="outcome.json"):
        assert len(xprun.Reader(mixed.log_dir)) == 3
    with open(outcome, "r+b") as f:
        f.write(whole)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reader = xprun.Reader(mixed.log_dir)
        assert len(reader) == 4 and reader.skipped == []


def test_i11_06_a_deleted_run_disappears(mixed):
    _age(mixed.run_dirs())
    assert len(xprun.Reader(mixed.log_dir)) == 4
    doomed = mixed.run_dirs()[1]
    shutil.rmtree(doomed)
    frame = xprun.Reader(mixed.log_dir).to_pandas()
    assert len(frame) == 3 and doomed.name not in set(frame["hash"])


def test_i11_06_a_file_replaced_with_same_size_and_times_is_seen(mixed):
    """The folder's modification time can be set back, its status-change time cannot.
    Fails on the old code, which keyed rows on the modification time alone."""
    run_dir = mixed.run_dirs()[0]
    _age(mixed.run_dirs())
    folder_times = os.stat(run_dir)
    before = xprun.Reader(mixed.log_dir).to_pandas().set_index("hash")
    score = before.loc[run_dir.name, "outcome.score"]
    outcome = run_dir / "outcome.json"
    old = os.stat(outcome)
    text = outcome.read_text()
    forged = text.replace(f'"score": {json.dumps(score)}', f'"score": {json.dumps(score + 5)}')
    assert len(forged) == len(text) and forged != text
    replacement = run_dir / ".outcome.tmp"
    replacement.write_text(forged)
    os.replace(replacement, outcome)  # a rename, as every writer of records does
    os.utime(outcome, ns=(old.st_atime_ns, old.st_mtime_ns))
    os.utime(run_dir, ns=(folder_times.st_atime_ns, folder_times.st_mtime_ns))
    assert os.stat(outcome).st_size == old.st_size
    assert os.stat(outcome).st_mtime_ns == old.st_mtime_ns
    assert os.stat(run_dir).st_mtime_ns == folder_times.st_mtime_ns
    after = xprun.Reader(mixed.log_dir).to_pandas().set_index("hash")
    assert after.loc[run_dir.name, "outcome.score"] == score + 5


def test_i11_06_refresh_full_rereads_files_edited_in_place(mixed):
    """An in-place edit that leaves a file valid changes no folder time: documented, and
    ``refresh(full=True)`` is the way to see it."""
    run_dir = mixed.run_dirs()[0]
    _age(mixed.run_dirs())
    reader = xprun.Reader(mixed.log_dir)
    score = reader.to_pandas().set_index("hash").loc[run_dir.name, "outcome.score"]
    outcome = run_dir / "outcome.json"
    data = json.loads(outcome.read_text())
    data["score"] = score + 100
    with open(outcome, "r+") as f:
        f.write(json.dumps(data))
    frame = reader.refresh(full=True).to_pandas().set_index("hash")
    assert frame.loc[run_dir.name, "outcome.score"] == score + 100


# -- the fast YAML path ---------------------------------------------------------------------


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


KEYS = ["a", "b", "yes", "k_1", "on", "1", "x", "Null"]
VALUES = [
    *["", " 1", " -1", " 01", " 1.", " 1.0e5", " 1.0e+5", " 1e3", " .inf", " -.inf", " .nan"],
    *[" .NaN", " null", " ~", " Yes", " y", " word", " a/b", " a-b", " 'q'", " ''", " 'a''b'"],
    *[" []", " {}", " [1]", " 0x1", " 1_0", " 1:2", " 2024-01-01", " -", " x #c", " &a 1"],
    *[" *a", " !!str 1", "  1", " 1 ", " é", " 'yes'", " +1", " 0o7", " 1.5", " -0.0"],
]


def test_i11_06_plain_yaml_never_disagrees_with_pyyaml():
    """The fast path either reads a text exactly as PyYAML's safe loader does (types and
    key order included) or declines; seeded random texts near its grammar's edges."""
    from xprun.reader.files import careful_yaml, plain_yaml

    rng = random.Random(11)
    accepted = 0
    for _ in range(30_000):
        lines = []
        for _ in range(rng.randint(1, 6)):
            indent = " " * rng.choice([0, 0, 2, 4, 1])
            if rng.random() < 0.2:
                lines.append(f"{indent}- {rng.choice(VALUES).strip()}")
            else:
                lines.append(f"{indent}{rng.choice(KEYS)}:{rng.choice(VALUES)}")
        text = ("\n".join(lines) + "\n").encode()
        fast = plain_yaml(text)
        if fast is None:
            continue
        accepted += 1
        assert _same(fast, careful_yaml(text)), text
    assert accepted > 300  # the comparison ran on many texts


def test_i11_06_plain_yaml_reads_what_xprun_writes():
    from xprun.reader.files import careful_yaml, plain_yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    config = {
        "lr": 1e-5,
        "opt": "adam",
        "model": {"width": 128, "depth": 4, "act": None},
        "big": 10**30,
        "neg": -3,
        "flags": [True, False],
        "names": ["a", "b-c"],
        "inf": float("-inf"),
    }
    text = yaml.dump(config, Dumper=dumper, sort_keys=False, allow_unicode=True).encode()
    assert plain_yaml(text) is not None  # the common case takes the fast path
    assert _same(plain_yaml(text), careful_yaml(text))
    assert plain_yaml(b"a: &x 1\nb: *x\n") is None  # aliases: the careful path


def test_i11_06_plain_yaml_memo_gives_fresh_empty_values():
    """Lines are read once per process and remembered: an empty list or mapping is still a
    new object in every config (a run's value changed in place cannot reach another's), and
    a quoted ``'[]'`` stays text."""
    from xprun.reader.files import plain_yaml

    text = b"a: []\nb: {}\nc: '[]'\nd:\n- 1\n"
    first, second = plain_yaml(text), plain_yaml(text)
    assert first == second == {"a": [], "b": {}, "c": "[]", "d": [1]}
    assert first is not None and second is not None
    first["a"].append(1)
    first["b"]["x"] = 1
    first["d"].append(2)
    assert second == {"a": [], "b": {}, "c": "[]", "d": [1]}
    assert plain_yaml(text) == second


def test_i11_06_bench_generator_writes_the_encoders_text(tmp_path):
    """benchmarks/bench_reader.py's fast generator (templates, os calls) writes byte for
    byte what encoding each run with PyYAML and json writes, and the Reader reads every run
    it makes.  (A benchmark tool's test: it did not exist on the baseline.)"""
    import sys

    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    try:
        import bench_reader
    finally:
        sys.path.pop(0)
    writer = bench_reader.Writer()
    for i in [*range(120), 1234, 99_999, 999_999]:
        experiment = f"xp_bench{i % 3}.train"
        reference = bench_reader.run_files(i, experiment)
        fast = writer.files(i, experiment)
        fast = {k: v.decode() if isinstance(v, bytes) else v for k, v in fast.items()}
        assert fast == reference, i
    logs = tmp_path / "logs"
    (logs / "xp_bench0.train").mkdir(parents=True)
    for i in range(60):
        writer.write(logs / "xp_bench0.train", i, "xp_bench0.train")
    reader = xprun.Reader(logs, warn=False)
    assert len(reader) == 60 and not reader.skipped
    frame = reader.to_pandas()
    assert sorted(frame["config.seed"]) == list(range(60))
    assert (frame["status"] == "failed").sum() == 2  # runs 0 and 50


# -- issue 10: real methods -----------------------------------------------------------------

METHODS = ("filter", "experiment", "groupby", "metrics", "to_pandas", "columns")


@pytest.mark.parametrize("cls", [xprun.Reader, Runs], ids=["Reader", "Runs"])
def test_i10_api_reader_help_lists_the_methods(cls):
    """Fails on the old code: the Reader reached these through ``__getattr__``."""
    text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    for name in METHODS:
        assert name in cls.__dict__ or any(name in vars(base) for base in cls.__mro__), name
        assert f"{name}(" in text or f"{name}\n" in text, name
        member = getattr(cls, name)
        assert (member.__doc__ or "").strip(), f"{name} has no docstring"


def test_i10_api_reader_unknown_attribute_names_the_nearest(mixed):
    """Fails on the old code: the error said only the name."""
    reader = xprun.Reader(mixed.log_dir)
    with pytest.raises(AttributeError, match=r"'filtr'.*did you mean 'filter'"):
        reader.filtr  # noqa: B018
    with pytest.raises(AttributeError, match=r"'to_pands'.*did you mean 'to_pandas'"):
        reader.filter("config.seed > 0").to_pands  # noqa: B018
    assert not hasattr(reader, "no_such_thing_at_all")
    # The methods behave as before: the Reader is the selection of every run.
    assert len(reader) == 4 and len(reader.runs()) == 4
    assert len(reader.filter("config.seed > 0")) == 3
    assert list(reader.to_pandas()["hash"]) == list(reader.runs().to_pandas()["hash"])
