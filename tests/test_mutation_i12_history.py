"""Which runs ``--lf``, ``--ff``, ``--nf``, ``--sw`` and ``--sw-skip`` select from the recorded
statuses, and what ``--maxfail``/``-x`` set, each rule checked where mutation testing found
it unchecked (tools/mutation.py, xprun/history.py).

The flags are given as users give them, ``xprun ...``, in a session run in-process
(tests/inprocess.py): a mutant of ``xprun.history`` loaded in the test's process is the one
the session uses (``python -m xprun``, as tests/test_i12_selection.py runs it, would import
the original).  One project, launched once, holds every status: complete, failed, timed out
(a plugin's status, as a time limit gives it), xfail, and runs never launched.
"""

from __future__ import annotations

import json
import re

import inprocess as _inprocess
import pytest
from conftest import Project

STEPS = """
import json, pathlib
import xprun

FAIL = pathlib.Path(__file__).with_name("fail.json")

@xprun.config({"i": 0})
@xprun.grid(i=list(range(7)))
def xp_s(config):
    if config.i in json.loads(FAIL.read_text()):
        raise ValueError(f"i={config.i} fails")
    return config.i
"""

#: i=3 timed out, i=4 failed as expected (xfail): statuses a plugin records.
STATUS_PLUGIN = """
from xprun import Status

def xprun_run_status(run, context, status, error):
    if status == Status.FAILED and run.config["i"] == 3:
        return Status.TIMEOUT
    if status == Status.FAILED and run.config["i"] == 4:
        return Status.XFAIL
    return None
"""


def _make(root, fail: list[int]) -> Project:
    project = Project(root)
    project.write("xp_s.py", STEPS)
    project.write("conftest.py", STATUS_PLUGIN)
    project.write("fail.json", json.dumps(fail))
    return project


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """i=0, 2, 6 complete; i=1 failed; i=3 timeout; i=4 xfail; i=5 never launched."""
    project = _make(tmp_path_factory.mktemp("history"), fail=[1, 3, 4])
    with pytest.MonkeyPatch.context() as patch:
        result = _inprocess.InProcess(project, patch).run("-k", "not i=5")
    assert result.ret == 1, result.output
    return project


@pytest.fixture
def xprun(history: Project, monkeypatch: pytest.MonkeyPatch):
    """``xprun --collect-only ARGS`` on the history → (its output, the labels listed)."""

    def run(*args: str, expect: int = 0) -> tuple[str, list[str]]:
        result = _inprocess.InProcess(history, monkeypatch).run("--collect-only", *args)
        assert result.ret == expect, result.output
        return result.stdout, _listed(result.stdout)

    return run


def _listed(out: str) -> list[str]:
    """The labels of the runs a ``--collect-only`` listing shows, in its order."""
    return re.findall(r"^\w+ +[0-9a-f]{32}  xp_s\.py::xp_s\[(i=\d)\]$", out, re.MULTILINE)


def labels(*numbers: int) -> list[str]:
    return [f"i={i}" for i in numbers]


def test_i12_mut_lf_selects_failed_and_timed_out_runs_not_xfail(xprun) -> None:
    out, listed = xprun("--lf")
    assert listed == labels(1, 3)
    assert "run-last-failure: rerun previous 2 failures\n" in out
    assert "5 deselected" in out
    out, listed = xprun("--last-failed", "-k", "not i=3")  # -k applies on top
    assert listed == labels(1)


def test_i12_mut_lf_without_a_failure_on_record(tmp_path, monkeypatch) -> None:
    project = _make(tmp_path, fail=[])
    project.write("conftest.py", "")
    xprun = _inprocess.InProcess(project, monkeypatch).run
    assert xprun("-k", "i=0").ret == 0
    result = xprun("--collect-only", "--lf")
    assert _listed(result.stdout) == labels(*range(7))
    assert "run-last-failure: no previously failed runs, not deselecting runs" in result.stdout
    assert "deselected" not in result.stdout.replace("not deselecting", "")
    result = xprun("--collect-only", "--lf", "--lfnf", "none")
    assert result.ret == 5, result.output
    assert _listed(result.stdout) == []
    assert "run-last-failure: no previously failed runs, deselecting all runs" in result.stdout
    assert "7 deselected" in result.stdout


def test_i12_mut_lfnf_is_all_or_none(xprun) -> None:
    xprun("--lf", "--lfnf", "some", expect=4)


def test_i12_mut_ff_puts_failed_runs_first_in_their_order(xprun) -> None:
    out, listed = xprun("--ff")
    assert listed == labels(1, 3, 0, 2, 4, 5, 6)
    assert "run-last-failure: rerun previous 2 failures first\n" in out
    out, listed = xprun("--ff", "-k", "not i=1")
    assert listed == labels(3, 0, 2, 4, 5, 6)


def test_i12_mut_nf_puts_new_runs_first_then_ff_order(xprun) -> None:
    assert xprun("--nf")[1] == labels(5, 0, 1, 2, 3, 4, 6)
    assert xprun("--nf", "--ff")[1] == labels(5, 1, 3, 0, 2, 4, 6)
    assert xprun("--lf", "--nf")[1] == labels(1, 3)


