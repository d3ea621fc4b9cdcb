"""What a run directory records: the resolved config, ``run.json``, the outcome."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import metadata, store
from .configvalues import shared_path
from .errors import safe_str
from .serialize import jsonable
from .states import Status
from .timestamps import parse_timestamp
from .timestamps import timestamp as iso

if TYPE_CHECKING:
    from .runcontext import MetadataProvider
    from .runspec import RunSpec

try:
    import yaml

    _Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
except ImportError:  # pragma: no cover - PyYAML comes with omegaconf
    yaml = None  # type: ignore[assignment]


def write_config(run: RunSpec) -> None:
    """``config.yaml``: the resolved config, loadable by OmegaConf and Hydra."""
    text = yaml.dump(run.config, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
    store.write_text_atomic(run.run_dir / "config.yaml", text)


def start_record(run: RunSpec, metadata_: MetadataProvider, started: float) -> dict[str, Any]:
    """The ``running`` record of a new attempt (written before the experiment is called)."""
    git_fields, patch = metadata_.git_state()
    if patch:
        store.write_text_atomic(run.run_dir / "git.patch", patch)
        git_fields = {**git_fields, "patch": "git.patch"}
    record = {
        "format": store.FORMAT_VERSION,
        "digest": run.digest,
        "hash": run.hash,
        "experiment": run.experiment.name,
        "experiment_id": run.experiment.identity,
        "nodeid": run.nodeid,
        "params": dict(run.param_ids),
        "status": Status.RUNNING,
        "attempt": run.attempt,
        "start": iso(started),
        "end": None,
        "duration": None,
        "scheduler": metadata_.scheduler,
        "job": metadata.job_fields(),
        "git": git_fields,
        **metadata.process_fields(),
    }
    store.write_json_atomic(run.run_dir / store.RUN_JSON, record)
    return record


def final_record(
    record: dict[str, Any],
    status: str,
    ended: float,
    error: BaseException | None,
    packages: dict[str, str],
) -> dict[str, Any]:
    """The record of an ended attempt: status, end time, duration, error, packages."""
    started = parse_timestamp(record["start"]).timestamp()
    final = {
        **record,
        "status": status,
        "end": iso(ended),
        "duration": round(ended - started, 6),
        "packages": packages,
    }
    if error is not None:
        final["error"] = error_fields(error)
    return final


def error_fields(error: BaseException) -> dict[str, str]:
    """``{type, message}`` of an exception for ``run.json`` (even when its ``__str__`` raises)."""
    return {"type": type(error).__qualname__, "message": safe_str(error)[:2000]}


def _refuse_outcome(value: Any, where: str) -> Any:
    raise TypeError(
        f"the experiment returned a {type(value).__name__} at {where or 'the top level'!r}, "
        "which cannot be saved as JSON; return numbers, strings, lists and mappings "
        "(save other objects with logger.log_artifact)"
    )


def _jsonable(value: Any, where: str) -> Any:
    return jsonable(value, where, _refuse_outcome)  # the one conversion (serialize.py)


def jsonable_outcome(value: Any) -> dict[str, Any]:
    """The outcome to save: a mapping as is, None as ``{}``, another value as ``{"value": v}``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        return {"value": _jsonable(value, "")}
    outcome = _jsonable(value, "")
    found = shared_path(outcome, "outcome")
    if found:  # the Reader's columns are dotted paths: it could show only one of them
        first, second, dotted = found
        raise TypeError(
            f"the experiment returned {first} and {second}, which are both the result "
            f"column outcome.{dotted}; keep one of them (or rename one)"
        )
    return outcome
