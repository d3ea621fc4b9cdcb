"""Expansion: one experiment → its runs (base config ⊕ grids ⊕ fixture params ⊕ overrides).

For every point of the product of the experiment's ``@grid`` factors, the command-line
override axes and the params of its fixtures, the config is built in this order:

1. the base config (for a Hydra config directory: composed with the group options the point
   selects, through Hydra's compose API);
2. ``seed: 0`` when the config has no ``seed``;
3. the grid's values (grids are code: they may add keys);
4. the command-line overrides, in struct mode, as Hydra applies them (``+`` to add a key);
5. interpolations resolved (``${now:...}``, ``${oc.env:...}`` and ``${hydra:...}`` once the
   run's directory is known, their text hashed: see ``hydracompat``).

A command-line override of a key that a grid sweeps replaces that grid axis, as Hydra's
command line replaces a config's sweep; ``hydra.sweeper.params`` in the primary config are
override axes placed before the command line's, which replace them key by key.
Errors here are the user's input: they raise
``UsageError`` naming the experiment and the key, before any run directory exists.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .configvalues import MAX_DEPTH, ConfigValueError, plain
from .declare import Zip
from .errors import UsageError
from .hookimpl import hookimpl
from .hydracompat import Deferred, mentions_volatile, sweeper_lines, sweeper_params
from .identity import KeyExcluder, ParamIdentity, run_digester
from .overrides import (
    MAX_RUNS_VARIABLE,
    OverrideAxis,
    OverrideError,
    SweepTooLarge,
    apply_override,
    parse_overrides,
    refuse_replacing_value,
)
from .runspec import RunSpec

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override
    from omegaconf import DictConfig

    from .collect import Experiment
    from .marks import Mark
    from .session import Session

LABEL_VALUE_MAX = 24
DEFAULT_MAX_RUNS = 1_000_000
"""Runs one launch may expand to unless ``XPRUN_MAX_RUNS`` says otherwise: a larger sweep is
refused with its size before anything is built (each run costs about 0.5 KiB of memory)."""


def max_runs() -> int:
    """The most runs one launch may expand to (``XPRUN_MAX_RUNS``, else the default)."""
    text = os.environ.get(MAX_RUNS_VARIABLE, "").strip().replace("_", "")
    if not text:
        return DEFAULT_MAX_RUNS
    if not text.isdigit() or int(text) < 1:
        raise UsageError(
            f"{MAX_RUNS_VARIABLE}={os.environ[MAX_RUNS_VARIABLE]!r} is not a number of runs; "
            f"give a positive integer (default {DEFAULT_MAX_RUNS:,})"
        )
    return int(text)


class ConfigSource:
    """An experiment's base config, built afresh (struct mode) for each run."""

    def __init__(self, experiment: Experiment) -> None:
        from omegaconf import OmegaConf

        self.experiment = experiment
        decl = experiment.declaration
        self.hydra_dir: Path | None = None
        self._composed: dict[tuple[str, ...], Any] = {}
        self._volatile: dict[int, bool] = {}  # by id of a base container: holds ${now:...}
        self.sweeper: dict[str, Any] = {}  # hydra.sweeper.params of the primary config
        self.where = "@xprun.config"  # where the config comes from, for messages and --info
        if decl.hydra_path is not None:
            self.hydra_dir = (experiment.path.parent / decl.hydra_path).resolve()
            if not self.hydra_dir.is_dir():
                raise UsageError(
                    f"{experiment.nodeid}: Hydra config directory {self.hydra_dir} not found "
                    f"(@xprun.config(path={decl.hydra_path!r}) is relative to the experiment file)"
                )
            self.base = None
            self.where = str(self.hydra_dir / f"{decl.hydra_name}.yaml")
            self.sweeper = self._primary_sweeper(Path(self.where))
            return
        source = decl.source
        if source is None:
            base: Any = {}
        elif isinstance(source, Mapping):
            # Checked before OmegaConf sees it: OmegaConf crashes on what it cannot hold.
            base = OmegaConf.to_container(
                OmegaConf.create(self._plain(source, "@xprun.config")), resolve=False
            )
        else:
            yaml_path = experiment.path.parent / source
            try:
                base = OmegaConf.to_container(OmegaConf.load(yaml_path), resolve=False)
            except FileNotFoundError:
                raise UsageError(
                    f"{experiment.nodeid}: config file {yaml_path} not found "
                    f"(@xprun.config({str(source)!r}) is relative to the experiment file)"
                ) from None
            except Exception as exc:  # YAML syntax, unknown tags, nesting too deep...
                raise UsageError(
                    f"{experiment.nodeid}: cannot read {yaml_path}: {_describe(exc)}"
                ) from None
            if not isinstance(base, dict):
                raise UsageError(f"{experiment.nodeid}: {yaml_path} must hold a mapping")
            self.where = str(yaml_path)
            # Hydra's own settings, not the job's config (as Hydra composes it).
            self.sweeper = sweeper_params(base.pop("hydra", None), self._what())
            base = self._plain(base, str(yaml_path))
        self.base = base

    def _what(self) -> str:
        return f"{self.experiment.nodeid}: {self.where}"

    def _primary_sweeper(self, primary: Path) -> dict[str, Any]:
        """``hydra.sweeper.params`` of a Hydra config directory's primary config file."""
        from omegaconf import OmegaConf

        try:
            tree = OmegaConf.to_container(OmegaConf.load(primary), resolve=False)
        except Exception:  # missing (a structured config) or broken: compose reports it
            return {}
        return sweeper_params(tree.get("hydra") if isinstance(tree, dict) else None, self._what())

    def volatile(self, container: Any) -> bool:
        """Whether a base container holds ``${now:...}``-like text (looked at once each)."""
        found = self._volatile.get(id(container))
        if found is None:
            found = self._volatile[id(container)] = mentions_volatile(container)
        return found

    def _plain(self, value: Any, what: str) -> Any:
        """``value`` as plain config data, or a usage error naming ``what`` holds it."""
        try:
            return plain(value)
        except ConfigValueError as exc:
            raise UsageError(f"{self.experiment.nodeid}: {what}: {exc}") from None

    def is_group(self, key: str) -> bool:
        """Whether ``key`` names a config group (a folder of the Hydra config directory)."""
        return self.hydra_dir is not None and (self.hydra_dir / key.replace(".", "/")).is_dir()

    def build(self, group_overrides: tuple[str, ...]) -> DictConfig:
        from omegaconf import OmegaConf

        cfg = OmegaConf.create(self.container(group_overrides))
        OmegaConf.set_struct(cfg, True)
        return cfg

    def container(self, group_overrides: tuple[str, ...]) -> Any:
        """The base config as plain containers (composed once per group choice)."""
        if self.hydra_dir is None:
            return self.base
        container = self._composed.get(group_overrides)
        if container is None:
            container = self._compose(group_overrides)
            self._composed[group_overrides] = container
        return container

    def _compose(self, overrides: tuple[str, ...]) -> Any:
        from hydra import compose, initialize_config_dir
        from hydra.core.global_hydra import GlobalHydra
        from hydra.errors import HydraException
        from omegaconf import OmegaConf

        decl = self.experiment.declaration
        what = f"Hydra config {decl.hydra_name!r} in {self.hydra_dir}"
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(config_dir=str(self.hydra_dir), version_base=None):
                cfg = compose(config_name=decl.hydra_name, overrides=list(overrides))
        except HydraException as exc:
            raise UsageError(f"{self.experiment.nodeid}: {what}: {_describe(exc)}") from None
        except RecursionError:
            raise UsageError(
                f"{self.experiment.nodeid}: cannot compose {what}: it nests too deeply "
                "(does a defaults list include its own config?)"
            ) from None
        except Exception as exc:  # the YAML files are user input: syntax, unknown tags...
            raise UsageError(
                f"{self.experiment.nodeid}: cannot compose {what}: {_describe(exc)}"
            ) from None
        finally:
            GlobalHydra.instance().clear()
        return self._plain(OmegaConf.to_container(cfg, resolve=False), what)


