"""The Reader's cold index (issue 11, target 6): many runs are read by one thread while a
helper process (xprun/reader/prefetch.py) asks the kernel to read their files in ahead of it.

What must hold whatever the helper does: the rows, their order and the runs skipped (with
their reasons) are those of a read without it; a helper that cannot start, dies, never reads
or is sent a folder deleted meanwhile changes nothing; the helper is gone when the read is
done; it opens nothing a run folder could turn against it (a FIFO, a link out).  The
thresholds are lowered in-process: reaching the real ones takes over a thousand runs.
"""

from __future__ import annotations

import io
import os
import select
import shutil
import subprocess
import sys
import threading

import pandas as pd
import pytest

import xprun
import xprun.reader.index as index_module
import xprun.reader.prefetch as prefetch

SWEEP = """
import xprun

@xprun.grid(seed=list(range(9)))
def xp_cold(config):
    if config.seed == 7:
        raise ValueError("seven")
    return {"score": config.seed * 10}
"""


@pytest.fixture
def sweep(project):
    project.write("xp_cold.py", SWEEP)
    result = project.run("-q")
    assert result.returncode == 1, result.output  # one run fails, on purpose
    broken = project.run_dirs()[4]
    (broken / "run.json").write_text('{"format": 1, "hash"')
    return project


@pytest.fixture
def helpers(monkeypatch):
    """The helpers started, as (Prefetcher, its process) when closed, and the folders sent."""
    closed: list[tuple[prefetch.Prefetcher, object]] = []
    sent: list[str] = []
    real_close, real_send = prefetch.Prefetcher.close, prefetch.Prefetcher.send

    def close(self):
        closed.append((self, self._process))
        real_close(self)

    def send(self, folders):
        sent.extend(folders)
        real_send(self, folders)

    monkeypatch.setattr(prefetch.Prefetcher, "close", close)
    monkeypatch.setattr(prefetch.Prefetcher, "send", send)
    return closed, sent


def _read(project, monkeypatch, prefetched: bool):
    """A cold index of the project's runs, with the helper started after the first chunk
    (chunks of 2 runs, each counted as read from the disk, one chunk ahead) or without it."""
    shutil.rmtree(project.log_dir / ".xprun-index", ignore_errors=True)
    monkeypatch.setattr(index_module, "_PREFETCH_FROM", 1 if prefetched else 10**9)
    monkeypatch.setattr(index_module, "_CHUNK", 2)
    monkeypatch.setattr(index_module, "_AHEAD", 1)
    monkeypatch.setattr(index_module, "_COLD_BLOCKS", -1)
    reader = xprun.Reader(project.log_dir, warn=False)
    return reader.to_pandas(), [(s.path, s.reason) for s in reader.skipped]


def test_i11_reader_cold_prefetched_read_equals_the_serial_one(sweep, monkeypatch, helpers):
    closed, sent = helpers
    threads_before = set(threading.enumerate())
    serial, serial_skipped = _read(sweep, monkeypatch, prefetched=False)
    assert closed == [] and sent == []
    prefetched, prefetched_skipped = _read(sweep, monkeypatch, prefetched=True)
    pd.testing.assert_frame_equal(serial, prefetched)
    assert len(serial) == 8 and list(serial["hash"]) == sorted(serial["hash"])
    assert sorted(serial["status"]) == ["complete"] * 7 + ["failed"]
    assert serial_skipped == prefetched_skipped
    assert [p for p, _ in serial_skipped] == [sweep.run_dirs()[4]]
    assert "run.json" in serial_skipped[0][1]
    # The helper was sent every run folder once, in scan order, from the chunk after the
    # one that started it (the first), and is gone.
    assert sent == index_module.scan(sweep.log_dir).paths[2:]
    assert len(closed) == 1
    helper, process = closed[0]
    assert process is not None and process.poll() is not None
    assert helper._process is None
    assert set(threading.enumerate()) <= threads_before  # the read starts no thread


