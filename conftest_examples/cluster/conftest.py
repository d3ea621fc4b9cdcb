"""Cluster settings carried by this folder: every experiment below runs with them.

`xprun` (or `xprun --scheduler slurm`) sends the runs as one SLURM job array executing from
a Git snapshot of the code; `xprun status` follows them; `xprun --wait` blocks until they end.
"""

import xprun
from xprun.schedulers.slurm import SlurmScheduler


@xprun.fixture(scope="session")
def scheduler():
    # Defaults for every experiment in this folder; @xprun.resources adds per-experiment needs.
    return SlurmScheduler(partition="debug", cpus=1, time="00:30:00", throttle=8, max_requeues=3)