def _describe(exc: BaseException) -> str:
    """An exception's message and its cause's first line (Hydra often puts the reason there)."""
    message = str(exc).strip() or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if cause is not None:
        reason = (str(cause).strip() or type(cause).__name__).splitlines()[0]
        if reason not in message:
            message += f" ({reason})"
    return message


def _grid_factors(experiment: Experiment, replaced: set[str]) -> list[Zip]:
    """The experiment's grid factors, without the axes the command line replaces."""
    factors: list[Zip] = []
    for g in experiment.declaration.grids:
        for z in g.factors:
            axes = tuple((k, values) for k, values in z.axes if k not in replaced)
            if axes:
                factors.append(Zip(axes, tuple(m for m in z.marks if m[0] not in replaced)))
    return factors


def _grid_points(experiment: Experiment, factors: list[Zip]) -> Iterator[dict[str, Any]]:
    """Every point of the grid factors, made one at a time as they are iterated.

    Each value is checked (and NumPy scalars converted) here, once, before any config is
    built; a ``range`` holds ints only and stays one (listing it would cost memory).
    """
    checked = [
        tuple(
            (key, values if isinstance(values, range) else _grid_values(experiment, key, values))
            for key, values in factor.axes
        )
        for factor in factors
    ]
    indices = itertools.product(*(range(len(factor)) for factor in factors))
    return (_point(checked, combo) for combo in indices)


