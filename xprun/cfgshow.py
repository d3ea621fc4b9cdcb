"""``--cfg job`` and ``--info``: the configs of the selected runs and where they come from.

Hydra's habits: ``--cfg job`` prints the config of each selected run as YAML under a comment
naming its node id (interpolations as written; ``--resolve``: resolved, as the run sees
it), and ``--info`` prints, for each selected experiment, where its config comes from (the
config file, or a Hydra config directory's defaults list and group choices), its sweep axes
and which command-line override changes which key, from what to what.  Nothing runs.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import argparse

    from .collect import Experiment
    from .config import Config
    from .overrides import OverrideAxis
    from .session import Session


def xprun_addoption(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    group = parser.add_argument_group("config introspection (as Hydra's)")
    group.add_argument(
        "--cfg",
        choices=["job"],
        default=None,
        help="print the config of each selected run (YAML, under its node id); run nothing",
    )
    group.add_argument(
        "--resolve",
        action="store_true",
        help="with --cfg job: resolve interpolations (as the run sees its config)",
    )
    group.add_argument(
        "--info",
        action="store_true",
        dest="cfginfo",
        help="print where each selected experiment's config comes from (file, Hydra "
        "defaults list and group choices, sweep axes, which override changes what); "
        "run nothing",
    )


def xprun_configure(config: Config) -> None:
    option = config.option
    if option.resolve and option.cfg is None:
        from .errors import UsageError

        raise UsageError("--resolve goes with --cfg job (xprun --cfg job --resolve)")


def xprun_runloop(session: Session) -> bool | None:
    option = session.config.option
    if option.collect_only or not (option.cfg or option.cfginfo):
        return None
    out = sys.stdout
    if option.cfginfo:
        for experiment in _experiments(session):
            _info(session, experiment, out)
    if option.cfg:
        _configs(session, option.resolve, out)
    out.flush()
    return True


def _experiments(session: Session) -> list[Experiment]:
    """The experiments of the selected runs, in order."""
    found: dict[str, Experiment] = {}
    for run in session.runs:
        found.setdefault(run.experiment.nodeid, run.experiment)
    return list(found.values())


def _configs(session: Session, resolve: bool, out: TextIO) -> None:
    from omegaconf import OmegaConf

    from .expand import unresolved_configs

    raw: dict[str, dict[str, Any]] = {}
    for run in session.runs:
        if not resolve and run.digest not in raw:
            raw.update(unresolved_configs(run.experiment, session))
        config = run.config if resolve else raw.get(run.digest, run.config)
        out.write(f"# {run.nodeid}\n{OmegaConf.to_yaml(OmegaConf.create(config))}\n")


def _info(session: Session, experiment: Experiment, out: TextIO) -> None:
    from .expand import ConfigSource

    source = ConfigSource(experiment)
    out.write(f"{experiment.nodeid}\n")
    if source.hydra_dir is not None:
        from .hydracompat import hydra_sources

        name = experiment.declaration.hydra_name
        out.write(f"  config: Hydra config directory {source.hydra_dir}, primary config {name}\n")
        try:
            defaults, choices = hydra_sources(str(source.hydra_dir), str(name))
        except Exception as exc:  # composing needs what the command line chooses
            out.write(f"  defaults list: not composed without overrides ({_first(exc)})\n")
        else:
            out.write("  defaults list:\n")
            out.writelines(f"    {line}\n" for line in defaults)
            chosen = ", ".join(f"{k}={v}" for k, v in choices.items()) or "none"
            out.write(f"  group choices: {chosen}\n")
    elif experiment.declaration.source is None:
        out.write("  config: none (an empty config, and seed: 0)\n")
    elif isinstance(experiment.declaration.source, Mapping):
        out.write("  config: the mapping given to @xprun.config\n")
    else:
        out.write(f"  config: YAML file {source.where}\n")
    axes: list[OverrideAxis] = session.override_axes
    given = {a.key for a in axes}
    for key, value in source.sweeper.items():
        note = " (replaced by the command line)" if key in given else ""
        out.write(f"  hydra.sweeper.params: {key}={value}{note}\n")
    for grid in experiment.declaration.grids:
        for factor in grid.factors:
            for key, values in factor.axes:
                note = " (replaced by the command line)" if key in given else ""
                out.write(f"  grid: {key} = {_values(list(values))}{note}\n")
    if axes:
        out.write("  command-line overrides:\n")
        for axis in axes:
            out.write(f"    {axis.text}: {_change(source, axis)}\n")


def _change(source: Any, axis: OverrideAxis) -> str:
    """``key: from -> to`` for one override, against the base config."""
    key = axis.key
    if axis.package is not None or source.is_group(key):
        before = _group_choice(source, key)
        return f"group {key}: {before} -> {_values(list(axis.values))}"
    before = _lookup(source, key)
    if axis.prefix == "~":
        return f"{key}: {before} -> (deleted)"
    return f"{key}: {before} -> {_values(list(axis.values))}"


def _group_choice(source: Any, key: str) -> str:
    from .hydracompat import hydra_sources

    try:
        name = str(source.experiment.declaration.hydra_name)
        _, choices = hydra_sources(str(source.hydra_dir), name)
    except Exception:
        return "(no default)"
    return str(choices.get(key, "(no default)"))


_ABSENT = "(absent)"


def _lookup(source: Any, key: str) -> str:
    try:
        tree = source.container(())
    except Exception:  # a Hydra config that needs a group chosen: its base is unknown
        return "(unknown)"
    for part in key.split("."):
        if isinstance(tree, dict) and part in tree:
            tree = tree[part]
        elif isinstance(tree, list) and part.isdigit() and int(part) < len(tree):
            tree = tree[int(part)]
        else:
            return _ABSENT
    return _value(tree)


def _value(value: Any) -> str:
    import json

    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _values(values: list[Any]) -> str:
    if len(values) == 1:
        return _value(values[0])
    shown = ", ".join(_value(v) for v in values[:8])
    more = f", ... ({len(values)} values)" if len(values) > 8 else ""
    return f"[{shown}{more}] (a sweep)"


def _first(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]
