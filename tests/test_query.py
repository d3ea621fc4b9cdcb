"""The Reader's query language: operators, precedence, literals, errors, and safety."""

from __future__ import annotations

import builtins

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xprun.reader.query import Query, QueryError, tokenize
from xprun.reader.runs import _evaluate

FRAME = pd.DataFrame(
    {
        "status": ["complete", "failed", "complete", "running", "complete"],
        "attempt": [1, 2, 1, 1, 3],
        "config.lr": [0.1, 0.01, 1e-3, 0.1, None],
        "config.opt": ["sgd", "adam", "sgd", "adam's", None],
        "config.flag": [True, False, True, None, False],
        "config.mixed": [1, "one", 2.5, None, True],
        "outcome.score": [0.9, float("nan"), 0.5, 0.7, 0.1],
        "start": [
            "2026-11-01T10:00",
            "2026-11-02T10:00",
            "2026-11-03T10:00",
            "2026-11-04T10:00",
            "2026-11-05T10:00",
        ],
    }
)


def rows(text):
    query = Query.parse(text)
    return list(FRAME.index[_evaluate(query, query.tree, FRAME)])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", [0, 1, 2, 3, 4]),
        ("status == complete", [0, 2, 4]),
        ('status == "complete"', [0, 2, 4]),
        ("status != 'complete'", [1, 3]),
        ("attempt > 1", [1, 4]),
        ("attempt >= 2", [1, 4]),
        ("attempt < 2", [0, 2, 3]),
        ("attempt <= 1", [0, 2, 3]),
        ("config.lr == 0.1", [0, 3]),
        ("config.lr < 1e-2", [2]),
        ("config.lr <= 1E-2", [1, 2]),
        ("config.lr > -.5", [0, 1, 2, 3]),
        ("config.lr == none", [4]),
        ("config.lr != None", [0, 1, 2, 3]),
        ("config.flag == true", [0, 2]),
        ("config.flag == False", [1, 4]),
        ("config.opt in [sgd, 'adam']", [0, 1, 2]),
        ("config.opt not in ['sgd', none]", [1, 3]),
        ('config.opt == "adam\'s"', [3]),
        ("config.opt == 'adam\\'s'", [3]),
        ("attempt in [1, 3,]", [0, 2, 3, 4]),
        ("config.mixed == 1", [0]),  # True is not 1
        ("config.mixed == true", [4]),
        ("config.mixed > 2", [2]),  # text and booleans never order against numbers
        ("outcome.score > 0.6", [0, 3]),  # NaN compares false
        ("start >= '2026-11-03'", [2, 3, 4]),  # ISO times order as text
        ("config.opt < b", [1, 3]),
        ("not status == complete", [1, 3]),
        ("status == complete and attempt == 1 or status == running", [0, 2, 3]),
        ("status == running or status == complete and attempt == 1", [0, 2, 3]),
        ("(status == running or status == complete) and attempt == 1", [0, 2, 3]),
        ("status == complete and (attempt == 3 or config.opt == sgd)", [0, 2, 4]),
        ("not (status == complete or status == failed)", [3]),
        ("not not attempt == 2", [1]),
        ("status == complete AND attempt == 3", [4]),  # keywords are case-insensitive
    ],
)
def test_operators_precedence_and_literals(text, expected):
    assert rows(text) == expected


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("config.lr >", 12, "expected a value"),
        ("config.lr = 1", 11, "write '=='"),
        ("(status == complete", 20, "expected ')'"),
        ("status == complete attempt == 1", 20, "expected 'and', 'or'"),
        ("== 1", 1, "expected a key"),
        ("status in complete", 11, "expected '['"),
        ("status in [a b]", 14, "expected ',' or ']'"),
        ("status == 'open", 11, "unterminated string"),
        ("status == complete and", 23, "expected a key"),
        ("status not == 1", 12, "expected 'in'"),
        ("config.lr ~ 1", 11, "unexpected character"),
        ("status == and", 11, "expected a value"),
    ],
)
def test_errors_show_the_position(text, column, fragment):
    with pytest.raises(QueryError) as info:
        Query.parse(text)
    assert fragment in str(info.value)
    assert info.value.position == column - 1
    assert f"(at column {column})" in str(info.value)
    assert str(info.value).splitlines()[-1] == "  " + " " * (column - 1) + "^"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("config.opt < 1", "holds text"),
        ("attempt < 'x'", "holds numbers"),
        ("config.lr < none", "only == and !="),
        ("config.flag < true", "boolean"),
    ],
)
def test_type_errors_are_query_errors(text, fragment):
    with pytest.raises(QueryError, match=fragment):
        rows(text)


def test_number_literals():
    values = [t.value for t in tokenize("1 -2 +3 0.5 .5 1e-3 2E+2 -1.5e1") if t.value is not None]
    assert values == [1, -2, 3, 0.5, 0.5, 1e-3, 200.0, -15.0]
    assert [type(v) for v in values[:3]] == [int, int, int]


class _Forbidden(Exception):
    pass


@settings(max_examples=400, deadline=None)
@given(
    st.text(max_size=60)
    | st.lists(
        st.sampled_from(
            [
                "config.lr",
                "status",
                "==",
                "<",
                "in",
                "not",
                "and",
                "or",
                "(",
                ")",
                "[",
                "]",
                ",",
                "'x'",
                "1e-3",
                "none",
                "true",
                "__import__('os')",
                "eval(",
                ";",
                "lambda",
                "{",
                "}",
            ]
        ),
        max_size=12,
    ).map(" ".join)
)
def test_arbitrary_queries_never_run_code_and_only_raise_query_errors(monkeypatch_text):
    real_eval, real_exec = builtins.eval, builtins.exec

    def forbidden(*args, **kwargs):
        raise _Forbidden("eval/exec called")

    builtins.eval, builtins.exec = forbidden, forbidden
    try:
        try:
            query = Query.parse(monkeypatch_text)
        except QueryError:
            return
        for key, _ in query.referenced_keys():
            if key not in FRAME.columns:
                return  # unknown keys are reported by the Reader (tested there)
        try:
            mask = _evaluate(query, query.tree, FRAME)
        except QueryError:
            return
        assert mask.dtype == bool and len(mask) == len(FRAME)
    finally:
        builtins.eval, builtins.exec = real_eval, real_exec


def test_python_in_a_query_is_a_syntax_error():
    for text in (
        "__import__('os').system('true')",
        "config.lr == __import__('os')",
        "status == (lambda: 1)()",
    ):
        with pytest.raises(QueryError):
            Query.parse(text)
