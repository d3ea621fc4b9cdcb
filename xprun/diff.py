"""``xprun diff A B``: what differs between two runs, or between two groups of runs.

A side is one run (a hash, a unique hash prefix, a node id with its label) or a group (a
node id without a label, or a query of the Reader's language).  Every section compares the
same way, a run being a group of one:

- **config** (``params.*`` and ``config.*``, the Reader's flattened keys): the keys whose
  value differs.  A group's value of a key is the one all its runs share; a key whose value
  varies inside a group is listed only when it is constant on the other side (a key that
  varies on both sides is the sweep itself, not a difference between the groups).
- **status**: a run's status; a group's count of runs by status.
- **outcome** and **final metrics** (the last value of each metric, as the Reader's
  ``metrics.<metric>.last``): numbers get ``B - A``; a group's number is its mean over the
  runs that have it, with their count.  Other values compare as config values do.
- **code**: the files the experiments imported (``code.files`` of both records), compared by
  their normalized digest, with a unified diff of the bytes each run ran
  (``provenance.recorded_source``); a file whose bytes differ but whose digest does not is
  a change of comments, docstrings or formatting only, which does not count for the results.
- **packages** (the session's installed distributions when both runs have them, else the
  distributions the runs imported, from ``run.json``) and **environment** (host, user,
  Python, platform, xprun, scheduler, Git commit).

Only differences are listed; an equal section is one line saying so, and two sides equal in
every section are one line.  The exit code is 0 for every diff made: whether two runs
"agree" depends on which sections matter, which ``--format json`` lets a script decide.

This module is imported by every ``xprun`` command (its ``xprun_subcommand``): the standard
library only at the top, the Reader and pandas inside the command.
"""

from __future__ import annotations

import argparse
import json
import math
import posixpath
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cli import Command

FORMATS = ("text", "json", "markdown")
#: The version of ``--format json``'s object: a change that breaks a script bumps it.
JSON_FORMAT = 1
#: The record fields compared in the environment section (dotted: inside ``git``);
#: ``python_folder`` is the folder of ``python_executable``: the environment it runs in
#: (a venv's, say), where ``python`` and ``python3.11`` are one interpreter (an inline run
#: records the first, a pool worker the second).
ENVIRONMENT = (
    "host",
    "user",
    "python",
    "python_folder",
    "platform",
    "xprun",
    "scheduler",
    "git.commit",
    "git.branch",
    "git.dirty",
)
SECTIONS = ("config", "status", "outcome", "metrics", "code", "packages", "environment")
_TITLES = {"metrics": "final metrics", **{s: s for s in SECTIONS if s != "metrics"}}


def xprun_subcommand() -> Iterable[Command]:
    return (Command("diff", main, "what differs between two runs or two groups of runs"),)


