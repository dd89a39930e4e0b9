"""Runs fits off the UI: each job trains its fits round-robin in a worker process; the page reads `view()`.

Why a process and not a thread: training steps and the page's figure building are both mostly Python, so in one
process they share the GIL and each slows the other (measured: 4x fewer steps/s and half the redraws). A process
also keeps Pyro's process-wide state to itself. Workers fork from a forkserver that has imported torch and Pyro once,
so a job starts in tens of milliseconds. The page (any thread) only calls the public methods of `Job`; a listener
thread in the page's process receives snapshots and publishes them as immutable records, so `view()` never waits.
A job the page stops touching for HEARTBEAT_TIMEOUT_S stops itself: closing the tab stops that session's training.

Isolation: sessions never share training state. Each job has its own worker process, so Pyro's process-wide param
store and handler stack, torch's global seed and any crash stay inside one job; the worker seeds every fit from its
FitConfig, so a job reproduces a solo run of the same seed number for number whatever else is training, and the
process exits when the job ends. Pyro calls are additionally serialised inside the worker
(bayesdemo.methods.pyro_context).

Bounded resources: at most MAX_RUNNING_JOBS worker processes train at once (env BAYESDEMO_MAX_RUNNING_JOBS, default the
core count); a job started beyond that waits in a first-come queue (state "queued", JobView.queue_position) and starts
by itself when a slot frees. A paused job gives its slot to the next in line; its process keeps the fits' state,
and Resume takes a free slot or joins the back of the queue. A job trains at most MAX_TRAINING_S of wall time and
waits paused at most MAX_PAUSE_S, so no one holds a slot (or a worker's memory) for long. Each worker's address space
is capped at start (WORKER_MEMORY_HEADROOM_BYTES beyond its size): a fit beyond every estimate fails in its worker
with a message and the slot comes back. A queued job the page stops touching leaves the queue. Each fit keeps at
most MAX_SNAPSHOTS snapshots in the page: past that, every other one is dropped and only every 2nd, 4th, ... new
one is kept (the first and the latest are always shown), and the worker forgets snapshots once sent, so memory per
job is bounded whatever the steps and snapshot_every.
A heavy job (estimated past HEAVY_JOB_S seconds of training) has a lane of its own beside those slots and trains at
the lowest CPU priority.

Explore computations (gradient noise, NUTS, fits with s learned, calibration, ...) run the same way: an ExploreJob
computes one pure, picklable function in a worker process that takes a slot like a fit's (a heavy one, the heavy
lane's) and waits in the same queue, under the same address-space headroom and MAX_TRAINING_S of wall time, and is
killed when the page cancels it or stops touching it; its value comes back whole, and a failure as a sentence. The
server's script thread never runs them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing
import os
import sys
import threading
import time
import types
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Protocol, cast

import numpy as np

from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import ExactPosterior
from bayesdemo.core.priors import Model
from bayesdemo.core.validation import ConfigError, check_range
from bayesdemo.fitting.budget import MEMORY_BUDGET_BYTES, fit_cost, fits_problem, size_text
from bayesdemo.fitting.metrics import DEFAULT_WINDOW, Convergence, convergence, run_status_text, target_for
from bayesdemo.fitting.runner import Run, RunConfig, Snapshot, fit_run, is_out_of_memory
from bayesdemo.methods import FitConfig, make_method

EXPLORE_ALARM_GRACE_S = 5  # an explore worker ends itself this long after its time limit, should the page be gone
HEARTBEAT_TIMEOUT_S = 30.0  # a job untouched this long stops itself (a page under heavy load can pause ~10 s)
SLICE_S = 0.02  # training time given to one fit before the worker moves on (and reads its messages)
RATE_WINDOW_S = 1.0  # steps per second are measured over about this much recent wall time
MAX_BURST_S = 0.1  # a speed-capped fit may catch up at most this much lost time at once
MAX_SPEED = 1e6  # largest accepted speed cap in steps per second
MAX_SNAPSHOTS = 2000  # snapshots kept per fit in the page; more are thinned evenly (see the module docstring)
JOB_STATES = ("ready", "queued", "running", "paused", "finished", "stopped")
ACTIVE_STATES = ("queued", "running", "paused")  # a job in these states may still change (and can be stopped)
FINISHED_STATUSES = ("done", "stopped", "diverged", "timeout")
# Imported once by the forkserver, so each worker starts with torch and every method ready: a worker's first steps
# import nothing more (tests/test_jobs.py). symbolic_shapes (with sympy) is what the full-covariance guide's first
# MultivariateNormal imports; torch._dynamo is not needed (the methods write their optimisers out), which saves about
# 1 s of the forkserver's start: a Run pressed in the first seconds after the server starts waited for it.
PRELOAD = [
    "bayesdemo.workers.jobs",  # the workers' entry point
    "torch",
    "torch.fx.experimental.symbolic_shapes",
    "bayesdemo.methods.bbb",
    "bayesdemo.methods.noise",
    "bayesdemo.methods.pyro_svi",
    "bayesdemo.workers.explore_budget",  # the explore computations an ExploreJob's worker runs
    "bayesdemo.references.mcmc",  # and the NUTS reference
]
_CONTEXT: multiprocessing.context.ForkServerContext | multiprocessing.context.SpawnContext
if "forkserver" in multiprocessing.get_all_start_methods():
    _CONTEXT = multiprocessing.get_context("forkserver")
    _CONTEXT.set_forkserver_preload(PRELOAD)
else:  # Windows: no forkserver; spawned workers import torch themselves (a few seconds per Run)
    _CONTEXT = multiprocessing.get_context("spawn")


_MAIN_SWAP_LOCK = threading.Lock()


def usable_cores() -> int:
    """CPU cores this process may run on (at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores)


