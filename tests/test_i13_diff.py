"""Issue 13, section 4: ``xprun diff A B``, through the command line with real runs.

Expected numbers are read from the run directories (``outcome.json``, the metric lines), never
written into the tests: a diff that took the wrong run, the wrong step or the wrong sign
fails them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project, launches_inprocess

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

SWEEP = """
import xprun
import helper

@xprun.config({"lr": 0.1, "opt": {"name": "sgd", "momentum": 0.9}, "epochs": 3, "seed": 0})
@xprun.grid(lr=[0.1, 0.01])
def xp_train(config, logger):
    for epoch in range(config.epochs):
        logger.log_metrics({"loss": helper.scale(config.lr) / (epoch + 1), "epochs_done": epoch},
                           step=epoch)
    logger.log_metrics({"acc": 1 - config.lr}, step=0, name="test")
    return {"loss": helper.scale(config.lr), "tag": "same", "n": 7}
"""
HELPER = """
def scale(x):
    return 3 * x
"""
# A module of the project that the experiment above does not import (xp_other does, so the
# launch has it in its sources all the same).
OTHER = """
def unrelated():
    return 1
"""
XP_OTHER = """
import xprun
import other

@xprun.config({"lr": 0.0})  # so that `lr=0.5` is an override of both experiments
def xp_other():
    return {"v": other.unrelated()}
"""


def _project(project: Project) -> Project:
    project.write("helper.py", HELPER)
    project.write("other.py", OTHER)
    project.write("xp_train.py", SWEEP)
    project.write("xp_other.py", XP_OTHER)
    return project


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Project:
    """The sweep, launched once for the tests that only read it."""
    root = tmp_path_factory.mktemp("swept") / "proj"
    project = _project(Project(root, launches_inprocess(request.node)))
    _ok(project, "xp_train.py")
    return project


def _ok(project: Project, *args: str) -> str:
    result = project.run(*args)
    assert result.returncode == 0, result.output
    return result.stdout


def _diff_json(project: Project, *args: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(_ok(project, "diff", *args, "--format", "json"))
    return found


def _runs(project: Project) -> dict[float, Path]:
    """The sweep's run directories by their learning rate."""
    found = {}
    for run_dir in project.run_dirs("xp_train.xp_train"):
        config = (run_dir / "config.yaml").read_text()
        lr = next(float(line.split(":")[1]) for line in config.splitlines() if line[:3] == "lr:")
        found[lr] = run_dir
    return found


def _outcome(run_dir: Path) -> dict[str, Any]:
    outcome: dict[str, Any] = json.loads((run_dir / "outcome.json").read_text())
    return outcome


def _last(run_dir: Path, metric: str, name: str = "metrics") -> float:
    lines = (run_dir / "metrics" / f"{name}.jsonl").read_text().splitlines()
    value: float = [json.loads(line) for line in lines if metric in json.loads(line)][-1][metric]
    return value


def _entries(found: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    entries = found[section]["changed"] if section == "packages" else found[section]
    return {entry["key"]: entry for entry in entries}


def _rewrite_record(run_dir: Path, change: Any) -> None:
    """Edit a run.json as a file another machine or an older xprun wrote (atomically: a
    rename, as xprun writes it, so the Reader sees the directory changed)."""
    path = run_dir / "run.json"
    record = json.loads(path.read_text())
    change(record)
    tmp = run_dir / ".run.json.edit.tmp"
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)


