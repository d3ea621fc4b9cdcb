"""Issue 13, section 1: every run names the exact code it ran.

Through the CLI, in real Git repositories (and outside Git): one snapshot commit and one
session file per launch that runs something, whatever the scheduler; the project's sources
in the content-addressed store; format 2 of run.json, format 1 still read.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys

import pytest
from conftest import git_commit_all
from test_batch_schedulers import fake_oarsub
from test_slurm import slurm  # noqa: F401  (the fixture: skips without a SLURM cluster)

import xprun
from xprun import provenance

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

EXPERIMENT = """
import xprun
from helper import SCALE

@xprun.grid(i=[1, 2, 3, 4])
def xp_a(config):
    return {"v": config.i * SCALE}
"""


def git(root, *args):
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


def session_files(project):
    return sorted((project.log_dir / provenance.SESSIONS_DIR).glob("*.json"))


def blobs(project):
    return sorted((project.log_dir / provenance.SOURCES_DIR).iterdir())


def snapshot_refs(root):
    return git(root, "for-each-ref", "--format=%(refname)", "refs/xprun/snapshots/").split()


def one_session(project):
    """The one session id and snapshot every run names, and that session's file."""
    records = project.records()
    assert records
    assert {r["format"] for r in records} == {2}
    (session,) = {r["session"] for r in records}
    (snapshot,) = {json.dumps(r["snapshot"], sort_keys=True) for r in records}
    (path,) = session_files(project)
    assert path.name == f"{session}.json"
    data = provenance.load_session(project.log_dir, session)
    assert data is not None and data["id"] == session
    assert data["snapshot"] == json.loads(snapshot)
    return session, json.loads(snapshot), data


@pytest.fixture
def repo(project):
    project.write("xp_a.py", EXPERIMENT)
    project.write("helper.py", "SCALE = 2\n")
    git_commit_all(project.root, "first")
    return project


def test_i13_capture_inline_dirty_tree_with_untracked_helper_is_snapshotted_untouched(repo):
    root = repo.root
    repo.write("helper.py", "SCALE = 3\n")  # a dirty tracked file
    repo.write("extra.py", "OFFSET = 7\n")  # an untracked helper module, imported below
    edited = EXPERIMENT.replace("* SCALE", "* SCALE + OFFSET")
    repo.write("xp_a.py", edited.replace("import SCALE", "import SCALE\nfrom extra import OFFSET"))
    repo.write("staged.txt", "in the index only\n")
    git(root, "add", "staged.txt")
    repo.write("stashed.txt", "x\n")
    git(root, "add", "stashed.txt")
    git(root, "-c", "user.name=t", "-c", "user.email=t@x", "stash", "push", "-q", "stashed.txt")

    def state():
        return (
            git(root, "symbolic-ref", "HEAD"),
            git(root, "rev-parse", "HEAD"),
            git(root, "ls-files", "-s"),  # the index, entry by entry
            git(root, "stash", "list"),
            git(root, "rev-parse", "refs/stash"),
            git(root, "status", "--porcelain"),
        )

    before = state()
    result = repo.run("-q")
    assert result.returncode == 0, result.output
    assert state() == before  # branch, HEAD, index, stash and work tree as they were
    _, snapshot, data = one_session(repo)
    assert len(repo.records()) == 4
    commit = snapshot["commit"]
    assert snapshot == {
        "commit": commit,
        "ref": f"refs/xprun/snapshots/{commit}",
        "repo": str(root.resolve()),
        "rootdir": ".",
    }
    assert git(root, "rev-parse", snapshot["ref"]).strip() == commit  # the hidden ref exists
    assert git(root, "rev-parse", f"{commit}^").strip() == before[1].strip()  # HEAD's child
    assert git(root, "show", f"{commit}:helper.py") == "SCALE = 3\n"  # the dirty file
    assert git(root, "show", f"{commit}:extra.py") == "OFFSET = 7\n"  # the untracked helper
    assert "OFFSET" in git(root, "show", f"{commit}:xp_a.py")
    # inline runs import the work tree: the commit is recorded, not extracted
    assert not (root / ".xprun" / "snapshots" / commit).exists()
    outcomes = sorted(json.loads((d / "outcome.json").read_text())["v"] for d in repo.run_dirs())
    assert outcomes == [10, 13, 16, 19]  # what ran is what the snapshot holds
    # the sources the launcher imported, in the store, by path relative to the rootdir
    assert set(data["sources"]) == {"xp_a.py", "helper.py", "extra.py"}
    record = repo.records()[0]
    assert provenance.recorded_source(repo.log_dir, record, "extra.py") == b"OFFSET = 7\n"