def _max_running_jobs_from_environment() -> int:
    """BAYESDEMO_MAX_RUNNING_JOBS when it is a positive integer, else the number of usable cores."""
    text = os.environ.get("BAYESDEMO_MAX_RUNNING_JOBS", "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    return usable_cores()


MAX_RUNNING_JOBS = _max_running_jobs_from_environment()  # worker processes training at once; read at each start


def _seconds_from_environment(name: str, default_s: float) -> float:
    """The environment variable `name` as a positive number of seconds, else `default_s`."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default_s
    return value if math.isfinite(value) and value > 0 else default_s


# Training wall time per job (pauses excluded), env BAYESDEMO_MAX_TRAINING_S: a slot is never held for days.
MAX_TRAINING_S = _seconds_from_environment("BAYESDEMO_MAX_TRAINING_S", 600.0)
# A job paused (or waiting in the queue to resume) longer than this ends, env BAYESDEMO_MAX_PAUSE_S: its worker
# holds the fit's memory while it waits.
MAX_PAUSE_S = _seconds_from_environment("BAYESDEMO_MAX_PAUSE_S", 1800.0)
# Address space a worker may add to what it has at start (resource.RLIMIT_AS): twice the memory budget of one fit
# (budget.MEMORY_BUDGET_BYTES), so a fit beyond every estimate fails inside its worker, not the server.
WORKER_MEMORY_HEADROOM_BYTES = 2 * MEMORY_BUDGET_BYTES
# A job whose fits are estimated (budget.fit_cost, at full speed) to train longer than HEAVY_JOB_S is heavy: it takes a
# slot of its own lane, MAX_HEAVY_JOBS beside the MAX_RUNNING_JOBS others, and its worker runs at niceness
# HEAVY_NICENESS. So a class's default fits neither queue behind one student's largest fit nor share a core with it at
# equal priority; heavy jobs queue behind each other. Default fits are estimated at 0.6 to 5 s, Compare all at 14 s.
HEAVY_JOB_S = 60.0
MAX_HEAVY_JOBS = 1
HEAVY_NICENESS = 10  # beside a busy worker at niceness 0 on one core, a heavy worker gets about a tenth of it


def duration_words(seconds: float) -> str:
    """A limit in minutes when it is whole minutes ("10 minutes"), else in seconds ("0.5 s")."""
    minutes = seconds / 60.0
    if seconds >= 60 and minutes == int(minutes):
        return f"{int(minutes)} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} s"


def _start_without_main(process: multiprocessing.process.BaseProcess) -> None:
    """Start `process` with a file-less stand-in for __main__, so the worker does not re-run the page script.

    Under `streamlit run`, __main__ is app.py; multiprocessing would re-execute it in every worker (slow, and
    pointless: the worker's entry point lives in this module).
    """
    with _MAIN_SWAP_LOCK:
        main = sys.modules.get("__main__")
        stand_in = types.ModuleType("__main__")
        sys.modules["__main__"] = stand_in
        try:
            process.start()
        finally:
            if sys.modules.get("__main__") is stand_in and main is not None:
                sys.modules["__main__"] = main


def warm_up() -> None:
    """Start the forkserver (it imports torch and Pyro once) and, in the background, the server's one slow import.

    Both take seconds the first time; doing them when the page opens keeps them out of the first Run. Torch in the
    server's process (the explore views' fits, the reference computations) runs on one thread, as the workers do: its
    thread pool on a busy machine made work that takes 2 s on one thread take a minute.
    """
    import torch

    torch.set_num_threads(1)
    if _CONTEXT.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()
    global _warmed
    with _MAIN_SWAP_LOCK:
        if _warmed:
            return
        _warmed = True
    # Job() builds each method once to check it; a full-covariance guide's first MultivariateNormal imports this
    # (0.4 s). Not torch._dynamo (1.3 s), which only the explore views' L-BFGS needs (torch.optim imports it at its
    # first use): imported here, it delayed the forkserver, and once imported after the forkserver, a class pressing Run
    # during the import saw every page's updates stop for 34 s (one of two runs of 20 sessions).
    threading.Thread(
        target=__import__, args=("torch.fx.experimental.symbolic_shapes",), name="bayesdemo-warm-up", daemon=True
    ).start()


_warmed = False


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
        kept, stride, received, tail = self.kept, self.stride, self.received, self.tail
        if len(kept) != self.count:  # a later value already grew the shared list: continue from a copy of ours
            kept = kept[: self.count]
        for snapshot in new:
            if received % stride == 0:
                if len(kept) >= self.cap:
                    # A new list, so a reader slicing the published one is undisturbed; keeps every 2*stride-th.
                    kept, stride = kept[::2], stride * 2
                if received % stride == 0:
                    kept.append(snapshot)
                    tail = None
                else:
                    tail = snapshot
            else:
                tail = snapshot
            received += 1
        return ThinnedSnapshots(self.cap, kept, len(kept), tail, stride, received)

    @property
    def snapshots(self) -> tuple[Snapshot, ...]:
        """The kept snapshots, then the latest when it is not among them (at most cap + 1, steps increasing)."""
        return tuple(self.kept[: self.count]) + ((self.tail,) if self.tail is not None else ())


@dataclass(frozen=True)
class _FitState:
    """One fit's state in the page (published by one reference swap, read without locks)."""

    snapshots: ThinnedSnapshots
    status: str
    message: str
    steps_done: int
    seconds: float
    steps_per_second: float


# ---- messages between the page and its worker (pickled through the pipe) ------------------------------------------


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


@dataclass(frozen=True)
class Progress:
    """Worker to page: fit `index`'s snapshots since its last Progress, and where its run stands."""

    index: int  # which fit, in the job's order
    snapshots: tuple[Snapshot, ...]  # new since the last Progress of this fit
    status: str  # the runner's status
    message: str  # the runner's closing message ("" while running)
    steps_done: int
    seconds: float  # seconds spent inside the method's steps
    steps_per_second: float  # recent wall-clock rate


@dataclass(frozen=True)
class Paused:
    """Worker to page: the worker has paused."""


@dataclass(frozen=True)
class Ended:
    """Worker to page, its last message: the job ended in `state` ("finished" or "stopped") with `message`."""

    state: str
    message: str


Report = Progress | Paused | Ended


def unique_labels(configs: Sequence[FitConfig]) -> list[str]:
    """Each config's label, with ` #2`, ` #3`, ... appended to repeats so legends stay unambiguous."""
    seen: dict[str, int] = {}
    labels = []
    for config in configs:
        count = seen.get(config.label, 0) + 1
        seen[config.label] = count
        labels.append(config.label if count == 1 else f"{config.label} #{count}")
    return labels


def check_speed(steps_per_second: float) -> float:
    """A valid speed cap: 0 (unlimited) up to MAX_SPEED steps per second."""
    return check_range("max_steps_per_second", steps_per_second, 0.0, MAX_SPEED)


# ---- the worker process -----------------------------------------------------------------------------------------


class _Fit:
    """Worker-side state of one fit: its run, speed-cap credit, recent (time, steps) samples, snapshots sent."""

    def __init__(self, run: Run):
        self.run = run
        self.kept = math.ceil(DEFAULT_WINDOW / run.config.snapshot_every) + 1 if run.until is not None else 1
        self.credit = 0.0
        self.samples: deque[tuple[float, int]] = deque()
        self.sent = 0

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

    def report(self, index: int) -> Progress:
        """Fit `index`'s progress: new snapshots since the last report, status, message, steps, seconds, rate."""
        run = self.run
        new = run.snapshots[self.sent :]
        # The page keeps the record; the worker keeps the latest (Run.last) and, for "until at target", the window.
        del run.snapshots[: -self.kept]
        self.sent = len(run.snapshots)
        rate = self.rate(time.perf_counter())
        return Progress(index, tuple(new), run.status, run.message, run.steps_done, run.seconds, rate)

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
        max_training_s: float = MAX_TRAINING_S,
        max_pause_s: float = MAX_PAUSE_S,
    ):
        self.connection = connection
        self.fits = fits
        self.speed = speed
        self.max_training_s = max_training_s
        self.max_pause_s = max_pause_s
        self.trained_s = 0.0  # wall time spent training (pauses excluded)
        self.paused = False
        self.stop_reason: str | None = None

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

    def run(self) -> None:
        """Train until every fit ends or the page says stop; then report the end."""
        last_round = time.perf_counter()
        while self.stop_reason is None:
            self.read_commands()
            if self.paused:
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
            for index, fit in active:
                self.read_commands()
                if self.paused or self.stop_reason is not None:
                    break
                if self.speed > 0:
                    fit.credit = min(fit.credit + self.speed * elapsed, max(1.0, self.speed * MAX_BURST_S))
                    if fit.credit >= 1.0 or fit.run.steps_done >= fit.run.total_steps:
                        fit.take_steps(math.floor(fit.credit), SLICE_S)
                else:
                    fit.run.advance(SLICE_S)
                self.send(fit.report(index))
            if self.speed > 0:
                missing = max(1.0 - max(fit.credit for _, fit in active), 0.0)
                self.read_commands(wait_s=min(missing / self.speed, 0.05))
        stopped = self.stop_reason is not None or any(not fit.run.finished for fit in self.fits)
        for index, fit in enumerate(self.fits):
            if not fit.run.finished:
                fit.end_stopped()
            self.send(fit.report(index))
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
    limits: tuple[float, float, int] = (MAX_TRAINING_S, MAX_PAUSE_S, WORKER_MEMORY_HEADROOM_BYTES),
    niceness: int = 0,
) -> None:
    """Entry point of a worker process: build the fits, train them, report everything through `connection`.

    `limits`: (training seconds, pause seconds, address-space headroom in bytes) read by the page at the job's start;
    `niceness`: added to the process's CPU niceness before anything else (HEAVY_NICENESS for a heavy job).
    """
    import torch

    if niceness:
        with contextlib.suppress(OSError):
            os.nice(niceness)
    torch.set_num_threads(1)  # one core per job: the page and the browser need the others
    max_training_s, max_pause_s, headroom_bytes = limits
    limit_memory(headroom_bytes)
    try:
        fits = [_Fit(fit_run(dataset, model, config, run_config)) for config in configs]
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


