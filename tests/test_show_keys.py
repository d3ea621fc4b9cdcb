"""A key given twice to ``xprun show`` or ``Reader.groupby`` counts once (it used to stop
with pandas' own "cannot insert config.x, already exists")."""

from __future__ import annotations

import pytest

import xprun

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

SWEEP = """
import xprun

@xprun.grid(x=[1, 2], seed=[0, 1])
def xp_keys(config):
    return {"v": config.x * 10 + config.seed}
"""


def test_show_a_key_repeated_in_group_by_or_columns_counts_once(project):
    project.write("xp_keys.py", SWEEP)
    assert project.run("-q").returncode == 0
    once = project.run("show", "-g", "config.x", "-c", "outcome.v")
    assert once.returncode == 0, once.output
    assert "10.5" in once.stdout and "20.5" in once.stdout  # the means of v per x
    for args in (
        ["-g", "config.x", "-g", "config.x", "-c", "outcome.v"],
        ["-g", "config.x,config.x", "-c", "outcome.v,outcome.v"],
        ["--group-by", "config.x", "-c", "outcome.v", "-c", "outcome.v"],
    ):
        twice = project.run("show", *args)
        assert twice.returncode == 0, twice.output
        assert twice.stdout == once.stdout, args


def test_reader_groupby_a_key_given_twice_counts_once(project):
    project.write("xp_keys.py", SWEEP)
    assert project.run("-q").returncode == 0
    runs = xprun.Reader(project.log_dir)
    once = runs.groupby("config.x").agg(v=("outcome.v", "mean")).reset_index()
    twice = runs.groupby("config.x", "config.x").agg(v=("outcome.v", "mean")).reset_index()
    assert list(twice.columns) == ["config.x", "v"]
    assert twice.to_dict("list") == once.to_dict("list") == {"config.x": [1, 2], "v": [10.5, 20.5]}
