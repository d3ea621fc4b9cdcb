"""Search spaces: what a searched key may take, declared in code or typed on the command line.

``xprun.uniform(low, high)``, ``xprun.loguniform(low, high)`` and ``xprun.intrange(low, high,
step=1)`` (inclusive) are plain frozen records, checked when made, so a bad space is a usage
error at import (naming the dimension), never a sampler's crash mid-search; a list (or tuple)
of values is a categorical choice.  :func:`distributions` turns a space into Optuna's
distributions (Optuna imported only then).

On the command line, Hydra's own sweep grammar is the space (:func:`space_from_overrides`),
parsed by hydra-core's override parser as ``overrides.py`` parses overrides:
``lr=interval(1e-5,1e-1)`` (uniform), ``lr=tag(log,interval(1e-5,1e-1))`` (log-uniform),
``depth=range(2,9)`` (integers, the stop excluded as in Python and Hydra), ``optimizer=sgd,adam``
and ``choice(sgd,adam)`` (categorical).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution


def _number(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UsageError(f"{what} must be a finite number, got {value!r}")
    return value


@dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from ``[low, high]`` (log-uniformly with ``log``)."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        name = "loguniform" if self.log else "uniform"
        low = _number(f"xprun.{name}(low, high): low", self.low)
        high = _number(f"xprun.{name}(low, high): high", self.high)
        if low >= high:
            raise UsageError(
                f"xprun.{name}({low!r}, {high!r}): low must be below high (swap them?)"
            )
        if self.log and low <= 0:
            raise UsageError(
                f"xprun.loguniform({low!r}, {high!r}): a log scale needs low > 0 "
                "(use xprun.uniform for a range that reaches 0)"
            )

    def distribution(self) -> BaseDistribution:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(float(self.low), float(self.high), log=self.log)

    def describe(self) -> str:
        return f"{'loguniform' if self.log else 'uniform'}({self.low!r}, {self.high!r})"


@dataclass(frozen=True)
class IntRange:
    """An integer in ``[low, high]``, both included, on a grid of ``step``."""

    low: int
    high: int
    step: int = 1

    def __post_init__(self) -> None:
        for name in ("low", "high", "step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise UsageError(
                    f"xprun.intrange(low, high, step): {name} must be an int, got {value!r}"
                )
        if self.low >= self.high:
            raise UsageError(
                f"xprun.intrange({self.low}, {self.high}): low must be below high (both are "
                "included)"
            )
        if self.step < 1:
            raise UsageError(
                f"xprun.intrange({self.low}, {self.high}, step={self.step}): step must be 1 or more"
            )

    def distribution(self) -> BaseDistribution:
        from optuna.distributions import IntDistribution

        high = self.high - (self.high - self.low) % self.step  # Optuna wants high on the grid
        return IntDistribution(self.low, high, step=self.step)

    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    def describe(self) -> str:
        step = f", step={self.step}" if self.step != 1 else ""
        return f"intrange({self.low}, {self.high}{step})"


@dataclass(frozen=True)
class Choice:
    """One of a few values (a list in ``@xprun.search``, ``a,b,c`` on the command line)."""

    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not self.choices:
            raise UsageError("a categorical choice needs at least one value")
        for value in self.choices:
            if value is not None and not isinstance(value, bool | int | float | str):
                raise UsageError(
                    f"categorical choice {value!r}: choices must be None, booleans, numbers "
                    "or strings (Optuna stores them as they are)"
                )

    def distribution(self) -> BaseDistribution:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(self.choices)

    def values(self) -> list[Any]:
        return list(self.choices)

    def describe(self) -> str:
        return "[" + ", ".join(repr(c) for c in self.choices) + "]"


Dimension = Uniform | IntRange | Choice


def uniform(low: float, high: float) -> Uniform:
    """A float searched uniformly in ``[low, high]``."""
    return Uniform(low, high)


def loguniform(low: float, high: float) -> Uniform:
    """A float searched on a log scale in ``[low, high]`` (``low > 0``)."""
    return Uniform(low, high, log=True)


def intrange(low: int, high: int, step: int = 1) -> IntRange:
    """An integer searched in ``[low, high]``, both included."""
    return IntRange(low, high, step)


def dimension(key: str, value: Any) -> Dimension:
    """One searched key's space: a dimension, or a list/tuple of choices."""
    if isinstance(value, Uniform | IntRange | Choice):
        return value
    if isinstance(value, list | tuple):
        try:
            return Choice(tuple(value))
        except UsageError as exc:
            raise UsageError(f"@xprun.search({key}=...): {exc}") from None
    raise UsageError(
        f"@xprun.search({key}={value!r}): a searched key takes xprun.uniform(...), "
        "xprun.loguniform(...), xprun.intrange(...) or a list of choices"
    )


def distributions(space: Mapping[str, Dimension]) -> dict[str, BaseDistribution]:
    """The space as Optuna's distributions, by key."""
    return {key: dim.distribution() for key, dim in space.items()}


def grid_values(space: Mapping[str, Dimension]) -> dict[str, list[Any]]:
    """Every value of each key, for Optuna's grid sampler (floats have none)."""
    found: dict[str, list[Any]] = {}
    for key, dim in space.items():
        if isinstance(dim, Uniform):
            raise UsageError(
                f"sampler 'grid' cannot search {key}={dim.describe()}: a grid needs finite "
                "values (xprun.intrange or a list of choices)"
            )
        found[key] = dim.values()
    return found