def test_i12_mut_sw_resumes_from_the_first_failed_run(xprun) -> None:
    out, listed = xprun("--sw")
    assert listed == labels(1, 2, 3, 4, 5, 6)
    assert "stepwise: skipping 1 already complete run\n" in out
    out, listed = xprun("--stepwise", "-k", "not i=1")
    assert listed == labels(2, 3, 4, 5, 6)  # from the first failure on record, -k on top


def test_i12_mut_sw_skip_deselects_the_failing_run(xprun) -> None:
    out, listed = xprun("--sw-skip")
    assert listed == labels(2, 3, 4, 5, 6)
    assert "stepwise: skipping the failing run xp_s.py::xp_s[i=1]\n" in out
    assert xprun("--stepwise-skip", "-k", "not i=2")[1] == labels(3, 4, 5, 6)


def test_i12_mut_no_history_flag_keeps_the_order(xprun) -> None:
    out, listed = xprun()
    assert listed == labels(0, 1, 2, 3, 4, 5, 6)
    assert "run-last-failure" not in out and "stepwise" not in out


def test_i12_mut_quiet_says_nothing_of_the_selection(xprun) -> None:
    out, listed = xprun("--lf", "-q")
    assert listed == labels(1, 3) and "run-last-failure" not in out


@pytest.mark.parametrize("value", ["-1", "x", "1.5"])
def test_i12_mut_maxfail_takes_a_count(xprun, value: str) -> None:
    xprun(f"--maxfail={value}", expect=4)


@pytest.mark.parametrize(
    ("args", "fail", "ran", "says"),
    [
        (
            ("--maxfail=2",),
            [1, 2, 5],
            labels(0, 1, 2),
            "stopping after 2 failed runs (--maxfail=2)",
        ),
        (("--maxfail=0",), [1, 2], labels(0, 1, 2, 3), None),
        (("-x",), [1, 2], labels(0, 1), "stopping after 1 failed run (-x)"),
        (("-x", "--maxfail=2"), [1, 2, 3], labels(0, 1, 2), "(--maxfail=2)"),
        (("--sw",), [1, 2], labels(0, 1), "stopping after 1 failed run (--sw)"),
        (("--sw-skip",), [1, 2], labels(0, 1, 2), "stopping after 2 failed runs (--sw-skip)"),
        (("--sw-skip",), [2], labels(0, 1, 2, 3), None),
        (("--maxfail=2",), [0, 3], labels(0, 1, 2, 3), "stopping after 2 failed runs"),
    ],
)
def test_i12_mut_launches_stop_after_the_failures_allowed(
    tmp_path, monkeypatch, args, fail, ran, says
) -> None:
    project = _make(tmp_path, fail)
    project.write("xp_s.py", STEPS.replace("range(7)", "range(4)"))
    project.write("conftest.py", "")
    result = _inprocess.InProcess(project, monkeypatch).run("-v", *args)
    assert result.ret == (1 if fail and min(fail) < 4 else 0), result.output
    assert sorted(f"i={r['nodeid'][-2]}" for r in result.records()) == ran
    if says:
        assert says in result.stdout
    else:
        assert "stopping after" not in result.stdout
    # what the next launch reads from that history
    failed = [i for i in fail if f"i={i}" in ran]
    listing = _inprocess.InProcess(project, monkeypatch).run("--collect-only", "--lf", "--ff")
    count = f"{len(failed)} failure{'s' * (len(failed) != 1)}"
    assert f"run-last-failure: rerun previous {count}\n" in listing.stdout
    listing = _inprocess.InProcess(project, monkeypatch).run("--collect-only", "--sw")
    passed = min(failed)
    if passed:
        noun = f"{passed} already complete run{'s' * (passed != 1)}"
        assert f"stepwise: skipping {noun}\n" in listing.stdout
    else:
        assert "stepwise" not in listing.stdout


ARGV = """
import json, pathlib, sys
import xprun

@xprun.config({"i": 0})
@xprun.grid(i=[0, 1])
def xp_a(config):
    pathlib.Path(__file__).with_name(f"argv-{config.i}.json").write_text(json.dumps(sys.argv))
"""


@pytest.mark.parametrize(
    ("args", "stops"),
    [(("--maxfail=2",), True), (("--sw",), True), (("-x",), True), ((), False)],
)
def test_i12_mut_a_pool_worker_stops_after_its_own_failure_under_maxfail(
    tmp_path, monkeypatch, args: tuple[str, ...], stops: bool
) -> None:
    """Under a failure limit, the pool starts its workers with ``--exitfirst`` (each stops
    after a failure of its own instead of starting a run it holds): seen in the command line
    the worker process was given."""
    project = Project(tmp_path)
    project.write("xp_a.py", ARGV)
    result = _inprocess.InProcess(project, monkeypatch).run("-n", "1", "--no-snapshot", *args)
    assert result.ret == 0, result.output
    for i in (0, 1):
        argv = json.loads((tmp_path / f"argv-{i}.json").read_text())
        assert argv[1:3] == ["worker", "--serve"]
        assert ("--exitfirst" in argv) == stops
