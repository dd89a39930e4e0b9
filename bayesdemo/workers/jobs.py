"""Runs fits off the UI: each job trains its fits round-robin in a worker process; the page reads `view()`.

Why a process and not a thread: training steps and the page's figure building are both mostly Python, so in one
process they share the GIL and each slows the other (measured: 4x fewer steps/s and half the redraws). A process
also keeps Pyro's process-wide state to itself. Workers fork from a forkserver that has imported torch and Pyro once,
so a job starts in tens of milliseconds. The page (any thread) only calls the public methods of `Job`; a listener
thread in the page's process receives reports and publishes them as immutable records, so `view()` never waits.
A job the page stops touching for HEARTBEAT_TIMEOUT_S stops itself: closing the tab stops that session's training.
What runs in the worker is in workers.child, the messages in workers.messages, the read models in workers.views and
the slots and queues in workers.scheduler.

Isolation: sessions never share training state. Each job has its own worker process, so Pyro's process-wide param
store and handler stack, torch's global seed and any crash stay inside one job; the worker seeds every fit from its
FitConfig, so a job reproduces a solo run of the same seed number for number whatever else is training, and the
process exits when the job ends. Pyro calls are additionally serialised inside the worker
(bayesdemo.methods.pyro_context).

Bounded resources: at most MAX_RUNNING_JOBS worker processes train at full speed at once (env
BAYESDEMO_MAX_RUNNING_JOBS, default the core count; machine-wide across replicas when BAYESDEMO_SLOT_DIR is set,
workers.scheduler); a job started beyond that waits in a first-come queue (state "queued", JobView.queue_position)
and starts by itself when a slot frees. A paused job gives its slot to the next in line; its process keeps the fits'
state, and Resume takes a free slot or joins the back of the queue. A job trains at most MAX_TRAINING_S of wall time
and waits paused at most MAX_PAUSE_S, so no one holds a slot (or a worker's memory) for long. Each worker's address
space is capped at start (WORKER_MEMORY_HEADROOM_BYTES beyond its size): a fit beyond every estimate fails in its
worker with a message and the slot comes back. A queued job the page stops touching leaves the queue. Each fit keeps
at most MAX_SNAPSHOTS snapshots in the page (views.ThinnedSnapshots), so memory per job is bounded whatever the steps
and snapshot_every.

Lanes (slots count CPU, not jobs): a heavy job (estimated past HEAVY_JOB_S seconds of training at full speed) has a
lane of its own beside the core slots and trains at the lowest CPU priority. A light job, one whose speed cap keeps
its estimated CPU (cpu_share) at most LIGHT_CPU_SHARE of a core, takes a slot of the light lane, LIGHT_JOBS_PER_SLOT
per core slot, so a class's paced default fits never wait behind fits at full speed. A speed raised mid-run keeps the
lane the job was admitted to (until it pauses and resumes): at worst the light lane's jobs all train at full speed,
LIGHT_JOBS_PER_SLOT x MAX_RUNNING_JOBS processes beside the core slots sharing the cores, each for at most
MAX_TRAINING_S.

Explore computations (gradient noise, NUTS, fits with s learned, calibration, ...) run the same way: an ExploreJob
computes one pure, picklable function in a worker process that takes a core slot like a fit's (a heavy one, the heavy
lane's) and waits in the same queue, under the same address-space headroom and MAX_TRAINING_S of wall time, and is
killed when the page cancels it or stops touching it; its value comes back whole, and a failure as a sentence. The
server's script thread never runs them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import sys
import threading
import time
import types
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import cast

from bayesdemo.core.data import Dataset
from bayesdemo.core.priors import Model
from bayesdemo.core.validation import ConfigError, check_range
from bayesdemo.fitting.budget import MEMORY_BUDGET_BYTES, fit_cost, fits_problem
from bayesdemo.fitting.runner import RunConfig
from bayesdemo.methods import FitConfig, make_method
from bayesdemo.workers.child import _explore_main, _worker_main, duration_words
from bayesdemo.workers.messages import (
    Command,
    Computed,
    Ended,
    Failed,
    Pause,
    Paused,
    Progress,
    Report,
    Resume,
    SetSpeed,
    Stop,
)
from bayesdemo.workers.scheduler import (
    Lane,
    load,
    max_running_jobs_from_environment,
    paced_interval_s,
    seconds_from_environment,
    usable_cores,
)
from bayesdemo.workers.views import (
    ACTIVE_STATES,
    FINISHED_STATUSES,
    JOB_STATES,
    FitState,
    FitView,
    JobView,
    ThinnedSnapshots,
)

__all__ = [
    "ACTIVE_STATES",
    "FINISHED_STATUSES",
    "JOB_STATES",
    "ExploreJob",
    "FitView",
    "Job",
    "JobView",
    "ThinnedSnapshots",
    "check_speed",
    "cpu_share",
    "duration_words",
    "load",
    "paced_interval_s",
    "unique_labels",
    "usable_cores",
    "warm_up",
    "warm_up_in_background",
]

HEARTBEAT_TIMEOUT_S = 30.0  # a job untouched this long stops itself (a page under heavy load can pause ~10 s)
MAX_SPEED = 1e6  # largest accepted speed cap in steps per second
MAX_SNAPSHOTS = 2000  # snapshots kept per fit in the page; more are thinned evenly (views.ThinnedSnapshots)
# Imported once by the forkserver, so each worker starts with torch and every method ready: a worker's first steps
# import nothing more (tests/test_jobs.py). symbolic_shapes (with sympy) is what the full-covariance guide's first
# MultivariateNormal imports; torch._dynamo is not needed (the methods write their optimisers out), which saves about
# 1 s of the forkserver's start: a Run pressed in the first seconds after the server starts waited for it.
PRELOAD = [
    "bayesdemo.workers.child",  # the workers' entry points
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

MAX_RUNNING_JOBS = max_running_jobs_from_environment()  # core slots: jobs training at full speed at once
# Training wall time per job (pauses excluded), env BAYESDEMO_MAX_TRAINING_S: a slot is never held for days.
MAX_TRAINING_S = seconds_from_environment("BAYESDEMO_MAX_TRAINING_S", 600.0)
# A job paused (or waiting in the queue to resume) longer than this ends, env BAYESDEMO_MAX_PAUSE_S: its worker
# holds the fit's memory while it waits.
MAX_PAUSE_S = seconds_from_environment("BAYESDEMO_MAX_PAUSE_S", 1800.0)
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
# A job whose speed cap keeps its estimated CPU (cpu_share) at most this share of a core is light: it takes a slot of
# the light lane, LIGHT_JOBS_PER_SLOT per core slot. Why a quarter: with every lane full on 2 cores (2 core slots,
# 1 heavy, 8 light jobs and the server: 12 busy processes), the scheduler's fair share is 2/12 = 0.17 of a core, so a
# light job at the limit runs at worst 1.5x its paced time, inside the 2x bound for a class's default fits; a default
# Bayes by Backprop fit at the page's 300 steps/s is estimated at 0.06 of a core, a Pyro SVI one at 0.75 (not light).
LIGHT_CPU_SHARE = 0.25
LIGHT_JOBS_PER_SLOT = 4

_SCHEDULER = Lane("core", lambda: MAX_RUNNING_JOBS)  # fits and computations at full speed
_HEAVY_SCHEDULER = Lane("heavy", lambda: MAX_HEAVY_JOBS)  # the heavy jobs' own lane (see HEAVY_JOB_S)
_LIGHT_SCHEDULER = Lane("light", lambda: LIGHT_JOBS_PER_SLOT * MAX_RUNNING_JOBS)  # paced jobs (see LIGHT_CPU_SHARE)


def cpu_share(configs: Sequence[FitConfig], n: int, steps_per_second: float) -> float:
    """Estimated cores a job's fits use at a speed cap of `steps_per_second` per fit (0: unlimited, a whole core):
    each fit's full-speed seconds per step (budget.fit_cost) times the steps it may take per second, summed, at most 1
    (the fits share one worker)."""
    if steps_per_second <= 0:
        return 1.0
    per_step_s = sum(fit_cost(config, n).seconds / config.steps_in_force for config in configs)
    return min(1.0, steps_per_second * per_step_s)


def _start_without_main(process: multiprocessing.process.BaseProcess) -> None:
    """Start `process` with a file-less stand-in for __main__, so the worker does not re-run the page script.

    Under `streamlit run`, __main__ is app.py; multiprocessing would re-execute it in every worker (slow, and
    pointless: the worker's entry point lives in workers.child).
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
_warm_up_started = False


def warm_up_in_background() -> None:
    """warm_up in a thread of its own, started once per process: a page's first run draws without waiting for torch."""
    global _warm_up_started
    with _MAIN_SWAP_LOCK:
        if _warm_up_started:
            return
        _warm_up_started = True
    threading.Thread(target=warm_up, name="bayesdemo-warm-up-torch", daemon=True).start()


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


class WorkerJob:
    """What a Job and an ExploreJob share: a worker process admitted to a lane's slot (or queued for one), a
    heartbeat from the page, a state, an end to wait for, and a listener thread that receives the worker's reports.

    Subclasses say which lane takes them (`_choose_lane`), how the worker starts (`_begin`, under the lock) and what
    the listener does (`_listen`); `_release` (under the lock) says whether a held slot is to be handed back.
    """

    listener_name = "bayesdemo-listener"

    def __init__(self, heartbeat_timeout_s: float):
        self.heartbeat_timeout_s = check_range("heartbeat_timeout_s", heartbeat_timeout_s, 0.0, 86_400.0, low_open=True)
        self._state = "ready"
        self._message = ""
        self._lock = threading.Lock()  # guards state changes (and, for a Job, sending on the pipe)
        self._ended = threading.Event()
        self._last_touch = time.monotonic()
        self._started_at: float | None = None  # when the worker started (monotonic)
        self._process: multiprocessing.process.BaseProcess | None = None
        self._holds_slot = False  # counted in its lane's running slots (a paused job gives its slot back)
        self._scheduler: Lane = _SCHEDULER  # the lane it was last admitted to

    def _choose_lane(self) -> Lane:
        """The lane that takes this job now."""
        raise NotImplementedError

    def _begin(self) -> None:
        """Start the worker process and the listener thread, or resume a paused worker (caller holds the lock and a
        slot); OSError when the process cannot start."""
        raise NotImplementedError

    def _listen(self, connection: Connection) -> None:
        """Receive the worker's reports until it ends."""
        raise NotImplementedError

    def _end_unstarted(self, reason: str) -> None:
        """End a job whose worker never started (caller holds the lock)."""
        self._state = "stopped"
        self._message = reason
        self._ended.set()

    def stop(self, reason: str = "Stopped.", wait_s: float = 2.0) -> None:
        """End the job."""
        raise NotImplementedError

    def _start_process(self, target: Callable[..., None], arguments: tuple[object, ...], name: str) -> Connection:
        """Start a worker process running `target(theirs, *arguments)` and a listener thread on our end of the pipe
        (caller holds the lock); our end."""
        ours, theirs = _CONTEXT.Pipe(duplex=True)
        self._process = _CONTEXT.Process(target=target, args=(theirs, *arguments), name=name, daemon=True)
        try:
            _start_without_main(self._process)
        finally:
            theirs.close()
        self._started_at = time.monotonic()
        threading.Thread(target=self._listen, args=(ours,), name=self.listener_name, daemon=True).start()
        return ours

    def start(self) -> None:
        """Start the worker (once), or queue the job while its lane's slots are taken."""
        with self._lock:
            if self._state != "ready":
                return
            self._last_touch = time.monotonic()
            self._state = "queued"
            self._scheduler = self._choose_lane()
            admitted = self._scheduler.admit(self)
        if admitted:
            self._launch()

    def _launch(self) -> None:
        """Start (or resume) the worker of a queued job given a slot; a job stopped meanwhile hands the slot back."""
        with self._lock:
            launched = self._state == "queued" and not self._holds_slot
            if launched:
                try:
                    self._begin()
                except OSError as error:  # out of processes or memory: the page shows it
                    self._end_unstarted(f"Stopped: could not start {self.process_words} ({error}).")
                    launched = False
                else:
                    self._holds_slot = True
                    self._state = "running"
                    self._last_touch = time.monotonic()
        if not launched:
            self._scheduler.release()

    process_words = "the training process"  # said when it cannot start

    def _drop_slot(self) -> bool:
        """Forget this job's slot (caller holds the lock); True if it held one, to release after the lock."""
        held, self._holds_slot = self._holds_slot, False
        return held

    @property
    def queue_position(self) -> int | None:
        """1 for the next job to start, 2 after it, ...; None when not queued."""
        return self._scheduler.position(self) if self._state == "queued" else None

    def touch(self) -> None:
        """Heartbeat from the page: the job stays alive while this keeps being called."""
        self._last_touch = time.monotonic()
        self._scheduler.drop_abandoned()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the job to end (a queued job waits for its turn too); True if it has (or was never started)."""
        if self._state == "ready":
            return True
        return self._ended.wait(timeout)

    @property
    def state(self) -> str:
        """The job's state, one of JOB_STATES."""
        return self._state

    @property
    def active(self) -> bool:
        """True while the job may still change (queued, running or paused)."""
        return self._state in ACTIVE_STATES

    @property
    def message(self) -> str:
        """Why the job stopped, as a sentence for the page ("" unless it did)."""
        return self._message

    @property
    def pid(self) -> int | None:
        """The worker's process id once started."""
        return None if self._process is None else self._process.pid

    def _heartbeat_lost(self) -> bool:
        """True when the page has not touched the job for longer than the timeout."""
        return time.monotonic() - self._last_touch > self.heartbeat_timeout_s

    def _join_process(self) -> None:
        """Reap the worker once it has ended (the listener's last act)."""
        process = self._process
        if process is not None:
            with contextlib.suppress(AssertionError, ValueError):
                process.join(timeout=5.0)


# ---- training jobs ------------------------------------------------------------------------------------------------


class Job(WorkerJob):
    """Trains `fit_configs` on one dataset in a worker process; pause, resume, stop and re-speed from any thread."""

    listener_name = "bayesdemo-job-listener"

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
        super().__init__(heartbeat_timeout_s)
        self.dataset = dataset
        self.model = model
        self.run_config = RunConfig(snapshot_every=snapshot_every)
        self._speed = check_speed(max_steps_per_second)
        # Build each method once here, on the caller's thread, so configuration errors surface where they can be shown.
        for config in fit_configs:
            make_method(dataset, model, config)
        problem = fits_problem(fit_configs, dataset.n)
        if problem is not None:  # refused before a process starts: one fit must not take the server's memory
            raise ConfigError("samples", problem)
        self._configs = tuple(fit_configs)
        self.heavy = sum(fit_cost(config, dataset.n).seconds for config in self._configs) > HEAVY_JOB_S
        self._labels = tuple(unique_labels(fit_configs))
        self._max_snapshots = MAX_SNAPSHOTS
        self._progress = [self._blank("ready", "") for _ in self._configs]
        self._paused_ack = threading.Event()
        self._trained = threading.Event()  # set at the first snapshot after a training step, or at the end
        self._connection: Connection | None = None

    def _blank(self, status: str, message: str) -> FitState:
        """A fit's state before its first report."""
        return FitState(ThinnedSnapshots(self._max_snapshots), status, message, 0, 0.0, 0.0)

    # ---- control, from any thread -------------------------------------------------------------------------------

    @property
    def light(self) -> bool:
        """True when the speed cap keeps the job's estimated CPU at most LIGHT_CPU_SHARE of a core (its lane)."""
        return cpu_share(self._configs, self.dataset.n, self._speed) <= LIGHT_CPU_SHARE

    def _choose_lane(self) -> Lane:
        """The light lane for a paced job of little CPU, else the heavy lane for a heavy one, else the core lane."""
        if self.light:
            return _LIGHT_SCHEDULER
        return _HEAVY_SCHEDULER if self.heavy else _SCHEDULER

    def _begin(self) -> None:
        """Start the worker, or resume it when paused, then queued to resume (it kept the fits' state)."""
        if self._process is not None:
            self._send(Resume())
            return
        limits = (MAX_TRAINING_S, MAX_PAUSE_S, WORKER_MEMORY_HEADROOM_BYTES)
        niceness = HEAVY_NICENESS if self.heavy else 0
        arguments = (self.dataset, self.model, self._configs, self.run_config, self._speed, limits, niceness)
        self._connection = self._start_process(_worker_main, (*arguments, self._max_snapshots), "bayesdemo-job")

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
        """Resume a paused job: at once when a slot of its lane (for its speed now) is free, else at the back of that
        lane's queue (state "queued")."""
        with self._lock:
            if self._state != "paused":
                return
            self._last_touch = time.monotonic()
            self._scheduler = self._choose_lane()
            if self._scheduler.admit(self):
                self._holds_slot = True
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
        """Cap each fit at `steps_per_second` (0: unlimited); takes effect within one slice. A running job keeps its
        lane (see the module docstring)."""
        speed = check_speed(steps_per_second)
        with self._lock:
            if speed != self._speed:
                self._speed = speed
                if self._state in ("running", "paused"):
                    self._send(SetSpeed(speed))

    def touch(self) -> None:
        """Heartbeat from the page: the job stays alive while this keeps being called."""
        self._last_touch = time.monotonic()

    # ---- reading, from any thread --------------------------------------------------------------------------------

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
                    total_steps=config.steps_in_force,
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
            self._join_process()

    def _receive_progress(self, progress: Progress) -> None:
        """Add each fit's new snapshots (thinned past MAX_SNAPSHOTS), then publish its progress."""
        trained = False
        for fit in progress.fits:
            old = self._progress[fit.index]
            snapshots = old.snapshots
            if fit.snapshots is not None:
                snapshots = snapshots.add_indexed(fit.snapshots.unpack())
                trained = trained or fit.snapshots.trained
            self._progress[fit.index] = FitState(
                snapshots, fit.status, fit.message, fit.steps_done, fit.seconds, fit.steps_per_second
            )
        if trained:
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
        self._progress = [self._blank("stopped", reason) for _ in self._configs]
        super()._end_unstarted(reason)


# ---- explore computations: one pure function per job, in a worker like a fit's ----------------------------------


class ExploreJob(WorkerJob):
    """Computes `function(*arguments)` once in a worker process, admitted like a training Job: it counts against
    MAX_RUNNING_JOBS and waits in the same first-come queue, under the same memory headroom and MAX_TRAINING_S of
    wall time, and ends when the page stops touching it. `function` must be picklable (a module-level function) and
    pure; the page reads `state`, `result` and `message`, never waiting. One estimated (`estimated_s`, seconds of
    server CPU) past HEAVY_JOB_S is heavy, as a fit is: it waits for and takes the heavy lane, at HEAVY_NICENESS.
    `heartbeat_timeout_s` None: HEARTBEAT_TIMEOUT_S."""

    listener_name = "bayesdemo-explore-listener"
    process_words = "the computation's process"

    def __init__(
        self,
        function: Callable[..., object],
        arguments: Sequence[object],
        lower: str,
        heartbeat_timeout_s: float | None = None,
        estimated_s: float = 0.0,
    ):
        super().__init__(HEARTBEAT_TIMEOUT_S if heartbeat_timeout_s is None else heartbeat_timeout_s)
        self.function = function
        self.arguments = tuple(arguments)
        self.lower = lower  # what the student can lower, said after a memory or time failure ("Samples per step")
        self.heavy = check_range("estimated_s", estimated_s, 0.0) > HEAVY_JOB_S
        self._result: object = None
        self._max_seconds = MAX_TRAINING_S

    def _choose_lane(self) -> Lane:
        """The heavy lane for a heavy computation, else the core lane (a computation runs at full speed)."""
        return _HEAVY_SCHEDULER if self.heavy else _SCHEDULER

    def _begin(self) -> None:
        """Start the worker process and its listener."""
        self._max_seconds = MAX_TRAINING_S
        limits = (self._max_seconds, WORKER_MEMORY_HEADROOM_BYTES)
        arguments = (self.function, self.arguments, limits, HEAVY_NICENESS if self.heavy else 0)
        self._start_process(_explore_main, arguments, "bayesdemo-explore")

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

    @property
    def state(self) -> str:
        """One of JOB_STATES (never "paused"): ready, queued, running, finished or stopped."""
        return self._state

    @property
    def result(self) -> object:
        """The function's value once finished; None before and when stopped."""
        return self._result

    @property
    def seconds(self) -> float:
        """Seconds since the worker started (0 while queued)."""
        started = self._started_at
        return 0.0 if started is None else time.monotonic() - started

    def _listen(self, connection: Connection) -> None:
        """Wait for the worker's one message; kill it at the time limit or when the page's heartbeat is lost."""
        max_seconds = self._max_seconds
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
            self._join_process()

    def _finish(self, state: str, message: str, result: object) -> None:
        """Record the end (the first one recorded stands) and give the slot back."""
        with self._lock:
            if self._ended.is_set():
                return
            released = self._drop_slot()
            self._state, self._message, self._result = state, message, result
            self._ended.set()
        if released:
            self._scheduler.release()