# ---- the page side ------------------------------------------------------------------------------------------------


class Job:
    """Trains `fit_configs` on one dataset in a worker process; pause, resume, stop and re-speed from any thread."""

    def __init__(
        self,
        dataset: Dataset,
        model: Model,
        fit_configs: Sequence[FitConfig],
        snapshot_every: int = 10,
        max_steps_per_second: float = 0.0,
        heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S,
    ):
        if not fit_configs:
            raise ValueError("fit_configs must hold at least one FitConfig, got none")
        self.dataset = dataset
        self.model = model
        self.run_config = RunConfig(snapshot_every=snapshot_every)
        self.heartbeat_timeout_s = check_range("heartbeat_timeout_s", heartbeat_timeout_s, 0.0, 86_400.0, low_open=True)
        self._speed = check_speed(max_steps_per_second)
        # Build each method once here, on the caller's thread, so configuration errors surface where they can be shown.
        for config in fit_configs:
            make_method(dataset, model, config)
        problem = fits_problem(fit_configs, dataset.n)
        if problem is not None:  # refused before a process starts: one fit must not take the server's memory
            raise ConfigError("samples", problem)
        self._configs = tuple(fit_configs)
        self.heavy = sum(fit_cost(config, dataset.n).seconds for config in self._configs) > HEAVY_JOB_S
        self._scheduler = _HEAVY_SCHEDULER if self.heavy else _SCHEDULER  # its lane (see HEAVY_JOB_S)
        self._labels = tuple(unique_labels(fit_configs))
        self._progress = [_FitState(ThinnedSnapshots(MAX_SNAPSHOTS), "ready", "", 0, 0.0, 0.0) for _ in self._configs]
        self._state = "ready"
        self._message = ""
        self._lock = threading.Lock()  # guards sending on the pipe and state changes
        self._paused_ack = threading.Event()
        self._ended = threading.Event()
        self._trained = threading.Event()  # set at the first snapshot after a training step, or at the end
        self._last_touch = time.monotonic()
        self._connection: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._listener: threading.Thread | None = None
        self._holds_slot = False  # counted in the scheduler's running slots (a paused job gives its slot back)

    # ---- control, from any thread -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start training in a worker process (once), or queue it while MAX_RUNNING_JOBS others run."""
        with self._lock:
            if self._state != "ready":
                return
            self._last_touch = time.monotonic()
            self._state = "queued"
            admitted = self._scheduler.admit(self)
        if admitted:
            self._launch()

    def _take_slot(self) -> None:
        """Record that this job holds a slot (caller holds the lock)."""
        self._holds_slot = True

    def _drop_slot(self) -> bool:
        """Forget this job's slot (caller holds the lock); True if it held one, to release after the lock."""
        held, self._holds_slot = self._holds_slot, False
        return held

    def _launch(self) -> None:
        """Start the worker of a queued job given a slot, or resume its paused worker (a job stopped meanwhile hands
        the slot back)."""
        with self._lock:
            if self._state != "queued" or self._holds_slot:
                launched = False
            elif self._process is not None:  # paused, then queued to resume: its worker kept the fits' state
                self._take_slot()
                self._state = "running"
                self._last_touch = time.monotonic()
                self._send(Resume())
                launched = True
            else:
                try:
                    self._start_worker()
                    self._take_slot()
                    launched = True
                except OSError as error:  # out of processes or memory: the page shows it
                    self._end_unstarted(f"Stopped: could not start the training process ({error}).")
                    launched = False
        if not launched:
            self._scheduler.release()

    def _start_worker(self) -> None:
        """Start the worker process and the listener thread (caller holds the lock and a slot)."""
        ours, theirs = _CONTEXT.Pipe(duplex=True)
        limits = (MAX_TRAINING_S, MAX_PAUSE_S, WORKER_MEMORY_HEADROOM_BYTES)
        niceness = HEAVY_NICENESS if self.heavy else 0
        arguments = (theirs, self.dataset, self.model, self._configs, self.run_config, self._speed, limits, niceness)
        self._process = _CONTEXT.Process(target=_worker_main, args=arguments, name="bayesdemo-job", daemon=True)
        _start_without_main(self._process)
        theirs.close()
        self._connection = ours
        self._state = "running"
        self._last_touch = time.monotonic()
        self._listener = threading.Thread(target=self._listen, args=(ours,), name="bayesdemo-job-listener", daemon=True)
        self._listener.start()

    @property
    def queue_position(self) -> int | None:
        """1 for the next job to start, 2 after it, ...; None when not queued."""
        return self._scheduler.position(self) if self._state == "queued" else None

    def pause(self, wait_s: float = 1.0) -> None:
        """Pause after the current slice, giving the training slot to the next queued job; wait up to `wait_s` for
        the worker to confirm (also when already paused). The worker keeps the fits' state for MAX_PAUSE_S."""
        released = False
        with self._lock:
            if self._state not in ("running", "paused"):
                return
            if self._state == "running":
                self._paused_ack.clear()
                self._state = "paused"
                self._send(Pause())
                released = self._drop_slot()
        if released:
            self._scheduler.release()
        self._paused_ack.wait(wait_s)

    def resume(self) -> None:
        """Resume a paused job: at once when a slot is free, else at the back of the queue (state "queued")."""
        with self._lock:
            if self._state != "paused":
                return
            self._last_touch = time.monotonic()
            if self._scheduler.admit(self):
                self._take_slot()
                self._state = "running"
                self._send(Resume())
            else:
                self._state = "queued"

    def stop(self, reason: str = "Stopped.", wait_s: float = 2.0) -> None:
        """End the job (each unfinished fit ends as `stopped`, keeping its snapshots); waits up to `wait_s`."""
        with self._lock:
            if self._state in ("finished", "stopped"):
                return
            if self._state in ("ready", "queued"):
                if self._state == "queued":
                    self._scheduler.withdraw(self)
                if self._process is None:
                    self._end_unstarted(reason)
                    return
            self._send(Stop(reason))
        self._ended.wait(wait_s)

    def set_speed(self, steps_per_second: float) -> None:
        """Cap each fit at `steps_per_second` (0: unlimited); takes effect within one slice."""
        speed = check_speed(steps_per_second)
        with self._lock:
            if speed != self._speed:
                self._speed = speed
                if self._state in ("running", "paused"):
                    self._send(SetSpeed(speed))

    def touch(self) -> None:
        """Heartbeat from the page: the job stays alive while this keeps being called."""
        self._last_touch = time.monotonic()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the job to end (a queued job waits for its turn too); True if it has (or was never started)."""
        if self._state == "ready":
            return True
        return self._ended.wait(timeout)

    # ---- reading, from any thread --------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """The job's state, one of JOB_STATES."""
        return self._state

    @property
    def labels(self) -> tuple[str, ...]:
        """Each fit's unique label, in order."""
        return self._labels

    @property
    def configs(self) -> tuple[FitConfig, ...]:
        """Each fit's config, in order."""
        return self._configs

    def runs(self) -> tuple[tuple[FitConfig, FitView], ...]:
        """(config, fit) per fit; each FitView has a Run's `last`, `status`, `message`, `seconds`, `snapshots`."""
        return tuple(zip(self._configs, self.view().fits, strict=True))

    @property
    def pid(self) -> int | None:
        """The worker's process id once started."""
        return None if self._process is None else self._process.pid

    def wait_for_training(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for a fit's first snapshot after training (or the job's end); False on timeout."""
        return self._trained.wait(timeout_s)

    def view(self) -> JobView:
        """An immutable, consistent copy of the job and every fit, without waiting for training."""
        self._scheduler.drop_abandoned()
        state, message, speed = self._state, self._message, self._speed
        position = self._scheduler.position(self) if state == "queued" else None
        fits = []
        for index, (label, config) in enumerate(zip(self._labels, self._configs, strict=True)):
            progress = self._progress[index]
            fits.append(
                FitView(
                    label=label,
                    config=config,
                    snapshots=progress.snapshots.snapshots,
                    status=progress.status,
                    message=progress.message,
                    steps_done=progress.steps_done,
                    total_steps=config.step_count,
                    seconds=progress.seconds,
                    steps_per_second=progress.steps_per_second,
                )
            )
        return JobView(state, message, speed, tuple(fits), position)

    # ---- the listener thread -------------------------------------------------------------------------------------

    def _send(self, message: Command) -> None:
        """Send a command to the worker (caller holds the lock); a dead worker is noticed by the listener."""
        # Commands are sent only once the worker has started (running, paused, or stopping a started job).
        connection = cast(Connection, self._connection)
        with contextlib.suppress(OSError, EOFError):
            connection.send(message)

    def _heartbeat_lost(self) -> bool:
        """True when the page has not touched the job for longer than the timeout."""
        return time.monotonic() - self._last_touch > self.heartbeat_timeout_s

    def _listen(self, connection: Connection) -> None:
        """Receive the worker's reports on `connection` until it ends; stop it when the page's heartbeat is lost."""
        asked_to_stop = False
        try:
            while True:
                if not asked_to_stop and self._heartbeat_lost():
                    asked_to_stop = True
                    with self._lock:
                        timeout = self.heartbeat_timeout_s
                        self._send(Stop(f"Stopped: the page sent no heartbeat for {timeout:g} s (tab closed?)."))
                if not connection.poll(0.1):
                    continue
                message: Report = connection.recv()
                if isinstance(message, Progress):
                    self._receive_progress(message)
                elif isinstance(message, Paused):
                    self._paused_ack.set()
                elif isinstance(message, Ended):
                    self._finish(message.state, message.message)
                    return
        except (EOFError, OSError):
            self._finish("stopped", "Stopped: the training process ended unexpectedly.")
        finally:
            connection.close()
            if self._process is not None:
                self._process.join(timeout=5.0)

    def _receive_progress(self, progress: Progress) -> None:
        """Append new snapshots (thinned past MAX_SNAPSHOTS), then publish the fit's progress."""
        for snapshot in progress.snapshots:
            for array in (snapshot.mean, snapshot.sd, snapshot.cov):
                array.setflags(write=False)
        old = self._progress[progress.index]
        self._progress[progress.index] = _FitState(
            old.snapshots.add(progress.snapshots),
            progress.status,
            progress.message,
            progress.steps_done,
            progress.seconds,
            progress.steps_per_second,
        )
        if any(snapshot.step > 0 for snapshot in progress.snapshots):
            self._trained.set()

    def _finish(self, state: str, message: str) -> None:
        """Record the job's end."""
        with self._lock:
            if self._state == "queued":  # paused, then queued to resume, and ended meanwhile
                self._scheduler.withdraw(self)
            released = self._drop_slot()
            for index, progress in enumerate(self._progress):
                if progress.status not in FINISHED_STATUSES:
                    self._progress[index] = dataclasses.replace(
                        progress, status="stopped", message=message, steps_per_second=0.0
                    )
            self._state = state
            self._message = message
        self._paused_ack.set()
        self._ended.set()
        self._trained.set()
        if released:
            self._scheduler.release()

    def _end_unstarted(self, reason: str) -> None:
        """End a job that never started (caller holds the lock): every fit is stopped at step 0."""
        self._progress = [
            _FitState(ThinnedSnapshots(MAX_SNAPSHOTS), "stopped", reason, 0, 0.0, 0.0) for _ in self._configs
        ]
        self._state = "stopped"
        self._message = reason
        self._ended.set()


