"""The decorators that declare an experiment's config and sweep: ``config``, ``grid``, ``zip``.

They only record what was declared on the function (``__xprun__``); nothing is loaded or
expanded here, so importing an experiment module stays cheap and side-effect free.  Mistakes
that can be seen at once (an axis that is not a list, zipped axes of unequal length) raise
``CollectError`` at decoration time, which collection reports against the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .errors import CollectError, UsageError
from .marks import Mark, ParamSet

F = TypeVar("F", bound=Callable[..., Any])

ATTR = "__xprun__"


@dataclass(frozen=True)
class Zip:
    """Axes that vary together: the i-th run takes the i-th value of every axis."""

    axes: tuple[tuple[str, Sequence[Any]], ...]  # each axis a tuple, or a range
    # (axis key, value index, its marks) of each value given as xprun.param(..., marks=...)
    marks: tuple[tuple[str, int, tuple[Mark, ...]], ...] = ()

    def __len__(self) -> int:
        return len(self.axes[0][1])

    def points(self) -> list[tuple[tuple[str, Any], ...]]:
        return [tuple((key, values[i]) for key, values in self.axes) for i in range(len(self))]


@dataclass(frozen=True)
class Grid:
    """One ``@grid``: the cartesian product of its factors (each a plain axis or a Zip)."""

    factors: tuple[Zip, ...]


@dataclass
class ExperimentDeclaration:
    """Everything the decorators recorded on one ``xp_*`` function."""

    source: Mapping[str, Any] | str | Path | None = None
    hydra_path: str | None = None
    hydra_name: str | None = None
    exclude: tuple[str, ...] = ()
    name: str | None = None
    grids: list[Grid] = field(default_factory=list)
    configured: bool = False
    resources: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None  # seconds per run (0: none); None: the command line's
    retries: int | None = None  # failed attempts retried at once; None: the command line's
    marks: list[Mark] = field(default_factory=list)  # @xprun.mark.NAME, top to bottom
    code_version: int | None = None  # in the run hash when given (results of older code)
    search: Any = None  # @xprun.search: a searchspace.Search (imported only when used)


def declaration(func: Callable[..., Any]) -> ExperimentDeclaration:
    """The declaration of ``func`` (an empty one if nothing was declared)."""
    found = getattr(func, ATTR, None)
    return found if isinstance(found, ExperimentDeclaration) else ExperimentDeclaration()


def _declaration_for_update(func: Callable[..., Any]) -> ExperimentDeclaration:
    found = func.__dict__.get(ATTR)
    if not isinstance(found, ExperimentDeclaration):
        found = ExperimentDeclaration()
        setattr(func, ATTR, found)
    return found


def add_mark(func: F, mark: Mark) -> F:
    """Record ``@xprun.mark.NAME`` on ``func`` (decorators apply bottom-up: inserted at the
    front, so the marks read top to bottom)."""
    _declaration_for_update(func).marks.insert(0, mark)
    return func


def _axis(key: str, values: Any) -> Zip:
    """One checked axis, as a Zip of that axis alone; a value given as ``xprun.param`` is
    made plain (its value alone is hashed) and its marks kept beside it."""
    checked = _axis_values(key, values)
    if isinstance(checked, range) or not any(isinstance(v, ParamSet) for v in checked):
        return Zip(((key, checked),))
    marks = tuple(
        (key, index, value.marks)
        for index, value in enumerate(checked)
        if isinstance(value, ParamSet) and value.marks
    )
    plain = tuple(value.value if isinstance(value, ParamSet) else value for value in checked)
    return Zip(((key, plain),), marks)


def _axis_values(key: str, values: Any) -> Sequence[Any]:
    if not isinstance(key, str) or not key:
        raise CollectError(f"grid axis names must be non-empty strings, got {key!r}")
    if "" in key.split("."):  # OmegaConf would silently create a key named ""
        raise CollectError(
            f"grid axis {key!r} has an empty part; dotted keys are names joined by single dots"
        )
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise CollectError(
            f"grid axis {key!r} must be a list of values, got {type(values).__name__} "
            f"{values!r}; write {key}=[{values!r}] for a single value"
        )
    # A range stays a range: its length and items are computed, so a sweep too large to be
    # meant is refused with its size at expansion instead of filling the memory here.
    values = values if isinstance(values, range) else tuple(values)
    if not values:
        raise CollectError(f"grid axis {key!r} has no values; give at least one")
    return values


def zip(*mappings: Mapping[str, Sequence[Any]], **axes: Sequence[Any]) -> Zip:
    """Axes that vary together (``zip(lr=[.1, .01], batch=[32, 64])`` makes 2 points, not 4).

    Dotted keys reach nested values: ``zip({"model.width": [64, 128]}, lr=[.1, .01])``.
    """
    merged: dict[str, Any] = {}
    for mapping in (*mappings, axes):
        merged.update(mapping)
    if not merged:
        raise CollectError("xprun.zip() needs at least one axis")
    parts = [_axis(key, values) for key, values in merged.items()]
    lengths = {z.axes[0][0]: len(z) for z in parts}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        raise CollectError(f"xprun.zip() axes must have equal lengths ({detail})")
    return Zip(tuple(z.axes[0] for z in parts), tuple(m for z in parts for m in z.marks))


def grid(*factors: Zip | Mapping[str, Sequence[Any]], **axes: Sequence[Any]) -> Callable[[F], F]:
    """Sweep the cartesian product of the axes; several ``@grid`` decorators multiply.

    ``@grid(lr=[0.1, 0.01], optimizer=["sgd", "adam"])`` makes 4 runs.  Dotted keys reach
    nested config values (``@grid(**{"model.width": [64, 128]})`` or a positional mapping);
    ``xprun.zip(...)`` factors vary together.
    """
    normalized: list[Zip] = []
    for factor in factors:
        if isinstance(factor, Zip):
            normalized.append(factor)
        elif isinstance(factor, Mapping):
            normalized.extend(_axis(k, v) for k, v in factor.items())
        else:
            raise CollectError(
                f"@xprun.grid positional arguments must be xprun.zip(...) or a mapping, "
                f"got {type(factor).__name__}"
            )
    normalized.extend(_axis(k, v) for k, v in axes.items())
    keys = [key for z in normalized for key, _ in z.axes]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise CollectError(f"@xprun.grid names axis {duplicated[0]!r} more than once")

    def decorate(func: F) -> F:
        # Decorators apply bottom-up; insert at the front so grids read top to bottom.
        _declaration_for_update(func).grids.insert(0, Grid(tuple(normalized)))
        return func

    return decorate


def config(
    source: Mapping[str, Any] | str | Path | None = None,
    *,
    path: str | None = None,
    name: str | None = None,
    exclude: Iterable[str] = (),
    experiment: str | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    code_version: int | None = None,
) -> Callable[[F], F]:
    """Declare the experiment's base config.

    - ``config({"lr": 0.1})``: a mapping;
    - ``config("conf/base.yaml")``: a YAML file, relative to the experiment file;
    - ``config(path="conf", name="train")``: a Hydra config directory (relative to the
      experiment file) composed with Hydra's compose API, so defaults lists and config groups
      work and ``model=resnet`` on the command line selects a group option.

    ``exclude`` lists config keys left out of the run's hash (dotted paths or globs, e.g.
    ``["num_workers", "trainer.*"]``) for settings that do not change results.
    ``experiment`` names the experiment (its log folder and hash identity) instead of the
    default, its node id with dots (``sub.xp_a.xp_train``); it must be a plain folder name.
    ``timeout`` (seconds, ``0``: none) and ``retries`` (a number of retries) override
    ``--timeout`` and ``--retries`` for this experiment's runs.
    ``code_version`` (a whole number) says that results of older code are invalid: it enters
    the run hash, so bumping it makes every run new (without it, hashes are as they were).
    """
    _check_limits(timeout, retries)
    if code_version is not None and (
        isinstance(code_version, bool) or not isinstance(code_version, int) or code_version < 0
    ):
        raise CollectError(
            f"@xprun.config(code_version=...) must be a whole number, 0 or more, got "
            f"{code_version!r}; bump it when results of older code are no longer valid"
        )
    if source is not None and (path is not None or name is not None):
        raise CollectError("@xprun.config takes a mapping/YAML path or path=+name=, not both")
    if (path is None) != (name is None):
        raise CollectError(
            "@xprun.config(path=..., name=...) needs both the Hydra config "
            "directory (path) and the config name (name)"
        )
    if source is not None and not isinstance(source, Mapping | str | Path):
        raise CollectError(
            f"@xprun.config expects a mapping or a YAML file path, got {type(source).__name__}"
        )
    if isinstance(exclude, str):
        exclude = [exclude]

    def decorate(func: F) -> F:
        problem = None if experiment is None else experiment_name_problem(experiment)
        if problem:
            code = getattr(func, "__code__", None)
            where = f" ({code.co_filename}:{code.co_firstlineno})" if code else ""
            raise UsageError(
                f"@xprun.config(experiment={experiment!r}) on {func.__qualname__}{where}: the "
                f"name {problem}"
            )
        decl = _declaration_for_update(func)
        if decl.configured:
            raise CollectError(f"{func.__name__} has more than one @xprun.config")
        decl.source = source
        decl.hydra_path = path
        decl.hydra_name = name
        decl.exclude = tuple(exclude)
        decl.name = experiment
        decl.timeout = None if timeout is None else float(timeout)
        decl.retries = retries
        decl.code_version = code_version
        decl.configured = True
        return func

    return decorate


def _check_limits(timeout: object, retries: object) -> None:
    """``@xprun.config(timeout=..., retries=...)``: a number of seconds, a number of retries."""
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 <= timeout < float("inf")
    ):
        raise CollectError(
            f"@xprun.config(timeout=...) must be a number of seconds, 0 or more (0: no "
            f"limit), got {timeout!r}"
        )
    if retries is not None and (
        isinstance(retries, bool) or not isinstance(retries, int) or retries < 0
    ):
        raise CollectError(
            f"@xprun.config(retries=...) must be a whole number, 0 or more, got {retries!r}"
        )


NAME_MAX_BYTES = 200  # file systems allow 255 per name; room for what is written beside it


def experiment_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name an experiment's folder in the log directory, or None.

    The name is one folder: no separators, nothing hidden (which also rules out ``.`` and
    ``..``), nothing the file system refuses or the Reader would skip.
    """
    if not isinstance(name, str):
        return f"must be a string, not {type(name).__name__}"
    if not name.strip():
        return "must not be empty"
    if name.startswith("."):
        return "must not start with '.' (hidden folders are skipped; '..' leaves the log dir)"
    bad = sorted({c for c in name if c in "/\\" or ord(c) < 32 or ord(c) == 127})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return f"must not contain {shown}: it names one folder of the log directory"
    try:
        size = len(os.fsencode(name))
    except UnicodeError:
        return "is not valid text (lone surrogate characters)"
    if size > NAME_MAX_BYTES:
        return f"is {size} bytes long; at most {NAME_MAX_BYTES} fit a folder name"
    return None