def test_i13_diff_grid_points_differ_in_their_swept_key_only(swept: Project) -> None:
    project = swept
    runs = _runs(project)
    a, b = runs[0.1], runs[0.01]
    found = _diff_json(project, a.name[:8], b.name[:8])

    assert found["mode"] == "runs" and not found["identical"]
    assert [r["hash"] for r in found["a"]["runs"]] == [a.name]
    assert [r["hash"] for r in found["b"]["runs"]] == [b.name]
    # Exactly the swept key, with both values; nested keys that agree are not listed.
    assert found["config"] == [{"key": "config.lr", "a": 0.1, "b": 0.01}]
    assert found["status"] == [] and found["environment"] == []
    assert found["packages"]["changed"] == []

    # Outcome: the numbers that differ, with B - A; equal keys (tag, n) are left out.
    oa, ob = _outcome(a), _outcome(b)
    assert oa["loss"] != ob["loss"]
    assert _entries(found, "outcome") == {
        "outcome.loss": {
            "key": "outcome.loss",
            "a": oa["loss"],
            "b": ob["loss"],
            "delta": ob["loss"] - oa["loss"],
        }
    }
    # Final metrics: the last value of each metric, from every metrics file; a metric whose
    # last value is the same in both runs (epochs_done) is left out.
    metrics = _entries(found, "metrics")
    assert set(metrics) == {"metrics.loss.last", "metrics.test:acc.last"}
    loss = metrics["metrics.loss.last"]
    assert (loss["a"], loss["b"]) == (_last(a, "loss"), _last(b, "loss"))
    assert loss["delta"] == _last(b, "loss") - _last(a, "loss")
    acc = metrics["metrics.test:acc.last"]
    assert acc["delta"] == _last(b, "acc", "test") - _last(a, "acc", "test")
    assert set(found["differs"]) == {"config", "outcome", "metrics"}

    # The text: the swept key and no other config key, aligned, a line for each equal section.
    text = _ok(project, "diff", a.name, b.name)
    lines = text.splitlines()
    assert lines[0].startswith(f"A  {a.name[:12]}") and lines[1].startswith(f"B  {b.name[:12]}")
    config_rows = [line for line in lines if line.strip().startswith("config.")]
    assert len(config_rows) == 1 and config_rows[0].split() == ["config.lr", "0.1", "0.01"]
    assert "outcome.tag" not in text and "outcome.n " not in text
    assert "status: same" in lines and "environment: same" in lines
    loss_row = next(line for line in lines if line.strip().startswith("outcome.loss"))
    assert loss_row.split()[-1] == f"{ob['loss'] - oa['loss']:+.4g}"
    # Aligned: the A column starts at one place in every row of a table.
    table = lines[lines.index("final metrics:") + 1 : lines.index("final metrics:") + 4]
    starts = {row.index(row.split()[1], len(row.split()[0]) + 2) for row in table}
    assert len(starts) == 1, table


def test_i13_diff_identical_runs_say_so(swept: Project) -> None:
    project = swept
    a = _runs(project)[0.1]
    result = project.run("diff", a.name, "xp_train.py::xp_train[lr=0.1]")
    assert result.returncode == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and lines[2].startswith("identical: same config"), lines
    assert "code" in lines[2]
    found = _diff_json(project, a.name, a.name[:6])
    assert found["identical"] is True and found["differs"] == []
    for section in ("config", "status", "outcome", "metrics", "environment"):
        assert found[section] == []


def test_i13_diff_code_of_imported_files_only(project: Project) -> None:
    """A run, then an edit of a module the experiment imports (helper.py) and of one it does
    not (other.py, imported by another experiment of the same launch), then a second run:
    the code diff lists the imported file, with the edit, and nothing of the other."""
    _ok(_project(project))
    a = _runs(project)[0.1]
    project.write("helper.py", HELPER.replace("3 * x", "4 * x"))
    project.write("other.py", OTHER.replace("return 1", "return 2"))
    _ok(project, "lr=0.5")
    b = _runs(project)[0.5]

    found = _diff_json(project, a.name, b.name)
    code = found["code"]
    assert code["recorded"] == {"a": True, "b": True}
    assert [f["path"] for f in code["files"]] == ["helper.py"], code
    helper = code["files"][0]
    assert helper["change"] == "modified" and helper["a"] != helper["b"]
    assert "-    return 3 * x\n+    return 4 * x\n" in helper["diff"]
    assert helper["diff"].startswith("--- a/helper.py\n+++ b/helper.py\n")
    assert "code" in found["differs"]
    # The experiment's own module, unchanged, is counted but not listed.
    assert code["count"] >= 2

    text = _ok(project, "diff", a.name, b.name)
    assert "code: 1 of" in text and "helper.py: modified" in text
    assert "+    return 4 * x" in text
    assert "other.py" not in text and "unrelated" not in text

    # Markdown: the changed file in a table, its diff in a fenced block.
    markdown = _ok(project, "diff", a.name, b.name, "--format", "markdown")
    assert "| `helper.py` | modified |" in markdown
    assert "```diff\n--- a/helper.py" in markdown