# ---- explore computations: one pure function per job, in a worker like a fit's ----------------------------------


@dataclass(frozen=True)
class Computed:
    """Worker to page, its only message when the computation returns: the value it returned."""

    value: object


@dataclass(frozen=True)
class Failed:
    """Worker to page, its only message when the computation raises: a sentence for the page."""

    message: str


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


class ExploreJob:
    """Computes `function(*arguments)` once in a worker process, admitted like a training Job: it counts against
    MAX_RUNNING_JOBS and waits in the same first-come queue, under the same memory headroom and MAX_TRAINING_S of
    wall time, and ends when the page stops touching it. `function` must be picklable (a module-level function) and
    pure; the page reads `state`, `result` and `message`, never waiting. One estimated (`estimated_s`, seconds of
    server CPU) past HEAVY_JOB_S is heavy, as a fit is: it waits for and takes the heavy lane, at HEAVY_NICENESS.
    `heartbeat_timeout_s` None: HEARTBEAT_TIMEOUT_S."""

    def __init__(
        self,
        function: Callable[..., object],
        arguments: Sequence[object],
        lower: str,
        heartbeat_timeout_s: float | None = None,
        estimated_s: float = 0.0,
    ):
        self.function = function
        self.arguments = tuple(arguments)
        self.lower = lower  # what the student can lower, said after a memory or time failure ("Samples per step")
        timeout_s = HEARTBEAT_TIMEOUT_S if heartbeat_timeout_s is None else heartbeat_timeout_s
        self.heartbeat_timeout_s = check_range("heartbeat_timeout_s", timeout_s, 0.0, 86_400.0, low_open=True)
        self.heavy = check_range("estimated_s", estimated_s, 0.0) > HEAVY_JOB_S
        self._scheduler = _HEAVY_SCHEDULER if self.heavy else _SCHEDULER  # its lane (see HEAVY_JOB_S)
        self._state = "ready"
        self._message = ""
        self._result: object = None
        self._lock = threading.Lock()
        self._ended = threading.Event()
        self._last_touch = time.monotonic()
        self._started_at: float | None = None  # when the worker started (monotonic)
        self._process: multiprocessing.process.BaseProcess | None = None
        self._holds_slot = False

    def start(self) -> None:
        """Start the computation in a worker process (once), or queue it while MAX_RUNNING_JOBS others run."""
        with self._lock:
            if self._state != "ready":
                return
            self._last_touch = time.monotonic()
            self._state = "queued"
            admitted = self._scheduler.admit(self)
        if admitted:
            self._launch()

    def _launch(self) -> None:
        """Start the worker of a queued computation given a slot (one stopped meanwhile hands the slot back)."""
        with self._lock:
            launched = self._state == "queued" and not self._holds_slot
            if launched:
                ours, theirs = _CONTEXT.Pipe(duplex=False)
                limits = (MAX_TRAINING_S, WORKER_MEMORY_HEADROOM_BYTES)
                self._process = _CONTEXT.Process(
                    target=_explore_main,
                    args=(theirs, self.function, self.arguments, limits, HEAVY_NICENESS if self.heavy else 0),
                    name="bayesdemo-explore",
                    daemon=True,
                )
                try:
                    _start_without_main(self._process)
                except OSError as error:  # out of processes or memory: the page shows it
                    launched = False
                    self._state = "stopped"
                    self._message = f"Stopped: could not start the computation's process ({error})."
                    self._ended.set()
                else:
                    theirs.close()
                    self._holds_slot = True
                    self._state = "running"
                    self._started_at = time.monotonic()
                    threading.Thread(
                        target=self._listen,
                        args=(ours, MAX_TRAINING_S),
                        name="bayesdemo-explore-listener",
                        daemon=True,
                    ).start()
        if not launched:
            self._scheduler.release()

    def stop(self, reason: str = "Cancelled.", wait_s: float = 2.0) -> None:
        """End the computation: a queued one leaves the queue, a running one's process is killed (it keeps no
        state worth saving); waits up to `wait_s` for the process to go."""
        with self._lock:
            if self._state in ("finished", "stopped"):
                return
            if self._state == "queued":
                self._scheduler.withdraw(self)
            process = self._process
        if process is not None:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                process.kill()
        self._finish("stopped", reason, None)
        if process is not None:
            with contextlib.suppress(AssertionError, ValueError):
                process.join(wait_s)

    def touch(self) -> None:
        """Heartbeat from the page: the computation stays alive while this keeps being called."""
        self._last_touch = time.monotonic()
        self._scheduler.drop_abandoned()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the computation to end (a queued one waits for its turn too); True if it has."""
        if self._state == "ready":
            return True
        return self._ended.wait(timeout)

    @property
    def state(self) -> str:
        """One of JOB_STATES (never "paused"): ready, queued, running, finished or stopped."""
        return self._state

    @property
    def active(self) -> bool:
        """True while queued or running."""
        return self._state in ACTIVE_STATES

    @property
    def result(self) -> object:
        """The function's value once finished; None before and when stopped."""
        return self._result

    @property
    def message(self) -> str:
        """Why the computation stopped, as a sentence for the page ("" unless stopped)."""
        return self._message

    @property
    def queue_position(self) -> int | None:
        """1 for the next job to start, 2 after it, ...; None when not queued."""
        return self._scheduler.position(self) if self._state == "queued" else None

    @property
    def seconds(self) -> float:
        """Seconds since the worker started (0 while queued)."""
        started = self._started_at
        return 0.0 if started is None else time.monotonic() - started

    @property
    def pid(self) -> int | None:
        """The worker's process id once started."""
        return None if self._process is None else self._process.pid

    def _heartbeat_lost(self) -> bool:
        """True when the page has not touched the computation for longer than the timeout."""
        return time.monotonic() - self._last_touch > self.heartbeat_timeout_s

    def _listen(self, connection: Connection, max_seconds: float) -> None:
        """Wait for the worker's one message; kill it at the time limit or when the page's heartbeat is lost."""
        try:
            while not self._ended.is_set():
                if self._heartbeat_lost():
                    timeout = self.heartbeat_timeout_s
                    self.stop(f"Stopped: the page sent no heartbeat for {timeout:g} s (tab closed?).")
                elif self.seconds > max_seconds:
                    self.stop(
                        f"Stopped: the computation reached the server's limit of {duration_words(max_seconds)} per "
                        f"run, so every student gets a turn. Lower {self.lower}."
                    )
                elif connection.poll(0.1):
                    report: Computed | Failed = connection.recv()
                    if isinstance(report, Computed):
                        self._finish("finished", "", report.value)
                    else:
                        lower = f" Lower {self.lower}." if "memory limit" in report.message else ""
                        self._finish("stopped", report.message + lower, None)
        except (EOFError, OSError):
            self._finish("stopped", "Stopped: the computation's process ended unexpectedly.", None)
        finally:
            connection.close()
            process = self._process
            if process is not None:
                process.join(timeout=5.0)

    def _finish(self, state: str, message: str, result: object) -> None:
        """Record the end (the first one recorded stands) and give the slot back."""
        with self._lock:
            if self._ended.is_set():
                return
            released, self._holds_slot = self._holds_slot, False
            self._state, self._message, self._result = state, message, result
            self._ended.set()
        if released:
            self._scheduler.release()


