"""The one timestamp format of xprun's records, and the parser that reads every one.

Every time xprun writes into a record (``run.json`` ``start``/``end``, a claim's ``since``, a
job spec's ``created``, a submission's ``submitted``) is ISO 8601 in UTC with milliseconds
and an explicit offset: ``2026-11-30T09:22:33.123+00:00``.  Such text sorts as the time
does, so the Reader's queries compare it as text (``start >= "2026-11-01"``).  Metric lines
keep ``time`` as seconds since the epoch (a number, to plot against).

:func:`parse_timestamp` reads it back, and reads what older versions wrote too (a claim's
``2026-11-30T09:22:33Z``): always an aware ``datetime`` in UTC.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any


def timestamp(seconds: float | None = None) -> str:
    """``seconds`` since the epoch (default: now) in xprun's one format: what
    ``datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")`` writes.

    A run writes three (its claim, its start, its end), so the text of the whole second is
    kept from one call to the next, and the fraction is rounded as ``datetime`` rounds it
    (to the microsecond, half to even, then cut to milliseconds).
    """
    when = time.time() if seconds is None else seconds
    fraction, whole = math.modf(when)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    elif micro < 0:
        whole, micro = whole - 1, micro + 1_000_000
    second = int(whole)
    if second != _second[0]:
        text = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")
        _second[:] = [second, text[:-6]]  # without "+00:00"
    return f"{_second[1]}.{micro // 1000:03d}+00:00"


_second: list[Any] = [None, ""]  # the last whole second formatted: [seconds, its text]


def parse_timestamp(text: str) -> datetime:
    """Any timestamp xprun wrote, this version or an older one, as an aware UTC datetime.

    A time without an offset is taken as UTC (xprun has never written local times).
    """
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