def space_from_overrides(args: Sequence[str]) -> tuple[dict[str, Dimension], list[str]]:
    """The command line's sweeps as a search space, and the other overrides as they are.

    ``interval(a,b)`` is a uniform float, ``tag(log,interval(a,b))`` a log-uniform one,
    ``range(a,b[,step])`` integers from ``a`` to ``b - step`` (Python's and Hydra's stop),
    ``a,b,c`` and ``choice(a,b,c)`` categorical.  Parsed by hydra-core's own parser.
    """
    if not args:
        return {}, []
    from hydra.core.override_parser.types import (
        ChoiceSweep,
        IntervalSweep,
        RangeSweep,
        ValueType,
    )
    from hydra.errors import HydraException

    from .overrides import _parser  # the parser is built once, for both

    parser = _parser()
    space: dict[str, Dimension] = {}
    rest: list[str] = []
    for arg in args:
        try:
            (override,) = parser.parse_overrides([arg])
        except HydraException:
            rest.append(arg)  # overrides.parse_overrides reports it, with its hints
            continue
        sweep = override._value
        key = override.key_or_group
        what = f"search override {arg!r}"
        if override.value_type == ValueType.INTERVAL_SWEEP and isinstance(sweep, IntervalSweep):
            log = "log" in (sweep.tags or set())
            low: Any = sweep.start
            high: Any = sweep.end
            try:
                space[key] = Uniform(float(low), float(high), log=log)
            except UsageError as exc:
                raise UsageError(f"{what}: {exc}") from None
        elif override.value_type == ValueType.RANGE_SWEEP and isinstance(sweep, RangeSweep):
            bounds: tuple[Any, Any, Any] = (sweep.start, sweep.stop, sweep.step)
            start, stop, step = bounds
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, stop, step)):
                raise UsageError(
                    f"{what}: a searched range() takes integers; use "
                    f"interval({start},{stop}) for floats"
                )
            if step < 1 or stop - step <= start:
                raise UsageError(
                    f"{what}: range({start},{stop},{step}) must hold two values or more "
                    "(its stop is excluded)"
                )
            space[key] = IntRange(int(start), int(stop - 1 - (stop - 1 - start) % step), int(step))
        elif override.value_type in (ValueType.CHOICE_SWEEP, ValueType.SIMPLE_CHOICE_SWEEP) and (
            isinstance(sweep, ChoiceSweep)
        ):
            values = [override_choice(v) for v in override.sweep_iterator()]
            try:
                space[key] = Choice(tuple(values))
            except UsageError as exc:
                raise UsageError(f"{what}: {exc}") from None
        else:
            rest.append(arg)
            continue
        if override.get_key_element() != key:
            raise UsageError(f"{what}: a searched key is set as it is (no +, ++, ~ or @package)")
    return space, rest


def override_choice(value: Any) -> Any:
    """A choice's value as the config gets it (Hydra's quoted strings are plain text)."""
    return str(value) if isinstance(value, str) else value


SAMPLERS = ("tpe", "random", "cmaes", "qmc", "grid")
PRUNERS = ("median", "asha", "hyperband")
DIRECTIONS = ("minimize", "maximize")


@dataclass(frozen=True)
class Search:
    """What ``@xprun.search`` (or ``--trials`` with sweeps on the command line) declared."""

    space: Mapping[str, Dimension]
    objective: str
    direction: str = "minimize"
    trials: int = 20
    sampler: str = "tpe"
    seed: int | None = 0
    pruner: str | None = None

    def __post_init__(self) -> None:
        check_settings(
            objective=self.objective,
            direction=self.direction,
            trials=self.trials,
            sampler=self.sampler,
            seed=self.seed,
            pruner=self.pruner,
        )
        if not self.space:
            raise UsageError("a search needs at least one searched key (lr=xprun.loguniform(...))")
        if self.sampler == "grid":
            grid_values(self.space)

    @property
    def keys(self) -> list[str]:
        return list(self.space)


def check_settings(
    *,
    objective: Any = None,
    direction: Any = None,
    trials: Any = None,
    sampler: Any = None,
    seed: Any = None,
    pruner: Any = None,
    where: str = "@xprun.search",
) -> None:
    """A usage error naming the first setting that is wrong (``None``: not given)."""
    if objective is not None:
        from .study import parse_objective  # the one reading of an objective's path

        try:
            parse_objective(objective)
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None
    if direction is not None and direction not in DIRECTIONS:
        raise UsageError(f"{where}: unknown direction {direction!r}; use minimize or maximize")
    if trials is not None and (
        isinstance(trials, bool) or not isinstance(trials, int) or trials < 1
    ):
        raise UsageError(f"{where}: trials must be a positive number of trials, got {trials!r}")
    if sampler is not None and sampler not in SAMPLERS:
        raise UsageError(f"{where}: unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise UsageError(f"{where}: seed must be an integer (or None), got {seed!r}")
    if pruner is not None and pruner not in PRUNERS:
        raise UsageError(
            f"{where}: unknown pruner {pruner!r}; use one of {', '.join(PRUNERS)}, or None"
        )
