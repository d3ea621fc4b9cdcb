"""The ``logger`` fixture: metrics, artifacts and checkpoints in the run directory.

**Metrics.**  Each ``log_metrics`` call appends one line
``{"step": S, "time": T, "attempt": A, <values>}`` to ``metrics/<name>.jsonl``.  Lines are
buffered and written by a background flush at least every second, when a checkpoint is saved
and when the run ends: a crash loses at most the last second, and each flush writes whole
lines, so a reader never sees a broken line unless the process died inside that very write
(readers skip a torn last line).  Steps auto-increment per name.

**Resumed steps.**  A run resumed from a checkpoint repeats whatever it did after that
checkpoint, metric lines included.  So each checkpoint records, in ``steps-<N>.json`` beside
it, the last step of every metrics file when it was saved, and a new attempt's automatic steps
continue after the steps of the checkpoint it resumes from (the last one), not after the last
line on disk: a repeated epoch gets the step it had, and the Reader keeps the last line of each
step (the earlier attempt's stays in the file, tagged with its attempt).  When
``load_checkpoint()`` finds no checkpoint the run starts over, and so do its steps.  A run that
never checkpoints (it may resume by its own means) continues after the last step on disk.

**Artifacts and checkpoints** follow one rule (see :mod:`xprun.serialize`): what is saved must
load back without unpickling, so anything else (a ``torch.nn.Module``, an optimizer) is refused
when saved, with what to do instead; ``kind="pickle"`` opts in, both when saving and when
loading.  Checkpoints are written atomically and the last ``keep`` are kept; on a resumed run
``load_checkpoint()`` returns the last one saved, so training continues where it stopped.
"""

from __future__ import annotations

import json
import math
import os
import stat
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from . import serialize, store, ticker

FLUSH_SECONDS = 1.0
_INF = math.inf
_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
_UNREAD: Any = object()  # the resumed steps, before they are looked up


def _bad_value(key: str, value: Any) -> TypeError:
    return TypeError(
        f"log_metrics: value for {key!r} must be a number, got {type(value).__name__} "
        f"({value!r:.60}); log other objects with log_artifact"
    )


def _format_number(key: str, value: Any) -> str:
    """The JSON text of one metric value (NaN and infinities kept, as Python's json does)."""
    kind = type(value)
    if kind is float:
        if value - value == 0.0:
            return repr(value)
    elif kind is int:
        return repr(value)
    elif kind is bool:
        return "true" if value else "false"
    elif hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # NumPy/torch scalars
        try:
            item = value.item()
        except (TypeError, ValueError):
            raise _bad_value(key, value) from None
        if type(item) in (float, int, bool):
            return _format_number(key, item)
        raise _bad_value(key, value)
    elif isinstance(value, int | float):  # subclasses
        return _format_number(key, float(value) if isinstance(value, float) else int(value))
    else:
        raise _bad_value(key, value)
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _check_keep(keep: Any, what: str) -> int:
    if type(keep) is not int:
        raise TypeError(f"{what} must be an int (how many checkpoints to keep), got {keep!r}")
    if keep < 1:
        raise ValueError(f"{what} must be at least 1 (the checkpoint being saved), got {keep}")
    return keep


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name or not set(name) <= _NAME_OK or name[0] == ".":
        raise ValueError(
            f"{what} name {name!r} must be letters, digits, '_', '-' or '.' (not starting with '.')"
        )
    return name


def _ends_torn(fd: int, size: int | None = None) -> bool:
    """Whether an open file's last line lacks its newline (a writer died mid-line).
    ``size``: the file's size, when the caller has just read it (one ``fstat`` less)."""
    if size is None:
        size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def last_step(path: Path) -> int | None:
    """The step of the last whole, valid line of a metrics file (a torn tail is skipped)."""
    try:
        with _open_regular(path, os.O_RDONLY) as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 65536))
            tail = f.read()
    except FileNotFoundError:
        return None
    for line in reversed(tail.split(b"\n")):
        try:
            step = json.loads(line).get("step")
        except (ValueError, AttributeError):
            continue
        if isinstance(step, int):
            return step
    return None


def _open_regular(path: Path, flags: int) -> Any:
    """``path`` opened with ``flags``; refuses what is not a regular file.

    A FIFO or device under a metrics file's name (a damaged log directory) would block or
    swallow the run's metrics: it is an error that names the file instead.
    """
    fd = _open_regular_fd(path, flags)
    os.set_blocking(fd, True)
    return open(fd, "rb", closefd=True)


def _open_regular_fd(path: Path | str, flags: int) -> int:
    return _open_regular_sized(path, flags)[0]


def _open_regular_sized(path: Path | str, flags: int) -> tuple[int, int]:
    """``_open_regular_fd``, with the size of the file opened (from the same ``fstat``)."""
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_NOFOLLOW, 0o644)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file; remove it so the run can record metrics")
    return fd, info.st_size


