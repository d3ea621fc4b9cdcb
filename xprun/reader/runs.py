"""``Reader`` and ``Runs``: a lazy, safe, fast view of a log directory, spoken in pandas.

``Reader(log_dir)`` is the collection of every run under a log directory.  ``filter``,
``experiment`` and ``groupby`` return new lazy objects; nothing is read until a result is
asked for (``len``, iteration, ``to_pandas``, ``metrics``, ``agg``).  The index behind it is
cached in the log directory and refreshed incrementally (:mod:`xprun.reader.index`).

Keys: the info fields (``experiment``, ``hash``, ``nodeid``, ``status``, ``attempt``,
``start``, ``end``, ``duration``, ``host``, ``user``, ``error``, ``recovered``, ``path``),
``params.<fixture>``, ``config.<dotted key>``, ``outcome.<dotted key>``, and per-run metric
aggregates ``metrics.<metric>.<agg>`` (over ``metrics/metrics.jsonl``) or
``metrics.<file>:<metric>.<agg>`` (over ``metrics/<file>.jsonl``), where ``<agg>`` is one of
``last``, ``first``, ``min``, ``max``, ``mean``, ``count``.  A well-formed ``params.``,
``config.`` or ``outcome.`` key that no run has is a column of missing values, not an error
(a sweep may add a key later); any other unknown key is an error that suggests close ones.
"""

from __future__ import annotations

import difflib
import json
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .. import settings, store
from ..states import Status
from .files import DATA_LIMIT, Damage, claims, read_json, read_yaml, refuse_inner_folder
from .index import INFO_COLUMNS, Index, Skipped, in_run_order
from .metrics import AGGREGATES, aggregate, check_name, long_frame, read_lines, selection
from .query import Query, QueryError
from .rows import CODE, PREFIXES, _mapping, readable_rows

if TYPE_CHECKING:
    import pandas as pd

_METRIC_KEY = re.compile(r"^metrics\.(?:(?P<file>[A-Za-z0-9_.\-]+):)?(?P<metric>.+)\.(?P<agg>\w+)$")


class ReaderWarning(UserWarning):
    """What the Reader left out or could not find: a skipped run or file, a key no run has.

    ``xprun show`` and ``xprun plot`` print these as ``warning: ...`` lines;
    ``Reader(log_dir, warn=False)`` silences them (``reader.skipped`` still lists the files).
    """


def _heartbeat(log_dir: Path, timeout: float | None) -> store.Heartbeat:
    """How stale a claim must be to count as dead: ``timeout`` when given, else what the
    project holding the log directory says in ``[tool.xprun]``, so that ``xprun show`` and
    ``xprun --collect-only`` agree on which runs are still running."""
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"heartbeat_timeout must be a positive number, got {timeout!r}")
        interval = min(settings.HEARTBEAT_INTERVAL, timeout / 2)
        return store.Heartbeat(interval=interval, timeout=float(timeout))
    # Checked there: a bad value is a UsageError.
    project = settings.load_settings([log_dir], log_dir)
    return store.Heartbeat(
        float(project["heartbeat_interval"]), float(project["heartbeat_timeout"])
    )


def _is_data_key(key: Any) -> bool:
    """``params.x``, ``config.a.b``, ``outcome.y``: a key some run could have."""
    return (
        isinstance(key, str)
        and key.startswith(PREFIXES)
        and all(part.strip() for part in key.split("."))
    )


def _suggest(key: str, known: Sequence[str]) -> str:
    if _is_data_key(key):  # compare with its own kind only, or "config." alone looks close
        kind = key.partition(".")[0] + "."
        same = [k for k in known if k.startswith(kind)]
        close = difflib.get_close_matches(key, same, n=3, cutoff=0.85)
    else:
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
    if not close:
        close = [k for k in known if k.startswith(key + ".")][:3]
    return f"; did you mean {', '.join(close)}?" if close else ""


