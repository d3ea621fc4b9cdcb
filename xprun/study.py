"""The history of a search, read from its run directories, and the Optuna study rebuilt from it.

A searched experiment keeps no database: every trial is an ordinary run, so the state of a
search is its log directory.  At every launch (and before every ask) the search reads its
runs with the Reader (:func:`trial_records`) and rebuilds an in-memory Optuna study from them
(:func:`build_study`); the same history therefore gives a seeded sampler the same proposals,
whether the search ran in one go or was interrupted and resumed.

How runs become trials (each decision is the one a resumed search needs):

- ``complete`` with a numeric objective: ``COMPLETE`` with that value.  A complete run whose
  objective is missing (the outcome has no such key, no metric was logged) or not a number
  (NaN included) is told as ``FAIL``: the sampler learns nothing good from it, and it counts
  toward the budget as a failed trial does, rather than being proposed again forever.
- ``pruned``: ``PRUNED`` with its intermediate values (and, as Optuna's own ``tell`` does, the
  last finite one as its value).
- ``failed`` (and ``xfail``): ``FAIL``.
- ``running`` with a live claim: ``RUNNING``, so constant-liar samplers do not propose its
  config again while it is in flight elsewhere.
- ``interrupted`` and ``timeout`` (no live claim; the next launch runs the same config
  again): state ``"interrupted"`` here, ``RUNNING`` in the study for the same reason.

A trial's number is the order of its run's start (``run.json``'s ``start``, ties by hash);
``start`` is the latest attempt's, so a run resumed after later trials started moves after
them (the search resumes its interrupted trials before asking for new ones, which keeps the
order).  Runs whose config lacks a searched key are not trials of this search and are left
out; so are, in :func:`build_study`, records whose values lie outside the space (a space
narrowed since they ran), which Optuna could not hold.

The search plugin records what was searched in each trial's ``run.json`` (``search``:
``{"objective", "direction", "params"}``); :func:`search_settings` reads it back for
``xprun show`` and ``xprun plot``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .states import Status

if TYPE_CHECKING:
    import optuna

    from .reader import Reader

__all__ = [
    "Objective",
    "TrialRecord",
    "build_study",
    "parse_objective",
    "search_record",
    "search_settings",
    "study_frame",
    "trial_records",
]

STATES = ("complete", "pruned", "failed", "running", "interrupted")
DIRECTIONS = ("minimize", "maximize")
STUDY_NAME = "xprun"  # fixed: Hyperband assigns brackets from the study's name

# The Reader's statuses (live: ``running`` only with a fresh claim) → a trial's state.
_STATES = {
    Status.COMPLETE: "complete",
    Status.PRUNED: "pruned",
    Status.FAILED: "failed",
    Status.XFAIL: "failed",
    Status.RUNNING: "running",
    Status.INTERRUPTED: "interrupted",
    Status.TIMEOUT: "interrupted",
}
_AGGREGATES = ("last", "first", "min", "max", "mean")


@dataclass(frozen=True)
class TrialRecord:
    """One run of a searched experiment, as the sampler is told about it."""

    hash: str
    number: int  # order of the run's start time (ties: hash)
    params: dict[str, Any]  # the searched keys' values, read from the run's config
    state: str  # one of STATES
    value: float | None  # the objective; None when absent (and for failed, running trials)
    intermediate: dict[int, float]  # step -> value of the objective's metric, for pruners


@dataclass(frozen=True)
class Objective:
    """A parsed objective path: the Reader key of its value, and the metric whose steps are
    the intermediate values (``file``: its ``metrics/<file>.jsonl``)."""

    text: str
    key: str  # outcome.<key>, or metrics.[<file>:]<metric>.<agg>
    file: str
    metric: str


def parse_objective(text: Any) -> Objective:
    """``outcome.<key>`` (a key of the returned mapping, dotted for nested ones) or
    ``metrics.<name>`` (the last value logged; ``metrics.<name>.min`` and the other
    aggregates ``first``, ``max``, ``mean`` for another one; ``metrics.<file>:<name>`` for
    ``metrics/<file>.jsonl``).  The intermediate values are the steps of the metric named
    like the objective's last part (``val_loss`` for both ``outcome.val_loss`` and
    ``metrics.val_loss``).  Anything else is a :class:`UsageError` naming the path."""
    hint = (
        "use outcome.<key> (a key of what the experiment returns, e.g. outcome.val_loss) or "
        "metrics.<name> (the last value of a logged metric, e.g. metrics.val_loss)"
    )
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"objective {text!r} is not valid: {hint}")
    kind, _, rest = text.partition(".")
    parts = rest.split(".")
    if kind not in ("outcome", "metrics") or not rest or not all(p.strip() for p in parts):
        raise UsageError(f"objective {text!r} is not valid: {hint}")
    if kind == "outcome":
        return Objective(text, text, "metrics", parts[-1])
    from .reader.metrics import check_name

    file, colon, name = rest.rpartition(":") if ":" in rest else ("metrics", "", rest)
    agg = "last"
    if "." in name and name.rsplit(".", 1)[1] in _AGGREGATES:
        name, agg = name.rsplit(".", 1)
    try:
        check_name(file)
    except ValueError as exc:
        raise UsageError(f"objective {text!r}: {exc}") from None
    if not name or (colon and not file):
        raise UsageError(f"objective {text!r} is not valid: {hint}")
    key = f"metrics.{file + ':' if colon else ''}{name}.{agg}"
    return Objective(text, key, file, name)


def trial_records(
    log_dir: Path | str,
    experiment: str,
    params: Sequence[str],
    objective: str,
    where: dict[str, Any] | None = None,
    *,
    reader: Reader | None = None,
    intermediate: bool = True,
) -> list[TrialRecord]:
    """The trials of ``experiment`` under ``log_dir``, in ``number`` order.

    ``params``: the searched config keys (dotted for nested ones); ``objective``: see
    :func:`parse_objective`; ``where``: config values a run must have to count (the other
    keys of a grid point, e.g. ``{"seed": 0}``).  Read with the Reader's code; pass
    ``reader`` to reuse one (its index is refreshed here), and ``intermediate=False`` to
    skip reading metric steps when no pruner needs them.
    """
    goal = parse_objective(objective)
    where = dict(where or {})
    if reader is None:
        from .reader import Reader

        try:
            reader = Reader(log_dir)
        except FileNotFoundError:
            return []  # no log directory yet: no history
    reader.refresh()
    frame = reader.frame()
    if experiment not in set(frame["experiment"]):
        return []
    keys = [f"config.{p}" for p in params]
    wanted = ["hash", "status", "start", "path", *keys, *(f"config.{k}" for k in where)]
    runs = reader.experiment(experiment)
    frame = runs.to_pandas(list(dict.fromkeys([*wanted, goal.key])))
    frame = _matching(frame, where)
    frame = frame[frame["status"].isin(list(_STATES))]
    for key in keys:  # Series.map: DataFrame.map is pandas 2.1+
        frame = frame[frame[key].map(_present).astype(bool)]
    if not len(frame):
        return []
    frame = frame.sort_values(["start", "hash"], kind="stable", na_position="last")
    steps = _intermediate(reader, frame, goal) if intermediate else {}
    records = []
    columns = [frame[k].tolist() for k in keys]
    rows = zip(frame["hash"], frame["status"], frame[goal.key].tolist(), strict=True)
    for number, (run_hash, status, raw) in enumerate(rows):
        state = _STATES[status]
        values = steps.get(run_hash, {})
        value = _number(raw) if state == "complete" else None
        if state == "complete" and (value is None or math.isnan(value)):
            state, value = "failed", None
        elif state == "pruned":
            finite = [v for v in values.values() if not math.isnan(v)]
            value = finite[-1] if finite else None
        params_ = {p: _plain(column[number]) for p, column in zip(params, columns, strict=True)}
        records.append(TrialRecord(run_hash, number, params_, state, value, values))
    return records


def _matching(frame: Any, where: dict[str, Any]) -> Any:
    """The rows whose config has each of ``where``'s values, compared as the Reader's
    queries compare them (``1 == 1.0``, a boolean is never a number)."""
    if not where:
        return frame
    from .reader.runs import _equal

    mask = None
    for key, value in where.items():
        equal = _equal(frame[f"config.{key}"], value).astype(bool)
        mask = equal if mask is None else mask & equal
    return frame[mask]


def _intermediate(reader: Reader, frame: Any, goal: Objective) -> dict[str, dict[int, float]]:
    """Step → value of the objective's metric, by hash (the latest attempt's line of each
    step, as the Reader keeps them; missing values left out)."""
    hashes = {h: Path(p) for h, p in zip(frame["hash"], frame["path"], strict=True)}
    metrics = reader.metric_frame(goal.file, hashes)
    if goal.metric not in metrics.columns or not len(metrics):
        return {}
    metrics = metrics[["hash", "step", goal.metric]].dropna()
    found: dict[str, dict[int, float]] = {}
    for run_hash, step, value in zip(
        metrics["hash"].tolist(),
        metrics["step"].tolist(),
        metrics[goal.metric].astype(float).tolist(),
        strict=True,
    ):
        found.setdefault(run_hash, {})[int(step)] = value
    return found


def _present(value: Any) -> bool:
    """Whether a config cell holds a value (``None``, a key set to null, is one)."""
    if value is None:
        return True
    if isinstance(value, float):
        return value == value
    return type(value).__name__ != "NAType"


def _plain(value: Any) -> Any:
    """A NumPy scalar as its Python value (Optuna compares params by value and type)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, list) else value