class _Marker:
    """A value a side does not have (``MISSING``) or has several of (``VARIES``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


MISSING = _Marker("(missing)")
VARIES = _Marker("(varies)")


# -- the runs of a side ---------------------------------------------------------------------


@dataclass
class _Run:
    """One run as the diff reads it: the Reader's row (info, ``params.*``, ``config.*``,
    ``outcome.*`` as JSON values), its ``run.json``, its live status, its final metrics."""

    path: Path
    hash: str
    nodeid: str
    status: str
    row: dict[str, Any]
    record: dict[str, Any]
    finals: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Side:
    word: str
    runs: list[_Run]


def _load(resolver: Any, word: str) -> _Side:
    """The runs ``word`` names (``runref``): a hash names one run (a prefix matching several
    is an error listing them); a node id without its label or a query, a group."""
    from .errors import UsageError
    from .reader.files import Damage, read_json
    from .reader.rows import read_run
    from .runref import is_hash_word

    paths = [resolver.resolve_one(word)] if is_hash_word(word) else resolver.resolve(word)
    frame = resolver.reader().frame().set_index("_key", drop=False)
    runs = []
    for path in paths:
        key = f"{path.parent.name}/{path.name}"  # the index's key of the run
        row = read_run(path, key, 0)
        try:
            if row["_skip"] is not None:
                raise Damage(row["_skip"] or "it is being created")
            record = read_json(path, "run.json")
        except (Damage, FileNotFoundError) as exc:
            raise UsageError(f"run {path} cannot be read: {exc}") from None
        # The Reader's status: a recorded ``running`` without a live claim is interrupted.
        status = frame.at[key, "status"] if key in frame.index else row["status"]
        values = {k: v for k, v in row.items() if k.startswith(("params.", "config.", "outcome."))}
        runs.append(_Run(path, row["hash"], str(row["nodeid"]), str(status), values, record))
    return _Side(word, runs)


def _read_finals(reader: Any, sides: list[_Side]) -> None:
    """Each run's last value of every metric it logged, under the Reader's key
    (``metrics.loss.last``; ``metrics.<file>:loss.last`` for ``metrics/<file>.jsonl``)."""
    from .reader.metrics import aggregate, check_name

    runs: dict[str, list[_Run]] = {}  # by hash: ``xprun diff X X`` has one run twice
    for side in sides:
        for run in side.runs:
            runs.setdefault(run.hash, []).append(run)
    names: dict[str, dict[str, Path]] = {}
    for run in (same[0] for same in runs.values()):
        for file in sorted((run.path / "metrics").glob("*.jsonl")):
            try:
                names.setdefault(check_name(file.stem), {})[run.hash] = run.path
            except ValueError:  # not a name the logger writes: not a metrics file
                continue
    for name, hashes in names.items():
        frame = reader.metric_frame(name, hashes)
        metrics = [c for c in frame.columns if c not in ("hash", "attempt", "step", "time")]
        table = aggregate(frame, [(m, "last") for m in metrics])
        prefix = "metrics." if name == "metrics" else f"metrics.{name}:"
        for column in table.columns:  # by column: a row would make integers floats
            for run_hash, value in table[column].items():
                if value == value:  # NaN: never logged by this run
                    plain = value.item() if hasattr(value, "item") else value
                    for run in runs[run_hash]:
                        run.finals[f"{prefix}{column[0]}.last"] = plain


# -- comparing values -----------------------------------------------------------------------


def _canon(value: Any) -> Any:
    """A hashable stand-in under which two values are equal when xprun's identity would
    call them equal: ``1 == 1.0``, but ``True`` is no number, and NaN equals NaN."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, float) and value != value:
        return ("nan",)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, list):
        return ("list", tuple(_canon(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), _canon(v)) for k, v in value.items())))
    if isinstance(value, _Marker):
        return ("marker", value.text)
    return (type(value).__name__, value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shared(values: list[Any]) -> Any:
    """The value every run of a side has (``MISSING`` when none has one), else ``VARIES``."""
    distinct = {_canon(v): v for v in values}
    return next(iter(distinct.values())) if len(distinct) == 1 else VARIES


def _constant_entry(key: str, a: list[Any], b: list[Any]) -> dict[str, Any] | None:
    va, vb = _shared(a), _shared(b)
    if va is VARIES and vb is VARIES:
        return None  # swept on both sides: not a difference between them
    if _canon(va) == _canon(vb):
        return None
    return {"key": key, "a": va, "b": vb}


def _numeric_entry(key: str, a: list[Any], b: list[Any], groups: bool) -> dict[str, Any] | None:
    """Numbers compared: a run's value (a group's mean over the runs that have one), and
    ``B - A`` when both sides have one."""
    pa, pb = [v for v in a if v is not MISSING], [v for v in b if v is not MISSING]
    ma: Any = _mean(pa) if pa else MISSING
    mb: Any = _mean(pb) if pb else MISSING
    if _canon(ma) == _canon(mb):  # a group's count alone is no difference of the value
        return None
    entry: dict[str, Any] = {"key": key, "a": ma, "b": mb}
    if ma is not MISSING and mb is not MISSING:
        entry["delta"] = mb - ma
    if groups:
        entry["a_count"], entry["b_count"] = len(pa), len(pb)
    return entry


def _mean(values: list[Any]) -> Any:
    if len(values) == 1:
        return values[0]  # a run's own value, an integer staying one
    return math.fsum(values) / len(values)


def _compare(
    keys: Iterable[str], a: _Side, b: _Side, get: Callable[[_Run, str], Any], numeric: bool
) -> list[dict[str, Any]]:
    groups = len(a.runs) > 1 or len(b.runs) > 1
    entries = []
    for key in sorted(keys):
        va = [get(run, key) for run in a.runs]
        vb = [get(run, key) for run in b.runs]
        present = [v for v in (*va, *vb) if v is not MISSING]
        if numeric and present and all(_is_number(v) for v in present):
            entry = _numeric_entry(key, va, vb, groups)
        else:
            entry = _constant_entry(key, va, vb)
        if entry is not None:
            entries.append(entry)
    return entries


def _keys(sides: Iterable[_Side], get: Callable[[_Run], Iterable[str]]) -> set[str]:
    return {key for side in sides for run in side.runs for key in get(run)}


def _row(prefixes: tuple[str, ...]) -> Callable[[_Run], Iterable[str]]:
    return lambda run: (k for k in run.row if k.startswith(prefixes))


def _dotted(record: dict[str, Any], key: str) -> Any:
    value: Any = record
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def _status(a: _Side, b: _Side) -> list[dict[str, Any]]:
    if len(a.runs) == 1 and len(b.runs) == 1:
        entry = _constant_entry("status", [a.runs[0].status], [b.runs[0].status])
        return [entry] if entry else []
    counts = []
    for side in (a, b):
        found: dict[str, int] = {}
        for run in side.runs:
            found[run.status] = found.get(run.status, 0) + 1
        counts.append(found)
    entries = []
    for status in ("runs", *sorted(set(counts[0]) | set(counts[1]))):
        na = len(a.runs) if status == "runs" else counts[0].get(status, 0)
        nb = len(b.runs) if status == "runs" else counts[1].get(status, 0)
        if na != nb:
            entries.append({"key": status, "a": na, "b": nb, "delta": nb - na})
    return entries


def _sessions(log_dir: Path, sides: list[_Side]) -> dict[str, dict[str, Any]] | None:
    """Each run's installed distributions (its session's), by hash; None unless every run
    has them (format-1 runs have no session).  Each session file is read once."""
    from .provenance import load_session

    loaded: dict[str, Any] = {}
    found: dict[str, dict[str, Any]] = {}
    for side in sides:
        for run in side.runs:
            session = run.record.get("session")
            if not isinstance(session, str):
                return None
            if session not in loaded:
                loaded[session] = load_session(log_dir, session)
            dists = loaded[session].get("distributions") if loaded[session] else None
            if not isinstance(dists, dict):
                return None
            found[run.hash] = dists
    return found


def _packages(log_dir: Path, a: _Side, b: _Side) -> dict[str, Any]:
    """Package versions compared by normalized name (``pyyaml``): every installed
    distribution (the sessions') when every run has a session, a run's imported
    distributions winning; else the imported ones alone (``run.json``'s ``packages``), which
    format-1 runs have too."""
    from .provenance import _normalize  # the one spelling of a distribution's name

    sessions = _sessions(log_dir, [a, b])
    versions: dict[int, dict[str, Any]] = {}  # by id(run): a run may be on both sides
    for run in (*a.runs, *b.runs):
        found = {_normalize(k): v for k, v in (sessions or {}).get(run.hash, {}).items()}
        imported = run.record.get("packages")
        if isinstance(imported, dict):
            found.update((_normalize(str(k)), v) for k, v in imported.items())
        versions[id(run)] = found
    names = {name for found in versions.values() for name in found}
    entries = _compare(
        names, a, b, lambda run, name: versions[id(run)].get(name, MISSING), numeric=False
    )
    return {"source": "imported" if sessions is None else "installed", "changed": entries}


# -- code -----------------------------------------------------------------------------------


def _code(log_dir: Path, a: _Side, b: _Side) -> dict[str, Any]:
    """The code section: which sides recorded their code, and each imported file that
    differs, with a unified diff of the bytes the runs ran."""
    sides = {"a": a, "b": b}
    recorded = {
        name: [run for run in side.runs if isinstance(run.record.get("code"), dict)]
        for name, side in sides.items()
    }
    result: dict[str, Any] = {
        "recorded": {name: len(runs) == len(sides[name].runs) for name, runs in recorded.items()},
        "files": [],
    }
    if not recorded["a"] or not recorded["b"]:
        return result
    versions = [_shared([r.record["code"].get("version") for r in recorded[n]]) for n in "ab"]
    if _canon(versions[0]) != _canon(versions[1]):
        result["version"] = {"a": versions[0], "b": versions[1]}
    digests: dict[str, dict[str, dict[str, _Run]]] = {"a": {}, "b": {}}  # side → file → digest
    for name, runs in recorded.items():
        for run in runs:
            files = run.record["code"].get("files")
            for path, digest in (files if isinstance(files, dict) else {}).items():
                digests[name].setdefault(path, {}).setdefault(str(digest), run)
    result["count"] = len(set(digests["a"]) | set(digests["b"]))
    for path in sorted(set(digests["a"]) | set(digests["b"])):
        entry = _code_file(log_dir, path, digests["a"].get(path, {}), digests["b"].get(path, {}))
        if entry is not None:
            result["files"].append(entry)
    return result


def _code_file(
    log_dir: Path, path: str, a: dict[str, _Run], b: dict[str, _Run]
) -> dict[str, Any] | None:
    if len(a) > 1 or len(b) > 1:
        if set(a) == set(b):
            return None
        return {"path": path, "change": "varies", "a": sorted(a) or None, "b": sorted(b) or None}
    (da, ra), (db, rb) = (next(iter(d.items()), (None, None)) for d in (a, b))
    text = [_source(log_dir, run, path) if run is not None else b"" for run in (ra, rb)]
    if da == db:
        if text[0] is None or text[1] is None or text[0] == text[1]:
            return None
        change = "formatting"
    else:
        change = "added" if da is None else "deleted" if db is None else "modified"
    entry: dict[str, Any] = {"path": path, "change": change, "a": da, "b": db, "diff": None}
    if text[0] is not None and text[1] is not None:
        import difflib

        entry["diff"] = "".join(
            difflib.unified_diff(
                _lines(text[0]),
                _lines(text[1]),
                "/dev/null" if da is None else f"a/{path}",
                "/dev/null" if db is None else f"b/{path}",
            )
        )
    return entry


def _source(log_dir: Path, run: _Run, path: str) -> bytes | None:
    """The bytes of ``path`` as ``run`` ran it, None when not recorded (or when the record
    names a path outside the rootdir, which no xprun writes)."""
    from .provenance import recorded_source

    try:
        return recorded_source(log_dir, run.record, path)
    except ValueError:
        return None


def _lines(data: bytes) -> list[str]:
    lines = data.decode("utf-8", "replace").splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


# -- the diff -------------------------------------------------------------------------------


def diff(log_dir: Path, a: _Side, b: _Side) -> dict[str, Any]:
    """Every section's differences (JSON-ready once :func:`_json_value`), keyed by section."""
    sides = [a, b]

    def row(run: _Run, key: str) -> Any:
        return run.row.get(key, MISSING)

    def final(run: _Run, key: str) -> Any:
        return run.finals.get(key, MISSING)

    def record(run: _Run, key: str) -> Any:
        if key == "python_folder":
            executable = run.record.get("python_executable")
            return posixpath.dirname(executable) if isinstance(executable, str) else MISSING
        return _dotted(run.record, key)

    return {
        "config": _compare(_keys(sides, _row(("params.", "config."))), a, b, row, False),
        "status": _status(a, b),
        "outcome": _compare(_keys(sides, _row(("outcome.",))), a, b, row, True),
        "metrics": _compare(_keys(sides, lambda run: run.finals), a, b, final, True),
        "code": _code(log_dir, a, b),
        "packages": _packages(log_dir, a, b),
        "environment": _compare(ENVIRONMENT, a, b, record, False),
    }


def _differs(section: str, found: Any) -> bool:
    if section == "code":
        recorded = found["recorded"]
        return bool(found["files"] or "version" in found or recorded["a"] != recorded["b"])
    if section == "packages":
        return bool(found["changed"])
    return bool(found)


def _describe(side: _Side) -> dict[str, Any]:
    runs = [
        {"hash": r.hash, "nodeid": r.nodeid, "status": r.status, "path": str(r.path)}
        for r in side.runs
    ]
    return {"word": side.word, "runs": runs}


def report(log_dir: Path, a: _Side, b: _Side) -> dict[str, Any]:
    """The ``--format json`` object: both sides, every section, and whether they differ."""
    found = diff(log_dir, a, b)
    different = [s for s in SECTIONS if _differs(s, found[s])]
    return {
        "format": JSON_FORMAT,
        "mode": "groups" if len(a.runs) > 1 or len(b.runs) > 1 else "runs",
        "a": _describe(a),
        "b": _describe(b),
        "identical": not different,
        "differs": different,
        **found,
    }


# -- output ---------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    """A value of the report as JSON: markers dropped by the caller, non-finite numbers as
    their text (``"NaN"``, ``"Infinity"``: strict JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if v is MISSING:
                continue  # a side without the key: the entry has no "a" (or "b")
            if v is VARIES:
                out[f"{k}_varies"] = True
                continue
            out[k] = _json_value(v)
        return out
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def render_json(found: dict[str, Any]) -> str:
    return json.dumps(_json_value(found), indent=1, allow_nan=False) + "\n"


def _text(value: Any, precision: int | None) -> str:
    """A value for people: text as it is (quoted when it would read as another value),
    numbers exact, or to ``precision`` significant digits when given."""
    if isinstance(value, _Marker):
        return value.text
    if isinstance(value, str):
        try:
            looks_like = not isinstance(json.loads(value), str)
        except ValueError:
            looks_like = False
        return json.dumps(value) if looks_like or not value.strip() else value
    if precision is not None and isinstance(value, float) and math.isfinite(value):
        return f"{value:.{precision}g}"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    return json.dumps(value, allow_nan=True)


def _signed(value: Any, precision: int) -> str:
    text = _text(value, precision)
    return text if text.startswith(("-", "n")) else f"+{text}"


def _cells(section: str, entry: dict[str, Any], precision: int) -> list[str]:
    digits = precision if section in ("outcome", "metrics") else None
    cells = [entry["key"], _text(entry["a"], digits)]
    cells.append(_text(entry["b"], digits))
    if "a_count" in entry:
        cells[1] += f" (n={entry['a_count']})"
        cells[2] += f" (n={entry['b_count']})"
    cells.append(_signed(entry["delta"], precision) if "delta" in entry else "")
    return cells


def _table_rows(section: str, found: Any, precision: int) -> list[list[str]]:
    entries = found["changed"] if section == "packages" else found
    return [_cells(section, entry, precision) for entry in entries]


def _align(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        (indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))).rstrip()
        for row in rows
    ]


