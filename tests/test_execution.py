"""Executing runs: statuses, outcomes, captured output, signals, collection errors."""

from __future__ import annotations

import json
import signal
import sys
import time

import pytest
from foreground import FOREGROUND

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)


def test_outputs_are_captured_to_files_and_shown_for_failures(project):
    project.write(
        "xp_out.py",
        """
        import sys
        import xprun

        @xprun.grid(fail=[False, True])
        def xp_out(config):
            print("hello from", config.fail)
            print("warning!", file=sys.stderr)
            if config.fail:
                raise KeyError("nope")
            return 3.5
        """,
    )
    result = project.run()
    assert result.returncode == 1
    assert "hello from True" in result.stdout  # the failed run's captured output is shown
    assert "hello from False" not in result.stdout  # passing runs stay quiet
    records = {r["nodeid"]: r for r in project.records()}
    ok_dir = next(
        d
        for d in project.run_dirs()
        if json.loads((d / "run.json").read_text())["status"] == "complete"
    )
    assert (ok_dir / "stdout.log").read_text() == "hello from False\n"
    assert (ok_dir / "stderr.log").read_text() == "warning!\n"
    assert json.loads((ok_dir / "outcome.json").read_text()) == {"value": 3.5}
    statuses = sorted(r["status"] for r in records.values())
    assert statuses == ["complete", "failed"]


def test_live_output_with_dash_s(project):
    project.write("xp_live.py", "def xp_live():\n    print('streamed line')\n")
    result = project.run("-s")
    assert result.returncode == 0
    assert "streamed line" in result.stdout
    assert (project.run_dirs()[0] / "stdout.log").read_text() == "streamed line\n"


def test_non_json_outcome_fails_the_run_with_a_clear_message(project):
    project.write("xp_obj.py", "def xp_obj():\n    return {'model': object()}\n")
    result = project.run()
    assert result.returncode == 1
    assert "'model'" in result.stdout and "log_artifact" in result.stdout
    assert project.records()[0]["status"] == "failed"


def test_failed_and_interrupted_runs_rerun_by_default(project):
    flag = project.root / "ok"
    project.write(
        "xp_flaky.py",
        f"""
        import pathlib

        def xp_flaky(run):
            if not pathlib.Path({str(flag)!r}).exists():
                raise RuntimeError("not yet")
            return {{"attempt": run.attempt}}
        """,
    )
    assert project.run().returncode == 1
    flag.write_text("")
    result = project.run()
    assert result.returncode == 0, result.output
    (record,) = project.records()
    assert record["status"] == "complete" and record["attempt"] == 2
    assert not list(project.run_dirs()[0].glob("claim.*"))


def test_import_error_is_reported_and_other_files_still_run(project):
    project.write("xp_syntax.py", "def xp_broken(:\n    pass\n")
    project.write("xp_raises.py", "raise ImportError('missing dependency torchvision')\n")
    project.write("xp_fine.py", "def xp_fine():\n    return {'ok': True}\n")
    result = project.run()
    assert result.returncode == 1
    assert "ERROR collecting xp_syntax.py" in result.stdout and "SyntaxError" in result.stdout
    assert "ERROR collecting xp_raises.py" in result.stdout
    assert "missing dependency torchvision" in result.stdout
    assert "1 complete, 2 errors" in result.stdout
    assert result.stdout.count("ERROR collecting") == 2  # each error reported once
    assert "pluggy" not in result.stdout  # no frame of xprun's machinery above the user's file
    assert [r["nodeid"] for r in project.records()] == ["xp_fine.py::xp_fine"]


def test_conftest_error_is_a_collection_error(project):
    project.write("sub/conftest.py", "import no_such_module_xyz\n")
    project.write("sub/xp_s.py", "def xp_s():\n    pass\n")
    project.write("xp_top.py", "def xp_top():\n    pass\n")
    result = project.run()
    assert result.returncode == 1
    assert "no_such_module_xyz" in result.stdout
    assert [r["nodeid"] for r in project.records()] == ["xp_top.py::xp_top"]


