r"""``-k EXPR``: select runs with pytest's keyword-expression language.

The grammar (pytest's, with ``=`` and ``,`` allowed in identifiers so config items can be
named)::

    expression: expr? EOF
    expr:       and_expr ('or' and_expr)*
    and_expr:   not_expr ('and' not_expr)*
    not_expr:   'not' not_expr | '(' expr ')' | ident
    ident:      (\w|:|\+|-|\.|\[|\]|\\|/|=|,)+

A plain identifier matches a run when it is a case-insensitive substring of one of the run's
keywords: the parts of its node id (file, function, label), ``key=value`` for each config
item and its fixture param ids, as in pytest.  An identifier of the form ``key=value`` (a key
without node-id characters ``[ ] : / \``) names a config item or fixture param instead, and
must match its *whole* value: ``seed=1`` never selects seed 10, ``lr=0.1`` never 0.15.  The key
is a dotted path or its tail (``width=64`` matches ``model.width``); a number matches the
number it equals (``lr=1e-3`` matches 0.001).

The expression is parsed into a small tree and evaluated by walking it; user text is never
passed to ``eval``.  Nesting (parentheses and ``not``) is limited to ``MAX_DEPTH`` levels, so
no input can exhaust the stack; a malformed or too deeply nested expression raises
:class:`ParseError`, a usage error naming the column at fault.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import UsageError
from .hookimpl import hookimpl

MAX_DEPTH = 100  # levels of parentheses and 'not'; far beyond any real selection
_SHOWN = 200  # characters of the expression quoted in an error message


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
        shown = text if len(text) <= _SHOWN else f"{text[:_SHOWN]}... ({len(text)} characters)"
        super().__init__(f"wrong expression passed to '-k': {shown}: at column {column}: {message}")


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


# The tree: ("or", [node, ...]) | ("and", [node, ...]) | ("not", node) | ("ident", name)
# | ("true",).  Chains of 'and'/'or' are one node with a list, so a long chain is no deeper
# than a short one; only nesting adds depth, and the parser bounds it.
Node = tuple[Any, ...]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _lex(text)
        self.current = next(self.tokens)
        self.depth = 0

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
        nodes = [self.and_expr()]
        while self.accept(TokenType.OR):
            nodes.append(self.and_expr())
        return nodes[0] if len(nodes) == 1 else ("or", nodes)

    def and_expr(self) -> Node:
        nodes = [self.not_expr()]
        while self.accept(TokenType.AND):
            nodes.append(self.not_expr())
        return nodes[0] if len(nodes) == 1 else ("and", nodes)

    def not_expr(self) -> Node:
        token = self.current
        if self.accept(TokenType.NOT):
            with self._nested(token):
                return ("not", self.not_expr())
        if self.accept(TokenType.LPAREN):
            with self._nested(token):
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

    @contextlib.contextmanager
    def _nested(self, token: Token) -> Iterator[None]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError(
                token.pos + 1,
                f"nested more than {MAX_DEPTH} levels deep (parentheses and 'not'); "
                "simplify the expression",
                self.text,
            )
        yield
        self.depth -= 1


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
        return all(_evaluate(child, matcher) for child in node[1])
    if kind == "or":
        return any(_evaluate(child, matcher) for child in node[1])
    return True


@dataclass(frozen=True)
class _Item:
    """A ``key=value`` identifier: which item it names and the value it must equal."""

    key: str  # lowercased dotted path, or its tail
    text: str  # lowercased value
    number: int | float | None  # the value as a finite number, when it is one


_NODEID_CHARS = frozenset("[]:/\\")


@functools.lru_cache(maxsize=1024)
def _item(ident: str) -> _Item | None:
    """The ``key=value`` reading of an identifier, or None for a plain word."""
    key, eq, value = ident.partition("=")
    if not eq or not key or not _NODEID_CHARS.isdisjoint(key):
        return None
    return _Item(key.lower(), value.lower(), _number(value))


def _number(text: str) -> int | float | None:
    try:
        return int(text)  # exact, however large (up to Python's digit limit)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _flatten(config: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(config, dict):
        for key, value in config.items():
            yield from _flatten(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], config


class _RunKeywords:
    """What ``-k`` sees of one run: words for substring matching, items for ``key=value``."""

    def __init__(self, run: Any) -> None:
        nodeid: str = run.nodeid
        path, _, rest = nodeid.partition("::")
        self.items = [(str(k).lower(), v) for k, v in _flatten(run.config)]
        self.items += [(name.lower(), param_id) for name, param_id in run.param_ids.items()]
        words = [nodeid, *path.split("/"), rest, *run.param_ids.values()]
        words += [f"{k}={_text(v)}" for k, v in self.items]
        self.words = [w.lower() for w in words]

    def match(self, ident: str) -> bool:
        item = _item(ident)
        if item is None:
            word = ident.lower()
            return any(word in w for w in self.words)
        return any(
            (key == item.key or key.endswith("." + item.key)) and _equals(item, value)
            for key, value in self.items
        )


def _text(value: Any) -> str:
    return str(value).lower()


def _equals(item: _Item, value: Any) -> bool:
    if _text(value) == item.text:
        return True
    if item.number is None or isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value == item.number  # int/float comparison in Python is exact, never overflows


def matches(expression: Expression, run: Any) -> bool:
    return expression.evaluate(_RunKeywords(run).match)


def item_matcher(run: Any) -> Callable[[str], bool]:
    """Whether a ``key=value`` word names one of ``run``'s config items or fixture params,
    by ``-k``'s rule (whole value, numbers by value, a dotted path or its tail); False for
    a plain word.  Node-id labels are read with it (``collect.select_runs``)."""
    keywords = _RunKeywords(run)
    return lambda word: _item(word) is not None and keywords.match(word)


@hookimpl
def xprun_collection_modifyitems(session: Any, runs: list[Any]) -> None:
    text = session.config.option.keyword
    if not text:
        return
    expression = Expression(text)
    selected: list[Any] = []
    deselected: list[Any] = []
    for run in runs:
        (selected if matches(expression, run) else deselected).append(run)
    if deselected:
        session.config.hook.xprun_deselected(runs=deselected)
        runs[:] = selected