def _grid_marks(experiment: Experiment, factors: list[Zip]) -> Iterator[tuple[Mark, ...]]:
    """The marks of every point of the grid factors, in the order of ``_grid_points``: the
    experiment's own, then those of the ``xprun.param`` values the point takes.  One tuple
    is shared by the points without marked values (the common case costs nothing)."""
    own = tuple(experiment.declaration.marks)
    if not any(factor.marks for factor in factors):
        return itertools.repeat(own, math.prod(len(factor) for factor in factors))
    marked: list[dict[int, tuple[Mark, ...]]] = []
    for factor in factors:
        by_index: dict[int, tuple[Mark, ...]] = {}
        for _, index, marks in factor.marks:
            by_index[index] = by_index.get(index, ()) + marks
        marked.append(by_index)
    indices = itertools.product(*(range(len(factor)) for factor in factors))
    return (
        own + tuple(m for table, i in zip(marked, combo, strict=True) for m in table.get(i, ()))
        for combo in indices
    )


def _grid_values(experiment: Experiment, key: str, values: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(_grid_value(experiment, key, value) for value in values)


def _point(
    factors: Sequence[tuple[tuple[str, Sequence[Any]], ...]], combo: tuple[int, ...]
) -> dict[str, Any]:
    point: dict[str, Any] = {}
    for axes, index in zip(factors, combo, strict=True):
        for key, values in axes:
            point[key] = values[index]
    return point


def _grid_value(experiment: Experiment, key: str, value: Any) -> Any:
    try:
        return plain(value, key)
    except ConfigValueError as exc:
        raise UsageError(f"{experiment.nodeid}: @xprun.grid: {exc}") from None


def _param_points(experiment: Experiment) -> list[dict[str, int]]:
    names = [(n, len(f.params)) for n, f in experiment.fixtures.items() if f.params is not None]
    names.sort()
    return [
        dict(zip([n for n, _ in names], combo, strict=True))
        for combo in itertools.product(*(range(count) for _, count in names))
    ]


def _check_seed(experiment: Experiment, config: dict[str, Any]) -> None:
    """The seed a run uses must be the one its hash covers: an integer, else a usage error.

    ``1.0`` hashes as ``1``, so it is the seed 1 (stored as ``1``).
    """
    seed = config.get("seed")
    if isinstance(seed, float) and seed.is_integer():
        config["seed"] = int(seed)
    elif "seed" in config and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise UsageError(
            f"{experiment.nodeid}: seed must be an integer, got {type(seed).__name__} {seed!r} "
            "(set it in the config, a grid or on the command line, e.g. seed=1 or "
            "seed=range(0,5))"
        )


def _param_identities(experiment: Experiment) -> dict[str, tuple[ParamIdentity, ...]]:
    """What each fixture param adds to the hash; a param nothing can identify is refused."""
    found: dict[str, tuple[ParamIdentity, ...]] = {}
    for name, fdef in experiment.fixtures.items():
        if fdef.params is None or fdef.identities is None:
            continue
        identities: list[ParamIdentity] = []
        for index, key in enumerate(fdef.identities):
            if key is None:
                value = repr(fdef.params[index])
                value = value if len(value) <= 60 else value[:57] + "..."
                raise UsageError(
                    f"{experiment.nodeid}: fixture {name!r} ({fdef.location}): param {index} "
                    f"({type(fdef.params[index]).__name__} {value}) cannot be part of the run's "
                    "hash: use numbers, strings, booleans, None, lists and mappings as params, "
                    "or give the fixture ids=[...] with one id per param that changes whenever "
                    "the value does"
                )
            identities.append(key)
        found[name] = tuple(identities)
    return found


def _format_value(value: Any) -> str:
    text = (
        "null" if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
    )
    text = text.replace(" ", "")
    if len(text) > LABEL_VALUE_MAX:
        text = text[: LABEL_VALUE_MAX - 1] + "…"
    return text


def _raise_config_error(experiment: Experiment, what: str, exc: Exception) -> None:
    message = str(exc).strip()
    raise UsageError(f"{experiment.nodeid}: {what}: {message}") from None


class _NotPlain(Exception):
    """The fast path cannot build this config exactly as OmegaConf would."""


def _is_plain(value: Any) -> bool:
    """JSON-like data with no interpolation or missing-value marker: OmegaConf-neutral."""
    if value is None or isinstance(value, bool | int | float):
        return True
    if isinstance(value, str):
        return "${" not in value and value != "???"
    if isinstance(value, list | tuple):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def _copy_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy_plain(v) for v in value]
    return value


