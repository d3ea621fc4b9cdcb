"""The run protocol: check state, claim, set up, call, tear down, record, report.

The order of writes is what makes a run directory trustworthy: the claim (``claim.<N>``,
created exclusively) first, then ``config.yaml`` and a ``running`` record, then the outcome
(durable, as soon as the function returned) or the traceback, and the final ``run.json`` last
(durable), each written atomically.  A run counts as complete only once that last write has
happened.  Three rules decide everything else:

- **A returned result is kept.**  Once the outcome is saved, nothing undoes it: a fixture
  teardown that raises, or a SIGTERM during teardown, is recorded beside a ``complete`` status
  (``teardown_error``), and a process that dies before the final record is completed by the
  next launch (``recovered``) without running the experiment again.
- **Only the owner records.**  Before the outcome and before the final record the claim is
  checked (``Claim.holds``); an owner that lost it (paused past the stale timeout, taken over)
  writes nothing over the new owner's run and reports ``lost claim``.
- **Nothing escapes a run but an interrupt.**  Any exception, ``SystemExit`` included, from the
  experiment or a fixture fails the run, which is recorded, and the sweep goes on; SIGINT,
  SIGTERM and SIGUSR2 interrupt it, and are held while its record is written (in xprun's own
  code, from the moment the first one is raised: ``SignalHold.arm``).  A time limit
  (``RunTimeout``, raised by the ``timeout`` plugin) ends the run as an interrupt does (the
  loggers' ``on_interrupt`` checkpoints are saved) and records it ``timeout``; the session goes
  on.

:func:`run_protocol` can retry a failed attempt (the ``retries`` plugin asks it to, as
pytest-rerunfailures loops over pytest's ``runtestprotocol``): each retry is a new attempt in
the same run directory, and only the last attempt is reported.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any, NamedTuple

from . import journal, reports, store, ticker, tracebacks
from .builtin_fixtures import seed_numpy
from .capture import RunCapture
from .errors import SignalHold, Terminated, disarm, is_disk_full
from .fixtures import FixtureRequest, SessionFixtureError
from .hookimpl import hookimpl
from .record import (
    OUTCOME_FALLBACK,
    OutcomeError,
    error_fields,
    final_record,
    record_texts,
    save_outcome,
    start_record,
    write_config,
)
from .states import Status
from .timeout import RunTimeout

if TYPE_CHECKING:
    from .config import Config
    from .runcontext import RunContext
    from .runspec import RunSpec


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator, and torch when it is imported."""
    random.seed(seed)
    seed_numpy(seed)  # now if loaded, else as it is loaded: never imported for it
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


_INTERRUPTS = (KeyboardInterrupt, Terminated)

#: Where a forced rerun sets aside the files of the attempt it replaces.
PREVIOUS_DIR = "previous"
# What a new attempt writes itself (or must keep): never set aside.
_KEPT = {store.RUN_JSON, "config.yaml", PREVIOUS_DIR}


def _cut_traceback(exc: BaseException, full: bool = False) -> str:
    """The traceback without xprun's and pluggy's frames (``tracebacks.py``; all with
    ``full``, ``--full-trace``): what the terminal shows and ``error.txt`` keeps."""
    return tracebacks.format_exception(exc, full)


class _LostClaim(Exception):
    """This process no longer owns the run: another launcher took it over."""


class _Attempt(NamedTuple):
    """How one attempt ended: its report, the interrupt to raise once it is recorded, and
    the exception that failed it (what a retry decides on)."""

    report: reports.RunReport
    interrupt: BaseException | None = None
    error: BaseException | None = None
    #: What the results journal gets once the claim is released (None: nothing).
    journaled: _Journaled | None = None


class _Journaled(NamedTuple):
    """A final record as written, for its results-journal line (:mod:`xprun.journal`):
    ``run.json``'s signature, read while the claim was held, and what the line holds."""

    record_signature: list[int]
    record: dict[str, Any]
    head_json: str | None
    config_json: str | None
    outcome_json: str | None

    def append(self, run: RunSpec, run_dir: str) -> None:
        folder = journal.folder_signature(run_dir)
        if folder is not None:
            signature = self.record_signature + folder
            journal.writer(run.folder).append(
                run.hash,
                signature,
                self.record,
                self.config_json,
                None,
                head_json=self.head_json,
                outcome_json=self.outcome_json or "null",
            )


#: Whether a failed attempt's exception is worth another attempt (``--retry-on``).
RetryFilter = Callable[[BaseException], bool]


