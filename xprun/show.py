"""``xprun show``: a table of runs (or of groups of runs) from a log directory."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ExitCode, UsageError
from .options import ArgumentParser
from .settings import load_settings

FORMATS = ("table", "csv", "json", "markdown")
#: Significant digits of floats in the formats people read (``--precision``): enough to
#: compare results, few enough to read a column of them.
DEFAULT_PRECISION = 4
MAX_PRECISION = 17  # a float64's digits, all of them


def default_log_dir(given: str | None) -> Path:
    """The log directory named on the command line, else the project's."""
    cwd = Path.cwd()
    if given:
        return (cwd / given).resolve()
    settings = load_settings([], cwd)
    return (settings.rootdir / settings["log_dir"]).resolve()


def add_selection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "log_dir",
        nargs="?",
        metavar="LOG_DIR",
        help="the log directory (default: the project's, from [tool.xprun])",
    )
    parser.add_argument(
        "--log-dir",
        dest="log_dir_option",
        metavar="DIR",
        help="the same, as the launcher and the other commands take it",
    )
    parser.add_argument(
        "--where",
        "-w",
        default="",
        metavar="QUERY",
        help='keep runs matching QUERY, e.g. "config.lr < 1e-3 and status == complete"',
    )
    parser.add_argument(
        "--experiment",
        "-e",
        action="append",
        default=[],
        metavar="NAME",
        help="only this experiment (repeatable)",
    )


