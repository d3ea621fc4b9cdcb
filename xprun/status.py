"""``xprun status``: where the submitted runs of a log directory are, in one queue query."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

from . import store
from .errors import ExitCode, UsageError
from .jobs import submissions
from .options import ArgumentParser
from .schedulers.batch import waiting
from .show import default_log_dir
from .states import Status

#: A submitted run without a directory whose jobs have all left the queue: nothing will
#: write it any more (removed with ``xprun rm``, or its job cancelled before it started).
MISSING = "missing"
#: One column per status a submitted run can be in; a run not started yet (``Status.NEW``)
#: is headed "queued", which is what it is while a job of its submission is in the queue.
COLUMNS = (Status.NEW, Status.RUNNING, Status.COMPLETE, Status.FAILED, Status.INTERRUPTED, MISSING)
_HEADERS: dict[str, str] = {Status.NEW: "queued"}
STATUS_PATIENCE = 10.0  # seconds

#: What the command covers, said in its help and when it finds nothing to report (a user of
#: ``-n 4`` or inline runs looks here first).
SCOPE = (
    "status covers runs submitted to a cluster scheduler (slurm, oar); for local runs use "
    "xprun show / xprun --collect-only"
)
DESCRIPTION = (
    "Where the submitted runs of a log directory are: their statuses, and the scheduler's "
    f"queue asked once. {SCOPE[0].upper()}{SCOPE[1:]}."
)


def make_parser() -> ArgumentParser:
    """``xprun status``'s parser (also read by shell completion)."""
    parser = ArgumentParser(prog="xprun status", description=DESCRIPTION)
    parser.add_argument(
        "log_dir",
        nargs="?",
        metavar="LOG_DIR",
        help="the log directory (default: the project's, from [tool.xprun])",
    )
    return parser


def main(argv: list[str]) -> int:
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
        log_dir = default_log_dir(args.log_dir)
        if not log_dir.is_dir():
            raise UsageError(f"log directory {log_dir} does not exist")
    except UsageError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return int(ExitCode.USAGE_ERROR)
    from .config import make_config

    config = make_config([], Path.cwd())
    clock = store.FsClock(log_dir)
    heartbeat = config.heartbeat
    by_scheduler: dict[str, list[dict]] = {}
    for submission in submissions(log_dir):
        by_scheduler.setdefault(submission["scheduler"], []).append(submission)
    if not by_scheduler:
        sys.stdout.write(f"no submissions to a cluster scheduler recorded in {log_dir}\n{SCOPE}\n")
        return int(ExitCode.OK)

    width = max(len(n) for n in by_scheduler) + 2
    headers = [_HEADERS.get(c, c) for c in COLUMNS]
    sys.stdout.write(f"{'scheduler':<{width}}" + "".join(f"{h:>12}" for h in headers) + "\n")
    for name, subs in by_scheduler.items():
        scheduler = config.hook.xprun_choose_scheduler(name=name, config=config)
        job_ids = [j for s in subs for j in s["job_ids"]]
        queue: dict[str, str] | None
        try:
            queue = _ask(scheduler, job_ids) if scheduler and job_ids else {}
        except UsageError as exc:
            sys.stderr.write(f"warning: cannot ask {name} about its jobs: {exc}\n")
            queue = None
        live = None if queue is None else {task.split("_")[0] for task in queue}
        latest: dict[str, dict] = {}  # run dir → the last submission that holds it
        for sub in subs:
            latest.update(dict.fromkeys(sub["runs"], sub))
        counts: Counter[str] = Counter()
        for run_dir, sub in latest.items():
            status: str = store.read_state(Path(run_dir), clock, heartbeat).status
            gone = live is not None and not live & set(sub["job_ids"])
            if status == Status.NEW and gone and not Path(run_dir).exists():
                status = MISSING
            counts[status] += 1
        sys.stdout.write(f"{name:<{width}}" + "".join(f"{counts[c]:>12}" for c in COLUMNS) + "\n")
        if queue is None:
            now = "unknown (the queue did not answer)"
        else:
            queued_tasks = sum(1 for s in queue.values() if waiting(s))
            now = (
                f"{queued_tasks} pending task{'s' * (queued_tasks != 1)}, "
                f"{len(queue) - queued_tasks} running"
            )
        sys.stdout.write(
            f"  {len(job_ids)} job{'s' * (len(job_ids) != 1)} submitted; in the queue now: {now}\n"
        )
    return int(ExitCode.OK)


def _ask(scheduler: Any, job_ids: list[str]) -> dict[str, str]:
    """The queue's answer, asked again for a few seconds if it does not answer at once
    (a command someone types should not hang for the launcher's full ``queue_timeout``)."""
    ask = getattr(scheduler, "ask_queue", None)
    if ask is None:  # a scheduler that is not a BatchScheduler
        return scheduler.queue_states(job_ids)
    return ask(job_ids, patience=STATUS_PATIENCE)
