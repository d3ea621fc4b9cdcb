"""The -k expression language: grammar, precedence, errors, and that it never evaluates code."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xprun.keyword import Expression, ParseError

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)


def evaluate(text, names):
    return Expression(text).evaluate(lambda ident: ident in names)


@pytest.mark.parametrize(
    ("text", "names", "expected"),
    [
        ("", set(), True),
        ("a", {"a"}, True),
        ("a", set(), False),
        ("not a", set(), True),
        ("not not a", {"a"}, True),
        ("a and b", {"a"}, False),
        ("a or b", {"b"}, True),
        ("a or b and c", {"a"}, True),  # and binds tighter than or
        ("(a or b) and c", {"a"}, False),
        ("not a or b", {"a"}, False),
        ("not (a or b)", set(), True),
        ("lr=0.1 and opt=sgd", {"lr=0.1", "opt=sgd"}, True),
        ("xp_a.py::xp_f[lr=0.1-x]", {"xp_a.py::xp_f[lr=0.1-x]"}, True),
        ("a,b", {"a,b"}, True),
    ],
)
def test_grammar_and_precedence(text, names, expected):
    assert evaluate(text, names) is expected


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("a and", 6, "expected not, left parenthesis or identifier; got end of input"),
        ("(a", 3, "expected right parenthesis"),
        ("a b", 3, "expected end of input; got identifier"),
        ("a ) b", 3, "got right parenthesis"),
        ("a & b", 3, 'unexpected character "&"'),
        ("or", 1, "got or"),
    ],
)
def test_errors_name_the_column(text, column, fragment):
    with pytest.raises(ParseError) as info:
        Expression(text)
    assert info.value.column == column
    assert fragment in str(info.value)


@given(st.text(max_size=40))
def test_arbitrary_text_parses_or_raises_parse_error_only(text):
    calls = []
    try:
        expression = Expression(text)
    except ParseError:
        return
    expression.evaluate(lambda ident: calls.append(ident) or True)
    assert all(isinstance(c, str) for c in calls)


def test_python_code_is_never_evaluated():
    # These would do something under eval(); here they are identifiers or parse errors.
    assert evaluate("__import__", {"__import__"}) is True
    with pytest.raises(ParseError):
        Expression("__import__('os').system('false')")


def test_bad_keyword_expression_exits_4(project):
    project.write("xp_a.py", "def xp_a():\n    pass\n")
    result = project.run("-k", "a and (")
    assert result.returncode == 4
    assert "column" in result.stderr
    assert not project.log_dir.exists()
