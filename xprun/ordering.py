"""``--order grid|random|interleave`` and ``--seed-order N``: the order runs are sent out in.

- ``grid``: as declared (grids, then command-line sweeps, then fixture params).
- ``random``: a shuffle; ``--seed-order N`` makes it reproducible, and without it the seed
  drawn is printed so that the order can be had again.
- ``interleave``: every value of every varying key early, for an early picture of a long
  sweep: with ``n`` values of a key, the first ``n`` runs hold each value once
  (:func:`interleave`).

Runs are ordered within each experiment, experiments keeping their order (so the progress
line of each stays whole); the order applies to the runs every scheduler gets (inline, the
local pool, a job array's indices).  ``--ff``, ``--nf`` and ``--sw`` (``xprun.history``)
reorder after it, stably.

Standard library only at the top: ``xprun --help`` imports this module without the plugin
manager.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from .config import Config
    from .runspec import RunSpec
    from .session import Session

ORDERS = ("grid", "random", "interleave")


def xprun_addoption(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    group = parser.add_argument_group("order of the runs")
    group.add_argument(
        "--order",
        choices=ORDERS,
        default=None,
        help="grid: as declared (the default); random: shuffled (see --seed-order); "
        "interleave: round-robin over the varying keys, so every value of every key comes early",
    )
    group.add_argument(
        "--seed-order",
        type=int,
        default=None,
        metavar="N",
        help="the seed of --order random (implies it), for a shuffle that can be repeated",
    )


def xprun_configure(config: Config) -> None:
    option = config.option
    if option.seed_order is not None:
        if option.order not in (None, "random"):
            raise UsageError(
                f"--seed-order seeds --order random, not --order {option.order}; drop one of them"
            )
        option.order = "random"
    if option.order in (None, "grid"):
        return
    from .hookimpl import hookimpl

    class Orderer:
        """Orders the runs before ``--ff``/``--nf``/``--sw`` look at them (tryfirst)."""

        @hookimpl(tryfirst=True)
        def xprun_collection_modifyitems(self, session: Session, runs: list[RunSpec]) -> None:
            order_runs(session, runs)

    config.pluginmanager.register(Orderer(), "xprun.ordering.orderer")


def order_runs(session: Session, runs: list[RunSpec]) -> None:
    """Put ``runs`` in the order of ``--order``, in place, experiment by experiment."""
    option = session.config.option
    groups: dict[str, list[RunSpec]] = {}
    for run in runs:
        groups.setdefault(run.experiment.nodeid, []).append(run)
    if option.order == "random":
        seed = option.seed_order
        if seed is None:
            seed = option.seed_order = random.SystemRandom().randrange(10**6)
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write(f"--order random --seed-order {seed} (to repeat this order)\n")
        rng = random.Random(seed)
        for group in groups.values():
            rng.shuffle(group)
    else:
        for name, group in groups.items():
            rows = _rows(group)
            groups[name] = [group[i] for i in interleave(rows)]
    runs[:] = [run for group in groups.values() for run in group]


def _rows(runs: list[RunSpec]) -> list[tuple[Hashable, ...]]:
    """Each run's values of the keys set by grids, overrides and fixture params (compared as
    their ``repr``, as labels do)."""
    keys = list(dict.fromkeys(k for run in runs for k in run.assignments))
    params = list(dict.fromkeys(k for run in runs for k in run.param_ids))
    return [
        (
            *(repr(run.assignments.get(k)) for k in keys),
            *(run.param_ids.get(k) for k in params),
        )
        for run in runs
    ]


def interleave(rows: Sequence[Sequence[Hashable]]) -> list[int]:
    """The indices of ``rows`` (one tuple of values per run, one column per key) in an
    order where every value of every column comes early.

    In a full grid, for each column with ``n`` distinct values, the first ``n`` rows hold
    each of them once: for lr x seed = 3 x 4 the first 3 runs have the 3 lrs and the first
    4 runs the 4 seeds.  How: take the column with the most values (``M``) as the clock;
    row ``j`` of block ``b`` holds value ``j`` of the clock and value ``(j + o_k) mod n_k``
    of each other column ``k``, where ``o`` is block ``b``'s offset vector (all offset
    vectors, the zero one first, in mixed radix).  Block 0 is the diagonal
    ``(j mod n_k)_k``, which gives the property; different offsets give disjoint blocks of
    ``M`` rows each, so the blocks together are the whole grid, and each covers every value
    of every column again.  A row's place is computed from its values alone, so the order
    costs a sort; rows of a partial grid (``-k``, zipped axes) keep the places they would
    have in the full one.  Values are numbered by first appearance; ties keep their order.
    """
    if not rows:
        return []
    width = len(rows[0])
    numbering: list[dict[Hashable, int]] = [{} for _ in range(width)]
    for row in rows:
        for column, value in enumerate(row):
            numbering[column].setdefault(value, len(numbering[column]))
    sizes = [len(n) for n in numbering]
    columns = sorted((c for c in range(width) if sizes[c] > 1), key=lambda c: -sizes[c])
    if not columns:
        return list(range(len(rows)))
    clock, others = columns[0], columns[1:]
    period = sizes[clock]

    def place(index: int) -> tuple[int, int]:
        row = rows[index]
        j = numbering[clock][row[clock]]
        block = 0
        for column in others:
            size = sizes[column]
            block = block * size + (numbering[column][row[column]] - j) % size
        return block * period + j, index

    return sorted(range(len(rows)), key=place)
