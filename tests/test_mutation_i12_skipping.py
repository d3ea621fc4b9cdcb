"""``skip``, ``skipif`` and ``xfail``: which runs start, what each is recorded and reported as,
and which mark arguments are refused, each rule checked where mutation testing found it
unchecked (tools/mutation.py, xprun/skipping.py).

Launched as users launch them, ``xprun -v``, in a session run in-process
(tests/inprocess.py): a mutant of ``xprun.skipping`` loaded in the test's process is the one
the session uses (``python -m xprun``, as tests/test_i12_marks.py runs it, would import the
original).  One project holds a run for each rule and is launched once.
"""

from __future__ import annotations

import re

import inprocess as _inprocess
import pytest
from conftest import Project

MARKED = """
import xprun

M = xprun.mark

@M.skip(reason="broken")
def xp_skip():
    return {}

@M.skip("positional")
def xp_skip_arg():
    return {}

@M.skip
def xp_skip_plain():
    return {}

@M.skipif(True, reason="r")
def xp_skipif_true():
    return {}

@M.skipif(1)
def xp_skipif_noreason():
    return {}

@M.skipif(False, reason="never")
def xp_skipif_false():
    return {}

@M.skipif(condition=True, reason="kw")
def xp_skipif_kw():
    return {}

@M.skipif(condition=False)
def xp_skipif_kw_false():
    return {}

@M.skipif(reason="no condition")
def xp_skipif_nocond():
    return {}

@M.skipif(False, True)
def xp_skipif_any():
    return {}

@M.xfail(reason="bug")
def xp_xfail():
    raise ValueError("as expected")

@M.xfail(raises=KeyError)
def xp_xfail_other():
    raise ValueError("not that")

@M.xfail(raises=(KeyError, ValueError))
def xp_xfail_tuple():
    raise ValueError("one of them")

@M.xfail
def xp_xpass():
    return {}

@M.xfail(strict=True, reason="s")
def xp_xpass_strict():
    return {}

@M.xfail(strict=True)
def xp_xpass_strict_noreason():
    return {}

@M.xfail(False)
def xp_xfail_false():
    raise ValueError("counts")

@M.xfail(condition=False, reason="kw")
def xp_xfail_kw_false():
    raise ValueError("counts too")

@M.skipif(False)
@M.xfail(True, reason="second")
def xp_both():
    raise ValueError("x")

def xp_plain():
    raise ValueError("plain")
"""

#: node name → (status shown by -v, the summary line about it or None)
EXPECTED = {
    "xp_skip": ("SKIPPED", "SKIPPED xp_k.py::xp_skip - broken"),
    "xp_skip_arg": ("SKIPPED", "SKIPPED xp_k.py::xp_skip_arg - positional"),
    "xp_skip_plain": ("SKIPPED", "SKIPPED xp_k.py::xp_skip_plain - unconditional skip"),
    "xp_skipif_true": ("SKIPPED", "SKIPPED xp_k.py::xp_skipif_true - r"),
    "xp_skipif_noreason": (
        "SKIPPED",
        "SKIPPED xp_k.py::xp_skipif_noreason - skipif condition true",
    ),
    "xp_skipif_false": ("COMPLETE", None),
    "xp_skipif_kw": ("SKIPPED", "SKIPPED xp_k.py::xp_skipif_kw - kw"),
    "xp_skipif_kw_false": ("COMPLETE", None),
    "xp_skipif_nocond": ("SKIPPED", "SKIPPED xp_k.py::xp_skipif_nocond - no condition"),
    "xp_skipif_any": ("SKIPPED", "SKIPPED xp_k.py::xp_skipif_any - skipif condition true"),
    "xp_xfail": ("XFAIL", "XFAIL xp_k.py::xp_xfail - bug (ValueError: as expected)"),
    "xp_xfail_other": ("FAILED", "FAILED xp_k.py::xp_xfail_other - ValueError: not that"),
    "xp_xfail_tuple": ("XFAIL", "XFAIL xp_k.py::xp_xfail_tuple (ValueError: one of them)"),
    "xp_xpass": ("COMPLETE", "XPASS xp_k.py::xp_xpass"),
    "xp_xpass_strict": ("FAILED", "FAILED xp_k.py::xp_xpass_strict - [XPASS(strict)] s"),
    "xp_xpass_strict_noreason": (
        "FAILED",
        "FAILED xp_k.py::xp_xpass_strict_noreason - [XPASS(strict)] the run was expected to fail",
    ),
    "xp_xfail_false": ("FAILED", "FAILED xp_k.py::xp_xfail_false - ValueError: counts"),
    "xp_xfail_kw_false": (
        "FAILED",
        "FAILED xp_k.py::xp_xfail_kw_false - ValueError: counts too",
    ),
    "xp_both": ("XFAIL", "XFAIL xp_k.py::xp_both - second (ValueError: x)"),
    "xp_plain": ("FAILED", "FAILED xp_k.py::xp_plain - ValueError: plain"),
}


