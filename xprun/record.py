"""What a run directory records: the resolved config, ``run.json``, the outcome."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import yaml

from . import metadata, store
from .configvalues import READABLE_DEPTH, shared_path
from .errors import safe_str
from .serialize import jsonable
from .states import Status
from .timestamps import parse_timestamp
from .timestamps import timestamp as iso

if TYPE_CHECKING:
    from pathlib import Path

    from .runcontext import MetadataProvider
    from .runspec import RunSpec

#: libyaml's dumper when PyYAML was built with it (a dependency: no fallback to do without).
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def write_config(run: RunSpec, run_dir: Path | str | None = None) -> str | None:
    """``config.yaml``: the resolved config, loadable by OmegaConf and Hydra; ``run_dir``:
    the run's directory, when the caller has it (``run.run_dir`` makes a new one).  Returns
    the config as JSON that loads as the YAML written does (None: JSON cannot say it), for
    the results journal (:func:`config_texts`)."""
    folder = run.run_dir if run_dir is None else run_dir
    text, json_text = config_texts(run.config)
    store.write_text_atomic(os.path.join(folder, "config.yaml"), text)
    return json_text


def _dump(data: Any) -> str:
    return str(yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True))


# -- config.yaml, fast ----------------------------------------------------------------------
#
# The YAML of a mapping is the YAML of its top-level entries one after the other (each starts
# at column 0, so line folding and quoting do not depend on the others), and the runs of a
# sweep share most entries.  So each entry's YAML is cached, and an integer (a seed) is
# appended to its key's cached prefix, as PyYAML writes it (``str``).  The one difference a
# split could make, anchors of an object met twice, is avoided by dumping such a config whole.

_MAX_ENTRIES = 4096


class _NotPlain(Exception):
    """A value that is not plain data, or a container met twice: dump the config whole."""


def _frozen(value: Any, containers: set[int]) -> Any:
    """A hashable stand-in that tells apart what YAML writes differently (1, 1.0, True,
    0.0, -0.0), and notes each container met (to find one met twice)."""
    kind = type(value)
    if kind is float:
        return (float, repr(value))
    if kind in (str, int, bool, type(None)):
        return (kind, value)
    if kind is dict or kind is list:
        if id(value) in containers:
            raise _NotPlain
        containers.add(id(value))
        if kind is list:
            return (list, tuple(_frozen(v, containers) for v in value))
        items = value.items()
        return (dict, tuple((_frozen(k, containers), _frozen(v, containers)) for k, v in items))
    raise _NotPlain


_entries: dict[Any, tuple[str, str | None]] = {}  # frozen (key, value) -> its YAML, JSON
#: key -> the YAML text an integer value follows (None: not a one-line entry), and the JSON
_int_prefixes: dict[str, tuple[str | None, str]] = {}


def config_texts(config: Any) -> tuple[str, str | None]:
    """``yaml.dump(config)`` (safe, keys in order, Unicode as is), built from cached entries,
    and the same config as JSON text that decodes to what that YAML loads as, or None when
    JSON cannot say the same (a key that is not text, at any level, or a value that is not
    plain data): one pass over the config makes both."""
    if type(config) is not dict:
        return _dump(config), None
    if not config:
        return _dump(config), "{}"
    yaml_parts: list[str] = []
    json_parts: list[str | None] = []
    containers: set[int] = set()
    try:
        for key, value in config.items():
            if type(key) is not str:
                raise _NotPlain
            if type(value) is int:
                prefixes = _int_prefixes.get(key)
                if prefixes is None:
                    prefixes = _int_prefix(key)
                if prefixes[0] is not None:
                    yaml_parts.append(f"{prefixes[0]}{value}\n")
                    json_parts.append(f"{prefixes[1]}{value}")
                    continue
            frozen = (key, _frozen(value, containers))
            texts = _entries.get(frozen)
            if texts is None:
                texts = (_dump({key: value}), _json_entry(key, value))
                if len(_entries) >= _MAX_ENTRIES:
                    _entries.clear()
                _entries[frozen] = texts
            yaml_parts.append(texts[0])
            json_parts.append(texts[1])
    except _NotPlain:
        return _dump(config), None
    if None in json_parts:
        return "".join(yaml_parts), None
    return "".join(yaml_parts), "{" + ",".join(json_parts) + "}"  # type: ignore[arg-type]


def config_yaml(config: Any) -> str:
    """``yaml.dump(config)`` (safe, keys in order, Unicode as is): :func:`config_texts`."""
    return config_texts(config)[0]


def config_json(config: Any) -> str | None:
    """The config as JSON that loads as :func:`config_yaml`'s text does, or None."""
    return config_texts(config)[1]