def _number(value: Any) -> float | None:
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def build_study(
    records: Sequence[TrialRecord],
    distributions: dict[str, Any],
    direction: str,
    sampler: Any,
    pruner: Any | None = None,
    *,
    study_name: str = STUDY_NAME,
    replay: bool = True,
) -> optuna.Study:
    """An in-memory study holding each record as a frozen trial, in ``number`` order.

    ``distributions``: the searched keys' ``optuna.distributions``; records whose params do
    not fit them (another set of keys, a value outside the space) are left out.  The study's
    name is fixed (``study_name``), because Hyperband assigns a trial's bracket from it and
    the trial number: a random name would change the brackets at every rebuild.

    With a successive-halving or Hyperband ``pruner``, each trial's steps are replayed
    through it (:func:`_replay`), so the rebuilt trials hold the rungs it records; pass
    ``replay=False`` when they are restored otherwise (their recorded system attributes).
    """
    import optuna
    from optuna.trial import TrialState

    if direction not in DIRECTIONS:
        raise UsageError(f"direction {direction!r} is not valid: use minimize or maximize")
    states = {
        "complete": TrialState.COMPLETE,
        "pruned": TrialState.PRUNED,
        "failed": TrialState.FAIL,
        "running": TrialState.RUNNING,
        "interrupted": TrialState.RUNNING,
    }
    logger = optuna.logging
    verbosity = logger.get_verbosity()
    logger.set_verbosity(logger.WARNING)  # not "A new study created in memory" each launch
    try:
        study = optuna.create_study(
            storage=None,
            sampler=sampler,
            pruner=pruner,
            direction=optuna.study.StudyDirection[direction.upper()],
            study_name=study_name,
        )
    finally:
        logger.set_verbosity(verbosity)
    names = set(distributions)
    replay = replay and _keeps_state(pruner)
    trials = []
    for record in sorted(records, key=lambda r: r.number):
        if set(record.params) != names:
            continue
        state = states[record.state]
        value = record.value if state in (TrialState.COMPLETE, TrialState.PRUNED) else None
        try:
            trial = optuna.trial.create_trial(
                state=state,
                value=value,
                params=record.params,
                distributions=distributions,
                intermediate_values=record.intermediate,
                user_attrs={"xprun.hash": record.hash},
            )
        except ValueError:  # outside the space (narrowed since), or not of its type
            continue
        trials.append(trial)
    if replay:
        _Replay(pruner, study).run(trials)
    study.add_trials(trials)
    return study