def test_i11_reader_cold_damaged_entries_are_not_sent(sweep, monkeypatch, helpers, tmp_path):
    """A link to nothing is damage found by the scan: the helper is not sent it."""
    folder = sweep.run_dirs()[0].parent
    os.symlink(tmp_path / "nowhere", folder / ("a" * 32))
    _, sent = helpers
    _, skipped = _read(sweep, monkeypatch, prefetched=True)
    link = str(folder / ("a" * 32))
    assert link in [str(p) for p, _ in skipped]
    paths = index_module.scan(sweep.log_dir).paths
    assert link in paths and len(paths) == 10
    assert sent == [p for p in paths[2:] if p != link]


BROKEN_HELPERS = {
    "cannot start": ["/nonexistent/python"],
    "exits at once": [sys.executable, "-c", "pass"],
    "never reads": [sys.executable, "-c", "import time; time.sleep(600)"],
    "fails on its input": [sys.executable, "-c", "import sys; sys.stdin.read(1); 1 / 0"],
}


@pytest.mark.parametrize("kind", list(BROKEN_HELPERS))
def test_i11_reader_cold_a_helper_that_fails_changes_nothing(sweep, monkeypatch, helpers, kind):
    closed, sent = helpers
    serial = _read(sweep, monkeypatch, prefetched=False)
    monkeypatch.setattr(prefetch, "command", lambda: BROKEN_HELPERS[kind])
    _equal(serial, _read(sweep, monkeypatch, prefetched=True))
    assert sent and closed
    for _, process in closed:  # every helper started is gone
        assert process is None or process.poll() is not None


def _equal(one, other) -> bool:
    pd.testing.assert_frame_equal(one[0], other[0])
    assert one[1] == other[1]
    return True


def test_i11_reader_cold_a_full_pipe_leaves_folders_out_without_waiting(tmp_path, monkeypatch):
    """A helper that never reads fills the pipe: sending more returns at once (the rest is
    left out) instead of blocking the Reader.  The send runs in a thread only so that a
    blocking send fails the test instead of hanging it."""
    monkeypatch.setattr(prefetch, "command", BROKEN_HELPERS["never reads"].copy)
    folders = [str(tmp_path / f"{n:032x}") for n in range(100_000)]  # ~5 MB of lines
    helper = prefetch.Prefetcher()
    process = helper._process
    sending = threading.Thread(target=lambda: [helper.send(folders) for _ in range(3)])
    sending.start()
    sending.join(60)
    blocked = sending.is_alive()
    helper.close()
    sending.join()
    assert not blocked
    assert process.poll() is not None
    helper.send(folders)  # closed: does nothing


def test_i11_reader_cold_a_run_deleted_between_prefetch_and_read(sweep, monkeypatch):
    """The helper has warmed a run's folder, then the run is deleted before it is read: the
    read says so as a read without the helper does when a run is deleted after the scan
    (it is damage for this read; the next refresh drops it).  Warmed in-process so that the
    deletion surely comes after the warming (the helper's timing cannot be controlled)."""
    victim = sweep.run_dirs()[2]
    real_scan, real_send = index_module.scan, prefetch.Prefetcher.send

    def scan_then_delete(*args, **kwargs):
        found = real_scan(*args, **kwargs)
        shutil.rmtree(victim, ignore_errors=True)
        return found

    saved = shutil.copytree(victim, sweep.root / "saved")
    monkeypatch.setattr(index_module, "scan", scan_then_delete)
    serial = _read(sweep, monkeypatch, prefetched=False)
    shutil.copytree(saved, victim)
    monkeypatch.setattr(index_module, "scan", real_scan)

    def warm_then_delete(self, folders):
        real_send(self, folders)
        for folder in folders:
            prefetch.warm(os.fsencode(folder))
            if folder == str(victim):
                shutil.rmtree(victim)

    monkeypatch.setattr(prefetch.Prefetcher, "send", warm_then_delete)
    prefetched = _read(sweep, monkeypatch, prefetched=True)
    assert not victim.exists()
    _equal(serial, prefetched)
    assert (victim, "run.json is missing") in serial[1]
    monkeypatch.undo()
    reader = xprun.Reader(sweep.log_dir, warn=False)  # the next refresh: the run is gone
    assert victim.name not in list(reader.to_pandas()["hash"])
    assert victim not in [s.path for s in reader.skipped]