def test_discovery_skips_hidden_venv_and_log_dirs(project):
    project.write("xp_real.py", "def xp_real():\n    pass\n")
    project.write(".hidden/xp_h.py", "def xp_h():\n    pass\n")
    project.write("env/pyvenv.cfg", "home = /usr\n")
    project.write("env/xp_v.py", "def xp_v():\n    pass\n")
    project.write("xprun_logs/xp_l.py", "def xp_l():\n    pass\n")
    project.write("node_modules/xp_n.py", "def xp_n():\n    pass\n")
    project.write("deep/er/xp_deep.py", "def xp_deep():\n    pass\n\ndef helper():\n    pass\n")
    result = project.run("--collect-only")
    assert result.returncode == 0, result.output
    ids = sorted(line.split()[-1] for line in result.stdout.splitlines() if "::" in line)
    assert ids == ["deep/er/xp_deep.py::xp_deep", "xp_real.py::xp_real"]


def test_patterns_are_configurable(project):
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nexperiment_files = ["exp_*.py"]\nexperiment_functions = ["run_*"]\n',
    )
    project.write("exp_a.py", "def run_a():\n    pass\n\ndef xp_b():\n    pass\n")
    project.write("xp_c.py", "def xp_c():\n    pass\n")
    result = project.run("--collect-only")
    ids = [line.split()[-1] for line in result.stdout.splitlines() if "::" in line]
    assert ids == ["exp_a.py::run_a"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_marks_run_interrupted_runs_teardown_and_exits_nonzero(project, sig):
    started = project.root / "started"
    torn = project.root / "torn"
    project.write(
        "xp_long.py",
        f"""
        import pathlib
        import time
        import xprun

        @xprun.fixture
        def resource():
            yield 1
            pathlib.Path({str(torn)!r}).write_text("done")

        @xprun.grid(i=[1, 2])
        def xp_long(resource, config):
            pathlib.Path({str(started)!r}).write_text("go")
            time.sleep(60)
        """,
    )
    proc = project.popen(**FOREGROUND)  # SIGINT is not ignored, even from a background job
    deadline = time.time() + 30
    while not started.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert started.exists(), proc.communicate()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, out + err
    assert torn.read_text() == "done"
    (record,) = project.records()  # the second run never started
    assert record["status"] == "interrupted"
    assert record["error"]["type"] in ("Terminated", "KeyboardInterrupt")
    assert not list(project.run_dirs()[0].glob("claim.*"))
    assert "1 interrupted" in out
    # Rerunning runs both (the interrupted one again).
    started.unlink()
    project.write(
        "xp_long.py",
        "import xprun\n\n@xprun.grid(i=[1, 2])\ndef xp_long(config):\n    return {'i': config.i}\n",
    )
    result = project.run()
    assert result.returncode == 0, result.output
    assert sorted(r["attempt"] for r in project.records()) == [1, 2]


def test_version_and_help_import_no_heavy_modules(project):
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"  # what the interpreter (and coverage, in CI) loaded
        "from xprun.cli import main\n"
        "for args in (['--version'], ['--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, e.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'hydra', 'git'))\n"
        "print('HEAVY', heavy)\n"
        # Standard-library modules the built-in plugins use only when they act (issue 11,
        # target 7: OpenSSL's load alone was a sixth of --help), counted beyond what the
        # interpreter had loaded before xprun (coverage's subprocess patch imports some).
        "lazy = ('hashlib', 'subprocess', 'platform', 'datetime', 'difflib')\n"
        "print('LAZY', sorted(m for m in lazy if m in sys.modules and m not in before))\n"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=project.root
    )
    assert out.returncode == 0, out.stderr
    assert "xprun 0.1.0" in out.stdout
    assert "HEAVY []" in out.stdout
    assert "LAZY []" in out.stdout, out.stdout


def test_experiments_sharing_a_log_folder_name_are_a_usage_error(project):
    named = "import xprun\n\n@xprun.config(experiment='{}')\ndef xp_f():\n    pass\n"
    project.write("a/xp_same.py", named.format("same"))
    project.write("b/xp_same.py", named.format("same"))
    result = project.run()
    assert result.returncode == 4
    assert "a/xp_same.py::xp_f" in result.stderr and "experiment=" in result.stderr
    project.write("b/xp_same.py", named.format("other"))
    result = project.run()
    assert result.returncode == 0, result.output
    assert {r["experiment"] for r in project.records()} == {"same", "other"}