def _merge_plain(target: dict[str, Any], key: str, value: Any) -> None:
    """``OmegaConf.update(cfg, key, value, merge=True, force_add=True)`` on plain dicts."""
    *parents, leaf = key.split(".")
    node = target
    for part in parents:
        node = _child_to_write(node, part, create=True, key=key)
    existing = node.get(leaf)
    if isinstance(existing, dict) != isinstance(value, dict) and (
        isinstance(existing, dict | list) and isinstance(value, dict | list | tuple)
    ):
        raise _NotPlain(key)  # OmegaConf refuses to turn a mapping into a list and back
    if isinstance(existing, dict) and isinstance(value, dict):
        existing = node[leaf] = dict(existing)  # copied on write (see _configure_plain)
        for sub_key, sub_value in value.items():
            if "." in sub_key:
                raise _NotPlain(key)  # a literal dotted key inside a mapping: OmegaConf's call
            _merge_plain(existing, sub_key, sub_value)
    else:
        node[leaf] = _copy_plain(value)


def _child_to_write(node: dict[str, Any], part: str, create: bool, key: str) -> dict[str, Any]:
    """``node[part]``, a mapping of this config's own to write into: a mapping of the base
    is copied first (created when absent and ``create``); anything else is OmegaConf's call
    (list indices, a value in the way)."""
    child = node.get(part, _ABSENT)
    if child is _ABSENT and create:
        child = node[part] = {}
    elif type(child) is dict:
        child = node[part] = dict(child)
    else:
        raise _NotPlain(key)
    return child


def _configure_plain(base: dict[str, Any], grid: dict[str, Any]) -> dict[str, Any]:
    """The base with the grid's values, on plain dicts.

    Copied on write: a mapping of the base that no key reaches is shared between the runs'
    configs (a run's config is read, never changed in place, once expanded), so a million
    runs do not hold a million copies of it.
    """
    config = dict(base)
    config.setdefault("seed", 0)
    for key, value in grid.items():
        _merge_plain(config, key, value)
    return config


