"""Admission of worker processes: lanes of slots, each with a first-come queue of the jobs waiting for one.

A job takes a slot of one lane while its worker trains (a paused job gives it back). Three lanes (workers.jobs):
the core lane of MAX_RUNNING_JOBS slots for fits at full speed, the heavy lane for fits estimated to train for long,
and the light lane for fits whose pace keeps their CPU small. A lane's slots are counted in this process, and, when
the environment variable BAYESDEMO_SLOT_DIR names a folder, also machine-wide: each slot is a file `LANE-i.lock` in
that folder, held by a non-blocking exclusive `fcntl.flock` for as long as the job keeps the slot. Every replica
started by deploy/serve.py gets the same folder, so replicas together never train more jobs of a lane at once than its
slots. The kernel drops a dead process's locks, so a replica that dies hands its slots back. A job that finds no free
slot waits in its lane's queue; the lane retries every RETRY_S (and at every poll of a page) while its queue is not
empty, since a slot freed by another replica sends no word.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

SLOT_DIR_VARIABLE = "BAYESDEMO_SLOT_DIR"  # the folder of machine-wide slot files; unset: slots count this process only
RETRY_S = 0.25  # a lane with jobs queued tries for a machine-wide slot this often


def usable_cores() -> int:
    """CPU cores this process may run on (at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores)


