"""The results journal (issue 11, target 6; xprun/journal.py): each finished attempt appends a
line that a cold index takes a run's row from, instead of reading its three files.

What must hold: a cold read through the journal gives the very frame a read of the files
gives, whatever happened to the runs after their lines were written (reruns, retries, a
rerun killed mid-way, files edited in place or replaced, a copy of the log directory) and
whatever happened to the journal (torn, damaged, forged to disagree, not a file); and a
journal that cannot be written never fails a run.  The index reads a journal from
``_JOURNAL_FROM`` runs of a folder on; these tests lower it to 1 (their sweeps are small).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import xprun
import xprun.reader.index as index_module
from xprun import journal
from xprun.record import config_json, config_yaml

pytestmark = pytest.mark.inprocess

SWEEP = """
import math
import pathlib
import xprun

@xprun.fixture(params=["a", "b"])
def data(request):
    yield request.param
    if request.param == "b" and {teardown_fails}:
        raise RuntimeError("teardown")

@xprun.config({{"lr": 0.1, "model": {{"depth": 3, "act": "relu", "tags": ["x", "ü"]}},
                "none": None, "flag": True, "tiny": 1e-300, "nan": math.nan, "seed": 0}})
@xprun.grid(seed=[0, 1, 2])
def xp_mixed(config, data):
    flaky = pathlib.Path(__file__).parent / f"flaky-{{config.seed}}-{{data}}"
    if config.seed == 1 and data == "a":
        raise ValueError("one")
    if config.seed == 2 and data == "a" and not flaky.exists():
        flaky.write_text("")  # fails once: a retry in the same process completes it
        raise ValueError("once")
    if config.seed == 0 and data == "b":
        return 7  # {{"value": 7}}
    if config.seed == 2 and data == "b":
        return None  # {{}}
    return {{"acc": config.lr * config.seed, "nested": {{"f1": 0.5, "hist": [1, 2]}}}}
