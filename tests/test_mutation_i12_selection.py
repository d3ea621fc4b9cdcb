"""Selecting runs by node id or hash (issue 12, first-day item 1): ``Target``,
``select_runs``, ``_covered``, ``missing_parts`` and ``find_run_dirs`` in xprun/collect.py,
``Session._check_targets`` in xprun/session.py; each rule checked where mutation testing
found it unchecked (tools/mutation.py, run with ``--only`` on those functions: the modules
are large).

Node ids and hashes are given as users give them, ``xprun --collect-only ...``, in a session
run in-process (tests/inprocess.py): a mutant loaded in the test's process is the one the
session uses (tests/test_i12_selection.py runs ``python -m xprun``, which would import the
original).
"""

from __future__ import annotations

import json
import re

import inprocess as _inprocess
import pytest
from conftest import Project

SWEEP = """
import xprun

@xprun.fixture(params=["a-b", "c"])
def data(request):
    return request.param

@xprun.config({"lr": 0.1, "opt": "sgd", "seed": 0, "net": {"width": 8}})
@xprun.grid(lr=[0.1, 1e-3], opt=["sgd", "adam"])
def xp_t(config, data):
    return 1

def xp_u(config):
    return 2
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = Project(tmp_path_factory.mktemp("selection"))
    project.write("xp_t.py", SWEEP)
    return project


@pytest.fixture
def xprun(sweep: Project, monkeypatch: pytest.MonkeyPatch):
    def run(*args: str, expect: int = 0):
        result = _inprocess.InProcess(sweep, monkeypatch).run("--collect-only", *args)
        assert result.ret == expect, result.output
        return result

    return run


def listed(result) -> list[tuple[str, str]]:
    """(hash, node id) of each run a listing shows."""
    return re.findall(r"^\w+ +([0-9a-f]{32})  (\S+)$", result.stdout, re.MULTILINE)


def ids(result) -> list[str]:
    return [nodeid.partition("::")[2] for _, nodeid in listed(result)]


ALL = [
    f"xp_t[lr={lr}-opt={opt}-{data}]"
    for lr in ("0.1", "0.001")
    for opt in ("sgd", "adam")
    for data in ("a-b", "c")
]


def test_i12_mut_a_file_an_experiment_a_run(xprun) -> None:
    assert ids(xprun()) == [*ALL, "xp_u"]
    assert ids(xprun("xp_t.py")) == [*ALL, "xp_u"]
    assert ids(xprun("xp_t.py::xp_u")) == ["xp_u"]
    assert ids(xprun("xp_t.py::xp_t")) == ALL
    assert ids(xprun("xp_t.py::xp_t[lr=0.1-opt=adam-a-b]")) == ["xp_t[lr=0.1-opt=adam-a-b]"]
    assert ids(xprun("xp_t.py::xp_t[lr=0.1-opt=adam-c]", "xp_t.py::xp_u")) == [
        "xp_t[lr=0.1-opt=adam-c]",
        "xp_u",
    ]


@pytest.mark.parametrize(
    ("label", "selected"),
    [
        ("opt=adam-lr=0.1-c", ["xp_t[lr=0.1-opt=adam-c]"]),  # any order
        ("lr=1e-3-opt=sgd-c", ["xp_t[lr=0.001-opt=sgd-c]"]),  # a value as -k reads it
        ("lr=0.1-opt=sgd-c-seed=0", ["xp_t[lr=0.1-opt=sgd-c]"]),  # a key the config fixes
        ("lr=0.1-opt=sgd-c-net.width=8", ["xp_t[lr=0.1-opt=sgd-c]"]),
        ("lr=0.1-opt=sgd-a-b", ["xp_t[lr=0.1-opt=sgd-a-b]"]),  # a param id holding '-'
        ("opt=sgd-lr=0.1", ["xp_t[lr=0.1-opt=sgd-a-b]", "xp_t[lr=0.1-opt=sgd-c]"]),
    ],
)
def test_i12_mut_a_label_selects_by_its_pieces(xprun, label: str, selected: list[str]) -> None:
    assert ids(xprun(f"xp_t.py::xp_t[{label}]")) == selected


@pytest.mark.parametrize(
    ("label", "hint"),
    [
        ("lr=0.5-opt=sgd-c", "lr=0.5"),
        ("lr=0.1-opt=sgd-c-seed=3", "seed=3"),
        ("lr=1e-4-opt=sgd-c", "lr=1e-4"),
        ("lr=0.1-opt=sgd-d", "opt=sgd-d"),  # a piece without '=' continues a value
        ("lr=0.1-opt=sgd-c-", None),
        ("-lr=0.1-opt=sgd-c", None),
    ],
)
def test_i12_mut_a_label_that_selects_nothing_is_not_found(
    xprun, sweep: Project, label: str, hint: str | None
) -> None:
    word = f"xp_t.py::xp_t[{label}]"
    result = xprun("xp_t.py", word, expect=4)
    lines = result.stderr.splitlines()
    assert f"ERROR: not found: {word}" in lines
    if hint:
        assert (
            f"(no run of xp_t.py::xp_t has {hint} in this launch; if the run was made with a "
            f"command-line override, give it again: {hint})"
        ) in lines
    else:
        assert "(no run of" not in result.stderr
    assert not sweep.log_dir.exists()


def test_i12_mut_every_missing_target_is_named(xprun) -> None:
    result = xprun("xp_t.py::xp_none", "xp_t.py::xp_t[lr=9-opt=x]", expect=4)
    assert (
        "ERROR: not found: xp_t.py::xp_none\nERROR: not found: xp_t.py::xp_t[lr=9-opt=x]\n"
        "(no run of xp_t.py::xp_t has lr=9, opt=x in this launch; if the run was made with a "
        "command-line override, give it again: lr=9 opt=x)"
    ) in result.stderr


def test_i12_mut_a_hash_or_its_prefix_selects_its_run(xprun) -> None:
    runs = listed(xprun())
    digest, nodeid = runs[3]
    for word in (digest, digest[:4], digest[:12]):
        assert listed(xprun(word)) == [(digest, nodeid)], word
    unique = [d[:4] for d, _ in runs if sum(o.startswith(d[:4]) for o, _ in runs) == 1]
    both = listed(xprun(unique[0], unique[1]))
    assert sorted(both) == sorted(r for r in runs if r[0][:4] in unique[:2])


def test_i12_mut_an_unknown_hash_is_not_found(xprun) -> None:
    runs = listed(xprun())
    unknown = next(
        p for p in ("ffff", "eeee", "dddd", "cccc") if not any(d.startswith(p) for d, _ in runs)
    )
    result = xprun(unknown, expect=4)
    assert f"ERROR: not found: {unknown}" in result.stderr.splitlines()


def test_i12_mut_an_ambiguous_prefix_lists_its_runs(tmp_path, monkeypatch) -> None:
    project = Project(tmp_path)
    project.write(
        "xp_many.py",
        "import xprun\n\n@xprun.grid(i=list(range(400)))\ndef xp_many(config):\n    return 1\n",
    )
    run = _inprocess.InProcess(project, monkeypatch).run
    runs = listed(run("--collect-only"))
    by_prefix: dict[str, list[str]] = {}
    for digest, nodeid in runs:
        by_prefix.setdefault(digest[:4], []).append(nodeid)
    prefix, nodeids = next((p, n) for p, n in sorted(by_prefix.items()) if len(n) == 2)
    result = run("--collect-only", prefix)
    assert result.ret == 4, result.output
    shown = "\n  ".join(sorted(nodeids))
    assert (
        f"hash prefix {prefix} is ambiguous: it matches 2 runs; give more of the hash:\n  {shown}"
    ) in result.stderr
    # a prefix long enough is one run
    digest = next(d for d, n in runs if n == nodeids[0])
    assert listed(run("--collect-only", digest[:8])) == [(digest, nodeids[0])]


def test_i12_mut_a_hash_from_the_log_directory_is_found_from_any_folder(
    tmp_path, monkeypatch
) -> None:
    project = Project(tmp_path)
    project.write("exps/xp_t.py", SWEEP)
    project.write("other/xp_o.py", SWEEP.replace("xp_t", "xp_o"))
    run = _inprocess.InProcess(project, monkeypatch).run
    assert run("exps/xp_t.py::xp_u").ret == 0
    record = json.loads(next(project.log_dir.glob("*/*/run.json")).read_text())
    (project.log_dir / ".hidden").mkdir()
    (project.log_dir / "xp_t.broken").mkdir()
    (project.log_dir / "xp_t.broken" / (record["hash"][:6] + "0" * 26)).mkdir()
    monkeypatch.chdir(project.root / "other")
    result = run("--collect-only", record["hash"][:6])
    assert result.ret == 0, result.output
    assert listed(result) == [(record["hash"], "exps/xp_t.py::xp_u")]
