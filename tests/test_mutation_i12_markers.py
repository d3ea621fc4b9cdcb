"""``-m`` selection, registered and unknown marks, ``--markers`` and Hydra's ``-m`` flag,
each rule checked where mutation testing found it unchecked (tools/mutation.py,
xprun/markers.py).

Given as users give them, ``xprun --collect-only ...``, in a session run in-process
(tests/inprocess.py): a mutant of ``xprun.markers`` loaded in the test's process is the one
the session uses (``python -m xprun``, as tests/test_i12_marks.py runs it, would import the
original).
"""

from __future__ import annotations

import re

import inprocess as _inprocess
import pytest
from conftest import Project

MARKED = """
import xprun

@xprun.mark.slow
def xp_slow():
    return {}

@xprun.mark.slow
@xprun.mark.gpu(n=2)
def xp_slow_gpu():
    return {}

@xprun.mark.skip("why")
@xprun.mark.xfail(raises=ValueError, strict=True, reason="r")
def xp_skipped():
    return {}

def xp_plain():
    return {}

@xprun.config({"lr": 0.1})
@xprun.grid(lr=[0.1, xprun.param(1.0, marks=[xprun.mark.slow, xprun.mark.gpu])])
def xp_grid(config):
    return {}
"""

REGISTERED = (
    '[tool.xprun]\nlog_dir = "xprun_logs"\n'
    'markers = ["slow: slow runs", "gpu(n): needs n GPUs", " tpu : spaced", "tpu: twice"]\n'
)

ALL = ["xp_slow", "xp_slow_gpu", "xp_skipped", "xp_plain", "xp_grid[lr=0.1]", "xp_grid[lr=1.0]"]


def _project(root, registered: bool) -> Project:
    project = Project(root)
    project.write("xp_m.py", MARKED)
    if registered:
        project.write("pyproject.toml", REGISTERED)
    return project


