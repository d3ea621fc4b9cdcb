"""The ``oar`` scheduler: ``oarsub`` array jobs with the same worker protocol.

One ``oarsub -S job.sh`` per submission: the script's ``#OAR`` directives carry the
resources and ``--array-param-file``, whose line ``i`` (the run index) becomes the task's
argument.  Jobs are ``idempotent`` with ``--checkpoint``: before the walltime OAR sends
SIGUSR2, the worker saves a checkpoint, marks the run interrupted and exits with code 99,
which makes OAR resubmit an idempotent job; it resumes from the checkpoint.  Job ids are read
from ``oarsub``'s ``OAR_JOB_ID=`` / ``OAR_ARRAY_ID=`` lines.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..hookimpl import hookimpl
from .batch import BatchScheduler, run_command

if TYPE_CHECKING:
    from ..config import Config

_JOB_ID = re.compile(r"^OAR_JOB_ID=(\d+)\s*$", re.MULTILINE)
_ARRAY_ID = re.compile(r"^OAR_ARRAY_ID=(\d+)\s*$", re.MULTILINE)


def parse_oarsub(output: str) -> tuple[str | None, list[str]]:
    """``(array id, job ids)`` from what ``oarsub`` printed (admission-rule lines ignored)."""
    job_ids = _JOB_ID.findall(output)
    array = _ARRAY_ID.search(output)
    if not job_ids:
        raise ValueError(f"oarsub printed no OAR_JOB_ID: {output.strip()!r}")
    return (array.group(1) if array else None), job_ids


def _walltime(text: str) -> str:
    """SLURM-style times (``1-02:00:00``, ``90``) to OAR's ``hour:mn:sec``."""
    days, _, rest = text.rpartition("-") if "-" in text else ("", "", text)
    parts = [int(p) for p in rest.split(":")]
    if len(parts) == 1:
        hours, minutes, seconds = 0, parts[0], 0
    elif len(parts) == 2:
        hours, minutes, seconds = parts[0], parts[1], 0
    else:
        hours, minutes, seconds = parts
    hours += 24 * int(days or 0)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


class OarScheduler(BatchScheduler):
    name = "oar"
    defaults: dict[str, Any] = {
        "checkpoint_seconds": 120,
        "oarsub_args": [],
        "python": None,
        "poll_seconds": 5.0,
        "project": None,
    }

    def job_script(self, job_dir: Path, spec: Path, resources: dict[str, Any], name: str) -> str:
        settings = self.settings
        resource = "/nodes=1"
        if resources.get("cpus"):
            resource += f"/core={int(resources['cpus'])}"
        if resources.get("gpus"):
            resource = f"/nodes=1/gpu={int(resources['gpus'])}"
        if resources.get("time"):
            resource += f",walltime={_walltime(str(resources['time']))}"
        lines = [
            "#!/bin/sh",
            f"#OAR -n {name}",
            f"#OAR -l {resource}",
            f"#OAR --array-param-file {job_dir / 'params.txt'}",
            f"#OAR -O {job_dir}/oar-%jobid%.out",
            f"#OAR -E {job_dir}/oar-%jobid%.err",
            "#OAR -t idempotent",
            f"#OAR --checkpoint {int(settings['checkpoint_seconds'])}",
        ]
        if resources.get("partition"):
            lines.append(f"#OAR -q {resources['partition']}")
        if settings.get("project"):
            lines.append(f"#OAR --project {settings['project']}")
        lines += [f"#OAR {extra}" for extra in resources.get("extra", [])]
        lines.append(self.worker_command(spec, '--index "$1"'))
        return "\n".join(lines) + "\n"

    def oarsub_command(self, script: Path) -> list[str]:
        return [
            "oarsub",
            *[str(a) for a in self.settings.get("oarsub_args") or []],
            "-S",
            str(script),
        ]

    def submit(
        self, job_dir: Path, spec: Path, count: int, resources: dict[str, Any], name: str
    ) -> list[str]:
        (job_dir / "params.txt").write_text("".join(f"{i}\n" for i in range(count)))
        script = self.write_script(
            job_dir / "job.sh", self.job_script(job_dir, spec, resources, name)
        )
        _, job_ids = parse_oarsub(run_command(self.oarsub_command(script), "OAR"))
        return job_ids

    def queue_states(self, job_ids: list[str]) -> dict[str, str]:
        if not job_ids:
            return {}
        args = ["oarstat", "-f", "-J", *[a for j in job_ids for a in ("-j", j)]]
        data = json.loads(run_command(args, "OAR") or "{}")
        running = {"Running", "Launching", "toLaunch", "Finishing", "Suspended", "Resuming"}
        states = {}
        for job_id, info in data.items():
            state = info.get("state", "")
            if state in ("Waiting", "Hold", "toAckReservation"):
                states[job_id] = "PENDING"
            elif state in running:
                states[job_id] = "RUNNING"
        return states


@hookimpl(trylast=True)
def xprun_choose_scheduler(name: str, config: Config) -> BatchScheduler | None:
    return OarScheduler.choose(name, config)