@hookimpl(trylast=True)
def xprun_run_protocol(run: RunSpec, context: RunContext) -> reports.RunReport:
    return run_protocol(run, context)


def run_protocol(
    run: RunSpec, context: RunContext, retries: int = 0, retry_on: RetryFilter | None = None
) -> reports.RunReport:
    """The run protocol: skip check, then attempts until one does not fail or ``retries``
    failed attempts have been retried; the last attempt is recorded (reported).

    A failed attempt is retried only when ``retry_on`` (if given) accepts its exception;
    never an interrupt, a time limit, a lost claim, a full disk, a result that cannot be
    stored, or a session fixture's error (it is not set up again: the same error).  Each
    retry is a new attempt (``claim.<N>``, ``attempt`` in ``run.json``) in the same run
    directory, whose files are kept, as when a failed run is launched again; its record lists
    the failed attempts under ``retried``.
    """
    skipped = context.hook.xprun_run_skip(run=run, context=context)
    if skipped is not None:
        return context.record(skipped)
    retried: list[dict[str, Any]] = []
    while True:
        hold = SignalHold()
        again = False
        try:
            # An interrupt holds the signals from the moment it is raised (SignalHold.arm), not
            # from the moment the code below catches it: a second one in between would escape
            # the run unrecorded.
            hold.arm()
            try:
                attempt = _claimed(run, context, hold, retried)
            except store.UnusableRunDir as exc:
                attempt = _Attempt(reports.RunReport(run, Status.FAILED, longrepr=str(exc)))
            except IsADirectoryError as exc:  # a folder where a record file goes
                attempt = _Attempt(
                    reports.RunReport(run, Status.FAILED, longrepr=_folder_there(exc))
                )
            except OSError as exc:
                if not is_disk_full(exc):
                    raise
                attempt = _Attempt(_disk_full(run, exc))
            report, interrupt, error, journaled = attempt
            if journaled is not None:  # the claim is released: the folder's times are final
                journaled.append(run, os.path.join(run.folder, run.hash))
            again = (
                len(retried) < retries
                and interrupt is None
                and report.status == Status.FAILED
                and not report.shouldstop
                and error is not None
                and not isinstance(error, OutcomeError)
                and not context.session_fixtures.raised(error)
                and (retry_on is None or retry_on(error))
            )
            if not again:
                context.record(report)
        finally:
            hold.end()  # a signal held while recording is delivered here, the record whole
        if interrupt is not None:
            raise interrupt
        if not again:
            return report
        assert error is not None
        retried.append({"attempt": run.attempt, **error_fields(error)})


def _claimed(
    run: RunSpec, context: RunContext, hold: SignalHold, retried: list[dict[str, Any]]
) -> _Attempt:
    """Claim the run, then execute, recover or skip it; the claim is released in any case."""
    run_dir = run._dir = run.run_dir  # one Path per run, kept while it executes
    acquired = store.acquire(run_dir, context.clock, context.heartbeat)
    claim = acquired.claim
    if claim is None:
        return _Attempt(_elsewhere_report(context, run, acquired.owner))
    beat = ticker.every(context.heartbeat.interval, claim.touch)
    try:
        # Read under the claim: another process may have completed it meanwhile.
        record = acquired.record or {}
        status = record.get("status")
        if status == Status.COMPLETE and not context.force:
            return _Attempt(reports.RunReport(run, Status.CACHED))
        if status in (Status.RUNNING, Status.INTERRUPTED) and _returned(run):
            return _Attempt(_recover(run, record, claim))
        run.attempt = claim.attempt
        return _execute(
            run, context, record, claim, hold, new=acquired.new, retried=retried, run_dir=run_dir
        )
    finally:
        hold.hold()  # from here until the report is logged, the record is being finished
        beat.cancel()
        claim.release()
        run._dir = None  # no Path kept per run once it ended (RunSpec.run_dir)


@hookimpl
def xprun_unconfigure(config: Config) -> None:
    journal.close_all()  # the session's results-journal files
    disarm()  # the signal handlers armed holds stood in front of, back (SignalHold.arm)


@hookimpl(trylast=True)
def xprun_run_skip(run: RunSpec, context: RunContext) -> reports.RunReport | None:
    """The report of a run that must not start here: complete (cached, unless ``--force``)
    or running elsewhere (a live claim).  None when it should run."""
    run_dir = os.path.join(run.folder, run.hash)  # run.run_dir, without a Path per run
    state = store.read_state(run_dir, context.clock, context.heartbeat)
    if state.complete and not context.force:
        return reports.RunReport(run, Status.CACHED)
    if state.status == Status.RUNNING and state.owner is not None:
        return _elsewhere_report(context, run, state.owner)
    return None