class _Queued(Protocol):
    """What the scheduler needs of a Job or an ExploreJob waiting for a slot."""

    heartbeat_timeout_s: float

    def _heartbeat_lost(self) -> bool: ...

    def _launch(self) -> None: ...

    def stop(self, reason: str = ..., wait_s: float = ...) -> None: ...


# ---- admission: at most MAX_RUNNING_JOBS workers, the rest wait in line ------------------------------------------


class _Scheduler:
    """Slots for worker processes and the first-come queue of jobs waiting for one (one per page process)."""

    def __init__(self, slots: Callable[[], int] = lambda: MAX_RUNNING_JOBS) -> None:
        self._slots = slots  # how many may run at once, read at each admission
        self._lock = threading.Lock()  # never held while taking a Job's lock (Job -> scheduler is the only order)
        self._running = 0
        self._queue: deque[_Queued] = deque()

    def admit(self, job: _Queued) -> bool:
        """Take a slot for `job` (True), or put it at the back of the queue (False)."""
        with self._lock:
            if self._running < self._slots() and not self._queue:
                self._running += 1
                return True
            self._queue.append(job)
            return False

    def withdraw(self, job: _Queued) -> None:
        """Take a queued job out of the queue."""
        with self._lock, contextlib.suppress(ValueError):
            self._queue.remove(job)

    def position(self, job: _Queued) -> int | None:
        """1-based place of `job` in the queue, or None when it is not queued."""
        with self._lock:
            for place, queued in enumerate(self._queue, start=1):
                if queued is job:
                    return place
        return None

    def release(self) -> None:
        """A worker ended: give its slot to the queued jobs still being watched, first come first served."""
        with self._lock:
            self._running -= 1
        self._fill()

    def drop_abandoned(self) -> None:
        """Stop queued jobs whose page stopped touching them, so they neither wait nor hold a place."""
        with self._lock:
            abandoned = [job for job in self._queue if job._heartbeat_lost()]
        for job in abandoned:
            job.stop(
                f"Stopped: the page sent no heartbeat for {job.heartbeat_timeout_s:g} s while queued (tab closed?)."
            )
        self._fill()

    def _fill(self) -> None:
        """Start queued jobs while slots are free."""
        while True:
            with self._lock:
                if self._running >= self._slots() or not self._queue:
                    return
                job = self._queue.popleft()
                if job._heartbeat_lost():
                    abandoned = job
                else:
                    abandoned = None
                    self._running += 1
            if abandoned is not None:
                timeout = abandoned.heartbeat_timeout_s
                abandoned.stop(f"Stopped: the page sent no heartbeat for {timeout:g} s while queued (tab closed?).")
            else:
                job._launch()

    def counts(self) -> tuple[int, int]:
        """(workers running, jobs queued) now."""
        with self._lock:
            return self._running, len(self._queue)


_SCHEDULER = _Scheduler()
_HEAVY_SCHEDULER = _Scheduler(lambda: MAX_HEAVY_JOBS)  # the heavy jobs' own lane (see HEAVY_JOB_S)


def load() -> tuple[int, int]:
    """(jobs training now, jobs waiting in the queue) in this process, both lanes."""
    (running, queued), (heavy_running, heavy_queued) = _SCHEDULER.counts(), _HEAVY_SCHEDULER.counts()
    return running + heavy_running, queued + heavy_queued


def paced_interval_s(base_s: float, cores: int | None = None) -> float:
    """`base_s` stretched by the jobs training per core beyond one: every page's redraws share the server's process.

    With the default cap (one job per core) this is `base_s`. A cap raised to 20 on 2 cores, with 20 pages redrawing
    every 0.2 s, kept the server's process at a full core and starved pages for minutes (bench/load_test.py
    --driver websocket --max-running-jobs 20: 4 of 20 fits unfinished after 600 s); paced, the server's work stays
    that of one job per core.
    """
    running, _ = load()
    return base_s * max(1.0, running / (cores or usable_cores()))
