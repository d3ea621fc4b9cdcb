"""Command-line overrides in Hydra's grammar, parsed by hydra-core's own parser.

``lr=0.5``, ``+new=1``, ``++key=2``, ``~key``, ``model=resnet`` (a group option), sweeps
``lr=0.1,0.01``, ``seed=range(0,5)``, ``opt=choice(sgd,adam)``.  A sweep becomes one axis: its
values are turned back into single-value override strings (Hydra's ``sweep_string_iterator``,
as Hydra's own BasicSweeper does) and parsed again, so each run applies plain overrides.
They are applied on public OmegaConf API with the semantics and messages of Hydra's own
override application (which is private to hydra-core, so a release may move it).  Hydra is
imported only when there are overrides to parse.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """One command-line override: a single choice, or one per swept value."""

    key: str  # the config key or group
    text: str  # as typed
    choices: tuple[Override, ...]

    @property
    def is_sweep(self) -> bool:
        return len(self.choices) > 1


def _parser() -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def parse_overrides(args: list[str]) -> list[OverrideAxis]:
    """Parse command-line overrides; a malformed or unsupported one is a ``UsageError``."""
    if not args:
        return []
    from hydra.core.override_parser.types import ValueType
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
        if override.is_sweep_override():
            prefix = override.get_key_element()
            try:
                lines = [f"{prefix}={value}" for value in override.sweep_string_iterator()]
            except (ValueError, HydraException) as exc:  # range(0,5,0)
                raise UsageError(f"override {arg!r}: {exc}") from None
            if not lines:  # as a grid axis with no values: the whole sweep would be empty
                raise UsageError(f"override {arg!r} sweeps no values; give at least one")
            choices = tuple(parser.parse_overrides(lines))
        else:
            choices = (override,)
        axes.append(OverrideAxis(key=override.key_or_group, text=arg, choices=choices))
    keys = [a.key for a in axes]
    for key in keys:
        if keys.count(key) > 1:
            raise UsageError(f"key {key!r} is overridden more than once on the command line")
    return axes


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
                raise OverrideError(f"Could not delete from config. '{key}' does not exist.")
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
                    f"Could not override '{key}'.\nTo append to your config use +{line} "
                    f"({_first_line(exc)})"
                ) from None
    except OmegaConfBaseException as exc:
        raise OverrideError(f"Error merging override {line} ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def override_value(override: Override) -> Any:
    """The value an override sets (None for a deletion), for labels and ``-k``."""
    return None if override.is_delete() else override.value()