def test_i13_diff_comment_only_edit_is_formatting_new_import_is_added(project: Project) -> None:
    """An edit of a comment changes the bytes but not the normalized digest: listed as
    formatting only, so nobody reads it as a change of the code that ran.  A module that only
    B imports is added (and deleted, seen from the other side), diffed against nothing."""
    _ok(_project(project), "xp_train.py")
    a = _runs(project)[0.1]
    project.write("helper.py", HELPER.replace("return 3 * x", "return 3 * x  # tripled"))
    project.write("extra.py", "WIDTH = 5\n")
    project.write("xp_train.py", "import extra\n" + SWEEP)
    _ok(project, "xp_train.py", "lr=0.5")
    b = _runs(project)[0.5]
    files = {f["path"]: f for f in _diff_json(project, a.name, b.name)["code"]["files"]}
    changes = {path: f["change"] for path, f in files.items()}
    assert changes == {"extra.py": "added", "helper.py": "formatting", "xp_train.py": "modified"}
    assert files["helper.py"]["a"] == files["helper.py"]["b"]
    assert "+    return 3 * x  # tripled" in files["helper.py"]["diff"]
    assert files["extra.py"]["diff"].startswith("--- /dev/null\n+++ b/extra.py\n")
    assert "a" not in files["extra.py"] or files["extra.py"]["a"] is None
    assert "+import extra\n" in files["xp_train.py"]["diff"]
    back = {f["path"]: f["change"] for f in _diff_json(project, b.name, a.name)["code"]["files"]}
    assert back["extra.py"] == "deleted"


def test_i13_diff_format1_runs_say_code_not_recorded(project: Project) -> None:
    """A run directory of format 1 (written before the code was recorded: made here by
    stripping a new record, as no current xprun writes one) still diffs on what it has."""
    _ok(_project(project), "xp_train.py")
    runs = _runs(project)
    a, b = runs[0.1], runs[0.01]

    def format1(record: dict[str, Any]) -> None:
        record["format"] = 1
        for key in ("session", "snapshot", "code"):
            record.pop(key, None)

    _rewrite_record(a, format1)
    found = _diff_json(project, a.name, b.name)
    assert found["code"]["recorded"] == {"a": False, "b": True}
    assert found["code"]["files"] == []
    assert found["config"] == [{"key": "config.lr", "a": 0.1, "b": 0.01}]
    assert "outcome.loss" in _entries(found, "outcome")
    text = _ok(project, "diff", a.name, b.name)
    assert "code: not recorded for A" in text


def test_i13_diff_packages_and_host(project: Project) -> None:
    """Runs made on another machine: a test cannot launch one, so B's run.json is edited as
    that machine would have written it (another host, other package versions).  A run of
    the local pool differs from an inline one in its scheduler alone."""
    _ok(_project(project), "xp_train.py")
    runs = _runs(project)
    a, b = runs[0.1], runs[0.01]
    recorded = json.loads((b / "run.json").read_text())
    assert "fakepkg" not in recorded["packages"]  # installed nowhere...

    def elsewhere(record: dict[str, Any]) -> None:
        record["host"] = "gpu-node-7"
        record["packages"]["fakepkg"] = "0.0.1"  # ...so B's alone
        record["packages"]["PyYAML"] = "1.0"

    _rewrite_record(b, elsewhere)
    # A distribution A did not import is still installed for A, at B's version: no difference
    # (the session's list of every installed one says so, under its normalized name).
    assert "omegaconf" in recorded["packages"]
    _rewrite_record(a, lambda record: record["packages"].pop("omegaconf"))
    found = _diff_json(project, a.name, b.name)
    assert found["packages"]["source"] == "installed"
    environment = _entries(found, "environment")
    assert set(environment) == {"host"}
    assert environment["host"]["b"] == "gpu-node-7"
    assert environment["host"]["a"] == json.loads((a / "run.json").read_text())["host"]
    packages = _entries(found, "packages")
    # By normalized name (as the session's distributions are): PyYAML is pyyaml.
    assert packages["pyyaml"]["b"] == "1.0"
    assert packages["pyyaml"]["a"] == recorded["packages"]["PyYAML"]
    assert packages["fakepkg"]["b"] == "0.0.1" and "a" not in packages["fakepkg"]
    assert set(packages) == {"pyyaml", "fakepkg"}  # nothing else differs

    text = _ok(project, "diff", a.name, b.name)
    host_row = next(line for line in text.splitlines() if line.strip().startswith("host"))
    assert host_row.split()[-1] == "gpu-node-7"
    assert "environment: same" not in text and "packages: same" not in text

    _ok(project, "xp_train.py", "lr=0.5", "-n", "2")
    pooled = _runs(project)[0.5]
    found = _diff_json(project, a.name, pooled.name)
    environment = _entries(found, "environment")
    assert set(environment) == {"scheduler"}, environment  # python_folder included: the same
    assert (environment["scheduler"]["a"], environment["scheduler"]["b"]) == ("inline", "local")
    assert found["code"]["files"] == [] and found["code"]["recorded"] == {"a": True, "b": True}
    assert found["packages"]["changed"] == []


