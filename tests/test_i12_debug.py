"""Issue 12, "Debugging one run" and first-day item 10 (fixtures): through the CLI.

The debugger tests pipe their commands into xprun's stdin, as a user would type them; pdb
reads a pipe as it reads a terminal (and quits at its end, so a test never hangs on it).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import Project, Result

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

TRAIN = """\
import xprun

@xprun.config({"lr": 0.25})
@xprun.grid(lr=[0.25, 0.5])
def xp_train(config):
    print("printed by the run")
    scaled = config.lr * 4
    if scaled > 0:
        raise ValueError(f"diverged at {scaled}")
    return {"scaled": scaled}
"""


def run_with_stdin(project: Project, *args: str, stdin: str) -> Result:
    """``python -m xprun ARGS`` with ``stdin`` piped in (what the user types)."""
    proc = subprocess.run(
        [*project.command(), *args],
        cwd=project.root,
        env=project.env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


# -- first-day item 10: fixtures ------------------------------------------------------------


def test_i12_10_fixture_typo_says_did_you_mean(project: Project) -> None:
    project.write(
        "xp_a.py",
        """
        import xprun

        @xprun.config({"lr": 0.1})
        def xp_a(config, loger):
            pass
        """,
    )
    result = project.run()
    assert result.returncode == 1
    assert "fixture 'loger' not found" in result.output
    assert "did you mean 'logger'?" in result.output
    listed = result.output.split("available fixtures: ", 1)[1].splitlines()[0].split(", ")
    assert "request" in listed
    assert {"config", "logger", "run", "run_dir", "seed"} <= set(listed)
    assert listed == sorted(listed)
    assert not project.run_dirs()


def test_i12_10_fixture_far_from_any_name_gets_no_guess(project: Project) -> None:
    project.write(
        "xp_a.py",
        """
        import xprun

        @xprun.config({"lr": 0.1})
        def xp_a(config, zzzqqq):
            pass
        """,
    )
    result = project.run()
    assert result.returncode == 1
    assert "fixture 'zzzqqq' not found" in result.output
    assert "did you mean" not in result.output
    assert "request" in result.output.split("available fixtures: ", 1)[1].splitlines()[0]


# -- --pdb ------------------------------------------------------------------------------------


def test_i12_pdb_post_mortem_in_the_runs_frames(project: Project) -> None:
    project.write("xp_train.py", TRAIN)
    typed = 'p config.lr\np scaled\nw\n!print("typed in pdb")\nc\n'
    result = run_with_stdin(project, "--pdb", stdin=typed)
    out = result.stdout
    assert result.returncode == 1, result.output
    assert "(Pdb) 0.25\n" in out  # the first run's config, then its local
    assert "(Pdb) 1.0\n" in out
    assert 'raise ValueError(f"diverged at {scaled}")' in out  # stopped where it raised
    stack = out.split("(Pdb) 1.0\n", 1)[1].split("typed in pdb")[0]
    assert "xp_train.py" in stack and "xprun" not in stack and "pluggy" not in stack
    assert "stopping after the first failure (--pdb)" in out
    # One run executed, recorded failed; the session stopped before the second.
    (run_dir,) = project.run_dirs()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"
    # The run's own output is captured; what was typed in the debugger went to the terminal.
    assert (run_dir / "stdout.log").read_text() == "printed by the run\n"
    assert "typed in pdb" in out


def test_i12_pdb_passing_runs_never_stop(project: Project) -> None:
    project.write(
        "xp_ok.py",
        """
        import xprun

        @xprun.grid(lr=[1, 2])
        def xp_ok(config):
            return {"lr": config.lr}
        """,
    )
    result = run_with_stdin(project, "--pdb", stdin="")
    assert result.returncode == 0, result.output
    assert "(Pdb)" not in result.stdout
    assert len(project.run_dirs()) == 2


def test_i12_pdb_and_trace_refuse_other_processes(project: Project) -> None:
    project.write("xp_train.py", TRAIN)
    for args in (
        ["--pdb", "-n", "2"],
        ["--trace", "--scheduler", "slurm"],
        ["--pdb", "--snapshot"],
    ):
        result = project.run(*args)
        assert result.returncode == 4, (args, result.output)
        assert "must execute in this process" in result.stderr
        assert "node id inline" in result.stderr
    assert not project.log_dir.exists()


def test_i12_pdb_refuses_a_scheduler_fixture_sending_runs_elsewhere(project: Project) -> None:
    project.write("xp_train.py", TRAIN)
    project.write(
        "conftest.py",
        """
        import xprun

        class Elsewhere:
            name = "elsewhere"

            def run(self, session, runs):
                raise RuntimeError("the runs were sent elsewhere")

        @xprun.fixture(scope="session")
        def scheduler():
            return Elsewhere()
        """,
    )
    result = project.run("--pdb")
    assert result.returncode == 4, result.output
    assert "'scheduler' fixture sends xp_train.py::xp_train to elsewhere" in result.stderr
    assert "--scheduler inline" in result.stderr
    assert "the runs were sent elsewhere" not in result.output


def test_i12_pdb_pdbcls(project: Project) -> None:
    project.write("xp_train.py", TRAIN)
    project.write(
        "mydebugger.py",
        """
        import pdb

        class Debugger(pdb.Pdb):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.prompt = "(mydebugger) "
        """,
    )
    result = run_with_stdin(
        project, "--pdb", "--pdbcls", "mydebugger:Debugger", stdin="p scaled\nc\n"
    )
    assert result.returncode == 1, result.output
    assert "(mydebugger) 1.0\n" in result.stdout
    for bad in ("mydebugger:Nope", "json:JSONDecoder", "mydebugger"):
        refused = project.run("--pdb", "--pdbcls", bad)
        assert refused.returncode == 4, refused.output
        assert f"--pdbcls {bad}" in refused.stderr


# -- --trace ----------------------------------------------------------------------------------


TRACED = """\
import xprun