def _elsewhere_report(
    context: RunContext, run: RunSpec, owner: store.ClaimInfo | None
) -> reports.RunReport:
    where = owner.describe(context.clock) if owner else "another process"
    return reports.RunReport(run, Status.ELSEWHERE, longrepr=f"running elsewhere: {where}")


def _lost_report(run: RunSpec, claim: store.Claim, what: str) -> reports.RunReport:
    claims = store.list_claims(run.run_dir)
    failed = claim.heartbeat_error
    if failed is not None and (not claims or claims[-1].owner.get("token") == claim.token):
        note = (  # not taken over (yet): the heartbeat is what failed, not another launcher
            f"lost claim: the heartbeat of attempt {claim.attempt} of this run could not be "
            f"written ({failed}), so another launcher could take the run over at any moment; "
            f"{what} was not recorded"
        )
        return reports.RunReport(run, Status.LOST, longrepr=note)
    owner = "another launcher"
    if claims:
        info = claims[-1].owner
        owner = (
            f"attempt {claims[-1].attempt} (pid {info.get('pid', '?')} on {info.get('host', '?')})"
        )
    note = (
        f"lost claim: attempt {claim.attempt} of this run was taken over by {owner} while this "
        f"process was paused or could not write its heartbeat; {what} was not recorded, so as "
        "not to overwrite the new owner's run"
    )
    return reports.RunReport(run, Status.LOST, longrepr=note)


def _disk_full(run: RunSpec, exc: OSError) -> reports.RunReport:
    """A full disk: this run is reported failed, and no further run starts (the report's
    ``shouldstop`` tells the session)."""
    message = store.disk_full_message(run.run_dir, exc)
    return reports.RunReport(
        run, Status.FAILED, longrepr=message, shouldstop=f"stopped launching runs: {message}"
    )


def _folder_there(exc: IsADirectoryError) -> str:
    """What a run whose record cannot be written over a folder reports (only it fails)."""
    where = exc.filename2 or exc.filename
    return (
        f"cannot write {where}: a folder stands where xprun writes the run's file; "
        "remove or rename it, then launch again"
    )


def _disk_full_ok(write: Callable[[], None]) -> OSError | None:
    """Run ``write``; return the error if the disk was full (any other error raises)."""
    try:
        write()
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        return exc
    return None


def _returned(run: RunSpec) -> bool:
    return (run.run_dir / store.OUTCOME_JSON).is_file()


def _recover(run: RunSpec, record: dict[str, Any], claim: store.Claim) -> reports.RunReport:
    """The last attempt returned (its outcome is saved) but its final record says otherwise:
    the process died, or (xprun before format 1.1) a signal during teardown recorded it
    interrupted.  Its result stands: record it as complete rather than run it again.
    """
    run.attempt = int(record.get("attempt", 1))
    if not claim.holds():
        return _lost_report(run, claim, "the recovered record")
    ended = (run.run_dir / store.OUTCOME_JSON).stat().st_mtime
    final = final_record(record, Status.COMPLETE, ended, None, record.get("packages", {}))
    final.pop("error", None)
    final["recovered"] = True
    store.write_json_atomic(run.run_dir / store.RUN_JSON, final, durable=True)
    store.mark_changed(run.run_dir)  # it may have read interrupted, a settled status
    note = "the experiment had returned; its final record was written after a crash"
    return reports.RunReport(run, Status.COMPLETE, longrepr=note)


def _set_aside(run_dir: Path, previous: dict[str, Any]) -> Path:
    """``--force`` on a complete run: move the replaced attempt's files to
    ``previous/<attempt>/`` so that nothing of it mixes into the new one (metrics, logs,
    checkpoints, artifacts).  Its outcome moves last, by ``_clear_outcome``, once the new
    record says ``running``: until then the run still reads complete, with its outcome."""
    aside = run_dir / PREVIOUS_DIR / str(previous.get("attempt", 0))
    # A forced rerun of this attempt that died before its own record has already set it
    # aside (the run still reads complete): finish that set-aside, replacing nothing in it.
    aside.mkdir(parents=True, exist_ok=True)
    if not (aside / store.RUN_JSON).exists():
        store.write_json_atomic(aside / store.RUN_JSON, previous)
    for entry in os.scandir(run_dir):
        name = entry.name
        if name in _KEPT or name == store.OUTCOME_JSON or name.startswith(store.CLAIM_PREFIX):
            continue
        target = aside / name
        if target.exists() or target.is_symlink():
            # Written again by the attempt that died before it ran the experiment (such as
            # config.yaml): the set-aside copy is the replaced attempt's own.
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            continue
        os.replace(entry.path, target)
    return aside