@pytest.fixture(scope="module")
def marked(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return _project(tmp_path_factory.mktemp("marks"), registered=True)


@pytest.fixture(scope="module")
def unregistered(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return _project(tmp_path_factory.mktemp("unregistered"), registered=False)


@pytest.fixture
def xprun(marked: Project, unregistered: Project, monkeypatch: pytest.MonkeyPatch):
    """``xprun ARGS`` → its in-process result (``registered=False``: no markers registered)."""

    def run(*args: str, expect: int = 0, registered: bool = True):
        project = marked if registered else unregistered
        result = _inprocess.InProcess(project, monkeypatch).run(*args)
        assert result.ret == expect, result.output
        return result

    return run


def listed(result) -> list[str]:
    """The runs a ``--collect-only`` listing shows (node id after ``xp_m.py::``), in order."""
    return re.findall(r"^\w+ +[0-9a-f]{32}  xp_m\.py::(\S+)", result.stdout, re.MULTILINE)


@pytest.mark.parametrize(
    ("expression", "selected"),
    [
        ("slow", ["xp_slow", "xp_slow_gpu", "xp_grid[lr=1.0]"]),
        ("slow and not gpu", ["xp_slow"]),
        ("gpu or skip", ["xp_slow_gpu", "xp_skipped", "xp_grid[lr=1.0]"]),
        ("not (slow or xfail)", ["xp_plain", "xp_grid[lr=0.1]"]),
        ("tpu", []),
        ("sl", []),
    ],
)
def test_i12_mut_m_selects_by_mark_name(xprun, expression: str, selected: list[str]) -> None:
    result = xprun("--collect-only", "-m", expression, expect=0 if selected else 5)
    assert listed(result) == selected
    assert f"{len(ALL) - len(selected)} deselected" in result.stdout


def test_i12_mut_without_m_every_run_is_listed_with_its_marks(xprun) -> None:
    result = xprun("--collect-only")
    assert listed(result) == ALL
    assert "deselected" not in result.stdout
    lines = {line.split("::")[1] for line in result.stdout.splitlines() if "  xp_m.py::" in line}
    assert lines == {
        "xp_slow  @slow",
        "xp_slow_gpu  @slow @gpu(n=2)",
        "xp_skipped  @skip('why') @xfail(raises=ValueError, strict=True, reason='r')",
        "xp_plain",
        "xp_grid[lr=0.1]",
        "xp_grid[lr=1.0]  @slow @gpu",
    }
    assert "unknown mark" not in result.stderr


def test_i12_mut_a_malformed_expression_is_a_usage_error_naming_m(xprun) -> None:
    result = xprun("--collect-only", "-m", "slow and (", expect=4)
    assert "wrong expression passed to '-m': slow and (: at column" in result.stderr
    for text in ("x" * 198 + " (", "x" * 199 + " ("):  # 200 characters shown whole, 201 cut
        result = xprun("--collect-only", "-m", text, expect=4)
        shown = text if len(text) == 200 else f"{text[:200]}... (201 characters)"
        assert f"wrong expression passed to '-m': {shown}: at column" in result.stderr
    long = " or ".join(["slow"] * 60) + " or ("
    result = xprun("--collect-only", "-m", long, expect=4)
    assert f"{long[:200]}... ({len(long)} characters): at column" in result.stderr


def test_i12_mut_hydra_multirun_flag_is_ignored_with_a_note(xprun) -> None:
    note = (
        "xprun: note: {} is Hydra's multirun flag, ignored here: every xprun invocation is a "
        "multirun (lr=0.1,0.01 sweeps as it is)"
    )
    for args in (("-m",), ("-m", "--collect-only"), ("--multirun",), ("-m", "lr=1.0")):
        result = xprun("--collect-only", "xp_m.py::xp_grid", *args)
        flag = "--multirun" if args == ("--multirun",) else "-m"
        assert note.format(flag) in result.stderr.splitlines(), args
        assert result.stderr.count("multirun flag") == 1
        expected = ["xp_grid"] if "lr=1.0" in args else ["xp_grid[lr=0.1]", "xp_grid[lr=1.0]"]
        assert listed(result) == expected, args
    result = xprun("--collect-only", "xp_m.py::xp_grid")
    assert "multirun flag" not in result.stderr
    # the override after -m comes first, as typed: the sweep's order shows it
    result = xprun("--collect-only", "xp_m.py::xp_grid", "-m", "lr=0.1,1.0", "+b=1,2")
    assert listed(result) == [
        "xp_grid[lr=0.1-b=1]",
        "xp_grid[lr=0.1-b=2]",
        "xp_grid[lr=1.0-b=1]",
        "xp_grid[lr=1.0-b=2]",
    ]


def _markers(settings: dict, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What ``xprun --markers`` prints with these ``[tool.xprun]`` settings.  Called at the
    configure hook it ends in (it raises SystemExit(0) as --help does, which the in-process
    runner does not catch)."""
    from types import SimpleNamespace

    from xprun import markers

    option = SimpleNamespace(markexpr="", multirun=False, markers=True, strict_markers=False)
    config = SimpleNamespace(
        option=option, settings=SimpleNamespace(values=settings), override_args=[]
    )
    with pytest.raises(SystemExit) as stop:
        markers.xprun_configure(config)  # type: ignore[arg-type]
    assert stop.value.code == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out.splitlines()


def test_i12_mut_markers_lists_the_registered_marks(capsys) -> None:
    lines = _markers(
        {"markers": ["slow: slow runs", "gpu(n): needs n GPUs", " tpu : spaced", "tpu: twice"]},
        capsys,
    )
    assert lines[0] == (
        "@xprun.mark.skip(reason=None): never start the run; it is reported skipped and "
        "nothing is written"
    )
    assert lines[1] == (
        "@xprun.mark.skipif(condition, ..., reason=None): skip the run when a condition (a "
        "bool) is true"
    )
    assert lines[2].startswith("@xprun.mark.xfail(condition=True")
    assert lines[3:] == [
        "@xprun.mark.slow: slow runs",
        "@xprun.mark.gpu(n): needs n GPUs",
        "@xprun.mark.tpu : spaced",
        "",
        'Register a mark in pyproject.toml: [tool.xprun] markers = ["slow: what it means"]',
    ]
    assert len(_markers({}, capsys)) == 5
    assert _markers({"markers": ["plain"]}, capsys)[3] == "@xprun.mark.plain"


def test_i12_mut_an_unknown_mark_is_warned_once_per_name(xprun) -> None:
    result = xprun("--collect-only", registered=False)
    warnings = [line for line in result.stderr.splitlines() if "unknown mark" in line]
    assert [w.split(" on ")[0] for w in warnings] == [
        "xprun: warning: unknown mark xprun.mark.slow",
        "xprun: warning: unknown mark xprun.mark.gpu",
    ]
    assert re.match(
        r"xprun: warning: unknown mark xprun\.mark\.slow on xp_m\.py::xp_slow \(line \d+\): "
        r"register it in pyproject\.toml \(\[tool\.xprun\] markers = \[\"slow: what it "
        r"means\"\]\) or correct its name; xprun --markers lists the registered marks$",
        warnings[0],
    )
    assert listed(result) == ALL


def test_i12_mut_strict_markers_refuses_unknown_marks(xprun) -> None:
    result = xprun("--collect-only", "--strict-markers", registered=False, expect=4)
    assert "unknown mark xprun.mark.slow on xp_m.py::xp_slow (line" in result.stderr
    assert "with --strict-markers" in result.stderr
    result = xprun("--collect-only", "--strict-markers", "-m", "slow or (gpus and not x)", expect=4)
    assert "-m 'slow or (gpus and not x)' names unregistered mark(s) gpus, x, with " in (
        result.stderr
    )
    result = xprun("--collect-only", "--strict-markers", "-m", "(slow) and not (gpu or skip)")
    assert listed(result) == ["xp_slow"]
    result = xprun("--collect-only", "-m", "gpus", expect=5)  # not strict: selects nothing
    assert listed(result) == [] and "unregistered" not in result.stderr


def test_i12_mut_marks_of_a_fixture_param_are_refused(tmp_path, monkeypatch) -> None:
    project = Project(tmp_path)
    project.write(
        "xp_f.py",
        """
import xprun

@xprun.fixture(params=[1, xprun.param(2, marks=xprun.mark.xfail)], ids=["a", "b"])
def data(request):
    return request.param

@xprun.fixture(params=[1, 2])
def plain(request):
    return request.param

def xp_f(data):
    return {}
""",
    )
    result = _inprocess.InProcess(project, monkeypatch).run("--collect-only")
    assert result.ret == 4, result.output
    assert "xp_f.py::xp_f: fixture 'data' has an xprun.param(...) among its params" in (
        result.stderr
    )
    project.write(
        "xp_f.py", project.root.joinpath("xp_f.py").read_text().replace("(data)", "(plain)")
    )
    result = _inprocess.InProcess(project, monkeypatch).run("--collect-only")
    assert result.ret == 0, result.output


def test_i12_mut_marks_reach_a_pool_worker(tmp_path, monkeypatch) -> None:
    """``mark_numbers``: a job spec gives a worker its run's marks by number."""
    from xprun import markers

    project = _project(tmp_path, registered=True)
    project.write(
        "conftest.py",
        "from xprun import markers\n"
        "seen = []\n"
        "def xprun_collection_modifyitems(session, runs):\n"
        "    for run in runs:\n"
        "        numbers = markers.mark_numbers(run)\n"
        "        back = markers.marks_numbered(run.experiment, numbers)\n"
        "        seen.append((run.nodeid, numbers, back == run.marks))\n"
        "    print('SEEN', seen)\n",
    )
    result = _inprocess.InProcess(project, monkeypatch).run("--collect-only")
    assert result.ret == 0, result.output
    assert (
        "SEEN [('xp_m.py::xp_slow', [0], True), ('xp_m.py::xp_slow_gpu', [0, 1], True), "
        "('xp_m.py::xp_skipped', [0, 1], True), ('xp_m.py::xp_plain', [], True), "
        "('xp_m.py::xp_grid[lr=0.1]', [], True), ('xp_m.py::xp_grid[lr=1.0]', [0, 1], True)]"
    ) in result.stdout
    assert markers.marks_numbered(None, []) == ()  # type: ignore[arg-type]
