"""The run protocol: check state, claim, set up, call, tear down, record, report.

The order of writes is what makes a run directory trustworthy: the claim (atomic ``mkdir``)
first, then ``config.yaml`` and a ``running`` record, then the outcome or traceback, and the
final ``run.json`` last, each written atomically.  A run counts as complete only once that
last write has happened.
"""

from __future__ import annotations

import random
import signal
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

from . import reports, store, ticker
from .capture import RunCapture
from .errors import Terminated
from .fixtures import FixtureRequest
from .hookimpl import hookimpl
from .logger import checkpoint_files
from .record import final_record, jsonable_outcome, start_record, write_config

if TYPE_CHECKING:
    from .main import Session
    from .runspec import RunSpec


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator, and torch when it is imported."""
    random.seed(seed)
    try:
        import numpy
    except ImportError:
        pass
    else:
        numpy.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


_HELD_SIGNALS = {getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGUSR2") if hasattr(signal, n)}


def _hold_signals() -> Any:
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)


def _release_signals(previous: Any) -> None:
    if previous is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _cut_traceback(exc: BaseException) -> str:
    """The traceback without xprun's own frames above the user's code."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_globals.get("__name__", "").startswith("xprun."):
        if tb.tb_next is None:
            break
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


@hookimpl(trylast=True)
def xprun_run_protocol(run: RunSpec, session: Session) -> reports.RunReport:
    force = session.config.option.force
    skipped = skip_report(session, run)
    if skipped is not None:
        return _log(session, skipped)
    acquired = store.acquire(run.run_dir, session.clock, session.heartbeat)
    claim = acquired.claim
    if claim is None:
        return _elsewhere(session, run, acquired.owner)
    beat = ticker.every(session.heartbeat.interval, claim.touch)
    interrupt: BaseException | None = None
    try:
        # Read under the claim: another process may have completed it meanwhile.
        record = acquired.record or {}
        if record.get("status") == store.STATUS_COMPLETE and not force:
            return _log(session, reports.RunReport(run, reports.CACHED))
        if record.get("status") == store.STATUS_RUNNING and _returned(run):
            report = _recover(run, record)
        else:
            run.attempt = claim.attempt
            report, interrupt = _execute(run, session, record)
    finally:
        beat.cancel()
        claim.release()
    _log(session, report)
    if interrupt is not None:
        raise interrupt
    return report


def skip_report(session: Session, run: RunSpec) -> reports.RunReport | None:
    """The report of a run that must not start here: complete (cached, unless ``--force``)
    or running elsewhere (a live claim).  None when it should run."""
    state = session.run_state(run)
    if state.complete and not session.config.option.force:
        return reports.RunReport(run, reports.CACHED)
    if state.status == store.STATUS_RUNNING and state.owner is not None:
        return _elsewhere_report(session, run, state.owner)
    return None


def _elsewhere_report(
    session: Session, run: RunSpec, owner: store.ClaimInfo | None
) -> reports.RunReport:
    where = owner.describe(session.clock) if owner else "another process"
    return reports.RunReport(run, reports.ELSEWHERE, longrepr=f"running elsewhere: {where}")


def _elsewhere(session: Session, run: RunSpec, owner: store.ClaimInfo | None) -> reports.RunReport:
    return _log(session, _elsewhere_report(session, run, owner))


def _log(session: Session, report: reports.RunReport) -> reports.RunReport:
    session.config.hook.xprun_run_logreport(report=report)
    return report


def _returned(run: RunSpec) -> bool:
    return (run.run_dir / store.OUTCOME_JSON).is_file()


def _recover(run: RunSpec, record: dict[str, Any]) -> reports.RunReport:
    """The last attempt returned (its outcome is saved) but died before its final record.

    Its result stands: record it as complete rather than run the experiment again.
    """
    ended = (run.run_dir / store.OUTCOME_JSON).stat().st_mtime
    final = final_record(record, store.STATUS_COMPLETE, ended, None, record.get("packages", {}))
    final["recovered"] = True
    store.write_json_atomic(run.run_dir / store.RUN_JSON, final)
    run.attempt = int(record.get("attempt", 1))
    note = "the experiment had returned; its final record was written after a crash"
    return reports.RunReport(run, reports.COMPLETE, longrepr=note)


