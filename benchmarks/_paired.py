"""Shared by the benchmarks: paired, alternating rounds against a floor, and the figure shape.

Every ``benchmarks/bench_*.py`` exposes ``figures(quick) -> list[dict]`` (read by
``benchmarks/run.py``); each dict is built by :func:`figure`, so the keys are the same
everywhere.  On a shared 2-core machine absolute times drift from one minute to the next:
timing the floor and xprun alternately, round after round, and keeping the median of each
cancels most of the drift out of the ratio.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def figure(
    name: str, value: float, floor: float, unit: str, target: float | None, note: str = ""
) -> dict:
    """One row of the table: ``ratio`` is ``value / floor``, to compare with ``target``."""
    return {
        "name": name,
        "value": value,
        "floor": floor,
        "unit": unit,
        "ratio": value / floor if floor else float("inf"),
        "target": target,
        "note": note,
    }


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn`` took; or, when it returns a float, that float (a function that times
    only part of itself, leaving its set-up out)."""
    start = time.perf_counter()
    measured = fn()
    elapsed = time.perf_counter() - start
    return measured if isinstance(measured, float) else elapsed


def paired(
    floor: Callable[[], object], measured: Callable[[], object], rounds: int
) -> tuple[float, float]:
    """Median seconds of ``floor`` and of ``measured``, run alternately ``rounds`` times each
    (the floor first in even rounds, second in odd ones, so neither always runs warm)."""
    floors: list[float] = []
    values: list[float] = []
    for i in range(rounds):
        if i % 2 == 0:
            floors.append(timed(floor))
            values.append(timed(measured))
        else:
            values.append(timed(measured))
            floors.append(timed(floor))
    return statistics.median(values), statistics.median(floors)