def test_i13_capture_pool_records_one_session_and_the_snapshot_its_workers_import(repo):
    repo.write("helper.py", "SCALE = 5\n")
    result = repo.run("-q", "-n", "2")
    assert result.returncode == 0, result.output
    _, snapshot, data = one_session(repo)
    records = repo.records()
    assert len(records) == 4
    # one snapshot for the session: the commit the workers imported is the one recorded
    assert {r["git"]["snapshot"] for r in records} == {snapshot["commit"]}
    assert git(repo.root, "show", f"{snapshot['commit']}:helper.py") == "SCALE = 5\n"
    assert snapshot_refs(repo.root) == [snapshot["ref"]]
    assert {r["scheduler"] for r in records} == {"local"}
    assert set(data["sources"]) == {"xp_a.py", "helper.py"}


def test_i13_capture_slurm_runs_record_the_launch_session_and_snapshot(slurm, repo):  # noqa: F811
    repo.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\n[tool.xprun.slurm]\npoll_seconds = 0.5\n',
    )
    repo.write("helper.py", "SCALE = 7\n")
    result = repo.run("--scheduler", "slurm", "--wait", timeout=300)
    assert result.returncode == 0, result.output
    _, snapshot, data = one_session(repo)
    records = repo.records()
    assert len(records) == 4 and {r["status"] for r in records} == {"complete"}
    assert {r["scheduler"] for r in records} == {"slurm"}
    assert all(r["job"]["SLURM_JOB_ID"] for r in records)  # each written on the cluster
    assert {r["git"]["snapshot"] for r in records} == {snapshot["commit"]}
    assert git(repo.root, "show", f"{snapshot['commit']}:helper.py") == "SCALE = 7\n"
    outcomes = sorted(json.loads((d / "outcome.json").read_text())["v"] for d in repo.run_dirs())
    assert outcomes == [7, 14, 21, 28]
    (job,) = sorted(repo.log_dir.glob(".xprun-jobs/*/spec.json"))
    spec = json.loads(job.read_text())
    assert spec["provenance"] == {"session": data["id"], "snapshot": snapshot}