def shown(stdout: str) -> dict[str, str]:
    """node name → the status ``-v`` shows for it."""
    return dict(re.findall(r"^xp_k\.py::(\w+) ([A-Z]+) [0-9a-f]{12}", stdout, re.MULTILINE))


def summary(stdout: str) -> list[str]:
    """The short summary's lines."""
    tail = stdout.partition(" short summary ")[2]
    return [line for line in tail.splitlines() if re.match(r"^[A-Z]+ xp_k\.py::", line)]


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory):
    """The project, and its first launch (``xprun -v``)."""
    project = Project(tmp_path_factory.mktemp("skipping"))
    project.write("xp_k.py", MARKED)
    with pytest.MonkeyPatch.context() as patch:
        result = _inprocess.InProcess(project, patch).run("-v")
    assert result.ret == 1, result.output
    return project, result


def test_i12_mut_each_run_ends_as_its_marks_say(launched) -> None:
    _, result = launched
    assert shown(result.stdout) == {name: status for name, (status, _) in EXPECTED.items()}
    assert sorted(summary(result.stdout)) == sorted(line for _, line in EXPECTED.values() if line)


def test_i12_mut_skipped_runs_write_nothing_xfail_is_recorded(launched) -> None:
    _, result = launched
    recorded = {r["nodeid"].split("::")[1]: r["status"] for r in result.records()}
    expected = {
        name: status.lower() for name, (status, _) in EXPECTED.items() if status != "SKIPPED"
    }
    assert recorded == expected


def test_i12_mut_a_recorded_xfail_is_cached_until_forced(launched, monkeypatch) -> None:
    project, _ = launched
    again = _inprocess.InProcess(project, monkeypatch).run("-v")
    statuses = shown(again.stdout)
    for name, (status, _) in EXPECTED.items():
        if status in ("XFAIL", "COMPLETE"):
            assert statuses[name] == "CACHED", name
        else:
            assert statuses[name] == status, name
    forced = _inprocess.InProcess(project, monkeypatch).run("-v", "--force", "-k", "xfail")
    assert shown(forced.stdout) == {
        "xp_xfail": "XFAIL",
        "xp_xfail_other": "FAILED",
        "xp_xfail_tuple": "XFAIL",
        "xp_xfail_false": "FAILED",
        "xp_xfail_kw_false": "FAILED",
    }


def test_i12_mut_a_recorded_xfail_runs_again_once_its_mark_is_gone(
    launched, tmp_path, monkeypatch
) -> None:
    project = Project(tmp_path)
    project.write("xp_k.py", MARKED)
    xprun = _inprocess.InProcess(project, monkeypatch).run
    assert shown(xprun("-v", "-k", "xp_xfail and not tuple and not other").stdout) == {
        "xp_xfail": "XFAIL",
        "xp_xfail_false": "FAILED",
        "xp_xfail_kw_false": "FAILED",
    }
    project.write("xp_k.py", MARKED.replace('@M.xfail(reason="bug")\n', ""))
    assert shown(xprun("-v", "-k", "xp_xfail and not tuple and not other").stdout) == {
        "xp_xfail": "FAILED",
        "xp_xfail_false": "FAILED",
        "xp_xfail_kw_false": "FAILED",
    }


def test_i12_mut_the_summary_lists_skips_only_with_v(launched, monkeypatch) -> None:
    project, _ = launched
    plain = _inprocess.InProcess(project, monkeypatch).run("-k", "xp_skip or xp_xpass_strict")
    assert summary(plain.stdout) == [
        "FAILED xp_k.py::xp_xpass_strict - [XPASS(strict)] s",
        "FAILED xp_k.py::xp_xpass_strict_noreason - [XPASS(strict)] the run was expected to fail",
    ]
    quiet = _inprocess.InProcess(project, monkeypatch).run("-q", "--force", "-k", "xp_xpass")
    assert not any(line.startswith(("SKIPPED", "XPASS")) for line in quiet.stdout.splitlines())
    # -v and -q cancel out: the skip reasons are -v's only
    both = _inprocess.InProcess(project, monkeypatch).run("-v", "-q", "-k", "xp_skip")
    assert not any(line.startswith("SKIPPED") for line in both.stdout.splitlines())
    loud = _inprocess.InProcess(project, monkeypatch).run("--force", "-k", "xp_xpass")
    assert "XPASS xp_k.py::xp_xpass" in loud.stdout.splitlines()


