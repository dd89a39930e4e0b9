"""Drives a method: immutable snapshots every k steps, stop on request or at target, time budget, divergence."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import Gaussian, exact_posterior
from bayesdemo.core.priors import Model
from bayesdemo.core.validation import check_int, check_range
from bayesdemo.fitting.budget import size_text
from bayesdemo.fitting.metrics import at_target_rule, target_for
from bayesdemo.methods import FitConfig, Method, make_method
from bayesdemo.methods.base import MultiStep

# Most steps a MultiStep method takes per call: calls never cross a snapshot, and a stop request, the time budget and
# a speed cap wait at most this many steps (well under a millisecond of Bayes by Backprop's closed-form steps).
MAX_STEPS_PER_CALL = 64


@dataclass(frozen=True)
class RunConfig:
    """How to drive a fit: how often to snapshot and how long it may run."""

    snapshot_every: int = 10  # steps between snapshots (the first and last step are always snapshotted)
    time_budget_s: float = 0.0  # wall-clock limit on training in seconds; 0 means none

    def __post_init__(self) -> None:
        object.__setattr__(self, "snapshot_every", check_int("snapshot_every", self.snapshot_every, 1, 10**6))
        check_range("time_budget_s", self.time_budget_s, 0.0, 86_400.0)


@dataclass(frozen=True)
class Snapshot:
    """q after `step` steps and `seconds` of training; `loss` is the mean loss since the previous snapshot."""

    step: int
    seconds: float
    loss: float
    mean: np.ndarray  # (2,) q's mean of (slope, intercept)
    sd: np.ndarray  # (2,) q's marginal sds
    cov: np.ndarray  # (2, 2) q's covariance

    @classmethod
    def of(cls, step: int, seconds: float, loss: float, q: Gaussian) -> Snapshot:
        """Freeze q's moments at this step."""
        sd = q.sd
        sd.setflags(write=False)
        return cls(step, seconds, loss, q.mean, sd, q.cov)

    @property
    def gaussian(self) -> Gaussian:
        """q at this snapshot as a Gaussian."""
        return Gaussian(self.mean, self.cov)


