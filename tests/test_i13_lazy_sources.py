"""A module the experiment imports only when it runs (``from helper import f`` inside the
function) is still the run's code: the session stores it, so that outside Git a later edit
of it does not reach ``xprun reproduce``."""

from __future__ import annotations

import json

import pytest
from conftest import Project

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

LAZY = """
import xprun

@xprun.config({"x": 3})
def xp_calc(config):
    from lazyhelper import scale  # imported when the run runs, not at collection

    return {"y": scale(config.x)}
"""


def test_i13_lazy_sources_a_module_imported_inside_the_experiment_is_stored(
    project: Project,
) -> None:
    project.write("xp_calc.py", LAZY)
    project.write("lazyhelper.py", "def scale(x):\n    return x * 7\n")
    assert project.run("-q").returncode == 0
    (run_dir,) = project.run_dirs()
    record = json.loads((run_dir / "run.json").read_text())
    sessions = project.log_dir / ".xprun-sessions"
    session = json.loads((sessions / f"{record['session']}.json").read_text())
    assert sorted(session["sources"]) == ["lazyhelper.py", "xp_calc.py"]
    project.write("lazyhelper.py", "def scale(x):\n    return x * 11\n")
    result = project.run("reproduce", "--check", record["hash"])
    assert result.returncode == 0, result.output
    assert "outcome agrees (exactly)" in result.stdout
