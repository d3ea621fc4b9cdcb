"""Issue 12, run selection: node ids and hashes (first-day item 1), decorated functions that
are not collected (item 9), and selection from history (``--lf``, ``--ff``, ``--nf``,
``--sw``, ``--sw-skip``, ``--maxfail``, ``--order``), all through the real command line."""

from __future__ import annotations

import json
import re

from conftest import Project

SWEEP = """
import xprun

@xprun.config({"lr": 0.1, "optimizer": "sgd", "seed": 0})
@xprun.grid(lr=[0.1, 0.01, 0.001], optimizer=["sgd", "adam"])
def xp_train(config):
    if config.lr == 0.1 and config.optimizer == "adam":
        raise ValueError("diverged")
    return {"loss": config.lr}
"""


def listed(result) -> list[tuple[str, str, str]]:
    """(status, hash, node id) of each run a ``--collect-only`` listing shows."""
    return re.findall(r"^(\w[\w ]*?)\s+([0-9a-f]{32})  (\S+)$", result.stdout, re.MULTILINE)


def record_of(project: Project, **config) -> dict:
    """The run.json of the run whose config holds ``config``."""
    for path in project.log_dir.glob("*/*/run.json"):
        cfg = (path.parent / "config.yaml").read_text()
        if all(re.search(rf"^{k}: {v}$", cfg, re.MULTILINE) for k, v in config.items()):
            return json.loads(path.read_text())
    raise AssertionError(f"no run with {config}")


# -- first-day item 1: node ids and hashes ----------------------------------------------------


def test_i12_01_nodeid_copied_from_run_json_selects_its_run(project):
    """run.json's node id names the keys that varied in the launch that made it (here the
    seeds of a command-line sweep); pasted into a launch without that sweep, it still
    selects its run, and only it."""
    project.write("xp_t.py", SWEEP)
    assert project.run("seed=0,1").returncode == 1  # two configs diverge
    record = record_of(project, lr=0.01, optimizer="adam", seed=0)
    assert record["nodeid"] == "xp_t.py::xp_train[lr=0.01-optimizer=adam-seed=0]"
    result = project.run(record["nodeid"], "--collect-only")
    assert result.returncode == 0, result.output
    assert [(s, h) for s, h, _ in listed(result)] == [("complete", record["hash"])]
    # and it runs that run only (--force: it is complete)
    result = project.run(record["nodeid"], "--force", "-v")
    assert result.returncode == 0, result.output
    assert result.stdout.count(" COMPLETE ") == 1
    assert "xp_t.py::xp_train[lr=0.01-optimizer=adam] COMPLETE" in result.stdout


def test_i12_01_nodeid_from_collect_only_in_a_subfolder(project):
    """Inside a subfolder, a node id relative to it and the id as printed from the rootdir
    (``sub/xp_a.py::...``) select the same single run; from the rootdir too."""
    project.write("sub/xp_a.py", SWEEP.replace("xp_train", "xp_a"))
    everything = listed(project.run("--collect-only"))
    assert len(everything) == 6
    _, digest, nodeid = everything[3]
    assert nodeid == "sub/xp_a.py::xp_a[lr=0.01-optimizer=adam]"
    sub = project.root / "sub"
    for word, cwd in [
        (nodeid, project.root),
        (nodeid, sub),
        (nodeid.removeprefix("sub/"), sub),
    ]:
        result = project.run(word, "--collect-only", cwd=cwd)
        assert result.returncode == 0, (word, cwd, result.output)
        assert [h for _, h, _ in listed(result)] == [digest], (word, cwd)


def test_i12_01_nodeid_that_matches_nothing_is_not_found_before_anything_runs(project):
    project.write("xp_t.py", SWEEP)
    for word in ["xp_t.py::xp_nope", "xp_t.py::xp_train[lr=0.5-optimizer=sgd]"]:
        result = project.run("xp_t.py", word)  # a good path beside it: still nothing runs
        assert result.returncode == 4, result.output
        assert f"ERROR: not found: {word}" in result.stderr
        assert not project.log_dir.exists()
    result = project.run("xp_t.py::xp_train[lr=0.01-optimizer=sgd-seed=3]")
    assert result.returncode == 4
    assert "seed=3" in result.stderr.split("not found:", 1)[1]  # says which value no run has
    assert not project.log_dir.exists()


