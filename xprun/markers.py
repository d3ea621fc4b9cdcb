"""Selecting runs by mark, and knowing which marks exist (pytest's ``mark`` plugin).

- ``-m EXPR`` keeps the runs whose marks match the expression, in the language of ``-k``
  (``keyword.Expression``: ``and``, ``or``, ``not``, parentheses), where a word is a mark name
  matched exactly: ``-m 'slow and not gpu'``.  The runs left out go to ``xprun_deselected``.
- Hydra's multirun flag is accepted and ignored, with a note, since every xprun invocation is a
  multirun and Hydra users type it: ``--multirun``, and ``-m`` followed by nothing (another
  option, or the end) or by an override (a word with ``=``, which is then an override as
  any other: ``xprun -m lr=0.1,0.01``).  A mark expression never holds ``=``.
- Marks are registered in ``[tool.xprun] markers = ["slow: slow runs", ...]``; ``skip``,
  ``skipif`` and ``xfail`` are built in.  A mark that is neither is warned about once per
  name, naming the experiment, its file and how to register it; ``--strict-markers`` makes it a
  usage error.  ``--markers`` lists the registered marks and exits.

Standard library only at the top (``xprun --help`` imports this module); the hook
implementations are unmarked.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from .collect import Experiment
    from .config import Config
    from .marks import Mark
    from .runspec import RunSpec
    from .session import Session

#: ``-m`` given without a word after it: Hydra's multirun flag.
_HYDRA_FLAG = "\0-m"
_HYDRA_NOTE = (
    "xprun: note: {flag} is Hydra's multirun flag, ignored here: every xprun invocation is a "
    "multirun (lr=0.1,0.01 sweeps as it is)\n"
)


def xprun_addoption(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    group = parser.add_argument_group("marks")
    group.add_argument(
        "-m",
        dest="markexpr",
        nargs="?",
        const=_HYDRA_FLAG,
        default="",
        metavar="MARKEXPR",
        help="only runs whose marks match the expression ('slow and not gpu'; the language "
        "of -k, a word is a mark name); -m followed by an override (lr=0.1,0.01) or by "
        "nothing is Hydra's multirun flag, accepted and ignored",
    )
    group.add_argument(
        "--multirun",
        action="store_true",
        help="Hydra's multirun flag, accepted and ignored: every xprun invocation is a multirun",
    )
    group.add_argument(
        "--markers",
        action="store_true",
        help="list the registered marks ([tool.xprun] markers and the built-in ones) and exit",
    )
    group.add_argument(
        "--strict-markers",
        action="store_true",
        dest="strict_markers",
        help="a mark that is not registered in [tool.xprun] markers is a usage error "
        "(otherwise a warning)",
    )


def registered(settings: dict[str, Any]) -> dict[str, str]:
    """Every registered mark: its name → its line (``"slow: slow runs"``), the built-in ones
    first."""
    from .marks import BUILTIN_MARKERS

    found = dict(BUILTIN_MARKERS)
    for line in settings.get("markers") or ():
        name = line.split(":", 1)[0].split("(", 1)[0].strip()
        found.setdefault(name, line.strip())
    return found


def xprun_configure(config: Config) -> None:
    option = config.option
    word = option.markexpr
    if word == _HYDRA_FLAG or "=" in word:
        sys.stderr.write(_HYDRA_NOTE.format(flag="-m"))
        if word != _HYDRA_FLAG:  # the override Hydra's flag came before
            config.override_args.insert(0, word)
        option.markexpr = ""
    elif option.multirun:
        sys.stderr.write(_HYDRA_NOTE.format(flag="--multirun"))
    if option.markexpr:
        _expression(option.markexpr)  # a malformed one stops here, before any collection
        if option.strict_markers:
            _check_names(option.markexpr, registered(config.settings.values))
    if option.markers:
        for name, line in registered(config.settings.values).items():
            sys.stdout.write(f"@xprun.mark.{line if line.startswith(name) else name}\n")
        sys.stdout.write(
            '\nRegister a mark in pyproject.toml: [tool.xprun] markers = ["slow: what it means"]\n'
        )
        sys.stdout.flush()
        raise SystemExit(0)  # as --help: the answer is the whole command


def _check_names(text: str, known: dict[str, str]) -> None:
    """``--strict-markers``: every word of a (well-formed) ``-m`` expression names a
    registered mark, so a typo is an error rather than a launch that selects nothing."""
    from .errors import UsageError

    words = set(text.replace("(", " ").replace(")", " ").split()) - {"and", "or", "not"}
    unknown = sorted(words - set(known))
    if unknown:
        raise UsageError(
            f"-m {text!r} names unregistered mark(s) {', '.join(unknown)}, with "
            "--strict-markers; register them in [tool.xprun] markers (xprun --markers lists "
            "the registered marks)"
        )


def _expression(text: str) -> Any:
    """The compiled ``-m`` expression; a malformed one is a usage error naming ``-m``."""
    from .errors import UsageError
    from .keyword import Expression, ParseError

    try:
        return Expression(text)
    except ParseError as exc:
        shown = text if len(text) <= 200 else f"{text[:200]}... ({len(text)} characters)"
        raise UsageError(
            f"wrong expression passed to '-m': {shown}: at column {exc.column}: {exc.message}"
        ) from None


def experiment_marks(experiment: Experiment) -> Iterator[Mark]:
    """Every mark an experiment declares: its own, then those of its grid values."""
    declaration = experiment.declaration
    yield from declaration.marks
    for grid in declaration.grids:
        for factor in grid.factors:
            for _, _, marks in factor.marks:
                yield from marks


def shown(marks: tuple[Mark, ...]) -> str:
    """Marks as ``--collect-only`` lists them after a run's node id: ``@slow @skip('why')``."""
    parts = []
    for mark in marks:
        values = [_value(v) for v in mark.args]
        values += [f"{key}={_value(value)}" for key, value in mark.kwargs.items()]
        parts.append(f"@{mark.name}({', '.join(values)})" if values else f"@{mark.name}")
    return " ".join(parts)