def test_i13_diff_markdown_is_tables(swept: Project) -> None:
    project = swept
    runs = _runs(project)
    markdown = _ok(project, "diff", runs[0.1].name, runs[0.01].name, "-f", "markdown")
    lines = markdown.splitlines()
    assert lines[0] == "|  | A | B |" and lines[1] == "| --- | --- | --- |"
    at = lines.index("### config")
    assert lines[at + 2 : at + 5] == [
        "| key | A | B | B - A |",
        "| --- | --- | --- | --- |",
        "| config.lr | 0.1 | 0.01 |  |",
    ]
    assert "### outcome" in lines and "### final metrics" in lines
    # Every row of a table has as many cells as its header.
    tables: list[list[int]] = [[]]
    for line in lines:
        if line.startswith("|"):
            tables[-1].append(len(re.split(r"(?<!\\)\|", line)))
        elif tables[-1]:
            tables.append([])
    assert len(tables) >= 4 and all(len(set(cells)) == 1 for cells in tables if cells), tables


def test_i13_diff_two_queries(project: Project) -> None:
    """Two groups: the keys each group holds constant and that differ, a key swept inside
    both groups left out, outcome means with their counts, status counts."""
    project.write(
        "xp_q.py",
        """
        import xprun

        @xprun.config({"lr": 0.1, "opt": "sgd", "seed": 0})
        @xprun.grid(lr=[0.1, 0.01], opt=["sgd", "adam"], seed=[0, 1])
        def xp_q(config):
            bonus = 0.5 if config.opt == "adam" else 0.0
            return {"score": config.lr * (config.seed + 1) + bonus, "kind": config.opt}
        """,
    )
    _ok(project)
    found = _diff_json(project, "config.opt == 'sgd'", "config.opt == 'adam' and config.lr < 0.1")
    assert found["mode"] == "groups"
    assert len(found["a"]["runs"]) == 4 and len(found["b"]["runs"]) == 2
    config = _entries(found, "config")
    # opt: constant on each side, different; lr: swept in A, constant in B; seed: swept in both.
    assert set(config) == {"config.opt", "config.lr"}
    assert (config["config.opt"]["a"], config["config.opt"]["b"]) == ("sgd", "adam")
    assert config["config.lr"] == {"key": "config.lr", "a_varies": True, "b": 0.01}

    scores: dict[str, list[float]] = {"a": [], "b": []}
    for side in ("a", "b"):
        for run in found[side]["runs"]:
            scores[side].append(_outcome(Path(run["path"]))["score"])
    mean_a, mean_b = (sum(s) / len(s) for s in (scores["a"], scores["b"]))
    score = _entries(found, "outcome")["outcome.score"]
    assert score["a_count"] == 4 and score["b_count"] == 2
    assert abs(score["a"] - mean_a) < 1e-12 and abs(score["b"] - mean_b) < 1e-12
    assert abs(score["delta"] - (mean_b - mean_a)) < 1e-12
    assert _entries(found, "outcome")["outcome.kind"]["b"] == "adam"
    status = _entries(found, "status")
    assert status["runs"] == {"key": "runs", "a": 4, "b": 2, "delta": -2}
    assert status["complete"]["delta"] == -2

    text = _ok(project, "diff", "config.opt == 'sgd'", "xp_q.py::xp_q")
    assert "(4 runs)" in text and "(8 runs)" in text
    lr_row = next(line for line in text.splitlines() if line.strip().startswith("config.opt"))
    assert lr_row.split()[1:] == ["sgd", "(varies)"]
    assert "config.lr" not in text and "config.seed" not in text  # swept on both sides