def test_i13_capture_oar_tasks_record_the_launch_session_and_snapshot(repo, tmp_path):
    """OAR's own programs are not on this machine: ``oarsub`` is a stand-in, and each array
    task is its job script run as OAR runs it (test_batch_schedulers does the same)."""
    bindir, _ = fake_oarsub(tmp_path)
    env = repo.with_path(bindir)
    result = repo.run("--scheduler", "oar", "i=1,2,3", env=env)
    assert result.returncode == 0, result.output
    (job_dir,) = [p.parent for p in repo.log_dir.glob(".xprun-jobs/*/job.json")]
    for index in ("0", "1", "2"):
        task = subprocess.run(
            ["sh", str(job_dir / "job.sh"), index],
            env={**repo.env(), **env, "OAR_JOB_ID": "4216"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert task.returncode == 0, task.stderr
    _, snapshot, _ = one_session(repo)
    records = repo.records()
    assert len(records) == 3 and {r["scheduler"] for r in records} == {"oar"}
    assert {r["git"]["snapshot"] for r in records} == {snapshot["commit"]}


def test_i13_capture_blocked_provenance_records_nothing(repo):
    result = repo.run("-q", "-n", "2", "-p", "no:provenance")
    assert result.returncode == 0, result.output
    records = repo.records()
    assert len(records) == 4
    assert all("session" not in r and "snapshot" not in r for r in records)
    assert session_files(repo) == [] and not (repo.log_dir / provenance.SOURCES_DIR).exists()
    assert snapshot_refs(repo.root) == ["refs/xprun/snapshots/" + records[0]["git"]["snapshot"]]


def test_i13_capture_no_snapshot_pool_still_records_a_commit(repo):
    repo.write("helper.py", "SCALE = 6\n")
    result = repo.run("-q", "-n", "2", "--no-snapshot")
    assert result.returncode == 0, result.output
    _, snapshot, _ = one_session(repo)
    assert git(repo.root, "show", f"{snapshot['commit']}:helper.py") == "SCALE = 6\n"
    assert not (repo.root / ".xprun" / "snapshots" / snapshot["commit"]).exists()


def test_i13_capture_session_file_lists_every_installed_distribution(repo):
    result = repo.run("-q", "i=1")
    assert result.returncode == 0, result.output
    _, _, data = one_session(repo)
    distributions = data["distributions"]
    assert distributions["pandas"] == importlib.metadata.version("pandas")
    assert distributions["pyyaml"] == importlib.metadata.version("PyYAML")
    assert distributions["xprun"] == importlib.metadata.version("xprun")
    for dist in importlib.metadata.distributions():  # every one, not only those imported
        name = provenance._normalize(dist.metadata["Name"])
        assert distributions[name] == importlib.metadata.version(name), name
    assert data["git"]["commit"] == git(repo.root, "rev-parse", "HEAD").strip()
    assert data["git"]["branch"] == "main"
    assert data["rootdir"] == str(repo.root.resolve())
    assert data["python"] == ".".join(map(str, sys.version_info[:3]))
    # runs do not copy it: run.json names the session
    assert "distributions" not in repo.records()[0]


def test_i13_capture_outside_git_sources_are_stored_once(project):
    project.write("xp_a.py", EXPERIMENT)
    project.write("helper.py", "SCALE = 2\n")
    result = project.run("-q", "i=1")
    assert result.returncode == 0, result.output
    session, snapshot, data = one_session(project)
    assert snapshot is None
    assert data["git"] is None and data["snapshot"] is None
    record = project.records()[0]
    assert record["snapshot"] is None
    project.write("helper.py", "SCALE = 100\n")  # edited since: the record keeps what ran
    assert provenance.recorded_source(project.log_dir, record, "helper.py") == b"SCALE = 2\n"
    xp_bytes = provenance.recorded_source(project.log_dir, record, "xp_a.py")
    assert xp_bytes == EXPERIMENT.encode()
    assert provenance.recorded_source(project.log_dir, record, "nope.py") is None
    with pytest.raises(ValueError, match="not a file under the rootdir"):
        provenance.recorded_source(project.log_dir, record, "../xp_a.py")
    stored = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in blobs(project)}
    assert len(stored) == 2

    # a second session, same code: a second session file, no new blob, none rewritten
    project.write("helper.py", "SCALE = 2\n")
    result = project.run("-q", "i=2")
    assert result.returncode == 0, result.output
    assert len(session_files(project)) == 2
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in blobs(project)} == stored
    (later,) = {r["session"] for r in project.records()} - {session}
    second = provenance.load_session(project.log_dir, later)
    assert second is not None
    assert second["sources"] == data["sources"]

    # changed code: one new blob, the old one kept for the runs that ran it
    project.write("helper.py", "SCALE = 4\n")
    result = project.run("-q", "i=3")
    assert result.returncode == 0, result.output
    assert len(blobs(project)) == 3
    third = [r for r in project.records() if r["session"] not in (session, second["id"])]
    assert provenance.recorded_source(project.log_dir, third[0], "helper.py") == b"SCALE = 4\n"
    assert provenance.recorded_source(project.log_dir, record, "helper.py") == b"SCALE = 2\n"


def test_i13_capture_recorded_source_falls_back_to_the_snapshot_commit(tmp_path, project):
    """The rootdir is a folder of the repository; without the session file, the source
    comes from the snapshot commit, by the rootdir recorded beside it."""
    project.write("xp_a.py", EXPERIMENT)
    project.write("helper.py", "SCALE = 2\n")
    git_commit_all(tmp_path, "first")  # the repository's top is above the project
    project.write("helper.py", "SCALE = 9\n")
    result = project.run("-q", "i=1")
    assert result.returncode == 0, result.output
    (record,) = project.records()
    assert record["snapshot"]["rootdir"] == "proj"
    assert record["snapshot"]["repo"] == str(tmp_path.resolve())
    for path in session_files(project) + blobs(project):
        path.unlink()  # the store is gone (another clone, a clean-up): Git still has it
    project.write("helper.py", "SCALE = 11\n")
    assert provenance.recorded_source(project.log_dir, record, "helper.py") == b"SCALE = 9\n"
    assert provenance.load_session(project.log_dir, record["session"]) is None
    # a session id that is a path names no session file
    hostile = {**record, "session": "../../etc/passwd", "snapshot": None}
    assert provenance.recorded_source(project.log_dir, hostile, "helper.py") is None
    assert provenance.load_session(project.log_dir, "../../etc/passwd") is None


