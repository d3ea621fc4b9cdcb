"""The Reader's query language, each rule checked where mutation testing found it unchecked
(tools/mutation.py, xprun/reader/query.py): how deep parentheses and ``not`` may nest, ...

Queries are written as users write them, through ``Reader(log_dir).filter(...)`` (what
``xprun show --where`` calls) on a small sweep made once by an in-process session
(tests/inprocess.py): fast enough to be run once per mutant, and a mutant of the query module
loaded in the test's process is the one the Reader uses.
"""

from __future__ import annotations

import inprocess as _inprocess
import pytest
from conftest import Project

import xprun
from xprun.reader import QueryError

SWEEP = """
import xprun

@xprun.config({"lr": 0.1, "opt": "sgd"})
@xprun.grid(lr=[0.1, 0.01], opt=["sgd", "adam"])
def xp_fit(config):
    return {"score": config.lr * (2 if config.opt == "adam" else 1)}
"""

#: The documented limit of nesting (docs/reader.md): parentheses and 'not', 100 deep.
DOCUMENTED_DEPTH = 100


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> xprun.Reader:
    project = Project(tmp_path_factory.mktemp("query"))
    project.write("xp_fit.py", SWEEP)
    with pytest.MonkeyPatch.context() as monkeypatch:
        result = _inprocess.InProcess(project, monkeypatch).run("-q")
    assert result.ret == 0, result.output
    return xprun.Reader(project.log_dir, warn=False)


def _configs(runs: xprun.Runs) -> list[tuple[float, str]]:
    return sorted((r.config["lr"], r.config["opt"]) for r in runs)


# -- nesting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("opener", ["(", "not ("])
def test_i10_mut_a_query_nested_exactly_100_deep_is_read(reader, opener):
    # 'not (' nests twice per level: 50 of them reach 100, and negate an even number of times.
    levels = DOCUMENTED_DEPTH // len(opener.split())
    text = opener * levels + "config.opt == adam" + ")" * levels
    assert _configs(reader.filter(text)) == [(0.01, "adam"), (0.1, "adam")]


@pytest.mark.parametrize("opener", ["(", "not "])
def test_i10_mut_a_query_nested_101_deep_is_refused_at_the_101st_level(reader, opener):
    closer = ")" if opener == "(" else ""
    text = opener * (DOCUMENTED_DEPTH + 1) + "status == complete" + closer * (DOCUMENTED_DEPTH + 1)
    with pytest.raises(QueryError, match="more than 100 deep") as raised:
        reader.filter(text)
    assert raised.value.position == DOCUMENTED_DEPTH * len(opener)  # the 101st opener


def test_i10_mut_a_query_nested_far_too_deep_is_a_query_error_not_a_recursion_error(reader):
    with pytest.raises(QueryError, match="more than 100 deep"):
        reader.filter("(" * 5000 + "status == complete" + ")" * 5000)


@pytest.mark.parametrize(
    "before",
    ["(status == complete) or ", "not (not status == complete) or ", "((attempt == 1)) or "],
)
def test_i10_mut_groups_before_a_nest_do_not_raise_its_limit(reader, before):
    levels = DOCUMENTED_DEPTH + 1
    with pytest.raises(QueryError, match="more than 100 deep"):
        reader.filter(before + "(" * levels + "status == complete" + ")" * levels)


def test_i10_mut_nesting_counts_depth_not_how_many_parentheses_a_query_has(reader):
    # 300 parenthesized terms side by side, and 'not' 300 times: never more than 2 deep.
    terms = " or ".join(["(config.opt == adam)"] * 150 + ["(not config.opt == adam)"] * 150)
    assert len(reader.filter(terms)) == 4
    anded = " and ".join(["(not (config.lr == 0.1))"] * 150)
    assert _configs(reader.filter(anded)) == [(0.01, "adam"), (0.01, "sgd")]


# -- error messages -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "got"),
    [
        ("config.lr >", ", got the end of the query"),  # nothing there: no text to quote
        ("status == complete attempt == 1", ", got a key 'attempt'"),
        ("config.lr == )", ", got ')'"),  # once: "got ')' ')'" before
        ("status == complete and AND", ", got 'and' 'AND'"),
        ("status foo", "expected an operator (== != < <= > >=) or 'in', got a key 'foo'"),
        ("status not foo", "expected 'in', got a key 'foo'"),
    ],
)
def test_i10_mut_an_error_names_what_it_got_quoting_its_text_if_any(reader, text, got):
    with pytest.raises(QueryError) as raised:
        reader.filter(text)
    assert raised.value.message.endswith(got)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("config.lr == )", "expected a value (a number, a quoted string, true, false or none)"),
        ("config.lr == and", "expected a value, got 'and'"),  # a word that is no value
        ("config.opt in [sgd, not]", "expected a value, got 'not'"),
    ],
)
def test_i10_mut_a_missing_value_says_what_a_value_is(reader, text, expected):
    with pytest.raises(QueryError) as raised:
        reader.filter(text)
    assert raised.value.message.startswith(expected)


@pytest.mark.parametrize(
    ("text", "opt"),
    [
        (r"config.opt == 'sg\d'", "sgd"),  # an unknown escape is the character itself
        (r"config.opt == 'n\ada\m'", None),  # after an 'n': still 'a', not a newline
        (r"config.opt == 'ad\am'", "adam"),
        (r'config.opt == "\a\d\am"', "adam"),
        (r"config.opt in ['s\g\d']", "sgd"),
        (r"status == 'complet\e' and config.opt == 'sgd'", "sgd"),  # after a 't': 'e'
    ],
)
def test_i10_mut_escapes_in_strings(reader, text, opt):
    expected = [] if opt is None else [(0.01, opt), (0.1, opt)]
    assert _configs(reader.filter(text)) == expected


@pytest.mark.parametrize("text", ["status == 'open\\", "status == 'a\\'"])
def test_i10_mut_a_string_ending_in_a_backslash_is_unterminated(reader, text):
    with pytest.raises(QueryError, match="unterminated string") as raised:
        reader.filter(text)
    assert raised.value.position == text.index("'")


@pytest.mark.parametrize(
    "text",
    [
        "not bogus == 1",
        "status == complete and bogus == 1",
        "bogus in [1] or status == complete",
        "not (status == running or (config.opt == sgd and bogus not in [1, 2]))",
    ],
)
def test_i10_mut_an_unknown_key_anywhere_in_a_query_is_named(reader, text):
    with pytest.raises(QueryError, match="unknown key 'bogus'") as raised:
        len(reader.filter(text))
    assert raised.value.position == text.index("bogus")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("config.opt == null", []),
        ("config.opt != NULL and config.lr == 0.1", [(0.1, "adam"), (0.1, "sgd")]),
        ("config.opt in [none, sgd] and config.lr < 0.05", [(0.01, "sgd")]),
    ],
)
def test_i10_mut_null_is_none(reader, text, expected):
    assert _configs(reader.filter(text)) == expected
