"""Command-line overrides in Hydra's grammar, parsed by hydra-core's own parser.

``lr=0.5``, ``+new=1``, ``++key=2``, ``~key``, ``model=resnet`` (a group option), sweeps
``lr=0.1,0.01``, ``seed=range(0,5)``, ``opt=choice(sgd,adam)``.  A sweep becomes one axis: its
values are turned back into single-value override strings (Hydra's ``sweep_string_iterator``,
as Hydra's own BasicSweeper does) and parsed again, so each run applies plain overrides.
They are applied on public OmegaConf API with the semantics and messages of Hydra's own
override application (which is private to hydra-core, so a release may move it).  Hydra is
imported only when there are overrides to parse.

A ``range()`` sweep is neither listed nor parsed value by value: its size is computed first
(so ``lr=range(1e9)`` is refused with its size before anything is built), its values are
taken from the range itself (``str`` of an int or float parses back to that number, so they
are the values the parsed choices would hold), and a choice is parsed only when a config
needs Hydra's own ``Override`` (the OmegaConf path).
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override
    from omegaconf import DictConfig


def looks_like_override(arg: str) -> bool:
    """Command-line words that are overrides rather than paths or node ids."""
    return "=" in arg.split("::", 1)[0] or arg.startswith("~")


@dataclass(frozen=True)
class OverrideAxis:
    """One command-line override: a single choice, or one per swept value.

    ``values[i]`` is what choice ``i`` sets (None for a deletion); ``choice(i)`` is Hydra's
    parsed ``Override`` for it, parsed on first use for a ``range()`` sweep.
    """

    key: str  # the config key or group
    text: str  # as typed
    prefix: str  # "", "+", "++" or "~": how each choice applies (Hydra's override types)
    package: str | None  # "key@package": a group override
    values: Sequence[Any]
    _parsed: dict[int, Override] = field(default_factory=dict, repr=False, compare=False)
    _line: str = ""  # "key=" prefix of a lazily parsed choice's line ("" when all parsed)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def is_sweep(self) -> bool:
        return len(self.values) > 1

    @property
    def choices(self) -> tuple[Override, ...]:
        """Every choice, parsed (for small sweeps and tests; expansion uses ``choice``)."""
        return tuple(self.choice(i) for i in range(len(self.values)))

    def choice(self, index: int) -> Override:
        found = self._parsed.get(index)
        if found is None:
            (found,) = _parser().parse_overrides(
                [f"{self._line}{_number_text(self.values[index])}"]
            )
            self._parsed[index] = found
        return found


def _number_text(value: int | float) -> str:
    """How Hydra's sweep writes a range's number (``Transformer.str``): ``str``."""
    return str(value)


_PREFIXES = {"CHANGE": "", "ADD": "+", "FORCE_ADD": "++", "DEL": "~"}  # Hydra's OverrideType


class _Parser:
    """Hydra's override parser, created once (creating it builds an ANTLR grammar)."""

    instance: Any = None


def _parser() -> Any:
    if _Parser.instance is None:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        _Parser.instance = OverridesParser.create()
    return _Parser.instance


def _range_size(sweep: Any) -> float | None:
    """How many values a Hydra ``RangeSweep`` holds (``math.inf`` for an endless one),
    computed without listing them; None for a step of zero (listing it raises Hydra's error).
    ``FloatRange`` steps in ``Decimal``, exactly as counted here."""
    start, stop, step = sweep.start, sweep.stop, sweep.step
    if not step:
        return None
    if isinstance(start, int) and isinstance(stop, int) and isinstance(step, int):
        return len(range(start, stop, step))
    if any(math.isnan(v) for v in (start, stop, step)):
        return None
    if math.isinf(stop) or math.isinf(start):
        return math.inf if (stop - start) * step > 0 else 0
    begin, end, by = (decimal.Decimal(v) for v in (start, stop, step))
    return max(0, math.ceil((end - begin) / by))


