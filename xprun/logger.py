"""The ``logger`` fixture: metrics, artifacts and checkpoints in the run directory.

**Metrics.**  Each ``log_metrics`` call appends one line
``{"step": S, "time": T, "attempt": A, <values>}`` to ``metrics/<name>.jsonl``.  Lines are
buffered and written by a background flush at least every second, when a checkpoint is saved
and when the run ends: a crash loses at most the last second, and each flush writes whole
lines, so a reader never sees a broken line unless the process died inside that very write
(readers skip a torn last line).  Steps auto-increment per name and, on a resumed run,
continue after the last step already on disk.

**Artifacts** are saved by type (see :mod:`xprun.serialize`); loading never unpickles unless
asked.  **Checkpoints** are written atomically and the last ``keep`` are kept; on a resumed
run ``load_checkpoint()`` returns the last one saved, so training continues where it stopped.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import IO, Any

from . import serialize, store, ticker

FLUSH_SECONDS = 1.0
_INF = math.inf
_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


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


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name or not set(name) <= _NAME_OK or name[0] == ".":
        raise ValueError(
            f"{what} name {name!r} must be letters, digits, '_', '-' or '.' (not starting with '.')"
        )
    return name


def _ends_torn(path: Path) -> bool:
    """Whether a file's last line lacks its newline (a writer died mid-line)."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        if f.tell() == 0:
            return False
        f.seek(-1, 2)
        return f.read(1) != b"\n"


def last_step(path: Path) -> int | None:
    """The step of the last whole, valid line of a metrics file (a torn tail is skipped)."""
    try:
        with open(path, "rb") as f:
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


class Logger:
    """Metrics, artifacts and checkpoints of one run attempt."""

    def __init__(self, run_dir: Path, attempt: int = 1, keep_checkpoints: int = 1) -> None:
        self.run_dir = Path(run_dir)
        self.attempt = attempt
        self.keep_checkpoints = keep_checkpoints
        self._prefix = f',"attempt":{attempt},'
        self._keys: dict[str, str] = {}
        self._steps: dict[str, int] = {}
        self._buffers: dict[str, list[str]] = {}
        self._files: dict[str, IO[str]] = {}
        self._lock = threading.Lock()
        self._next_flush = time.time() + FLUSH_SECONDS
        self._job = ticker.every(FLUSH_SECONDS / 2, self._background_flush)
        self._closed = False
        self._on_interrupt: list[Any] = []

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
        previous = last_step(self.run_dir / "metrics" / f"{name}.jsonl")
        self._steps[name] = -1 if previous is None else previous
        return self._buffers.setdefault(name, [])

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
                f = self._files.get(name)
                if f is None:
                    path = self.run_dir / "metrics" / f"{name}.jsonl"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    f = self._files[name] = open(path, "a", encoding="utf-8")  # noqa: SIM115
                    if _ends_torn(path):
                        text = "\n" + text  # end a killed process's torn line on its own
                f.write(text)
                f.flush()
                del buffer[:count]

    def close(self) -> None:
        self._job.cancel()
        self.flush()
        with self._lock:
            for f in self._files.values():
                f.close()
            self._files.clear()
            self._closed = True

    # -- artifacts ----------------------------------------------------------------------------

    @property
    def artifacts_dir(self) -> Path:
        return self.run_dir / "artifacts"

    def log_artifact(self, name: str, obj: Any, kind: str | None = None) -> Path:
        """Save ``obj`` under ``artifacts/<name>`` in a format chosen by its type (or ``kind``)."""
        kind = kind or serialize.kind_of(obj)
        suffix = serialize.SUFFIXES.get(kind)
        if suffix is None:
            raise ValueError(
                f"unknown artifact kind {kind!r}; known: {', '.join(serialize.SUFFIXES)}"
            )
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

        Metrics are flushed first so that a run resumed from this checkpoint has every
        metric line logged before it.
        """
        self.flush()
        if kind is None:
            kind = "torch" if _holds_torch(state) else "tree"
        suffix = serialize.SUFFIXES[kind]
        existing = checkpoint_files(self.run_dir)
        number = existing[-1][0] + 1 if existing else 1
        folder = self.checkpoints_dir
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"ckpt-{number:08d}{suffix}"
        store.write_bytes_atomic(path, serialize.encode(state, kind))
        keep = self.keep_checkpoints if keep is None else keep
        if keep < 1:
            raise ValueError(f"save_checkpoint: keep must be at least 1, got {keep}")
        for _, old in existing[: max(0, len(existing) + 1 - keep)]:
            old.unlink(missing_ok=True)
        return path

    def load_checkpoint(self, allow_pickle: bool = False) -> Any:
        """The last checkpoint saved for this run (any attempt), or None on a fresh run."""
        return load_checkpoint(self.run_dir, allow_pickle)

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


def _holds_torch(state: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return False
    stack = [state]
    while stack:
        value = stack.pop()
        if isinstance(value, torch.Tensor | torch.nn.Module):
            return True
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    return False


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


def load_checkpoint(run_dir: Path, allow_pickle: bool = False) -> Any:
    files = checkpoint_files(run_dir)
    if not files:
        return None
    path = files[-1][1]
    kind = _kind_from_name(path)
    if kind is None:
        raise ValueError(f"{path}: unknown checkpoint format")
    return serialize.decode(path, kind, allow_pickle=allow_pickle)


def load_artifact(run_dir: Path, name: str, kind: str | None = None) -> Any:
    """Load ``artifacts/<name>`` of a run directory (also usable outside a run)."""
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
        candidates = [c for c in candidates if c[0] == kind]
    if not candidates:
        raise FileNotFoundError(
            f"no artifact {name!r}" + (f" of kind {kind!r}" if kind else "") + f" in {root}"
        )
    if len({c[1] for c in candidates}) > 1:
        kinds = ", ".join(sorted({str(c[0]) for c in candidates}))
        raise ValueError(f"artifact {name!r} exists as several kinds ({kinds}); pass kind=...")
    found_kind, path = candidates[0]
    return serialize.decode(path, str(found_kind), allow_pickle=kind == "pickle")
