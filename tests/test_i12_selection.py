"""Issue 12, run selection: node ids and hashes (first-day item 1), decorated functions that
are not collected (item 9), and selection from history (``--lf``, ``--ff``, ``--nf``,
``--sw``, ``--sw-skip``, ``--maxfail``, ``--order``), all through the real command line."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess

import pytest
from conftest import Project, git_commit_all
from hypothesis import given
from hypothesis import strategies as st

pytestmark = pytest.mark.inprocess  # launches in the test's process (tests/launch.py)

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
    # a value spelled another way, as -k reads it: 1e-2 is 0.01
    result = project.run("xp_t.py::xp_train[lr=1e-2-optimizer=adam-seed=0]", "--collect-only")
    assert [h for _, h, _ in listed(result)] == [record["hash"]], result.output
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


# -- selection from history -------------------------------------------------------------------

STEPS = """
import json, os, pathlib, signal
import xprun

FAIL = pathlib.Path(__file__).with_name("fail.json")

@xprun.config({"i": 0})
@xprun.grid(i=list(range(6)))
def xp_s(config):
    if os.environ.get("KILL_AT") == str(config.i):
        os.kill(os.getpid(), signal.SIGKILL)  # the launcher dies: the run is interrupted
    if config.i in json.loads(FAIL.read_text()):
        raise ValueError(f"i={config.i} fails")
    return config.i
"""

#: A plugin deciding statuses through the xprun_run_status seam (as an xfail or a time
#: limit would): i=4 timed out, i=5 failed as expected.
STATUS_PLUGIN = """
from xprun import Status

def xprun_run_status(run, context, status, error):
    if status == Status.FAILED and run.config["i"] == 4:
        return Status.TIMEOUT
    if status == Status.FAILED and run.config["i"] == 5:
        return Status.XFAIL
    return None
