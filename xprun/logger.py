"""The ``logger`` fixture: metrics as JSON lines in the run directory.

Each ``log_metrics`` call appends one line ``{"step": ..., "time": ..., <values>}`` to
``metrics/<name>.jsonl``.  Lines are buffered and flushed at least every second and when the
run ends, so logging in a tight loop costs little, and a crash loses at most the last second.
Each line is written whole with one ``write`` call, so a reader never sees a half line unless
the process dies inside that call; readers skip a torn last line.
"""

from __future__ import annotations

import json
import math
import numbers
import time
from pathlib import Path
from typing import IO, Any

FLUSH_SECONDS = 1.0


def _number(key: str, value: Any) -> float | int | bool:
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, numbers.Number) or hasattr(value, "item"):
        try:
            item = value.item() if hasattr(value, "item") else value  # NumPy/torch scalars
        except (TypeError, ValueError):
            item = None
        if isinstance(item, bool | int | float):
            return item
    raise TypeError(
        f"log_metrics: value for {key!r} must be a number, got {type(value).__name__} "
        f"({value!r:.60}); log other objects with log_artifact"
    )


def _json_number(value: float | int | bool) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return json.dumps(value)


class Logger:
    """Writes a run's metrics; one instance per run, closed when the run ends."""

    def __init__(self, run_dir: Path, attempt: int = 1) -> None:
        self.run_dir = run_dir
        self.attempt = attempt
        self._files: dict[str, IO[str]] = {}
        self._buffers: dict[str, list[str]] = {}
        self._steps: dict[str, int] = {}
        self._last_flush = time.monotonic()

    def log_metrics(
        self, values: dict[str, Any], step: int | None = None, name: str = "metrics"
    ) -> None:
        """Append one line of numeric ``values`` at ``step`` (auto-incremented per name)."""
        if not isinstance(values, dict):
            raise TypeError(f"log_metrics expects a dict of numbers, got {type(values).__name__}")
        converted = [(str(k), _number(str(k), v)) for k, v in values.items()]
        if step is None:
            step = self._steps.get(name, -1) + 1
        elif not isinstance(step, int) or isinstance(step, bool):
            raise TypeError(f"log_metrics: step must be an int, got {type(step).__name__}")
        self._steps[name] = step
        now = time.time()
        body = ",".join(f"{json.dumps(k)}:{_json_number(v)}" for k, v in converted)
        line = f'{{"step":{step},"time":{now:.3f},"attempt":{self.attempt}'
        line += f",{body}}}\n" if body else "}\n"
        buffer = self._buffers.get(name)
        if buffer is None:
            buffer = self._buffers[name] = []
        buffer.append(line)
        if time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        for name, buffer in self._buffers.items():
            if not buffer:
                continue
            f = self._files.get(name)
            if f is None:
                path = self.run_dir / "metrics" / f"{name}.jsonl"
                path.parent.mkdir(parents=True, exist_ok=True)
                f = self._files[name] = open(path, "a", encoding="utf-8")  # noqa: SIM115
            f.write("".join(buffer))
            f.flush()
            buffer.clear()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()
        for f in self._files.values():
            f.close()
        self._files.clear()