def _no_attribute(obj: object, name: str) -> NoReturn:
    """Raise the AttributeError of ``obj.name``, naming the closest public attribute."""
    if name.startswith("__"):  # protocols probed by copy, pickle, NumPy...: no hint needed
        raise AttributeError(name)
    public = [n for n in dir(type(obj)) if not n.startswith("_")]
    close = difflib.get_close_matches(name, public, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"it has {', '.join(public)}"
    raise AttributeError(
        f"{type(obj).__name__!r} object has no attribute {name!r}; {hint}", name=name, obj=obj
    )


class Runs:
    """A lazy selection of runs: filters are applied when a result is asked for.

    ``filter``, ``experiment`` and ``groupby`` return new lazy objects and read nothing;
    ``len``, iteration, ``to_pandas``, ``metrics``, ``columns`` and ``agg`` do the work.
    """

    def __init__(
        self, reader: Reader, queries: tuple[Query, ...] = (), experiments: tuple[str, ...] = ()
    ) -> None:
        self._reader = reader
        self._queries = queries
        self._experiments = experiments

    def filter(self, query: str) -> Runs:
        """Runs matching ``query`` (see :mod:`xprun.reader.query`); syntax is checked now,
        keys when the selection is evaluated."""
        return Runs(self._reader, (*self._queries, Query.parse(query)), self._experiments)

    def experiment(self, *names: str) -> Runs:
        """Runs of the named experiments (a name no run has is a ``KeyError`` when
        evaluated, with close names suggested)."""
        return Runs(self._reader, self._queries, (*self._experiments, *names))

    def groupby(self, *keys: str, dropna: bool = False) -> GroupBy:
        """Groups of runs by ``keys`` (any key, metric aggregates included), for
        ``.agg(name=(column, function), ...)`` as pandas' named aggregation."""
        if not keys:
            raise ValueError("groupby needs at least one key, e.g. groupby('config.optimizer')")
        return GroupBy(self, tuple(dict.fromkeys(keys)), dropna)  # a key given twice: once

    @property
    def columns(self) -> list[str]:
        """The keys available for queries, columns and grouping (metric aggregates aside)."""
        return self._known(self._reader.frame())

    def to_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """One row per run: info, ``params.*``, ``config.*``, ``outcome.*`` (or ``columns``,
        which may name metric aggregates such as ``metrics.loss.last``)."""
        frame: pd.DataFrame = self._frame(columns or ())
        if columns is not None:
            return frame[list(columns)].reset_index(drop=True)
        frame = frame[self._known(frame)].reset_index(drop=True)
        return _without_empty_columns(frame) if len(frame) else frame

    def metrics(
        self, name: str = "metrics", columns: Sequence[str] = (), all_attempts: bool = False
    ) -> pd.DataFrame:
        """Long-format metrics of ``metrics/<name>.jsonl``: experiment, hash, attempt, step,
        time, one column per metric the selected runs logged (values as floats), plus the
        requested ``columns`` (e.g. ``["config.lr"]``).  A step logged by several attempts
        keeps the latest one's line unless ``all_attempts``.  The same selection gives the
        same frame whatever the reader read before."""
        check_name(name)
        frame = self._frame(columns)
        hashes = dict(zip(frame["hash"], (Path(p) for p in frame["path"]), strict=True))
        if all_attempts:
            found = self._reader.long_frame(hashes, name, all_attempts=True)
            long = selection(found.frame, hashes, found.keys)
        else:
            long = self._reader.metric_frame(name, hashes)
        extra = frame[
            ["hash", "experiment", *[c for c in columns if c not in ("hash", "experiment")]]
        ]
        merged: pd.DataFrame = long.merge(extra, on="hash", how="left")
        first = ["experiment", "hash", "attempt", "step"]
        order = [c for c in first if c in merged.columns]
        order += [c for c in merged.columns if c not in order and c not in columns]
        order += [c for c in columns if c not in order]
        return merged[order].reset_index(drop=True)

    def __len__(self) -> int:
        return len(self._frame())

    def __iter__(self) -> Iterator[RunRecord]:
        frame = self._frame()
        for row in frame.to_dict("records"):
            yield RunRecord(row)

    if not TYPE_CHECKING:  # type checkers keep reporting unknown attributes themselves

        def __getattr__(self, name: str) -> NoReturn:
            """Reached only for a name that does not exist: the error names the closest
            real one (``reader.filtr`` → ``filter``)."""
            _no_attribute(self, name)

    # -- evaluation ---------------------------------------------------------------------------

    def _known(self, frame: Any) -> list[str]:
        return [c for c in frame.columns if not c.startswith("_")]

    def _with_columns(self, frame: Any, keys: Sequence[str], text: str = "") -> Any:
        """``frame`` with metric-aggregate columns added for ``keys``; unknown keys raise."""
        import pandas as pd

        wanted: dict[str, list[tuple[str, str, str]]] = {}  # metrics file → (key, metric, agg)
        absent: list[str] = []
        for key in dict.fromkeys(keys):  # a key asked for twice is one column
            if key in frame.columns:
                continue
            match = _METRIC_KEY.match(key) if isinstance(key, str) else None
            if match and match.group("agg") in AGGREGATES:
                name = match.group("file") or "metrics"
                wanted.setdefault(name, []).append((key, match.group("metric"), match.group("agg")))
                continue
            if _is_data_key(key):
                absent.append(key)
                hint = _suggest(key, self._known(frame))
                if hint:  # most likely a typo: say so, but a missing column is no error
                    self._reader._note(f"no run has {key!r}{hint}")
                continue
            hint = _suggest(key, self._known(frame))
            if key.startswith("metrics."):
                hint += (
                    f" (metric aggregates are metrics.<metric>.<agg> with <agg> one of "
                    f"{', '.join(AGGREGATES)})"
                )
            raise QueryError(f"unknown key {key!r}{hint}", text, text.find(key) if text else None)
        if absent:
            missing = pd.Series(float("nan"), index=frame.index, dtype=object)
            frame = frame.assign(**{key: missing.copy() for key in absent})
        if wanted:
            hashes = dict(zip(frame["hash"], (Path(p) for p in frame["path"]), strict=True))
        for name, requests in wanted.items():
            metrics = self._reader.metric_frame(name, hashes)
            table = aggregate(metrics, [(metric, agg) for _, metric, agg in requests])
            table.columns = [key for key, _, _ in requests]
            frame = frame.merge(table, left_on="hash", right_index=True, how="left")
        return frame

    def _frame(self, keys: Sequence[str] = ()) -> Any:
        frame = self._reader.frame()
        if self._experiments:
            known = set(frame["experiment"])
            for name in self._experiments:
                if name not in known:
                    hint = _suggest(name, sorted(known))
                    raise KeyError(f"no experiment {name!r} in {self._reader.log_dir}{hint}")
            frame = frame[frame["experiment"].isin(self._experiments)]
        for query in self._queries:
            frame = self._with_columns(frame, [k for k, _ in query.referenced_keys()], query.text)
            frame = frame[_evaluate(query, query.tree, frame)]
        return self._with_columns(frame, keys)


class Reader(Runs):
    """Every run under ``log_dir`` (all experiments): a :class:`Runs` selection of all of
    them, plus what reading the directory involves (``refresh``, ``skipped``).
    """

    def __init__(
        self,
        log_dir: str | Path,
        *,
        heartbeat_timeout: float | None = None,
        warn: bool = True,
    ) -> None:
        self.log_dir = Path(log_dir).resolve()
        if not self.log_dir.is_dir():
            raise FileNotFoundError(
                f"log directory {self.log_dir} does not exist (run xprun first, or pass the "
                "log_dir your [tool.xprun] settings name)"
            )
        refuse_inner_folder(self.log_dir)
        self._index = Index(self.log_dir)
        self._clock = store.FsClock(self.log_dir)
        self._heartbeat = _heartbeat(self.log_dir, heartbeat_timeout)
        self._warn = warn
        self._cached: Any = None  # frame() without live statuses
        self._cached_version = -1
        self._warned: set[Path] = set()
        # name → (the keys each run read holds, by hash; the rows read)
        self._metrics: dict[str, tuple[dict[str, tuple[str, ...]], Any]] = {}
        self._metric_damage: dict[Path, str] = {}  # metrics file → why lines were skipped
        self._refreshed = False
        super().__init__(self)

    # -- the index ----------------------------------------------------------------------------

    def refresh(self, full: bool = False) -> Reader:
        """Re-scan the log directory (new, changed and deleted runs); returns self.

        Runs are read again when their directory changed; ``full=True`` reads every run
        again, for files edited in place by hand (which change no directory time)."""
        self._index.refresh(self._clock, full)
        self._refreshed = True
        self._cached_version = -1  # the stale column is judged again against today's files
        self._metrics.clear()
        self._metric_damage.clear()
        self._warn_about(self._index.skipped())
        return self

    def _warn_about(self, skipped: list[Skipped]) -> None:
        for item in skipped:
            if item.path not in self._warned:
                self._warned.add(item.path)
                self._note(f"xprun.Reader skipped {item.path}: {item.reason}")

    def _note(self, message: str) -> None:
        if self._warn:
            warnings.warn(message, ReaderWarning, stacklevel=5)

    @property
    def skipped(self) -> list[Skipped]:
        """What could not be read, with the reason: damaged run directories (left out
        whole), then metrics files some of whose lines were left out (read so far)."""
        self._ensure()
        metrics = [Skipped(path, reason) for path, reason in self._metric_damage.items()]
        return [*self._index.skipped(), *metrics]

    def _ensure(self) -> None:
        if not self._refreshed:
            self.refresh()

    def frame(self) -> Any:
        """All readable runs, one row each (private columns included); cached."""
        import pandas as pd

        self._ensure()
        if self._cached is None or self._cached_version != self._index.version:
            frame = self._index.frame
            if "_skip" in frame.columns:
                frame = readable_rows(frame)
            frame = _without_empty_columns(frame) if len(frame) else frame
            for column in INFO_COLUMNS:
                if column not in frame.columns:
                    frame = frame.assign(**{column: pd.Series(dtype=object)})
            extra = sorted(
                c
                for c in frame.columns
                if c not in INFO_COLUMNS and c != "stale" and not c.startswith("_")
            )
            frame = frame.assign(stale=self._stale(frame))
            order = [*INFO_COLUMNS, "stale", *[c for c in extra if c.startswith("params.")]]
            order += [c for c in extra if c.startswith("config.")]
            order += [c for c in extra if c.startswith("outcome.")]
            order += [c for c in extra if c not in order]
            frame = frame[["_key", *order]]
            if not in_run_order(frame):  # the index keeps its rows in order: rarely sorted here
                frame = frame.sort_values(["experiment", "hash"], kind="stable")
            self._cached = frame.reset_index(drop=True)
            self._cached_version = self._index.version
        return self._live_status(self._cached)

    def _stale(self, frame: Any) -> Any:
        """The ``stale`` column: True when a file a run recorded (``code.files``) differs
        today at ``<code.root>/<path>`` (normalized digests, as ``xprun`` compares) or is
        gone, False when all match, ``<NA>`` when the run recorded no code.  Each distinct
        record is judged once, each file digested once (cached by its size and time)."""
        import pandas as pd

        from ..staleness import changed_files

        if CODE not in frame.columns:
            return pd.Series(pd.NA, index=frame.index, dtype=object)
        import numpy as np

        # By distinct record (a sweep shares a few), in the library's hashing: a map in
        # Python over 100k rows took 0.1 s of a warm load.
        positions, texts = pd.factorize(frame[CODE])  # -1: no code recorded
        judged = [_judge(text, changed_files) for text in texts]
        values = np.array([pd.NA if v is None else v for v in judged] + [pd.NA], dtype=object)
        return pd.Series(values[positions], index=frame.index, dtype=object)

    def _live_status(self, frame: Any) -> Any:
        """A recorded ``running`` is true only while its claim's heartbeat is fresh."""
        running = frame["status"] == Status.RUNNING
        if not running.any():
            return frame
        frame = frame.copy()
        for i in frame.index[running]:
            frame.at[i, "status"] = self._live(Path(frame.at[i, "path"]))
        return frame

    def _live(self, run_dir: Path) -> str:
        """``running`` while the top claim's heartbeat is fresh, as ``xprun`` judges it."""
        try:
            found = claims(run_dir)
        except Damage:
            found = []  # named when the run was indexed
        if found and not found[-1].is_stale(self._clock, self._heartbeat):
            return Status.RUNNING
        return Status.INTERRUPTED

    def metric_frame(self, name: str, hashes: dict[str, Path]) -> Any:
        """Long-format metrics of the given runs, files read once per reader and name: the
        same frame whichever runs were read before (:func:`metrics.selection`)."""
        import pandas as pd

        check_name(name)
        loaded, frame = self._metrics.get(name, ({}, None))
        missing = {h: p for h, p in hashes.items() if h not in loaded}
        if missing or frame is None:
            new = self.long_frame(missing, name)
            frame = new.frame if frame is None else pd.concat([frame, new.frame], ignore_index=True)
            loaded = {**loaded, **new.keys}
            self._metrics[name] = (loaded, frame)
        return selection(frame, hashes, loaded)

    def long_frame(self, hashes: dict[str, Path], name: str, all_attempts: bool = False) -> Any:
        """Metrics of the given runs read now; files with skipped lines are named."""
        found = long_frame(hashes.items(), name, all_attempts)
        skipped = [
            Skipped(hashes[h] / "metrics" / f"{name}.jsonl", reason)
            for h, reason in found.damage.items()
        ]
        for item in skipped:
            self._metric_damage[item.path] = item.reason
        self._warn_about(skipped)
        return found

    # -- the collection API, on all runs: inherited from Runs ----------------------------------

    def runs(self) -> Runs:
        """Every run, as a :class:`Runs` selection (the Reader itself is one too)."""
        return Runs(self)

    def __repr__(self) -> str:
        return f"Reader({str(self.log_dir)!r})"


def _judge(text: Any, changed_files: Any) -> bool | None:
    """Whether the code of one ``_code`` text changed (None: not a code record; the index
    cache is checked, but may come from anyone)."""
    try:
        code = json.loads(text)
        if not isinstance(code, dict) or not isinstance(code.get("files"), dict):
            return None
        return bool(changed_files(code))
    except (TypeError, ValueError, AttributeError):
        return None


class GroupBy:
    """``runs.groupby(keys).agg(name=(column, func), ...)``, as pandas named aggregation."""

    def __init__(self, runs: Runs, keys: Sequence[str], dropna: bool) -> None:
        self._runs = runs
        self._keys = list(keys)
        self._dropna = dropna

    def agg(self, **named: tuple[str, Any]) -> Any:
        if not named:
            raise ValueError(
                "agg needs named aggregations, e.g. agg(score=('outcome.score', 'mean'))"
            )
        for name, spec in named.items():
            if not (isinstance(spec, tuple) and len(spec) == 2):
                raise ValueError(f"agg({name}=...) must be a (column, function) pair")
        needed = list(dict.fromkeys([*self._keys, *[column for column, _ in named.values()]]))
        frame = self._runs._frame(needed)
        frame = frame.assign(**{key: groupable(frame[key]) for key in self._keys})
        return frame.groupby(self._keys, dropna=self._dropna).agg(**named)


def groupable(column: Any) -> Any:
    """``column`` with list and mapping values as their JSON text, so pandas can group by it
    (a config value may be a list; such runs form one group per distinct list)."""
    import json

    def text(value: Any) -> Any:
        if isinstance(value, list | dict):
            return json.dumps(value, sort_keys=True, allow_nan=True)
        return value

    if column.dtype != object:
        return column
    if column.map(lambda v: isinstance(v, list | dict)).any():
        return column.map(text)
    present = column.dropna()
    if len(present) and present.map(lambda v: type(v) is int).all():
        # Integers beside null or missing: grouped as Int64 (an object column of ints and
        # None would give a float group index, 50.0); pandas groups null and missing as one.
        return column.astype("Int64")
    return column


def _without_empty_columns(frame: Any) -> Any:
    """``frame`` without the columns no run has a value in; a key set to null (``None``)
    in some run is a value, so its column stays."""
    empty = frame.columns[frame.isna().all().to_numpy()]
    drop = [
        name
        for name in empty
        if not (frame[name].dtype == object and any(v is None for v in frame[name]))
    ]
    return frame.drop(columns=drop) if drop else frame


class RunRecord:
    """One run as the reader sees it; files are read on demand."""

    def __init__(self, row: dict[str, Any]) -> None:
        self._row = {k: v for k, v in row.items() if not k.startswith("_")}
        self.path = Path(row["path"])
        self.hash: str = row["hash"]
        self.experiment: str = row["experiment"]
        self.status: str = row["status"]
        self.attempt: int = row["attempt"]

    def __getitem__(self, key: str) -> Any:
        return self._row[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._row.get(key, default)

    # The files are read as the index reads them: regular files only, sizes capped.

    @property
    def record(self) -> dict[str, Any]:
        return _mapping(read_json(self.path, store.RUN_JSON), store.RUN_JSON)

    @property
    def config(self) -> dict[str, Any]:
        return _mapping(read_yaml(self.path, "config.yaml"))  # an empty document is {}

    @property
    def outcome(self) -> dict[str, Any] | None:
        try:
            outcome = read_json(self.path, store.OUTCOME_JSON, DATA_LIMIT)
        except FileNotFoundError:
            return None
        return _mapping(outcome, store.OUTCOME_JSON)

    def metric_lines(self, name: str = "metrics") -> list[dict[str, Any]]:
        """The file's JSON objects as written (torn lines left out, nothing else checked)."""
        return read_lines(self.path, name).rows

    def load_artifact(self, name: str, kind: str | None = None) -> Any:
        from ..logger import load_artifact

        return load_artifact(self.path, name, kind)

    def __repr__(self) -> str:
        return f"RunRecord({self.experiment}/{self.hash[:12]} {self.status})"


def _evaluate(query: Query, node: tuple[Any, ...], frame: Any) -> Any:
    import pandas as pd

    kind = node[0]
    if kind == "all":
        return pd.Series(True, index=frame.index)
    if kind in ("and", "or"):
        parts = iter(node[1])
        mask = _evaluate(query, next(parts), frame)
        for part in parts:
            other = _evaluate(query, part, frame)
            mask = (mask & other) if kind == "and" else (mask | other)
        return mask
    if kind == "not":
        return ~_evaluate(query, node[1], frame)
    if kind == "in":  # equality with each value, so the same type rules hold
        _, key, values, negated, pos = node
        column = frame[key]
        mask = pd.Series(False, index=frame.index)
        for value in values:
            mask |= _compare(column, "==", value, query, key, pos)
        return ~mask if negated else mask
    _, key, op, value, pos = node
    return _compare(frame[key], op, value, query, key, pos)


_OPS = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _is_number(value: Any) -> bool:
    import numpy

    return isinstance(value, int | float | numpy.number) and not isinstance(value, bool)


def _as_float(value: int | float) -> float:
    """A literal as NumPy can compare it: an integer beyond float range is ±inf."""
    try:
        return float(value)
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


def _equal(column: Any, value: Any) -> Any:
    """Element-wise ``== value`` where a bool never equals a number (True is not 1)."""
    import numpy
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if isinstance(value, bool):
        if is_bool_dtype(column):
            return column == value
        return column.map(lambda v: isinstance(v, bool | numpy.bool_) and bool(v) == value)
    text = _is_text(column)
    if isinstance(value, int | float):
        if is_numeric_dtype(column) and not is_bool_dtype(column):
            if isinstance(value, int) and not -(2**63) <= value < 2**63:
                value = _as_float(value)  # beyond int64: NumPy cannot hold it exactly either
            return (column == value).fillna(False)
        if text:
            return column.notna() & False
        return column.map(lambda v: _is_number(v) and v == value)
    if text:
        return (column == value).fillna(False)
    return column.map(lambda v: isinstance(v, str) and v == value)


def _is_text(column: Any) -> bool:
    """Whether every value of ``column`` is text or missing, by its type alone (vectorised
    paths for the common case; object columns are looked at value by value)."""
    import pandas as pd

    return isinstance(column.dtype, pd.StringDtype)


def _compare(column: Any, op: str, value: Any, query: Query, key: str, pos: int) -> Any:
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if value is None:
        if op not in ("==", "!="):
            raise QueryError(f"only == and != compare with none (key {key!r})", query.text, pos)
        return column.isna() if op == "==" else column.notna()
    if op in ("==", "!="):
        equal = _equal(column, value).astype(bool)
        return equal if op == "==" else ~equal
    if isinstance(value, bool):
        raise QueryError(f"cannot order by a boolean (key {key!r})", query.text, pos)
    if isinstance(value, int | float):
        if is_numeric_dtype(column) and not is_bool_dtype(column):
            numeric = column
        elif _is_text(column):
            numeric = pd.Series(float("nan"), index=column.index)
        else:
            numeric = pd.to_numeric(
                column.map(lambda v: _as_float(v) if _is_number(v) else None), errors="coerce"
            )
        if column.notna().any() and numeric.notna().sum() == 0:
            raise QueryError(
                f"cannot order {key!r} (it holds text) against a number", query.text, pos
            )
        return _OPS[op](numeric, _as_float(value)).fillna(False).astype(bool)
    if _is_text(column):
        return _OPS[op](column, value).fillna(False).astype(bool)
    texts = column.map(lambda v: v if isinstance(v, str) else None)
    if column.notna().any() and texts.notna().sum() == 0:
        raise QueryError(f"cannot order {key!r} (it holds numbers) against text", query.text, pos)
    return column.map(lambda v: isinstance(v, str) and _OPS[op](v, value)).astype(bool)
