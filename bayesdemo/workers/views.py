"""What the page reads of a job: immutable views of it and its fits, and the thinning of each fit's snapshots.

Pure: no processes, threads or pipes here. Each fit keeps at most `cap` snapshots in the page (MAX_SNAPSHOTS,
workers.jobs): past that, every other one is dropped and only every 2nd, 4th, ... new one is kept (the first and the
latest are always shown). The worker runs the same rule (SnapshotFilter) and sends only the snapshots the page
needs, and the latest, so a fast fit's thousands of snapshots per second are never pickled only to be dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from bayesdemo.core.exact import ExactPosterior
from bayesdemo.fitting.metrics import Convergence, convergence, run_status_text, target_for
from bayesdemo.fitting.runner import Snapshot
from bayesdemo.methods import FitConfig

JOB_STATES = ("ready", "queued", "running", "paused", "finished", "stopped")
ACTIVE_STATES = ("queued", "running", "paused")  # a job in these states may still change (and can be stopped)
FINISHED_STATUSES = ("done", "stopped", "diverged", "timeout")


@dataclass(frozen=True)
class FitView:
    """One fit as the page sees it at one moment: its settings, snapshots so far, status and speed."""

    label: str  # unique name of the fit within its job (legend entry)
    config: FitConfig  # how it is fitted
    snapshots: tuple[Snapshot, ...]  # snapshots so far, thinned past MAX_SNAPSHOTS (first and latest kept; finite)
    status: str  # the runner's status: ready, running, done, stopped, diverged, timeout
    message: str  # the runner's closing message (divergence advice included); "" while running
    steps_done: int  # optimisation steps taken
    total_steps: int  # steps the fit will take if nothing stops it
    seconds: float  # seconds spent inside the method's steps
    steps_per_second: float  # recent wall-clock training rate of this fit

    @property
    def last(self) -> Snapshot | None:
        """The latest snapshot, or None before the first."""
        return self.snapshots[-1] if self.snapshots else None

    @property
    def fraction_done(self) -> float:
        """steps_done / total_steps, in [0, 1]."""
        return min(1.0, self.steps_done / self.total_steps)

    @property
    def finished(self) -> bool:
        """True once the fit has ended for any reason."""
        return self.status in FINISHED_STATUSES

    def convergence(self, exact: ExactPosterior, least_squares: np.ndarray) -> Convergence:
        """Where the fit stands against its target (metrics.convergence on its snapshots; docs/MATH.md, Convergence
        rule)."""
        return convergence(self.snapshots, target_for(self.config, exact, least_squares), exact)

    def status_text(self, exact: ExactPosterior, least_squares: np.ndarray) -> str:
        """The status with the fit's convergence, e.g. "Running · still moving" or "Diverged" (run_status_text)."""
        return run_status_text(self.status, self.convergence(exact, least_squares))


@dataclass(frozen=True)
class JobView:
    """A consistent copy of a whole job: its state, message, speed cap and every fit."""

    state: str  # one of JOB_STATES
    message: str  # why the job stopped, when it did ("" otherwise)
    max_steps_per_second: float  # speed cap per fit; 0 means unlimited
    fits: tuple[FitView, ...]
    queue_position: int | None = None  # 1 = next to start, while queued; None otherwise

    @property
    def active(self) -> bool:
        """True while the job may still change (queued, running or paused)."""
        return self.state in ACTIVE_STATES

    @property
    def steps_done(self) -> int:
        """Steps taken by all fits together."""
        return sum(fit.steps_done for fit in self.fits)

    @property
    def total_steps(self) -> int:
        """Steps all fits will take together."""
        return sum(fit.total_steps for fit in self.fits)

    @property
    def fraction_done(self) -> float:
        """Overall progress in [0, 1]."""
        return min(1.0, self.steps_done / self.total_steps)

    def traces(self) -> tuple[tuple[str, tuple[Snapshot, ...]], ...]:
        """(label, snapshots) per fit: the shape the figures take."""
        return tuple((fit.label, fit.snapshots) for fit in self.fits)