"""


def steps_project(project: Project, fail: list[int]) -> None:
    project.write("xp_s.py", STEPS)
    fails(project, fail)


def fails(project: Project, fail: list[int]) -> None:
    project.write("fail.json", json.dumps(fail))


def ran(result) -> list[tuple[str, str]]:
    """(label, status) of each run in the order ``-v`` reported them."""
    return re.findall(r"^xp_s\.py::xp_s\[(i=\d)\] ([A-Z ]+?) [0-9a-f]{12}", result.stdout, re.M)


def executed(result) -> list[str]:
    """The labels of the runs that executed, in order (cached runs are reported first, in
    one pass, whatever their place)."""
    return [label for label, status in ran(result) if status != "CACHED"]


def statuses(project: Project) -> dict[str, str]:
    return {f"i={r['nodeid'][-2]}": r["status"] for r in project.records()}


def test_i12_lf_reruns_only_failed_interrupted_and_timed_out_runs_never_xfail(project):
    steps_project(project, fail=[1, 4, 5])
    project.write("conftest.py", STATUS_PLUGIN)
    killed = project.run("-k", "i=2", env={"KILL_AT": "2"}, inprocess=False)  # it dies
    assert killed.returncode == -9
    assert project.run("-k", "not i=2").returncode == 1
    assert statuses(project) == {
        "i=0": "complete",
        "i=1": "failed",
        "i=2": "running",  # the record of a process that died: it reads as interrupted
        "i=3": "complete",
        "i=4": "timeout",
        "i=5": "xfail",
    }
    listing = project.run("--lf", "--collect-only")
    assert [n for _, _, n in listed(listing)] == [f"xp_s.py::xp_s[i={i}]" for i in (1, 2, 4)]
    assert "run-last-failure: rerun previous 3 failures" in listing.stdout
    fails(project, [4])
    result = project.run("--lf", "-v")
    assert ran(result) == [("i=1", "COMPLETE"), ("i=2", "COMPLETE"), ("i=4", "TIMEOUT")]
    assert "3 deselected" in result.stdout
    # -k, node ids and overrides apply on top
    assert ran(project.run("--lf", "-v", "-k", "not i=1")) == [("i=4", "TIMEOUT")]
    assert ran(project.run("--lf", "-v", "xp_s.py::xp_s[i=4]")) == [("i=4", "TIMEOUT")]
    assert ran(project.run("--lf", "-v", "i=4,5")) == [("i=4", "TIMEOUT")]


def test_i12_lf_without_failures_runs_all_or_none(project):
    steps_project(project, fail=[])
    assert project.run().returncode == 0
    result = project.run("--lf", "-v")  # --lfnf all: every run, each cached
    assert result.returncode == 0
    assert "run-last-failure: no previously failed runs, not deselecting runs" in result.stdout
    assert [s for _, s in ran(result)] == ["CACHED"] * 6
    project.write("xp_s.py", STEPS.replace("range(6)", "range(7)"))
    result = project.run("--lf", "--lfnf", "none", "-v")
    assert result.returncode == 5, result.output
    assert "no previously failed runs, deselecting all runs" in result.stdout
    assert ran(result) == []
    assert len(project.run_dirs()) == 6  # the new config did not run either
    assert project.run("--lf", "--lfnf", "some").returncode == 4


def test_i12_ff_runs_failed_first_then_the_rest(project):
    steps_project(project, fail=[4])
    assert project.run("-k", "i=4 or i=5").returncode == 1
    fails(project, [])
    result = project.run("--ff", "-v")
    assert result.returncode == 0
    assert "run-last-failure: rerun previous 1 failure first" in result.stdout
    assert executed(result) == [f"i={i}" for i in (4, 0, 1, 2, 3)]  # grid order otherwise
    assert ("i=5", "CACHED") in ran(result)


def test_i12_nf_runs_configs_without_a_directory_first(project):
    steps_project(project, fail=[1])
    assert project.run("-k", "i=1 or i=3").returncode == 1
    result = project.run("--nf", "-v")
    assert executed(result) == [f"i={i}" for i in (0, 2, 4, 5, 1)]
    assert ("i=3", "CACHED") in ran(result)


def test_i12_sw_stops_at_the_first_failure_and_resumes_from_it(project):
    steps_project(project, fail=[1, 3])
    result = project.run("--sw", "-v")
    assert result.returncode == 1
    assert ran(result) == [("i=0", "COMPLETE"), ("i=1", "FAILED")]
    assert "stopping after 1 failed run (--sw)" in result.stdout
    assert sorted(statuses(project)) == ["i=0", "i=1"]  # nothing else started
    fails(project, [3])  # i=1 fixed
    result = project.run("--sw", "-v")
    assert "stepwise: skipping 1 already complete run" in result.stdout
    assert ran(result) == [("i=1", "COMPLETE"), ("i=2", "COMPLETE"), ("i=3", "FAILED")]
    fails(project, [])
    result = project.run("--sw", "-v")
    assert result.returncode == 0
    assert ran(result) == [("i=3", "COMPLETE"), ("i=4", "COMPLETE"), ("i=5", "COMPLETE")]


def test_i12_sw_skip_skips_the_first_failing_run_and_stops_at_the_next(project):
    steps_project(project, fail=[1, 3, 4])
    # no failure on record: the first failure of this launch is skipped
    result = project.run("--sw-skip", "-v")
    assert ran(result) == [
        ("i=0", "COMPLETE"),
        ("i=1", "FAILED"),
        ("i=2", "COMPLETE"),
        ("i=3", "FAILED"),
    ]
    assert "stopping after 1 failed run" not in result.stdout
    assert sorted(statuses(project)) == ["i=0", "i=1", "i=2", "i=3"]
    # i=1 failed last time: it is skipped, and the launch stops at the next failure
    fails(project, [1, 4])
    result = project.run("--sw-skip", "-v")
    assert "stepwise: skipping the failing run xp_s.py::xp_s[i=1]" in result.stdout
    assert [r for r in ran(result) if r[1] != "CACHED"] == [("i=3", "COMPLETE"), ("i=4", "FAILED")]
    assert statuses(project)["i=1"] == "failed"
    assert "i=5" not in statuses(project)


def test_i12_maxfail_stops_launching_after_n_failures_inline(project):
    steps_project(project, fail=[1, 2, 4, 5])
    result = project.run("--maxfail=2", "-v")
    assert result.returncode == 1
    assert ran(result) == [("i=0", "COMPLETE"), ("i=1", "FAILED"), ("i=2", "FAILED")]
    assert "stopping after 2 failed runs (--maxfail=2)" in result.stdout
    assert sorted(statuses(project)) == ["i=0", "i=1", "i=2"]
    result = project.run("--maxfail=3", "-v")  # i=1 and i=2 fail again: i=4 is the third
    assert ran(result)[-1] == ("i=4", "FAILED")
    assert "i=5" not in statuses(project)
    result = project.run("-x", "-v")  # -x is --maxfail=1
    assert executed(result) == ["i=1"]
    assert project.run("--maxfail=-1").returncode == 4


def test_i12_maxfail_in_the_pool_starts_no_new_run_after_the_limit(project):
    """Every run fails; two workers: once two failures are in, no run starts. A worker that
    failed stops by itself (it holds runs ahead), so at most one run per worker, and one
    for the worker started after the first failure, can begin: 3 of 6."""
    project.write("xp_s.py", STEPS.replace("range(6)", "range(8)"))
    fails(project, list(range(8)))
    result = project.run("-n", "2", "--maxfail=2", "--no-snapshot")
    assert result.returncode == 1, result.output
    assert "stopping after" in result.stdout and "(--maxfail=2)" in result.stdout
    recorded = statuses(project)
    assert 2 <= len(recorded) <= 3, recorded
    assert set(recorded.values()) == {"failed"}  # each one that started is recorded
    # under the limit, a worker that stopped after its failure is replaced: every run runs
    fails(project, [1])
    result = project.run("-n", "2", "--maxfail=3", "--no-snapshot")
    assert result.returncode == 1, result.output
    assert sorted(statuses(project).values()) == ["complete"] * 7 + ["failed"]


# -- --order ----------------------------------------------------------------------------------

GRID = """
import xprun

