"""Hydra configs as users already have them: sweeper params, ``${hydra:...}``, ``${now:...}``.

- ``hydra.sweeper.params`` in the primary config (Hydra 1.2+'s basic sweeper) are sweep axes
  in the command-line grammar (``lr: 0.1,0.01``, ``seed: range(3)``); a command-line override
  of the same key replaces the config's axis, as in Hydra.
- Some interpolations are not part of what a run computes but of where and when it runs:
  ``${now:...}`` changes daily, ``${oc.env:...}`` per machine or user, ``${hydra:...}`` names
  the run directory, which the hash itself decides.  A key whose value holds one (directly,
  or through another key) is hashed as its interpolation text, so the same config is the same
  run tomorrow and on another machine; its value is resolved for the run only, once the
  run's directory is known, and recorded in ``run.json`` (``resolved_at_run``).
- ``${hydra:runtime.output_dir}`` is the run directory, ``${hydra:runtime.cwd}`` the
  directory xprun was launched from, ``${hydra:job.name}`` the experiment's name; any other
  ``${hydra:...}`` is a usage error naming those.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from .errors import UsageError

#: An interpolation of a resolver whose value depends on the time, the machine or the run.
VOLATILE = re.compile(r"\$\{\s*(now|oc\.env|hydra)\s*:")
_HYDRA = re.compile(r"\$\{\s*hydra\s*:\s*([^}]*?)\s*\}")
HYDRA_KEYS = ("runtime.output_dir", "runtime.cwd", "job.name")
_MARK = "\0xprun-volatile:"

Path_ = tuple[str | int, ...]


def mentions_volatile(tree: Any) -> bool:
    """Whether a plain config tree holds text with a volatile interpolation (one pass over
    its JSON text: cheaper than a walk in Python)."""
    if isinstance(tree, str):
        return VOLATILE.search(tree) is not None
    try:
        return VOLATILE.search(json.dumps(tree, default=str)) is not None
    except (TypeError, ValueError, RecursionError):
        return True  # let the careful walk decide


def sweeper_params(hydra_node: Any, where: str) -> dict[str, Any]:
    """``hydra.sweeper.params`` of a primary config's ``hydra`` node ({} when absent)."""
    if not isinstance(hydra_node, dict):
        return {}
    sweeper = hydra_node.get("sweeper")
    params = sweeper.get("params") if isinstance(sweeper, dict) else None
    if params is None:
        return {}
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise UsageError(
            f"{where}: hydra.sweeper.params must map config keys to sweeps "
            "(lr: 0.1,0.01 or seed: range(3)), as Hydra's basic sweeper reads it"
        )
    return params


def sweeper_lines(params: dict[str, Any]) -> list[str]:
    """The params as override lines, as Hydra's basic sweeper writes them (``key=value``)."""
    return [f"{key}={_text(value)}" for key, value in params.items()]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    return str(value)


