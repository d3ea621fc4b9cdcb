"""``-k``, each rule checked where mutation testing found it unchecked (tools/mutation.py,
xprun/keyword.py): ``key=value`` against whole values, numbers and dotted tails; plain words
against every part of a node id; nesting at the documented 100 levels; error messages.

Expressions are given as users give them, ``xprun --collect-only -q -k EXPR``, in a session
run in-process (tests/inprocess.py) on a small project made once: fast enough to be run once
per mutant, and a mutant of ``xprun.keyword`` loaded in the test's process is the one the
session uses (``python -m xprun`` would import the original).
"""

from __future__ import annotations

import inprocess as _inprocess
import pytest
from conftest import Project

#: The documented limit of nesting (docs/guide.md): parentheses and 'not', 100 levels.
DOCUMENTED_DEPTH = 100

SWEEP = """
import xprun

@xprun.fixture(params=["mnist", "mnist2"])
def data(request):
    return request.param

@xprun.config({"lr": 0.1, "opt": "sgd", "model": {"width": 64}, "flag": True})
@xprun.grid(lr=[0.1, 0.15, 1e-3], seed=[1, 10])
def xp_fit(config, data):
    pass
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = Project(tmp_path_factory.mktemp("keyword"))
    project.write("xp_fit.py", SWEEP)
    return project


@pytest.fixture
def select(sweep: Project, monkeypatch: pytest.MonkeyPatch):
    """``xprun --collect-only -q -k EXPR`` → the labels of the runs it lists."""

    def run(expression: str) -> list[str]:
        result = _inprocess.InProcess(sweep, monkeypatch).run(
            "--collect-only", "-q", "-k", expression
        )
        assert result.ret in (0, 5), result.output
        return sorted(
            line.split()[-1].partition("[")[2].rstrip("]")
            for line in result.stdout.splitlines()
            if "::" in line
        )

    return run


ALL = sorted(
    f"lr={lr}-seed={seed}-{data}"
    for lr in ("0.1", "0.15", "0.001")
    for seed in (1, 10)
    for data in ("mnist", "mnist2")
)


def _only(*parts: str) -> list[str]:
    return [label for label in ALL if all(part in label.split("-") for part in parts)]


# -- key=value: a whole value, by number, by dotted tail ---------------------------------------


@pytest.mark.parametrize(
    ("expression", "parts"),
    [
        ("seed=1", ["seed=1"]),  # never 10
        ("lr=0.1", ["lr=0.1"]),  # never 0.15
        ("lr=1e-3", ["lr=0.001"]),  # numbers by value
        ("seed=1.0", ["seed=1"]),
        ("seed=01", ["seed=1"]),
        ("data=mnist", ["mnist"]),  # a fixture param, never mnist2
        ("DATA=MNIST2", ["mnist2"]),  # text without case
    ],
)
def test_i10_mut_key_value_matches_a_whole_value(select, expression, parts):
    assert select(expression) == _only(*parts)


@pytest.mark.parametrize(
    ("expression", "selected"),
    [
        ("width=64", True),  # the dotted path's tail
        ("model.width=64", True),
        ("idth=64", False),  # a tail is whole names, not part of one
        ("width=64.0", True),
        ("width=640", False),
        ("width=6.4e1", True),
        ("width=inf", False),
        ("opt=sgd", True),
        ("opt=SGD", True),
        ("opt=sg", False),
        ("flag=true", True),  # a boolean by its text
        ("flag=1", False),  # not by number: True is not 1
        ("flag=1.0", False),
        ("missing=1", False),
    ],
)
def test_i10_mut_key_value_on_a_constant_item(select, expression, selected):
    assert select(expression) == (ALL if selected else [])


def test_i10_mut_a_number_matches_by_value_however_large(select):
    assert select("seed=" + "0" * 30 + "1") == _only("seed=1")
    assert select("seed=1" + "0" * 400) == []  # exact: no float rounds it to anything


# -- plain words: substrings of every part of the node id and items ---------------------------


@pytest.mark.parametrize(
    ("expression", "parts"),
    [
        ("xp_fit.py", None),  # the file
        ("XP_FIT", None),  # the function, without case
        ("mnist2", ["mnist2"]),  # a fixture param's id
        ("15-seed", ["lr=0.15"]),  # part of the label
        ("=0.15", ["lr=0.15"]),  # no key: a word, matched against key=value items
        ("xp_fit.py::xp_fit[lr=0.1-", ["lr=0.1"]),  # node id characters: a word
        ("sgd", None),
        ("model.width=64 and seed=10", ["seed=10"]),
        ("not mnist2 and not lr=0.1 and not lr=0.15", ["lr=0.001", "mnist"]),
    ],
)
def test_i10_mut_a_plain_word_is_a_substring_of_any_part(select, expression, parts):
    assert select(expression) == (ALL if parts is None else _only(*parts))


def test_i10_mut_an_empty_expression_and_blanks_select_every_run(select):
    assert select("") == ALL
    assert select(" \t") == ALL
    assert select("\tseed=1\t") == _only("seed=1")


# -- nesting: the documented 100 levels (docs/guide.md) ----------------------------------------


@pytest.mark.parametrize("opener", ["(", "not ("])
def test_i10_mut_an_expression_nested_exactly_100_deep_selects(select, opener):
    levels = DOCUMENTED_DEPTH // len(opener.split())  # 'not (' is two levels
    assert select(opener * levels + "seed=1" + ")" * levels) == _only("seed=1")


@pytest.mark.parametrize("opener", ["(", "not "])
def test_i10_mut_an_expression_nested_101_deep_is_a_usage_error_at_that_column(
    sweep, monkeypatch, opener
):
    closer = ")" if opener == "(" else ""
    levels = DOCUMENTED_DEPTH + 1
    expression = opener * levels + "seed=1" + closer * levels
    result = _inprocess.InProcess(sweep, monkeypatch).run("--collect-only", "-k", expression)
    assert result.ret == 4
    column = DOCUMENTED_DEPTH * len(opener) + 1  # the 101st opener
    assert f"at column {column}: nested more than 100 levels deep" in result.stderr


def test_i10_mut_nesting_counts_depth_not_how_many_parentheses(select):
    assert select(" or ".join(["(not (seed=1))"] * 150)) == _only("seed=10")


@pytest.mark.parametrize("before", ["(seed=1) or ", "not (not seed=1) or ", "((seed=1)) or "])
def test_i10_mut_groups_before_a_nest_do_not_raise_its_limit(sweep, monkeypatch, before):
    levels = DOCUMENTED_DEPTH + 1
    expression = before + "(" * levels + "seed=10" + ")" * levels
    result = _inprocess.InProcess(sweep, monkeypatch).run("--collect-only", "-k", expression)
    assert result.ret == 4
    assert "nested more than 100 levels deep" in result.stderr


# -- errors ------------------------------------------------------------------------------------


def test_i10_mut_a_long_wrong_expression_is_shown_cut_at_200_characters(sweep, monkeypatch):
    expression = "seed=1 and " * 30 + "&"
    result = _inprocess.InProcess(sweep, monkeypatch).run("--collect-only", "-k", expression)
    assert result.ret == 4
    shown = f"passed to '-k': {expression[:200]}... ({len(expression)} characters): at column "
    assert shown + f"{len(expression)}: unexpected character" in result.stderr
    whole = "seed=1 or " + "x" * 189 + "&"  # 200 characters: shown whole
    result = _inprocess.InProcess(sweep, monkeypatch).run("--collect-only", "-k", whole)
    assert f"passed to '-k': {whole}: at column 200: unexpected character" in result.stderr