def test_i13_capture_a_damaged_blob_is_not_returned(project):
    project.write("xp_a.py", EXPERIMENT)
    project.write("helper.py", "SCALE = 2\n")
    assert project.run("-q", "i=1").returncode == 0
    (record,) = project.records()
    data = provenance.load_session(project.log_dir, record["session"])
    blob = project.log_dir / provenance.SOURCES_DIR / data["sources"]["helper.py"]
    blob.write_bytes(b"SCALE = 666\n")  # altered: no longer the bytes its name says
    assert provenance.recorded_source(project.log_dir, record, "helper.py") is None


def test_i13_capture_cached_only_and_collect_only_launches_record_nothing(repo):
    result = repo.run("-q")
    assert result.returncode == 0, result.output
    (first,) = session_files(repo)
    refs = snapshot_refs(repo.root)
    assert len(refs) == 1
    repo.write("notes.txt", "an untracked file: a snapshot now would be a new commit\n")
    for args in (["-q"], ["-q", "-n", "2"], ["--collect-only"], ["-q", "--collect-only", "i=9"]):
        result = repo.run(*args)
        assert result.returncode == 0, result.output
        assert session_files(repo) == [first], args  # it ran nothing: no session
        assert snapshot_refs(repo.root) == refs, args  # and took no snapshot
    assert "4 cached" in repo.run("-n", "2").stdout
    result = repo.run("-q", "i=9")  # something runs: now a session, and a new snapshot
    assert result.returncode == 0, result.output
    assert len(session_files(repo)) == 2 and len(snapshot_refs(repo.root)) == 2


def test_i13_capture_format_1_run_directories_are_still_read(project):
    project.write("xp_a.py", EXPERIMENT)
    project.write("helper.py", "SCALE = 2\n")
    assert project.run("-q", "i=1,2").returncode == 0
    old, other = project.run_dirs()
    record = json.loads((old / "run.json").read_text())
    for key in ("session", "snapshot", "code"):
        record.pop(key, None)  # what xprun wrote before format 2
    record["format"] = 1
    (old / "run.json").write_text(json.dumps(record))
    unknown = json.loads((other / "run.json").read_text())
    unknown["format"] = 3
    (other / "run.json").write_text(json.dumps(unknown))

    reader = xprun.Reader(project.log_dir, warn=False)
    frame = reader.to_pandas()
    assert list(frame["hash"]) == [old.name]  # format 1 read; format 3 skipped
    outcome = json.loads((old / "outcome.json").read_text())["v"]
    assert list(frame["status"]) == ["complete"] and list(frame["outcome.v"]) == [outcome]
    (skipped,) = reader.skipped
    assert "format 3; this xprun reads 1 and 2" in skipped.reason
    shown = project.run("show")
    assert shown.returncode == 0, shown.output
    assert old.name[:12] in shown.stdout and "complete" in shown.stdout
    assert "format 3" in shown.output
    # the skip check reads it too: still complete, so cached, and left as it was
    again = project.run("i=1,2")
    assert again.returncode == 0, again.output
    assert "2 cached" in again.stdout, again.output
    assert json.loads((old / "run.json").read_text()) == record
    # the provenance helpers say "not recorded" for it, without failing
    assert provenance.recorded_source(project.log_dir, record, "helper.py") is None
    assert provenance.load_session(project.log_dir, record.get("session")) is None


