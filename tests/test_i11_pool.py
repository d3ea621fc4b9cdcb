"""The pool's fixed costs at sweep scale (issue 11, target 5), counted, never timed.

What a plain ``multiprocessing.Pool`` does not pay, and xprun did: each worker rebuilt the
import→distribution map (half a second of CPU) because its cache key changed whenever the
project's folder did; and the workers' start-up waited for the launcher's collection.  The
tests count files and processes (read from ``/proc``), never time.
"""

from __future__ import annotations

import os

import pytest
from conftest import git_commit_all

XP = """
import xprun

@xprun.grid(i=list(range({n})))
def xp_pool(config):
    return {{"i": config.i}}
"""


def _cache_files(cache) -> list:
    return sorted((cache / "xprun").glob("distributions-*.json"))


def test_i11_pool_distributions_cache_survives_changes_to_the_project_folder(project, tmp_path):
    # The project's folder is first on sys.path (python -m xprun, every worker) and gains
    # files: its log folder on the first launch, a new module, a notes file.  None of that
    # installs a distribution, so every process must find the map it cached, not build it.
    project.write("xp_pool.py", XP.format(n=4))
    git_commit_all(project.root)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = project.run("-n", "2", env=env)
    assert first.returncode == 0, first.output
    (cached,) = _cache_files(tmp_path / "cache")
    project.write("notes.txt", "the project folder changes\n")
    again = project.run("-n", "2", "--force", env=env)
    assert again.returncode == 0, again.output
    assert _cache_files(tmp_path / "cache") == [cached]


def test_i11_pool_installing_a_distribution_makes_a_new_distributions_cache(project, tmp_path):
    # The other side of the key: a distribution installed into a folder on the path (its
    # .dist-info appears) is seen by the next process, so run.json records it.
    site = tmp_path / "site"
    (site / "extrapkg").mkdir(parents=True)
    (site / "extrapkg" / "__init__.py").write_text("")
    project.write(
        "xp_extra.py", "import extrapkg\n\ndef xp_extra(seed):\n    return {'seed': seed}\n"
    )
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(site)}
    assert project.run("seed=0", env=env).returncode == 0
    (record,) = project.records()
    assert "extra-dist" not in record["packages"]
    info = site / "extra_dist-1.5.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-dist\nVersion: 1.5\n")
    (info / "top_level.txt").write_text("extrapkg\n")
    assert project.run("seed=1", env=env).returncode == 0
    latest = max(project.records(), key=lambda r: r["start"])
    assert latest["packages"].get("extra-dist") == "1.5", latest["packages"]
    assert len(_cache_files(tmp_path / "cache")) == 2


# At import, the launcher (not a worker) writes the pids of its children that are pool
# workers: what exists while it collects.  Workers import the module too; they write nothing.
SEEN_XP = """
import os
import sys
import xprun

if "worker" not in sys.argv:
    with open("/proc/self/cmdline", "rb") as f:
        mine = f.read().split(b"\\0")  # a worker the launcher forked has its command line
    children = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{{entry}}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{{entry}}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\\0")
        except (OSError, ValueError, IndexError):
            continue
        spawned = b"worker" in cmdline and b"--serve" in cmdline
        if ppid == os.getpid() and (spawned or cmdline == mine):
            children.append(entry)
    with open({seen!r}, "w") as f:
        f.write(" ".join(children))

@xprun.grid(i=list(range({n})))
def xp_seen(config):
    return {{"i": config.i}}
"""


def _seen_project(project, n: int = 4):
    seen = project.root / "seen.txt"
    project.write("xp_seen.py", SEEN_XP.format(seen=str(seen), n=n))
    git_commit_all(project.root)
    return seen


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to find the workers")
def test_i11_pool_workers_start_while_the_launcher_collects(project):
    # Fails on the previous pool, which started its workers once the runs were known: their
    # start-up (imports, package versions) now overlaps collection and the skip check.
    seen = _seen_project(project)
    result = project.run("-n", "2")
    assert result.returncode == 0, result.output
    assert "4 complete" in result.stdout
    pids = [int(p) for p in seen.read_text().split()]
    assert len(pids) == 2, pids
    workers = {r["pid"] for r in project.records()}
    assert workers <= set(pids), (workers, pids)  # the runs ran in those very workers


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to find the workers")
def test_i11_pool_early_workers_are_stopped_when_every_run_is_cached(project):
    seen = _seen_project(project)
    assert project.run("-n", "2").returncode == 0
    again = project.run("-n", "2")
    assert again.returncode == 0, again.output
    assert "4 cached" in again.stdout
    pids = [int(p) for p in seen.read_text().split()]
    assert len(pids) == 2, pids  # started, then not needed
    assert all(_gone(pid) for pid in pids)  # stopped and reaped before xprun exited
    assert "interrupted" not in again.output and "Traceback" not in again.output


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to find the workers")
def test_i11_pool_collect_only_starts_no_worker(project):
    seen = _seen_project(project)
    result = project.run("-n", "2", "--collect-only")
    assert result.returncode == 0, result.output
    assert seen.read_text() == ""


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to find the workers")
def test_i11_pool_no_more_early_workers_than_runs_are_kept(project):
    # -n 3 for one run: three start early, one executes it, the other two are stopped.
    seen = _seen_project(project, n=1)
    result = project.run("-n", "3")
    assert result.returncode == 0, result.output
    assert "1 complete" in result.stdout
    pids = [int(p) for p in seen.read_text().split()]
    assert len(pids) == 3, pids
    assert all(_gone(pid) for pid in pids)
    assert "interrupted" not in result.output and "Traceback" not in result.output


def test_i11_reader_index_columns_keep_rows_aligned_across_run_shapes():
    # The cold index stores rows column by column, remembering each row shape (complete runs
    # have outcome.*, failed ones error.*): every column keeps one value per row, missing
    # ones pd.NA, columns in first-seen order, an empty row included.
    import pandas as pd

    from xprun.reader.index import Columns

    columns = Columns()
    shapes = [
        {"hash": "a", "outcome.acc": 1.0},
        {"hash": "b", "error.type": "E"},
        {"hash": "c", "outcome.acc": 2.0},
        {},
        {"hash": "d", "outcome.acc": None, "extra": 3},
        {"hash": "e", "outcome.acc": 4.0},
    ]
    for row in shapes:
        columns.add(row)
    assert columns.count == 6
    assert list(columns.columns) == ["hash", "outcome.acc", "error.type", "extra"]
    as_text = {k: ["NA" if v is pd.NA else v for v in c] for k, c in columns.columns.items()}
    assert as_text == {
        "hash": ["a", "b", "c", "NA", "d", "e"],
        "outcome.acc": [1.0, "NA", 2.0, "NA", None, 4.0],
        "error.type": ["NA", "E", "NA", "NA", "NA", "NA"],
        "extra": ["NA", "NA", "NA", "NA", 3, "NA"],
    }