def test_i13_diff_unknown_names_exit_4(swept: Project) -> None:
    project = swept
    runs = _runs(project)
    a = runs[0.1].name
    unknown = next(
        c * 12 for c in "0123456789abcdef" if not any(c * 4 == r.name[:4] for r in runs.values())
    )
    for args, word in (
        ((unknown, a), unknown),  # a hash no run has
        ((a, "xp_train.py::xp_train[lr=0.7]"), "lr=0.7"),  # a node id no run has
        (("config.lr > 5", a), "config.lr > 5"),  # a query matching nothing
        ((a, "config.lr >"), "config.lr >"),  # not a query
    ):
        result = project.run("diff", *args)
        assert result.returncode == 4, (word, result.output)
        assert result.stdout == ""
        assert "ERROR:" in result.stderr and word in result.stderr, result.stderr
    result = project.run("diff", a, a, "--log-dir", "nowhere")
    assert result.returncode == 4 and "nowhere" in result.stderr


def test_i13_diff_damaged_run_exit_4(project: Project) -> None:
    """A run the Reader cannot read (its config.yaml overwritten with what is not YAML) is
    a usage error naming it and why, with nothing printed on stdout: never a diff made
    of half a run."""
    _ok(_project(project), "xp_train.py")
    runs = _runs(project)
    a, b = runs[0.1], runs[0.01]
    (b / "config.yaml").write_text("lr: [unclosed\n")
    result = project.run("diff", a.name, b.name)
    assert result.returncode == 4, result.output
    assert result.stdout == ""
    assert str(b) in result.stderr and "config.yaml" in result.stderr, result.stderr


def test_i13_diff_values_compare_as_identity_does(project: Project) -> None:
    """1 and 1.0 are one value (as the run hash says), True is not 1, and NaN equals NaN:
    two experiments whose configs and outcomes differ only so list the booleans alone."""
    project.write(
        "xp_values.py",
        """
        import xprun

        @xprun.config({"x": 1, "flag": True})
        def xp_a(config):
            return {"nan": float("nan"), "n": 2, "flag": True}

        @xprun.config({"x": 1.0, "flag": 1})
        def xp_b(config):
            return {"nan": float("nan"), "n": 2.0, "flag": 1}
        """,
    )
    _ok(project)
    found = _diff_json(project, "xp_values.py::xp_a", "xp_values.py::xp_b")
    assert found["mode"] == "runs"
    assert found["config"] == [{"key": "config.flag", "a": True, "b": 1}]
    assert found["outcome"] == [{"key": "outcome.flag", "a": True, "b": 1}]


def test_i13_diff_groups_code_one_version_each_or_varies(project: Project) -> None:
    """Two groups that each ran one version of a file get its diff; a group whose runs ran
    two versions says the file varies inside it rather than pick one."""
    _ok(_project(project), "xp_train.py")  # lr=0.1 and lr=0.01 with helper v1
    project.write("helper.py", HELPER.replace("3 * x", "5 * x"))
    _ok(project, "xp_train.py", "lr=0.5,0.7")  # with helper v2
    found = _diff_json(project, "config.lr < 0.5", "config.lr >= 0.5")
    assert found["mode"] == "groups"
    (helper,) = found["code"]["files"]
    assert helper["path"] == "helper.py" and helper["change"] == "modified"
    assert "+    return 5 * x" in helper["diff"]
    found = _diff_json(project, "xp_train.py::xp_train", "config.lr == 0.5")
    (helper,) = found["code"]["files"]
    assert helper["change"] == "varies" and len(helper["a"]) == 2 and len(helper["b"]) == 1
    assert helper["b"][0] in helper["a"]
