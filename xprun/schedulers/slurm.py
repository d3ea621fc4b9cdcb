"""The ``slurm`` scheduler: one ``sbatch`` job array per submission.

``sbatch --array=0-(N-1)%THROTTLE`` runs ``python -m xprun worker SPEC --array-offset K``
in each task; arrays larger than the cluster's ``MaxArraySize`` are split into several.
Jobs are submitted with ``--requeue`` and ``--signal=B:USR2@SECONDS``: before a time limit
or a preemption the worker saves a checkpoint, marks the run interrupted and requeues the
task (``scontrol requeue``, at most ``max_requeues`` times); the task resumes from the
checkpoint.  Settings come from ``[tool.xprun.slurm]`` or a ``scheduler`` fixture returning
``SlurmScheduler(...)``; per-experiment ``@xprun.resources`` are merged over them.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..hookimpl import hookimpl
from .batch import BatchScheduler, run_command

if TYPE_CHECKING:
    from ..config import Config

_MAX_ARRAY_SIZE: dict[str, int] = {}


def max_array_size() -> int:
    """The cluster's MaxArraySize (array indices must stay below it); 1001 if unknown."""
    if "value" not in _MAX_ARRAY_SIZE:
        try:
            text = run_command(["scontrol", "show", "config"], "SLURM")
        except (UsageError, OSError, ValueError):  # no answer, or not text: the default
            text = ""
        value = 1001
        for line in text.splitlines():
            key, _, rest = line.partition("=")
            if key.strip() == "MaxArraySize" and rest.strip().isdigit():
                value = int(rest.strip())
        _MAX_ARRAY_SIZE["value"] = value
    return _MAX_ARRAY_SIZE["value"]


def parse_job_id(output: str) -> str:
    """``sbatch --parsable`` prints ``<job id>[;<cluster>]``."""
    text = output.strip().splitlines()[-1] if output.strip() else ""
    job_id = text.split(";", 1)[0].strip()
    if not job_id.isdigit():
        raise ValueError(f"sbatch printed no job id: {output!r}")
    return job_id


class SlurmScheduler(BatchScheduler):
    name = "slurm"
    defaults: dict[str, Any] = {
        "throttle": None,  # at most this many tasks of an array at once (%N)
        "signal_seconds": 120,  # USR2 this long before the time limit
        "max_requeues": 3,
        "sbatch_args": [],  # more sbatch options for every job
        "python": None,  # the interpreter on the nodes (default: this one)
        "poll_seconds": 2.0,
        "max_array_size": None,  # default: the cluster's MaxArraySize
    }

    def sbatch_command(
        self,
        job_dir: Path,
        script: Path,
        first: int,
        last: int,
        resources: dict[str, Any],
        name: str,
    ) -> list[str]:
        settings = self.settings
        array = f"{first}-{last}"
        if settings.get("throttle"):
            array += f"%{int(settings['throttle'])}"
        args = [
            "sbatch",
            "--parsable",
            f"--job-name={name}",
            f"--array={array}",
            f"--output={job_dir}/slurm-%A_%a.out",
            "--open-mode=append",
            "--requeue",
            f"--signal=B:USR2@{int(settings['signal_seconds'])}",
        ]
        if resources.get("partition"):
            args.append(f"--partition={resources['partition']}")
        if resources.get("cpus"):
            args.append(f"--cpus-per-task={resources['cpus']}")
        if resources.get("gpus"):
            args.append(f"--gres=gpu:{resources['gpus']}")
        if resources.get("mem"):
            args.append(f"--mem={resources['mem']}")
        if resources.get("time"):
            args.append(f"--time={resources['time']}")
        args += [str(a) for a in settings.get("sbatch_args") or []]
        args += [str(a) for a in resources.get("extra", [])]
        args.append(str(script))
        return args

    def job_script(self, spec: Path, offset: int) -> str:
        return (
            "#!/bin/sh\n"
            f"# xprun: one task of a job array; runs {shlex.quote(str(spec))} from index {offset}\n"
            + self.worker_command(spec, f"--array-offset {offset}")
            + "\n"
        )

    def _chunk(self) -> int:
        """Runs per array: indices 0 .. limit-1."""
        return max(1, int(self.settings.get("max_array_size") or max_array_size()))

    def submit(
        self, job_dir: Path, spec: Path, count: int, resources: dict[str, Any], name: str
    ) -> list[str]:
        chunk = self._chunk()
        job_ids = []
        for offset in range(0, count, chunk):
            size = min(chunk, count - offset)
            script = self.write_script(job_dir / f"job-{offset}.sh", self.job_script(spec, offset))
            args = self.sbatch_command(job_dir, script, 0, size - 1, resources, name)
            job_ids.append(parse_job_id(run_command(args, "SLURM")))
        return job_ids

    def tasks(self, job_ids: list[str], count: int) -> list[dict[str, Any]]:
        """Run ``i`` is task ``i % chunk`` of array ``i // chunk``, as :meth:`submit` split."""
        chunk = self._chunk()
        placed = []
        for i in range(count):
            job, index = job_ids[i // chunk], i % chunk
            placed.append({"job_id": job, "index": index, "task_id": f"{job}_{index}"})
        return placed

    def queue_states(self, job_ids: list[str]) -> dict[str, str]:
        if not job_ids:
            return {}
        try:
            out = run_command(
                ["squeue", "-h", "-r", "-j", ",".join(job_ids), "-o", "%i %T"], "SLURM"
            )
        except UsageError as exc:
            if "Invalid job id specified" in str(exc):
                return {}  # every job asked about has ended and left the queue
            raise
        states = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] not in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"):
                states[parts[0]] = parts[1]
        return states


@hookimpl(trylast=True)
def xprun_choose_scheduler(name: str, config: Config) -> BatchScheduler | None:
    return SlurmScheduler.choose(name, config)
