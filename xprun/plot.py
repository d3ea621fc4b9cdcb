"""``xprun plot``: a metric against steps, mean ± std across runs (seeds), one line per hue.

The band is clipped to the values seen at each step, and lines of few points are marked, so
a metric logged once per run is a visible point (with its spread as an error bar).
"""

from __future__ import annotations

import sys
from typing import Any

from .errors import ExitCode, UsageError
from .options import ArgumentParser
from .show import add_selection_options, add_study_options, open_runs, warnings_to_stderr

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


def draw_study(runs: Any, args: Any, size: tuple[float, float]) -> str:
    """``--history`` (each trial's objective by number, the best so far as a step line) or
    ``--importance`` (Optuna's PED-ANOVA importances); returns what was drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import study

    found = study.view(runs, args.objective, args.direction)
    settings, records = found.settings, found.records
    scored = [r for r in records if r.state in ("complete", "pruned") and r.value is not None]
    fig, ax = plt.subplots(figsize=size, dpi=args.dpi)
    if args.history:
        if not scored:
            raise UsageError(f"{found.experiment} has no trial with an objective value yet")
        for state, marker in (("complete", "o"), ("pruned", "x")):
            points = [(r.number, r.value) for r in scored if r.state == state]
            if points:
                xs, ys = zip(*points, strict=True)
                label = f"{state} (n={len(points)})"
                ax.scatter(xs, ys, marker=marker, label=label, alpha=0.7)
        steps = study.best_so_far(records, settings.direction)
        if steps:
            xs, ys = zip(*steps, strict=True)
            ax.step(xs, ys, where="post", color="black", label="best so far")
        ax.legend()
        ax.set_xlabel("trial number")
        ax.set_ylabel(f"{settings.objective} ({settings.direction})")
        drawn = f"{len(scored)} trials"
    else:
        importances = _importances(records, settings, found.experiment)
        names = list(importances)[::-1]  # the most important at the top
        ax.barh(names, [importances[n] for n in names])
        ax.set_xlabel(f"importance for {settings.objective} (PED-ANOVA, sums to 1)")
        drawn = f"{len(names)} keys"
    ax.grid(alpha=0.3)
    ax.set_title(found.experiment)
    fig.tight_layout()
    fig.savefig(args.output, dpi=args.dpi)
    plt.close(fig)
    return drawn


def _importances(records: Any, settings: Any, experiment: str) -> dict[str, float]:
    import optuna

    from . import study

    built = study.build_study(records, settings.distributions, settings.direction, None)
    done = [t for t in built.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(done) < 2:
        raise UsageError(
            f"--importance needs at least 2 complete trials; {experiment} has {len(done)}"
        )
    # PED-ANOVA: Optuna's own (fANOVA, the default, needs scikit-learn), and deterministic.
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    return optuna.importance.get_param_importances(built, evaluator=evaluator)


def _check_view(args: Any) -> bool:
    """Whether the study is plotted (``--history``, ``--importance``), which takes no metric
    options; otherwise ``--y`` is needed."""
    if not (args.history or args.importance):
        if args.y is None:
            raise UsageError("--y METRIC is required (or --history / --importance for a search)")
        if args.objective or args.direction:
            raise UsageError("--objective and --direction go with --history or --importance")
        return False
    given = [f"--{n}" for n in ("y", "hue") if getattr(args, n) is not None]
    given += ["--x"] * (args.x != "step") + ["--logy"] * args.logy
    given += ["--name"] * (args.name != "metrics")
    if given:
        view = "--history" if args.history else "--importance"
        raise UsageError(f"{view} plots the search's trials: it does not take {', '.join(given)}")
    return True


def make_parser() -> ArgumentParser:
    """``xprun plot``'s parser (also read by shell completion)."""
    parser = ArgumentParser(
        prog="xprun plot", description="Plot a metric (mean ± std across runs) to a PNG file."
    )
    add_selection_options(parser)
    parser.add_argument("--y", metavar="METRIC", help="the metric to plot")
    views = parser.add_mutually_exclusive_group()
    views.add_argument(
        "--history",
        action="store_true",
        help="a searched experiment: its objective against the trial number, with the best "
        "so far (instead of a metric)",
    )
    views.add_argument(
        "--importance",
        action="store_true",
        help="a searched experiment: Optuna's importance of each searched key",
    )
    add_study_options(parser)
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
        study = _check_view(args)
        with warnings_to_stderr():
            runs = open_runs(args)
            if study:
                drawn = draw_study(runs, args, size)
            else:
                lines = draw(
                    runs,
                    args.y,
                    args.x,
                    args.hue,
                    args.name,
                    size,
                    args.dpi,
                    args.output,
                    args.logy,
                )
                drawn = f"{lines} line{'s' * (lines != 1)}"
    except ImportError:
        sys.stderr.write("ERROR: xprun plot needs matplotlib: pip install 'xprun[plot]'\n")
        return int(ExitCode.USAGE_ERROR)
    except (UsageError, ValueError, KeyError) as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return int(ExitCode.USAGE_ERROR)
    except OSError as exc:  # the figure could not be written where -o says
        sys.stderr.write(f"ERROR: cannot write {args.output}: {exc.strerror or exc}\n")
        return int(ExitCode.USAGE_ERROR)
    sys.stdout.write(f"wrote {args.output} ({drawn})\n")
    return int(ExitCode.OK)
