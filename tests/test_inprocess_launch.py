"""tests/launch.py: a launch in the test's process gives what ``python -m xprun`` gives, and
leaves the process as it found it (docs/quality.md, "CI time", third pass)."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import warnings

import launch
import pytest
from conftest import Project

EXPERIMENT = """
import logging, os, sys, warnings
import helper
import xprun

logging.basicConfig(level=logging.INFO)  # a fresh process's root logger has no handler

@xprun.config({"x": 0})
@xprun.grid(x=[0, 1, 2])
def xp_f(config, logger):
    print("out", helper.VALUE, config.x, os.environ.get("ONLY_HERE"))
    print("err", config.x, file=sys.stderr)
    logging.getLogger("user").info("logged %s", config.x)
    warnings.warn("deprecated here", DeprecationWarning)  # ignored, as in a fresh process
    logger.log_metrics({"loss": config.x})
    if config.x == 2:
        raise ValueError("two")
    return {"x": config.x}
"""


def _normalized(text: str, root: Project) -> str:
    """Output without what differs from launch to launch: the folder, durations, hashes."""
    text = text.replace(str(root.root), "ROOT")
    text = re.sub(r"\d+\.\d+s", "Ns", text)
    text = re.sub(r"[0-9a-f]{32}|[0-9a-f]{8,}", "H", text)
    return re.sub(r"\b\d{3,}\b", "N", text)


def _session(project: Project, inprocess: bool) -> list[tuple[int, str, str]]:
    project.write("helper.py", "VALUE = 'v1'\n")
    project.write("xp_f.py", EXPERIMENT)
    results = []
    for args, env in [
        (("-q",), {"ONLY_HERE": "yes"}),
        (("-q", "--lf"), {}),
        (("show", "--format", "csv"), {}),
        (("--collect-only", "-k", "x=1"), {}),
        (("-k", "nothing matches"), {}),
        (("--no-such-option",), {}),
        (("show", "--help"), {}),
    ]:
        r = project.run(*args, env=env, inprocess=inprocess)
        results.append(
            (r.returncode, _normalized(r.stdout, project), _normalized(r.stderr, project))
        )
    return results


def test_inprocess_launch_gives_what_the_subprocess_gives(tmp_path):
    """Exit codes, stdout and stderr of a session of commands (runs that print, log, warn and
    fail; --lf; show; a usage error; help), launched both ways in two copies of a project."""
    inproc = _session(Project(tmp_path / "a" / "proj"), inprocess=True)
    sub = _session(Project(tmp_path / "b" / "proj"), inprocess=False)
    assert [r[0] for r in sub] == [1, 1, 0, 0, 4, 4, 0]  # the session did what it says
    assert inproc == sub


def test_inprocess_launch_leaves_the_process_as_it_found_it(tmp_path, monkeypatch):
    """Directory, environment, sys.path, modules, signal handlers, logging, warnings filters and
    threads are those before the launch; the project's modules are imported afresh by the next
    launch (a second project with the same module names sees its own)."""
    monkeypatch.setenv("KEPT", "1")
    handler = signal.getsignal(signal.SIGTERM)
    before = (
        os.getcwd(),
        dict(os.environ),
        list(sys.path),
        None,
        warnings.filters[:],
        list(threading.enumerate()),
        __import__("logging").root.handlers[:],
    )
    outputs = []
    for name, value in (("a", "first"), ("b", "second")):
        project = Project(tmp_path / name, inprocess=True)
        project.write("helper.py", f"VALUE = {value!r}\n")
        project.write("xp_f.py", EXPERIMENT)
        result = project.run("-q", "-k", "x=0", "-s", env={"ONLY_HERE": name})
        assert result.returncode == 0, result.output
        outputs.append(result.stdout)
    assert "out first 0 a" in outputs[0] and "out second 0 b" in outputs[1]
    after = (
        os.getcwd(),
        dict(os.environ),
        list(sys.path),
        None,  # installed packages imported by the launches stay: checked below instead
        warnings.filters[:],
        list(threading.enumerate()),
        __import__("logging").root.handlers[:],
    )
    assert "helper" not in sys.modules and "xp_f" not in sys.modules
    assert after == before
    assert signal.getsignal(signal.SIGTERM) is handler


def test_inprocess_launch_drops_the_import_blockers_it_set(tmp_path):
    """A project's conftest.py that plays "not installed" (``sys.modules[name] = None``, as
    test_i14_search's optuna test does) blocks the import in the call only: the next tests of
    the process still import the package (the launcher kept the None, found by that test)."""
    assert "xprun_never_imported" not in sys.modules
    project = Project(tmp_path / "proj", inprocess=True)
    project.write("conftest.py", "import sys\nsys.modules['xprun_never_imported'] = None\n")
    project.write("xp_f.py", "import xprun\n\ndef xp_f():\n    return {}\n")
    result = project.run("-q")
    assert result.returncode == 0, result.output
    assert "xprun_never_imported" not in sys.modules


@pytest.mark.parametrize(
    ("args", "env"),
    [(("-n", "2"), {}), (("-n2",), {}), (("--pdb",), {}), ((), {"PYTHONPATH": "/x"})],
)
def test_inprocess_launch_leaves_the_pool_pdb_and_python_variables_to_a_process(args, env):
    assert launch.needs_process(args, env)
    assert not launch.needs_process(("-q", "-k", "n"), {})
