"""Issue 12 as a demanding new user tries it: its features combined (a file and a node id
of it, ...), each defect found pinned through the real command line."""

from __future__ import annotations

import re

from conftest import Project

SWEEP = """
import xprun

@xprun.config({"lr": 0.1, "opt": "sgd"})
@xprun.grid(lr=[0.1, 1.0], opt=["sgd", "adam"])
def xp_train(config):
    return {"loss": config.lr}
"""


def test_i12_user_file_and_node_id_of_it(project: Project) -> None:
    """``xprun xp_train.py "xp_train.py::xp_train[...]"`` (a file and a run of it, as pytest
    takes ``test_a.py test_a.py::test_x``) collects the file: the node id names a run of it,
    so it is not "not found"; a node id that names no run still is."""
    project.write("xp_train.py", SWEEP)
    nodeid = "xp_train.py::xp_train[lr=0.1-opt=sgd]"
    both = project.run("xp_train.py", nodeid, "--collect-only")
    assert both.returncode == 0, both.output
    assert both.stdout.count("xp_train.py::xp_train[") == 4, both.output
    by_hash = project.run(
        "xp_train.py", re.findall(r"\b[0-9a-f]{32}\b", both.stdout)[0][:8], "--collect-only"
    )
    assert by_hash.returncode == 0, by_hash.output
    wrong = project.run("xp_train.py", "xp_train.py::xp_train[lr=0.5-opt=sgd]", "--co")
    assert wrong.returncode == 4 and "not found: xp_train.py::xp_train[lr=0.5" in wrong.stderr