@dataclass(frozen=True)
class ThinnedSnapshots:
    """A fit's snapshots as the page keeps them: every `stride`-th one received, at most `cap` of them, and the latest.

    When a snapshot due to be kept would exceed `cap`, every other kept one is dropped and the stride doubles, so the
    kept ones stay evenly spaced and start with the first; the latest received is shown after them when not kept.
    `add` returns a new value and no value's `snapshots` ever change: values share the kept list only while it grows,
    and a reader of an older value slices it at that value's own `count` (thinning starts a new list).
    """

    cap: int  # most snapshots kept (the latest, when not among them, is shown in addition)
    kept: list[Snapshot] = field(default_factory=list, compare=False, repr=False)  # kept[:count] are this value's
    count: int = 0  # snapshots of `kept` that belong to this value
    tail: Snapshot | None = None  # the latest snapshot received, when thinning did not keep it
    stride: int = 1  # every stride-th snapshot received is kept
    received: int = 0  # snapshots received so far

    def add(self, new: Iterable[Snapshot]) -> ThinnedSnapshots:
        """These snapshots followed by `new`, thinned past `cap`."""
        return self.add_indexed(enumerate(new, start=self.received))

    def add_indexed(self, new: Iterable[tuple[int, Snapshot]]) -> ThinnedSnapshots:
        """These snapshots followed by `new`, (place, snapshot) pairs with increasing places, thinned past `cap`.

        Places left out stand for snapshots thinning would not keep (SnapshotFilter decides which, in the worker):
        the result is that of `add` on every snapshot, provided the last one received is among `new`.
        """
        kept, stride, received, tail = self.kept, self.stride, self.received, self.tail
        if len(kept) != self.count:  # a later value already grew the shared list: continue from a copy of ours
            kept = kept[: self.count]
        for index, snapshot in new:
            if index % stride == 0:
                if len(kept) >= self.cap:
                    # A new list, so a reader slicing the published one is undisturbed; keeps every 2*stride-th.
                    kept, stride = kept[::2], stride * 2
                if index % stride == 0:
                    kept.append(snapshot)
                    tail = None
                else:
                    tail = snapshot
            else:
                tail = snapshot
            received = index + 1
        return ThinnedSnapshots(self.cap, kept, len(kept), tail, stride, received)

    @property
    def snapshots(self) -> tuple[Snapshot, ...]:
        """The kept snapshots, then the latest when it is not among them (at most cap + 1, steps increasing)."""
        return tuple(self.kept[: self.count]) + ((self.tail,) if self.tail is not None else ())


@dataclass(frozen=True)
class FitState:
    """One fit's state in the page (published by one reference swap, read without locks)."""

    snapshots: ThinnedSnapshots
    status: str
    message: str
    steps_done: int
    seconds: float
    steps_per_second: float


class SnapshotFilter:
    """The worker's half of ThinnedSnapshots: which of a fit's snapshots, in order, the page's thinning needs to see.

    `sends()` is asked once per snapshot; it follows ThinnedSnapshots' rule on counts alone (how many are kept and the
    stride). The page needs a snapshot it keeps and one at which it thins the kept ones (every other one dropped, the
    stride doubled); one this says no to the page would drop, unless it is the latest, which the worker sends whatever
    this says. Past the cap that is about one snapshot per stride, and one more per doubling.
    """

    def __init__(self, cap: int):
        self.cap = cap
        self.stride = 1
        self.kept = 0  # snapshots the page keeps now
        self.received = 0  # snapshots asked about so far

    def sends(self) -> bool:
        """True when the page needs the next snapshot (counted as received either way)."""
        index, self.received = self.received, self.received + 1
        if index % self.stride:
            return False
        if self.kept >= self.cap:  # the page drops every other kept one here: ceil(kept / 2) stay
            self.kept, self.stride = (self.kept + 1) // 2, self.stride * 2
            if index % self.stride:
                return True
        self.kept += 1
        return True