def _unambiguous_depth(tree: Any, depth: int = 0) -> int | None:
    """How deep the mappings and lists of a plain tree nest, or None when a key has a dot
    or is not text (``plain`` then checks that no path is spelled twice)."""
    deepest = depth
    if isinstance(tree, dict):
        for key, value in tree.items():
            if type(key) is not str or "." in key:
                return None
            found = _unambiguous_depth(value, depth + 1)
            if found is None:
                return None
            deepest = max(deepest, found)
    elif isinstance(tree, list):
        for value in tree:
            found = _unambiguous_depth(value, depth + 1)
            if found is None:
                return None
            deepest = max(deepest, found)
    return deepest


def _is_scalar(value: Any) -> bool:
    """A value that OmegaConf stores and gives back as it is (no interpolation, no ``???``)."""
    kind = type(value)
    if kind is str:
        return "${" not in value and value != "???"
    return value is None or kind is bool or kind is int or kind is float


def _plain_parent(config: dict[str, Any], parts: list[str], create: bool) -> dict[str, Any]:
    """The mapping that holds the dotted key ``parts``, through mappings only (created on
    the way when ``create``); anything else is for OmegaConf to decide."""
    node = config
    for part in parts[:-1]:
        node = _child_to_write(node, part, create, ".".join(parts))
    return node


def _override_plain(config: dict[str, Any], axis: OverrideAxis, index: int) -> None:
    """Choice ``index`` of a command-line override applied as ``apply_override`` would, on
    plain dicts.

    Only the cases whose outcome is certain are taken: a key of plain names through
    mappings, a scalar value, and no error to report; anything else raises ``_NotPlain`` and
    OmegaConf decides, with Hydra's messages.
    """
    if axis.package is not None or not _PLAIN_KEY.fullmatch(axis.key):
        raise _NotPlain(axis.key)  # a package, list indices, odd characters: OmegaConf's call
    parts = axis.key.split(".")
    prefix = axis.prefix
    leaf = parts[-1]
    if prefix == "~":
        node = _plain_parent(config, parts, create=False)
        if node.get(leaf) is None or axis.choice(index).value() is not None:
            raise _NotPlain(axis.key)  # "does not exist", or ~key=value compares values
        del node[leaf]
        return
    value = axis.values[index]
    if not _is_scalar(value):
        raise _NotPlain(axis.key)  # a mapping or list merges: OmegaConf's rules
    node = _plain_parent(config, parts, create=prefix != "")
    current = node.get(leaf, _ABSENT)
    if type(current) is dict or type(current) is list:
        raise _NotPlain(axis.key)  # a scalar over a container
    if prefix == "" and current is _ABSENT:
        raise _NotPlain(axis.key)  # struct mode refuses a new key: Hydra says to use +
    if prefix == "+" and current is not _ABSENT and current is not None:
        raise _NotPlain(axis.key)  # "Could not append to config"
    node[leaf] = value


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_ABSENT = object()