def _keeps_state(pruner: Any) -> bool:
    """Whether ``pruner`` keeps what it decided in the trials themselves (successive halving
    and Hyperband write each trial's rung values as system attributes when they prune), so
    frozen trials without them would leave it nothing to compare a new trial with."""
    from optuna.pruners import HyperbandPruner, SuccessiveHalvingPruner

    return isinstance(pruner, SuccessiveHalvingPruner | HyperbandPruner)


class _Replay:
    """The rungs a successive-halving or Hyperband pruner would have recorded, had it seen
    the trials run one after the other: each trial started, its intermediate values reported
    one step at a time with the pruner asked after each (until it said prune, when the trial
    stopped), then finished.  The pruner thus reaches the state (rungs, estimated resources,
    brackets) it had, and decides on new trials as it would have without the interruption.

    Asking Hyperband over the whole study costs a filter of every trial into its bracket at
    each rung (quadratic: 7.9 s at 1,000 trials), so the replay asks each bracket's own
    successive-halving pruner over a scratch study of that bracket's trials only, which is
    what Hyperband hands it; the bracket of a trial is Hyperband's, from the final study's
    name and the trial's number.  Hyperband chooses its brackets once it can (``max_resource
    ="auto"``: once a trial has completed), so the trials before that are put in their
    brackets then, as they were (finished, no rung).  The rungs are copied to ``trials``.
    """

    def __init__(self, pruner: Any, study: optuna.Study) -> None:
        from optuna.pruners import HyperbandPruner

        self.pruner = pruner
        self.study = study
        self.hyperband = isinstance(pruner, HyperbandPruner)
        self.scratch: dict[int, _Bracket] = {}  # bracket -> its trials
        self.done: list[tuple[int, Any]] = []  # (number, trial) finished before the brackets

    def run(self, trials: list[Any]) -> None:
        from optuna.trial import TrialState

        for number, trial in enumerate(trials):
            steps = trial.intermediate_values
            if not steps:  # the pruner is never asked about it; it is only counted
                if self.done or not self._ready():
                    self.done.append((number, trial))
                else:
                    self._add(self._scratch(self._bracket_of(number)), trial)
                continue
            bracket = self._bracket(number)
            if bracket is None:  # no brackets yet: the pruner was not asked (nor wrote)
                self.done.append((number, trial))
                continue
            scratch = self._scratch(bracket)
            sha = self.pruner._pruners[bracket] if self.hyperband else self.pruner
            current = scratch.add(TrialState.RUNNING, {})
            for step in sorted(steps):
                current = scratch.trials[current._trial_id]
                current.intermediate_values[step] = steps[step]
                if sha.prune(scratch, current):
                    break
            current = scratch.trials[current._trial_id]
            current.intermediate_values.update(steps)  # the steps after it said prune
            current.state = trial.state
            trial.system_attrs = dict(current.system_attrs)

    def _ready(self) -> bool:
        """Whether the pruner has its brackets (always, but for Hyperband before any trial
        it needs has completed)."""
        return not self.hyperband or bool(self.pruner._pruners)

    def _bracket(self, number: int) -> int | None:
        """The trial's bracket (0 without Hyperband), choosing the brackets if Hyperband
        would now; None while it has none."""
        if not self._ready():
            self.pruner._try_initialization(_Finished(self.done))
            if not self._ready():
                return None
            for earlier, finished in self.done:  # in their brackets, as they were
                self._add(self._scratch(self._bracket_of(earlier)), finished)
            self.done = []
        return self._bracket_of(number)

    def _bracket_of(self, number: int) -> int:
        if not self.hyperband:
            return 0
        return int(self.pruner._get_bracket_id(self.study, _Numbered(number)))

    def _scratch(self, bracket: int) -> _Bracket:
        if bracket not in self.scratch:
            self.scratch[bracket] = _Bracket(self.study.direction)
        return self.scratch[bracket]

    @staticmethod
    def _add(scratch: _Bracket, trial: Any) -> None:
        scratch.add(trial.state, dict(trial.intermediate_values))


