"""Issue 12, "Marks": skip, skipif, xfail, custom marks selected with ``-m``, marks on one grid
point (``xprun.param``), registered and unknown marks, and Hydra's ``-m``/``--multirun`` flag.

Everything through the real CLI (``python -m xprun``), the pool (``-n 2``) and, when a cluster
answers, SLURM; the Reader through the public API.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
from conftest import git_commit_all

import xprun

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

MARKED = """
import sys
import xprun

@xprun.mark.skip(reason="broken on purpose")
def xp_skip():
    return {"ran": True}

@xprun.mark.skipif(sys.platform == sys.platform, reason="always here")
def xp_skipif_true():
    return {"ran": True}

@xprun.mark.skipif(sys.platform == "no such platform", reason="never here")
def xp_skipif_false():
    return {"ran": True}
"""


def _folders(project) -> set[str]:
    """The experiment folders of the log directory (not the job specs' ``.xprun-jobs``)."""
    if not project.log_dir.exists():
        return set()
    return {p.name for p in project.log_dir.iterdir() if not p.name.startswith(".")}


def _hashes(listing: str) -> dict[str, str]:
    """node id → hash, from ``--collect-only`` lines (``status  hash  node id  marks``)."""
    found = {}
    for line in listing.splitlines():
        match = re.match(r"^\S+\s+([0-9a-f]{32})\s+(\S+)", line)
        if match:
            found[match.group(2)] = match.group(1)
    return found


def test_i12_marks_skip_and_skipif_are_reported_skipped_and_write_nothing(project) -> None:
    project.write("xp_marked.py", MARKED)
    listing = project.run("--collect-only")
    assert listing.returncode == 0, listing.output
    skip_line = next(line for line in listing.stdout.splitlines() if "::xp_skip " in line + " ")
    assert "@skip" in skip_line and "broken on purpose" in skip_line
    result = project.run()
    assert result.returncode == 0, result.output
    assert re.search(r"xp_marked.py::xp_skip s\b", result.stdout), result.stdout
    assert "1 complete, 2 skipped" in result.stdout
    # Nothing is written for a skipped run: not even its experiment's folder.
    assert _folders(project) == {"xp_marked.xp_skipif_false"}
    again = project.run("-v")
    assert "1 cached, 2 skipped" in again.stdout, again.stdout
    assert "SKIPPED xp_marked.py::xp_skip - broken on purpose" in again.stdout
    assert _folders(project) == {"xp_marked.xp_skipif_false"}


def test_i12_marks_skip_on_a_complete_run_reports_it_cached(project) -> None:
    """The skip check stops runs that would start; a complete run's result is there."""
    project.write("xp_done.py", "def xp_done():\n    return {'x': 1}\n")
    assert project.run().returncode == 0
    project.write(
        "xp_done.py",
        """
        import xprun

        @xprun.mark.skip(reason="later")
        def xp_done():
            return {'x': 1}

        @xprun.mark.skip(reason="later")
        def xp_new():
            return {'x': 1}
        """,
    )
    result = project.run()
    assert result.returncode == 0 and "1 cached, 1 skipped" in result.stdout, result.output


def test_i12_marks_skip_in_the_pool_writes_nothing(project) -> None:
    project.write("xp_marked.py", MARKED)
    git_commit_all(project.root)
    result = project.run("-n", "2")
    assert result.returncode == 0, result.output
    assert "1 complete, 2 skipped" in result.stdout, result.output
    assert _folders(project) == {"xp_marked.xp_skipif_false"}


def _cluster_up() -> bool:
    if not shutil.which("sbatch"):
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    return "UP" in ping.stdout


@pytest.fixture(scope="module")
def slurm():
    if not _cluster_up():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no SLURM cluster answers: .ci/run must start it")
        pytest.skip("no SLURM cluster here (source /tmp/xprun-slurm/slurm.env)")


XFAIL_GRID = """
import xprun

@xprun.grid(lr=[0.1, xprun.param(1.0, marks=xprun.mark.xfail(raises=ValueError, reason="diverges"))])
@xprun.mark.skipif({skip}, reason="skipped on the cluster")
def xp_train(config):
    if config.lr > 0.5:
        raise ValueError("diverged")
    return {{"loss": config.lr}}
"""


def test_i12_marks_skip_and_a_grid_points_xfail_on_slurm(slurm, project) -> None:
    project.write("xp_train.py", XFAIL_GRID.format(skip=False))
    project.write("xp_skipped.py", MARKED)
    git_commit_all(project.root)
    result = project.run("--scheduler", "slurm", "--wait", timeout=300)
    assert result.returncode == 0, result.output
    assert "2 skipped" in result.stdout, result.output
    specs = list(project.log_dir.glob(".xprun-jobs/*/spec.json"))
    submitted = sorted(
        run["nodeid"] for spec in specs for run in json.loads(spec.read_text())["runs"]
    )
    assert submitted == [
        "xp_skipped.py::xp_skipif_false",
        "xp_train.py::xp_train",
        "xp_train.py::xp_train",
    ]
    assert _folders(project) == {"xp_skipped.xp_skipif_false", "xp_train.xp_train"}
    # The grid point's xfail went with its run to the node, which recorded it.
    statuses = sorted(r["status"] for r in project.records("xp_train.xp_train"))
    assert statuses == ["complete", "xfail"]


def test_i12_marks_xfail_is_recorded_not_a_failure_and_not_rerun(project) -> None:
    project.write(
        "xp_x.py",
        """
        import xprun

        @xprun.mark.xfail(reason="known bug", raises=ZeroDivisionError)
        def xp_broken():
            return {"x": 1 / 0}
        """,
    )
    result = project.run()
    assert result.returncode == 0, result.output
    assert re.search(r"xp_x.py::xp_broken x\b", result.stdout), result.stdout
    assert "1 xfail" in result.stdout
    assert "XFAIL xp_x.py::xp_broken - known bug" in result.stdout
    (record,) = project.records()
    assert record["status"] == "xfail" and record["attempt"] == 1
    assert "ZeroDivisionError" in record["error"]["type"]
    # A recorded xfail is a finished result: the next launch does not run it again.
    again = project.run()
    assert again.returncode == 0 and "1 cached" in again.stdout, again.output
    (record,) = project.records()
    assert record["attempt"] == 1
    # --lf-like selection aside, --force reruns it; without the mark it is a plain failure.
    forced = project.run("--force")
    assert "1 xfail" in forced.stdout and project.records()[0]["attempt"] == 2
    project.write("xp_x.py", "def xp_broken():\n    return {'x': 1 / 0}\n")
    unmarked = project.run()
    assert unmarked.returncode == 1 and "1 failed" in unmarked.stdout, unmarked.output
    assert project.records()[0]["status"] == "failed"


def test_i12_marks_xfail_raises_strict_and_xpass(project) -> None:
    project.write(
        "xp_x.py",
        """
        import xprun

        @xprun.mark.xfail(raises=KeyError)
        def xp_other_error():
            raise ValueError("not the expected one")

        @xprun.mark.xfail(reason="flaky")
        def xp_passes():
            return {"ok": 1}

        @xprun.mark.xfail(reason="must fail", strict=True)
        def xp_strict():
            return {"ok": 1}
        """,
    )
    result = project.run()
    assert result.returncode == 1, result.output
    statuses = {r["experiment"]: r["status"] for r in project.records()}
    assert statuses == {
        "xp_x.xp_other_error": "failed",
        "xp_x.xp_passes": "complete",
        "xp_x.xp_strict": "failed",
    }
    assert "XPASS xp_x.py::xp_passes - flaky" in result.stdout
    assert "[XPASS(strict)] must fail" in result.stdout


def test_i12_marks_xfail_on_a_grid_point_in_the_pool(project) -> None:
    project.write("xp_train.py", XFAIL_GRID.format(skip=False))
    git_commit_all(project.root)
    result = project.run("-n", "2")
    assert result.returncode == 0, result.output
    assert "1 complete, 1 xfail" in result.stdout, result.output
    assert sorted(r["status"] for r in project.records()) == ["complete", "xfail"]
    again = project.run("-n", "2")
    assert again.returncode == 0 and "2 cached" in again.stdout, again.output
    assert sorted(r["attempt"] for r in project.records()) == [1, 1]
    # The Reader reads an xfail record as any other.
    runs = xprun.Reader(project.log_dir).filter("status == xfail")
    assert len(runs) == 1 and list(runs.to_pandas()["config.lr"]) == [1.0]


CUSTOM = """
import xprun

@xprun.mark.slow
def xp_slow():
    return {}

@xprun.mark.slow
@xprun.mark.gpu(n=2)
def xp_slow_gpu():
    return {}

@xprun.grid(lr=[0.1, xprun.param(1.0, marks=[xprun.mark.slow])])
def xp_grid(config):
    return {}
"""

REGISTERED = (
    '[tool.xprun]\nlog_dir = "xprun_logs"\nmarkers = ["slow: slow runs", "gpu(n): needs n GPUs"]\n'
)


def test_i12_marks_select_with_m_expression(project) -> None:
    project.write("pyproject.toml", REGISTERED)
    project.write("xp_custom.py", CUSTOM)
    result = project.run("-m", "slow and not gpu", "--collect-only")
    assert result.returncode == 0, result.output
    assert sorted(_hashes(result.stdout)) == [
        "xp_custom.py::xp_grid[lr=1.0]",
        "xp_custom.py::xp_slow",
    ]
    assert "2 deselected" in result.stdout
    gpu = project.run("-m", "gpu", "--collect-only")
    assert list(_hashes(gpu.stdout)) == ["xp_custom.py::xp_slow_gpu"]
    ran = project.run("-m", "not slow")
    assert ran.returncode == 0 and "1 complete, 3 deselected" in ran.stdout, ran.output
    bad = project.run("-m", "slow and (", "--collect-only")
    assert bad.returncode == 4 and "'-m'" in bad.stderr, bad.output


def test_i12_marks_never_change_a_runs_hash(project) -> None:
    project.write("pyproject.toml", REGISTERED)
    project.write("xp_custom.py", CUSTOM)
    marked = _hashes(project.run("--collect-only").stdout)
    project.write(
        "xp_custom.py",
        """
        import xprun

        def xp_slow():
            return {}

        def xp_slow_gpu():
            return {}

        @xprun.grid(lr=[0.1, 1.0])
        def xp_grid(config):
            return {}
        """,
    )
    plain = _hashes(project.run("--collect-only").stdout)
    assert len(marked) == 4 and marked == plain


def test_i12_marks_unknown_marks_warn_once_registered_ones_do_not(project) -> None:
    project.write("xp_custom.py", CUSTOM)
    result = project.run("--collect-only")
    assert result.returncode == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "unknown mark" in line]
    assert len(warnings) == 2, result.stderr  # slow (three times) and gpu: once per name
    assert "xprun.mark.slow on xp_custom.py::xp_slow (line" in warnings[0]
    assert 'markers = ["slow: what it means"]' in warnings[0]
    strict = project.run("--strict-markers")
    assert strict.returncode == 4 and "unknown mark xprun.mark.slow" in strict.stderr
    assert not project.log_dir.exists()
    project.write("pyproject.toml", REGISTERED)
    quiet = project.run("--strict-markers")
    assert quiet.returncode == 0 and "unknown mark" not in quiet.stderr, quiet.output
    typo = project.run("--strict-markers", "-m", "slow and not gpus")
    assert typo.returncode == 4 and "unregistered mark(s) gpus" in typo.stderr, typo.output
    assert "1 cached, 3 deselected" in project.run("--strict-markers", "-m", "gpu").stdout
    listed = project.run("--markers")
    assert listed.returncode == 0
    assert "@xprun.mark.slow: slow runs" in listed.stdout
    assert "@xprun.mark.gpu(n): needs n GPUs" in listed.stdout
    assert "@xprun.mark.xfail" in listed.stdout and "@xprun.mark.skipif" in listed.stdout


