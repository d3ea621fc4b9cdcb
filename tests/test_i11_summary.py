"""Issue 11, target 2: the completion summary (``<experiment>/.complete.json``) spares a
relaunch the read of every complete record, and never reports a run cached (or stale, or
not stale) that its record does not say.

Counts, not times: a conftest plugin adds an audit hook (``sys.addaudithook``: every
``open`` and ``os.open`` of the process raises the ``open`` event) and writes, at the end of
the session, how many times a ``run.json`` was opened.  Collection reads one record per
experiment folder (whose experiment owns it: ``collect.check_log_folder``), whatever the
number of runs: ``OWNER_CHECK`` opens are the floor of every launch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import xxhash
from conftest import Project

from xprun import completion_summary

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

N = 4
OWNER_CHECK = 1  # records read by collection, per experiment folder
FOLDER = "xp_sum.xp_sum"

XP = """\
import os

import xprun


@xprun.config({"seed": 0})
@xprun.grid(seed=range(int(os.environ.get("N", "4"))))
def xp_sum(config):
    if os.environ.get("FAIL"):
        raise RuntimeError("asked to fail")
    return {"seed": config.seed}
"""

# Counts the opens of run.json files, for the whole process (xprun's and its plugins').  An
# audit hook cannot be removed: it is added once per process and counts into the list of the
# session that imported this conftest last (in-process launches, tests/launch.py, import it
# afresh each time in one process; in a subprocess it is the one session).
COUNT_OPENS = """\
import os
import sys

_opened = sys.xprun_test_run_json_opens = []


def _audit(event, args):
    if event == "open" and str(args[0]).endswith("run.json"):
        opened = getattr(sys, "xprun_test_run_json_opens", None)
        if opened is not None:
            opened.append(str(args[0]))


if not getattr(sys, "xprun_test_audit_hook", False):
    sys.addaudithook(_audit)
    sys.xprun_test_audit_hook = True


def xprun_sessionfinish(session, exitstatus):
    sys.xprun_test_run_json_opens = None  # counted no more
    with open(os.environ["OPENS"], "w") as out:
        out.write(str(len(_opened)))
