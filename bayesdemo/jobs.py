"""Runs fits off the UI thread: one daemon thread per job trains its fits round-robin; the page reads `view()`.

The page (any thread) only calls the public methods below; the worker thread alone advances the runs. Progress is
published as small immutable records after every time slice, so `view()` never blocks on training. A job that the
page stops touching for HEARTBEAT_TIMEOUT_S stops itself: closing the tab stops that session's training.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from bayesdemo.data import Dataset
from bayesdemo.methods.base import FitConfig, make_method
from bayesdemo.priors import Model
from bayesdemo.runner import Run, RunConfig, Snapshot
from bayesdemo.validation import check_range

HEARTBEAT_TIMEOUT_S = 10.0  # a job untouched for this long stops itself
SLICE_S = 0.02  # training time given to one fit before the worker moves to the next (and checks pause/stop)
RATE_WINDOW_S = 1.0  # steps per second are measured over about this much recent wall time
MAX_BURST_S = 0.1  # a speed-capped fit may catch up at most this much lost time at once
MAX_SPEED = 1e6  # largest accepted speed cap in steps per second
JOB_STATES = ("ready", "running", "paused", "finished", "stopped")


@dataclass(frozen=True)
class FitView:
    """One fit as the page sees it at one moment: its settings, snapshots so far, status and speed."""

    label: str  # unique name of the fit within its job (legend entry)
    config: FitConfig  # how it is fitted
    snapshots: tuple[Snapshot, ...]  # every snapshot taken so far (the last is always finite)
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
        return self.status in ("done", "stopped", "diverged", "timeout")


@dataclass(frozen=True)
class JobView:
    """A consistent copy of a whole job: its state, message, speed cap and every fit."""

    state: str  # one of JOB_STATES
    message: str  # why the job stopped, when it did ("" otherwise)
    max_steps_per_second: float  # speed cap per fit; 0 means unlimited
    fits: tuple[FitView, ...]

    @property
    def active(self) -> bool:
        """True while the job may still change (running or paused)."""
        return self.state in ("running", "paused")

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
class _Progress:
    """What the worker publishes about one fit after each slice (read without locks: one reference swap)."""

    snapshot_count: int
    status: str
    message: str
    steps_done: int
    seconds: float
    steps_per_second: float


class _Fit:
    """Worker-side state of one fit: its run, speed-cap credit and recent (time, steps) samples."""

    def __init__(self, label: str, config: FitConfig, run: Run):
        self.label = label
        self.config = config
        self.run = run
        self.credit = 0.0
        self.samples: deque[tuple[float, int]] = deque()
        self.progress = _Progress(0, run.status, run.message, 0, 0.0, 0.0)

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

    def publish(self, now: float) -> None:
        """Record the rate over the recent window and publish an immutable progress record."""
        run = self.run
        self.samples.append((now, run.steps_done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= RATE_WINDOW_S:
            self.samples.popleft()
        oldest_time, oldest_steps = self.samples[0]
        elapsed = now - oldest_time
        rate = (run.steps_done - oldest_steps) / elapsed if elapsed > 0 else self.progress.steps_per_second
        if run.finished:
            rate = 0.0
        self.progress = _Progress(len(run.snapshots), run.status, run.message, run.steps_done, run.seconds, rate)

    def forget_rate(self) -> None:
        """Drop rate samples (after a pause) so the rate restarts from now."""
        self.samples.clear()
        self.credit = 0.0

    def view(self) -> FitView:
        """A consistent immutable copy: the snapshot list only grows, so its first `count` entries are settled."""
        progress = self.progress
        return FitView(
            label=self.label,
            config=self.config,
            snapshots=tuple(self.run.snapshots[: progress.snapshot_count]),
            status=progress.status,
            message=progress.message,
            steps_done=progress.steps_done,
            total_steps=self.run.total_steps,
            seconds=progress.seconds,
            steps_per_second=progress.steps_per_second,
        )


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


class Job:
    """Trains `fit_configs` on one dataset in a daemon thread; pause, resume, stop and re-speed from any thread."""

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
        # Methods are built here, on the caller's thread, so configuration errors surface where they can be shown.
        self._fits = [
            _Fit(label, config, Run(make_method(dataset, model, config), config.steps, self.run_config))
            for label, config in zip(unique_labels(fit_configs), fit_configs, strict=True)
        ]
        self._speed = check_speed(max_steps_per_second)
        self._condition = threading.Condition()
        self._state = "ready"
        self._message = ""
        self._pause_requested = False
        self._stop_requested = False
        self._stop_reason = ""
        self._worker_idle = True
        self._last_touch = time.monotonic()
        self._thread: threading.Thread | None = None

    # ---- control, from any thread -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start training in a daemon thread (once)."""
        with self._condition:
            if self._thread is not None or self._state != "ready":
                return
            self._state = "running"
            self._worker_idle = False
            self._last_touch = time.monotonic()
            self._thread = threading.Thread(target=self._work, name="bayesdemo-job", daemon=True)
            self._thread.start()

    def pause(self, wait_s: float = 1.0) -> None:
        """Pause after the current time slice; waits up to `wait_s` for the worker to be idle."""
        with self._condition:
            if self._state not in ("running", "paused"):
                return
            self._pause_requested = True
            self._state = "paused"
            self._condition.notify_all()
            self._condition.wait_for(lambda: self._worker_idle, timeout=wait_s)

    def resume(self) -> None:
        """Resume a paused job."""
        with self._condition:
            if self._state != "paused":
                return
            self._pause_requested = False
            self._state = "running"
            self._last_touch = time.monotonic()
            self._condition.notify_all()

    def stop(self, reason: str = "Stopped.", wait_s: float = 1.0) -> None:
        """End the job (each unfinished fit ends as `stopped`, keeping its snapshots); waits up to `wait_s`."""
        with self._condition:
            if self._state in ("finished", "stopped"):
                return
            self._stop_requested = True
            self._stop_reason = reason
            for fit in self._fits:
                fit.run.stop()
            self._condition.notify_all()
            thread = self._thread
        if thread is None:
            self._finish_stopped()
        elif thread is not threading.current_thread():
            thread.join(timeout=wait_s)

    def set_speed(self, steps_per_second: float) -> None:
        """Cap each fit at `steps_per_second` (0: unlimited); takes effect within one slice."""
        speed = check_speed(steps_per_second)
        with self._condition:
            self._speed = speed
            self._condition.notify_all()

    def touch(self) -> None:
        """Heartbeat from the page: the job stays alive while this keeps being called."""
        self._last_touch = time.monotonic()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker to end; True if it has (or never started)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    # ---- reading, from any thread --------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """The job's state, one of JOB_STATES."""
        return self._state

    @property
    def labels(self) -> tuple[str, ...]:
        """Each fit's unique label, in order."""
        return tuple(fit.label for fit in self._fits)

    @property
    def configs(self) -> tuple[FitConfig, ...]:
        """Each fit's config, in order."""
        return tuple(fit.config for fit in self._fits)

    def runs(self) -> tuple[tuple[FitConfig, Run], ...]:
        """(config, Run) per fit, for summaries; read them only once the job has ended."""
        return tuple((fit.config, fit.run) for fit in self._fits)

    def view(self) -> JobView:
        """An immutable, consistent copy of the job and every fit, without waiting for training."""
        state, message, speed = self._state, self._message, self._speed
        return JobView(state, message, speed, tuple(fit.view() for fit in self._fits))

    # ---- the worker ------------------------------------------------------------------------------------------------

    def _heartbeat_lost(self) -> bool:
        """True when the page has not touched the job for longer than the timeout."""
        return time.monotonic() - self._last_touch > self.heartbeat_timeout_s

    def _wait_while_paused(self) -> bool:
        """Block while paused (checking the heartbeat); False when the job must stop."""
        with self._condition:
            was_paused = self._pause_requested
            while self._pause_requested and not self._stop_requested:
                self._worker_idle = True
                self._condition.notify_all()
                self._condition.wait(timeout=0.25)
                if self._heartbeat_lost():
                    self._request_stop_locked(self._lost_heartbeat_reason())
            self._worker_idle = False
            if was_paused:
                now = time.perf_counter()
                for fit in self._fits:
                    fit.forget_rate()
                    fit.publish(now)
            return not self._stop_requested

    def _lost_heartbeat_reason(self) -> str:
        """The message of a job stopped by its heartbeat."""
        return f"Stopped: the page sent no heartbeat for {self.heartbeat_timeout_s:g} s (tab closed?)."

    def _request_stop_locked(self, reason: str) -> None:
        """Ask for a stop while holding the condition."""
        if not self._stop_requested:
            self._stop_requested = True
            self._stop_reason = reason
            for fit in self._fits:
                fit.run.stop()

    def _work(self) -> None:
        """The worker loop: slices of training per fit, round-robin, honouring pause, stop, speed and heartbeat."""
        try:
            last_round = time.perf_counter()
            while True:
                if not self._wait_while_paused():
                    break
                if self._heartbeat_lost():
                    with self._condition:
                        self._request_stop_locked(self._lost_heartbeat_reason())
                    break
                active = [fit for fit in self._fits if not fit.run.finished]
                if not active:
                    break
                now = time.perf_counter()
                elapsed, last_round = now - last_round, now
                speed = self._speed
                for fit in active:
                    if self._pause_requested or self._stop_requested:
                        break
                    if speed > 0:
                        fit.credit = min(fit.credit + speed * elapsed, max(1.0, speed * MAX_BURST_S))
                        if fit.credit >= 1.0 or fit.run.steps_done >= fit.run.total_steps:
                            fit.take_steps(math.floor(fit.credit), SLICE_S)
                    else:
                        fit.run.advance(SLICE_S)
                    fit.publish(time.perf_counter())
                if speed > 0:
                    self._sleep_until_next_step(active, speed)
        finally:
            self._finish()

    def _sleep_until_next_step(self, active: list[_Fit], speed: float) -> None:
        """Under a speed cap, sleep until the next step is due (woken early by pause, stop or a new speed)."""
        missing = max(1.0 - max(fit.credit for fit in active), 0.0)
        delay = min(missing / speed, 0.05)
        if delay > 0:
            with self._condition:
                self._condition.wait(timeout=delay)

    def _finish(self) -> None:
        """End every unfinished run (as stopped) and set the final job state."""
        with self._condition:
            if self._stop_requested or any(not fit.run.finished for fit in self._fits):
                self._finish_stopped_locked()
            else:
                self._state = "finished"
                self._message = "All fits finished."
            self._worker_idle = True
            self._condition.notify_all()

    def _finish_stopped(self) -> None:
        """End a job whose worker never started."""
        with self._condition:
            self._finish_stopped_locked()

    def _finish_stopped_locked(self) -> None:
        """Stop every unfinished run so each records `stopped`, and publish."""
        now = time.perf_counter()
        for fit in self._fits:
            fit.run.stop()
            iterator = iter(fit.run)
            while not fit.run.finished:
                next(iterator, None)
            fit.publish(now)
        self._state = "stopped"
        self._message = self._stop_reason or "Stopped."
