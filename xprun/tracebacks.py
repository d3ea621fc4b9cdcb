"""A failed run's traceback as its user reads it: their frames, not xprun's or pluggy's.

An experiment is called through pluggy and xprun's runner, and a fixture through xprun's
fixture code, so a raw traceback starts with frames the user did not write and cannot act
on, and may have more of them between two of the user's frames (a fixture that calls
``request.getfixturevalue``).  As pytest does, those frames are left out wherever they are
in the chain of exceptions (``__cause__``, ``__context__``, exception groups), and so is any
frame whose locals or globals set ``__tracebackhide__`` to a true value (a helper that
raises on purpose).  An exception raised by xprun itself, with no frame of the user's,
keeps its innermost frame: where it was raised.

The cutting happens where the run executes (the runner, in a pool worker or a cluster job
too), because only there are the frames still alive: what the terminal shows and what
``error.txt`` records are the same text.  ``--full-trace`` (or ``XPRUN_FULL_TRACE=1`` in the
environment, as Hydra's ``HYDRA_FULL_ERROR``) keeps every frame.

:func:`crash_line` reads back, from that text, the line a summary shows: the exception's
type and the first meaningful line of its message (pytest's "reprcrash").
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import traceback
    from types import FrameType

#: The environment variable that keeps every frame, as ``--full-trace`` does.
FULL_TRACE_ENV = "XPRUN_FULL_TRACE"

_OWN_PACKAGES = frozenset({"xprun", "pluggy"})

# Headers of the outermost exception's block (an exception group's is drawn with a margin).
_HEADERS = {
    "Traceback (most recent call last):": "",
    "  + Exception Group Traceback (most recent call last):": "  | ",
}
_FRAME_LINE = re.compile(r'^[ |]*File "(?P<file>.*)", line (?P<line>\d+), in (?P<name>.*)$')


def full_trace_from_env() -> bool:
    """Whether ``XPRUN_FULL_TRACE`` asks for every frame (the default of ``--full-trace``;
    pool workers and cluster jobs inherit the variable)."""
    return os.environ.get(FULL_TRACE_ENV, "") not in ("", "0")


def format_exception(exc: BaseException, full: bool = False) -> str:
    """``traceback.format_exception(exc)`` without xprun's and pluggy's frames (every frame
    with ``full``)."""
    import traceback  # imported when a traceback is written: ``--help`` reads this module

    summary = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True)
    if not full:
        _prune(summary, exc, set())
    return "".join(summary.format())


def _hidden(frame: FrameType) -> bool:
    module = str(frame.f_globals.get("__name__", ""))
    if module.partition(".")[0] in _OWN_PACKAGES:
        return True
    hide = frame.f_locals.get("__tracebackhide__", frame.f_globals.get("__tracebackhide__"))
    return bool(hide)


def _prune(summary: traceback.TracebackException, exc: BaseException, seen: set[int]) -> None:
    """Drop the hidden frames of ``summary`` (made from ``exc``) and of its chain, in place."""
    import traceback

    if id(summary) in seen:
        return
    seen.add(id(summary))
    frames = [frame for frame, _ in traceback.walk_tb(exc.__traceback__)]
    if len(frames) == len(summary.stack):  # one entry per frame (no limit was given)
        kept = [
            entry for entry, frame in zip(summary.stack, frames, strict=True) if not _hidden(frame)
        ]
        if summary.stack and not kept:
            kept = [summary.stack[-1]]  # xprun's own error: where it was raised
        summary.stack = traceback.StackSummary.from_list(kept)
    chained = (
        (summary.__cause__, exc.__cause__),
        (summary.__context__, exc.__context__),
        # A group's sub-exceptions past its max_group_width have no summary: not shown.
        *zip(summary.exceptions or (), getattr(exc, "exceptions", ()) or (), strict=False),
    )
    for sub_summary, sub_exc in chained:
        if sub_summary is not None and isinstance(sub_exc, BaseException):
            _prune(sub_summary, sub_exc, seen)


def crash_line(text: str) -> str:
    """The line a summary shows for a traceback (or any report text): the outermost
    exception's type and the first meaningful line of its message.

    ``ValueError: bad`` from a traceback, ``RuntimeError`` for an empty message, the next
    line for a message that starts with a line break; for text that holds no traceback
    (``lost claim: ...``), its first line that is not blank.
    """
    lines = text.splitlines()
    start, margin = 0, None
    for index, line in enumerate(lines):
        if line in _HEADERS:
            start, margin = index + 1, _HEADERS[line]
    if margin is None:
        return next((line.strip() for line in lines if line.strip()), "")
    for index in range(start, len(lines)):
        line = lines[index]
        if not line.startswith(margin):
            continue
        rest = line[len(margin) :]
        if not rest or rest[0].isspace():
            continue  # a frame, its source line or its carets
        rest = rest.rstrip()
        if rest.endswith(":") and " " not in rest:  # "ValueError: " then a line break
            more = (m[len(margin) :].strip() for m in lines[index + 1 :] if m.startswith(margin))
            rest = f"{rest} {next((m for m in more if m), '')}".rstrip()
        return rest
    return next((line.strip() for line in lines[start:] if line.strip()), "")


def location(text: str) -> str:
    """Where the outermost exception of a traceback was raised (``file:line in name``) —
    an interrupted run's last frame, what it was doing — or ``""``."""
    found = ""
    for line in text.splitlines():
        match = _FRAME_LINE.match(line)
        if match:
            found = f"{match['file']}:{match['line']} in {match['name']}"
    return found