@xprun.grid(lr=[0.25, 0.5])
def xp_traced(config):
    first = config.lr * 2
    print("after the first line", first)
    return {"first": first}
"""


def test_i12_trace_stops_at_each_runs_first_line(project: Project) -> None:
    project.write("xp_traced.py", TRACED)
    result = run_with_stdin(
        project, "--trace", stdin="p config.lr\nn\np first\nc\np config.lr\nc\n"
    )
    out = result.stdout
    assert result.returncode == 0, result.output
    assert out.count("-> first = config.lr * 2") == 2  # each run, at its first line
    assert "(Pdb) 0.25\n" in out and "(Pdb) 0.5\n" in out
    assert out.index("(Pdb) 0.25") < out.index("(Pdb) 0.5")
    assert "(Pdb) 0.5\n" in out.split("(Pdb) 0.25\n", 1)[1]  # `p first` after `n`: 0.5
    records = project.records()
    assert [r["status"] for r in records] == ["complete", "complete"]
    logs = sorted((d / "stdout.log").read_text() for d in project.run_dirs())
    assert logs == ["after the first line 0.5\n", "after the first line 1.0\n"]


def test_i12_trace_quit_interrupts_the_run(project: Project) -> None:
    project.write("xp_traced.py", TRACED)
    result = run_with_stdin(project, "--trace", stdin="q\n")
    assert result.returncode == 2, result.output
    (record,) = project.records()
    assert record["status"] == "interrupted"  # never recorded complete
    again = run_with_stdin(project, "--trace", stdin="")  # end of input quits as well
    assert again.returncode == 2


# -- python xp_file.py: xprun.main() ----------------------------------------------------------


SCRIPT = """\
import pathlib
import xprun

@xprun.config({"lr": 0.5, "epochs": 2})
def xp_script(config, run):
    with open(pathlib.Path(__file__).with_name("calls.txt"), "a") as f:
        f.write(f"{config.lr}\\n")
    return {"lr": config.lr}

if __name__ == "__main__":
    raise SystemExit(xprun.main())
"""


def test_i12_main_runs_the_script_as_xprun_would(project: Project) -> None:
    script = project.write("xp_script.py", SCRIPT)
    # Another experiment file beside it: `python xp_script.py` runs xp_script.py only.
    project.write("xp_other.py", SCRIPT.replace("xp_script", "xp_other"))
    proc = subprocess.run(
        [sys.executable, str(script), "lr=0.1"],
        cwd=project.root,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 complete" in proc.stdout
    assert (project.root / "calls.txt").read_text() == "0.1\n"  # once, not once per import
    (run_dir,) = project.run_dirs()
    # The same run as `xprun xp_script.py lr=0.1`: its hash, so cached there.
    result = project.run("xp_script.py", "lr=0.1")
    assert result.returncode == 0, result.output
    assert "1 cached" in result.output
    assert project.run_dirs() == [run_dir]
    assert not project.run_dirs("xp_other.xp_other")
    record = json.loads((run_dir / "run.json").read_text())
    assert record["experiment_id"] == "xp_script.py::xp_script"
    assert (project.root / "calls.txt").read_text() == "0.1\n"


def test_i12_main_from_another_folder_and_with_options(project: Project) -> None:
    script = project.write("sub/xp_script.py", SCRIPT)
    elsewhere = project.root / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run(
        [sys.executable, str(script), "lr=0.1,0.2", "-k", "lr=0.2"],
        cwd=elsewhere,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (script.parent / "calls.txt").read_text() == "0.2\n"
    result = project.run("sub/xp_script.py", "lr=0.2")
    assert "1 cached" in result.output, result.output


def test_i12_main_called_at_import_is_refused(project: Project) -> None:
    script = project.write(
        "xp_loop.py",
        """
        import xprun

        @xprun.config({"lr": 0.5})
        def xp_loop(config):
            pass

        raise SystemExit(xprun.main())
        """,
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=project.root,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "xp_loop.py calls xprun.main() at import" in proc.stdout + proc.stderr
    assert len(project.run_dirs()) <= 1  # never launched again from the second import


# -- --setup-show, --setup-plan, --fixtures ---------------------------------------------------


FIXTURES = """\
import xprun