class Run:
    """One fit in progress: iterate it (or call `advance`) to train; `stop()` may be called from any thread.

    With `until`, a test of the snapshots so far (metrics.at_target_rule), the run ends "done" at the first snapshot
    where it holds, and `total_steps` is the cap.
    """

    def __init__(
        self,
        method: Method,
        total_steps: int,
        config: RunConfig = RunConfig(),
        until: Callable[[Sequence[Snapshot]], bool] | None = None,
    ):
        self.method = method
        self.total_steps = check_int("steps", total_steps, 1, 10**7)
        self.config = config
        self.until = until
        self.snapshots: list[Snapshot] = []
        self.status = "ready"
        self.message = ""
        self.steps_done = 0
        self.seconds = 0.0
        self._stop_requested = threading.Event()
        self._loss_sum = 0.0
        self._loss_count = 0
        self._multi_step = method if isinstance(method, MultiStep) else None
        self._iterator = self._steps()

    @property
    def finished(self) -> bool:
        """True once the run has ended for any reason."""
        return self.status in ("done", "stopped", "diverged", "timeout")

    @property
    def last(self) -> Snapshot | None:
        """The latest snapshot (always finite), or None before the first."""
        return self.snapshots[-1] if self.snapshots else None

    def stop(self) -> None:
        """Ask the run to end after the current step; safe from any thread."""
        self._stop_requested.set()

    def __iter__(self) -> Iterator[Snapshot | None]:
        """Train, yielding each new snapshot (None between them: after each step, or each call of a MultiStep
        method's take_steps); resumes where a previous iteration left off."""
        return self._iterator

    def advance(self, max_seconds: float) -> list[Snapshot]:
        """Train for about `max_seconds` (at least one step unless finished); return the new snapshots."""
        deadline = time.perf_counter() + max_seconds
        new: list[Snapshot] = []
        while not self.finished:
            snapshot = next(self._iterator, None)
            if snapshot is not None:
                new.append(snapshot)
            if time.perf_counter() >= deadline:
                break
        return new

    def _snapshot(self, loss: float) -> Snapshot:
        """Record q now, with the mean loss since the previous snapshot."""
        snapshot = Snapshot.of(self.steps_done, self.seconds, loss, self.method.posterior())
        self.snapshots.append(snapshot)
        return snapshot

    def _steps(self) -> Iterator[Snapshot | None]:
        """The training loop as a generator: yields a Snapshot at snapshot steps and None between them."""
        self.status = "running"
        yield self._snapshot(math.nan)
        every = self.config.snapshot_every
        budget = self.config.time_budget_s
        while self.steps_done < self.total_steps:
            if self._stop_requested.is_set():
                self._end("stopped", f"Stopped at step {self.steps_done}.")
                return
            if budget and self.seconds >= budget:
                self._end("timeout", f"Time budget of {budget:g} s reached at step {self.steps_done}.")
                return
            started = time.perf_counter()
            try:
                losses = self._take_steps(every)
            except MemoryError as error:
                self._end("stopped", self._memory_advice(str(error)))
                return
            except (ValueError, RuntimeError) as error:
                if is_out_of_memory(error):
                    self._end("stopped", self._memory_advice(str(error)))
                    return
                # Pyro's argument validation raises once a parameter turns NaN: that is divergence too.
                self._end("diverged", self._divergence_advice(f"the step failed ({str(error)[:120]})"))
                return
            self.seconds += time.perf_counter() - started
            for loss in losses:
                if not math.isfinite(loss):
                    self._end("diverged", self._divergence_advice(f"the loss became {loss}"))
                    return
                self.steps_done += 1
                self._loss_sum += loss
                self._loss_count += 1
            if self.steps_done % every == 0 or self.steps_done == self.total_steps:
                q = self.method.posterior()
                if not (np.all(np.isfinite(q.mean)) and np.all(np.isfinite(q.cov))):
                    self._end("diverged", self._divergence_advice("q's parameters became non-finite"))
                    return
                mean_loss = self._loss_sum / self._loss_count
                self._loss_sum, self._loss_count = 0.0, 0
                snapshot = self._snapshot(mean_loss)
                if self.until is not None and self.until(self.snapshots):
                    self._end("done", f"At target at step {self.steps_done} ({self.seconds:.2f} s): stopped there.")
                    yield snapshot
                    return
                yield snapshot
            else:
                yield None
        if self.until is not None:
            self._end("done", f"Reached the cap of {self.steps_done} steps before the target ({self.seconds:.2f} s).")
        else:
            self._end("done", f"Finished {self.steps_done} steps in {self.seconds:.2f} s.")

    def _take_steps(self, every: int) -> list[float]:
        """One step, or for a MultiStep method up to the next snapshot (at most MAX_STEPS_PER_CALL); their losses."""
        if self._multi_step is None:
            return [self.method.step()]
        count = min(every - self.steps_done % every, self.total_steps - self.steps_done, MAX_STEPS_PER_CALL)
        return self._multi_step.take_steps(count)

    def _divergence_advice(self, what: str) -> str:
        """The message for a diverged run: what happened, at which step, and the fix."""
        # _steps records the starting snapshot before any step, so a step that diverges always has one before it.
        return (
            f"At step {self.steps_done + 1} {what}: the fit diverged. Lower the learning rate (for example by 10x) "
            f"and run again; the last finite snapshot (step {self.snapshots[-1].step}) is kept."
        )

    def _memory_advice(self, error_text: str) -> str:
        """The message for a step that could not get its memory: the full numbers and what to lower."""
        wanted = re.search(r"allocate (?:memory: you tried to allocate )?(\d+) bytes", error_text)
        amount = ""
        if wanted:
            size = int(wanted.group(1))
            amount = f" (one tensor asked for {size_text(size)}, {size:,} bytes)"
        last = f"; the last snapshot (step {self.last.step}) is kept" if self.last is not None else ""
        return (
            f"At step {self.steps_done + 1} the fit ran out of memory{amount}. Lower the samples per step or use "
            f"minibatches (a batch size), then run again{last}."
        )

    def _end(self, status: str, message: str) -> None:
        """Set the final status and message."""
        self.status = status
        self.message = message


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` is an allocator failing (torch's CPU and CUDA allocators raise RuntimeError subclasses)."""
    text = str(error).lower()
    return isinstance(error, MemoryError) or "can't allocate memory" in text or "out of memory" in text


def fit_run(dataset: Dataset, model: Model, config: FitConfig, run_config: RunConfig = RunConfig()) -> Run:
    """A Run of `config`'s method on `dataset`: `config.steps_in_force` steps, or with `until_target` up to that cap,
    ending once the convergence rule holds against the method's target (docs/MATH.md, Convergence rule)."""
    until = None
    if config.until_target:
        exact = exact_posterior(dataset, model)
        until = at_target_rule(target_for(config, exact, dataset.least_squares()), exact)
    return Run(make_method(dataset, model, config), config.steps_in_force, run_config, until)


def run_to_end(
    method: Method,
    total_steps: int,
    config: RunConfig = RunConfig(),
    until: Callable[[Sequence[Snapshot]], bool] | None = None,
) -> Run:
    """Run a fit to completion (or divergence, or the target with `until`) and return the finished Run."""
    run = Run(method, total_steps, config, until)
    for _ in run:
        pass
    return run
