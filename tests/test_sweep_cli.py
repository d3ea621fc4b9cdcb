"""The foundation's promise through the CLI: a sweep runs once, then is cached."""

from __future__ import annotations

import json

import pytest
import yaml

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

SWEEP = """
    import xprun

    @xprun.config({"lr": 0.1, "optimizer": "sgd", "width": 8})
    @xprun.grid(lr=[0.1, 0.01], optimizer=["sgd", "adam", "rmsprop"])
    def xp_train(config, scale):
        return {"score": config.lr * scale, "optimizer": config.optimizer}
"""

CONFTEST = """
    import xprun

    @xprun.fixture
    def scale(config):
        return config.width * 2
"""


def make_sweep(project):
    project.write("conftest.py", CONFTEST)
    project.write("xp_sweep.py", SWEEP)


def test_sweep_runs_each_config_once_in_its_own_hash_dir(project):
    make_sweep(project)
    result = project.run()
    assert result.returncode == 0, result.output
    assert "6 complete" in result.stdout
    dirs = project.run_dirs("xp_sweep.xp_train")
    assert len(dirs) == 6
    seen = set()
    for d in dirs:
        record = json.loads((d / "run.json").read_text())
        config = yaml.safe_load((d / "config.yaml").read_text())
        outcome = json.loads((d / "outcome.json").read_text())
        assert record["status"] == "complete"
        assert record["digest"] == f"xxh3_128:{d.name}"
        assert outcome == {"score": config["lr"] * 16, "optimizer": config["optimizer"]}
        assert config["width"] == 8 and config["seed"] == 0
        seen.add((config["lr"], config["optimizer"]))
    assert len(seen) == 6

    again = project.run()
    assert again.returncode == 0, again.output
    assert "6 cached" in again.stdout and "complete" not in again.stdout.split("\n")[-2]
    assert len(project.run_dirs()) == 6

    more = project.run("lr=0.5")
    assert more.returncode == 0, more.output
    assert "3 complete" in more.stdout and "cached" not in more.stdout
    lrs = sorted(r["nodeid"] for r in project.records())
    assert len(lrs) == 9

    listing = project.run("--collect-only", "lr=0.1,0.5,0.7")
    assert listing.returncode == 0, listing.output
    lines = [line for line in listing.stdout.splitlines() if "xp_train[" in line]
    assert len(lines) == 9
    states = {}
    for line in lines:
        state, digest, nodeid = line.split()
        assert len(digest) == 32
        states[nodeid] = state
    assert sum(s == "complete" for s in states.values()) == 6  # lr=0.1 and lr=0.5
    assert sum(s == "new" for s in states.values()) == 3  # lr=0.7
    assert len(project.run_dirs()) == 9  # --collect-only created nothing


def test_force_reruns_complete_runs(project):
    make_sweep(project)
    assert project.run().returncode == 0
    result = project.run("--force", "-k", "adam")
    assert result.returncode == 0, result.output
    assert "2 complete" in result.stdout
    attempts = sorted(r["attempt"] for r in project.records())
    assert attempts == [1, 1, 1, 1, 2, 2]


def test_keyword_selects_by_node_id_and_config_items(project):
    make_sweep(project)
    result = project.run("--collect-only", "-q", "-k", "lr=0.01 and not adam")
    assert result.returncode == 0, result.output
    ids = sorted(line.split()[-1] for line in result.stdout.splitlines() if "::" in line)
    assert ids == [
        "xp_sweep.py::xp_train[lr=0.01-optimizer=rmsprop]",
        "xp_sweep.py::xp_train[lr=0.01-optimizer=sgd]",
    ]
    none = project.run("-k", "nothing_matches_this")
    assert none.returncode == 5, none.output


def test_node_id_arguments_select_experiments_and_runs(project):
    make_sweep(project)
    project.write(
        "sub/xp_other.py",
        """
        def xp_one():
            return {"x": 1}

        def xp_two():
            return {"x": 2}
        """,
    )
    result = project.run("sub/xp_other.py::xp_two")
    assert result.returncode == 0, result.output
    assert [r["nodeid"] for r in project.records()] == ["sub/xp_other.py::xp_two"]
    result = project.run("xp_sweep.py::xp_train[lr=0.1-optimizer=adam]")
    assert result.returncode == 0, result.output
    assert "1 complete" in result.stdout
    assert len(project.records("xp_sweep.xp_train")) == 1


def test_nothing_collected_exits_5(project):
    project.write("notes.py", "x = 1\n")
    result = project.run()
    assert result.returncode == 5
    assert "collected 0 runs" in result.stdout


def test_exitfirst_stops_after_first_failure(project):
    project.write(
        "xp_fail.py",
        """
        import xprun

        @xprun.grid(i=[0, 1, 2, 3])
        def xp_f(config):
            if config.i == 1:
                raise ValueError("boom at one")
            return {"i": config.i}
        """,
    )
    result = project.run("-x")
    assert result.returncode == 1
    assert "1 complete, 1 failed" in result.stdout
    assert "ValueError: boom at one" in result.stdout
    result = project.run()
    assert result.returncode == 1
    assert "2 complete, 1 cached, 1 failed" in result.stdout
