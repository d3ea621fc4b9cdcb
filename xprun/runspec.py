"""One run of one experiment: its resolved config, identity and directory."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .collect import Experiment
    from .fixtures import FixtureRequest
    from .marks import Mark


@dataclass(eq=False, slots=True)  # slots: a launch may hold a million of them
class RunSpec:
    """A run as expanded: what it computes (config, params) and who it is (digest, dir)."""

    experiment: Experiment
    config: dict[str, Any]  # resolved, plain containers
    assignments: dict[str, Any]  # keys set by grids and overrides (for labels and -k)
    param_indices: dict[str, int]
    param_ids: dict[str, str]
    digest: str  # "xxh3_128:<hex>"
    folder: str  # the experiment's log folder: the run directory is folder/<hex>
    label: str = ""  # "[lr=0.1-optimizer=sgd]" when the experiment has several runs
    attempt: int = 0
    request: FixtureRequest | None = field(default=None, repr=False)
    # The experiment's marks, then those of the grid values it takes (xprun.param): how a
    # launch treats the run (-m, skip, xfail), never part of its identity.  One tuple is
    # shared by the runs that have the same marks.
    marks: tuple[Mark, ...] = field(default=(), repr=False)
    # Keys hashed as their ${now:...}/${oc.env:...}/${hydra:...} text, with the values they
    # resolved to for this run (run.json's resolved_at_run); None when there are none.
    volatile: dict[str, Any] | None = field(default=None, repr=False)
    # ``run_dir`` once asked while the run executes (the run protocol forgets it when the
    # attempt ends: a launch may hold a million runs, a Path each would be hundreds of MB).
    _dir: Path | None = field(default=None, init=False, repr=False)

    @property
    def hash(self) -> str:
        return self.digest.partition(":")[2]

    @property
    def run_dir(self) -> Path:
        """``folder/<hex>``, made when asked: a launch that finds its runs complete, or only
        lists them, never needs a ``Path`` per run (hundreds of bytes each at a million).
        The folder's ``Path`` is made once per folder (its parts parsed once), and the run's
        kept while it executes (the run protocol, its fixtures and plugins ask it often)."""
        found = self._dir
        if found is None:
            found = _folder_path(self.folder) / self.digest.partition(":")[2]
        return found

    @property
    def nodeid(self) -> str:
        return self.experiment.nodeid + self.label

    @property
    def seed(self) -> int:
        """The config's ``seed``: the one the hash covers (expansion refuses a non-integer)."""
        seed = self.config.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"the seed must be an integer, got {seed!r}")
        return seed


@dataclass(frozen=True)
class RunInfo:
    """The ``run`` fixture: the identity of the run in progress."""

    hash: str
    digest: str
    experiment: str
    nodeid: str
    attempt: int
    run_dir: Path
    params: dict[str, str]

    @classmethod
    def of(cls, run: RunSpec) -> RunInfo:
        return cls(
            hash=run.hash,
            digest=run.digest,
            experiment=run.experiment.name,
            nodeid=run.nodeid,
            attempt=run.attempt,
            run_dir=run.run_dir,
            params=dict(run.param_ids),
        )


@functools.lru_cache(maxsize=256)
def _folder_path(folder: str) -> Path:
    return Path(folder)
