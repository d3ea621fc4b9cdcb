"""Command-line overrides in Hydra's grammar, parsed by hydra-core's own parser.

``lr=0.5``, ``+new=1``, ``++key=2``, ``~key``, ``model=resnet`` (a group option), sweeps
``lr=0.1,0.01``, ``seed=range(0,5)``, ``opt=choice(sgd,adam)``.  A sweep becomes one axis: its
values are turned back into single-value override strings (Hydra's ``sweep_string_iterator``,
as Hydra's own BasicSweeper does) and parsed again, so each run applies plain overrides with
exactly Hydra's semantics.  Hydra is imported only when there are overrides to parse.
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
            lines = [f"{prefix}={value}" for value in override.sweep_string_iterator()]
            choices = tuple(parser.parse_overrides(lines))
        else:
            choices = (override,)
        axes.append(OverrideAxis(key=override.key_or_group, text=arg, choices=choices))
    keys = [a.key for a in axes]
    for key in keys:
        if keys.count(key) > 1:
            raise UsageError(f"key {key!r} is overridden more than once on the command line")
    return axes


def apply_overrides(overrides: list[Override], cfg: DictConfig) -> None:
    """Apply single-value overrides to a config in struct mode, as Hydra does."""
    if not overrides:
        return
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    ConfigLoaderImpl._apply_overrides_to_config(overrides, cfg)


def override_value(override: Override) -> Any:
    """The value an override sets (None for a deletion), for labels and ``-k``."""
    return None if override.is_delete() else override.value()