"""


def _write_sweep(project, teardown_fails: bool = False) -> None:
    project.write("xp_mixed.py", SWEEP.format(teardown_fails=teardown_fails))


@pytest.fixture
def journal_from_one(monkeypatch):
    monkeypatch.setattr(index_module, "_JOURNAL_FROM", 1)


@pytest.fixture
def reads(monkeypatch, journal_from_one):
    """The run folders whose files the index reads, by name."""
    seen: list[str] = []
    real = index_module.read_run

    def counting(path, *args, **kwargs):
        seen.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(index_module, "read_run", counting)
    return seen


def cold_frame(log_dir: Path) -> pd.DataFrame:
    """A cold read (no index), as a user's first ``Reader``."""
    shutil.rmtree(log_dir / ".xprun-index", ignore_errors=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reader = xprun.Reader(log_dir)
        return reader.to_pandas(), [(s.path.name, s.reason) for s in reader.skipped]


def files_frame(log_dir: Path, aside: Path) -> tuple[pd.DataFrame, list]:
    """The cold read of the files alone: the journal moved away meanwhile."""
    journal_dir = log_dir / journal.FOLDER
    moved = journal_dir.exists()
    if moved:
        journal_dir.rename(aside)
    try:
        return cold_frame(log_dir)
    finally:
        if moved:
            aside.rename(journal_dir)


def assert_same_as_files(log_dir: Path, tmp_path: Path) -> pd.DataFrame:
    ours, ours_skipped = cold_frame(log_dir)
    theirs, their_skipped = files_frame(log_dir, tmp_path / "journal-aside")
    pd.testing.assert_frame_equal(ours, theirs)
    assert sorted(ours_skipped) == sorted(their_skipped)
    return ours


def test_i11_journal_a_cold_read_takes_every_row_from_the_journal(project, reads, tmp_path):
    # Complete, failed, retried, non-mapping and empty outcomes, fixture params, values of
    # every plain type, a teardown error on a complete run; then a forced rerun of some.
    _write_sweep(project, teardown_fails=True)
    first = project.run("-q", "--retries", "1")
    assert first.returncode == 1, first.output  # seed=1, a fails on purpose
    rerun = project.run("-q", "-k", "seed=0", "--force")
    assert "2 complete, 1 teardown error" in rerun.stdout, rerun.output
    runs = project.run_dirs()
    assert len(runs) == 6
    statuses = sorted(r["status"] for r in project.records())
    assert statuses == ["complete"] * 5 + ["failed"]
    assert {r["attempt"] for r in project.records()} == {1, 2}  # a retry and a forced rerun
    reads.clear()
    frame, skipped = cold_frame(project.log_dir)
    assert reads == [] and skipped == []  # every row from the journal
    theirs, _ = files_frame(project.log_dir, tmp_path / "aside")
    assert len(reads) == 6  # the files read once the journal is away
    pd.testing.assert_frame_equal(frame, theirs)
    # What the rows say, read through the journal.
    by_node = frame.set_index("nodeid")
    assert by_node.loc["xp_mixed.py::xp_mixed[seed=0-b]", "outcome.value"] == 7
    assert by_node.loc["xp_mixed.py::xp_mixed[seed=1-a]", "error"] == "ValueError"
    assert by_node.loc["xp_mixed.py::xp_mixed[seed=2-a]", "attempt"] == 2
    assert by_node.loc["xp_mixed.py::xp_mixed[seed=0-a]", "config.tiny"] == 1e-300
    assert by_node.loc["xp_mixed.py::xp_mixed[seed=0-a]", "config.model.tags"] == ["x", "ü"]


def _journal_files(log_dir: Path) -> list[Path]:
    return sorted((log_dir / journal.FOLDER).glob("*/*.jsonl"))


def test_i11_journal_lines_are_what_the_format_says(project):
    _write_sweep(project)
    assert project.run("-q").returncode == 1
    (path,) = _journal_files(project.log_dir)
    assert path.parent.name == "xp_mixed.xp_mixed"  # the experiment's folder name
    data = path.read_bytes()
    assert data.startswith(journal.HEADER)
    assert path.stat().st_mode & 0o111 == 0  # a data file: nobody's to run
    lines = data.split(b"\n")[1:-1]
    kinds = [line.split(b" ")[1] for line in lines]
    assert kinds.count(b"c") == 1 and kinds.count(b"r") == 6  # the code object, once
    run_dirs = {d.name: d for d in project.run_dirs()}
    for line in lines:
        checksum, kind, key, body = line.split(b" ", 3)
        import xxhash

        assert int(checksum, 16) == xxhash.xxh64_intdigest(line[17:])
        if kind == b"r":
            _, record, config, _ = json.loads(body)
            run_dir = run_dirs[key.decode()]
            assert record["hash"] == run_dir.name
            assert "packages" not in record and "git" not in record  # columns only
            assert _same(config, yaml.safe_load((run_dir / "config.yaml").read_text()))


CHANGES = {
    # name: (change to run 0's folder, what a fresh read must then show for it)
    "run.json replaced": (
        lambda d: _replace_json(d / "run.json", status="failed"),
        lambda row: row["status"] == "failed",
    ),
    "run.json rewritten in place, times set back": (
        lambda d: _in_place(d / "run.json", lambda r: {**r, "attempt": 9}),
        lambda row: row["attempt"] == 9,
    ),
    "config.yaml replaced": (
        lambda d: _replace_text(d / "config.yaml", lambda t: t.replace("seed: 0", "seed: 5")),
        lambda row: row["config.seed"] == 5,
    ),
    "outcome.json replaced": (
        lambda d: _replace_text(d / "outcome.json", lambda t: t.replace("0.0", "0.25")),
        lambda row: row["outcome.acc"] == 0.25,
    ),
    "outcome.json removed": (
        lambda d: (d / "outcome.json").unlink(),
        None,  # damaged: skipped, its reason from the files
    ),
    "a claim that is a folder planted": (
        lambda d: (d / "claim.7").mkdir(),
        None,
    ),
}


def _replace_text(path: Path, change) -> None:
    tmp = path.with_name(".edited")
    tmp.write_text(change(path.read_text()))
    os.replace(tmp, path)  # as an editor or sed -i saves: a new file renamed in


def _replace_json(path: Path, **fields) -> None:
    record = json.loads(path.read_text())
    tmp = path.with_name(".edited")
    tmp.write_text(json.dumps({**record, **fields}))
    os.replace(tmp, path)  # as an editor saves: a new file renamed in


def _rewrite(path: Path, change) -> None:
    path.write_text(change(path.read_text()))  # in place: same inode, folder times unchanged


def _in_place(path: Path, change) -> None:
    before = os.stat(path)
    text = json.dumps(change(json.loads(path.read_text())))
    with open(path, "r+") as f:  # same inode, same folder times...
        f.write(text)
        f.truncate()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # ...and the mtime set back


@pytest.mark.parametrize("change", list(CHANGES))
def test_i11_journal_a_run_changed_after_its_line_is_read_from_its_files(
    project, reads, tmp_path, change
):
    project.write(
        "xp_two.py",
        "import xprun\n\n@xprun.grid(seed=[0, 1])\n"
        "def xp_two(config):\n    return {'acc': 0.0 + config.seed}\n",
    )
    assert project.run("-q").returncode == 0
    run_dir = next(d for d in project.run_dirs() if "seed: 0" in (d / "config.yaml").read_text())
    time.sleep(0.02)  # not a timing assertion: the change lands after the line's clock tick
    make, expect = CHANGES[change]
    make(run_dir)
    reads.clear()
    frame, skipped = cold_frame(project.log_dir)
    assert run_dir.name in reads  # the changed run was read from its files...
    assert len(reads) == 1  # ...and only it
    if expect is None:
        assert [name for name, _ in skipped] == [run_dir.name]
    else:
        (row,) = frame[frame["hash"] == run_dir.name].to_dict("records")
        assert expect(row), row
    assert_same_as_files(project.log_dir, tmp_path)


@pytest.mark.parametrize("name", ["config.yaml", "outcome.json"])
def test_i11_journal_a_config_or_outcome_rewritten_in_place_is_seen_by_a_full_refresh(
    project, reads, name
):
    # Rewritten in place (same inode, no rename: the run folder's times do not change), as
    # the index's warm refresh, the first read does not see it: the Reader gives the same
    # answer cold and warm, and refresh(full=True) reads every run's files (docs/reader.md).
    project.write(
        "xp_two.py",
        "import xprun\n\n@xprun.grid(seed=[0, 1])\n"
        "def xp_two(config):\n    return {'acc': 0.0 + config.seed}\n",
    )
    assert project.run("-q").returncode == 0
    run_dir = next(d for d in project.run_dirs() if "seed: 0" in (d / "config.yaml").read_text())
    before, _ = cold_frame(project.log_dir)
    change = {"config.yaml": ("seed: 0", "seed: 5"), "outcome.json": ("0.0", "0.25")}[name]
    _rewrite(run_dir / name, lambda t: t.replace(*change))
    reads.clear()
    frame, _ = cold_frame(project.log_dir)
    assert reads == []
    pd.testing.assert_frame_equal(frame, before)
    reader = xprun.Reader(project.log_dir)
    reader.refresh(full=True)
    (row,) = reader.to_pandas().query(f"hash == '{run_dir.name}'").to_dict("records")
    column, value = {"config.yaml": ("config.seed", 5), "outcome.json": ("outcome.acc", 0.25)}[name]
    assert row[column] == value


@pytest.mark.inprocess(False)
def test_i11_journal_a_forced_rerun_killed_mid_run_reads_running(project, reads, tmp_path):
    started = project.root / "started"
    project.write(
        "xp_slow.py",
        f"""
        import os, pathlib, time, xprun

        @xprun.grid(seed=[0])
        def xp_slow(config):
            if os.environ.get("SLOW"):
                pathlib.Path({str(started)!r}).write_text("")
                time.sleep(60)
            return {{"acc": 1.0}}
        """,
    )
    assert project.run("-q").returncode == 0
    (run_dir,) = project.run_dirs()
    env = {**project.env(), "SLOW": "1"}
    proc = __import__("subprocess").Popen(
        [*project.command(), "-q", "--force"], cwd=project.root, env=env, start_new_session=True
    )
    deadline = time.time() + 60
    while not started.exists():
        assert proc.poll() is None and time.time() < deadline, "the rerun did not start"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # no final record, no journal line
    proc.wait()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    reads.clear()
    frame, _ = cold_frame(project.log_dir)
    assert reads == [run_dir.name]
    # Its claim's process is dead: interrupted, as the files say; not attempt 1's line.
    assert list(frame["status"]) == ["interrupted"]
    assert "outcome.acc" not in frame.columns or frame["outcome.acc"].isna().all()
    assert_same_as_files(project.log_dir, tmp_path)


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


def _checked(rest: bytes) -> bytes:
    import xxhash

    return b"%016x %s" % (xxhash.xxh64_intdigest(rest), rest)


def _first_run_line(lines: list[bytes]) -> int:
    return next(i for i, line in enumerate(lines) if line[17:19] == b"r ")


DAMAGE = {
    # name: (damage to the journal file, how many runs are then read from their files)
    "a byte flipped in a line": (
        lambda p: _flip(p),
        1,
    ),
    "the last line torn": (
        lambda p: p.write_bytes(p.read_bytes()[:-40]),
        1,
    ),
    "another header": (
        lambda p: p.write_bytes(b"xprun-journal 2" + p.read_bytes()[len(journal.HEADER) - 1 :]),
        3,
    ),
    "a forged line that disagrees with the real one": (
        lambda p: _append_forged(p),
        1,
    ),
    "a line whose record names another run": (
        lambda p: _append_other_hash(p),
        0,  # matched to no run whose signature it has: the true line serves
    ),
    "a line nested too deeply": (
        lambda p: p.write_bytes(
            p.read_bytes() + _checked(b"r " + _hash_of_first(p) + b" " + b"[" * 200_000) + b"\n"
        ),
        0,
    ),
    "the code object's line lost": (
        lambda p: p.write_bytes(b"\n".join(x for x in _lines(p) if x[17:19] != b"c ")),
        3,
    ),
    "binary garbage": (lambda p: p.write_bytes(os.urandom(5000)), 3),
}


def _flip(path: Path) -> None:
    """A digit of the first run line's outcome changed, its checksum left as it was."""
    lines = _lines(path)
    n = _first_run_line(lines)
    at = lines[n].rindex(b"0.0")
    lines[n] = lines[n][:at] + b"9.0" + lines[n][at + 3 :]
    path.write_bytes(b"\n".join(lines))


def _hash_of_first(path: Path) -> bytes:
    lines = _lines(path)
    return lines[_first_run_line(lines)].split(b" ")[2]


def _append_forged(path: Path) -> None:
    lines = _lines(path)
    line = lines[_first_run_line(lines)]
    rest = line[17:]
    head, _, body = rest.partition(b" [")
    forged = json.loads(b"[" + body)
    forged[3] = {"acc": 99.0}  # the same signature, another outcome
    text = head + b" " + json.dumps(forged, separators=(",", ":")).encode()
    path.write_bytes(path.read_bytes() + _checked(text) + b"\n")


def _append_other_hash(path: Path) -> None:
    lines = _lines(path)
    line = lines[_first_run_line(lines)]
    rest = line[17:]
    _, _, body = rest.split(b" ", 2)
    other = _lines(path)[_first_run_line(lines) + 1].split(b" ")[2]
    path.write_bytes(path.read_bytes() + _checked(b"r " + other + b" " + body) + b"\n")


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_i11_journal_a_damaged_journal_is_never_trusted(project, reads, tmp_path, damage):
    project.write(
        "xp_three.py",
        "import xprun\n\n@xprun.grid(seed=[0, 1, 2])\n"
        "def xp_three(config):\n    return {'acc': 0.0 + config.seed}\n",
    )
    assert project.run("-q").returncode == 0
    (path,) = _journal_files(project.log_dir)
    make, files_read = DAMAGE[damage]
    make(path)
    reads.clear()
    frame, skipped = cold_frame(project.log_dir)
    assert len(reads) == files_read, reads
    assert skipped == []
    assert sorted(frame["outcome.acc"]) == [0.0, 1.0, 2.0]
    assert_same_as_files(project.log_dir, tmp_path)


@pytest.mark.parametrize("kind", ["fifo", "link", "folder"])
def test_i11_journal_a_journal_that_is_not_a_file_is_ignored(project, reads, kind):
    project.write(
        "xp_three.py",
        "import xprun\n\n@xprun.grid(seed=[0, 1, 2])\n"
        "def xp_three(config):\n    return {'acc': 0.0 + config.seed}\n",
    )
    assert project.run("-q").returncode == 0
    (path,) = _journal_files(project.log_dir)
    target = path.with_name("0-planted.jsonl")  # read first: the files after it still are
    if kind == "fifo":
        os.mkfifo(target)  # opening it for reading would block: it must not be opened so
    elif kind == "link":
        target.symlink_to(path)
    else:
        target.mkdir()
    reads.clear()
    frame, skipped = cold_frame(project.log_dir)
    assert reads == [] and len(frame) == 3 and skipped == []  # the real journal served
    path.unlink()
    reads.clear()
    frame, skipped = cold_frame(project.log_dir)
    assert len(reads) == 3 and len(frame) == 3 and skipped == []  # the planted one: nothing


def test_i11_journal_a_copied_log_directory_reads_its_files(project, reads, tmp_path):
    _write_sweep(project)
    assert project.run("-q").returncode == 1
    copy = tmp_path / "copy"
    shutil.copytree(project.log_dir, copy, symlinks=True)  # times kept; not the inodes
    reads.clear()
    frame, _ = cold_frame(copy)
    assert len(reads) == 6  # the journal describes the originals, not the copies
    assert_same_as_files(copy, tmp_path)
    assert len(frame) == 6


def test_i11_journal_a_config_json_cannot_hold_is_read_from_config_yaml(project, reads, tmp_path):
    project.write(
        "xp_keys.py",
        "import xprun\n\n@xprun.config({'table': {1: 'one', 2: 'two'}, 'seed': 0})\n"
        "@xprun.grid(seed=[0, 1])\ndef xp_keys(config):\n    return {'n': len(config.table)}\n",
    )
    result = project.run("-q")
    assert result.returncode == 0, result.output
    reads.clear()
    frame = assert_same_as_files(project.log_dir, tmp_path)
    assert len(reads) == 2 * 2  # both reads, journal or not, read both runs' files
    assert list(frame["config.table.1"]) == ["one", "one"]


def test_i11_journal_that_cannot_be_written_never_fails_a_run(project, reads):
    project.write(
        "xp_three.py",
        "import xprun\n\n@xprun.grid(seed=[0, 1, 2])\n"
        "def xp_three(config):\n    return {'acc': 0.0 + config.seed}\n",
    )
    project.log_dir.mkdir()
    (project.log_dir / journal.FOLDER).write_text("a file where the journal folder goes")
    result = project.run("-q")
    assert result.returncode == 0 and "3 complete" in result.stdout, result.output
    assert result.stderr == "" or "journal" not in result.stderr
    frame, skipped = cold_frame(project.log_dir)
    assert len(reads) == 3 and len(frame) == 3 and skipped == []


@pytest.mark.inprocess(False)
def test_i11_journal_pool_workers_each_write_their_own_file(project, reads, tmp_path):
    from conftest import git_commit_all

    project.write(
        "xp_many.py",
        "import xprun\n\n@xprun.grid(seed=list(range(12)))\n"
        "def xp_many(config):\n    return {'acc': 0.0 + config.seed}\n",
    )
    git_commit_all(project.root)
    result = project.run("-q", "-n", "2")
    assert result.returncode == 0, result.output
    files = _journal_files(project.log_dir)
    assert 1 <= len(files) <= 2, files  # one per worker that ran something
    for path in files:
        assert path.read_bytes().startswith(journal.HEADER)
    reads.clear()
    assert len(assert_same_as_files(project.log_dir, tmp_path)) == 12
    assert len(reads) == 12  # the files-only read; the journal read none


def test_i11_journal_a_forked_child_writes_a_file_of_its_own(tmp_path):
    folder = tmp_path / "logs" / "xp"
    folder.mkdir(parents=True)
    parent = journal.writer(str(folder))
    parent.append("a" * 32, [0] * 6, {"hash": "a" * 32}, "{}", None)
    pid = os.fork()
    if pid == 0:  # the child: its writer is a new one, on a file of its own
        try:
            journal.writer(str(folder)).append("b" * 32, [0] * 6, {"hash": "b" * 32}, "{}", None)
            journal.close_all()  # writes the child's line only: the parent's is the parent's
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    journal.close_all()
    files = sorted((tmp_path / "logs" / journal.FOLDER / "xp").iterdir())
    assert len(files) == 2
    bodies = sorted(b"".join(_lines(p)[1:]) for p in files)
    assert [b"r " + c * 32 in body for body, c in zip(bodies, (b"a", b"b"), strict=True)]
    assert all(body.count(b" r ") == 1 for body in bodies)


def test_i11_journal_a_line_too_long_is_left_out_and_the_next_one_is_whole(tmp_path, monkeypatch):
    folder = tmp_path / "logs" / "xp"
    folder.mkdir(parents=True)
    monkeypatch.setattr(journal, "MAX_LINE", 600)
    writer = journal.Writer(str(folder))
    code = {"digest": "d", "root": "/r", "files": {"a.py": "0" * 32}}
    writer.append("a" * 32, [1] * 6, {"hash": "a" * 32, "code": code}, "{}", {"x": "y" * 600})
    writer.append("b" * 32, [2] * 6, {"hash": "b" * 32, "code": code}, "{}", {"x": 1})
    writer.close()
    found = journal.read(str(folder), {"a" * 32, "b" * 32}, index_module.read_bytes)
    assert list(found) == ["b" * 32]
    (entry,) = found["b" * 32]
    signature, record, _, outcome = entry.parse()
    assert signature == [2] * 6 and record["code"] == code and outcome == {"x": 1}


# -- config_json: JSON that loads as config.yaml's YAML does ------------------------------

_keys = st.text(min_size=1, max_size=8)
_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=12,
)