def parse_overrides(args: list[str], limit: float = math.inf) -> list[OverrideAxis]:
    """Parse command-line overrides; a malformed or unsupported one is a ``UsageError``,
    and so is a sweep of more than ``limit`` values (refused before it is listed)."""
    if not args:
        return []
    from hydra.core.override_parser.types import RangeSweep, ValueType
    from hydra.errors import HydraException

    parser = _parser()
    axes = []
    for arg in args:
        try:
            (override,) = parser.parse_overrides([arg])
        except RecursionError:
            raise UsageError(
                f"override {_shorten(arg)!r} nests too deeply for the override parser"
            ) from None
        except HydraException as exc:
            message = str(exc).splitlines()[0]
            raise UsageError(
                f"malformed override {arg!r}: {message}\n"
                "overrides use Hydra's grammar: key=value, +new_key=value, ~key, "
                "key=a,b,c (sweep), key=range(0,5)"
            ) from None
        if override.value_type in (ValueType.INTERVAL_SWEEP, ValueType.GLOB_CHOICE_SWEEP):
            raise UsageError(
                f"override {arg!r}: interval() and glob() sweeps are not supported; "
                "list the values (key=a,b,c) or use range(start,stop,step)"
            )
        prefix = override.get_key_element()
        sweep = override._value if override.value_type == ValueType.RANGE_SWEEP else None
        size = _range_size(sweep) if isinstance(sweep, RangeSweep) else None
        if size is not None and size > limit:
            raise SweepTooLarge(f"override {arg!r}", size, limit)
        parsed: dict[int, Override] = {}
        if isinstance(sweep, RangeSweep) and size is not None:  # a range: its numbers, parsed
            numbers = sweep.range()  # one by one only when needed
            values: Sequence[Any] = (
                numbers
                if isinstance(numbers, range) and not sweep.shuffle
                else list(override.sweep_iterator())
            )
            line = f"{prefix}="
        elif override.is_sweep_override():
            try:
                lines = [f"{prefix}={value}" for value in override.sweep_string_iterator()]
            except (ValueError, HydraException) as exc:  # range(0,5,0)
                raise UsageError(f"override {arg!r}: {exc}") from None
            if len(lines) > limit:
                raise SweepTooLarge(f"override {arg!r}", len(lines), limit)
            parsed = dict(enumerate(parser.parse_overrides(lines)))
            values = [override_value(o) for o in parsed.values()]
            line = ""
        else:
            parsed = {0: override}
            values = [override_value(override)]
            line = ""
        if not values:  # as a grid axis with no values: the whole sweep would be empty
            raise UsageError(f"override {arg!r} sweeps no values; give at least one")
        axes.append(
            OverrideAxis(
                key=override.key_or_group,
                text=arg,
                prefix=_PREFIXES[override.type.name],
                package=override.package,
                values=values,
                _parsed=parsed,
                _line=line,
            )
        )
    keys = [a.key for a in axes]
    for key in keys:
        if keys.count(key) > 1:
            raise UsageError(f"key {key!r} is overridden more than once on the command line")
    return axes


MAX_RUNS_VARIABLE = "XPRUN_MAX_RUNS"


class SweepTooLarge(UsageError):
    """A sweep too large to be meant: refused with its size before it is built."""

    def __init__(self, what: str, size: float, limit: float) -> None:
        endless = math.isinf(size)
        count = "an endless number of" if endless else f"{int(size):,}"
        fix = (
            "give the range an end"
            if endless
            else f"narrow the sweep, or, if you mean it, raise the limit with the environment "
            f"variable {MAX_RUNS_VARIABLE} (e.g. {MAX_RUNS_VARIABLE}={_round_up(size)})"
        )
        super().__init__(
            f"{what} makes {count} runs, more than the limit of {int(limit):,} runs per "
            f"launch; {fix}"
        )
        self.size = size


def _round_up(size: float) -> int:
    """``size`` rounded up to one significant digit (a limit to suggest)."""
    scale = 10 ** (len(str(int(size))) - 1)
    return math.ceil(size / scale) * scale


class OverrideError(Exception):
    """An override that does not fit the config; the message is Hydra's own."""