def _int_prefix(key: str) -> tuple[str | None, str]:
    text = _dump({key: 7})
    one_line = text.count("\n") == 1 and text.endswith(" 7\n")
    if len(_int_prefixes) >= _MAX_ENTRIES:
        _int_prefixes.clear()
    found = _int_prefixes[key] = (text[:-2] if one_line else None, _JSON_ENCODE(key) + ":")
    return found


# -- the config as JSON, for the results journal ------------------------------------------
#
# JSON that decodes to what ``config.yaml``'s YAML does: text keys at every level (JSON
# would turn 1, True or None keys into text that YAML keeps as they are) and plain values.

_JSON_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class _NotJSON(Exception):
    """A value JSON would not give back as YAML does."""


def _json_plain(value: Any, depth: int = 0) -> None:
    """Raise ``_NotJSON`` unless JSON keeps ``value`` as YAML does."""
    kind = type(value)
    if kind is dict:
        if depth > 50:
            raise _NotJSON
        for key, item in value.items():
            if type(key) is not str:
                raise _NotJSON
            _json_plain(item, depth + 1)
    elif kind is list:
        if depth > 50:
            raise _NotJSON
        for item in value:
            _json_plain(item, depth + 1)
    elif kind not in (str, int, float, bool, type(None)):
        raise _NotJSON


def _json_entry(key: str, value: Any) -> str | None:
    try:
        _json_plain(value)
    except _NotJSON:
        return None
    return f"{_JSON_ENCODE(key)}:{_JSON_ENCODE(value)}"


def start_record(
    run: RunSpec,
    metadata_: MetadataProvider,
    started: float,
    retried: list[dict[str, Any]] | None = None,
    extra: list[dict[str, Any] | None] | None = None,
    run_dir: Path | None = None,
) -> dict[str, Any]:
    """The ``running`` record of a new attempt (written before the experiment is called);
    ``retried``: the failed attempts this one retries (``--retries``), each ``{attempt,
    type, message}``; ``extra``: the plugins' fields (``xprun_run_record``); ``run_dir``:
    the run's directory, when the caller has it (``run.run_dir`` makes a new one)."""
    folder = run.run_dir if run_dir is None else run_dir
    session, session_json, patch = _session_fields(metadata_)
    if patch:
        store.write_text_atomic(folder / "git.patch", patch)
    head = {
        "format": store.FORMAT_VERSION,
        "digest": run.digest,
        "hash": run.hash,
        "experiment": run.experiment.name,
        "experiment_id": run.experiment.identity,
        "nodeid": run.nodeid,
        "params": dict(run.param_ids),
        **({"resolved_at_run": run.volatile} if run.volatile else {}),
        "status": Status.RUNNING,
        "attempt": run.attempt,
        "start": iso(started),
        "end": None,
        "duration": None,
    }
    record = {**head, **session}
    tail: dict[str, Any] = {}
    if retried:
        tail["retried"] = list(retried)
    for fields in extra or ():
        if not fields:
            continue
        for key, value in fields.items():
            if key in record or key in tail:
                raise TypeError(
                    f"xprun_run_record: the field {key!r} of run.json is already written"
                    " (by the core or another plugin); use a key of your own"
                )
            tail[key] = value
    record.update(tail)
    # The text of json.dumps(record), with the session's part encoded once per session.
    parts = (store.JSON.encode(head)[1:-1], session_json, store.JSON.encode(tail)[1:-1])
    text = "{" + ", ".join(part for part in parts if part) + "}"
    store.write_bytes_atomic(os.path.join(folder, store.RUN_JSON), text.encode("utf-8"))
    _started[:] = [record, tuple(head), tuple(session), session_json]
    return record


#: The record the last ``start_record`` made: [record, its head's keys, its session's keys,
#: the session's JSON text], so that its final record's text reuses the session's part.
_started: list[Any] = []


class RecordTexts(NamedTuple):
    """A final record's text (``json.dumps(final, ensure_ascii=False)``), and the text of its
    head fields (``format`` to ``duration``, without braces) when it was spliced."""

    whole: str
    head: str | None


def record_texts(final: dict[str, Any]) -> RecordTexts:
    """The text of a final record.  When ``final`` is the record of the attempt started
    last (its keys in its order, its session fields the very objects encoded once per
    session), that session's part is spliced in, not encoded again (~60% of the text)."""
    started = _started
    if not started:
        return RecordTexts(store.JSON.encode(final), None)
    record, head_keys, session_keys, session_json = started
    keys = list(final)
    h, s = len(head_keys), len(session_keys)
    if (
        keys[:h] != list(head_keys)
        or keys[h : h + s] != list(session_keys)
        or final.get("start") != record["start"]
        or any(final[k] is not record[k] for k in session_keys)
    ):
        return RecordTexts(store.JSON.encode(final), None)
    head = store.JSON.encode({k: final[k] for k in head_keys})[1:-1]
    rest = store.JSON.encode({k: final[k] for k in keys[h + s :]})[1:-1]
    whole = "{" + ", ".join(part for part in (head, session_json, rest) if part) + "}"
    return RecordTexts(whole, head)


