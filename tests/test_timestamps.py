"""``timestamp()`` writes exactly what ``datetime`` writes, however it gets there.

It keeps the text of the last whole second and rounds the fraction itself (a run writes
three timestamps: issue 11's CPU path), so it is compared with ``datetime`` on the cases
where rounding carries into the next second or crosses zero, and on arbitrary floats.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xprun import timestamps
from xprun.timestamps import parse_timestamp, timestamp


def _datetime_writes(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


@pytest.mark.parametrize(
    "seconds",
    [
        0.0,
        0.9999995,  # rounds up to the next second (half to even, at the microsecond)
        0.9999994999,
        1.0000005,
        1.5e-7,
        -0.5,
        -0.0000004,
        -1.0000005,
        1e9 + 0.9995,
        1796114305.79,
        1700000000.0004999,
        2**31 + 0.9999996,
        253402300799.9994,  # 9999-12-31T23:59:59.999
    ],
)
def test_a_timestamp_is_what_datetime_writes(seconds):
    assert timestamp(seconds) == _datetime_writes(seconds)


@given(st.floats(min_value=-2e9, max_value=2.5e11, allow_nan=False))
def test_any_time_is_written_as_datetime_writes_it(seconds):
    assert timestamp(seconds) == _datetime_writes(seconds)


def test_one_second_after_another_and_back():
    # The kept second must never leak into another: earlier, later, the same again.
    for seconds in (100.25, 100.75, 99.5, 100.001, 5e9 + 0.5, 100.999):
        assert timestamp(seconds) == _datetime_writes(seconds)
    assert timestamps._second[0] == 100


def test_now_is_now_and_reads_back():
    before = datetime.now(UTC)
    text = timestamp()
    after = datetime.now(UTC)
    assert text.endswith("+00:00") and len(text) == len("2026-11-30T09:22:33.123+00:00")
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= parse_timestamp(text)
    assert parse_timestamp(text) <= after
