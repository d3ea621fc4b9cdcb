"""Reading ``metrics/<name>.jsonl`` files fast, skipping torn lines; per-run aggregates."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

AGGREGATES = ("last", "first", "min", "max", "mean", "count")


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The metric lines of one file; a torn or damaged line is skipped, never fatal."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    data = data.strip()
    if not data:
        return []
    try:  # the fast path: the whole file as one JSON array
        rows = json.loads(b"[" + data.replace(b"\n", b",") + b"]")
        if all(isinstance(r, dict) for r in rows):
            return rows
    except ValueError:
        pass
    rows = []
    for line in data.split(b"\n"):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def long_frame(runs: Iterable[tuple[str, Path]], name: str, all_attempts: bool = False) -> Any:
    """One row per (run, step): ``hash``, ``attempt``, ``step``, ``time``, one column per metric.

    Without ``all_attempts``, a step logged by several attempts of a resumed run keeps only
    the latest attempt's line.
    """
    import pandas as pd

    hashes: list[str] = []
    rows: list[dict[str, Any]] = []
    for run_hash, run_dir in runs:
        lines = read_lines(run_dir / "metrics" / f"{name}.jsonl")
        rows.extend(lines)
        hashes.extend([run_hash] * len(lines))
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame({"step": [], "attempt": []})
    frame.insert(0, "hash", pd.Series(hashes, dtype="object"))
    if not all_attempts and len(frame):
        frame = frame.drop_duplicates(["hash", "step"], keep="last")
    if len(frame):
        frame = frame.sort_values(["hash", "step"], kind="stable").reset_index(drop=True)
    return frame


def aggregate(frame: Any, wanted: list[tuple[str, str]]) -> Any:
    """Per-run aggregates over steps, one column per ``(metric, how)``, indexed by hash.

    One groupby computes them all; missing values are skipped (``last`` is the last value
    logged), and a metric no run logged gives an all-missing column.
    """
    import pandas as pd

    for _, how in wanted:
        if how not in AGGREGATES:
            raise ValueError(f"unknown aggregate {how!r}; use one of {', '.join(AGGREGATES)}")
    present = sorted({m for m, _ in wanted if m in frame.columns})
    hows = sorted({h for _, h in wanted})
    if present and len(frame):
        table = frame.groupby("hash", sort=False)[present].agg(hows)
    else:
        table = pd.DataFrame(index=pd.Index([], name="hash"))
    columns = {}
    for metric, how in wanted:
        if (metric, how) in table.columns:
            columns[(metric, how)] = table[(metric, how)]
        else:
            columns[(metric, how)] = pd.Series(float("nan"), index=table.index)
    return pd.DataFrame(columns, index=table.index)