@contextlib.contextmanager
def warnings_to_stderr() -> Iterator[None]:
    """The Reader's warnings (skipped runs and files, keys no run has) as plain lines on
    stderr, each once, whether the command then succeeds or fails; other warnings as usual."""
    from .reader import ReaderWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ReaderWarning)
        try:
            yield
        finally:
            ours = [w for w in caught if issubclass(w.category, ReaderWarning)]
            for message in dict.fromkeys(str(w.message) for w in ours):
                sys.stderr.write(f"warning: {message}\n")
    for w in caught:
        if not issubclass(w.category, ReaderWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def open_runs(args: argparse.Namespace) -> Any:
    from .reader import Reader

    given, option = args.log_dir, args.log_dir_option
    if given and option and Path(given).resolve() != Path(option).resolve():
        raise UsageError(
            f"two log directories given: {given} and --log-dir {option}; give one of them"
        )
    log_dir = default_log_dir(given or option)
    try:
        reader = Reader(log_dir)
        reader.refresh()
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    runs = reader.runs()
    if args.experiment:
        runs = runs.experiment(*args.experiment)
    if args.where:
        runs = runs.filter(args.where)
    return runs


def _split_keys(values: list[str]) -> list[str]:
    """The keys of repeated or comma-separated options, each once, in the order given."""
    return list(dict.fromkeys(k.strip() for value in values for k in value.split(",") if k.strip()))


def _default_columns(frame: Any) -> list[str]:
    columns = ["experiment", "hash", "status", "attempt"]
    for column in frame.columns:
        if column.startswith(("config.", "params.")):
            values = frame[column].map(repr)
            if values.nunique() > 1:
                columns.append(column)
        elif column.startswith("outcome."):
            columns.append(column)
    return [*columns, "duration"]


def table(runs: Any, group_by: list[str], columns: list[str]) -> Any:
    """The frame ``xprun show`` prints."""
    import pandas as pd

    if not group_by:
        frame = runs.to_pandas(columns or None)
        if not columns:
            frame = frame[[c for c in _default_columns(frame) if c in frame.columns]]
            frame["hash"] = frame["hash"].str[:12]
        return frame
    if not columns:
        frame = runs.to_pandas()
        columns = [
            c
            for c in frame.columns
            if c.startswith("outcome.") and pd.api.types.is_numeric_dtype(frame[c])
        ]
    else:
        _check_numeric(runs.to_pandas(list(dict.fromkeys([*group_by, *columns]))), columns)
    named: dict[str, tuple[str, str]] = {"n": ("hash", "count")}
    for column in columns:
        named[f"{column}.mean"] = (column, "mean")
        named[f"{column}.std"] = (column, "std")
    return runs.groupby(*group_by).agg(**named).reset_index()


def _check_numeric(frame: Any, columns: list[str]) -> None:
    """``--columns`` with ``--group-by`` are averaged: each must hold numbers (or booleans)."""
    for column in columns:
        values = frame[column].dropna()
        bad = values[~values.map(lambda v: isinstance(v, int | float) or _is_scalar_number(v))]
        if len(bad):
            raise UsageError(
                f"--columns {column}: the mean and std need numbers, but it holds "
                f"{bad.iloc[0]!r:.40}; group by it instead (--group-by {column})"
            )


def _is_scalar_number(value: Any) -> bool:
    import numpy

    return isinstance(value, numpy.number | numpy.bool_)


def render(frame: Any, fmt: str, precision: int = DEFAULT_PRECISION) -> str:
    """The text of ``frame`` in ``fmt``; floats rounded to ``precision`` significant digits
    for people to read (table, markdown), at full precision for programs (csv, json)."""
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        # Not DataFrame.to_json: it keeps at most 15 digits (10 by default), not a float's 17.
        rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        return json.dumps(rows, indent=1, default=_json_scalar, allow_nan=False) + "\n"
    frame = _rounded(frame, precision)
    if fmt == "markdown":
        header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
        rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
        body = [
            "| " + " | ".join("" if _missing(v) else str(v).replace("|", "\\|") for v in row) + " |"
            for row in frame.itertuples(index=False)
        ]
        return "\n".join([header, rule, *body]) + "\n"
    if frame.empty:
        return "no runs\n"
    return frame.to_string(index=False) + "\n"


def _json_scalar(value: Any) -> Any:
    """A cell ``json`` cannot write as it is: a NumPy scalar as its Python value, a
    timestamp in ISO 8601, anything else as its text."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _rounded(frame: Any, precision: int) -> Any:
    """``frame`` with every float (in float and mixed columns) as text of ``precision``
    significant digits (``0.3333`` for 1/3, ``1.235e+06``); integers, booleans, text and
    missing values as they are."""
    import numpy

    def cell(value: Any) -> Any:
        if isinstance(value, float | numpy.floating) and value == value:
            return f"{value:.{precision}g}"
        return value

    columns = {
        name: frame[name].map(cell)
        for name in frame.columns
        if frame[name].dtype.kind in "fO"  # floats, and objects that may hold some
    }
    return frame.assign(**columns) if columns else frame


def _check_precision(value: int) -> int:
    if not 1 <= value <= MAX_PRECISION:
        raise UsageError(
            f"--precision must be a number of significant digits from 1 to {MAX_PRECISION}, "
            f"got {value}"
        )
    return value


def _missing(value: Any) -> bool:
    from pandas import NA  # an integer column's missing value (Int64): its truth raises

    try:
        return bool(value is None or value is NA or value != value)
    except (TypeError, ValueError):  # an array's or pandas.NA's truth is ambiguous: a value
        return False


def add_study_options(parser: argparse.ArgumentParser) -> None:
    """The options of the study view (``xprun show --study``, ``xprun plot --history``)."""
    parser.add_argument(
        "--objective",
        metavar="KEY",
        help="the search's objective (outcome.<key> or metrics.<name>; default: what the "
        "trials recorded)",
    )
    parser.add_argument(
        "--direction",
        choices=("minimize", "maximize"),
        help="whether lower or higher objective values are better (default: what the "
        "trials recorded, else minimize)",
    )


def study_view(runs: Any, args: argparse.Namespace) -> tuple[Any, str]:
    """The study view's table and the lines above it (counts, the best trial) for
    ``xprun show``: the trials, best first (:func:`xprun.study.study_frame`)."""
    from . import study

    found = study.view(runs, args.objective, args.direction)
    settings, records = found.settings, found.records
    frame = study.study_frame(records, settings.objective, settings.direction)
    # With a grid, each trial is a run per grid point: its keys tell a trial's rows apart.
    grid = [c for c in _default_columns(runs.to_pandas()) if c.startswith("config.")]
    grid = [c for c in grid if c not in frame.columns]
    if grid and len(frame):
        frame = frame.merge(runs.to_pandas(["hash", *grid]), on="hash", how="left")
    if args.format in ("table", "markdown"):
        frame["hash"] = frame["hash"].str[:12]
    counts = ", ".join(
        f"{sum(r.state == s for r in records)} {s}"
        for s in study.STATES
        if any(r.state == s for r in records)
    )
    trials = len({json.dumps(r.params, sort_keys=True, default=str) for r in records})
    size = f"{trials} trials, {len(records)} runs" if grid else f"{len(records)} trials"
    head = (
        f"{found.experiment}: {size} ({counts or 'none'}), "
        f"{settings.direction} {settings.objective}\n"
    )
    top = study.best(records, settings.direction)
    if top is not None:
        values = " ".join(
            f"{k}={v:.{args.precision}g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in top.params.items()
        )
        value = f"{top.value:.{args.precision}g}"
        head += (
            f"best: trial {top.number} ({top.hash[:12]}) {settings.objective}={value}  {values}\n"
        )
    else:
        head += "best: no complete trial yet\n"
    return frame, head


def _wants_study(runs: Any, args: argparse.Namespace) -> bool:
    """``--study``, or (by default) a selection of one experiment whose trials record a
    search, shown without ``--group-by`` or ``--columns``."""
    explicit = args.study is not None or args.objective or args.direction
    if args.group_by or args.columns:
        if explicit and args.study is not False:
            raise UsageError(
                "the study view (--study, --objective, --direction) shows trials: it does not "
                "take --group-by or --columns (add --no-study for the table of runs)"
            )
        return False
    if explicit:
        return args.study is not False
    from . import study

    names = runs.to_pandas(["experiment"])["experiment"]
    return names.nunique() == 1 and study.recorded_settings(runs) is not None


def make_parser() -> ArgumentParser:
    """``xprun show``'s parser (also read by shell completion)."""
    parser = ArgumentParser(
        prog="xprun show", description="Show runs of a log directory as a table."
    )
    add_selection_options(parser)
    parser.add_argument(
        "--group-by",
        "-g",
        action="append",
        default=[],
        metavar="KEYS",
        help="group runs by these keys (comma-separated or repeated); shows the "
        "count and the mean and std of each column",
    )
    parser.add_argument(
        "--columns",
        "-c",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY",
        help="columns to show (or to aggregate with --group-by); metric "
        "aggregates such as metrics.loss.last work too",
    )
    parser.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        default="table",
        help="table (default, aligned text), csv, json (full precision), or markdown",
    )
    add_study_options(parser)
    parser.add_argument(
        "--study",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show the experiment as a search: its best trial, then its trials sorted by "
        "objective (default: when the one experiment selected records a search)",
    )
    parser.add_argument(
        "--precision",
        type=int,
        default=DEFAULT_PRECISION,
        metavar="N",
        help=f"significant digits of floats in the table and markdown formats (default "
        f"{DEFAULT_PRECISION}); csv and json keep full precision",
    )
    return parser


def main(argv: list[str]) -> int:
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
        precision = _check_precision(args.precision)
        head = ""
        with warnings_to_stderr():
            runs = open_runs(args)
            if _wants_study(runs, args):
                frame, head = study_view(runs, args)
            else:
                frame = table(runs, _split_keys(args.group_by), _split_keys(args.columns))
    except (UsageError, ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        sys.stderr.write(f"ERROR: {message}\n")
        return int(ExitCode.USAGE_ERROR)
    if head and args.format == "table":
        sys.stdout.write(head)
    sys.stdout.write(render(frame, args.format, precision))
    return int(ExitCode.OK)
