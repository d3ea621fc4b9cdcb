"""``xprun plot``: a metric against steps, mean ± std across runs (seeds), one line per hue.

The band is clipped to the values seen at each step, and lines of few points are marked, so
a metric logged once per run is a visible point (with its spread as an error bar).
"""

from __future__ import annotations

import sys
from typing import Any

from .errors import ExitCode, UsageError
from .options import ArgumentParser
from .show import add_selection_options, open_runs, warnings_to_stderr

MAX_PIXELS = 50_000_000  # a figure larger than this is a typo, not a plot
NOT_METRICS = ("experiment", "hash", "attempt", "step", "time")
MARKED_POINTS = 50  # lines of at most this many points show a marker at each


def _size(text: str) -> tuple[float, float]:
    try:
        width, height = (float(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size must look like 8x5 (inches), got {text!r}") from None
    if not (0 < width < float("inf") and 0 < height < float("inf")):
        raise UsageError(f"--size must be positive, got {text!r}")
    return width, height


def _check_pixels(size: tuple[float, float], dpi: int) -> None:
    if dpi <= 0:
        raise UsageError(f"--dpi must be positive, got {dpi}")
    pixels = size[0] * dpi * size[1] * dpi
    if pixels > MAX_PIXELS:
        raise UsageError(
            f"--size {size[0]:g}x{size[1]:g} at --dpi {dpi} is {pixels:,.0f} pixels; "
            f"the most is {MAX_PIXELS:,}"
        )


def _band(stats: Any) -> tuple[Any, Any]:
    """The band around the mean at each x: mean ± std, clipped to the values seen there.

    Clipped, because mean ± std of a skewed sample leaves its range: the band of a loss
    (never negative) that one seed blows up would go below zero.  Within the range, the band
    says what the data did, and a log axis can draw it.
    """
    std = stats["std"].fillna(0.0)
    low = (stats["mean"] - std).clip(lower=stats["min"])
    high = (stats["mean"] + std).clip(upper=stats["max"])
    return (
        low.to_numpy(dtype=float, na_value=float("nan")),
        high.to_numpy(dtype=float, na_value=float("nan")),
    )


def draw(
    runs: Any,
    y: str,
    x: str,
    hue: str | None,
    name: str,
    size: tuple[float, float],
    dpi: int,
    output: str,
    logy: bool = False,
) -> int:
    """Draw the figure; returns the number of lines drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .reader.runs import groupable

    columns = [hue] if hue else []
    frame = runs.metrics(name=name, columns=columns)
    known = [c for c in frame.columns if c not in (*NOT_METRICS, *columns)]
    if y not in known:
        raise UsageError(
            f"no metric {y!r} in metrics/{name}.jsonl of the selected runs; "
            f"metrics found: {', '.join(known) or 'none'}"
        )
    if x not in ("step", "time", *known) or x not in frame.columns:
        raise UsageError(f"--x {x!r} is not a column of the metrics (use step or time)")
    frame = frame.assign(**{y: frame[y].astype(float)})
    if hue:
        frame = frame.assign(**{hue: groupable(frame[hue])})
    if logy:
        lowest = frame[y].min()
        if lowest <= 0:
            raise UsageError(
                f"--logy needs positive values, but {y} goes down to {lowest:g}; "
                "plot it without --logy"
            )
    fig, ax = plt.subplots(figsize=size, dpi=dpi)
    if logy:
        ax.set_yscale("log")
    groups = frame.groupby(hue, dropna=False) if hue else [(None, frame)]
    lines = 0
    for value, group in groups:
        stats = group.groupby(x)[y].agg(["mean", "std", "min", "max"]).sort_index()
        n_runs = group["hash"].nunique()
        label = f"{hue.removeprefix('config.')}={value}" if hue else y
        # Plain float arrays: steps are a nullable Int64 column, which NumPy sees as objects
        # under pandas 2.0 and matplotlib then cannot fill between.
        xs = stats.index.to_numpy(dtype=float, na_value=float("nan"))
        mean = stats["mean"].to_numpy(dtype=float, na_value=float("nan"))
        low, high = _band(stats)
        # Markers when the points can be told apart: a metric logged once per run (a test
        # accuracy) is one point, which a line alone does not draw.
        marker = "o" if len(xs) <= MARKED_POINTS else None
        line = ax.plot(xs, mean, marker=marker, markersize=5, label=f"{label} (n={n_runs})")[0]
        color = line.get_color()
        if len(xs) == 1:  # a band one point wide is invisible: an error bar instead
            ax.errorbar(xs, mean, yerr=[mean - low, high - mean], fmt="none", ecolor=color)
        ax.fill_between(xs, low, high, color=color, alpha=0.2, linewidth=0)
        lines += 1
    ax.set_xlabel(x)
    ax.set_ylabel(f"{y} (mean ± std across runs, within their range)")
    if lines:
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(output, dpi=dpi)
    plt.close(fig)
    return lines


def make_parser() -> ArgumentParser:
    """``xprun plot``'s parser (also read by shell completion)."""
    parser = ArgumentParser(
        prog="xprun plot", description="Plot a metric (mean ± std across runs) to a PNG file."
    )
    add_selection_options(parser)
    parser.add_argument("--y", required=True, metavar="METRIC", help="the metric to plot")
    parser.add_argument("--x", default="step", help="the x axis: step (default) or time")
    parser.add_argument(
        "--hue", metavar="KEY", help="one line per value of this key, e.g. config.lr"
    )
    parser.add_argument("--name", default="metrics", help="the metrics file (metrics/<name>.jsonl)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.png")
    parser.add_argument("--size", default="8x5", help="figure size in inches, WIDTHxHEIGHT")
    parser.add_argument("--dpi", type=int, default=100)
    parser.add_argument(
        "--logy", action="store_true", help="a logarithmic y axis (the metric must be positive)"
    )
    return parser


def main(argv: list[str]) -> int:
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
        size = _size(args.size)
        _check_pixels(size, args.dpi)
        with warnings_to_stderr():
            runs = open_runs(args)
            lines = draw(
                runs, args.y, args.x, args.hue, args.name, size, args.dpi, args.output, args.logy
            )
    except ImportError:
        sys.stderr.write("ERROR: xprun plot needs matplotlib: pip install 'xprun[plot]'\n")
        return int(ExitCode.USAGE_ERROR)
    except (UsageError, ValueError, KeyError) as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return int(ExitCode.USAGE_ERROR)
    except OSError as exc:  # the figure could not be written where -o says
        sys.stderr.write(f"ERROR: cannot write {args.output}: {exc.strerror or exc}\n")
        return int(ExitCode.USAGE_ERROR)
    sys.stdout.write(f"wrote {args.output} ({lines} line{'s' * (lines != 1)})\n")
    return int(ExitCode.OK)