class _Bracket:
    """One bracket's trials, as successive halving reads a study (``get_trials``,
    ``direction``, ``_storage.set_trial_system_attr``; Hyperband hands it no more), without
    Optuna's in-memory storage deep-copying a trial at each step it is told: the replay tells
    every step of every trial."""

    def __init__(self, direction: Any) -> None:
        self.direction = direction
        self.trials: list[_Step] = []
        self._storage = self

    def add(self, state: Any, steps: dict[int, float]) -> _Step:
        trial = _Step(len(self.trials), state, steps, {})
        self.trials.append(trial)
        return trial

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[_Step]:
        return [t for t in self.trials if states is None or t.state in states]

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        """As Optuna's storage does: the trial is replaced (a list of trials taken before
        still holds it without the attribute: successive halving counts on it)."""
        old = self.trials[trial_id]
        attrs = {**old.system_attrs, key: value}
        self.trials[trial_id] = _Step(trial_id, old.state, old.intermediate_values, attrs)


@dataclass
class _Step:
    """A trial of a :class:`_Bracket`: what successive halving reads of a frozen trial."""

    _trial_id: int
    state: Any
    intermediate_values: dict[int, float]
    system_attrs: dict[str, Any]

    @property
    def last_step(self) -> int | None:
        return max(self.intermediate_values) if self.intermediate_values else None


