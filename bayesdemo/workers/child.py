"""What runs in a worker process: the training loop of a Job and the one computation of an ExploreJob.

A training worker trains its fits round-robin, SLICE_S of training each, reads the page's commands between slices,
and reports at most every REPORT_INTERVAL_S in one Progress message for all its fits: only the snapshots the page's
thinning keeps (views.SnapshotFilter) and the latest, packed into arrays. The page's process pays for every message
and every snapshot it unpickles, so this is what keeps receiving cheap beside the page's redraws (bench/receive_cpu.py).
Every worker caps its own address space at start (limit_memory), so a fit beyond every estimate fails with a message
here, not in the server.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection

from bayesdemo.core.data import Dataset
from bayesdemo.core.priors import Model
from bayesdemo.fitting.budget import size_text
from bayesdemo.fitting.metrics import DEFAULT_WINDOW
from bayesdemo.fitting.runner import Run, RunConfig, Snapshot, fit_run, is_out_of_memory
from bayesdemo.methods import FitConfig
from bayesdemo.workers.messages import (
    Command,
    Computed,
    Ended,
    Failed,
    FitProgress,
    Pause,
    Paused,
    Progress,
    Report,
    Resume,
    SetSpeed,
    SnapshotBatch,
    Stop,
)
from bayesdemo.workers.views import SnapshotFilter

EXPLORE_ALARM_GRACE_S = 5  # an explore worker ends itself this long after its time limit, should the page be gone
SLICE_S = 0.02  # training time given to one fit before the worker moves on (and reads its messages)
RATE_WINDOW_S = 1.0  # steps per second are measured over about this much recent wall time
MAX_BURST_S = 0.1  # a speed-capped fit may catch up at most this much lost time at once
# Reports go out at most this often (and at once when a fit ends or the job pauses): half the page's live redraw
# interval (0.2 s), so a redraw shows snapshots at most 0.1 s older than a report per slice would; per slice, a fast
# fit sent 50 messages a second.
REPORT_INTERVAL_S = 0.1


def duration_words(seconds: float) -> str:
    """A limit in minutes when it is whole minutes ("10 minutes"), else in seconds ("0.5 s")."""
    minutes = seconds / 60.0
    if seconds >= 60 and minutes == int(minutes):
        return f"{int(minutes)} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} s"


class _Fit:
    """Worker-side state of one fit: its run, speed-cap credit, recent (time, steps) samples, snapshots sent."""

    def __init__(self, run: Run, max_snapshots: int = 2000):
        self.run = run
        self.kept = math.ceil(DEFAULT_WINDOW / run.config.snapshot_every) + 1 if run.until is not None else 1
        self.credit = 0.0
        self.samples: deque[tuple[float, int]] = deque()
        self.sent = 0  # run.snapshots[:sent] have been looked at by `collect`
        self.thinning = SnapshotFilter(max_snapshots)  # which snapshots the page keeps (views.ThinnedSnapshots)
        self.pending: list[tuple[int, Snapshot]] = []  # (place, snapshot) the page needs, not sent yet
        self.latest: tuple[int, Snapshot] | None = None  # the latest snapshot when the page does not need it
        self.reported: tuple[str, int] | None = None  # (status, steps done) at the last report

    def take_steps(self, max_steps: float, max_seconds: float) -> None:
        """Train up to `max_steps` steps for at most about `max_seconds`; always lets a completed run finish."""
        iterator = iter(self.run)
        first = self.run.steps_done
        deadline = time.perf_counter() + max_seconds
        while not self.run.finished:
            complete = self.run.steps_done >= self.run.total_steps
            if not complete and self.run.steps_done - first >= max_steps:
                break
            next(iterator, None)
            if not complete and time.perf_counter() >= deadline:
                break
        self.credit -= self.run.steps_done - first

    def rate(self, now: float) -> float:
        """Steps per second over the recent window (0 once finished)."""
        run = self.run
        self.samples.append((now, run.steps_done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= RATE_WINDOW_S:
            self.samples.popleft()
        oldest_time, oldest_steps = self.samples[0]
        elapsed = now - oldest_time
        if run.finished or elapsed <= 0:
            return 0.0
        return (run.steps_done - oldest_steps) / elapsed

    def collect(self) -> None:
        """Sort the snapshots taken since the last call into those the page needs and the latest; forget the rest."""
        run = self.run
        for snapshot in run.snapshots[self.sent :]:
            place = self.thinning.received
            if self.thinning.sends():
                self.pending.append((place, snapshot))
                self.latest = None
            else:
                self.latest = (place, snapshot)
        # The page keeps the record; the worker keeps the latest (Run.last) and, for "until at target", the window.
        del run.snapshots[: -self.kept]
        self.sent = len(run.snapshots)

    def report(self, index: int, always: bool = False) -> FitProgress | None:
        """Fit `index`'s progress since its last report (None when nothing changed, unless `always`): the new
        snapshots the page keeps and the latest, status, message, steps, seconds, rate."""
        self.collect()
        run = self.run
        rate = self.rate(time.perf_counter())
        now = (run.status, run.steps_done)
        if not always and not self.pending and self.latest is None and now == self.reported:
            return None
        self.reported = now
        indexed = self.pending + ([self.latest] if self.latest is not None else [])
        self.pending, self.latest = [], None
        batch = SnapshotBatch.pack(indexed) if indexed else None
        return FitProgress(index, batch, run.status, run.message, run.steps_done, run.seconds, rate)

    def end_stopped(self) -> None:
        """Stop the run so it records `stopped` (a run never started takes its first snapshot first)."""
        self.run.stop()
        iterator = iter(self.run)
        while not self.run.finished:
            next(iterator, None)


class _Worker:
    """The training loop of a worker process: round-robin slices, commands from the page between slices."""

    def __init__(
        self,
        connection: Connection,
        fits: list[_Fit],
        speed: float,
        max_training_s: float,
        max_pause_s: float,
    ):
        self.connection = connection
        self.fits = fits
        self.speed = speed
        self.max_training_s = max_training_s
        self.max_pause_s = max_pause_s
        self.trained_s = 0.0  # wall time spent training (pauses excluded)
        self.paused = False
        self.stop_reason: str | None = None
        self.reported_at = -math.inf  # perf_counter at the last Progress sent

    def handle(self, command: Command) -> None:
        """Apply one command from the page."""
        if isinstance(command, Pause):
            self.paused = True
        elif isinstance(command, Resume):
            self.paused = False
            for fit in self.fits:
                fit.samples.clear()
                fit.credit = 0.0
        elif isinstance(command, SetSpeed):
            self.speed = float(command.steps_per_second)
        elif isinstance(command, Stop):
            self.stop_reason = str(command.reason)

    def read_commands(self, wait_s: float = 0.0) -> None:
        """Apply every pending command, waiting up to `wait_s` for the first; a closed pipe means stop."""
        try:
            while self.connection.poll(wait_s):
                self.handle(self.connection.recv())
                wait_s = 0.0
        except (EOFError, OSError):
            self.stop_reason = "Stopped: the page went away."

    def send(self, message: Report) -> None:
        """Send a report to the page; a closed pipe means stop."""
        try:
            self.connection.send(message)
        except (BrokenPipeError, EOFError, OSError):
            self.stop_reason = "Stopped: the page went away."

    def report(self, always: bool = False) -> None:
        """Send one Progress with every fit that changed (every fit when `always`), unless nothing did."""
        changed = [fit.report(index, always) for index, fit in enumerate(self.fits)]
        fits = tuple(progress for progress in changed if progress is not None)
        self.reported_at = time.perf_counter()
        if fits:
            self.send(Progress(fits))

    def run(self) -> None:
        """Train until every fit ends or the page says stop; then report the end."""
        last_round = time.perf_counter()
        while self.stop_reason is None:
            self.read_commands()
            if self.paused:
                self.report()  # the page's view when paused holds every step taken
                self.send(Paused())
                paused_at = time.monotonic()
                while self.paused and self.stop_reason is None:
                    self.read_commands(wait_s=min(1.0, self.max_pause_s))
                    if self.paused and time.monotonic() - paused_at >= self.max_pause_s:
                        self.stop_reason = (
                            f"Stopped: paused for longer than {duration_words(self.max_pause_s)}, the longest a run "
                            "may wait paused. Press Run to start again."
                        )
                last_round = time.perf_counter()
                continue
            if self.trained_s >= self.max_training_s:
                self.stop_reason = (
                    f"Stopped: the run reached the server's limit of {duration_words(self.max_training_s)} of "
                    "training per run, so every student gets a turn. Lower Steps (or Samples per step) to finish "
                    "sooner."
                )
                break
            active = [(index, fit) for index, fit in enumerate(self.fits) if not fit.run.finished]
            if not active or self.stop_reason is not None:
                break
            now = time.perf_counter()
            elapsed, last_round = now - last_round, now
            self.trained_s += elapsed
            for _, fit in active:
                self.read_commands()
                if self.paused or self.stop_reason is not None:
                    break
                if self.speed > 0:
                    fit.credit = min(fit.credit + self.speed * elapsed, max(1.0, self.speed * MAX_BURST_S))
                    if fit.credit >= 1.0 or fit.run.steps_done >= fit.run.total_steps:
                        fit.take_steps(math.floor(fit.credit), SLICE_S)
                else:
                    fit.run.advance(SLICE_S)
                if fit.run.finished:  # a fit's end is shown at once
                    self.reported_at = -math.inf
            if time.perf_counter() - self.reported_at >= REPORT_INTERVAL_S:
                self.report()
            if self.speed > 0:
                missing = max(1.0 - max(fit.credit for _, fit in active), 0.0)
                self.read_commands(wait_s=min(missing / self.speed, 0.05))
        stopped = self.stop_reason is not None or any(not fit.run.finished for fit in self.fits)
        for fit in self.fits:
            if not fit.run.finished:
                fit.end_stopped()
        self.report(always=True)
        if stopped:
            self.send(Ended("stopped", self.stop_reason or "Stopped."))
        else:
            self.send(Ended("finished", "All fits finished."))


def limit_memory(headroom_bytes: int) -> int | None:
    """Cap this process's address space at its present size plus `headroom_bytes` (RLIMIT_AS); the cap, or None
    where the system has no such limit. Allocations beyond it fail with an error the runner reports."""
    try:
        import resource

        with open("/proc/self/statm") as statm:
            size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError):  # not Linux
        return None
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = size + headroom_bytes if hard == resource.RLIM_INFINITY else min(size + headroom_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    return cap


def _worker_main(
    connection: Connection,
    dataset: Dataset,
    model: Model,
    configs: tuple[FitConfig, ...],
    run_config: RunConfig,
    speed: float,
    limits: tuple[float, float, int],
    niceness: int = 0,
    max_snapshots: int = 2000,
) -> None:
    """Entry point of a worker process: build the fits, train them, report everything through `connection`.

    `limits`: (training seconds, pause seconds, address-space headroom in bytes) read by the page at the job's start;
    `niceness`: added to the process's CPU niceness before anything else (HEAVY_NICENESS for a heavy job);
    `max_snapshots`: the page's thinning cap (views.ThinnedSnapshots), so only snapshots it keeps are sent.
    """
    import torch

    if niceness:
        with contextlib.suppress(OSError):
            os.nice(niceness)
    torch.set_num_threads(1)  # one core per job: the page and the browser need the others
    max_training_s, max_pause_s, headroom_bytes = limits
    limit_memory(headroom_bytes)
    try:
        fits = [_Fit(fit_run(dataset, model, config, run_config), max_snapshots) for config in configs]
        _Worker(connection, fits, speed, max_training_s, max_pause_s).run()
    except Exception as error:  # report, never die silently: the page shows it
        if is_out_of_memory(error):
            message = (
                f"Stopped: the training process ran out of its memory limit ({size_text(headroom_bytes)} beyond its "
                "start). Lower Samples per step or use minibatches (Batch size), then run again."
            )
        else:
            message = f"Stopped: the training process failed ({str(error)[:200]})."
        with contextlib.suppress(OSError):
            connection.send(Ended("stopped", message))
    finally:
        connection.close()


def _explore_main(
    connection: Connection,
    function: Callable[..., object],
    arguments: tuple[object, ...],
    limits: tuple[float, int],
    niceness: int = 0,
) -> None:
    """Entry point of an explore worker: compute `function(*arguments)` and send Computed or Failed, then exit.

    `limits`: (wall seconds, address-space headroom in bytes). The page kills the process at the time limit; the
    alarm here ends it a little later should the page itself be gone. `niceness`: added to the process's CPU niceness
    first (HEAVY_NICENESS for a heavy computation).
    """
    import signal

    import torch

    if niceness:
        with contextlib.suppress(OSError):
            os.nice(niceness)
    torch.set_num_threads(1)
    max_seconds, headroom_bytes = limits
    limit_memory(headroom_bytes)
    if hasattr(signal, "alarm"):
        signal.alarm(math.ceil(max_seconds) + EXPLORE_ALARM_GRACE_S)  # default action: end the process
    report: Computed | Failed
    try:
        report = Computed(function(*arguments))
    except Exception as error:
        report = Failed(_failure_text(error, headroom_bytes))
    try:
        connection.send(report)
    except Exception as error:  # the value did not pickle, or pickling it ran out of memory
        with contextlib.suppress(Exception):
            connection.send(Failed(_failure_text(error, headroom_bytes)))
    finally:
        connection.close()


def _failure_text(error: BaseException, headroom_bytes: int) -> str:
    """What went wrong in an explore worker, as a sentence (the page appends what to lower)."""
    if is_out_of_memory(error):
        return f"Stopped: the computation ran out of its memory limit ({size_text(headroom_bytes)} beyond its start)."
    detail = " ".join(str(error).split())[:200].rstrip(".") or type(error).__name__
    return f"Stopped: the computation failed ({detail})."