def _value(value: Any) -> str:
    return value.__name__ if isinstance(value, type) else repr(value)


def mark_numbers(run: RunSpec) -> list[int]:
    """The run's marks as their places in ``experiment_marks`` (for a job spec: a worker
    imports the same code, so the numbers give back the very marks, ``raises=`` types and
    all, without serializing them)."""
    if not run.marks:
        return []
    places: dict[int, int] = {}
    for number, mark in enumerate(experiment_marks(run.experiment)):
        places.setdefault(id(mark), number)
    return [places[id(mark)] for mark in run.marks]


def marks_numbered(experiment: Experiment, numbers: list[int]) -> tuple[Mark, ...]:
    """The marks ``mark_numbers`` gave these numbers."""
    if not numbers:
        return ()
    table = list(experiment_marks(experiment))
    return tuple(table[number] for number in numbers)


def _where(experiment: Experiment) -> str:
    code = getattr(experiment.func, "__code__", None)
    return experiment.nodeid + (f" (line {code.co_firstlineno})" if code is not None else "")


def _check_known(session: Session) -> None:
    """Warn once per unknown mark name (``--strict-markers``: refuse it)."""
    from .errors import UsageError

    config = session.config
    known = registered(config.settings.values)
    warned: set[str] = set()
    for experiment in session.experiments:
        for mark in experiment_marks(experiment):
            name = mark.name
            if name in known or name in warned:
                continue
            where = _where(experiment)
            how = (
                f"register it in pyproject.toml ([tool.xprun] markers = "
                f'["{name}: what it means"]) or correct its name; xprun --markers lists the '
                "registered marks"
            )
            if config.option.strict_markers:
                raise UsageError(
                    f"unknown mark xprun.mark.{name} on {where}, with --strict-markers: {how}"
                )
            sys.stderr.write(f"xprun: warning: unknown mark xprun.mark.{name} on {where}: {how}\n")
            warned.add(name)


def _check_fixture_params(session: Session) -> None:
    """``xprun.param`` marks grid values only: in a fixture's params (as ``pytest.param``
    would be) it would reach the run as the fixture's value, marks and all."""
    from .errors import UsageError
    from .marks import ParamSet

    for experiment in session.experiments:
        for name, fixture in experiment.fixtures.items():
            if any(isinstance(p, ParamSet) for p in fixture.params or ()):
                raise UsageError(
                    f"{experiment.nodeid}: fixture {name!r} has an xprun.param(...) among its "
                    "params: marks go on grid values (@xprun.grid(key=[..., xprun.param(value, "
                    "marks=...)])) or on the experiment, not on fixture params"
                )


def xprun_collection_modifyitems(session: Session, runs: list[RunSpec]) -> None:
    _check_fixture_params(session)
    _check_known(session)
    text = session.config.option.markexpr
    if not text:
        return
    expression = _expression(text)
    answers: dict[int, bool] = {}  # id(run.marks) → matches: runs share their marks' tuple
    selected: list[RunSpec] = []
    deselected: list[RunSpec] = []
    for run in runs:
        marks = run.marks
        answer = answers.get(id(marks))
        if answer is None:
            names = {mark.name for mark in marks}
            answer = answers[id(marks)] = expression.evaluate(names.__contains__)
        (selected if answer else deselected).append(run)
    if deselected:
        session.config.hook.xprun_deselected(runs=deselected)
        runs[:] = selected