def _execute(
    run: RunSpec, session: Session, previous: dict[str, Any]
) -> tuple[reports.RunReport, BaseException | None]:
    hook = session.config.hook
    started = time.time()
    run_dir = run.run_dir
    if previous:  # files of an earlier attempt that would lie about this one
        for name in (store.OUTCOME_JSON, "error.txt"):
            (run_dir / name).unlink(missing_ok=True)
        if previous.get("status") == store.STATUS_COMPLETE:  # --force: start over
            for _, path in checkpoint_files(run_dir):
                path.unlink(missing_ok=True)
    write_config(run)
    record = start_record(run, session, started)
    capture = RunCapture(run_dir, echo=session.config.option.capture == "no")
    run.request = FixtureRequest(run, run.experiment.fixtures, session.session_fixtures)
    error: BaseException | None = None
    interrupt: BaseException | None = None
    held: Any = None
    status = store.STATUS_COMPLETE
    capture.start()
    try:
        try:
            seed_everything(run.seed)
            hook.xprun_run_setup(run=run, session=session)
            outcome = jsonable_outcome(hook.xprun_run_call(run=run, session=session))
            # Saved at once: from here on, the experiment's work is never done twice.
            store.write_json_atomic(run_dir / store.OUTCOME_JSON, outcome)
        except (KeyboardInterrupt, Terminated) as exc:
            status, error, interrupt = store.STATUS_INTERRUPTED, exc, exc
            # A second Ctrl-C or SIGTERM must not cut the recording short: hold them until
            # the final record is written (they are delivered then).
            held = _hold_signals()
            try:
                hook.xprun_run_interrupted(run=run, session=session, reason=exc)
            except Exception as hook_error:  # recorded; the run is interrupted either way
                sys.stderr.write(f"xprun: saving state on interrupt failed: {hook_error!r}\n")
        except Exception as exc:
            status, error = store.STATUS_FAILED, exc
        try:
            hook.xprun_run_teardown(run=run, session=session)
        except (KeyboardInterrupt, Terminated) as exc:
            status, error, interrupt = store.STATUS_INTERRUPTED, error or exc, exc
        except Exception as exc:
            if status == store.STATUS_COMPLETE:
                status, error = store.STATUS_FAILED, exc
    finally:
        stdout, stderr = capture.stop()
        run.request = None
    longrepr = ""
    if error is not None:
        longrepr = _cut_traceback(error)
        store.write_text_atomic(run_dir / "error.txt", longrepr)
        if status == store.STATUS_FAILED:  # a teardown error after the call returned
            (run_dir / store.OUTCOME_JSON).unlink(missing_ok=True)
    ended = time.time()
    final = final_record(record, status, ended, error, session.packages.imported())
    store.write_json_atomic(run_dir / store.RUN_JSON, final)
    if interrupt is not None:
        _release_signals(held)
    outcome_name = {
        store.STATUS_COMPLETE: reports.COMPLETE,
        store.STATUS_FAILED: reports.FAILED,
        store.STATUS_INTERRUPTED: reports.INTERRUPTED,
    }[status]
    report = reports.RunReport(
        run, outcome_name, duration=ended - started, longrepr=longrepr, stdout=stdout, stderr=stderr
    )
    return report, interrupt


@hookimpl(trylast=True)
def xprun_run_setup(run: RunSpec, session: Session) -> None:
    request = run.request
    assert request is not None
    for name in run.experiment.argnames:
        request.getfixturevalue(name)


@hookimpl(trylast=True)
def xprun_run_call(run: RunSpec, session: Session) -> Any:
    request = run.request
    assert request is not None
    kwargs = {name: request.getfixturevalue(name) for name in run.experiment.argnames}
    return run.experiment.func(**kwargs)


@hookimpl(trylast=True)
def xprun_run_teardown(run: RunSpec, session: Session) -> None:
    request = run.request
    if request is None:
        return
    errors = request.teardown()
    if errors:
        raise errors[0]


@hookimpl
def xprun_run_interrupted(run: RunSpec, session: Session, reason: BaseException) -> None:
    request = run.request
    logger = request.cached_value("logger") if request is not None else None
    if logger is not None and hasattr(logger, "interrupted"):
        logger.interrupted()