class Expander:
    """Expands one experiment with the session's command-line overrides."""

    def __init__(self, experiment: Experiment, session: Session) -> None:
        self.experiment = experiment
        self.session = session
        self.source = ConfigSource(experiment)
        # Without interpolations or overrides, OmegaConf would only copy: skip it (fast path).
        # The base config when it is plain (a dict, then), else None.
        base = self.source.base
        plain_base = self.source.hydra_dir is None and _is_plain(base)
        self._plain_base: dict[str, Any] | None = base if plain_base else None
        self.excluder = KeyExcluder(
            [*session.config.settings.patterns("exclude"), *experiment.declaration.exclude]
        )
        self._base_depth = _unambiguous_depth(base) if self._plain_base is not None else None
        keys = [k for g in experiment.declaration.grids for z in g.factors for k, _ in z.axes]
        keys += [a.key for a in session.override_axes]
        keys += list(self.source.sweeper)
        self._key_depth = max((k.count(".") + 1 for k in keys), default=0)
        # --cfg: each run's config with its interpolations as written, by digest
        self.raw: dict[str, dict[str, Any]] | None = None
        self._last_raw: dict[str, Any] | None = None

    def with_sweeper(self, axes: list[OverrideAxis], limit: float) -> list[OverrideAxis]:
        """The primary config's ``hydra.sweeper.params`` axes (those the command line does
        not override: it wins, as in Hydra), then the command line's."""
        given = {a.key for a in axes}
        params = {k: v for k, v in self.source.sweeper.items() if k not in given}
        if not params:
            return axes
        try:
            return [*parse_overrides(sweeper_lines(params), limit), *axes]
        except SweepTooLarge:
            raise
        except UsageError as exc:
            raise UsageError(
                f"{self.experiment.nodeid}: hydra.sweeper.params in {self.source.where}: {exc}"
            ) from None

    def _configure(
        self, grid: dict[str, Any], axes: list[OverrideAxis], cli: tuple[int, ...]
    ) -> dict[str, Any] | Deferred:
        """The resolved config of one grid point and one choice of each override axis."""
        config: dict[str, Any] | Deferred | None = None
        self._last_raw = None
        if self._plain_base is not None and all(_is_plain(v) for v in grid.values()):
            try:
                config = _configure_plain(self._plain_base, grid)
                for axis, index in zip(axes, cli, strict=True):
                    _override_plain(config, axis, index)
            except _NotPlain:
                config = None
        if config is not None and self._checked_by_parts(grid, axes, cli):
            return config
        if config is None:
            overrides = tuple(axis.choice(i) for axis, i in zip(axes, cli, strict=True))
            config = self._configure_omegaconf(grid, overrides)
            if isinstance(config, Deferred):
                return config  # checked as a whole once resolved for its run
        # Checked again as a whole: grid keys and overrides can nest it deeper or spell a
        # path twice, and a custom resolver can return anything.
        try:
            return plain(config)
        except ConfigValueError as exc:
            raise UsageError(f"{self.experiment.nodeid}: {exc}") from None

    def _checked_by_parts(
        self, grid: dict[str, Any], axes: list[OverrideAxis], cli: tuple[int, ...]
    ) -> bool:
        """Whether a config built on the fast path is plain data already, as ``plain`` would
        find it: its base was checked, with no dotted or int key to be spelled twice, and
        only scalars were set, by keys too short to nest it too deep; grid values were
        checked, and so is text from the command line here."""
        if self._base_depth is None or self._base_depth + self._key_depth >= MAX_DEPTH:
            return False
        for value in grid.values():
            if type(value) is dict or type(value) is list:
                return False
        for axis, index in zip(axes, cli, strict=True):
            value = axis.values[index]
            if type(value) is str and not value.isascii():
                return False  # text from the command line, not checked yet
        return True

    def _configure_omegaconf(
        self, grid: dict[str, Any], cli: tuple[Override, ...]
    ) -> dict[str, Any] | Deferred:
        from omegaconf import OmegaConf, open_dict
        from omegaconf.errors import OmegaConfBaseException

        groups = tuple(o.input_line or "" for o in cli if self._is_group_override(o))
        groups += tuple(f"{k}={v}" for k, v in grid.items() if self.source.is_group(k))
        cfg = self.source.build(groups)
        volatile = self.source.volatile(self.source.container(groups)) or any(
            mentions_volatile(v) for v in (*grid.values(), *(o.value() for o in cli))
        )
        experiment = self.experiment
        if "seed" not in cfg:
            with open_dict(cfg):
                cfg.seed = 0
        for key, value in grid.items():
            if self.source.is_group(key):
                continue
            try:
                refuse_replacing_value(cfg, key)
                OmegaConf.update(cfg, key, value, merge=True, force_add=True)
            except (OmegaConfBaseException, OverrideError) as exc:
                _raise_config_error(experiment, f"grid key {key!r}", exc)
        for override in cli:
            if self._is_group_override(override):
                continue
            try:
                apply_override(override, cfg)
            except OverrideError as exc:
                _raise_config_error(experiment, f"override {override.input_line!r}", exc)
        try:
            if volatile or self.raw is not None:
                raw = cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=False))
                if self.raw is not None:
                    self._last_raw = raw
                deferred = Deferred.make(raw) if volatile else None
                if deferred is not None:
                    return deferred
            resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        except OmegaConfBaseException as exc:
            _raise_config_error(experiment, "config does not resolve", exc)
        # The container of a DictConfig is a dict (to_container's type covers every node).
        return cast(dict[str, Any], resolved)

    def _is_group_override(self, override: Override) -> bool:
        return override.package is not None or self.source.is_group(override.key_or_group)

    def size(self, axes: list[OverrideAxis]) -> int:
        """How many runs ``runs`` makes at most, computed without making them."""
        replaced = {a.key for a in axes}
        factors = [len(z) for z in _grid_factors(self.experiment, replaced)]
        factors += [len(a) for a in axes]
        factors += [len(f.params) for f in self.experiment.fixtures.values() if f.params]
        return math.prod(factors)

    def runs(self, axes: list[OverrideAxis], limit: float = math.inf) -> list[RunSpec]:
        """The experiment's runs, one per distinct digest; more than ``limit`` is refused
        (``SweepTooLarge``) before any is built."""
        experiment = self.experiment
        axes = self.with_sweeper(axes, limit)
        size = self.size(axes)
        if size > limit:
            raise SweepTooLarge(f"{experiment.nodeid}: the sweep", size, limit)
        session = self.session
        replaced = {a.key for a in axes}
        factors = _grid_factors(experiment, replaced)
        holders = self._placeholders(axes)
        grid_points = _grid_points(experiment, factors)
        grid_marks = _grid_marks(experiment, factors)
        param_points = _param_points(experiment)
        param_keys = _param_identities(experiment)
        param_ids = {n: f.ids for n, f in experiment.fixtures.items() if f.ids is not None}
        identity = experiment.identity
        code_version = experiment.declaration.code_version  # hashed only when given
        param_runs = [
            (
                params,
                {name: param_ids[name][i] for name, i in params.items()},
                run_digester(
                    identity,
                    {name: param_keys[name][i] for name, i in params.items()},
                    code_version,
                ),
            )
            for params in param_points
        ]
        folder = str(session.config.log_dir / experiment.name)  # one text for all its runs
        excluder = self.excluder
        keys = [a.key for a in axes]
        values = [a.values for a in axes]
        runs: list[RunSpec] = []
        seen: set[str] = set()
        for grid, marks in zip(grid_points, grid_marks, strict=True):
            for cli in itertools.product(*(range(len(a)) for a in axes)):
                made = self._configure({**holders, **grid} if holders else grid, axes, cli)
                deferred = made if isinstance(made, Deferred) else None
                # a deferred config's volatile keys hash as their text: the identity
                config = made.hashed if isinstance(made, Deferred) else made
                raw = self._last_raw if self._last_raw is not None else config
                _check_seed(experiment, config)
                hashed = excluder.apply(config) if excluder else config
                assignments = dict(grid) if cli else grid  # each point is a new dict
                for key, choices, index in zip(keys, values, cli, strict=True):
                    assignments[key] = choices[index]
                for params, ids, digest_of in param_runs:
                    digest = digest_of(hashed)
                    if digest in seen:
                        continue
                    seen.add(digest)
                    resolved, volatile = config, None
                    if deferred is not None:
                        resolved, volatile = self._resolve(deferred, folder, digest)
                    if self.raw is not None:
                        self.raw[digest] = raw
                    runs.append(
                        RunSpec(
                            experiment=experiment,
                            config=resolved,
                            assignments=assignments,
                            marks=marks,
                            param_indices=params,
                            param_ids=ids,
                            digest=digest,
                            folder=folder,
                            volatile=volatile,
                        )
                    )
        label_runs(runs)
        return runs

    def _placeholders(self, axes: list[OverrideAxis]) -> dict[str, Any]:
        """The grid keys a plain override (``i=3``) replaces, each with the grid's first
        value: the grid brings its key into the config (the base may not have it), so the
        override that replaces the axis sets a key that exists, as the guide says."""
        plain_keys = {
            a.key
            for a in axes
            if not a.prefix and a.package is None and not self.source.is_group(a.key)
        }
        if not plain_keys:
            return {}
        return {
            key: _grid_value(self.experiment, key, values[0])
            for g in self.experiment.declaration.grids
            for z in g.factors
            for key, values in z.axes
            if key in plain_keys and len(values)
        }

    def _resolve(
        self, deferred: Deferred, folder: str, digest: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A deferred config resolved for the run ``digest`` (its directory known), checked
        as every config is; and its volatile keys' values, for ``run.json``."""
        from omegaconf.errors import OmegaConfBaseException

        experiment = self.experiment
        values = {
            "runtime.output_dir": os.path.join(folder, digest.partition(":")[2]),
            "runtime.cwd": str(self.session.config.cwd),
            "job.name": experiment.name,
        }
        try:
            config, volatile = deferred.resolve(values, experiment.nodeid)
        except OmegaConfBaseException as exc:
            _raise_config_error(experiment, "config does not resolve", exc)
        try:
            config = plain(config)
            volatile = plain(volatile)
        except ConfigValueError as exc:
            raise UsageError(f"{experiment.nodeid}: {exc}") from None
        _check_seed(experiment, config)
        return config, volatile


def label_runs(runs: list[RunSpec]) -> None:
    """Give each run a readable, unique label from the keys that vary between runs.

    Linear in time and in memory beyond the labels themselves: a label shared by several
    runs is found with one set (then those runs get their hash's prefix too).
    """
    if len(runs) < 2:
        return
    keys = dict.fromkeys(k for run in runs for k in run.assignments)  # in order of appearance
    varying = [k for k in keys if _varies(runs, _assignment_text(k))]
    params = [k for k in runs[0].param_ids if _varies(runs, _param_id(k))]
    seen: set[str] = set()
    repeated: set[str] = set()
    for run in runs:
        parts = [f"{k}={_format_value(run.assignments.get(k))}" for k in varying]
        parts += [run.param_ids[k] for k in params]
        label = run.label = "-".join(parts)
        if label in seen:
            repeated.add(label)
        else:
            seen.add(label)
    seen.clear()
    for run in runs:
        label = run.label
        unique = label not in repeated and label
        run.label = f"[{label if unique else (label + '-' if label else '') + run.hash[:8]}]"


def _assignment_text(key: str) -> Callable[[RunSpec], str]:
    """A run's value of ``key`` as its repr (values of any type compare as text)."""
    return lambda run: repr(run.assignments.get(key))


def _param_id(name: str) -> Callable[[RunSpec], str]:
    return lambda run: run.param_ids[name]


def _varies(runs: list[RunSpec], value: Callable[[RunSpec], Any]) -> bool:
    """Whether ``value`` differs between some runs (stops at the first difference)."""
    first = value(runs[0])
    return any(value(run) != first for run in runs)


@hookimpl(trylast=True)
def xprun_generate_runs(experiment: Experiment, session: Session) -> list[RunSpec]:
    return Expander(experiment, session).runs(session.override_axes, session.max_runs)


def unresolved_configs(experiment: Experiment, session: Session) -> dict[str, dict[str, Any]]:
    """Each run's config, by digest, with its interpolations as written (``--cfg job``):
    the experiment expanded once more, keeping what it resolves."""
    expander = Expander(experiment, session)
    expander.raw = {}
    expander.runs(session.override_axes, session.max_runs)
    return expander.raw
