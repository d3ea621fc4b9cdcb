r"""``-k EXPR``: select runs with pytest's keyword-expression language.

The grammar (pytest's, with ``=`` and ``,`` allowed in identifiers so config items can be
named)::

    expression: expr? EOF
    expr:       and_expr ('or' and_expr)*
    and_expr:   not_expr ('and' not_expr)*
    not_expr:   'not' not_expr | '(' expr ')' | ident
    ident:      (\w|:|\+|-|\.|\[|\]|\\|/|=|,)+

An identifier matches a run when it is a case-insensitive substring of one of the run's
keywords: the parts of its node id (file, function, label) and ``key=value`` for each of its
config items.  The expression is parsed into a small tree and evaluated by walking it; user
text is never passed to ``eval``.  A malformed expression raises :class:`ParseError` with the
column at fault.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import UsageError
from .hookimpl import hookimpl


class TokenType(enum.Enum):
    LPAREN = "left parenthesis"
    RPAREN = "right parenthesis"
    OR = "or"
    AND = "and"
    NOT = "not"
    IDENT = "identifier"
    EOF = "end of input"


@dataclass(frozen=True)
class Token:
    type: TokenType
    value: str
    pos: int


class ParseError(UsageError):
    """A malformed expression; ``column`` is 1-based."""

    def __init__(self, column: int, message: str, text: str) -> None:
        self.column = column
        self.message = message
        super().__init__(f"wrong expression passed to '-k': {text}: at column {column}: {message}")


_IDENT = re.compile(r"(?:\w|:|\+|-|\.|\[|\]|\\|/|=|,)+")
_KEYWORDS = {"or": TokenType.OR, "and": TokenType.AND, "not": TokenType.NOT}


def _lex(text: str) -> Iterator[Token]:
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char in " \t":
            pos += 1
        elif char == "(":
            yield Token(TokenType.LPAREN, "(", pos)
            pos += 1
        elif char == ")":
            yield Token(TokenType.RPAREN, ")", pos)
            pos += 1
        else:
            match = _IDENT.match(text, pos)
            if not match:
                raise ParseError(pos + 1, f'unexpected character "{char}"', text)
            value = match.group(0)
            yield Token(_KEYWORDS.get(value, TokenType.IDENT), value, pos)
            pos += len(value)
    yield Token(TokenType.EOF, "", pos)


# The tree: ("or", a, b) | ("and", a, b) | ("not", a) | ("ident", name) | ("true",)
Node = tuple[Any, ...]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _lex(text)
        self.current = next(self.tokens)

    def accept(self, kind: TokenType) -> Token | None:
        if self.current.type is kind:
            token = self.current
            if kind is not TokenType.EOF:
                self.current = next(self.tokens)
            return token
        return None

    def expect(self, kind: TokenType) -> Token:
        token = self.accept(kind)
        if token is None:
            raise ParseError(
                self.current.pos + 1,
                f"expected {kind.value}; got {self.current.type.value}",
                self.text,
            )
        return token

    def expression(self) -> Node:
        node: Node = ("true",) if self.accept(TokenType.EOF) else self.expr()
        self.expect(TokenType.EOF)
        return node

    def expr(self) -> Node:
        node = self.and_expr()
        while self.accept(TokenType.OR):
            node = ("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.accept(TokenType.AND):
            node = ("and", node, self.not_expr())
        return node

    def not_expr(self) -> Node:
        if self.accept(TokenType.NOT):
            return ("not", self.not_expr())
        if self.accept(TokenType.LPAREN):
            node = self.expr()
            self.expect(TokenType.RPAREN)
            return node
        ident = self.accept(TokenType.IDENT)
        if ident is not None:
            return ("ident", ident.value)
        raise ParseError(
            self.current.pos + 1,
            f"expected not, left parenthesis or identifier; got {self.current.type.value}",
            self.text,
        )


class Expression:
    """A compiled keyword expression."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._tree = _Parser(text).expression()

    def evaluate(self, matcher: Callable[[str], bool]) -> bool:
        return _evaluate(self._tree, matcher)


def _evaluate(node: Node, matcher: Callable[[str], bool]) -> bool:
    kind = node[0]
    if kind == "ident":
        return matcher(node[1])
    if kind == "not":
        return not _evaluate(node[1], matcher)
    if kind == "and":
        return _evaluate(node[1], matcher) and _evaluate(node[2], matcher)
    if kind == "or":
        return _evaluate(node[1], matcher) or _evaluate(node[2], matcher)
    return True


def _flatten(config: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(config, dict):
        for key, value in config.items():
            yield from _flatten(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], config


def run_keywords(run: Any) -> list[str]:
    """The lowercased keywords of a run: node id parts and ``key=value`` config items."""
    nodeid: str = run.nodeid
    path, _, rest = nodeid.partition("::")
    words = [nodeid, *path.split("/"), rest]
    words += [f"{k}={v}" for k, v in _flatten(run.config)]
    words += list(run.param_ids.values())
    return [w.lower() for w in words]


def matches(expression: Expression, run: Any) -> bool:
    words = run_keywords(run)
    return expression.evaluate(lambda ident: any(ident.lower() in w for w in words))


@hookimpl
def xprun_collection_modifyitems(session: Any, runs: list[Any]) -> None:
    text = session.config.option.keyword
    if not text:
        return
    expression = Expression(text)
    selected, deselected = [], []
    for run in runs:
        (selected if matches(expression, run) else deselected).append(run)
    if deselected:
        session.config.hook.xprun_deselected(runs=deselected)
        runs[:] = selected