@pytest.mark.parametrize(
    ("mark", "problem"),
    [
        ("skip(reason='a', why='b')", "unexpected argument why= (it takes reason)"),
        ("skip('a', 'b')", "takes one reason"),
        ("skip('a', reason='b')", "takes one reason"),
        ("skipif('x', reason='r')", "condition 'x' is text: xprun never evaluates text"),
        ("skipif(condition='x')", "condition 'x' is text"),
        ("skipif(True, reason=3)", "reason= must be text, got int 3"),
        ("skip(3)", "reason= must be text, got int 3"),
        ("xfail(raises='ValueError')", "raises= must be an exception type or a tuple of them"),
        ("xfail(raises=())", "raises= must be an exception type or a tuple of them, got ()"),
        ("xfail(raises=(ValueError, 'x'))", "raises= must be an exception type or a tuple"),
        ("xfail(raises=int)", "raises= must be an exception type or a tuple of them, got"),
        ("xfail(strict='yes')", "strict= must be True or False, got 'yes'"),
        ("xfail(strict=1)", "strict= must be True or False, got 1"),
        ("xfail(True, 'x')", "condition 'x' is text"),
    ],
)
def test_i12_mut_wrong_mark_arguments_are_usage_errors(
    tmp_path, monkeypatch, mark: str, problem: str
) -> None:
    project = Project(tmp_path)
    project.write(
        "xp_w.py",
        f"import xprun\n\n@xprun.mark.{mark}\ndef xp_w():\n    return {{}}\n\n"
        "def xp_ok():\n    return {}\n",
    )
    result = _inprocess.InProcess(project, monkeypatch).run("--collect-only")
    assert result.ret == 4, result.output
    name = mark.partition("(")[0]
    assert f"xp_w.py::xp_w: @xprun.mark.{name}: {problem}" in result.stderr


@pytest.mark.parametrize(
    "mark",
    [
        "skip",
        "skip(reason=None)",
        "skipif(False)",
        "skipif(False, True, reason='r')",
        "xfail(raises=(KeyError, ValueError), strict=False, reason=None)",
        "xfail(condition=False, raises=OSError)",
        "slow(1, 'text', reason=3)",
    ],
)
def test_i12_mut_right_mark_arguments_are_accepted(tmp_path, monkeypatch, mark: str) -> None:
    project = Project(tmp_path)
    project.write("xp_w.py", f"import xprun\n\n@xprun.mark.{mark}\ndef xp_w():\n    return {{}}\n")
    result = _inprocess.InProcess(project, monkeypatch).run("--collect-only")
    assert result.ret == 0, result.output


def test_i12_mut_a_complete_run_marked_skip_later_is_reported_cached(tmp_path, monkeypatch) -> None:
    """The skip check stops only runs that would start: a complete run is cached first."""
    project = Project(tmp_path)
    project.write("xp_c.py", "import xprun\n\ndef xp_c():\n    return {}\n")
    xprun = _inprocess.InProcess(project, monkeypatch).run
    assert xprun().ret == 0
    project.write("xp_c.py", "import xprun\n\n@xprun.mark.skip\ndef xp_c():\n    return {}\n")
    assert re.findall(r"^xp_c\.py::xp_c ([A-Z]+) ", xprun("-v").stdout, re.MULTILINE) == ["CACHED"]
    assert re.findall(r"^xp_c\.py::xp_c ([A-Z]+) ", xprun("-v", "--force").stdout, re.M) == [
        "SKIPPED"
    ]


def test_i12_mut_a_strict_xpass_says_why_to_every_plugin(tmp_path, monkeypatch) -> None:
    """The reason is set on the report before other plugins read it (tryfirst): a
    conftest's hook, registered after the built-in reporter, sees it too, and so does the
    JUnit XML file, written as each report comes."""
    project = Project(tmp_path)
    project.write("xp_k.py", MARKED)
    project.write(
        "conftest.py",
        "def xprun_run_logreport(report):\n"
        "    if report.status == 'failed':\n"
        "        print('SEEN', report.run.nodeid, repr(report.longrepr))\n",
    )
    result = _inprocess.InProcess(project, monkeypatch).run(
        "-k", "xp_xpass_strict", "--junitxml", "out.xml"
    )
    assert result.ret == 1, result.output
    assert "SEEN xp_k.py::xp_xpass_strict '[XPASS(strict)] s'" in result.stdout
    xml = (tmp_path / "out.xml").read_text()
    assert 'message="[XPASS(strict)] s"' in xml
    assert 'message="[XPASS(strict)] the run was expected to fail"' in xml


def test_i12_mut_a_plugins_skip_check_answers_before_the_marks(tmp_path, monkeypatch) -> None:
    """The marks' skip check runs after the others (a wrapper): a report another check
    gave (cached, running elsewhere, or a plugin's) stands, even for a run marked skip."""
    project = Project(tmp_path)
    project.write("xp_c.py", "import xprun\n\n@xprun.mark.skip\ndef xp_c():\n    return {}\n")
    project.write(
        "conftest.py",
        "from xprun import RunReport, Status\n\n"
        "def xprun_run_skip(run, context):\n"
        "    return RunReport(run, Status.CACHED, longrepr='answered by a plugin')\n",
    )
    result = _inprocess.InProcess(project, monkeypatch).run("-v")
    assert result.ret == 0, result.output
    assert re.findall(r"^xp_c\.py::xp_c ([A-Z]+) ", result.stdout, re.M) == ["CACHED"]