def test_i12_01_hash_or_prefix_from_xprun_show_selects_its_run(project):
    project.write("xp_t.py", SWEEP)
    project.write("sub/xp_other.py", SWEEP.replace("xp_train", "xp_other"))
    assert project.run().returncode == 1
    shown = project.run("show", "--where", "status == failed", "-e", "xp_t.xp_train")
    prefix = re.search(r"\b([0-9a-f]{12})\b", shown.stdout).group(1)
    failed = record_of(project, lr=0.1, optimizer="adam")
    assert failed["hash"].startswith(prefix)
    for word in (prefix, failed["hash"], failed["hash"][:6]):
        result = project.run(word, "--collect-only")
        assert [h for _, h, _ in listed(result)] == [failed["hash"]], (word, result.output)
    # from a subfolder that does not hold its experiment: the log directory says where it is
    result = project.run(prefix, "--collect-only", cwd=project.root / "sub")
    assert [h for _, h, _ in listed(result)] == [failed["hash"]], result.output
    # and it reruns that run alone
    result = project.run(prefix, "-v")
    assert result.returncode == 1
    assert re.findall(r" (FAILED|COMPLETE|CACHED) ", result.stdout) == ["FAILED"]
    assert record_of(project, lr=0.1, optimizer="adam")["attempt"] == 2


def test_i12_01_new_run_hash_from_collect_only_and_unknown_hash(project):
    project.write("xp_t.py", SWEEP)
    _, digest, _ = listed(project.run("--collect-only"))[2]
    result = project.run(digest[:8], "--collect-only")
    assert [h for _, h, _ in listed(result)] == [digest]
    unknown = next(
        p
        for p in ("ffff", "eeee", "dddd")
        if not any(h.startswith(p) for _, h, _ in listed(project.run("--collect-only")))
    )
    result = project.run(unknown)
    assert result.returncode == 4
    assert f"ERROR: not found: {unknown}" in result.stderr


def test_i12_01_ambiguous_hash_prefix_is_a_usage_error_listing_the_runs(project):
    project.write(
        "xp_many.py",
        """
        import xprun

        @xprun.grid(i=list(range(600)))
        def xp_many(config):
            return 1
        """,
    )
    runs = listed(project.run("--collect-only"))
    by_prefix: dict[str, list[str]] = {}
    for _, digest, nodeid in runs:
        by_prefix.setdefault(digest[:4], []).append(nodeid)
    prefix, nodeids = next((p, n) for p, n in sorted(by_prefix.items()) if len(n) > 1)
    result = project.run(prefix, "--collect-only")
    assert result.returncode == 4, result.output
    assert f"hash prefix {prefix} is ambiguous" in result.stderr
    for nodeid in nodeids:
        assert nodeid in result.stderr


# -- first-day item 9: decorated functions that are not collected -----------------------------


def test_i12_09_decorated_function_not_named_xp_warns_once(project):
    project.write(
        "xp_t.py",
        """
        import xprun

        @xprun.config({"lr": 0.1})
        @xprun.grid(lr=[0.1, 0.2])
        def train(config):
            return 1

        @xprun.resources(cpus=1)
        def evaluate(config):
            return 1

        def helper():
            return 2

        def xp_ok(config):
            return 1
        """,
    )
    result = project.run()
    assert result.returncode == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 2, result.stderr
    train = next(w for w in warnings if " train " in w)
    assert "xp_t.py:4" in train and "'xp_*'" in train and "xp_train" in train
    assert "experiment_functions" in train
    assert any(" evaluate " in w for w in warnings)
    assert "helper" not in result.stderr and "xp_ok" not in result.stderr
    # a pattern that takes it in: collected, no warning
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\nexperiment_functions = ["xp_*", "train"]\n',
    )
    result = project.run("--collect-only")
    assert "xp_t.py::train[lr=0.1]" in result.stdout
    assert result.stderr.count("warning") == 1  # evaluate still is not