def _side_title(side: dict[str, Any]) -> str:
    runs = side["runs"]
    if len(runs) == 1:
        run = runs[0]
        return f"{run['hash'][:12]}  {run['nodeid']}  ({run['status']})"
    return f"{side['word']}  ({len(runs)} runs)"


def _code_summary(code: dict[str, Any]) -> str:
    """What the code section found, in a few words (``code: same (3 imported files)``)."""
    missing = [n.upper() for n in "ab" if not code["recorded"][n]]
    if missing:
        who = " and ".join(missing)
        return f"code: not recorded for {who} (run by an xprun that did not record it)"
    count = code.get("count", 0)
    files = f"{count} imported file{'s' * (count != 1)}"
    if not code["files"]:
        return f"code: same ({files})"
    return f"code: {len(code['files'])} of {files} differ"


def _code_lines(code: dict[str, Any]) -> list[str]:
    lines = []
    if "version" in code:
        lines.append(f"  code_version: {code['version']['a']} -> {code['version']['b']}")
    notes = {
        "added": "imported by B only",
        "deleted": "imported by A only",
        "formatting": "comments, docstrings or formatting only: the same code",
        "varies": "differs between the runs of a side",
    }
    for entry in code["files"]:
        note = notes.get(entry["change"], "modified")
        if entry.get("diff") is None and entry["change"] != "varies":
            note += " (source not recorded)"
        lines.append(f"  {entry['path']}: {note}")
        lines.extend(f"    {line}" for line in (entry.get("diff") or "").splitlines())
    return lines