@dataclass(frozen=True)
class _Numbered:
    """What Hyperband's bracket choice reads of a trial: its number."""

    number: int


class _Finished:
    """What Hyperband's ``_try_initialization`` reads of a study: its complete trials."""

    def __init__(self, trials: list[tuple[int, Any]]) -> None:
        self.trials = [trial for _, trial in trials]

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[Any]:
        return [t for t in self.trials if states is None or t.state in states]


def search_record(distributions: dict[str, Any], objective: str, direction: str) -> dict[str, Any]:
    """The ``search`` field of a trial's ``run.json`` (what the search plugin records through
    ``xprun_run_record``): the objective, the direction and the space (each distribution as
    Optuna's JSON, which is data), so ``xprun show`` and ``xprun plot`` can rebuild the study
    from the log directory alone."""
    import json

    from optuna.distributions import distribution_to_json

    return {
        "objective": objective,
        "direction": direction,
        "params": list(distributions),
        "space": {k: json.loads(distribution_to_json(d)) for k, d in distributions.items()},
    }


@dataclass(frozen=True)
class Settings:
    """What was searched: the objective, the direction, the searched keys, and their space
    (Optuna distributions; None when the records do not hold it)."""

    objective: str
    direction: str
    params: list[str]
    distributions: dict[str, Any] | None = None


def search_settings(run_record: dict[str, Any]) -> Settings | None:
    """The ``search`` field of a trial's ``run.json`` (``objective``, ``direction``, and the
    searched keys as ``params``, a list, or as ``space``, their distributions as
    :func:`search_record` writes them), checked; None for a run of no search (or a field
    this xprun cannot read)."""
    import json

    found = run_record.get("search")
    if not isinstance(found, dict):
        return None
    objective, direction = found.get("objective"), found.get("direction")
    if not isinstance(objective, str) or direction not in DIRECTIONS:
        return None
    space, params = found.get("space"), found.get("params")
    if isinstance(space, dict) and all(isinstance(v, dict) for v in space.values()):
        from optuna.distributions import json_to_distribution

        try:
            distributions = {k: json_to_distribution(json.dumps(v)) for k, v in space.items()}
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        return Settings(objective, direction, list(distributions), distributions)
    if isinstance(params, list) and all(isinstance(p, str) for p in params):
        return Settings(objective, direction, list(params))
    return None


def observed_distributions(records: Sequence[TrialRecord]) -> dict[str, Any]:
    """A space that holds every value the records have, for a history whose runs do not say
    what was searched: numbers as ranges (integers as integer ranges), anything else as
    categorical choices."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    found: dict[str, Any] = {}
    names = dict.fromkeys(k for r in records for k in r.params)
    for name in names:
        values = [r.params[name] for r in records if name in r.params]
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numbers and all(isinstance(v, int) for v in values) and min(values) < max(values):
            found[name] = IntDistribution(int(min(values)), int(max(values)))
        elif numbers and min(values) < max(values):
            found[name] = FloatDistribution(float(min(values)), float(max(values)))
        else:
            choices = list(dict.fromkeys(values))
            if not all(v is None or isinstance(v, bool | int | float | str) for v in choices):
                choices = [json_text(v) for v in choices]
            found[name] = CategoricalDistribution(choices)
    return found


def json_text(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def study_frame(records: Sequence[TrialRecord], objective: str, direction: str) -> Any:
    """The trials as a table, best first: complete ones by value, then pruned ones by value,
    then failed, running and interrupted ones by number; one column per searched key."""
    import pandas as pd

    order = {"complete": 0, "pruned": 1, "failed": 2, "running": 3, "interrupted": 4}
    sign = 1.0 if direction == "minimize" else -1.0

    def rank(r: TrialRecord) -> tuple[int, float, int]:
        value = sign * r.value if r.value is not None else math.inf
        return (order[r.state], value if r.state in ("complete", "pruned") else 0.0, r.number)

    rows = [
        {
            "number": r.number,
            "hash": r.hash,
            "state": r.state,
            objective: r.value,
            **{f"config.{k}": v for k, v in r.params.items()},
        }
        for r in sorted(records, key=rank)
    ]
    columns = ["number", "hash", "state", objective]
    return pd.DataFrame(
        rows, columns=columns + [c for c in (rows[0] if rows else {}) if c not in columns]
    )


@dataclass(frozen=True)
class View:
    """One experiment's search as ``xprun show`` and ``xprun plot`` present it."""

    experiment: str
    settings: Settings
    records: list[TrialRecord]