def _leaves(tree: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from _leaves(value, (*path, index))
    else:
        yield path, tree


def dotted(path: Path_) -> str:
    return ".".join(str(part) for part in path)


def _set(cfg: Any, path: Path_, value: Any) -> None:
    node = cfg
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _get(tree: Any, path: Path_) -> Any:
    for part in path:
        tree = tree[part]
    return tree


@dataclass
class Deferred:
    """A config whose volatile keys are resolved per run: ``hashed`` holds their
    interpolation text (what the identity covers), ``keys`` their paths."""

    raw: dict[str, Any]  # the config with every interpolation as written
    hashed: dict[str, Any]
    keys: list[Path_]

    @classmethod
    def make(cls, raw: dict[str, Any]) -> Deferred | None:
        """The deferred config of ``raw`` (unresolved), or None when no key is volatile.

        Which keys are volatile, directly or through other keys, is found by resolving a
        copy where each volatile text is a marker: a key whose value then holds a marker
        depends on one.  Raises OmegaConf's errors (the caller names the experiment)."""
        from omegaconf import OmegaConf

        direct = [p for p, v in _leaves(raw) if isinstance(v, str) and VOLATILE.search(v)]
        if not direct:
            return None
        marked_cfg = OmegaConf.create(raw)
        for number, path in enumerate(direct):
            _set(marked_cfg, path, f"{_MARK}{number}")
        marked = OmegaConf.to_container(marked_cfg, resolve=True, throw_on_missing=True)
        keys: list[Path_] = []
        hashed = _restore(marked, raw, (), keys)
        return cls(raw=raw, hashed=hashed, keys=keys)

    def resolve(self, values: dict[str, str], where: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The config as the run sees it (``${hydra:KEY}`` from ``values``), and the resolved
        value of each volatile key, by dotted key, for ``run.json``."""
        from omegaconf import OmegaConf

        _register_now()
        cfg = OmegaConf.create(self.raw)
        for path, text in _leaves(self.raw):
            if isinstance(text, str) and "hydra" in text and _HYDRA.search(text):
                _set(cfg, path, _HYDRA.sub(lambda m: _hydra_value(m, values, where), text))
        resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        resolved = cast(dict[str, Any], resolved)
        record = {dotted(path): _get(resolved, path) for path in self.keys}
        return resolved, record


def _restore(marked: Any, raw: Any, path: Path_, keys: list[Path_]) -> Any:
    """``marked`` with each part that holds a marker put back as its interpolation text
    (the nearest text of ``raw`` above it)."""
    if isinstance(raw, str) and "${" in raw and _holds_mark(marked):
        keys.append(path)
        return raw
    if isinstance(marked, dict) and isinstance(raw, dict):
        return {k: _restore(v, raw.get(k), (*path, k), keys) for k, v in marked.items()}
    if isinstance(marked, list) and isinstance(raw, list) and len(raw) == len(marked):
        pairs = enumerate(zip(marked, raw, strict=True))
        return [_restore(v, r, (*path, i), keys) for i, (v, r) in pairs]
    return marked


def _holds_mark(tree: Any) -> bool:
    return any(isinstance(v, str) and _MARK in v for _, v in _leaves(tree))


def _hydra_value(match: re.Match[str], values: dict[str, str], where: str) -> str:
    key = match.group(1)
    if key not in values:
        raise UsageError(
            f"{where}: ${{hydra:{key}}} is not known to xprun; it resolves "
            + ", ".join(f"${{hydra:{k}}}" for k in HYDRA_KEYS)
        )
    # OmegaConf reads a backslash as an escape only before "${" (and before such a
    # backslash): double those runs, then escape "${"; any other backslash is literal.
    value = re.sub(r"(\\+)(?=\$\{)", lambda m: m.group(1) * 2, values[key])
    return value.replace("${", "\\${")


def _register_now() -> None:
    """Hydra's own ``now`` resolver (registered by Hydra when it starts an app; a YAML config
    outside a Hydra config directory needs it too)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("now"):
        from hydra.core.utils import setup_globals

        setup_globals()


def hydra_sources(config_dir: str, name: str) -> tuple[list[str], dict[str, Any]]:
    """A Hydra config directory's defaults list (each entry's config path, package and the
    config that asked for it) and its group choices, as Hydra's ``--info defaults`` shows
    them, without command-line overrides (``--info`` shows those separately)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir, version_base=None):
            loader = GlobalHydra.instance().config_loader()
            found = loader.compute_defaults_list(name, [], RunMode.RUN)
            cfg = compose(config_name=name, return_hydra_config=True)
            choices = OmegaConf.to_container(cfg.hydra.runtime.choices, resolve=False)
    finally:
        GlobalHydra.instance().clear()
    lines = []
    for entry in found.defaults:
        path = entry.config_path or ""
        if path.startswith("hydra/") or (entry.parent or "").startswith("hydra/"):
            continue  # Hydra's own settings (launcher, sweeper, logging)
        notes = [f"package {entry.package}"] if entry.package else []
        if entry.primary:
            notes.append("primary config")
        elif entry.parent and entry.parent != "<root>":
            notes.append(f"from {entry.parent}")
        lines.append(f"{path} ({', '.join(notes)})" if notes else path)
    assert isinstance(choices, dict)
    return lines, {str(k): v for k, v in choices.items() if not str(k).startswith("hydra/")}