def _identical(found: dict[str, Any]) -> str:
    """The one line for two sides that differ nowhere (saying so if the code is unknown)."""
    code = _code_summary(found["code"])
    unknown = "not recorded" in code
    files = "" if unknown else f"code ({code.partition('(')[2].rstrip(')')}), "
    text = (
        f"identical: same config, status, outcome, final metrics, {files}packages and environment"
    )
    return f"{text}; {code}" if unknown else text


def render_text(found: dict[str, Any], precision: int) -> str:
    lines = [f"A  {_side_title(found['a'])}", f"B  {_side_title(found['b'])}"]
    if found["identical"]:
        lines.append(_identical(found))
        return "\n".join(lines) + "\n"
    for section in SECTIONS:
        title = _TITLES[section]
        part = found[section]
        if section == "code":
            lines.append(_code_summary(part))
            lines.extend(_code_lines(part))
            continue
        rows = _table_rows(section, part, precision)
        if not rows:
            lines.append(f"{title}: same")
            continue
        head = "package" if section == "packages" else "key"
        delta = "B - A" if any(row[3] for row in rows) else ""
        suffix = f" ({part['source']} distributions)" if section == "packages" else ""
        lines.append(f"{title}{suffix}:")
        lines.extend(_align([[head, "A", "B", delta], *rows]))
    return "\n".join(lines) + "\n"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _md(cell: str) -> str:
    return cell.replace("|", "\\|") if cell else ""


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(found: dict[str, Any], precision: int) -> str:
    lines = _md_table(["", "A", "B"], [["runs", _side_title(found["a"]), _side_title(found["b"])]])
    if found["identical"]:
        return "\n".join([*lines, "", _sentence(_identical(found))]) + "\n"
    for section in SECTIONS:
        part = found[section]
        lines += ["", f"### {_TITLES[section]}", ""]
        if section == "code":
            lines.append(_sentence(_code_summary(part).partition(": ")[2]))
            rows = [[f"`{e['path']}`", e["change"]] for e in part["files"]]
            if "version" in part:
                rows.insert(0, ["code_version", f"{part['version']['a']} → {part['version']['b']}"])
            if rows:
                lines += ["", *_md_table(["file", "change"], rows)]
            for entry in part["files"]:
                if entry.get("diff"):
                    lines += ["", "```diff", entry["diff"].rstrip("\n"), "```"]
            continue
        rows = _table_rows(section, part, precision)
        if not rows:
            lines.append("Same.")
            continue
        head = "package" if section == "packages" else "key"
        lines += _md_table([head, "A", "B", "B - A"], rows)
    return "\n".join(lines) + "\n"