def require_optuna(what: str) -> None:
    """A :class:`UsageError` saying how to install Optuna, when it is not."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise UsageError(f"{what} needs Optuna: pip install 'xprun[search]'") from None


def recorded_settings(runs: Any) -> Settings | None:
    """The search settings the selected runs' records hold (the first run that has them)."""
    from .reader.files import Damage

    for run in runs:
        try:
            found = search_settings(run.record)
        except (OSError, Damage):  # gone or damaged since it was indexed: no settings there
            continue
        if found is not None:
            return found
    return None


def view(runs: Any, objective: str | None = None, direction: str | None = None) -> View:
    """The study of the one experiment in ``runs`` (a Reader selection): the settings its
    trials recorded, overridden by ``objective`` and ``direction``; the trials of the
    selection, numbered within the whole experiment.  A selection of several experiments,
    or of runs that record no search when no objective is given, is a usage error."""
    require_optuna("the study view")
    frame = runs.to_pandas()
    experiments = sorted(set(frame["experiment"])) if len(frame) else []
    if len(experiments) != 1:
        held = ", ".join(experiments) or "no runs"
        raise UsageError(
            f"the study view shows one experiment; pick it with -e NAME (the selection "
            f"holds {held})"
        )
    experiment = experiments[0]
    recorded = recorded_settings(runs)
    if objective is None and recorded is None:
        raise UsageError(
            f"the runs of {experiment} record no search: name the objective with "
            "--objective (outcome.<key> or metrics.<name>)"
        )
    if direction is not None and direction not in DIRECTIONS:
        raise UsageError(f"direction {direction!r} is not valid: use minimize or maximize")
    if recorded is not None:
        params = recorded.params
    else:
        from .show import _default_columns

        params = [c[len("config.") :] for c in _default_columns(frame) if c.startswith("config.")]
    objective = objective or (recorded.objective if recorded else "")
    direction = direction or (recorded.direction if recorded else "minimize")
    records = trial_records(
        runs._reader.log_dir, experiment, params, objective, reader=runs._reader
    )
    records = _numbered_by_trial(records)
    selected = set(frame["hash"])
    records = [r for r in records if r.hash in selected]
    distributions = recorded.distributions if recorded else None
    if distributions is None:
        distributions = observed_distributions(records)
    return View(experiment, Settings(objective, direction, params, distributions), records)


def _numbered_by_trial(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """Each run numbered by its trial, as the search loop numbers them: the runs that share
    sampled values (a trial's grid points, ``[trial=N-seed=0]``) are one trial, numbered in
    the order of their first start.  Without a grid each run is its own trial."""
    trials: dict[str, int] = {}
    numbered = []
    for record in sorted(records, key=lambda r: r.number):
        number = trials.setdefault(json_text(record.params), len(trials))
        numbered.append(replace(record, number=number))
    return numbered


def best(records: Sequence[TrialRecord], direction: str) -> TrialRecord | None:
    """The complete trial with the best value (the first one, of equal values)."""
    complete = [r for r in records if r.state == "complete" and r.value is not None]
    if not complete:
        return None
    sign = 1.0 if direction == "minimize" else -1.0
    return min(complete, key=lambda r: sign * (r.value or 0.0))


def best_so_far(records: Sequence[TrialRecord], direction: str) -> list[tuple[int, float]]:
    """(number, best complete value up to that trial) at each complete trial, by number."""
    sign = 1.0 if direction == "minimize" else -1.0
    steps: list[tuple[int, float]] = []
    for r in sorted(records, key=lambda r: r.number):
        if r.state != "complete" or r.value is None:
            continue
        if not steps or sign * r.value < sign * steps[-1][1]:
            steps.append((r.number, r.value))
        else:
            steps.append((r.number, steps[-1][1]))
    return steps
