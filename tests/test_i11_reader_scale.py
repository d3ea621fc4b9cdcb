"""The Reader's index at scale (issue 11, target 6): what a refresh must see whatever shortcut
it takes and how many runs it reads (the cold read with its prefetching helper:
tests/test_i11_reader_cold.py).

Behaviour only; the figures are in benchmarks/bench_reader.py.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings

import pandas as pd
import pytest

import xprun
import xprun.reader.index as index_module
from xprun import store

SWEEP = """
import xprun

@xprun.grid(seed=[0, 1, 2, 3, 4, 5])
def xp_scale(config):
    return {"score": config.seed * 10}
"""


@pytest.fixture
def sweep(project):
    project.write("xp_scale.py", SWEEP)
    result = project.run("-q")
    assert result.returncode == 0, result.output
    return project


def _age(project, seconds: float = 3600) -> None:
    """Set every run folder and experiment folder back in time, so the index trusts their
    rows instead of re-reading them for being too fresh (the racy rule)."""
    old = time.time() - seconds
    for run_dir in project.run_dirs():
        os.utime(run_dir, (old, old))
        os.utime(run_dir.parent, (old, old))


@pytest.fixture
def reads(monkeypatch):
    """The run directories the index reads (its per-run hot function), by name."""
    seen: list[str] = []
    real = index_module.read_run

    def counting(path, *args, **kwargs):
        seen.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(index_module, "read_run", counting)
    return seen


def _record(run_dir) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def _frame(project) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing here is damaged
        return xprun.Reader(project.log_dir).to_pandas().set_index("hash")


def test_i11_reader_scale_running_to_complete_in_place_is_seen(sweep, reads):
    """A run whose record goes from running to complete in place (a rename inside its
    folder; the experiment folder's times do not change) is read again."""
    run_dir = sweep.run_dirs()[2]
    complete = _record(run_dir)
    store.write_json_atomic(run_dir / "run.json", {**complete, "status": "running"})
    _age(sweep)
    folder = os.stat(run_dir.parent)
    before = _frame(sweep)
    assert before.loc[run_dir.name, "status"] != "complete"  # no claim: interrupted
    assert pd.isna(before.loc[run_dir.name, "outcome.score"])
    reads.clear()
    store.write_json_atomic(run_dir / "run.json", complete)
    assert os.stat(run_dir.parent).st_mtime_ns == folder.st_mtime_ns
    after = _frame(sweep)
    assert after.loc[run_dir.name, "status"] == "complete"
    assert after.loc[run_dir.name, "outcome.score"] == after.loc[run_dir.name, "config.seed"] * 10
    assert reads == [run_dir.name]  # that run only


def test_i11_reader_scale_a_new_run_in_an_old_folder_is_the_only_one_read(sweep, reads):
    _age(sweep)
    assert len(_frame(sweep)) == 6
    source = sweep.run_dirs()[0]
    new_name = "f" * 32
    assert not (source.parent / new_name).exists()
    shutil.copytree(source, source.parent / new_name)
    store.write_json_atomic(
        source.parent / new_name / "run.json", {**_record(source), "hash": new_name}
    )
    reads.clear()
    frame = _frame(sweep)
    assert len(frame) == 7 and new_name in frame.index
    assert reads == [new_name]


def test_i11_reader_scale_a_deleted_run_disappears_without_reading_any(sweep, reads):
    _age(sweep)
    assert len(_frame(sweep)) == 6
    doomed = sweep.run_dirs()[3]
    shutil.rmtree(doomed)
    reads.clear()
    frame = _frame(sweep)
    assert len(frame) == 5 and doomed.name not in frame.index
    assert reads == []


def test_i11_reader_scale_a_run_rewritten_within_the_same_second_is_seen(sweep):
    """Indexed, then rewritten at once (as xprun writes into an existing run: the record,
    then the experiment folder marked) with the run folder's modification time put back:
    the status-change time (which cannot be put back) and the racy rule both catch it."""
    run_dir = sweep.run_dirs()[1]
    assert _frame(sweep).loc[run_dir.name, "status"] == "complete"
    times = os.stat(run_dir)
    store.write_json_atomic(run_dir / "run.json", {**_record(run_dir), "status": "failed"})
    store.mark_changed(run_dir)
    os.utime(run_dir, ns=(times.st_atime_ns, times.st_mtime_ns))
    assert os.stat(run_dir).st_mtime_ns == times.st_mtime_ns
    assert _frame(sweep).loc[run_dir.name, "status"] == "failed"


def test_i11_reader_scale_an_unchanged_index_reads_no_run(sweep, reads):
    _age(sweep)
    first = _frame(sweep)
    reads.clear()
    again = _frame(sweep)
    pd.testing.assert_frame_equal(first, again)
    assert reads == []


def test_i11_reader_scale_scan_names_broken_links_and_ignores_files(sweep, tmp_path):
    """The scan's fast loop hands anything that is not plainly a directory to the careful
    path: a dangling link and a link loop are named, a plain file is no run."""
    folder = sweep.run_dirs()[0].parent
    (folder / "notes.txt").write_text("not a run")
    os.symlink(tmp_path / "nowhere", folder / ("a" * 32))
    os.symlink(folder / ("b" * 32), folder / ("b" * 32))  # a loop
    reader = xprun.Reader(sweep.log_dir, warn=False)
    assert len(reader) == 6
    reasons = {s.path.name: s.reason for s in reader.skipped}
    assert reasons == {
        "a" * 32: "is a symbolic link to nothing",
        "b" * 32: reasons["b" * 32],
    }
    assert reasons["b" * 32].startswith("is a symbolic link that cannot be followed")


# -- experiment folders whose times did not change are not listed ------------------------------

RERUN = """
import pathlib
import xprun

@xprun.grid(seed=[0, 1, 2])
def xp_rerun(config):
    return {"score": config.seed * 10 + int(pathlib.Path("bump.txt").read_text())}
"""


def _folder(project) -> str:
    """The name of the project's one experiment folder."""
    (name,) = {d.parent.name for d in project.run_dirs()}
    return name


@pytest.fixture
def listed(monkeypatch):
    """The experiment folders a refresh lists (names), in order."""
    seen: list[str] = []
    real = index_module.list_experiment

    def counting(name, *args, **kwargs):
        seen.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(index_module, "list_experiment", counting)
    return seen


def test_i11_reader_scale_an_unchanged_folder_is_not_listed(sweep, reads, listed):
    """An experiment folder with the times of the last scan holds the same runs, and xprun
    marks it when it writes into one of them: it is not listed again, no run is read."""
    _age(sweep)
    first = _frame(sweep)
    assert listed == [_folder(sweep)] and len(reads) == 6
    listed.clear(), reads.clear()
    again = _frame(sweep)
    pd.testing.assert_frame_equal(first, again)
    assert listed == [] and reads == []


def test_i11_reader_scale_a_folder_changed_close_to_the_scan_is_listed_again(sweep, listed):
    """Git's racy rule for experiment folders: one modified within a clock tick of the scan
    (here: just made by the sweep) could change again unseen, so it is listed next time
    too, until its times are older than the scan that recorded them."""
    _frame(sweep)
    _frame(sweep)
    assert listed == [_folder(sweep)] * 2
    _age(sweep)
    listed.clear()
    _frame(sweep)  # times changed: listed, and remembered as old
    _frame(sweep)
    assert listed == [_folder(sweep)]


@pytest.fixture
def reruns(project):
    project.write("xp_rerun.py", RERUN)
    project.write("bump.txt", "0")
    result = project.run("-q")
    assert result.returncode == 0, result.output
    return project


def test_i11_reader_scale_a_forced_rerun_is_seen_in_an_unlisted_folder(reruns, reads, listed):
    """``--force`` writes new records into existing run folders, which changes no entry of
    the experiment folder: the launcher marks it, so the next refresh lists it and reads the
    rerun runs (each run folder changed), and nothing else."""
    _age(reruns)
    before = _frame(reruns)
    assert sorted(before["outcome.score"]) == [0, 10, 20]
    folder = os.stat(reruns.run_dirs()[0].parent)
    reruns.write("bump.txt", "1")
    result = reruns.run("-q", "--force")
    assert result.returncode == 0, result.output
    assert os.stat(reruns.run_dirs()[0].parent).st_ctime_ns != folder.st_ctime_ns
    listed.clear(), reads.clear()
    after = _frame(reruns)
    assert sorted(after["outcome.score"]) == [1, 11, 21]
    assert (after["attempt"] == 2).all()
    assert listed == [_folder(reruns)] and sorted(reads) == sorted(
        d.name for d in reruns.run_dirs()
    )


def test_i11_reader_scale_a_recovered_run_is_seen_in_an_unlisted_folder(reruns, reads):
    """A run recorded ``interrupted`` (settled) whose outcome was saved is recovered as
    complete by the next launch, in place: the launcher marks its experiment folder."""
    run_dir = reruns.run_dirs()[1]
    store.write_json_atomic(run_dir / "run.json", {**_record(run_dir), "status": "interrupted"})
    _age(reruns)
    assert _frame(reruns).loc[run_dir.name, "status"] == "interrupted"
    result = reruns.run("-q")
    assert result.returncode == 0, result.output
    assert _record(run_dir)["status"] == "complete" and _record(run_dir)["recovered"] is True
    reads.clear()
    after = _frame(reruns)
    assert after.loc[run_dir.name, "status"] == "complete"
    assert after.loc[run_dir.name, "recovered"] == True  # noqa: E712 (a numpy bool)
    assert reads == [run_dir.name]


def test_i11_reader_scale_a_hand_edit_in_a_settled_run_needs_a_full_refresh(sweep, listed):
    """The price of not listing unchanged folders, as documented: a record that another
    program renames into a settled run (no mark on its experiment folder) is seen by
    ``refresh(full=True)``, not by a plain refresh."""
    run_dir = sweep.run_dirs()[0]
    _age(sweep)
    _frame(sweep)
    store.write_json_atomic(run_dir / "run.json", {**_record(run_dir), "status": "failed"})
    reader = xprun.Reader(sweep.log_dir, warn=False)
    assert reader.to_pandas().set_index("hash").loc[run_dir.name, "status"] == "complete"
    listed.clear()
    reader.refresh(full=True)
    assert listed == [_folder(sweep)]
    assert reader.to_pandas().set_index("hash").loc[run_dir.name, "status"] == "failed"


@pytest.mark.parametrize(
    "folders",
    [
        None,
        [],
        "x",
        {"a": [1]},
        {"a": [1, "2"]},
        {"a": [1, 2.0]},
        {"a": [1, True]},
        {"a": (1, 2, 3)},
    ],
)
def test_i11_reader_scale_folder_times_not_as_written_trust_no_folder(folders):
    assert index_module._folders(folders) == {}


def test_i11_reader_scale_folder_times_as_written_are_read_back():
    assert index_module._folders({"a": [1, 2], "b": [3, 4]}) == {"a": (1, 2), "b": (3, 4)}


def test_i11_reader_scale_a_damaged_run_repaired_in_an_unlisted_folder_is_seen(sweep, listed):
    """A run skipped as damaged is not settled: looked at on every refresh even in a folder
    that is not listed, so its repair (a rename into the run folder only) is seen."""
    run_dir = sweep.run_dirs()[2]
    good = _record(run_dir)
    (run_dir / "run.json").write_text('{"format": 1, "hash"')
    _age(sweep)
    reader = xprun.Reader(sweep.log_dir, warn=False)
    assert len(reader) == 5 and [s.path for s in reader.skipped] == [run_dir]
    xprun.Reader(sweep.log_dir, warn=False).to_pandas()  # the folder's old times remembered
    store.write_json_atomic(run_dir / "run.json", good)
    listed.clear()
    frame = _frame(sweep)
    assert listed == [] and len(frame) == 6
    assert frame.loc[run_dir.name, "status"] == "complete"


# -- a refresh merges new rows into the table: the frame is the one a cold read gives ---------

ADDED_OUTCOMES = {
    "same types": [{"score": 70}],
    "float where ints were": [{"score": 0.5}],
    "a new column": [{"score": 80, "extra": "x"}],
    "a key set to null": [{"score": None}],
    "a list": [{"score": [1, 2]}],
    "a mapping": [{"score": 90, "nested": {"a": 1}}],
    "text where ints were": [{"score": "high"}],
    "text after a list made the column JSON": [{"score": [1, 2]}, {"score": "high"}],
    "a list after text": [{"score": "high"}, {"score": [3]}],
    "runs without a list column": [{"score": 1, "tags": [1]}, {"score": 2}],
    "a list column in new runs only": [{"score": 1}, {"score": 2, "tags": ["a"]}],
}


@pytest.mark.parametrize("outcomes", ADDED_OUTCOMES.values(), ids=list(ADDED_OUTCOMES))
def test_i11_reader_scale_a_refresh_gives_the_frame_of_a_cold_read(sweep, outcomes, reads):
    """Rows read by a refresh are merged into the index's table (in Arrow when the types
    agree, through pandas when they do not); whatever the new values, refresh after
    refresh, the frame equals the one a reader without an index builds, types, order and
    missing values included, and so does the next reader loading the saved file.  A damaged
    run added meanwhile sorts last."""
    _age(sweep)
    _frame(sweep)
    reads.clear()
    source = sweep.run_dirs()[0]
    names = iter("0f8123456789")
    for step, outcome in enumerate(outcomes):
        for damaged in (False, False, True) if step == 0 else (False, False):
            name = next(names) * 32
            target = source.parent / name
            shutil.copytree(source, target)
            store.write_json_atomic(target / "run.json", {**_record(source), "hash": name})
            store.write_json_atomic(target / "outcome.json", outcome)
            if damaged:
                (target / "run.json").write_text('{"format": 1, "hash"')
            old = time.time() - 3600  # not re-read next time for being too fresh
            os.utime(target, (old, old))
        refreshed = xprun.Reader(sweep.log_dir, warn=False)
        incremental = refreshed.to_pandas()
        assert [s.path.name for s in refreshed.skipped] == ["8" * 32]
        keys = list(refreshed._index.frame["_key"])
        assert keys[-1].endswith("8" * 32) and keys[:-1] == sorted(keys[:-1])  # run order
        assert len(reads) == 3  # the new runs only (and the damaged one, every time)
        reads.clear()
    loaded = xprun.Reader(sweep.log_dir, warn=False).to_pandas()
    shutil.rmtree(sweep.log_dir / ".xprun-index")
    cold = xprun.Reader(sweep.log_dir, warn=False).to_pandas()
    pd.testing.assert_frame_equal(incremental, cold)
    pd.testing.assert_frame_equal(loaded, cold)
    assert len(cold) == 6 + 2 * len(outcomes) and list(cold["hash"]) == sorted(cold["hash"])


def test_i11_reader_scale_a_refresh_of_an_index_of_damaged_runs_only(sweep):
    """Rows of damaged runs have no experiment or hash column: merging more of them into an
    index that holds nothing else keeps them all (nothing to sort by)."""
    for run_dir in sweep.run_dirs():
        (run_dir / "run.json").write_text("[")
    _age(sweep)
    assert len(xprun.Reader(sweep.log_dir, warn=False).skipped) == 6
    source = sweep.run_dirs()[0]
    shutil.copytree(source, source.parent / ("e" * 32))
    reader = xprun.Reader(sweep.log_dir, warn=False)
    assert len(reader) == 0 and len(reader.skipped) == 7
    assert "e" * 32 in {s.path.name for s in reader.skipped}


@pytest.mark.parametrize(
    "skips",
    [
        [None, None, None],
        [None, None, "bad"],
        ["bad", None, None],
        [None, "bad", None],
        ["", "bad", "x"],
        [None, "", "bad"],
    ],
)
def test_i11_reader_scale_readable_rows_are_those_not_skipped_wherever_they_are(skips):
    """Damaged rows sort last, so the readable rows are usually a slice; wherever they are
    (an index from elsewhere need not be sorted), they are exactly the rows not skipped."""
    from xprun.reader.rows import readable_rows

    frame = pd.DataFrame({"_key": ["a/1", "a/2", "a/3"], "_skip": skips})
    got = readable_rows(frame)
    assert list(got["_key"]) == [k for k, s in zip(frame["_key"], skips, strict=True) if s is None]


def test_i11_reader_scale_runs_added_after_the_others_need_no_sort(sweep, monkeypatch):
    """New runs that belong after the indexed ones (here: a new experiment folder) go
    before the damaged rows by slices; nothing is sorted, and the frame is a cold read's."""
    import pyarrow.compute as pc

    damaged = sweep.run_dirs()[1]
    (damaged / "run.json").write_text("[")
    _age(sweep)
    xprun.Reader(sweep.log_dir, warn=False).to_pandas()
    source = sweep.run_dirs()[0]
    later = sweep.log_dir / "zz_later.xp"
    for name in ("1" * 32, "2" * 32):
        shutil.copytree(source, later / name)
        record = {**_record(source), "hash": name, "experiment": "zz_later.xp"}
        store.write_json_atomic(later / name / "run.json", record)

    real_sort = pc.sort_indices

    def no_sort(table, *args, **kwargs):
        # The rows read anew (the two new ones and the damaged one, read again) are put in
        # order among themselves (cheap); the merged table (6 indexed rows and 2 new ones)
        # must not be sorted.
        if len(table) >= 8:
            raise AssertionError("the rows were sorted")
        return real_sort(table, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(pc, "sort_indices", no_sort)
        reader = xprun.Reader(sweep.log_dir, warn=False)
        incremental = reader.to_pandas()
    keys = list(reader._index.frame["_key"])
    assert keys[-1].endswith(damaged.name) and keys[-3:-1] == [
        f"zz_later.xp/{'1' * 32}",
        f"zz_later.xp/{'2' * 32}",
    ]
    shutil.rmtree(sweep.log_dir / ".xprun-index")
    pd.testing.assert_frame_equal(incremental, xprun.Reader(sweep.log_dir, warn=False).to_pandas())


def test_i11_reader_scale_the_code_column_is_stored_once_per_distinct_record(sweep):
    # Each run's ``_code`` (the files it imported, as JSON text: a kilobyte or more) is the
    # same across a sweep: the index stores it dictionary-encoded, each distinct text once
    # (at 100k runs it was 80 MB of the 135 MB file), before and after a refresh.
    import pyarrow as pa

    path = sweep.log_dir / index_module.INDEX_DIR / index_module.INDEX_FILE

    def code_column():
        table = pa.ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()
        return table.column("_code").combine_chunks()

    assert len(xprun.Reader(sweep.log_dir).to_pandas()) == 6
    column = code_column()
    assert pa.types.is_dictionary(column.type) and len(column.dictionary) == 1
    sweep.write("helper_mod.py", "X = 1\n")
    sweep.write("xp_scale.py", SWEEP.replace("import xprun", "import xprun\nimport helper_mod"))
    result = sweep.run("-q", "seed=7")
    assert result.returncode == 0, result.output
    frame = xprun.Reader(sweep.log_dir).to_pandas()
    column = code_column()
    assert len(column) == 7 and len(column.dictionary) == 2  # the new run imports more
    # The experiment's file changed: its 6 old runs are stale, the new one is not.
    assert sorted(frame["stale"].tolist()) == [False] + [True] * 6