def test_i12_marks_bad_arguments_are_usage_errors(project) -> None:
    project.write(
        "xp_bad.py",
        """
        import xprun

        @xprun.mark.skipif("sys.platform == 'linux'", reason="pytest's text condition")
        def xp_text_condition():
            return {}
        """,
    )
    result = project.run()
    assert result.returncode == 4, result.output
    assert "xp_bad.py::xp_text_condition" in result.stderr and "never evaluates" in result.stderr
    project.write(
        "xp_bad.py",
        """
        import xprun

        @xprun.mark.xfail(raises="ValueError")
        def xp_text_raises():
            return {}
        """,
    )
    result = project.run()
    assert result.returncode == 4 and "raises= must be an exception type" in result.stderr
    project.write(
        "xp_bad.py",
        """
        import xprun

        @xprun.fixture(params=[1, xprun.param(2, marks=xprun.mark.xfail)], ids=["a", "b"])
        def data(request):
            return request.param

        def xp_fixture_param(data):
            return {"data": data}
        """,
    )
    result = project.run()
    assert result.returncode == 4 and "fixture 'data' has an xprun.param" in result.stderr
    assert not project.log_dir.exists()


def test_i12_multirun_flag_is_accepted_and_ignored(project) -> None:
    project.write(
        "xp_h.py",
        """
        import xprun

        @xprun.config({"lr": 0.5})
        @xprun.mark.slow
        def xp_h(config):
            return {"lr": config.lr}
        """,
    )
    note = "every xprun invocation is a multirun"
    swept = project.run("-m", "lr=0.1,0.01", "--collect-only")
    assert swept.returncode == 0, swept.output
    assert note in swept.stderr
    assert sorted(_hashes(swept.stdout)) == ["xp_h.py::xp_h[lr=0.01]", "xp_h.py::xp_h[lr=0.1]"]
    flag_alone = project.run("lr=0.2", "-m")
    assert flag_alone.returncode == 0 and note in flag_alone.stderr, flag_alone.output
    outcomes = [json.loads((d / "outcome.json").read_text()) for d in project.run_dirs()]
    assert outcomes == [{"lr": 0.2}]
    long_flag = project.run("--multirun", "lr=0.3,0.4", "--collect-only")
    assert long_flag.returncode == 0 and note in long_flag.stderr
    assert len(_hashes(long_flag.stdout)) == 2
    # A word without "=" after -m is a mark expression, as in pytest.
    marked = project.run("-m", "not slow", "--collect-only")
    assert note not in marked.stderr and "1 deselected" in marked.stdout, marked.output
