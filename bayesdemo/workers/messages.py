"""The messages a page and its worker process send each other through their pipe (pickled): commands one way,
reports the other. Snapshots travel packed (SnapshotBatch): a few arrays per message, not three per snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bayesdemo.fitting.runner import Snapshot

# ---- page to training worker -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pause:
    """Page to worker: pause after the current slice and confirm with Paused."""


@dataclass(frozen=True)
class Resume:
    """Page to worker: train again (speed-cap credit and rate samples start afresh)."""


@dataclass(frozen=True)
class SetSpeed:
    """Page to worker: cap each fit at `steps_per_second` (0: unlimited)."""

    steps_per_second: float


@dataclass(frozen=True)
class Stop:
    """Page to worker: end the job; unfinished fits end as stopped with `reason`."""

    reason: str


Command = Pause | Resume | SetSpeed | Stop


# ---- training worker to page -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotBatch:
    """Snapshots of one fit packed into arrays, each with its place among all the fit's snapshots (0 = the first).

    One pickled array per field, whatever the count: unpickling three small arrays per snapshot cost the page's
    process about three times as much (bench/receive_cpu.py).
    """

    indices: np.ndarray  # (k,) int64, increasing: each snapshot's place in the fit's sequence of snapshots
    steps: np.ndarray  # (k,) int64
    seconds: np.ndarray  # (k,) float64
    losses: np.ndarray  # (k,) float64
    means: np.ndarray  # (k, 2) q's means
    sds: np.ndarray  # (k, 2) q's marginal sds
    covs: np.ndarray  # (k, 2, 2) q's covariances

    @classmethod
    def pack(cls, indexed: Sequence[tuple[int, Snapshot]]) -> SnapshotBatch:
        """The (place, snapshot) pairs, in order, as one batch (at least one pair)."""
        snapshots = [snapshot for _, snapshot in indexed]
        return cls(
            np.array([index for index, _ in indexed], dtype=np.int64),
            np.array([snapshot.step for snapshot in snapshots], dtype=np.int64),
            np.array([snapshot.seconds for snapshot in snapshots], dtype=np.float64),
            np.array([snapshot.loss for snapshot in snapshots], dtype=np.float64),
            np.stack([snapshot.mean for snapshot in snapshots]),
            np.stack([snapshot.sd for snapshot in snapshots]),
            np.stack([snapshot.cov for snapshot in snapshots]),
        )

    def unpack(self) -> list[tuple[int, Snapshot]]:
        """The (place, snapshot) pairs; each snapshot's arrays are read-only views of the batch's."""
        for array in (self.means, self.sds, self.covs):
            array.setflags(write=False)
        means, sds, covs = self.means, self.sds, self.covs
        return [
            (index, Snapshot(step, seconds, loss, means[row], sds[row], covs[row]))
            for row, (index, step, seconds, loss) in enumerate(
                zip(
                    self.indices.tolist(),
                    self.steps.tolist(),
                    self.seconds.tolist(),
                    self.losses.tolist(),
                    strict=True,
                )
            )
        ]

    @property
    def trained(self) -> bool:
        """True when a snapshot was taken after a training step."""
        return bool(self.steps.size) and int(self.steps.max()) > 0


@dataclass(frozen=True)
class FitProgress:
    """Where fit `index` stands, with the snapshots the page keeps that it has not been sent yet (and the latest)."""

    index: int  # which fit, in the job's order
    snapshots: SnapshotBatch | None  # new since this fit's last FitProgress; None when there are none
    status: str  # the runner's status
    message: str  # the runner's closing message ("" while running)
    steps_done: int
    seconds: float  # seconds spent inside the method's steps
    steps_per_second: float  # recent wall-clock rate


@dataclass(frozen=True)
class Progress:
    """Worker to page, at most every REPORT_INTERVAL_S (workers.child): each fit that changed since the last one."""

    fits: tuple[FitProgress, ...]


@dataclass(frozen=True)
class Paused:
    """Worker to page: the worker has paused."""


@dataclass(frozen=True)
class Ended:
    """Worker to page, its last message: the job ended in `state` ("finished" or "stopped") with `message`."""

    state: str
    message: str


Report = Progress | Paused | Ended


# ---- explore worker to page: its only message ------------------------------------------------------------------


@dataclass(frozen=True)
class Computed:
    """Worker to page, its only message when the computation returns: the value it returned."""

    value: object


@dataclass(frozen=True)
class Failed:
    """Worker to page, its only message when the computation raises: a sentence for the page."""

    message: str