def _has_record_hooks(hook: Any) -> bool:
    """Whether any plugin adds fields to run.json: a hook call per run costs microseconds
    that the CPU path (issue 11) does not spend when nobody listens."""
    return bool(hook.xprun_run_record.get_hookimpls())


def _clear_outcome(run_dir: Path, aside: Path | None) -> None:
    """The outcome and traceback of an earlier attempt would lie about this one."""
    for name in (store.OUTCOME_JSON, OUTCOME_FALLBACK, "error.txt"):
        path = run_dir / name
        if aside is not None and path.exists():
            os.replace(path, aside / name)
        else:
            path.unlink(missing_ok=True)


def _execute(
    run: RunSpec,
    context: RunContext,
    previous: dict[str, Any],
    claim: store.Claim,
    hold: SignalHold,
    new: bool = False,
    retried: list[dict[str, Any]] | None = None,
    run_dir: Path | None = None,
) -> _Attempt:
    hook = context.hook
    started = time.time()
    if run_dir is None:
        run_dir = run.run_dir
    forced = previous.get("status") == Status.COMPLETE and context.force
    aside = _set_aside(run_dir, previous) if forced else None
    config_text = write_config(run, run_dir)  # and as JSON, for the results journal
    extra = hook.xprun_run_record(run=run, context=context) if _has_record_hooks(hook) else None
    record = start_record(run, context.metadata, started, retried, extra, run_dir)
    if previous:
        _clear_outcome(run_dir, aside)
    if not new:  # a settled run may now be running again: the Reader's index must look
        store.mark_changed(run_dir)
    capture = RunCapture(run_dir, echo=context.capture == "no")
    run.request = FixtureRequest(
        run, run.experiment.fixtures, context.session_fixtures, new_run_dir=new
    )
    status = Status.COMPLETE
    error: BaseException | None = None  # what failed or interrupted the attempt
    teardown_error: BaseException | None = None
    hook_error: BaseException | None = None
    interrupt: BaseException | None = None  # re-raised once the run is recorded
    returned = False  # the outcome is saved: from here on the result is kept
    saved: str | None = None  # that outcome's text
    # Each phase's seconds, for the report (--durations, --report-log), as pytest's runner
    # times them: measured here, even when the phase raises.
    phases: dict[str, float] = {}
    capture.start()
    try:
        try:
            seed_everything(run.seed)
            began = perf_counter()
            try:
                hook.xprun_run_setup(run=run, context=context)
            finally:
                phases["setup"] = perf_counter() - began
            began = perf_counter()
            try:
                returned_value = hook.xprun_run_call(run=run, context=context)
            finally:
                phases["call"] = perf_counter() - began
            outcome = save_outcome(run_dir, returned_value)
            del returned_value
            hold.hold()  # a signal now would lose a result that exists: save it first
            hook.xprun_run_returned(run=run, context=context)
            if not claim.holds():
                raise _LostClaim
            saved = store.JSON.encode(outcome)  # its text, for the results journal too
            store.write_json_atomic(f"{run_dir}/{store.OUTCOME_JSON}", outcome, True, text=saved)
            returned = True
            hold.release()  # a signal received meanwhile is raised here, after the save
        except _LostClaim:
            status = Status.LOST
        except (*_INTERRUPTS, RunTimeout) as exc:
            timeout = isinstance(exc, RunTimeout)  # ends this run only, not the session
            if not timeout:
                interrupt = exc
            if returned:
                teardown_error = exc
            else:
                status, error = (Status.TIMEOUT if timeout else Status.INTERRUPTED), exc
                # A second Ctrl-C or SIGTERM must not cut the recording short: held until
                # the final record is written (they are delivered then).  Held already since
                # the interrupt was raised (arm()); not so after a time limit.
                hold.hold()
                try:
                    hook.xprun_run_interrupted(run=run, context=context, reason=exc)
                except Exception as exc2:  # recorded; the run is interrupted either way
                    hook_error = exc2
        except BaseException as exc:  # SystemExit too: a failed run, never an exit
            status, error = Status.FAILED, exc
        began = perf_counter()
        try:
            hook.xprun_run_teardown(run=run, context=context)
        except _INTERRUPTS as exc:
            interrupt = interrupt or exc
            teardown_error = teardown_error or exc
            if status == Status.FAILED:
                status, error = Status.INTERRUPTED, error
        except BaseException as exc:  # SystemExit too: recorded beside the status, never an exit
            teardown_error = teardown_error or exc
        finally:
            phases["teardown"] = perf_counter() - began
    finally:
        hold.hold()
        stdout, stderr = capture.stop()
        run.request = None
    if status == Status.LOST or not claim.holds():
        what = "its final record" if returned else "its outcome"
        return _Attempt(_lost_report(run, claim, what), interrupt)
    decided = hook.xprun_run_status(run=run, context=context, status=status, error=error)
    if decided is not None:
        status = Status(decided)
    whole = context.full_trace
    longrepr = _error_text(error, whole) if error is not None else ""
    teardown_text = _cut_traceback(teardown_error, whole) if teardown_error is not None else ""
    # A full disk while recording: keep going (the smaller record may still fit), then
    # report it; the run's own error stays the recorded one.
    full = next((e for e in (error, teardown_error) if e is not None and is_disk_full(e)), None)
    if error is not None or teardown_error is not None:
        text = longrepr + (f"error in fixture teardown:\n{teardown_text}" if teardown_text else "")
        full = _disk_full_ok(lambda: store.write_text_atomic(run_dir / "error.txt", text)) or full
    ended = time.time()
    final = final_record(record, status, ended, error, context.metadata.packages())
    if teardown_error is not None:
        final["teardown_error"] = error_fields(teardown_error)
    if hook_error is not None:
        final["interrupt_hook_error"] = error_fields(hook_error)
        sys.stderr.write(f"xprun: saving state on interrupt failed: {hook_error!r}\n")
    texts = record_texts(final)
    unrecorded = _disk_full_ok(
        lambda: store.write_json_atomic(
            f"{run_dir}/{store.RUN_JSON}", final, durable=True, text=texts.whole
        )
    )
    reported = status
    if unrecorded is not None:
        full, reported = unrecorded, Status.FAILED
        longrepr += "its final record could not be written (it reads as interrupted)\n"
    report = reports.RunReport(
        run,
        reported,
        duration=ended - started,
        longrepr=longrepr,
        stdout=stdout,
        stderr=stderr,
        teardown_error=teardown_text,
        phases=phases,
    )
    if full is not None:
        message = store.disk_full_message(run_dir, full)
        report.longrepr += message
        report.shouldstop = f"stopped launching runs: {message}"
    journaled = None
    if unrecorded is None and config_text is not None:
        kept = saved if status in _WITH_OUTCOME else None
        signature = journal.record_signature(str(run_dir))
        if signature is not None and (kept is not None or status not in _WITH_OUTCOME):
            journaled = _Journaled(signature, final, texts.head, config_text, kept)
    return _Attempt(report, interrupt, error, journaled)


