"""``--junitxml PATH``: a JUnit XML report, the format CI systems (GitLab, Jenkins, GitHub
actions' test reporters) already read, as pytest's ``--junitxml``.

One ``<testsuite name="xprun">`` per session, one ``<testcase>`` per run: ``classname`` is
the experiment's folder name (``xp_train.xp_train``: dotted, as CI tools group classes),
``name`` the function with the run's label (``xp_train[lr=0.1-seed=0]``), ``time`` the run's
duration, and a ``hash`` property.  How a status maps (the summary line's words stay the
counts' names):

- ``complete``: passed; a fixture teardown that raised adds an ``<error>`` (as pytest reports
  an error in teardown of a passed test, counted in ``errors``).
- ``failed``, ``timeout``: ``<failure>``, with the exception's last line as ``message`` and
  the traceback as text.
- ``interrupted``, ``lost claim``: ``<error>`` (the run did not get to an answer).
- ``xfail``: ``<skipped type="xprun.xfail">`` with its message, as pytest writes an xfail.
- ``cached``, ``skipped``, ``running elsewhere``, ``submitted``: ``<skipped>``: not executed
  by this session.  A cached run is complete, but the report says what this session did; its
  ``message`` says it is complete.

A run reported twice (``--wait``: ``submitted``, then how it ended) is one testcase, the
last report's.  The file is written once, at the end of the session (also an interrupted
one), atomically:
a reader never sees half of it.  Captured output of unsuccessful runs goes to
``<system-out>``/``<system-err>``.  Standard library only at import (``xprun --help``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from xml.etree.ElementTree import Element

    from .config import Config
    from .reports import RunReport
    from .session import Session

#: Status → (element, its ``type``) for runs that did not pass; absent: passed.
_OUTCOMES = {
    "failed": ("failure", "xprun.failed"),
    "timeout": ("failure", "xprun.timeout"),
    "interrupted": ("error", "xprun.interrupted"),
    "lost claim": ("error", "xprun.lost_claim"),
    "xfail": ("skipped", "xprun.xfail"),
    "skipped": ("skipped", "xprun.skip"),
    "cached": ("skipped", "xprun.cached"),
    "running elsewhere": ("skipped", "xprun.running_elsewhere"),
    "submitted": ("skipped", "xprun.submitted"),
}
_MESSAGES = {
    "cached": "complete in an earlier session; not run again",
    "running elsewhere": "running in another process",
    "submitted": "submitted to a cluster scheduler; it runs later",
}
TAIL = 20_000  # characters of captured output kept per run


def xprun_addoption(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    from .options import option_group

    group = option_group(parser, "machine-readable output")
    group.add_argument(
        "--junitxml",
        "--junit-xml",
        metavar="PATH",
        dest="xmlpath",
        default=None,
        help="write a JUnit XML report to PATH (a testcase per run), for CI systems",
    )


class JunitXml:
    """The plugin registered by ``--junitxml``: gathers the runs' reports, writes the file at
    the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # One testcase per run: with --wait, a run is reported submitted, then as it ended,
        # and the later report replaces the earlier (in the place of the first).
        self.cases: dict[str, Element] = {}
        self.started = time.time()

    def xprun_sessionstart(self, session: Session) -> None:
        self.started = session.started

    def xprun_run_logreport(self, report: RunReport) -> None:
        from xml.etree.ElementTree import Element, SubElement

        run = report.run
        name = run.experiment.func.__name__ + run.label
        case = Element(
            "testcase",
            classname=run.experiment.name,
            name=name,
            file=run.nodeid.split("::", 1)[0],
            time=f"{_seconds(report.duration):.3f}",
        )
        props = SubElement(case, "properties")
        SubElement(props, "property", name="hash", value=run.hash)
        SubElement(props, "property", name="status", value=str(report.status))
        status = str(report.status)
        if status in _OUTCOMES:
            tag, kind = _OUTCOMES[status]
            text = report.longrepr.strip()
            message = _MESSAGES.get(status) or _last_line(text) or status
            element = SubElement(case, tag, type=kind, message=_clean(message))
            if text and tag != "skipped":
                element.text = _clean(text)
        if report.teardown_error:
            text = report.teardown_error.strip()
            element = SubElement(
                case, "error", type="xprun.teardown", message=_clean(_last_line(text))
            )
            element.text = _clean(text)
        if status in _OUTCOMES or report.teardown_error:
            for tag, captured in (("system-out", report.stdout), ("system-err", report.stderr)):
                if captured.strip():
                    SubElement(case, tag).text = _clean(captured[-TAIL:])
        self.cases[f"{run.experiment.name}/{run.hash}"] = case

    def xprun_collectreport(self, report: Any) -> None:
        """A file that failed to import is an error testcase (as pytest's collection errors)."""
        from xml.etree.ElementTree import Element, SubElement

        if not report.failed:
            return
        case = Element("testcase", classname="", name=str(report.nodeid), time="0.000")
        text = report.longrepr.strip()
        error = SubElement(case, "error", type="xprun.collection", message=_clean(_last_line(text)))
        error.text = _clean(text)
        self.cases[f"collection/{report.nodeid}"] = case

    def xprun_sessionfinish(self, session: Session, exitstatus: int) -> None:
        import platform
        from datetime import UTC, datetime
        from xml.etree.ElementTree import Element, ElementTree, SubElement, indent

        root = Element("testsuites")
        cases = list(self.cases.values())
        failed = [c.find("failure") is not None for c in cases]
        errors = [c.find("error") is not None and not f for c, f in zip(cases, failed, strict=True)]
        attributes = {
            "name": "xprun",
            "tests": str(len(cases)),
            "failures": str(sum(failed)),
            "errors": str(sum(errors)),  # a testcase with a failure counts as a failure only
            "skipped": str(sum(1 for c in cases if c.find("skipped") is not None)),
            "time": f"{time.time() - self.started:.3f}",
            "timestamp": datetime.fromtimestamp(self.started, UTC).isoformat(),
            "hostname": platform.node(),
        }
        suite = SubElement(root, "testsuite", attributes)
        suite.extend(cases)
        indent(root)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            ElementTree(root).write(temporary, encoding="utf-8", xml_declaration=True)
            os.replace(temporary, self.path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            import sys

            sys.stderr.write(f"xprun: cannot write --junitxml {self.path}: {exc}\n")


def _seconds(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and value == value else 0.0


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1] if text.strip() else ""


def _clean(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (a run may print anything)."""
    return "".join(
        c
        if c in "\t\n\r" or " " <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd" or c >= "\U00010000"
        else "\ufffd"
        for c in text
    )


def xprun_configure(config: Config) -> None:
    value = getattr(config.option, "xmlpath", None)
    if value:
        from .reportlog import output_path

        path = output_path(config, value, "--junitxml")
        config.pluginmanager.register(JunitXml(path), "junitxml-file")