def refuse_replacing_value(cfg: DictConfig, key: str) -> None:
    """Refuse a dotted ``key`` that would go through a value that is not a container.

    OmegaConf (and so Hydra's ``+a.b=1``) silently replaces ``a: 0.1`` by ``a: {b: 1}``; a
    dotted key may create mappings where there is nothing (no key, ``null`` or ``???``), but
    never replace a value.
    """
    from omegaconf import DictConfig, ListConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    parts = key.split(".")
    node: Any = cfg
    try:
        for depth, part in enumerate(parts[:-1]):
            if isinstance(node, DictConfig) and part in node:
                if OmegaConf.is_missing(node, part):
                    return
                child = node[part]
            elif isinstance(node, ListConfig) and part.isdigit() and int(part) < len(node):
                child = node[int(part)]
            else:
                return
            if child is None:
                return
            if not isinstance(child, DictConfig | ListConfig):
                prefix = ".".join(parts[: depth + 1])
                raise OverrideError(
                    f"{prefix!r} is {child!r}, not a mapping, so {key!r} cannot be set in it; "
                    f"replace the whole value of {prefix!r} instead"
                )
            node = child
    except OmegaConfBaseException:
        return  # an interpolation that does not resolve: OmegaConf reports it


def apply_override(override: Override, cfg: DictConfig) -> None:
    """Apply one single-value override to a config in struct mode, as Hydra does.

    The semantics and messages of Hydra's own (private) override application, on public
    OmegaConf API: ``key=value`` sets an existing key, ``+key=value`` adds one, ``++key=value``
    adds or sets, ``~key`` (``~key=value``) deletes one (that has that value).  Raises
    ``OverrideError``.
    """
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    key = override.key_or_group
    line = override.input_line or key
    try:
        value = override.value()
        if override.is_delete():
            current = OmegaConf.select(cfg, key, throw_on_missing=False)
            if current is None:
                raise OverrideError(
                    f"Could not delete from config. '{key}' does not exist.{did_you_mean(cfg, key)}"
                )
            if value is not None and value != current:
                raise OverrideError(
                    f"Could not delete from config. The value of '{key}' is {current} and not "
                    f"{value}."
                )
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(cfg, parent) if parent else cfg
            with open_dict(cfg):
                del node[leaf]
        elif override.is_add():
            if OmegaConf.select(cfg, key, throw_on_missing=False) is not None and not isinstance(
                value, dict | list
            ):
                raise OverrideError(
                    f"Could not append to config. An item is already at '{key}'.\n"
                    f"Either remove + prefix: '{line[1:]}'\n"
                    f"Or add a second + to add or override '{key}': '+{line}'"
                )
            refuse_replacing_value(cfg, key)
            OmegaConf.update(cfg, key, value, merge=True, force_add=True)
        elif override.is_force_add():
            refuse_replacing_value(cfg, key)
            OmegaConf.update(cfg, key, value, merge=True, force_add=True)
        else:
            try:
                OmegaConf.update(cfg, key, value, merge=True)
            except (ConfigAttributeError, ConfigKeyError) as exc:
                raise OverrideError(
                    f"Could not override '{key}'.{did_you_mean(cfg, key)}\nTo append to your "
                    f"config use +{line} ({_first_line(exc)})"
                ) from None
    except OmegaConfBaseException as exc:
        raise OverrideError(f"Error merging override {line} ({_first_line(exc)})") from None


def did_you_mean(cfg: DictConfig, key: str) -> str:
    """`` Did you mean 'lr'?`` for a key the config lacks, from its dotted keys (difflib, as
    pytest's fixture-name hint); "" when none is close.  Typos in an override's key are the
    commonest first-day error, and Hydra's "not in struct" does not say what was meant."""
    import difflib

    from omegaconf import OmegaConf

    close = difflib.get_close_matches(key, dotted_keys(OmegaConf.to_container(cfg)), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def dotted_keys(tree: Any, prefix: str = "") -> list[str]:
    """Every key of a plain config tree, dotted (``model.width``), mappings walked."""
    keys: list[str] = []
    if isinstance(tree, dict):
        for name, value in tree.items():
            dotted = f"{prefix}{name}"
            keys.append(dotted)
            keys += dotted_keys(value, dotted + ".")
    return keys


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def override_value(override: Override) -> Any:
    """The value an override sets (None for a deletion), for labels and ``-k``."""
    return None if override.is_delete() else override.value()
