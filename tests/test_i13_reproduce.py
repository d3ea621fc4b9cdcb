"""Issue 13, section 3: ``xprun reproduce`` and the run lookup it shares (``xprun.runref``).

Every test drives the real command line on real Git repositories: a run is made, the code
moves on (commits, edits, another clone), and ``xprun reproduce --check`` must still run the
code the run ran.  Each experiment's outcome depends on the code that changes afterwards, so
a reproduction that ran today's code instead would disagree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Project, git_commit_all
from optional import require_tool

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

EXPERIMENT = """
import xprun
import helper

FACTOR = 2

@xprun.config({"x": 3, "seed": 0})
@xprun.grid(x=[3, 4])
def xp_calc(config):
    return {"score": helper.scale(config.x) * FACTOR + 0.1, "parts": {"list": [config.x, 0.5]}}
"""


def _made_dirty(project: Project) -> None:
    """A committed experiment, then launched from a dirty tree: a tracked edit (FACTOR) and
    an untracked helper module it imports."""
    project.write("xp_calc.py", EXPERIMENT)
    git_commit_all(project.root, "experiment")
    project.write("xp_calc.py", EXPERIMENT.replace("FACTOR = 2", "FACTOR = 5"))
    project.write("helper.py", "def scale(x):\n    return x * 7\n")


def _move_on(project: Project) -> None:
    """The code changes after the run: the helper committed with other numbers, the
    experiment edited again and left dirty."""
    project.write("helper.py", "def scale(x):\n    return x * 11\n")
    git_commit_all(project.root, "helper changed")
    project.write("xp_calc.py", EXPERIMENT.replace("FACTOR = 2", "FACTOR = 13"))


def _hash(project: Project, x: int) -> str:
    for record in project.records():
        if record["nodeid"].endswith(f"[x={x}]"):
            return record["hash"]
    raise AssertionError(f"no run with x={x}: {project.records()}")


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``folder`` with its size and mtime (ns)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        found[str(path.relative_to(folder))] = (info.st_size, info.st_mtime_ns)
    return found


def test_i13_reproduce_dirty_tree_with_untracked_helper_agrees_after_later_commits(project):
    _made_dirty(project)
    made = project.run("-q")
    assert made.returncode == 0, made.output
    digest = _hash(project, 4)
    outcome = json.loads(
        (project.log_dir / "xp_calc.xp_calc" / digest / "outcome.json").read_text()
    )
    assert outcome["score"] == 4 * 7 * 5 + 0.1
    _move_on(project)
    before = _listing(project.log_dir / "xp_calc.xp_calc")
    result = project.run("reproduce", "--check", digest[:8])
    assert result.returncode == 0, result.output
    assert "outcome agrees (exactly)" in result.stdout
    assert "xp_calc.py::xp_calc[x=4]" in result.stdout
    # the run's own directory and its neighbours: not one file added, changed or touched
    assert _listing(project.log_dir / "xp_calc.xp_calc") == before
    # today's code gives another score: a reproduction from the work tree would disagree
    today = project.run("--log-dir", "other_logs", "-q", "xp_calc.py::xp_calc[x=4]")
    assert today.returncode == 0, today.output
    fresh = next((project.root / "other_logs").glob("*/*/outcome.json"))
    assert json.loads(fresh.read_text())["score"] != outcome["score"]


def test_i13_reproduce_from_another_clone_once_the_original_is_gone(project, tmp_path):
    """A clone (``file://``: only what its branch reaches, so not the snapshot commit) with
    the log directory, and the original repository moved away: the commit, git.patch and
    the untracked helper from the source store make the code again."""
    _made_dirty(project)
    assert project.run("-q").returncode == 0
    digest = _hash(project, 3)
    _move_on(project)
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", f"file://{project.root}", str(clone)], check=True, timeout=60
    )
    shutil.copytree(project.log_dir, clone / "xprun_logs")
    project.root.rename(tmp_path / "gone")
    other = Project(clone)
    result = other.run("reproduce", "--check", digest)
    assert result.returncode == 0, result.output
    assert "+ git.patch + 1 untracked file from the source store" in result.stdout
    assert "outcome agrees" in result.stdout


def test_i13_reproduce_check_fails_naming_the_altered_key(project):
    _made_dirty(project)
    assert project.run("-q").returncode == 0
    digest = _hash(project, 3)
    path = project.log_dir / "xp_calc.xp_calc" / digest / "outcome.json"
    outcome = json.loads(path.read_text())
    outcome["parts"]["list"][1] = 0.75
    path.write_text(json.dumps(outcome))
    result = project.run("reproduce", "--check", digest)
    assert result.returncode == 1, result.output
    assert "outcome.parts.list[1]: recorded 0.75, reproduced 0.5" in result.stdout
    assert "outcome.score" not in result.stdout  # only what differs
    # without --check the command reports the same and succeeds
    plain = project.run("reproduce", digest)
    assert plain.returncode == 0, plain.output
    assert "DIFFERS (1 key)" in plain.stdout


def test_i13_reproduce_tolerances_for_numbers(project):
    _made_dirty(project)
    assert project.run("-q").returncode == 0
    digest = _hash(project, 3)
    path = project.log_dir / "xp_calc.xp_calc" / digest / "outcome.json"
    outcome = json.loads(path.read_text())
    outcome["score"] += 1e-3  # recorded 105.1: a relative difference of about 1e-5
    path.write_text(json.dumps(outcome))
    assert project.run("reproduce", "--check", "--rtol", "1e-4", digest).returncode == 0
    near = project.run("reproduce", "--check", "--rtol", "1e-6", "--atol", "5e-4", digest)
    assert near.returncode == 1, near.output
    assert "outcome.score: recorded 105.101" in near.stdout
    bad = project.run("reproduce", "--check", "--atol", "-1", digest)
    assert bad.returncode == 4 and "--atol must be a number >= 0" in bad.stderr


@pytest.mark.parametrize(
    ("recorded", "reproduced", "rtol", "atol", "differing"),
    [
        ({"a": 1.0}, {"a": 1.0}, 0, 0, []),
        ({"a": 1.0}, {"a": 1.0 + 1e-12}, 0, 0, ["outcome.a"]),  # exact by default
        ({"a": 1.0}, {"a": 1.0 + 1e-12}, 1e-9, 0, []),
        ({"a": 100.0}, {"a": 100.5}, 1e-3, 0, ["outcome.a"]),
        ({"a": 100.0}, {"a": 100.5}, 1e-2, 0, []),
        ({"a": 0.0}, {"a": 1e-4}, 1e-1, 0, ["outcome.a"]),  # relative to ~0: no help
        ({"a": 0.0}, {"a": 1e-4}, 0, 1e-3, []),
        ({"a": 1}, {"a": 1.0}, 0, 0, ["outcome.a"]),  # written differently: not exact
        ({"a": True}, {"a": 1}, 1, 1, ["outcome.a"]),  # a boolean is not a number
        ({"a": float("nan")}, {"a": float("nan")}, 0, 0, []),
        ({"n": {"l": [1, 2.0, "x"]}}, {"n": {"l": [1, 2.5, "x"]}}, 0, 0.6, []),
        ({"n": {"l": [1, 2.0, "x"]}}, {"n": {"l": [1, 2.0, "y"]}}, 1, 1, ["outcome.n.l[2]"]),
        ({"n": {"l": [1, 2]}}, {"n": {"l": [1]}}, 0, 0, ["outcome.n.l (length)"]),
        ({"a": 1, "b": 2}, {"a": 1, "c": 2}, 0, 0, ["outcome.b", "outcome.c"]),
    ],
)
def test_i13_reproduce_differences_walk_nested_values(recorded, reproduced, rtol, atol, differing):
    from xprun.reproduce import Tolerance, differences

    found = differences(recorded, reproduced, Tolerance(rtol, atol))
    assert [key for key, _, _ in found] == differing


def test_i13_reproduce_a_pool_run_and_a_query(project):
    _made_dirty(project)
    made = project.run("-n", "2", "-q")
    assert made.returncode == 0, made.output
    assert {r["scheduler"] for r in project.records()} == {"local"}
    _move_on(project)
    result = project.run("reproduce", "--check", "config.x >= 3")  # a query: both runs
    assert result.returncode == 0, result.output
    assert result.stdout.count("outcome agrees") == 2
    assert "code: snapshot " in result.stdout
    # recorded before run.json named its snapshot (format 1): the pool's git.snapshot serves
    digest = _hash(project, 4)
    path = project.log_dir / "xp_calc.xp_calc" / digest / "run.json"
    record = json.loads(path.read_text())
    commit = record["snapshot"]["commit"]
    assert record["git"]["snapshot"] == commit
    for key in ("session", "snapshot", "code"):
        record.pop(key, None)
    path.write_text(json.dumps({**record, "format": 1}))
    legacy = project.run("reproduce", "--check", digest)
    assert legacy.returncode == 0, legacy.output
    assert f"code: snapshot {commit[:12]}" in legacy.stdout


def test_i13_reproduce_unknown_and_ambiguous_names_are_usage_errors(project):
    from xprun.errors import UsageError
    from xprun.runref import RunResolver

    _made_dirty(project)
    assert project.run("-q").returncode == 0
    digest = _hash(project, 3)
    folder = project.log_dir / "xp_calc.xp_calc"
    unknown = project.run("reproduce", "ffffffff")
    if digest.startswith("ffffffff"):  # pragma: no cover - one chance in four billion
        pytest.skip("the run's hash is the unknown one")
    assert unknown.returncode == 4
    assert "no run in" in unknown.stderr and "'ffffffff'" in unknown.stderr
    # the lookup itself (the public API the other commands share), without a reproduction
    resolver = RunResolver(project.log_dir, cwd=project.root)
    for word, message in [
        ("xp_calc.py::xp_nothing", "the node id 'xp_calc.py::xp_nothing'"),
        ("config.x >", "'config.x >' is not a hash"),
        (digest[:3], "at least 4 characters"),
        ("config.x == 99", "the query 'config.x == 99'"),
    ]:
        with pytest.raises(UsageError, match=re.escape(message)):
            resolver.resolve(word)
    assert resolver.resolve("xp_calc.py::xp_calc[x=3]") == [folder / digest]
    assert len(resolver.resolve("xp_calc.py::xp_calc")) == 2  # an experiment: all its runs
    with pytest.raises(UsageError, match="matches 2 runs, and one is wanted"):
        resolver.resolve_one("xp_calc.py::xp_calc")
    # a second run directory sharing the first 6 characters (copied under a made-up hash)
    twin = digest[:6] + ("0" if digest[6] != "0" else "1") * (len(digest) - 6)
    shutil.copytree(folder / digest, folder / twin)
    ambiguous = project.run("reproduce", digest[:6])
    assert ambiguous.returncode == 4
    assert f"hash prefix {digest[:6]} is ambiguous: it matches 2 runs" in ambiguous.stderr
    assert digest[:12] in ambiguous.stderr and twin[:12] in ambiguous.stderr
    assert resolver.resolve_one(digest[:7]) == folder / digest  # unique again


def test_i13_reproduce_a_format_1_run_says_what_is_missing(project):
    """A run recorded before snapshots and sources (format 1: no ``session``, no
    ``snapshot``) from a dirty tree with an untracked helper: nothing holds the helper."""
    _made_dirty(project)
    assert project.run("-q", "-p", "no:provenance").returncode == 0
    digest = _hash(project, 3)
    path = project.log_dir / "xp_calc.xp_calc" / digest / "run.json"
    record = json.loads(path.read_text())
    for key in ("session", "snapshot", "code"):
        record.pop(key, None)
    record["format"] = 1
    path.write_text(json.dumps(record))
    assert record["git"]["untracked"] == ["helper.py"]
    result = project.run("reproduce", "--check", digest)
    assert result.returncode == 4, result.output
    assert "format 1" in result.stderr
    assert "untracked files helper.py were not kept" in result.stderr
    assert "outcome agrees" not in result.stdout


def test_i13_reproduce_reports_a_changed_identity(project):
    """The recorded run's hash is not what its code gives (the run directory's record was
    edited: its config no longer hashes to it): said, and --check fails."""
    _made_dirty(project)
    assert project.run("-q").returncode == 0
    digest = _hash(project, 3)
    config = project.log_dir / "xp_calc.xp_calc" / digest / "config.yaml"
    config.write_text(config.read_text().replace("x: 3", "x: 30"))
    result = project.run("reproduce", "--check", digest)
    assert result.returncode == 1, result.output
    assert "identity changed" in result.stdout
    assert digest in result.stdout


def _cluster_up() -> bool:
    if not shutil.which("sbatch"):
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    return "UP" in ping.stdout


def test_i13_reproduce_a_slurm_run(project):
    if not _cluster_up():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no SLURM cluster answers")
        pytest.skip("no SLURM cluster here (run .ci/start-slurm.sh)")
    _made_dirty(project)
    made = project.run("--scheduler", "slurm", "--wait", "-q", timeout=300)
    assert made.returncode == 0, made.output
    records = project.records()
    assert {r["scheduler"] for r in records} == {"slurm"} and len(records) == 2
    _move_on(project)
    result = project.run("reproduce", "--check", _hash(project, 4))
    assert result.returncode == 0, result.output
    assert "outcome agrees" in result.stdout


# Launched in subprocesses, as a user's are: an in-process launch records the packages the
# test process has imported, and another test may have imported torch there (a CPU build,
# 2.13.0+cpu, which --env could not find on the package index: CI failed so once).
@pytest.mark.inprocess(False)
def test_i13_reproduce_env_builds_the_recorded_versions(project):
    """--env (one test: it installs packages): a virtual environment with the run's
    recorded versions, this xprun installed into it; a recorded version that differs from
    the installed one is listed as a warning without --env, and not with it."""
    require_tool("uv")
    _made_dirty(project)
    assert project.run("-q").returncode == 0
    digest = _hash(project, 3)
    path = project.log_dir / "xp_calc.xp_calc" / digest / "run.json"
    record = json.loads(path.read_text())
    assert "xxhash" in record["packages"]
    installed = record["packages"]["xxhash"]
    older = "3.5.0" if installed != "3.5.0" else "3.4.1"
    record["packages"]["xxhash"] = older
    path.write_text(json.dumps(record))
    # the session's list of every distribution is compared too (without --env)
    session_file = project.log_dir / ".xprun-sessions" / f"{record['session']}.json"
    session = json.loads(session_file.read_text())
    assert "pluggy" in session["distributions"]
    pluggy = session["distributions"]["pluggy"]
    session["distributions"]["pluggy"] = "0.0.1"
    session_file.write_text(json.dumps(session))
    plain = project.run("reproduce", digest)
    assert plain.returncode == 0, plain.output
    assert "installed package versions differ from the recorded ones" in plain.stdout
    assert f"xxhash: recorded {older}, installed {installed}" in plain.stdout
    assert f"pluggy: recorded 0.0.1, installed {pluggy}" in plain.stdout
    assert plain.stdout.count("xxhash: recorded") == 1  # listed once, from either list
    result = project.run("reproduce", "--check", "--env", "--keep", digest, timeout=600)
    assert result.returncode == 0, result.output
    assert "environment: " in result.stdout
    assert "xxhash: recorded" not in result.stdout
    kept = Path(result.stdout.split("kept ")[-1].strip())
    try:
        python = next(kept.glob("*/venv/bin/python"))
        version = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('xxhash'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert version == older
    finally:
        shutil.rmtree(kept, ignore_errors=True)


def _local_build_wheel(folder: Path, name: str, version: str) -> None:
    """A wheel of a one-module package at ``version`` in ``folder``, as a folder of wheels
    holds a local build: made by hand (a zip and its metadata), so no build tool is needed."""
    import base64
    import hashlib
    import zipfile

    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": "VALUE = 1\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    lines = []
    for path, text in files.items():
        digest = hashlib.sha256(text.encode()).digest()
        encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        lines.append(f"{path},sha256={encoded},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join([*lines, f"{dist}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)


@pytest.mark.inprocess(False)
def test_i13_reproduce_env_names_a_local_build_and_finds_it_where_uv_is_pointed(project, tmp_path):
    """A recorded version with a local label (``torch==2.13.0+cpu``, a CPU build) is served
    by no default index: --env's refusal names the pin and says how to point uv at where it
    came from; pointed there (``UV_FIND_LINKS``), the environment is built with it."""
    require_tool("uv")
    _made_dirty(project)
    assert project.run("-q").returncode == 0
    digest = _hash(project, 3)
    path = project.log_dir / "xp_calc.xp_calc" / digest / "run.json"
    record = json.loads(path.read_text())
    record["packages"]["xprun_localpkg"] = "1.0+cpu"
    path.write_text(json.dumps(record))
    before = _listing(project.log_dir)
    refused = project.run("reproduce", "--env", digest, timeout=600)
    assert refused.returncode == 4, refused.output
    assert "--env: uv could not install" in refused.output
    assert "xprun_localpkg==1.0+cpu: a local build" in refused.output
    assert "UV_FIND_LINKS=<folder of wheels>" in refused.output
    assert _listing(project.log_dir) == before  # the log directory untouched
    wheels = tmp_path / "wheels"
    _local_build_wheel(wheels, "xprun_localpkg", "1.0+cpu")
    result = project.run(
        "reproduce",
        "--check",
        "--env",
        "--keep",
        digest,
        timeout=600,
        env={"UV_FIND_LINKS": str(wheels)},
    )
    assert result.returncode == 0, result.output
    assert "outcome agrees" in result.stdout
    kept = Path(result.stdout.split("kept ")[-1].strip())
    try:
        python = next(kept.glob("*/venv/bin/python"))
        code = "import importlib.metadata as m; print(m.version('xprun_localpkg'))"
        version = subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert version == "1.0+cpu"
    finally:
        shutil.rmtree(kept, ignore_errors=True)


def test_i13_reproduce_a_config_resolved_at_run_writes_only_into_the_scratch_directory(project):
    """``${hydra:runtime.output_dir}`` was the original run directory: the reproduction gets
    its own (the expansion resolves it again), so the original is not written to."""
    project.write(
        "xp_out.py",
        """
        import os
        import xprun

        @xprun.config({"out": "${hydra:runtime.output_dir}", "k": 2})
        def xp_out(config):
            with open(os.path.join(config.out, "written.txt"), "a") as f:
                f.write("once")
            return {"k": config.k, "here": os.path.basename(config.out)}
        """,
    )
    git_commit_all(project.root)
    assert project.run("-q").returncode == 0
    (run_dir,) = project.run_dirs()
    assert (run_dir / "written.txt").read_text() == "once"
    before = _listing(run_dir)
    result = project.run("reproduce", "--check", "xp_out.py::xp_out")
    assert result.returncode == 0, result.output
    assert (run_dir / "written.txt").read_text() == "once"
    assert _listing(run_dir) == before


def test_i13_reproduce_outside_git_from_the_source_store(project):
    """No Git at all: the sources the session stored are the code; an edit of the helper
    afterwards does not reach the reproduction."""
    project.write("xp_calc.py", EXPERIMENT)
    project.write("helper.py", "def scale(x):\n    return x * 7\n")
    assert project.run("-q").returncode == 0
    digest = _hash(project, 3)
    assert json.loads((project.log_dir / "xp_calc.xp_calc" / digest / "run.json").read_text())[
        "git"
    ] == {"available": False, "reason": "not a Git repository"}
    project.write("helper.py", "def scale(x):\n    return x * 11\n")
    result = project.run("reproduce", "--check", digest)
    assert result.returncode == 0, result.output
    assert "code: the source store (2 files)" in result.stdout
    assert "outcome agrees (exactly)" in result.stdout


def test_i13_reproduce_one_run_that_cannot_be_rebuilt_does_not_hide_the_others(project):
    """A CI step checks every run of a query: a run whose code is lost is named and counted
    (--check exits 1), the other runs are still reproduced and answered."""
    _made_dirty(project)
    assert project.run("-q").returncode == 0
    lost = _hash(project, 3)
    path = project.log_dir / "xp_calc.xp_calc" / lost / "run.json"
    record = json.loads(path.read_text())  # as a format-1 run whose untracked helper is gone
    for key in ("session", "snapshot", "code"):
        record.pop(key, None)
    record["format"] = 1
    path.write_text(json.dumps(record))
    _move_on(project)
    result = project.run("reproduce", "--check", "status == complete")
    assert result.returncode == 1, result.output
    assert f"ERROR: {lost}: cannot reproduce" in result.stderr, result.output
    assert "1 of 2 runs could not be reproduced" in result.stderr
    assert "outcome agrees" in result.stdout and _hash(project, 4)[:12] in result.stdout


def test_i13_reproduce_a_pruned_trial_is_skipped_not_failed(project):
    """A pruned trial stopped on its siblings' values: reproduced alone it would run to the
    end and differ, so it is skipped with the reason. (The status is set by hand: a real
    search with a pruner is tests/test_i14_search.py's; here only the record matters.)"""
    _made_dirty(project)
    assert project.run("-q").returncode == 0
    pruned = _hash(project, 3)
    path = project.log_dir / "xp_calc.xp_calc" / pruned / "run.json"
    record = json.loads(path.read_text())
    record["status"] = "pruned"
    path.write_text(json.dumps(record))
    result = project.run("reproduce", "--check", "xp_calc.py::xp_calc")
    assert result.returncode == 0, result.output
    assert f"{pruned}: a pruned trial" in result.stdout and "skipped" in result.stdout
    assert "outcome agrees" in result.stdout
