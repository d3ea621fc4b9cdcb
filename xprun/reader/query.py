r"""The query language of ``Runs.filter`` and ``xprun show --where``.

A hand-written tokenizer and recursive-descent parser, in the manner of pytest's ``-k``
expressions: user text becomes a small tree that is evaluated by walking it; nothing is ever
passed to ``eval``, ``exec`` or ``DataFrame.query``.

Grammar::

    query      := [or_expr] EOF
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | primary
    primary    := "(" or_expr ")" | comparison
    comparison := KEY OP value | KEY ["not"] "in" list
    OP         := "==" | "!=" | "<" | "<=" | ">" | ">="
    list       := "[" [value ("," value)* [","]] "]"
    value      := STRING | NUMBER | "true" | "false" | "none" | WORD
    KEY        := NAME ("." NAME)*              e.g. config.model.width, outcome.score, status
    NAME       := [A-Za-z_][A-Za-z0-9_\-:/]*  |  [0-9]+
    STRING     := '...' | "..."                  with \\ escapes
    NUMBER     := [+-]? digits [. digits] [(e|E) [+-]? digits]   (1, -2, 0.5, 1e-3, .5)
    WORD       := a bare word on the right of an operator, taken as a string
                  (status == complete is status == "complete")

``true``/``false``/``none`` are case-insensitive (``True``, ``None`` work too).  ``and``
binds tighter than ``or``.  Parentheses and ``not`` nest at most :data:`MAX_DEPTH` deep, so
no query can exhaust the stack; a chain of ``and``/``or`` is one flat node whatever its
length.  A malformed query raises :class:`QueryError`, which shows the query with a caret
under the position at fault; nothing else comes out of parsing, whatever the text.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any


class QueryError(ValueError):
    """A query that cannot be parsed or evaluated; ``position`` is 0-based."""

    def __init__(self, message: str, text: str = "", position: int | None = None) -> None:
        self.message = message
        self.text = text
        self.position = position
        if position is not None:
            detail = f"{message} (at column {position + 1})\n  {text}\n  {' ' * position}^"
        else:
            detail = message
        super().__init__(detail)


class Tok(enum.Enum):
    LPAREN = "'('"
    RPAREN = "')'"
    LBRACKET = "'['"
    RBRACKET = "']'"
    COMMA = "','"
    OP = "an operator"
    AND = "'and'"
    OR = "'or'"
    NOT = "'not'"
    IN = "'in'"
    NAME = "a key"
    STRING = "a string"
    NUMBER = "a number"
    EOF = "the end of the query"


@dataclass(frozen=True)
class Token:
    kind: Tok
    text: str
    pos: int
    value: Any = None


# Possessive quantifiers: a long run of digits is matched in linear time.
_NUMBER = re.compile(r"[+-]?(?:\d++(?:\.\d*+)?+|\.\d++)(?:[eE][+-]?\d++)?+(?![A-Za-z_0-9.])")
MAX_DEPTH = 100  # nesting of parentheses and 'not'

_NAME = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_\-:/]*|\d+)(?:\.(?:[A-Za-z_][A-Za-z0-9_\-:/]*|\d+))*")
_OPS = ("==", "!=", "<=", ">=", "<", ">")
_WORDS = {"and": Tok.AND, "or": Tok.OR, "not": Tok.NOT, "in": Tok.IN}
_PUNCT = {"(": Tok.LPAREN, ")": Tok.RPAREN, "[": Tok.LBRACKET, "]": Tok.RBRACKET, ",": Tok.COMMA}
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char.isspace():
            pos += 1
            continue
        if char in _PUNCT:
            tokens.append(Token(_PUNCT[char], char, pos))
            pos += 1
            continue
        op = next((o for o in _OPS if text.startswith(o, pos)), None)
        if op is not None:
            tokens.append(Token(Tok.OP, op, pos))
            pos += len(op)
            continue
        if char == "=":
            raise QueryError("'=' is not an operator; write '=='", text, pos)
        if char in "'\"":
            value, end = _read_string(text, pos)
            tokens.append(Token(Tok.STRING, text[pos:end], pos, value))
            pos = end
            continue
        match = _NUMBER.match(text, pos)
        if match and (char in "+-.0123456789"):
            literal = match.group(0)
            tokens.append(Token(Tok.NUMBER, literal, pos, _number(literal, text, pos)))
            pos = match.end()
            continue
        match = _NAME.match(text, pos)
        if match:
            word = match.group(0)
            kind = _WORDS.get(word.lower()) if "." not in word else None
            tokens.append(Token(kind or Tok.NAME, word, pos))
            pos = match.end()
            continue
        raise QueryError(f"unexpected character {char!r}", text, pos)
    tokens.append(Token(Tok.EOF, "", len(text)))
    return tokens


def _number(literal: str, text: str, pos: int) -> int | float:
    """An integer literal is exact (one beyond float range orders above every float); one
    with a point or an exponent is a float (inf when huge)."""
    if re.fullmatch(r"[+-]?\d+", literal):
        try:
            return int(literal)
        except ValueError:  # Python's limit on converting digits (4300 by default)
            raise QueryError(f"a number of {len(literal)} digits is too long", text, pos) from None
    return float(literal)


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out = []
    pos = start + 1
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            if pos + 1 >= len(text):
                break
            out.append(_ESCAPES.get(text[pos + 1], text[pos + 1]))
            pos += 2
            continue
        if char == quote:
            return "".join(out), pos + 1
        out.append(char)
        pos += 1
    raise QueryError("unterminated string", text, start)


# The tree: ("or", (a, b, ...)) | ("and", (a, b, ...)) | ("not", a) |
#           ("cmp", key, op, value, pos) | ("in", key, values, negated, pos) | ("all",)
Node = tuple[Any, ...]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def accept(self, kind: Tok) -> Token | None:
        token = self.current
        if token.kind is kind:
            if kind is not Tok.EOF:
                self.index += 1
            return token
        return None

    def fail(self, expected: str) -> QueryError:
        token = self.current
        got = token.kind.value  # "')'", "'and'", "the end of the query": already the token
        if token.text and got != repr(token.text):
            got = f"{got} {token.text!r}"  # "a key 'attempt'", "'and' 'AND'"
        return QueryError(f"expected {expected}, got {got}", self.text, token.pos)

    def query(self) -> Node:
        node: Node = ("all",) if self.current.kind is Tok.EOF else self.or_expr()
        if not self.accept(Tok.EOF):
            raise self.fail("'and', 'or' or the end of the query")
        return node

    def or_expr(self) -> Node:
        nodes = [self.and_expr()]
        while self.accept(Tok.OR):
            nodes.append(self.and_expr())
        return nodes[0] if len(nodes) == 1 else ("or", tuple(nodes))

    def and_expr(self) -> Node:
        nodes = [self.not_expr()]
        while self.accept(Tok.AND):
            nodes.append(self.not_expr())
        return nodes[0] if len(nodes) == 1 else ("and", tuple(nodes))

    def not_expr(self) -> Node:
        token = self.current
        if token.kind not in (Tok.NOT, Tok.LPAREN):
            return self.comparison()
        if self.depth >= MAX_DEPTH:
            raise QueryError(
                f"the query nests parentheses and 'not' more than {MAX_DEPTH} deep",
                self.text,
                token.pos,
            )
        self.index += 1
        self.depth += 1
        if token.kind is Tok.NOT:
            node: Node = ("not", self.not_expr())
        else:
            node = self.or_expr()
            if not self.accept(Tok.RPAREN):
                raise self.fail("')'")
        self.depth -= 1
        return node

    def comparison(self) -> Node:
        key = self.accept(Tok.NAME)
        if key is None:
            raise self.fail("a key (such as config.lr or status), 'not' or '('")
        op = self.accept(Tok.OP)
        if op is not None:
            return ("cmp", key.text, op.text, self.value(), key.pos)
        negated = self.accept(Tok.NOT) is not None
        if not self.accept(Tok.IN):
            raise self.fail("an operator (== != < <= > >=) or 'in'" if not negated else "'in'")
        return ("in", key.text, self.list(), negated, key.pos)

    def list(self) -> tuple[Any, ...]:
        if not self.accept(Tok.LBRACKET):
            raise self.fail("'[' to start a list")
        values: list[Any] = []
        while not self.accept(Tok.RBRACKET):
            values.append(self.value())
            if not self.accept(Tok.COMMA):
                if not self.accept(Tok.RBRACKET):
                    raise self.fail("',' or ']'")
                break
        return tuple(values)

    def value(self) -> Any:
        token = self.current
        if token.kind in (Tok.STRING, Tok.NUMBER):
            self.index += 1
            return token.value
        if token.kind is Tok.NAME or token.kind in (Tok.AND, Tok.OR, Tok.NOT, Tok.IN):
            if token.kind is not Tok.NAME:
                raise self.fail("a value")
            self.index += 1
            lowered = token.text.lower()
            if lowered in ("true", "false"):
                return lowered == "true"
            if lowered in ("none", "null"):
                return None
            return token.text  # a bare word: a string
        raise self.fail("a value (a number, a quoted string, true, false or none)")


@dataclass(frozen=True)
class Query:
    """A parsed query: its text, its tree, and the keys it reads."""

    text: str
    tree: Node

    @classmethod
    def parse(cls, text: str) -> Query:
        if not isinstance(text, str):
            raise QueryError(f"a query is a string, got {type(text).__name__}")
        return cls(text, _Parser(text).query())

    def referenced_keys(self) -> list[tuple[str, int]]:
        """Every key the query reads, with its position."""
        found: list[tuple[str, int]] = []

        def walk(node: Node) -> None:
            if node[0] in ("cmp", "in"):
                found.append((node[1], node[-1]))
            elif node[0] in ("and", "or"):
                for child in node[1]:
                    walk(child)
            elif node[0] == "not":
                walk(node[1])

        walk(self.tree)
        return found