def _open_metrics(path: Path | str) -> tuple[int, int]:
    """A metrics file's descriptor for appending (a regular file only), and its size;
    readable, to see a torn end.  (``O_NONBLOCK`` stays: it means nothing for a regular
    file.)"""
    return _open_regular_sized(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)


class Logger:
    """Metrics, artifacts and checkpoints of one run attempt."""

    def __init__(
        self,
        run_dir: Path,
        attempt: int = 1,
        keep_checkpoints: int = 1,
        new_run_dir: bool = False,
    ) -> None:
        """``new_run_dir``: the caller knows that nothing of an earlier attempt is in
        ``run_dir`` (xprun made it for this attempt), so there are no steps to resume."""
        self.run_dir = run_dir if isinstance(run_dir, Path) else Path(run_dir)
        self.attempt = attempt
        self.keep_checkpoints = _check_keep(keep_checkpoints, "Logger: keep_checkpoints")
        self._prefix = f',"attempt":{attempt},'
        self._keys: dict[str, str] = {}
        self._steps: dict[str, int] = {}
        self._buffers: dict[str, list[str]] = {}
        self._files: dict[str, int] = {}  # name -> descriptor of metrics/<name>.jsonl
        self._lock = threading.Lock()
        self._next_flush = time.time() + FLUSH_SECONDS
        _flushed_in_background(self)
        self._closed = False
        self._on_interrupt: list[Any] = []
        # The steps this attempt continues after (see the module docstring); None: after the
        # last step on disk.
        self._resumed: dict[str, int] | None = None if new_run_dir else _UNREAD
        self._new_run_dir = new_run_dir

    # -- metrics ------------------------------------------------------------------------------

    def log_metrics(
        self, values: dict[str, Any], step: int | None = None, name: str = "metrics"
    ) -> None:
        """Append one line of numeric ``values``; a non-number raises ``TypeError``."""
        keys = self._keys
        parts = []
        try:
            items = values.items()
        except AttributeError:
            raise TypeError(
                f"log_metrics expects a dict of numbers, got {type(values).__name__}"
            ) from None
        for key, value in items:
            encoded = keys.get(key)
            if encoded is None:
                if not isinstance(key, str) or key in ("step", "time", "attempt"):
                    raise TypeError(
                        f"log_metrics: key {key!r} must be a str other than step/time/attempt"
                    )
                encoded = keys[key] = json.dumps(key) + ":"
            if type(value) is float and value - value == 0.0:  # the common case, inlined
                parts.append(encoded + repr(value))
            else:
                parts.append(encoded + _format_number(key, value))
        buffer = self._buffers.get(name)
        if buffer is None:
            buffer = self._open_metric(name)
        if step is None:
            step = self._steps[name] + 1
        elif type(step) is not int:
            raise TypeError(f"log_metrics: step must be an int, got {type(step).__name__}")
        self._steps[name] = step
        now = time.time()
        # list.append is atomic under the GIL; the flusher only removes what it wrote.
        buffer.append(f'{{"step":{step},"time":{now:.3f}{self._prefix}{",".join(parts)}}}\n')
        if now >= self._next_flush:
            self.flush()

    def _open_metric(self, name: str) -> list[str]:
        _check_name(name, "metrics")
        if self._closed:
            raise RuntimeError("the logger of this run is closed")
        previous = self._resumed_step(name)
        self._steps[name] = -1 if previous is None else previous
        return self._buffers.setdefault(name, [])

    def _resumed_steps(self) -> dict[str, int] | None:
        """The steps recorded with the checkpoint this attempt resumes from (read once, before
        this attempt saves one); None when there is none, or it predates step records."""
        if self._resumed is _UNREAD:
            files = checkpoint_files(self.run_dir)
            self._resumed = _steps_of(files[-1][1]) if files else None
        return self._resumed

    def _resumed_step(self, name: str) -> int | None:
        """The step that this attempt's automatic steps of ``name`` continue after."""
        resumed = self._resumed_steps()
        if resumed is None:
            if self._new_run_dir:
                return None
            return last_step(self.run_dir / "metrics" / f"{name}.jsonl")
        return resumed.get(name)

    def _steps_now(self) -> dict[str, int]:
        """The last step of every metrics file of the run, as a checkpoint records it."""
        resumed = self._resumed_steps()
        if resumed is None:
            names = {p.name[: -len(".jsonl")] for p in self.run_dir.glob("metrics/*.jsonl")}
        else:
            names = set(resumed)
        steps = {}
        for name in sorted(names.difference(list(self._steps))):
            step = self._resumed_step(name)
            if step is not None:
                steps[name] = step
        steps.update((name, step) for name, step in list(self._steps.items()) if step >= 0)
        return steps

    def _background_flush(self) -> None:
        if time.time() >= self._next_flush - 0.05:
            self.flush()

    def flush(self) -> None:
        """Write buffered metric lines (whole lines, one write per file)."""
        with self._lock:  # one flusher at a time; appenders never wait
            self._next_flush = time.time() + FLUSH_SECONDS
            for name, buffer in list(self._buffers.items()):
                count = len(buffer)
                if not count:
                    continue
                text = "".join(buffer[:count])
                fd = self._files.get(name)
                if fd is None:
                    folder = os.path.join(self.run_dir, "metrics")
                    try:
                        os.mkdir(folder)
                    except FileExistsError:
                        pass
                    except FileNotFoundError:  # the run directory is gone: made again
                        os.makedirs(folder, exist_ok=True)
                    fd, size = _open_metrics(os.path.join(folder, f"{name}.jsonl"))
                    self._files[name] = fd
                    if _ends_torn(fd, size):
                        text = "\n" + text  # end a killed process's torn line on its own
                store.write_all(fd, text.encode("utf-8"))
                del buffer[:count]

    def close(self) -> None:
        _forget(self)
        self.flush()
        with self._lock:
            for fd in self._files.values():
                os.close(fd)
            self._files.clear()
            self._closed = True

    # -- artifacts ----------------------------------------------------------------------------

    @property
    def artifacts_dir(self) -> Path:
        return self.run_dir / "artifacts"

    def log_artifact(self, name: str, obj: Any, kind: str | None = None) -> Path:
        """Save ``obj`` under ``artifacts/<name>`` in a format chosen by its type (or ``kind``).

        What would not load back without unpickling (a module: save its ``state_dict()``) is
        refused before anything is written, unless ``kind="pickle"``.
        """
        kind = kind or serialize.kind_of(obj)
        suffix = serialize.suffix_of(kind)
        serialize.safe_child(self.artifacts_dir, name)  # the name itself must be safe
        filename = name if name.endswith(suffix) else name + suffix
        path = serialize.safe_child(self.artifacts_dir, filename)
        data = serialize.encode(obj, kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        store.write_bytes_atomic(path, data)
        return path

    def load_artifact(self, name: str, kind: str | None = None) -> Any:
        """Load an artifact saved as ``name``; pickles only with ``kind="pickle"``."""
        return load_artifact(self.run_dir, name, kind)

    # -- checkpoints --------------------------------------------------------------------------

    @property
    def checkpoints_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def save_checkpoint(self, state: Any, kind: str | None = None, keep: int | None = None) -> Path:
        """Save ``state`` atomically; keep the last ``keep`` (default 1); flush metrics first.

        ``kind`` defaults to ``"torch"`` when ``state`` holds tensors, else ``"tree"``.  Bad
        arguments, and a state that would not load back without unpickling (a module: save
        its ``state_dict()``), raise before anything is written.  Metrics are flushed first
        so that a run resumed from this checkpoint has every metric line logged before it.
        """
        keep = self.keep_checkpoints if keep is None else _check_keep(keep, "save_checkpoint: keep")
        if kind is None:
            kind = "torch" if serialize.holds_torch(state) else "tree"
        suffix = serialize.suffix_of(kind)
        data = serialize.encode(state, kind)
        self.flush()
        steps = self._steps_now()
        existing = checkpoint_files(self.run_dir)
        number = existing[-1][0] + 1 if existing else 1
        folder = self.checkpoints_dir
        folder.mkdir(parents=True, exist_ok=True)
        # The steps first: a checkpoint on disk always has its steps beside it.
        store.write_json_atomic(_steps_path(folder, number), {"steps": steps})
        path = folder / f"ckpt-{number:08d}{suffix}"
        store.write_bytes_atomic(path, data)
        for old_number, old in existing[: max(0, len(existing) + 1 - keep)]:
            old.unlink(missing_ok=True)
            _steps_path(folder, old_number).unlink(missing_ok=True)
        return path

    def load_checkpoint(self, kind: str | None = None) -> Any:
        """The last checkpoint saved for this run (any attempt), or None on a fresh run.

        ``kind="pickle"`` loads a checkpoint saved with ``kind="pickle"`` (it unpickles: only
        for a log directory you trust).  None also means the run starts over: so do the
        automatic steps of metrics that this attempt has not logged yet.
        """
        state = load_checkpoint(self.run_dir, kind)
        if state is None:
            self._resumed = {}
        return state

    def on_interrupt(self, state: Any) -> Any:
        """Register a callable returning the state to checkpoint if the run is interrupted
        (SIGINT, SIGTERM, or SIGUSR2 before a cluster preemption or time limit).

        Usable as a decorator.  The run resumes from that checkpoint when it runs again.
        """
        if not callable(state):
            raise TypeError("on_interrupt expects a callable returning the state to save")
        self._on_interrupt.append(state)
        return state

    def interrupted(self) -> None:
        """Called by xprun when the run is interrupted: save the registered states."""
        for callback in self._on_interrupt:
            self.save_checkpoint(callback())
        self.flush()


#: The loggers not closed yet, flushed by one background job (``_flush_live``): a logger per
#: run must not add and cancel a job of its own, which wakes the ticker's thread every run.
_LIVE: weakref.WeakSet[Logger] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()  # the set is changed by runs and copied by the ticker's thread
_flusher: list[ticker.Job] = []


def _flush_live() -> None:
    with _LIVE_LOCK:
        loggers = list(_LIVE)
    for logger in loggers:
        try:
            logger._background_flush()
        except Exception as exc:  # that logger only: the others keep their flushes
            # Its lines stay buffered: the run's own flushes (at the latest when it returns)
            # write them or fail the run; meanwhile the failure is said, not dropped.
            _forget(logger)
            ticker.report(
                f"background flush of the metrics of {logger.run_dir} failed: {exc!r}; "
                "they are written when the run flushes next",
                logger.run_dir,
            )


def _flushed_in_background(logger: Logger) -> None:
    with _LIVE_LOCK:
        _LIVE.add(logger)
        if not _flusher or _flusher[0].cancelled:  # first logger, or the job was stopped
            _flusher[:] = [ticker.every(FLUSH_SECONDS / 2, _flush_live)]


def _forget(logger: Logger) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(logger)


def _steps_path(folder: Path, number: int) -> Path:
    return folder / f"steps-{number:08d}.json"


def _steps_of(checkpoint: Path) -> dict[str, int] | None:
    """The metric steps recorded with a checkpoint; None when it has none (older runs)."""
    number = int(checkpoint.name[5:].split(".", 1)[0])
    try:
        steps = store.read_json(_steps_path(checkpoint.parent, number))["steps"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(steps, dict):
        return None
    return {k: v for k, v in steps.items() if isinstance(k, str) and type(v) is int}


def checkpoint_files(run_dir: Path) -> list[tuple[int, Path]]:
    """The checkpoints of a run, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    try:
        names = [p for p in folder.iterdir() if p.name.startswith("ckpt-")]
    except FileNotFoundError:
        return []
    found = []
    for path in names:
        number = path.name[5:].split(".", 1)[0]
        if number.isdigit():
            found.append((int(number), path))
    return sorted(found)


def _kind_from_name(path: Path) -> str | None:
    name = path.name
    for suffix, kind in sorted(serialize.KINDS_BY_SUFFIX.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(suffix):
            return kind
    return None


def load_checkpoint(run_dir: Path, kind: str | None = None) -> Any:
    """The last checkpoint of a run directory, or None; unpickles only with ``kind="pickle"``.

    ``kind`` may also name the kind it was saved as, which is then checked.
    """
    if kind is not None:
        serialize.suffix_of(kind)
    files = checkpoint_files(run_dir)
    if not files:
        return None
    path = files[-1][1]
    found = _kind_from_name(path)
    if found is None:
        raise ValueError(f"{path}: unknown checkpoint format")
    if kind not in (None, "pickle", found):
        raise ValueError(f"{path} was saved as kind {found!r}, not {kind!r}")
    return serialize.decode(path, found, allow_pickle=kind == "pickle")


def load_artifact(run_dir: Path, name: str, kind: str | None = None) -> Any:
    """Load ``artifacts/<name>`` of a run directory (also usable outside a run)."""
    if kind is not None:
        serialize.suffix_of(kind)
    root = Path(run_dir) / "artifacts"
    candidates = []
    exact = serialize.safe_child(root, name)
    if exact.is_file() and _kind_from_name(exact):
        candidates.append((_kind_from_name(exact), exact))
    for suffix, suffix_kind in serialize.KINDS_BY_SUFFIX.items():
        path = serialize.safe_child(root, name + suffix)
        if path.is_file():
            candidates.append((suffix_kind, path))
    if kind is not None:
        wanted = [c for c in candidates if c[0] == kind]
        if kind == "pickle" and not wanted:  # a torch file holding more than tensors
            wanted = [c for c in candidates if c[0] == "torch"]
        candidates = wanted
    if not candidates:
        raise FileNotFoundError(
            f"no artifact {name!r}" + (f" of kind {kind!r}" if kind else "") + f" in {root}"
        )
    if len({c[1] for c in candidates}) > 1:
        kinds = ", ".join(sorted({str(c[0]) for c in candidates}))
        raise ValueError(f"artifact {name!r} exists as several kinds ({kinds}); pass kind=...")
    found_kind, path = candidates[0]
    return serialize.decode(path, str(found_kind), allow_pickle=kind == "pickle")
