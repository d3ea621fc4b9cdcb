"""Adaptive search: Optuna's samplers and pruners over ordinary content-hashed runs.

A searched experiment (``@xprun.search``, or ``--trials N`` with sweeps on the command line)
is not expanded into a grid: its runs are proposed one ask at a time.  Every trial is an
ordinary run (its config holds the sampled values, so it is hashed, claimed, recorded, cached
and read by the Reader like any other), and the state of a search is its log directory.

The seam is the run loop.  ``xprun_generate_runs`` (a wrapper) expands a searched experiment
once, to check it (a searched key must be in the config, a bad override is a usage error
before anything runs), keeps its runs as the *grid points* of the search, and gives the
session none; ``xprun_runloop`` (tried first; but ``--setup-plan``, ``--fixtures`` and
``--cfg`` still replace it) runs the other experiments through the
default loop, then each search through :class:`_SearchLoop`: rebuild the study from the
experiment's runs (``study.trial_records``/``build_study``), resume the trials left
interrupted, ask for new ones, build each trial's runs (the experiment expanded again with
the sampled values as a one-point grid: ``expand.Expander``, so the hash is the one a grid or
an override of the same values gives), hand them to the experiment's scheduler, and repeat
until ``trials`` trials have ended (complete, pruned or failed).  Wrapping the run loop,
rather than generating runs, is what lets each ask see the results of the trials before it,
and lets any scheduler run the trials: the loop only hands them over, a few at a time.

Decisions a resumed search depends on:

- **Per-ask seeding.**  A rebuilt sampler does not have the random state of one that asked
  N times, so every ask uses a fresh sampler seeded from ``(seed, trials in the history,
  repeats)``: an interrupted and resumed search proposes what an uninterrupted one would.
- **Duplicates cost nothing.**  A proposal that repeats a trial of the history is not run
  (its value is in the study already); the next ask is seeded differently.  After
  :data:`MAX_REPEATS` repeats in a row the space is taken as exhausted and the search stops.
- **A grid point per run, a trial per sampled point.**  With a grid (``@xprun.grid`` or a
  command-line sweep beside ``@xprun.search``), a trial is the runs that share the sampled
  values, one per grid point; its objective is their mean, and it counts as ended when every
  one of them has.
- **In flight.**  Inline, one trial at a time.  On the local pool (``-n K``), K trials are
  kept running: the pool is started once for the whole search and asks the loop for more
  each time a run ends (its ``feed``), so the next trial is asked, with the history so far
  and the trials in flight in the study as running (TPE's constant liar), and started on
  the worker that just freed up.  On a cluster scheduler, ``--batch K`` trials per job
  array.  Trials running elsewhere (another launcher's live claim) are in the study as
  running and count toward the budget once they end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .collect import Experiment
    from .config import Config
    from .reports import RunReport
    from .runcontext import RunContext
    from .runspec import RunSpec
    from .searchspace import Search
    from .session import Session
    from .study import TrialRecord

#: The settings table that carries a command-line search to workers and cluster jobs.
SETTINGS_TABLE = "search"
#: Proposals in a row that repeat a trial of the history before the space counts as used up.
MAX_REPEATS = 50
#: Seconds a trial's view of its siblings (for its pruner) is reused before it is read again.
SIBLINGS_REFRESH = 1.0
#: A trial's file of its pruner's own state (the rungs Successive Halving has recorded).
TRIAL_FILE = "trial.json"
#: The fixture that exists only for searched experiments.
FIXTURE = "trial"

ENDED = ("complete", "pruned", "failed")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def xprun_addoption(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    group = parser.add_argument_group("search (docs/search.md)")
    group.add_argument(
        "--trials",
        type=_positive,
        default=None,
        metavar="N",
        help="search instead of sweeping: the sweeps of the command line (lr=interval(1e-5,1e-1), "
        "lr=tag(log,interval(...)), depth=range(2,9), opt=sgd,adam) become the search space, "
        "and trials run until N have ended (launch again to continue); with @xprun.search, "
        "its budget",
    )
    group.add_argument(
        "--objective",
        default=None,
        metavar="PATH",
        help="what a search optimizes: outcome.<key> (a key of what the experiment returns) "
        "or metrics.<name> (the last value of a logged metric)",
    )
    group.add_argument(
        "--direction",
        default=None,
        choices=("minimize", "maximize"),
        help="minimize (default) or maximize the objective",
    )
    group.add_argument(
        "--sampler",
        default=None,
        choices=("tpe", "random", "cmaes", "qmc", "grid"),
        help="Optuna's sampler that proposes the trials (default tpe)",
    )
    group.add_argument(
        "--pruner",
        default=None,
        choices=("median", "asha", "hyperband", "none"),
        help="Optuna's pruner that trial.should_prune(step, value) asks (default none)",
    )
    group.add_argument(
        "--search-seed",
        type=int,
        default=None,
        metavar="SEED",
        help="the sampler's seed (default 0): the same history gives the same proposals",
    )
    group.add_argument(
        "--batch",
        type=_positive,
        default=None,
        metavar="K",
        help="trials asked at once: one job array of K trials on a cluster scheduler "
        "(default: -n, else 1)",
    )


# -- the session's searches --------------------------------------------------------------------


@dataclasses.dataclass
class _Searched:
    """A searched experiment of this launch: its search and its grid points (the runs its
    expansion made, one per point, with the config's own values of the searched keys)."""

    experiment: Experiment
    search: Search
    points: list[RunSpec]


class _State:
    """What the configured session knows of searches (one session configures at a time)."""

    def __init__(self, config: Config, cli: dict[str, Any] | None) -> None:
        self.config = config
        self.cli = cli  # the command line's search (space and settings), or None
        self.searched: dict[str, _Searched] = {}  # by node id, in collection order
        self.pruned: set[str] = set()  # digests of runs pruned in this process
        self.lines: list[str] = []  # the summary's ``search`` section


_states: list[_State] = []


def _state() -> _State | None:
    return _states[0] if _states else None


def xprun_configure(config: Config) -> None:
    """With ``--trials``, the command line's sweeps become the search space (taken out of the
    overrides before expansion sees them); the command-line search is recorded in the
    settings, which job specs carry to workers."""
    from .searchspace import check_settings, space_from_overrides

    option = config.option
    table = config.settings.values.get(SETTINGS_TABLE)
    cli: dict[str, Any] | None = dict(table) if isinstance(table, dict) else None
    pruner = getattr(option, "pruner", None)
    given = {
        "trials": getattr(option, "trials", None),
        "objective": getattr(option, "objective", None),
        "direction": getattr(option, "direction", None),
        "sampler": getattr(option, "sampler", None),
        "seed": getattr(option, "search_seed", None),
        "pruner": None if pruner == "none" else pruner,
    }
    if given["trials"] is not None:
        space, rest = space_from_overrides(config.override_args)
        config.override_args[:] = rest
        check_settings(**{k: v for k, v in given.items() if k != "pruner"}, where="--trials")
        cli = {
            "space": {key: _dimension_json(dim) for key, dim in space.items()},
            **{k: v for k, v in given.items() if v is not None},
            "pruner_given": pruner is not None,
        }
        config.settings.values[SETTINGS_TABLE] = cli
    elif any(v is not None for k, v in given.items() if k != "pruner") or pruner is not None:
        named = [f"--{k}" for k, v in given.items() if v is not None]
        raise _usage_error(
            f"{', '.join(named) or '--pruner'} without --trials: give --trials N to search "
            "(the sweeps of the command line are then the search space)"
        )
    _states[:] = [_State(config, cli)]


def xprun_unconfigure(config: Config) -> None:
    _states.clear()


def _usage_error(message: str) -> Exception:
    from .errors import UsageError

    return UsageError(message)


def _dimension_json(dim: Any) -> dict[str, Any]:
    from .searchspace import Choice, IntRange, Uniform

    if isinstance(dim, Uniform):
        return {"kind": "loguniform" if dim.log else "uniform", "low": dim.low, "high": dim.high}
    if isinstance(dim, IntRange):
        return {"kind": "intrange", "low": dim.low, "high": dim.high, "step": dim.step}
    assert isinstance(dim, Choice)
    return {"kind": "choice", "choices": list(dim.choices)}


def _dimension_of(data: Mapping[str, Any]) -> Any:
    from .searchspace import Choice, IntRange, Uniform

    kind = data.get("kind")
    if kind in ("uniform", "loguniform"):
        return Uniform(data["low"], data["high"], log=kind == "loguniform")
    if kind == "intrange":
        return IntRange(data["low"], data["high"], data.get("step", 1))
    return Choice(tuple(data["choices"]))


def search_of(experiment: Experiment) -> Search | None:
    """The search of an experiment: ``@xprun.search``, with the command line's space and
    settings over it (``--trials`` searches any experiment), or None."""
    from .searchspace import Search

    declared: Search | None = getattr(experiment.declaration, "search", None)
    state = _state()
    cli = state.cli if state is not None else None
    if cli is None:
        return declared
    space = {k: _dimension_of(v) for k, v in (cli.get("space") or {}).items()}
    if declared is None and not space:
        return None
    base = declared
    objective = cli.get("objective") or (base.objective if base else None)
    if objective is None:
        raise _usage_error(
            f"{experiment.nodeid}: --trials needs --objective (outcome.<key> or "
            "metrics.<name>): what the search optimizes"
        )
    pruner = cli.get("pruner") if cli.get("pruner_given") else (base.pruner if base else None)
    return Search(
        space={**(base.space if base else {}), **space},
        objective=objective,
        direction=cli.get("direction") or (base.direction if base else "minimize"),
        trials=cli.get("trials") or (base.trials if base else 20),
        sampler=cli.get("sampler") or (base.sampler if base else "tpe"),
        seed=cli["seed"] if cli.get("seed") is not None else (base.seed if base else 0),
        pruner=pruner,
    )


def _require_optuna(nodeid: str, sampler: str) -> None:
    """Optuna (and the package a sampler runs on: ``cmaes``, scipy for QMC), or a usage error."""
    import importlib

    needed = ["optuna", *{"cmaes": ["cmaes"], "qmc": ["scipy"]}.get(sampler, [])]
    for name in needed:
        try:
            importlib.import_module(name)
        except ImportError:
            raise _usage_error(
                f"{nodeid} is a search ({sampler} sampler), which needs {name}: "
                "pip install 'xprun[search]'"
            ) from None


# -- collection -------------------------------------------------------------------------------


def _hookimpl(**kwargs: Any) -> Any:
    """``xprun.hookimpl`` without importing pluggy at this module's import (``--help``)."""

    opts = {
        "wrapper": False,
        "hookwrapper": False,
        "optionalhook": False,
        "tryfirst": False,
        "trylast": False,
        "specname": None,
        **kwargs,
    }

    def mark(func: Any) -> Any:
        func.xprun_impl = opts  # what pluggy's HookimplMarker("xprun") sets
        return func

    return mark


@_hookimpl(wrapper=True)
def xprun_generate_runs(experiment: Experiment, session: Session) -> Any:
    """A searched experiment's expansion is kept as its grid points, and gives the session
    no run (the search loop makes them); ``trial`` elsewhere is a usage error."""
    search = search_of(experiment)
    if search is None:
        if FIXTURE in experiment.fixtures:
            raise _usage_error(
                f"{experiment.nodeid}: fixture {FIXTURE!r} exists only for searched "
                "experiments; declare the search with @xprun.search(...) or launch with "
                "--trials N and a search space on the command line"
            )
        return (yield)
    _require_optuna(experiment.nodeid, search.sampler)
    overridden = sorted({a.key for a in session.override_axes} & set(search.space))
    if overridden:
        raise _usage_error(
            f"{experiment.nodeid}: {overridden[0]} is searched, so it cannot also be set on "
            f"the command line; leave it out (or fix it in the config and drop it from the "
            "search)"
        )
    state = _state()
    cli_keys = set((state.cli or {}).get("space") or {}) if state is not None else set()
    gridded = sorted(
        {k for g in experiment.declaration.grids for z in g.factors for k, _ in z.axes}
        & set(search.space)
    )
    if set(gridded) & cli_keys:
        # The command line's search replaces the grid's axes of its keys, as a command-line
        # sweep of a gridded key does (expand.py): the user cannot edit the grid from there.
        from .declare import Grid
        from .expand import _grid_factors

        factors = tuple(_grid_factors(experiment, cli_keys))
        experiment.declaration = dataclasses.replace(
            experiment.declaration, grids=[Grid(factors)] if factors else []
        )
        gridded = [k for k in gridded if k not in cli_keys]
    if gridded:
        raise _usage_error(
            f"{experiment.nodeid}: {gridded[0]} is both searched and swept by @xprun.grid; keep one"
        )
    points = yield
    points = points or []
    for run in points[:1]:
        for key in search.space:
            if not _has_key(run.config, key):
                raise _usage_error(
                    f"{experiment.nodeid}: searched key {key!r} is not in the config; add it "
                    f"to @xprun.config (its value there is not used by the search)"
                )
    state = _state()
    if state is not None and points:
        state.searched[experiment.nodeid] = _Searched(experiment, search, list(points))
        session.deferred.append(experiment)  # collected: its runs are asked as it goes
    return []


def _has_key(config: Mapping[str, Any], dotted: str) -> bool:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _get(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node[part]
    return node


def xprun_collection_finish(session: Session) -> None:
    """One line per search: its budget, and how much of it the history has used.  With
    ``--trials``, some experiment must be searched (else the option would be ignored)."""
    state = _state()
    option = session.config.option
    unsearched = state is not None and not state.searched and session.experiments
    if unsearched and getattr(option, "trials", None) and not session.collect_errors:
        raise _usage_error(
            "--trials: no experiment of this launch is searched; give the search space "
            "as sweeps on the command line (lr=interval(1e-5,1e-1), depth=range(2,9), "
            "optimizer=sgd,adam) or declare it with @xprun.search"
        )
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if state is None or reporter is None or reporter.verbosity < 0:
        return
    for searched in state.searched.values():
        search = searched.search
        keys = ", ".join(f"{k}={d.describe()}" for k, d in search.space.items())
        reporter.write(
            f"search {searched.experiment.nodeid}: {search.trials} trials of {keys}, "
            f"{search.direction} {search.objective} ({search.sampler}"
            f"{', ' + search.pruner if search.pruner else ''})\n"
        )


# -- the run loop --------------------------------------------------------------------------


#: Options whose plugins replace the run loop (they list or show, and run nothing).
_INSTEAD_OF_RUNNING = ("collect_only", "showfixtures", "setupplan", "cfg", "cfginfo")


@_hookimpl(tryfirst=True)
def xprun_runloop(session: Session) -> bool | None:
    """The other experiments through the default loop, then each search (unless an option
    replaces the run loop: ``--collect-only``, ``--fixtures``, ``--setup-plan``, ``--cfg``,
    ``--info``)."""
    state = _state()
    option = session.config.option
    if state is None or not state.searched:
        return None
    if any(getattr(option, name, None) for name in _INSTEAD_OF_RUNNING):
        return None
    if session.runs:
        session.runloop()
    for searched in state.searched.values():
        if session.shouldstop:
            break
        _SearchLoop(session, state, searched).run()
    return True


def _derived_seed(seed: int | None, told: int, repeats: int) -> int | None:
    """The seed of one ask: from the search's seed and the history's size (and the proposals
    repeated since), so the same history gets the same proposal whatever asked before."""
    if seed is None:
        return None
    import hashlib  # here, not at the top: OpenSSL's load is a sixth of `xprun --help`

    text = f"{seed}:{told}:{repeats}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "big") & 0x7FFFFFFF


def make_sampler(search: Search, seed: int | None) -> Any:
    """A fresh Optuna sampler of the search's kind, seeded for one ask."""
    import optuna

    from .searchspace import grid_values

    samplers = optuna.samplers
    if search.sampler == "random":
        return samplers.RandomSampler(seed=seed)
    if search.sampler == "cmaes":
        return samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if search.sampler == "qmc":
        return _QMCSampler(seed=search.seed, scramble=search.seed is not None)
    if search.sampler == "grid":
        return samplers.GridSampler(grid_values(search.space), seed=seed)
    return samplers.TPESampler(seed=seed, constant_liar=True)


def _qmc_class() -> Any:
    from optuna.samplers import QMCSampler

    class QMC(QMCSampler):
        """Optuna's QMC sampler counts its samples in the study's attributes, which a
        rebuilt study does not have: the next sample is the one after the study's trials."""

        def _find_sample_id(self, study: Any, *_: Any, **__: Any) -> int:
            # (Optuna 4.0 passes the study alone, later releases the search space too.)
            return len(study.get_trials(deepcopy=False)) - 1  # the asked trial is in it

    return QMC


def _QMCSampler(**kwargs: Any) -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _qmc_class()(**kwargs, warn_asynchronous_seeding=False)


def make_pruner(name: str | None) -> Any:
    """Optuna's pruner for ``median``, ``asha`` (successive halving) or ``hyperband``."""
    if name is None:
        return None
    import optuna

    pruners = optuna.pruners
    if name == "median":
        return pruners.MedianPruner(n_startup_trials=5)
    if name == "asha":
        return pruners.SuccessiveHalvingPruner(min_resource=1)
    return pruners.HyperbandPruner(min_resource=1)


@dataclasses.dataclass
class _Trial:
    """A trial of the history: the runs (one per grid point) that share its values."""

    number: int
    params: dict[str, Any]
    state: str  # complete | pruned | failed | running | interrupted
    value: float | None
    intermediate: dict[int, float]
    hashes: list[str]


def _same(a: Any, b: Any) -> bool:
    """Equal as config values compare in the Reader's queries: ``1 == 1.0``, but a boolean
    is never a number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _params_key(params: Mapping[str, Any]) -> str:
    return json.dumps({k: params[k] for k in sorted(params)}, sort_keys=True, default=repr)


def group_trials(per_point: Sequence[Sequence[TrialRecord]]) -> list[_Trial]:
    """The trials of a search from the records of each grid point: the runs sharing sampled
    values are one trial, numbered by their first start; the objective is their mean, and the
    trial has ended only when every grid point's run has (a missing one: interrupted, so the
    search runs it)."""
    groups: dict[str, list[TrialRecord | None]] = {}
    for index, records in enumerate(per_point):
        for record in records:
            slots = groups.setdefault(_params_key(record.params), [None] * len(per_point))
            slots[index] = record
    trials = []
    for slots in groups.values():
        found = [r for r in slots if r is not None]
        states = {r.state for r in found}
        if "running" in states:
            state = "running"
        elif "interrupted" in states or len(found) < len(slots):
            state = "interrupted"
        elif "failed" in states:
            state = "failed"
        elif "pruned" in states:
            state = "pruned"
        else:
            state = "complete"
        values = [r.value for r in found if r.value is not None]
        value = sum(values) / len(values) if values and state in ("complete", "pruned") else None
        steps: dict[int, list[float]] = {}
        for record in found:
            for step, v in record.intermediate.items():
                steps.setdefault(step, []).append(v)
        trials.append(
            _Trial(
                number=min(r.number for r in found),
                params=dict(found[0].params),
                state=state,
                value=value,
                intermediate={s: sum(v) / len(v) for s, v in sorted(steps.items())},
                hashes=[r.hash for r in found],
            )
        )
    trials.sort(key=lambda t: t.number)
    for number, trial in enumerate(trials):
        trial.number = number
    return trials


def _as_records(trials: Sequence[_Trial]) -> list[TrialRecord]:
    from .study import TrialRecord

    return [
        TrialRecord(t.hashes[0], t.number, t.params, t.state, t.value, t.intermediate)
        for t in trials
    ]


def propose(
    search: Search, records: Sequence[TrialRecord], slots: int
) -> tuple[list[tuple[int, dict[str, Any]]], bool]:
    """Up to ``slots`` new proposals (each with its trial number) from the history
    ``records``, and whether the space looks used up.

    Each ask has a fresh sampler seeded from ``(seed, trials so far, repeats)``, so the same
    history gets the same proposals, whether the search ran in one go or was resumed.  The
    proposals of one call are in the study as running when the next is asked (constant
    liar); one that repeats a trial of the history (or of this call) is not returned, and
    after :data:`MAX_REPEATS` in a row the space counts as used up.
    """
    from .searchspace import distributions
    from .study import build_study

    space = distributions(search.space)
    known = {_params_key(r.params) for r in records}
    study = build_study(records, space, search.direction, None)
    proposals: list[tuple[int, dict[str, Any]]] = []
    repeats = 0
    told = len(records)
    while len(proposals) < slots and repeats < MAX_REPEATS:
        study.sampler = make_sampler(search, _derived_seed(search.seed, told, repeats))
        asked = study.ask(space)
        params = {key: asked.params[key] for key in search.space}
        key = _params_key(params)
        if key in known:
            # A repeat: told failed (so the next ask, seeded anew, sees it), by a sampler
            # with no after-trial step (the grid sampler's would stop the study).
            study.sampler = _inert_sampler()
            study.tell(asked, state=_fail_state())
            repeats += 1
            continue
        known.add(key)
        proposals.append((told, params))
        told += 1
        repeats = 0
    return proposals, repeats >= MAX_REPEATS


class _SearchLoop:
    """One searched experiment's loop: history → study → ask → runs → scheduler, until the
    budget is met."""

    def __init__(self, session: Session, state: _State, searched: _Searched) -> None:
        from .searchspace import distributions

        self.session = session
        self.state = state
        self.experiment = searched.experiment
        self.search = searched.search
        self.points = searched.points
        self.distributions = distributions(self.search.space)
        self.reader: Any = None
        self.scheduler = self._scheduler()
        self.batch = self._batch_size()
        # Trials this launch handed out and that have not ended: params, run digests left.
        self.flying: dict[str, tuple[dict[str, Any], set[str]]] = {}
        self.resumed_once: set[str] = set()  # interrupted trials this launch ran again
        self.hashes: dict[str, str] = {}  # digest -> hash of the runs handed out

    def _scheduler(self) -> Any:
        """The experiment's scheduler, chosen as the default loop chooses it."""
        session = self.session
        runs, session.runs = session.runs, self.points[:1]
        try:
            (scheduler, _), *_ = session.schedule()
        finally:
            session.runs = runs
        return session._from_snapshot(scheduler)

    def _batch_size(self) -> int:
        option = self.session.config.option
        if option.batch:
            return int(option.batch)
        if self.scheduler.name == "local" or option.numprocesses:
            return int(getattr(self.scheduler, "workers", 1) or 1)
        return 1

    @property
    def _is_batch(self) -> bool:
        return hasattr(self.scheduler, "queue_states")

    def _wheres(self) -> list[dict[str, Any] | None]:
        """Each grid point's fixed values (what its runs must have to belong to it)."""
        keys = set(self.search.space)
        wheres: list[dict[str, Any] | None] = []
        for point in self.points:
            where = {
                k: v
                for k, v in point.assignments.items()
                if k not in keys and (v is None or isinstance(v, bool | int | float | str))
            }
            wheres.append(where or None)
        return wheres

    def history(self) -> list[_Trial]:
        from .reader import Reader
        from .study import trial_records

        log_dir = self.session.config.log_dir
        if self.reader is None:
            try:
                self.reader = Reader(log_dir)
            except FileNotFoundError:
                return []
        # One read for every grid point: the grid's keys are read as params too, and each
        # point takes the runs that have its values.
        wheres = self._wheres()
        searched = list(self.search.space)
        fixed = sorted({key for where in wheres if where for key in where} - set(searched))
        records = trial_records(
            log_dir,
            self.experiment.name,
            [*searched, *fixed],
            self.search.objective,
            reader=self.reader,
            intermediate=self.search.pruner is not None,
        )
        per_point = [
            [
                dataclasses.replace(r, params={k: r.params[k] for k in searched})
                for r in records
                if all(_same(r.params[k], v) for k, v in (where or {}).items())
            ]
            for where in wheres
        ]
        return group_trials(per_point)

    def runs_for(self, params: Mapping[str, Any], number: int) -> list[RunSpec]:
        """The runs of one trial: the experiment expanded with the sampled values as a
        one-point grid (the hash is the one any other way of setting them gives)."""
        from .declare import Grid, Zip
        from .expand import Expander

        experiment = self.experiment
        point = Grid(tuple(Zip(((key, (value,)),)) for key, value in params.items()))
        declaration = dataclasses.replace(
            experiment.declaration, grids=[*experiment.declaration.grids, point]
        )
        sampled = dataclasses.replace(experiment, declaration=declaration)
        session = self.session
        runs = Expander(sampled, session).runs(session.override_axes, session.max_runs)
        for run in runs:
            run.experiment = experiment
            inner = run.label[1:-1]
            run.label = f"[trial={number}{'-' + inner if inner else ''}]"
        return runs

    def _asked(self, trials: list[_Trial], slots: int) -> list[tuple[int, dict[str, Any]]]:
        proposals, exhausted = propose(self.search, _as_records(trials), slots)
        if exhausted:
            self._say(
                f"{self.experiment.nodeid}: the last {MAX_REPEATS} proposals repeated trials "
                "already run: the search space looks used up"
            )
            self.exhausted = True
        return proposals

    exhausted = False

    def _say(self, text: str) -> None:
        from .terminal import write_message

        write_message(self.session.config, f"search: {text}")

    def run(self) -> None:
        session = self.session
        search = self.search
        wait = bool(getattr(session.config.option, "wait", False))
        rounds = 0
        waiting = False
        first = True
        while not session.shouldstop and not self.exhausted:
            trials = self._trials()
            if first:
                self._report_cached(trials)
                first = False
            ended = sum(1 for t in trials if t.state in ENDED)
            if ended >= search.trials:
                break
            running = [t for t in trials if t.state == "running"]
            slots = min(self.batch, search.trials - ended - len(running))
            if slots <= 0:
                if self._is_batch and not wait:
                    break
                if not waiting:
                    self._say(
                        f"{self.experiment.nodeid}: {ended} of {search.trials} trials ended, "
                        f"{len(running)} running elsewhere; waiting for them"
                    )
                    waiting = True
                time.sleep(max(self.session.heartbeat.interval, 0.5))
                continue
            runs = self._next_runs(trials, slots)
            if not runs:
                break
            self._dispatch(runs)
            rounds += 1
            if self._is_batch and not wait:
                break  # each invocation submits the next batch (a cron job, or by hand)
        self._report()

    def _report_cached(self, trials: list[_Trial]) -> None:
        """The runs of the trials a previous launch completed, reported cached as a grid's
        complete runs are: a relaunch says what it found done, not "no runs ran"."""
        done = [t for t in trials if t.state == "complete"]
        runs = [run for t in done for run in self.runs_for(t.params, t.number)]
        if runs:
            self.session.runs.extend(runs)
            self.session.skip_complete(runs)  # a run not complete after all: not reported

    def _report(self) -> None:
        """One line once the loop is done: how far the search is, and its best trial."""
        reporter = self.session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or reporter.verbosity < 0 or self.session.shouldstop:
            return
        trials = self.history()
        counts = {state: sum(1 for t in trials if t.state == state) for state in ENDED}
        ended = sum(counts.values())
        text = f"search {self.experiment.nodeid}: {ended} of {self.search.trials} trials ended"
        left = sum(1 for t in trials if t.state == "interrupted")
        parts = [f"{n} {state}" for state, n in counts.items() if n]
        parts += [f"{left} interrupted, resumed by the next launch"] if left else []
        text += f" ({', '.join(parts)})" if parts else ""
        done = [t for t in trials if t.state == "complete" and t.value is not None]
        if done:
            pick = min if self.search.direction == "minimize" else max
            best = pick(done, key=lambda t: t.value or 0.0)
            shown = ", ".join(f"{k}={v!r}" for k, v in best.params.items())
            text += f"; best {self.search.objective} = {best.value:g}"
            text += f" (trial {best.number}: {shown})"
        elif counts["failed"] and self.reader is not None:
            text += self._objective_missing()
        self.state.lines.append(text)

    def _objective_missing(self) -> str:
        """Why complete runs were told as failed, when none recorded the objective (a
        misspelt ``--objective``): the keys their outcomes do have."""
        from .study import parse_objective

        key = parse_objective(self.search.objective).key
        runs = self.reader.experiment(self.experiment.name)
        frame = runs.to_pandas(["status", key])
        complete = frame[frame["status"] == "complete"]
        if not len(complete) or complete[key].notna().any():
            return ""
        known = [c for c in runs.to_pandas().columns if c.startswith("outcome.")]
        return (
            f"; no complete run recorded {self.search.objective} (is it misspelt? outcome "
            f"keys: {', '.join(known) or 'none'})"
        )

    def _trials(self) -> list[_Trial]:
        """The history, with the trials this launch has in flight as running (handed to the
        pool, maybe not claimed yet: the sampler's constant liar, and the budget, count
        them) and the cluster's queued ones (each invocation submits the next batch)."""
        trials = self.history()
        if self._is_batch:
            trials = self._with_queued(trials)
        known = set()
        for trial in trials:
            key = _params_key(trial.params)
            known.add(key)
            if key in self.flying:
                trial.state = "running"
            elif trial.state == "interrupted" and key in self.resumed_once:
                # Resumed once by this launch and interrupted again (a time limit): an end,
                # here; the next launch retries it.
                trial.state = "failed"
        for key, (params, digests) in self.flying.items():
            if key not in known:
                hashes = [self.hashes[digest] for digest in sorted(digests)]
                trials.append(_Trial(len(trials), dict(params), "running", None, {}, hashes))
        return trials

    def _next_runs(self, trials: list[_Trial], slots: int) -> list[RunSpec]:
        """The runs of up to ``slots`` trials: the interrupted ones first, then new asks;
        each is in flight from now on."""
        chosen = [(t.number, t.params) for t in trials if t.state == "interrupted"][:slots]
        self.resumed_once.update(_params_key(params) for _, params in chosen)
        if len(chosen) < slots:
            chosen += self._asked(trials, slots - len(chosen))
        runs: list[RunSpec] = []
        for number, params in chosen:
            mine = self.runs_for(params, number)
            self.flying[_params_key(params)] = (params, {run.digest for run in mine})
            self.hashes.update((run.digest, run.hash) for run in mine)
            runs += mine
        return runs

    def _checked(self, runs: list[RunSpec], fed: bool = False) -> list[RunSpec]:
        """The runs to execute (the complete ones reported cached; ``fed``: the running
        elsewhere too, as the pool's first runs are); the others are no longer in flight."""
        from .schedulers import pending

        session = self.session
        session.runs.extend(runs)
        todo = session.skip_complete(runs)
        if fed:
            todo = pending(session, todo)
        kept = {id(run) for run in todo}
        self._landed([run for run in runs if id(run) not in kept])
        return todo

    def _landed(self, runs: Sequence[RunSpec]) -> None:
        """These runs ended (or will not run): their trials are in flight while others are."""
        for run in runs:
            for key, (_, digests) in list(self.flying.items()):
                digests.discard(run.digest)
                if not digests:
                    del self.flying[key]

    def _dispatch(self, runs: list[RunSpec]) -> None:
        todo = self._checked(runs)
        if todo:
            self.session.scheduler_name = self.scheduler.name
            if self._feeds:
                self.scheduler.run(self.session, todo, feed=self._feed)
            else:
                self.scheduler.run(self.session, todo)
        self.flying.clear()

    @property
    def _feeds(self) -> bool:
        """Whether the scheduler keeps trials in flight (the local pool): each ending trial
        is followed at once by the next ask, on the same warm workers."""
        from .schedulers.pool import LocalScheduler

        return isinstance(self.scheduler, LocalScheduler)

    def _feed(self, ended: list[RunSpec], idle: int) -> list[RunSpec] | None:
        """The pool's feed (``schedulers.pool.Feed``): when a run ends, the next trials, asked
        with the history so far and the trials in flight as running; None once the budget
        is met (the pool then ends with the trials it holds)."""
        self._landed(ended)
        if self.session.shouldstop or self.exhausted:
            return None
        if self.flying and len(self.flying) >= self.batch:
            return []  # a grid point of a trial in flight ended: no room yet, nothing read
        trials = self._trials()
        done = sum(1 for t in trials if t.state in ENDED)
        running = sum(1 for t in trials if t.state == "running")
        if done + running >= self.search.trials and not self.flying:
            return None
        slots = min(self.batch - len(self.flying), self.search.trials - done - running)
        if slots <= 0:
            return []
        return self._checked(self._next_runs(trials, slots), fed=True)

    def _with_queued(self, trials: list[_Trial]) -> list[_Trial]:
        """The trials a cluster still has queued (submitted, not started, so not in the
        history yet), as running: each invocation submits the next batch, not the same."""
        from .jobs import read_spec, submissions

        folder = str(self.session.config.log_dir / self.experiment.name)
        known = {h for t in trials for h in t.hashes}
        candidates: dict[str, dict[str, Any]] = {}  # run dir → its config
        jobs: set[str] = set()
        for submission in submissions(self.session.config.log_dir):
            if submission.get("scheduler") != self.scheduler.name:
                continue
            mine = [r for r in submission.get("runs", []) if str(Path(r).parent) == folder]
            mine = [r for r in mine if Path(r).name not in known]
            if not mine:
                continue
            try:
                spec = read_spec(Path(submission["dir"]) / "spec.json")
            except (OSError, ValueError):
                continue
            configs = {entry["run_dir"]: entry["config"] for entry in spec.get("runs", [])}
            for run_dir in mine:
                if run_dir in configs:
                    candidates[run_dir] = configs[run_dir]
                    jobs.update(submission.get("job_ids") or [])
        if not candidates:
            return trials
        live = {task.split("_")[0] for task in self.scheduler.ask_queue(sorted(jobs))}
        if not live:
            return trials
        queued = list(trials)
        seen = {_params_key(t.params) for t in trials}
        for run_dir, config in candidates.items():
            owner = next(
                (
                    s
                    for s in submissions(self.session.config.log_dir)
                    if run_dir in s.get("runs", []) and set(s.get("job_ids") or []) & live
                ),
                None,
            )
            if owner is None:
                continue
            try:
                params = {key: _get(config, key) for key in self.search.space}
            except (KeyError, TypeError):
                continue
            key = _params_key(params)
            if key in seen:
                continue
            seen.add(key)
            queued.append(_Trial(len(queued), params, "running", None, {}, [Path(run_dir).name]))
        return queued


def _inert_sampler() -> Any:
    from optuna.samplers import RandomSampler

    return RandomSampler(seed=0)


def _fail_state() -> Any:
    from optuna.trial import TrialState

    return TrialState.FAIL


def xprun_terminal_summary(session: Session, exitstatus: int) -> None:
    """A ``search`` section: how far each search is, and its best trial."""
    state = _state()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if state is None or not state.lines or reporter is None:
        return
    reporter.rule("search", "_")
    for line in state.lines:
        reporter.write(line + "\n")


# -- recording --------------------------------------------------------------------------------


def xprun_run_record(run: RunSpec, context: RunContext) -> dict[str, Any] | None:
    """``search`` in a trial's ``run.json``: what was searched (``study.search_settings``
    reads it back for ``xprun show`` and ``xprun plot``)."""
    search = _cached_search(run.experiment)
    if search is None:
        return None
    return {
        "search": {
            "objective": search.objective,
            "direction": search.direction,
            "params": list(search.space),
        }
    }


def _cached_search(experiment: Experiment) -> Search | None:
    state = _state()
    if state is None:
        return None
    cache: dict[int, Any] = state.__dict__.setdefault("_by_experiment", {})
    key = id(experiment)
    if key not in cache:
        cache[key] = (experiment, search_of(experiment))
    return cache[key][1]


def xprun_run_skip(run: RunSpec, context: RunContext) -> RunReport | None:
    """A pruned trial is ended, as a complete run is: cached, never run again (but with
    ``--force``)."""
    if context.force or _cached_search(run.experiment) is None:
        return None
    from . import reports, store
    from .states import Status

    record = store.read_record(run.run_dir)
    if record and record.get("status") == Status.PRUNED:
        return reports.RunReport(run, Status.CACHED)
    return None


def xprun_run_status(
    run: RunSpec, context: RunContext, status: Any, error: BaseException | None
) -> Any:
    """A trial whose ``trial.should_prune`` said yes, and which then returned, is recorded
    ``pruned``."""
    state = _state()
    if state is None or run.digest not in state.pruned:
        return None
    state.pruned.discard(run.digest)
    from .states import Status

    return Status.PRUNED if status == Status.COMPLETE else None


# -- the trial fixture ------------------------------------------------------------------------


class Trial:
    """The ``trial`` fixture of a searched experiment's run.

    ``trial.params``: the sampled values (the searched keys of the run's config);
    ``trial.number``: the trial's number in the search (the order of the trials' starts);
    ``trial.should_prune(step, value)``: report the objective's value at ``step`` and ask the
    search's pruner whether to stop now (the sibling trials' values are read from their run
    directories).  A trial that returns after ``should_prune`` said yes is recorded
    ``pruned``.
    """

    def __init__(self, run: RunSpec, search: Search) -> None:
        self._run = run
        self._search = search
        self.params = {key: _get(run.config, key) for key in search.space}
        self._number: int | None = None
        self._intermediate: dict[int, float] = {}
        self._attrs: dict[str, Any] = {}
        self._siblings: tuple[float, list[TrialRecord], dict[str, dict[str, Any]]] | None = None
        self.pruned = False

    def __repr__(self) -> str:
        return f"<Trial params={self.params!r}>"

    @property
    def number(self) -> int:
        if self._number is None:
            from .study import trial_records

            records = trial_records(
                self._log_dir(),
                self._run.experiment.name,
                list(self._search.space),
                self._search.objective,
                intermediate=False,
            )
            trials = group_trials([records])
            mine = _params_key(self.params)
            self._number = next(
                (t.number for t in trials if _params_key(t.params) == mine), len(trials)
            )
        return self._number

    def _log_dir(self) -> Path:
        return Path(self._run.folder).parent

    def should_prune(self, step: int, value: float) -> bool:
        """Report ``value`` at ``step``; whether the pruner says to stop this trial now."""
        import optuna

        from .searchspace import distributions
        from .study import build_study

        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError(f"trial.should_prune(step, value): step must be an int, got {step!r}")
        value = float(value)
        self._intermediate[step] = value
        search = self._search
        if search.pruner is None:
            return False
        records, attrs = self._sibling_records()
        dists = distributions(search.space)
        study = build_study(
            records,
            dists,
            search.direction,
            optuna.samplers.RandomSampler(seed=0),
            make_pruner(search.pruner),
            replay=False,  # the rungs the siblings reached are restored from trial.json
        )
        storage = study._storage
        for trial in study.get_trials(deepcopy=False):
            for key, item in attrs.get(trial.user_attrs.get("xprun.hash", ""), {}).items():
                trial.system_attrs[key] = item  # the pruner's rungs, as it recorded them
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.RUNNING,
                params=self.params,
                distributions=dists,
                intermediate_values=dict(self._intermediate),
                system_attrs=dict(self._attrs),
            )
        )
        mine = study.get_trials(deepcopy=False)[-1]
        pruned = bool(study.pruner.prune(study, mine))
        now = storage.get_trial(mine._trial_id).system_attrs
        if now != self._attrs:
            self._attrs = dict(now)
            self._save_attrs()
        if pruned:
            self.pruned = True
            state = _state()
            if state is not None:
                state.pruned.add(self._run.digest)
        return pruned

    def _save_attrs(self) -> None:
        from . import store

        path = self._run.run_dir / TRIAL_FILE
        store.write_json_atomic(path, {"system_attrs": self._attrs})

    def _sibling_records(self) -> tuple[list[TrialRecord], dict[str, dict[str, Any]]]:
        """The other trials (their intermediate values, and the rungs their pruner
        recorded), read again after :data:`SIBLINGS_REFRESH` seconds."""
        cached = self._siblings
        if cached is not None and time.monotonic() - cached[0] < SIBLINGS_REFRESH:
            return cached[1], cached[2]
        from .study import trial_records

        records = [
            r
            for r in trial_records(
                self._log_dir(),
                self._run.experiment.name,
                list(self._search.space),
                self._search.objective,
            )
            if r.hash != self._run.hash
        ]
        attrs = {}
        folder = Path(self._run.folder)
        for record in records:
            found = _read_attrs(folder / record.hash)
            if found:
                attrs[record.hash] = found
        self._siblings = (time.monotonic(), records, attrs)
        return records, attrs


def _read_attrs(run_dir: Path) -> dict[str, Any]:
    """A trial's recorded pruner state, read as the Reader reads a run's files (regular
    files only, size capped); nothing when absent or damaged."""
    from .reader.files import Damage, read_json

    try:
        data = read_json(run_dir, TRIAL_FILE)
    except (OSError, ValueError, Damage):
        return {}
    attrs = data.get("system_attrs") if isinstance(data, dict) else None
    if not isinstance(attrs, dict):
        return {}
    return {k: v for k, v in attrs.items() if isinstance(k, str) and isinstance(v, int | float)}


def trial_fixture(run: RunSpec | None) -> Trial:
    """The value of the ``trial`` fixture (``builtin_fixtures``) for ``run``."""
    if run is None:
        raise RuntimeError("the trial fixture needs a run")
    search = _cached_search(run.experiment)
    if search is None:
        raise _usage_error(
            f"{run.experiment.nodeid}: fixture {FIXTURE!r} exists only for searched "
            "experiments (@xprun.search, or --trials on the command line)"
        )
    return Trial(run, search)
