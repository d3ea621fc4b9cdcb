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

import time
from datetime import UTC, datetime


def timestamp(seconds: float | None = None) -> str:
    """``seconds`` since the epoch (default: now) in xprun's one format."""
    when = time.time() if seconds is None else seconds
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")


def parse_timestamp(text: str) -> datetime:
    """Any timestamp xprun wrote, this version or an older one, as an aware UTC datetime.

    A time without an offset is taken as UTC (xprun has never written local times).
    """
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