#: The statuses whose row holds the outcome (the Reader reads ``outcome.json`` for them).
_WITH_OUTCOME = (Status.COMPLETE, Status.PRUNED)


def _error_text(error: BaseException, full: bool) -> str:
    """What a run's report and ``error.txt`` say about the exception that ended it: its
    traceback; only the message for a session fixture that failed earlier (its traceback is
    in the report of the run that set it up), for a time limit (the frame the timer happened
    to stop tells nothing) and for a result that cannot be stored (only xprun's frames),
    unless ``full``."""
    if not full and isinstance(error, SessionFixtureError | RunTimeout | OutcomeError):
        return f"{type(error).__name__}: {error}\n"
    return _cut_traceback(error, full)


@hookimpl(trylast=True)
def xprun_run_setup(run: RunSpec, context: RunContext) -> None:
    request = run.request
    assert request is not None
    for name in run.experiment.argnames:
        request.getfixturevalue(name)


@hookimpl(trylast=True)
def xprun_run_call(run: RunSpec, context: RunContext) -> Any:
    request = run.request
    assert request is not None
    kwargs = {name: request.getfixturevalue(name) for name in run.experiment.argnames}
    return run.experiment.func(**kwargs)


@hookimpl(trylast=True)
def xprun_run_teardown(run: RunSpec, context: RunContext) -> None:
    """Tear down every run-scoped fixture, newest first; raise the first error.

    A teardown that raises ``SystemExit`` (or another ``BaseException``) does not stop the
    others: each is finished, and an interrupt is raised after them all.
    """
    request = run.request
    if request is None:
        return
    errors: list[BaseException] = []
    while True:
        try:
            errors.extend(request.teardown())
            break
        except BaseException as exc:  # the generators left are finished on the next round
            errors.append(exc)
    interrupts = [e for e in errors if isinstance(e, _INTERRUPTS)]
    if interrupts or errors:
        raise (interrupts or errors)[0]