@xprun.config({"lr": 0.1, "seed": 0})
@xprun.grid(lr=[0.1, 0.01, 0.001], seed=[0, 1, 2, 3])
def xp_g(config):
    return config.lr
"""


def order_of(result) -> list[str]:
    return [n.partition("[")[2][:-1] for _, _, n in listed(result)]


def test_i12_order_interleave_covers_every_value_early(project):
    project.write("xp_g.py", GRID)
    grid = order_of(project.run("--collect-only"))
    assert grid[:4] == ["lr=0.1-seed=0", "lr=0.1-seed=1", "lr=0.1-seed=2", "lr=0.1-seed=3"]
    mixed = order_of(project.run("--collect-only", "--order", "interleave"))
    assert sorted(mixed) == sorted(grid)
    assert len({label.split("-")[0] for label in mixed[:3]}) == 3
    assert len({label.split("-")[1] for label in mixed[:4]}) == 4
    # the order the runs execute in, inline and in the pool
    for extra in ([], ["-n", "1", "--no-snapshot", "--force"]):
        result = project.run("-v", "--order", "interleave", *extra)
        executed = re.findall(r"^xp_g\.py::xp_g\[(\S+)\] COMPLETE", result.stdout, re.M)
        assert executed == mixed, (extra, result.output)


def test_i12_order_random_is_reproducible_with_seed_order(project):
    project.write("xp_g.py", GRID)
    grid = order_of(project.run("--collect-only"))
    first = order_of(project.run("--collect-only", "--order", "random", "--seed-order", "7"))
    again = order_of(project.run("--collect-only", "--seed-order", "7"))
    assert first == again and sorted(first) == sorted(grid) and first != grid
    drawn = project.run("--collect-only", "--order", "random")
    seed = re.search(r"--order random --seed-order (\d+)", drawn.stdout).group(1)
    assert order_of(project.run("--collect-only", "--seed-order", seed)) == order_of(drawn)
    bad = project.run("--order", "interleave", "--seed-order", "3")
    assert bad.returncode == 4 and "--seed-order" in bad.stderr


def _slurm_up() -> bool:
    if shutil.which("sbatch") is None:
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    return "UP" in ping.stdout


def test_i12_order_applies_to_a_slurm_array(project):
    """The array's task i runs the i-th run of the order (the job is held, then cancelled:
    only the order it was given matters here)."""
    if not _slurm_up():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no SLURM cluster answers")
        pytest.skip("no SLURM cluster here (run .ci/start-slurm.sh)")
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\n[tool.xprun.slurm]\nsbatch_args = ["--hold"]\n',
    )
    project.write("xp_g.py", GRID)
    git_commit_all(project.root)
    mixed = order_of(project.run("--collect-only", "--order", "interleave"))
    submit = project.run("--scheduler", "slurm", "--order", "interleave")
    assert submit.returncode == 0, submit.output
    (job_dir,) = project.log_dir.glob(".xprun-jobs/*")
    job = json.loads((job_dir / "job.json").read_text())
    subprocess.run(["scancel", *job["job_ids"]], check=True)
    spec = json.loads((job_dir / "spec.json").read_text())
    assert [run["label"] for run in spec["runs"]] == [f"[{label}]" for label in mixed]


@given(
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    shuffle=st.randoms(use_true_random=False),
)
def test_i12_order_interleave_property_every_value_of_every_key_early(sizes, shuffle):
    """For any full grid, declared in any order: with n values of a key, the first n runs
    hold each of them; and the order is a permutation."""
    from xprun.ordering import interleave

    rows = list(itertools.product(*(range(n) for n in sizes)))
    shuffle.shuffle(rows)  # values are numbered by first appearance, whatever they are
    order = interleave(rows)
    assert sorted(order) == list(range(len(rows)))
    for column, n in enumerate(sizes):
        assert len({rows[i][column] for i in order[:n]}) == n


@given(rows=st.lists(st.tuples(st.integers(0, 3), st.sampled_from("abc")), max_size=30))
def test_i12_order_interleave_property_any_rows_give_a_permutation(rows):
    from xprun.ordering import interleave

    assert sorted(interleave(rows)) == list(range(len(rows)))