@xprun.fixture(scope="session")
def data():
    \"\"\"The dataset, loaded once per session.

    A second paragraph, shown with -v only.
    \"\"\"
    yield [1, 2, 3]

@xprun.fixture
def model(data, config):
    yield len(data) * config.lr

@xprun.fixture
def undocumented():
    return 1

@xprun.fixture
def _private():
    \"\"\"Shown with -v only.\"\"\"
"""

USES = """\
import xprun

@xprun.config({"lr": 1})
@xprun.grid(lr=[1, 2])
def xp_uses(model, undocumented):
    print("the run's own output")
    return {"model": model}
"""


def _block(out: str, nodeid: str) -> list[str]:
    """The --setup-show/--setup-plan lines of one run: from its first SETUP R line (or its
    session fixtures') to its last TEARDOWN R line."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"    {nodeid} "))
    start = at
    while start > 0 and "SETUP" in lines[start - 1]:
        start -= 1
    end = at + 1
    while end < len(lines) and lines[end].startswith("    TEARDOWN R "):
        end += 1
    return [line.rstrip() for line in lines[start:end]]


def test_i12_setup_show_per_run(project: Project) -> None:
    project.write("conftest.py", FIXTURES)
    project.write("xp_uses.py", USES)
    result = project.run("--setup-show")
    assert result.returncode == 0, result.output
    out = result.stdout
    assert _block(out, "xp_uses.py::xp_uses[lr=1]") == [
        "SETUP    S data",
        "    SETUP    R config",
        "    SETUP    R model (fixtures used: config, data)",
        "    SETUP    R undocumented",
        "    xp_uses.py::xp_uses[lr=1] (fixtures used: config, data, model, undocumented)",
        "    TEARDOWN R undocumented",
        "    TEARDOWN R model",
        "    TEARDOWN R config",
    ]
    # The session fixture is set up once, for the first run, and torn down at the end.
    assert _block(out, "xp_uses.py::xp_uses[lr=2]")[0] == "    SETUP    R config"
    assert out.count("SETUP    S data") == 1
    assert out.index("TEARDOWN S data") > out.index("xp_uses.py::xp_uses[lr=2] (")
    # Shown on the terminal, not in the runs' captured output.
    for run_dir in project.run_dirs():
        assert (run_dir / "stdout.log").read_text() == "the run's own output\n"
    assert project.run("--setup-show", "-n", "2").returncode == 4


def test_i12_setup_plan_runs_nothing(project: Project) -> None:
    project.write("conftest.py", FIXTURES)
    project.write("xp_uses.py", USES)
    project.run("-k", "lr=2")  # one run complete
    result = project.run("--setup-plan")
    assert result.returncode == 0, result.output
    out = result.stdout
    assert _block(out, "xp_uses.py::xp_uses[lr=1]") == [
        "SETUP    S data",
        "    SETUP    R config",
        "    SETUP    R model (fixtures used: config, data)",
        "    SETUP    R undocumented",
        "    xp_uses.py::xp_uses[lr=1] (fixtures used: config, data, model, undocumented)",
        "    TEARDOWN R undocumented",
        "    TEARDOWN R model",
        "    TEARDOWN R config",
    ]
    assert "    xp_uses.py::xp_uses[lr=2] (complete: cached, nothing is set up)" in out
    assert "TEARDOWN S data" in out
    assert len(project.run_dirs()) == 1  # nothing ran
    assert "the run's own output" not in out


def test_i12_fixtures_lists_every_fixture(project: Project) -> None:
    project.write("conftest.py", FIXTURES)
    project.write("sub/conftest.py", 'import xprun\n\n@xprun.fixture\ndef model():\n    "Sub."\n')
    project.write("xp_uses.py", USES)
    result = project.run("--fixtures")
    assert result.returncode == 0, result.output
    out = result.stdout
    builtins = out.split("built-in fixtures", 1)[1].split("fixtures defined from conftest.py")[0]
    for name in ("config", "logger", "request", "run", "run_dir", "seed"):
        assert f"\n{name} -- xprun/" in builtins, name
    assert "\nrequest -- xprun/fixtures.py:" in builtins
    local = out.split("fixtures defined from conftest.py", 1)[1]
    assert "data [session scope] -- conftest.py:3\n    The dataset, loaded once per session.\n" in (
        local
    )
    assert "model -- conftest.py:" in local
    assert "undocumented -- conftest.py:" in local and "no docstring available" in local
    assert "second paragraph" not in out and "_private" not in out
    assert "fixtures defined from sub/conftest.py" in out
    assert not project.log_dir.exists() or not project.run_dirs()  # nothing ran
    verbose = project.run("--fixtures", "-v").stdout
    assert "A second paragraph, shown with -v only." in verbose
    assert "_private -- conftest.py:" in verbose