def test_i13_capture_referenced_names_what_runs_and_queued_jobs_still_need(repo):
    assert repo.run("-q", "i=1").returncode == 0
    (kept,) = repo.records()
    repo.write("helper.py", "SCALE = 8\n")
    assert repo.run("-q", "i=2").returncode == 0
    gone = next(r for r in repo.records() if r["session"] != kept["session"])
    assert gone["snapshot"]["commit"] != kept["snapshot"]["commit"]
    sessions, blobs_, commits = provenance.referenced(repo.log_dir)
    assert sessions == {kept["session"], gone["session"]}
    assert commits == {kept["snapshot"]["commit"], gone["snapshot"]["commit"]}
    shutil.rmtree(repo.log_dir / gone["experiment"] / gone["hash"])
    sessions, blobs_, commits = provenance.referenced(repo.log_dir)
    assert sessions == {kept["session"]} and commits == {kept["snapshot"]["commit"]}
    kept_session = provenance.load_session(repo.log_dir, kept["session"])
    assert blobs_ == set(kept_session["sources"].values())
    gone_session = provenance.load_session(repo.log_dir, gone["session"])
    assert set(gone_session["sources"].values()) - blobs_  # the edited helper's blob: free


def test_i13_capture_mixed_schedulers_one_commit_unless_policies_differ(project):
    """Inline runs first, then a pool (a ``scheduler`` fixture): the pool extracts the
    session's commit; with ``untracked = "ignore"`` its jobs import another commit, which
    their runs then name (never the one they did not run)."""
    project.write(
        "zpool/conftest.py",
        """
        import xprun
        from xprun.schedulers.pool import LocalScheduler

        @xprun.fixture(scope="session")
        def scheduler():
            return LocalScheduler(workers=1)
        """,
    )
    project.write(
        "zpool/xp_far.py", "import farhelper\n\ndef xp_far():\n    return {'k': farhelper.K}\n"
    )
    project.write("zpool/farhelper.py", "K = 1\n")
    project.write("xp_near.py", "def xp_near():\n    return {'where': 'here'}\n")
    git_commit_all(project.root)
    project.write("notes.txt", "untracked, imported by nobody\n")

    def commits():
        return {r["nodeid"]: (r["scheduler"], r["snapshot"]["commit"]) for r in project.records()}

    assert project.run("-q").returncode == 0
    found = commits()
    assert found["xp_near.py::xp_near"][0] == "inline"
    assert found["zpool/xp_far.py::xp_far"][0] == "local"
    assert len({commit for _, commit in found.values()}) == 1  # one commit per session
    assert len(session_files(project)) == 1

    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\nuntracked = "ignore"\ndirty = "ignore"\n',
    )
    project.write("zpool/farhelper.py", "K = 2\n")  # the pool's jobs run K = 1, as committed
    assert project.run("-q", "--force").returncode == 0
    found = commits()
    near, far = found["xp_near.py::xp_near"][1], found["zpool/xp_far.py::xp_far"][1]
    assert near != far
    assert "notes.txt" in git(project.root, "ls-tree", "--name-only", near)  # what ran inline
    assert "notes.txt" not in git(project.root, "ls-tree", "--name-only", far)
    (record,) = [r for r in project.records() if r["nodeid"] == "zpool/xp_far.py::xp_far"]
    assert record["git"]["snapshot"] == far  # the commit its worker imported
    assert len({r["session"] for r in project.records()}) == 1
    far_dir = project.log_dir / record["experiment"] / record["hash"]
    assert json.loads((far_dir / "outcome.json").read_text()) == {"k": 1}
    # the session's store holds the work tree's K = 2 (what the inline runs saw): the pool
    # run's source is its own commit's
    ran = provenance.recorded_source(project.log_dir, record, "zpool/farhelper.py")
    assert ran == b"K = 1\n"


def test_i13_capture_pool_with_dirty_ignore_stores_what_the_jobs_imported(repo):
    repo.write("pyproject.toml", '[tool.xprun]\nlog_dir = "xprun_logs"\ndirty = "ignore"\n')
    repo.write("helper.py", "SCALE = 50\n")  # left out of the snapshot the jobs import
    result = repo.run("-q", "-n", "2", "i=1")
    assert result.returncode == 0, result.output
    _, _, data = one_session(repo)
    (run_dir,) = repo.run_dirs()
    assert json.loads((run_dir / "outcome.json").read_text()) == {"v": 2}  # SCALE = 2 ran
    record = repo.records()[0]
    assert provenance.recorded_source(repo.log_dir, record, "helper.py") == b"SCALE = 2\n"
    blob = data["sources"]["helper.py"]
    assert provenance.read_blob(repo.log_dir, blob) == b"SCALE = 2\n"  # the store's own