def test_i11_reader_cold_the_helper_opens_no_fifo_and_follows_no_link(tmp_path):
    """The helper run as it is started, on folders whose files are a FIFO (opening one for
    reading would wait for a writer forever), links out of the folder, a directory, and on
    names that are no folder at all: it opens none of them for reading, and ends when its
    input does."""
    good = tmp_path / "good"
    good.mkdir()
    (good / "run.json").write_text("{}")
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "run.json")
    os.mkfifo(fifo / "config.yaml")
    linked = tmp_path / "linked"
    linked.mkdir()
    os.symlink(fifo / "run.json", linked / "run.json")
    os.symlink("/dev/zero", linked / "config.yaml")
    (linked / "outcome.json").mkdir()
    (tmp_path / "file").write_text("not a folder")
    names = [good, fifo, linked, tmp_path / "file", tmp_path / "missing", "relative\\0name"]
    lines = "".join(f"{n}\n" for n in names).encode()
    # A FIFO opened for reading would block until a writer comes: none ever does, so a helper
    # that opened one without O_NONBLOCK would never end.
    done = subprocess.run(prefetch.command(), input=lines, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"" and done.stderr == b""


@pytest.mark.parametrize("threshold, started", [(9, True), (10, False)])
def test_i11_reader_cold_the_helper_starts_from_the_threshold(
    sweep, monkeypatch, helpers, threshold, started
):
    """The helper is started for ``_PREFETCH_FROM`` runs to read or more (9 here: the damaged run is read too), never for
    fewer: it costs a process start, which a small read does not repay."""
    closed, sent = helpers
    shutil.rmtree(sweep.log_dir / ".xprun-index", ignore_errors=True)
    monkeypatch.setattr(index_module, "_PREFETCH_FROM", threshold)
    monkeypatch.setattr(index_module, "_COLD_BLOCKS", -1)
    monkeypatch.setattr(index_module, "_CHUNK", 2)
    assert len(xprun.Reader(sweep.log_dir, warn=False)) == 8
    assert bool(closed) == started and bool(sent) == started


def _on_tmpfs(path) -> bool:
    """Whether ``path`` is on a file system held in memory (no disk to read from)."""
    best, kind = "", ""
    with open("/proc/mounts") as mounts:
        for line in mounts:
            _, point, fs_type, *_ = line.split()
            if str(path).startswith(point.rstrip("/") + "/") and len(point) > len(best):
                best, kind = point, fs_type
    return kind in ("tmpfs", "ramfs")


@pytest.mark.skipif(not os.path.exists("/proc/mounts"), reason="Linux's page cache")
def test_i11_reader_cold_the_helper_starts_only_when_runs_come_from_the_disk(
    sweep, monkeypatch, helpers
):
    """Once the run files are dropped from the page cache (written out, then
    ``POSIX_FADV_DONTNEED``), the first chunk reads from the disk and the helper is started
    for the others; read from the cache, no helper is started (it would only cost CPU)."""
    if _on_tmpfs(sweep.log_dir):
        pytest.skip("the log directory is in memory: nothing is read from a disk")
    closed, sent = helpers
    monkeypatch.setattr(index_module, "_CHUNK", 2)
    monkeypatch.setattr(index_module, "_AHEAD", 1)
    monkeypatch.setattr(index_module, "_PREFETCH_FROM", 10**9)
    warm = xprun.Reader(sweep.log_dir, warn=False).to_pandas()  # every import done
    monkeypatch.setattr(index_module, "_PREFETCH_FROM", 1)
    for run_dir in sweep.run_dirs():
        for name in prefetch.FILES:
            if not (run_dir / name).exists():  # the failed run has no outcome
                continue
            with open(run_dir / name, "rb") as file:
                os.fsync(file.fileno())
                os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    shutil.rmtree(sweep.log_dir / ".xprun-index")
    cold = xprun.Reader(sweep.log_dir, warn=False).to_pandas()
    pd.testing.assert_frame_equal(warm, cold)
    assert len(closed) == 1
    assert sent == index_module.scan(sweep.log_dir).paths[2:]
    # Read again, the files now in the cache: no helper (though this thread read blocks
    # from the disk before: only those of the chunk count).
    closed.clear(), sent.clear()
    shutil.rmtree(sweep.log_dir / ".xprun-index")
    pd.testing.assert_frame_equal(warm, xprun.Reader(sweep.log_dir, warn=False).to_pandas())
    assert closed == [] and sent == []


def test_i11_reader_cold_send_writes_whole_lines_in_atomic_pieces(monkeypatch):
    """What goes into the pipe: every folder once, one per line, in order, in pieces of at
    most PIPE_BUF bytes (a piece that size is written whole or not at all); a name the line
    protocol cannot carry is left out.  Recorded in-process: the pipe's other end is the
    helper's."""
    monkeypatch.setattr(prefetch, "command", BROKEN_HELPERS["never reads"].copy)
    pieces: list[bytes] = []
    monkeypatch.setattr(
        prefetch.Prefetcher, "_write", lambda self, data: pieces.append(data) or True
    )
    folders = [f"/logs/xp/{n:032x}" for n in range(300)]
    with prefetch.Prefetcher() as helper:
        helper.send([*folders[:100], "/logs/xp/two\nlines", *folders[100:]])
        helper.send(folders[:1])
    assert all(0 < len(piece) <= select.PIPE_BUF for piece in pieces)
    assert all(piece.endswith(b"\n") for piece in pieces)
    assert b"".join(pieces).decode().splitlines() == [*folders, folders[0]]
    assert len(pieces) > 2  # several pieces for the 300 folders, then one for the last send


def test_i11_reader_cold_the_helper_warms_every_folder_it_reads(monkeypatch):
    """The helper's main loop, run in-process on lines as the Reader writes them: each
    folder is warmed once, by its threads, and the helper ends when its input does."""
    warmed: list[bytes] = []
    lock = threading.Lock()

    def record(folder):
        with lock:
            warmed.append(folder)

    folders = [f"/logs/xp/{n:032x}".encode() for n in range(50)]
    monkeypatch.setattr(prefetch, "warm", record)
    monkeypatch.setattr(prefetch, "QUEUED", 4)  # the reading thread waits for the workers
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\n".join(folders) + b"\n")))
    threads_before = set(threading.enumerate())
    prefetch.main()
    assert sorted(warmed) == sorted(folders)
    assert set(threading.enumerate()) <= threads_before


def test_i11_reader_cold_the_pipe_carries_every_folder(tmp_path, monkeypatch):
    """End to end through a real pipe: a helper that copies its input to a file receives
    every folder sent, one per line, in order (the pieces as ``send`` writes them)."""
    out = tmp_path / "received"
    copy = "import shutil, sys; shutil.copyfileobj(sys.stdin.buffer, open(sys.argv[1], 'wb'))"
    monkeypatch.setattr(prefetch, "command", lambda: [sys.executable, "-c", copy, str(out)])
    folders = [str(tmp_path / f"{n:032x}") for n in range(500)]
    helper = prefetch.Prefetcher()
    helper.send(folders[:400])
    helper.send(folders[400:])
    helper._process.stdin.close()  # the end of its input: it finishes copying
    assert helper._process.wait(timeout=120) == 0
    helper.close()
    assert out.read_text().splitlines() == folders