def _same(a, b) -> bool:
    """Equal, NaN equal to NaN, 1 and True told apart."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=6))
def test_i11_journal_config_json_loads_as_config_yaml_does(config):
    text = config_json(config)
    assert text is not None
    assert _same(json.loads(text), yaml.safe_load(config_yaml(config)) or {})
    assert config_json(config) == text  # from the cached entries: the same


@pytest.mark.parametrize(
    "config",
    [
        {1: "int key"},
        {"a": {2: "nested int key"}},
        {"a": {True: "bool key"}},
        {"a": {None: "null key"}},
        {"a": (1, 2)},
        {"a": b"bytes"},
        {"a": {1, 2}},
        ["not", "a", "mapping"],
    ],
)
def test_i11_journal_config_json_says_none_where_json_differs_from_yaml(config):
    assert config_json(config) is None


def test_i11_journal_config_json_caches_values_not_keys():
    assert json.loads(config_json({"lr": 1, "seed": 3})) == {"lr": 1, "seed": 3}
    assert json.loads(config_json({"lr": 1.0, "seed": 4})) == {"lr": 1.0, "seed": 4}
    assert type(json.loads(config_json({"lr": 1.0}))["lr"]) is float
    assert json.loads(config_json({"lr": True})) == {"lr": True}
    assert json.loads(config_json({"lr": [1, {"a": 2}]})) == {"lr": [1, {"a": 2}]}


# -- reading lines: what is skipped, and why (unit tests of xprun/journal.py) ------------------

_SIG = list(range(6))


def _file(tmp_path: Path, lines: list[bytes], header: bytes = journal.HEADER) -> str:
    folder = tmp_path / "logs" / "xp"
    folder.mkdir(parents=True, exist_ok=True)
    target = tmp_path / "logs" / journal.FOLDER / "xp"
    target.mkdir(parents=True, exist_ok=True)
    (target / "w.jsonl").write_bytes(header + b"".join(line + b"\n" for line in lines))
    return str(folder)


def _r(run: str, body: object) -> bytes:
    text = body if isinstance(body, bytes) else json.dumps(body).encode()
    return _checked(b"r " + run.encode() + b" " + text)


def test_i11_journal_read_keeps_only_whole_wanted_lines(tmp_path):
    good = [_SIG, {"hash": "a"}, {}, None]
    lines = [
        b"garbage",  # too few fields
        b"0123456789abcdef r a",  # three fields, the first a checksum's length
        b"0123456789abcdef r",
        b"0123456789abcde r a " + json.dumps(good).encode(),  # a checksum of 15 digits
        _checked(b"x a " + json.dumps(good).encode()),  # an unknown kind
        b"zzzzzzzzzzzzzzzz r a " + json.dumps(good).encode(),  # not hexadecimal
        b"0000000000000000 r a " + json.dumps(good).encode(),  # a wrong checksum
        _r("b", good),  # a run not asked for
        _r("a", good),
        _r("c", good),
    ]
    found = journal.read(_file(tmp_path, lines), {"a", "c"}, index_module.read_bytes)
    assert sorted(found) == ["a", "c"]
    # A line's checksum is checked when it is used (most lines of a run rerun many times
    # never are): the damaged lines of "a" are read, and refused when used.
    intact = {name: [e for e in entries if e.intact()] for name, entries in found.items()}
    assert [len(v) for v in intact.values()] == [1, 1]
    assert intact["a"][0].parse() == tuple(good)
    assert journal.record_of(intact["a"][0], _SIG[:4]) == good[1]
    damaged = [e for e in found["a"] if not e.intact()]
    assert len(damaged) == 2  # not hexadecimal, a wrong checksum
    for entry in damaged:
        assert entry.intact() is False
        assert journal.record_of(entry, _SIG[:4]) is None
        with pytest.raises(ValueError, match="checksum"):
            entry.parse()


def test_i11_journal_read_skips_a_file_of_another_format(tmp_path):
    folder = _file(tmp_path, [_r("a", [_SIG, {}, {}, None])], header=b"xprun-journal 2\n")
    assert journal.read(folder, {"a"}, index_module.read_bytes) == {}


@pytest.mark.parametrize(
    "body",
    [
        [_SIG, {}, {}],  # three parts
        [_SIG, {}, {}, None, None],  # five
        {"sig": _SIG},  # not a list
        [list(range(5)), {}, {}, None],  # a signature of 5
        [list(range(10)), {}, {}, None],  # of 10
        [[*range(5), "5"], {}, {}, None],  # not all integers
        [[*range(5), 5.0], {}, {}, None],
        ["x" * 6, {}, {}, None],  # not a list
        [_SIG, ["not", "a", "record"], {}, None],
        [_SIG, {"code": {"ref": "undefined"}}, {}, None],  # a code object never defined
        [_SIG, {"code": {"ref": 7}}, {}, None],
    ],
)
def test_i11_journal_a_line_of_the_wrong_shape_is_refused(tmp_path, body):
    found = journal.read(_file(tmp_path, [_r("a", body)]), {"a"}, index_module.read_bytes)
    (entry,) = found["a"]
    with pytest.raises(ValueError):
        entry.parse()


def test_i11_journal_a_code_reference_is_resolved_within_its_file(tmp_path):
    code = {"digest": "d", "files": {"a.py": "0" * 32}}
    text = json.dumps(code).encode()
    lines = [
        _checked(b"c k1 " + text),
        _r("a", [_SIG, {"code": {"ref": "k1"}}, {}, None]),
        _r("b", [_SIG, {"code": {"ref": "k1", "x": 1}}, {}, None]),  # not a reference
        _r(
            "c",
            [_SIG, {"code": "plain"}],
        ),
    ]
    found = journal.read(_file(tmp_path, lines), {"a", "b", "c"}, index_module.read_bytes)
    assert found["a"][0].parse()[1]["code"] == code
    assert found["b"][0].parse()[1]["code"] == {"ref": "k1", "x": 1}
    with pytest.raises(ValueError):
        found["c"][0].parse()  # two parts only


def test_i11_journal_parse_all_decodes_batches_and_leaves_odd_ones_to_parse(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "_BATCH", 2)
    good = [_SIG, {"hash": "h"}, {}, None]
    lines = [_r(f"r{i}", good) for i in range(5)]
    lines.insert(2, _r("odd", b"1],[2"))  # decodes only joined with others: not by itself
    found = journal.read(
        _file(tmp_path, lines), {*(f"r{i}" for i in range(5)), "odd"}, index_module.read_bytes
    )
    entries = [e for name in ["r0", "r1", "odd", "r2", "r3", "r4"] for e in found[name]]
    journal.parse_all(entries)
    decoded = [e.parsed is not None for e in entries]
    # Batches of two: [r0, r1] decode; [odd, r2] make three values: left to parse; [r3, r4].
    assert decoded == [True, True, False, False, True, True]
    assert entries[0].parse() == tuple(good) and entries[0].parsed is None
    assert entries[3].parse() == tuple(good)
    with pytest.raises(ValueError):
        entries[2].parse()


def test_i11_journal_writer_keeps_the_columns_fields_and_the_error_type_only(tmp_path):
    folder = tmp_path / "logs" / "xp"
    folder.mkdir(parents=True)
    record = {
        "format": 2,
        "hash": "h" * 32,
        "experiment": "xp",
        "nodeid": "n",
        "params": {"p": "v"},
        "status": "failed",
        "attempt": 2,
        "start": "s",
        "end": "e",
        "duration": 1.5,
        "host": "machine",
        "user": "me",
        "recovered": False,
        "packages": {"numpy": "2"},
        "error": {"type": "ValueError", "message": "m" * 100},
        "argv": ["x"],
    }
    writer = journal.Writer(str(folder))
    writer.append("h" * 32, _SIG, record, '{"a":1}', None)
    writer.append(
        "g" * 32,
        _SIG,
        {**record, "hash": "g" * 32},
        None,
        None,
        head_json='"format": 2, "hash": "' + "g" * 32 + '"',
        outcome_json="null",
    )
    writer.close()
    found = journal.read(str(folder), {"h" * 32, "g" * 32}, index_module.read_bytes)
    signature, kept, config, outcome = found["h" * 32][0].parse()
    assert signature == _SIG and config == {"a": 1} and outcome is None
    expected = {k: v for k, v in record.items() if k in journal.RECORD_FIELDS}
    assert kept == {**expected, "error": {"type": "ValueError"}}
    _, kept, config, _ = found["g" * 32][0].parse()
    assert config is None
    assert kept == {
        "format": 2,
        "hash": "g" * 32,
        "host": "machine",
        "user": "me",
        "recovered": False,
        "error": {"type": "ValueError"},
    }


def test_i11_journal_writer_stops_after_a_write_fails_and_never_raises(tmp_path):
    folder = tmp_path / "logs" / "xp"
    folder.mkdir(parents=True)
    (tmp_path / "logs" / journal.FOLDER).write_text("not a folder")
    writer = journal.Writer(str(folder))
    writer.append("a" * 32, _SIG, {"hash": "a" * 32}, "{}", None)
    writer.flush()  # fails: no error
    (tmp_path / "logs" / journal.FOLDER).unlink()
    writer.append("b" * 32, _SIG, {"hash": "b" * 32}, "{}", None)
    writer.close()  # given up: not tried again
    assert not (tmp_path / "logs" / journal.FOLDER).exists()
    other = journal.Writer(str(folder))
    other.append("c" * 32, _SIG, {"hash": "c" * 32}, "{}", {"x": {1, 2}})  # not JSON: left out
    other.append("d" * 32, _SIG, {"hash": "d" * 32}, "{}", {"x": 1})
    other.close()
    found = journal.read(
        str(folder), {"a" * 32, "b" * 32, "c" * 32, "d" * 32}, index_module.read_bytes
    )
    assert list(found) == ["d" * 32]


def test_i11_journal_lines_are_written_in_batches_and_at_the_end(tmp_path, monkeypatch):
    folder = tmp_path / "logs" / "xp"
    folder.mkdir(parents=True)
    monkeypatch.setattr(journal, "_FLUSH_EVERY", 3)
    monkeypatch.setattr(journal, "_FLUSH_AFTER", 3600.0)
    writer = journal.writer(str(folder))
    names = [c * 32 for c in "abcde"]

    def written() -> list[str]:
        return sorted(journal.read(str(folder), set(names), index_module.read_bytes))

    for name in names[:2]:
        writer.append(name, _SIG, {"hash": name}, "{}", None)
    assert written() == []  # kept
    writer.append(names[2], _SIG, {"hash": names[2]}, "{}", None)
    assert written() == names[:3]  # the third one wrote the batch
    writer.append(names[3], _SIG, {"hash": names[3]}, "{}", None)
    monkeypatch.setattr(journal, "_FLUSH_AFTER", 0.0)
    writer.append(names[4], _SIG, {"hash": names[4]}, "{}", None)  # time is up: written
    assert written() == names
    journal.close_all()
    assert journal._writers == {}


# -- the skip check's first look at complete runs (xprun/completion_summary.py) -----------------


def test_i11_journal_the_skip_check_takes_complete_runs_from_the_journal(project, monkeypatch):
    # A launch that finds runs complete without a completion summary (the first one after
    # they ran, or the summary deleted) takes each run's state from its journal line when
    # the line's signature of run.json is the file's own: an lstat, not a read.
    from xprun import completion_summary

    monkeypatch.setattr(completion_summary, "_JOURNAL_FROM", 1)
    project.write(
        "xp_skip.py",
        "import xprun\n\n@xprun.grid(seed=[0, 1, 2, 3, 4])\ndef xp_skip(config):\n"
        "    if config.seed == 3:\n        raise ValueError('three')\n    return {'s': config.seed}\n",
    )
    assert project.run("-q").returncode == 1
    run_dirs = {json.loads((d / "run.json").read_text())["nodeid"]: d for d in project.run_dirs()}
    edited = run_dirs["xp_skip.py::xp_skip[seed=2]"]
    _replace_json(edited / "run.json", status="failed")  # rerun: its line no longer matches
    time.sleep(0.2)  # older than the summary's racy window, so that entries are kept
    read: list[str] = []
    real = completion_summary._read_record

    def counting(path):
        read.append(os.path.basename(os.path.dirname(path)))
        return real(path)

    monkeypatch.setattr(completion_summary, "_read_record", counting)
    summary = edited.parent / completion_summary.NAME
    summary.unlink(missing_ok=True)
    again = project.run("-q")
    assert "3 cached" in again.stdout and again.returncode == 1, again.output
    assert read == [edited.name]  # the edited run's record only; seeds 0, 1, 4 and 3: lines
    assert json.loads(summary.read_text())["runs"].keys() >= {
        run_dirs[f"xp_skip.py::xp_skip[seed={s}]"].name for s in (0, 1, 4)
    }
    read.clear()
    third = project.run("-q")
    assert "4 cached" in third.stdout, third.output  # seed=2 completed again just now
    assert read == [] or set(read) <= {run_dirs["xp_skip.py::xp_skip[seed=2]"].name}


def test_i11_journal_record_of_decodes_the_record_of_a_matching_line_only(tmp_path):
    code = {"digest": "xxh3_128:d", "files": {}}
    record = {"hash": "a" * 32, "status": "complete", "attempt": 1, "code": {"ref": "k"}}
    lines = [
        _checked(b"c k " + json.dumps(code).encode()),
        _r("a" * 32, [[1, 2, 3, 4, 5, 6], record, {"big": "config"}, {"o": 1}]),
        _r("b" * 32, b'[[1,2,3,4,5,6],"not a record",{},null]'),
        _r("c" * 32, b"[[1,2,3,x,5,6],{},{},null]"),
        _r("d" * 32, b'{"sig": [1, 2, 3, 4, 5, 6]}'),
        _r("e" * 32, b"[[1,2,3,4,5],{},{},null]"),
    ]
    found = journal.read(_file(tmp_path, lines), {c * 32 for c in "abcde"}, index_module.read_bytes)
    (entry,) = found["a" * 32]
    assert journal.record_of(entry, [1, 2, 3, 4]) == {**record, "code": code}
    assert journal.record_of(entry, [1, 2, 3, 5]) is None  # another run.json
    for name in "bcde":
        (other,) = found[name * 32]
        assert journal.record_of(other, [1, 2, 3, 4]) is None, name


def test_i11_journal_record_of_keeps_an_inline_code_object(tmp_path):
    code = {"digest": "xxh3_128:d", "files": {"a.py": "0" * 32}}
    record = {"hash": "a" * 32, "status": "complete", "attempt": 1, "code": code}
    lines = [_r("a" * 32, [[1, 2, 3, 4, 5, 6], record, {}, None])]
    found = journal.read(_file(tmp_path, lines), {"a" * 32}, index_module.read_bytes)
    assert journal.record_of(found["a" * 32][0], [1, 2, 3, 4]) == record


@pytest.mark.parametrize(
    "case", ["record removed", "record is a folder", "lines disagree", "the same line twice"]
)
def test_i11_journal_the_skip_check_reads_the_record_when_its_lines_cannot_say(
    project, monkeypatch, case
):
    # The journal stands for a record only when one line (or several that agree) has the
    # very signature of a regular run.json: otherwise the record is read (or found missing),
    # never a crash, never a guess.
    from xprun import completion_summary

    monkeypatch.setattr(completion_summary, "_JOURNAL_FROM", 1)
    project.write(
        "xp_two.py",
        "import xprun\n\n@xprun.grid(seed=[0, 1])\n"
        "def xp_two(config):\n    return {'acc': 0.0 + config.seed}\n",
    )
    assert project.run("-q").returncode == 0
    run_dir = project.run_dirs()[0]
    (path,) = _journal_files(project.log_dir)
    if case == "record removed":
        (run_dir / "run.json").unlink()
    elif case == "record is a folder":
        (run_dir / "run.json").unlink()
        (run_dir / "run.json").mkdir()
    elif case == "the same line twice":  # two writers' copies agree: the line stands
        lines = _lines(path)
        n = next(i for i, x in enumerate(lines) if x.split(b" ")[2:3] == [run_dir.name.encode()])
        path.write_bytes(path.read_bytes() + lines[n] + b"\n")
    else:  # a second line for the same run.json, another record: which one is right?
        lines = _lines(path)
        n = next(i for i, x in enumerate(lines) if x.split(b" ")[2:3] == [run_dir.name.encode()])
        rest = lines[n][17:]
        forged = rest.replace(b'"attempt": 1', b'"attempt": 7').replace(
            b'"attempt":1', b'"attempt":7'
        )
        assert forged != rest
        path.write_bytes(path.read_bytes() + _checked(forged) + b"\n")
    (run_dir.parent / completion_summary.NAME).unlink(missing_ok=True)
    read: list[str] = []
    real = completion_summary._read_record

    def counting(record_path):
        read.append(os.path.basename(os.path.dirname(record_path)))
        return real(record_path)

    monkeypatch.setattr(completion_summary, "_read_record", counting)
    result = project.run("-q")
    if case == "lines disagree":
        assert "2 cached" in result.stdout, result.output
        assert read == [run_dir.name]  # the record read; the other run from its line
    elif case == "the same line twice":
        assert "2 cached" in result.stdout, result.output
        assert read == []
    elif case == "record removed":  # not complete: run again
        assert result.returncode == 0, result.output
        assert "1 complete" in result.stdout and "1 cached" in result.stdout, result.output
    else:  # a folder where run.json goes: that run fails, saying what to do; no crash
        assert result.returncode == 1 and "1 cached, 1 failed" in result.stdout, result.output
        assert "a folder stands where xprun writes the run's file" in result.output


def test_i11_journal_lines_of_earlier_attempts_are_not_decoded(project, reads, monkeypatch):
    # A run forced again and again has a line per attempt, all but the last describing an
    # earlier state of its folder: decoding them made a first read slower than the files.
    _write_sweep(project)
    project.run("-q")
    for _ in range(3):
        project.run("-q", "--force")
    lines = [ln for path in _journal_files(project.log_dir) for ln in _lines(path)]
    assert sum(b" r " in line[:20] for line in lines) == 4 * 6  # a line per attempt
    decoded: list[int] = []
    real = journal.parse_all

    def counting(entries):
        decoded.append(len(entries))
        return real(entries)

    monkeypatch.setattr(journal, "parse_all", counting)
    reads.clear()
    frame, skipped = cold_frame(project.log_dir)
    assert reads == [] and skipped == []  # every row from the journal...
    assert sum(decoded) == 6  # ...each from its one current line, the others not decoded
    assert list(frame["attempt"]) == [4] * 6  # the fourth attempt of each


def test_i11_journal_about_folder_keeps_the_lines_that_name_the_folders_times(tmp_path):
    def line(signature_text: bytes) -> bytes:
        return _r("a", signature_text + b',{"hash": "a"},{},null]')

    lines = [
        line(b"[[1,2,3,4,50,60]"),  # the folder's times
        line(b"[[1,2,3,4,50,61]"),  # another ctime: an earlier state of the folder
        line(b"[[1,2,3,4,51,60]"),  # another mtime
        line(b"[[1,2,3,4,150,60]"),  # ends with the mtime's digits, not the mtime
        line(b"[[1, 2, 3, 4, 50, 60]"),  # not as a writer writes it: read from the files
        line(b"[[1,2,3,4,-50,60]"),  # a time before 1970 is another time
        line(b"[[1,2,3,4,50,60"),  # torn inside the signature
    ]
    found = journal.read(_file(tmp_path, lines), {"a"}, index_module.read_bytes)
    kept = journal.about_folder(found["a"], 50, 60)
    assert [entry.line for entry in kept] == [lines[0]]
    assert [e.line for e in journal.about_folder(found["a"], -50, 60)] == [lines[5]]
    assert journal.about_folder(found["a"], 5, 60) == []


def test_i11_journal_a_code_line_needs_a_checksum_of_16_digits(tmp_path):
    # A code line's checksum is its first 16 characters.  One of 15 digits and a second
    # space (the kind still at its place) that happens to be the digest of the rest is not
    # the writer's line: its code object is not defined.
    import xxhash

    for salt in range(1000):  # a digest below 16**15 is written in 15 digits
        text = json.dumps({"digest": "d", "files": {}, "salt": salt}).encode()
        digest = xxhash.xxh64_intdigest(b"c " + text)  # the rest as the reader cuts it
        if digest < 16**15:
            break
    short = b"%015x  c " % digest + text  # split: 15 digits, "", "c" (a key), the code
    assert short[16:19] == b" c " and xxhash.xxh64_intdigest(short[17:]) == digest
    lines = [short, _r("a", [_SIG, {"code": {"ref": "c"}}, {}, None])]
    (entry,) = journal.read(_file(tmp_path, lines), {"a"}, index_module.read_bytes)["a"]
    with pytest.raises(ValueError, match="does not define"):
        entry.parse()  # no code object "c": the short line defined nothing