# -- the command ----------------------------------------------------------------------------


def make_parser() -> argparse.ArgumentParser:
    """``xprun diff``'s parser."""
    from .options import ArgumentParser
    from .runref import add_log_dir_option
    from .show import DEFAULT_PRECISION

    parser = ArgumentParser(
        prog="xprun diff",
        description="What differs between two runs, or two groups of runs: config keys, "
        "status, outcome and final metrics (B - A), the code of the files the experiments "
        "imported, packages and environment. Only differences are listed.",
    )
    for name in ("A", "B"):
        parser.add_argument(
            name.lower(),
            metavar=name,
            help="a run's hash (or a unique prefix, 4+ digits), a node id (without its "
            "label: every run of the experiment), or a query such as "
            '"config.lr == 0.1 and status == complete"',
        )
    add_log_dir_option(parser)
    parser.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        default="text",
        help="text (default, for the terminal), json (one object, full precision), or "
        "markdown (tables to paste into a report)",
    )
    parser.add_argument(
        "--precision",
        type=int,
        default=DEFAULT_PRECISION,
        metavar="N",
        help=f"significant digits of outcomes, metrics and deltas in the text and markdown "
        f"formats (default {DEFAULT_PRECISION}); json keeps full precision",
    )
    return parser


def main(argv: list[str]) -> int:
    from .errors import ExitCode
    from .runref import RunResolver, default_log_dir
    from .show import _check_precision, warnings_to_stderr

    args = make_parser().parse_args(argv)
    precision = _check_precision(args.precision)
    resolver = RunResolver(default_log_dir(args.log_dir))
    with warnings_to_stderr():
        a, b = _load(resolver, args.a), _load(resolver, args.b)
        _read_finals(resolver.reader(), [a, b])
        found = report(resolver.log_dir, a, b)
    if args.format == "json":
        sys.stdout.write(render_json(found))
    elif args.format == "markdown":
        sys.stdout.write(render_markdown(found, precision))
    else:
        sys.stdout.write(render_text(found, precision))
    return int(ExitCode.OK)