RESOURCE_KEYS = ("cpus", "gpus", "mem", "time", "partition", "extra")


def resources(
    *,
    cpus: int | None = None,
    gpus: int | None = None,
    mem: str | None = None,
    time: str | None = None,
    partition: str | None = None,
    extra: Sequence[str] = (),
) -> Callable[[F], F]:
    """What one run of this experiment needs on a cluster, merged over the scheduler's
    defaults: ``@xprun.resources(cpus=4, gpus=1, mem="16G", time="02:00:00")``.

    ``extra`` is a list of scheduler options passed as they are (``["--qos=long"]``).
    Ignored by the inline and local schedulers.
    """
    given = {"cpus": cpus, "gpus": gpus, "mem": mem, "time": time, "partition": partition}
    for key in ("cpus", "gpus"):
        value = given[key]
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise CollectError(
                f"@xprun.resources({key}=...) must be a non-negative int, got {value!r}"
            )
    if isinstance(extra, str):
        raise CollectError("@xprun.resources(extra=...) is a list of options, not a string")
    chosen: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if extra:
        chosen["extra"] = [str(e) for e in extra]

    def decorate(func: F) -> F:
        _declaration_for_update(func).resources.update(chosen)
        return func

    return decorate


def search(
    *,
    objective: str,
    direction: str = "minimize",
    trials: int = 20,
    sampler: str = "tpe",
    seed: int | None = 0,
    pruner: str | None = None,
    **space: Any,
) -> Callable[[F], F]:
    """Search the keys given instead of sweeping a grid: each trial is an ordinary run.

    ``@xprun.search(lr=xprun.loguniform(1e-5, 1e-1), depth=xprun.intrange(2, 8),
    optimizer=["sgd", "adam"], objective="outcome.val_loss", trials=64)``: the sampler
    (``tpe``, ``random``, ``cmaes``, ``qmc``, ``grid``, seeded by ``seed``) proposes values of
    the searched keys (each must be in the config), the objective is read from each trial's
    outcome (``outcome.<key>``) or metrics (``metrics.<name>``), and ``pruner`` (``median``,
    ``asha``, ``hyperband``) may stop trials early through the ``trial`` fixture.  ``trials``
    is a target: launching again continues toward it (see docs/search.md).
    """
    from .searchspace import Search, dimension

    made = Search(
        space={key: dimension(key, value) for key, value in space.items()},
        objective=objective,
        direction=direction,
        trials=trials,
        sampler=sampler,
        seed=seed,
        pruner=pruner,
    )

    def decorate(func: F) -> F:
        decl = _declaration_for_update(func)
        if decl.search is not None:
            raise UsageError(f"{func.__name__} has more than one @xprun.search")
        decl.search = made
        return func

    return decorate