"""


def _launch(project: Project, tmp_path: Path, *args: str, **env: str) -> tuple[str, int]:
    """Launch; the output and how many ``run.json`` opens the process made."""
    opens = tmp_path / "opens.txt"
    opens.unlink(missing_ok=True)
    result = project.run("-q", *args, env={"OPENS": str(opens), **env})
    assert result.returncode in (0, 1), result.output
    return result.stdout, int(opens.read_text())


def _settle() -> None:
    """Let the records just written age past the racy window: a launch remembers only records
    older than that when it reads them (a subprocess's start-up alone used to take longer)."""
    time.sleep(2 * completion_summary._RACY_NS / 1e9)


def _summary(project: Project) -> Path:
    return project.log_dir / FOLDER / completion_summary.NAME


def _warm(project: Project, tmp_path: Path) -> None:
    """A complete sweep whose summary knows every run: the third launch reads no record."""
    project.write("xp_sum.py", XP)
    project.write("conftest.py", COUNT_OPENS)
    out, _ = _launch(project, tmp_path)  # runs them
    assert f"{N} complete" in out, out
    _settle()
    out, opens = _launch(project, tmp_path)  # summary cold: each record read once
    assert f"{N} cached" in out and opens >= N, out
    out, opens = _launch(project, tmp_path)
    assert f"{N} cached" in out and opens <= OWNER_CHECK, (out, opens)


def test_i11_summary_relaunch_reads_no_record(project: Project, tmp_path: Path) -> None:
    _warm(project, tmp_path)
    data = json.loads(_summary(project).read_text())
    assert data["version"] == completion_summary.VERSION
    assert sorted(data["runs"]) == sorted(d.name for d in project.run_dirs(FOLDER))
    # Deleting it is always safe: every record is read once again, nothing else changes.
    _summary(project).unlink()
    out, opens = _launch(project, tmp_path)
    assert f"{N} cached" in out and opens >= N
    assert _summary(project).exists()


def test_i11_summary_force_rm_deleted_and_edited_records_are_read_again(
    project: Project, tmp_path: Path
) -> None:
    _warm(project, tmp_path)
    dirs = project.run_dirs(FOLDER)
    # --force rerun that fails: every record is now failed; none may be reported cached.
    out, _ = _launch(project, tmp_path, "--force", FAIL="1")
    assert f"{N} failed" in out, out
    out, _ = _launch(project, tmp_path)  # runs them again (they pass now)
    assert f"{N} complete" in out and "cached" not in out, out
    _settle()
    _launch(project, tmp_path)  # warm again
    out, opens = _launch(project, tmp_path)
    assert opens <= OWNER_CHECK, out
    # A record edited in place to failed, same size (same inode: only its times tell).
    record = dirs[0] / "run.json"
    text = record.read_text()
    edited = text.replace('"status": "complete"', '"status": "failed"  ')
    assert edited != text and len(edited) == len(text)
    with open(record, "r+") as f:
        f.write(edited)
    # A run directory deleted, and one removed with xprun rm.
    shutil.rmtree(dirs[1])
    removed = project.run("rm", "--yes", dirs[2].name)
    assert removed.returncode == 0, removed.output
    out, _ = _launch(project, tmp_path)
    assert "3 complete" in out and f"{N - 3} cached" in out, out
    # --collect-only reads the records themselves: states right.
    listing = project.run("--collect-only", "-q").stdout
    assert listing.count("complete ") == N, listing


@pytest.mark.parametrize("field", range(4))
def test_i11_summary_entry_trusted_only_on_equal_signature(
    project: Project, tmp_path: Path, field: int
) -> None:
    """Each field of the signature (inode, size, mtime, ctime) alone makes the entry
    untrusted: a summary entry whose field differs is what a record changed in that field
    only looks like (ctime cannot be set back by hand)."""
    _warm(project, tmp_path)
    path = _summary(project)
    data = json.loads(path.read_text())
    victim = project.run_dirs(FOLDER)[0]
    (victim / "run.json").write_text(
        (victim / "run.json").read_text().replace('"complete"', '"failed"')
    )
    # The entry keeps the old signature but for the new record's: one field off.
    info = os.stat(victim / "run.json")
    entry = [info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]
    entry[field] += 1
    data["runs"][victim.name][:4] = entry
    path.write_text(json.dumps(data))
    out, opens = _launch(project, tmp_path)
    assert "1 complete" in out and f"{N - 1} cached" in out and opens >= 1, out
    # Control: the same entry with the exact signature is trusted (what a lie would need).
    (victim / "run.json").write_text(
        (victim / "run.json").read_text().replace('"complete"', '"failed"')
    )
    info = os.stat(victim / "run.json")
    data["runs"][victim.name][:4] = [info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]
    path.write_text(json.dumps(data))
    out, _ = _launch(project, tmp_path)
    assert f"{N} cached" in out, out


def _bad_summaries(name: str, sig: list[int], digest: str) -> dict[str, object]:
    """Summaries that would report a failed run cached (or a fresh run stale) if trusted."""
    good = {"version": 1, "codes": [digest], "runs": {name: [*sig, 0]}}
    return {
        "future version": {**good, "version": 2},
        "no version": {k: v for k, v in good.items() if k != "version"},
        "not an object": [good],
        "codes not a list": {**good, "codes": {"0": digest}},
        "runs not an object": {**good, "runs": [[*sig, 0]]},
        "code not text": {**good, "codes": [123]},
        "entry not a list": {**good, "runs": {name: {"sig": sig}}},
        "entry too short": {**good, "runs": {name: sig}},
        "index not a number": {**good, "runs": {name: [*sig, "0"]}},
        "negative index": {**good, "codes": [digest, "xxh3_128:other"], "runs": {name: [*sig, -1]}},
        "index out of range": {**good, "runs": {name: [*sig, 1]}},
    }


def test_i11_summary_damaged_or_foreign_summary_is_never_trusted(
    project: Project, tmp_path: Path
) -> None:
    _warm(project, tmp_path)
    victim = project.run_dirs(FOLDER)[0]
    record = json.loads((victim / "run.json").read_text())
    digest = record["code"]["digest"]
    record["status"] = "failed"
    (victim / "run.json").write_text(json.dumps(record))
    path = _summary(project)
    for case in [*_bad_summaries(victim.name, [0, 0, 0, 0], digest), "truncated", "garbage"]:
        info = os.stat(victim / "run.json")  # the failed record's signature, as it is now
        sig = [info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]
        bad = _bad_summaries(victim.name, sig, digest)
        if case == "truncated":
            text = json.dumps({"version": 1, "codes": [digest], "runs": {victim.name: [*sig, 0]}})
            text = text[:-7]
        elif case == "garbage":
            text = "\x00\xff not json"
        else:
            text = json.dumps(bad[case])
        path.write_text(text)
        # Never trusted: the failed run is run (and fails again, as asked: stays failed).
        out, opens = _launch(project, tmp_path, FAIL="1")
        assert "1 failed" in out and f"{N - 1} cached" in out and "stale" not in out, (case, out)
        assert opens >= N, (case, opens)  # the summary was ignored as a whole
        rewritten = json.loads(path.read_text())  # and replaced by a valid one
        assert rewritten["version"] == completion_summary.VERSION, case
        assert victim.name not in rewritten["runs"], case


def test_i11_summary_two_launchers_at_once(project: Project, tmp_path: Path) -> None:
    project.write("xp_sum.py", XP)
    project.write("conftest.py", COUNT_OPENS)
    out, _ = _launch(project, tmp_path, N="12")
    assert "12 complete" in out
    env = {"N": "12"}
    procs = [
        subprocess.Popen(
            [*project.command(), "-q"],
            cwd=project.root,
            env={**project.env(), **env, "OPENS": str(tmp_path / f"o{i}")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stdout + stderr
        assert "12 cached" in stdout, stdout
    assert not [p for p in _summary(project).parent.iterdir() if p.name.endswith(".tmp")]
    out, opens = _launch(project, tmp_path, N="12")
    assert "12 cached" in out and opens <= OWNER_CHECK, (out, opens)


def test_i11_summary_stale_runs_flagged_from_the_summary(project: Project, tmp_path: Path) -> None:
    _warm(project, tmp_path)
    project.write("xp_sum.py", XP.replace('{"seed": config.seed}', '{"seed": config.seed + 1}'))
    out, opens = _launch(project, tmp_path)
    assert f"{N} cached ({N} stale: code changed since they ran)" in out, out
    assert opens <= OWNER_CHECK, opens
    project.write("xp_sum.py", XP)  # back: not stale any more, still from the summary
    out, opens = _launch(project, tmp_path)
    assert f"{N} cached" in out and "stale" not in out and opens <= OWNER_CHECK, out


def test_i11_summary_racy_record_is_not_remembered(tmp_path: Path) -> None:
    """In-process: a record changed in place within the clock tick it was read in keeps its
    signature; the race cannot be timed from the command line, so the rule is checked
    directly: a record younger than the margin is judged but not remembered."""
    folder = tmp_path / "xp.xp"
    (folder / "abc").mkdir(parents=True)
    (folder / "old").mkdir()
    for name in ("abc", "old"):
        (folder / name / "run.json").write_text(json.dumps({"status": "complete", "attempt": 1}))
    found = completion_summary.complete_runs([(str(folder), "abc"), (str(folder), "old")])
    assert [f is not None for f in found] == [True, True]
    assert not (folder / completion_summary.NAME).exists()  # nothing old enough to remember


@pytest.mark.parametrize("code_version", [None, 3])
def test_i11_identity_digester_is_run_digest_whatever_the_params_hold(code_version) -> None:
    """``run_digester`` encodes the document around the config once; the digest must be the
    document's, even with params or an experiment id spelling the config's marker."""
    from xprun import identity

    marker = identity._HOLE
    config = {"lr": 0.1, "model": {"depth": 4}, "name": marker}
    params = {"a": marker, "b": identity.ParamIdentity(identity.PARAM_VALUE, [marker, 1.5])}
    for experiment_id in ("xp.py::xp", marker):
        document = {
            "experiment": experiment_id,
            "config": config,
            "params": {"a": marker},
            "param_values": {"b": [marker, 1.5]},
        }
        if code_version is not None:
            document["code_version"] = code_version
        expected = "xxh3_128:" + xxhash.xxh3_128_hexdigest(identity.canonical(document).encode())
        digester = identity.run_digester(experiment_id, params, code_version)
        assert digester(config) == expected
        assert identity.run_digest(experiment_id, config, params, code_version) == expected


def test_i11_summary_a_killed_writers_temporary_file_is_removed_once_old(
    project: Project, tmp_path: Path
) -> None:
    """A launcher killed while writing the summary leaves its temporary file (nothing else
    removes it); the next write removes it once it is an hour old, and leaves a young one
    (another launcher's write in progress) and other files alone."""
    project.write("xp_sum.py", XP)
    project.write("conftest.py", COUNT_OPENS)
    _launch(project, tmp_path)
    folder = project.log_dir / FOLDER
    abandoned = folder / f"{completion_summary.NAME}.4242.tmp"
    young = folder / f"{completion_summary.NAME}.4343.tmp"
    other = folder / "notes.4242.tmp"
    for path in (abandoned, young, other):
        path.write_text("{")
    hour_ago = abandoned.stat().st_mtime - 3700
    os.utime(abandoned, (hour_ago, hour_ago))
    os.utime(other, (hour_ago, hour_ago))
    _settle()
    out, _ = _launch(project, tmp_path)  # summary cold: written
    assert f"{N} cached" in out, out
    assert not abandoned.exists()
    assert young.exists() and other.exists()
    assert json.loads(_summary(project).read_text())["version"] == completion_summary.VERSION