def max_running_jobs_from_environment() -> int:
    """BAYESDEMO_MAX_RUNNING_JOBS when it is a positive integer, else the number of usable cores."""
    text = os.environ.get("BAYESDEMO_MAX_RUNNING_JOBS", "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    return usable_cores()


def seconds_from_environment(name: str, default_s: float) -> float:
    """The environment variable `name` as a positive number of seconds, else `default_s`."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default_s
    return value if math.isfinite(value) and value > 0 else default_s


def slot_dir_from_environment() -> Path | None:
    """The folder of machine-wide slot files (BAYESDEMO_SLOT_DIR), or None where unset or flock is missing."""
    text = os.environ.get(SLOT_DIR_VARIABLE, "").strip()
    try:
        import fcntl  # noqa: F401  (not on Windows)
    except ImportError:
        return None
    return Path(text) if text else None


class SlotFiles:
    """Machine-wide slots of one lane: files `name`-0.lock, `name`-1.lock, ... in `folder`, each held by one process
    at a time through a non-blocking exclusive flock (the kernel releases it when the holder's file closes or the
    holder dies)."""

    def __init__(self, folder: Path, name: str):
        self.folder = folder
        self.name = name

    def take(self, slots: int) -> int | None:
        """Lock the first free one of the first `slots` files; its open descriptor, or None when all are held."""
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        for slot in range(slots):
            descriptor = os.open(self.folder / f"{self.name}-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held by another process (or by another descriptor of this one)
                os.close(descriptor)
                continue
            return descriptor
        return None

    @staticmethod
    def give_back(descriptor: int) -> None:
        """Unlock a slot taken by `take` (closing the file drops its lock)."""
        with contextlib.suppress(OSError):
            os.close(descriptor)


class Queued(Protocol):
    """What a lane needs of a job waiting for a slot (workers.jobs.WorkerJob)."""

    heartbeat_timeout_s: float

    def _heartbeat_lost(self) -> bool: ...

    def _launch(self) -> None: ...

    def stop(self, reason: str = ..., wait_s: float = ...) -> None: ...


_LANES: weakref.WeakSet[Lane] = weakref.WeakSet()  # every lane of this process, for `load`


class Lane:
    """Slots for worker processes and the first-come queue of jobs waiting for one.

    `slots` says how many jobs of this lane may train at once (read at each admission); `slot_dir` where the
    machine-wide slot files are (read once, at the first admission; None: this process alone counts).
    """

    def __init__(
        self, name: str, slots: Callable[[], int], slot_dir: Callable[[], Path | None] = slot_dir_from_environment
    ) -> None:
        self.name = name
        self._slots = slots
        self._slot_dir = slot_dir
        self._files: SlotFiles | None = None
        self._files_read = False
        self._lock = threading.Lock()  # never held while taking a job's lock (job -> lane is the only order)
        self._running = 0
        self._held: list[int] = []  # descriptors of the machine-wide slot files this process holds
        self._queue: deque[Queued] = deque()
        self._retrying = False  # a thread retries for machine-wide slots while jobs wait
        _LANES.add(self)

    def _take(self) -> bool:
        """Take a free slot, here and machine-wide (caller holds the lock)."""
        slots = self._slots()
        if self._running >= slots:
            return False
        if not self._files_read:
            folder = self._slot_dir()
            self._files = None if folder is None else SlotFiles(folder, self.name)
            self._files_read = True
        if self._files is not None:
            try:
                descriptor = self._files.take(slots)
            except OSError:  # the folder cannot be written: count this process's slots only, as without one
                self._files, descriptor = None, None
            else:
                if descriptor is None:
                    return False
            if descriptor is not None:
                self._held.append(descriptor)
        self._running += 1
        return True

    def admit(self, job: Queued) -> bool:
        """Take a slot for `job` (True), or put it at the back of the queue (False)."""
        with self._lock:
            if not self._queue and self._take():
                return True
            self._queue.append(job)
            retry = self._files is not None and not self._retrying
            self._retrying = self._retrying or retry
        if retry:
            threading.Thread(target=self._retry, name=f"bayesdemo-{self.name}-slots", daemon=True).start()
        return False

    def _retry(self) -> None:
        """While jobs wait, try for slots other processes freed (they send no word)."""
        event = threading.Event()
        while True:
            event.wait(RETRY_S)
            self.drop_abandoned()
            with self._lock:
                if not self._queue:
                    self._retrying = False
                    return

    def withdraw(self, job: Queued) -> None:
        """Take a queued job out of the queue."""
        with self._lock, contextlib.suppress(ValueError):
            self._queue.remove(job)

    def position(self, job: Queued) -> int | None:
        """1-based place of `job` in the queue, or None when it is not queued."""
        with self._lock:
            for place, queued in enumerate(self._queue, start=1):
                if queued is job:
                    return place
        return None

    def release(self) -> None:
        """A worker ended or paused: give its slot to the queued jobs still being watched, first come first served."""
        with self._lock:
            self._running -= 1
            if self._held:
                SlotFiles.give_back(self._held.pop())
        self._fill()

    def drop_abandoned(self) -> None:
        """Stop queued jobs whose page stopped touching them, so they neither wait nor hold a place; then try to
        start the others."""
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
                if not self._queue:
                    return
                job = self._queue[0]
                abandoned = job._heartbeat_lost()
                if not abandoned and not self._take():
                    return
                self._queue.popleft()
            if abandoned:
                timeout = job.heartbeat_timeout_s
                job.stop(f"Stopped: the page sent no heartbeat for {timeout:g} s while queued (tab closed?).")
            else:
                job._launch()

    def counts(self) -> tuple[int, int]:
        """(workers running, jobs queued) now, in this process."""
        with self._lock:
            return self._running, len(self._queue)


def load() -> tuple[int, int]:
    """(jobs training now, jobs waiting in a queue) in this process, every lane."""
    counts = [lane.counts() for lane in list(_LANES)]
    return sum(running for running, _ in counts), sum(queued for _, queued in counts)


def paced_interval_s(base_s: float, cores: int | None = None) -> float:
    """`base_s` stretched by the jobs training per core beyond one: every page's redraws share the server's process.

    With the default cap (one job per core) this is `base_s`. A cap raised to 20 on 2 cores, with 20 pages redrawing
    every 0.2 s, kept the server's process at a full core and starved pages for minutes (bench/load_test.py
    --driver websocket --max-running-jobs 20: 4 of 20 fits unfinished after 600 s); paced, the server's work stays
    that of one job per core.
    """
    running, _ = load()
    return base_s * max(1.0, running / (cores or usable_cores()))
