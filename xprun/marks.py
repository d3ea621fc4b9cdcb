"""Marks: ``xprun.mark.NAME`` and ``xprun.param(value, marks=...)``, as pytest's.

A mark is a name with arguments (:class:`Mark`).  ``xprun.mark.slow`` makes a
:class:`MarkDecorator`; applied to an ``xp_*`` function it records the mark in the function's
declaration (``declare.ExperimentDeclaration.marks``), called with arguments it returns a new
decorator with them (``xprun.mark.gpu(n=2)``).  ``xprun.param(1.0, marks=xprun.mark.xfail)``
marks one value of a grid axis: the runs that take that value get the marks.

This module only records marks.  What they do is elsewhere: ``skip``, ``skipif`` and ``xfail``
in ``skipping.py``; ``-m EXPR``, ``--markers``, ``--strict-markers`` and the warning for an
unknown mark in ``markers.py``.  A mark never enters a run's hash: marks say how a launch
treats a run, not what the run computes.

Standard library only: experiment modules import it through ``xprun.mark``.  ``Mark`` and
``ParamSet`` are not tuples, so one given where a plain value is expected (a config, a
fixture's params) is refused as what it is rather than read as a list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: The marks xprun itself acts on (registered without ``[tool.xprun] markers``).
BUILTIN_MARKERS = {
    "skip": "skip(reason=None): never start the run; it is reported skipped and nothing is written",
    "skipif": "skipif(condition, ..., reason=None): skip the run when a condition (a bool) is true",
    "xfail": "xfail(condition=True, ..., reason=None, raises=None, strict=False): the run is "
    "expected to fail; a failure (of type raises) is recorded xfail, not failed, and is not "
    "run again; a pass is complete (XPASS), or failed when strict",
}


@dataclass(frozen=True, slots=True)
class Mark:
    """A mark: its name and the arguments it was given (``xprun.mark.gpu(n=2)``)."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def combined_with(self, other: Mark) -> Mark:
        """This mark with ``other``'s arguments added (keywords of ``other`` win)."""
        return Mark(self.name, (*self.args, *other.args), {**self.kwargs, **other.kwargs})


class MarkDecorator:
    """``xprun.mark.NAME``: applied to a function it marks it; called otherwise, it returns
    a decorator with the arguments added (pytest's rule: a single callable positional
    argument and no keyword is the function to mark)."""

    __slots__ = ("mark",)

    def __init__(self, mark: Mark) -> None:
        self.mark = mark

    @property
    def name(self) -> str:
        return self.mark.name

    @property
    def args(self) -> tuple[Any, ...]:
        return self.mark.args

    @property
    def kwargs(self) -> Mapping[str, Any]:
        return self.mark.kwargs

    def with_args(self, *args: Any, **kwargs: Any) -> MarkDecorator:
        """A decorator with these arguments added, even when the only one is a callable."""
        return MarkDecorator(self.mark.combined_with(Mark(self.name, args, kwargs)))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and callable(args[0]) and not isinstance(args[0], type):
            from .declare import add_mark

            return add_mark(args[0], self.mark)
        return self.with_args(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<MarkDecorator {self.mark!r}>"


class MarkGenerator:
    """``xprun.mark``: any attribute is a mark of that name (``xprun.mark.slow``).

    Names are not checked here (experiment modules are imported before the project's
    settings matter); a mark neither built in nor in ``[tool.xprun] markers`` is warned
    about once the experiment is collected, or refused under ``--strict-markers``.
    """

    def __getattr__(self, name: str) -> MarkDecorator:
        if name.startswith("_"):
            raise AttributeError(f"mark names must not start with an underscore: {name!r}")
        return MarkDecorator(Mark(name))

    def __repr__(self) -> str:
        return "xprun.mark"


mark = MarkGenerator()


@dataclass(frozen=True, slots=True)
class ParamSet:
    """One value of a grid axis with marks (``xprun.param``); its value alone is hashed."""

    value: Any
    marks: tuple[Mark, ...]


def normalize(marks: MarkDecorator | Mark | Iterable[MarkDecorator | Mark]) -> tuple[Mark, ...]:
    """``marks=`` as pytest takes it: one mark or decorator, or a collection of them."""
    items = [marks] if isinstance(marks, MarkDecorator | Mark) else list(marks)
    found = []
    for item in items:
        found_mark = item.mark if isinstance(item, MarkDecorator) else item
        if not isinstance(found_mark, Mark):
            raise TypeError(
                f"marks= takes xprun.mark.NAME decorators (or a list of them), got "
                f"{type(item).__name__} {item!r}"
            )
        found.append(found_mark)
    return tuple(found)


def param(value: Any, *, marks: MarkDecorator | Mark | Iterable[Any] = ()) -> ParamSet:
    """One value of a grid axis with marks, as ``pytest.param``:
    ``@xprun.grid(lr=[0.1, xprun.param(1.0, marks=xprun.mark.xfail)])``.

    The runs that take this value from this axis carry the marks; the value is hashed as if
    it were given plain (a mark never changes a run's identity).
    """
    if isinstance(value, ParamSet):
        raise TypeError("xprun.param() takes a plain value, not another xprun.param()")
    return ParamSet(value, normalize(marks))