def record_json(final: dict[str, Any]) -> str:
    """``json.dumps(final, ensure_ascii=False)``, made as :func:`record_texts` makes it."""
    return record_texts(final).whole


_session: list[Any] = []  # [provider, scheduler, git state, fields]: the last session's


def _session_fields(metadata_: MetadataProvider) -> tuple[dict[str, Any], str, str | None]:
    """What ``run.json`` records that is the same for every run of a session (scheduler, job,
    Git, machine and process), computed once per session; the JSON text of those fields
    without its braces; and the uncommitted patch."""
    scheduler, git = metadata_.scheduler, metadata_.git_state()
    if _session and _session[0] is metadata_ and _session[1] == scheduler and _session[2] is git:
        return _session[3], _session[4], git[1]
    git_fields, patch = git
    fields = {
        "scheduler": scheduler,
        "job": metadata.job_fields(),
        "git": {**git_fields, "patch": "git.patch"} if patch else git_fields,
        **metadata.process_fields(),
    }
    text = store.JSON.encode(fields)[1:-1]
    _session[:] = [metadata_, scheduler, git, fields, text]
    return fields, text, patch


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
    kind = type(value)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    at = f"key {where!r}" if where else "the top level"
    raise TypeError(
        f"the experiment's result at {at} is {_a(name)}, which cannot be saved as JSON; return "
        "numbers, strings, lists, mappings or dataclasses of them there (convert it, or save "
        "it with logger.log_artifact and return its name)"
    )


def _a(name: str) -> str:
    """``a list``, ``an object``: the article a type's name takes (by its first letter)."""
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _jsonable(value: Any, where: str, depth: int = 0) -> Any:
    # the one conversion (serialize.py), no deeper than the Reader reads
    return jsonable(value, where, _refuse_outcome, limit=READABLE_DEPTH, depth=depth)


def jsonable_outcome(value: Any) -> dict[str, Any]:
    """The outcome to save: a mapping (or a dataclass, its fields) as is, None as ``{}``,
    another value as ``{"value": v}``."""
    if value is None:
        return {}
    # A dataclass is a mapping of its fields: its fields are the result's columns.
    if not isinstance(value, Mapping) and not hasattr(type(value), "__dataclass_fields__"):
        return {"value": _jsonable(value, "", depth=1)}
    outcome = _jsonable(value, "")
    found = shared_path(outcome, "outcome")
    if found:  # the Reader's columns are dotted paths: it could show only one of them
        first, second, dotted = found
        raise TypeError(
            f"the experiment returned {first} and {second}, which are both the result "
            f"column outcome.{dotted}; keep one of them (or rename one)"
        )
    return outcome


#: Where an outcome that cannot be stored as JSON is kept instead (the run is failed).
OUTCOME_FALLBACK = "outcome.repr.json"


def _safe_repr(value: Any, where: str = "") -> str:
    """``repr(value)``, even when the object's own ``__repr__`` raises."""
    try:
        return repr(value)
    except Exception as broken:
        return f"<{type(value).__qualname__} object; its repr raised {type(broken).__name__}>"


class OutcomeError(TypeError):
    """The experiment's result cannot be stored as JSON (it was kept in a fallback form).
    Not worth a retry: the same code returns the same kind of result."""


def save_outcome(run_dir: Path, value: Any) -> dict[str, Any]:
    """The outcome of ``value`` as JSON data (:func:`jsonable_outcome`), not yet written.

    What cannot be stored is an :class:`OutcomeError` that names the key at fault and how to fix it,
    raised after the outcome was written to ``outcome.repr.json`` in a fallback form (each
    value that cannot be stored replaced by the text of its ``repr()``, or the whole outcome's
    ``repr()`` under ``"repr"`` when its keys clash), so that the work is not lost.
    """
    try:
        return jsonable_outcome(value)
    except TypeError as exc:
        mapping = isinstance(value, Mapping) or hasattr(type(value), "__dataclass_fields__")
        shaped = value if mapping else {"value": value}
        try:
            fallback = jsonable(shaped, "", _safe_repr, limit=READABLE_DEPTH)
        except TypeError:  # keys that are the same in JSON, or nested too deep
            fallback = {"repr": _safe_repr(value)}
        store.write_json_atomic(run_dir / OUTCOME_FALLBACK, fallback, durable=True)
        raise OutcomeError(
            f"{exc}.  The outcome is kept in {OUTCOME_FALLBACK} (each value that cannot be "
            "stored as its repr()); the run is failed so that its result is not mistaken "
            "for a complete one"
        ) from None
