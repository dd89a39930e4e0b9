"""Server CPU time spent receiving one fit's snapshots from its training worker: the reports as the worker sent
them before (one message per training round, every snapshot, pickled one by one) against now (at most one message
per REPORT_INTERVAL_S, only the snapshots the page's thinning needs and the latest, packed into arrays).

Run: `python bench/receive_cpu.py` (5 rounds; --rounds, --json FILE). Two fits are replayed, each as its worker's
stream of messages: a default fit at the page's default pace (Bayes by Backprop, 2,000 steps at 300 steps/s,
a snapshot every 10 steps: before, one message per step, the pace letting the worker take one step per round) and a
fit at full speed (50,000 steps/s for 10 s, a snapshot every 10 steps: before, one message per 0.02 s slice). A
forked process sends each stream's pickled messages through a multiprocessing pipe; the server side (this process's
main thread) receives and handles them as Job's listener does (before: the handler as it was, written out here
statement for statement; now: Job._receive_progress itself). The figure is that thread's CPU time (user + system)
per second of the fit's training. Rounds alternate before and now, so a busy machine slows both alike; medians are
reported, with the load average.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pickle
import statistics
import sys
import threading
import time
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bayesdemo.fitting.runner import Snapshot
from bayesdemo.workers.child import REPORT_INTERVAL_S, SLICE_S
from bayesdemo.workers.jobs import MAX_SNAPSHOTS, Job
from bayesdemo.workers.messages import FitProgress, Progress, SnapshotBatch
from bayesdemo.workers.views import FitState, SnapshotFilter, ThinnedSnapshots


@dataclass(frozen=True)
class OldProgress:
    """The report as the worker sent it before: one fit's new snapshots, each pickled whole."""

    index: int
    snapshots: tuple[Snapshot, ...]
    status: str
    message: str
    steps_done: int
    seconds: float
    steps_per_second: float


@dataclass(frozen=True)
class Fit:
    """A fit replayed: its speed in steps per second, steps, and steps between snapshots."""

    name: str
    steps_per_second: float
    steps: int
    snapshot_every: int
    old_message_s: float  # how often the worker sent a report before


FITS = (
    Fit("default pace (300 steps/s, 2,000 steps)", 300.0, 2000, 10, 1 / 300.0),
    Fit("full speed (50,000 steps/s, 10 s)", 50_000.0, 500_000, 10, SLICE_S),
)


def snapshot(step: int, generator: np.random.Generator) -> Snapshot:
    """A snapshot at `step` with moments as a fit's are: a (2,) mean and sd and a (2, 2) covariance."""
    sd = generator.random(2)
    return Snapshot(step, step * 1e-4, float(generator.random()), generator.normal(size=2), sd, np.diag(sd**2))


def messages(fit: Fit, old: bool) -> list[bytes]:
    """The fit's stream of reports as the worker sent them, pickled."""
    generator = np.random.default_rng(0)
    interval = fit.old_message_s if old else REPORT_INTERVAL_S
    steps_per_message = max(1, round(fit.steps_per_second * interval))
    thinning, place, out = SnapshotFilter(MAX_SNAPSHOTS), 0, []
    for first in range(0, fit.steps + 1, steps_per_message):
        last = min(fit.steps, first + steps_per_message - 1)
        taken = [snapshot(step, generator) for step in range(first, last + 1) if step % fit.snapshot_every == 0]
        steps_done, seconds = last, last / fit.steps_per_second
        if old:
            report: object = OldProgress(0, tuple(taken), "running", "", steps_done, seconds, fit.steps_per_second)
        else:
            indexed = []
            for index, item in enumerate(taken):
                if thinning.sends() or index == len(taken) - 1:
                    indexed.append((place, item))
                place += 1
            batch = SnapshotBatch.pack(indexed) if indexed else None
            progress = FitProgress(0, batch, "running", "", steps_done, seconds, fit.steps_per_second)
            report = Progress((progress,))
        out.append(pickle.dumps(report, protocol=pickle.HIGHEST_PROTOCOL))
    return out


def old_receive(state: list[FitState], trained: threading.Event, progress: OldProgress) -> None:
    """Job._receive_progress before, statement for statement."""
    for item in progress.snapshots:
        for array in (item.mean, item.sd, item.cov):
            array.setflags(write=False)
    old = state[progress.index]
    state[progress.index] = FitState(
        old.snapshots.add(progress.snapshots),
        progress.status,
        progress.message,
        progress.steps_done,
        progress.seconds,
        progress.steps_per_second,
    )
    if any(item.step > 0 for item in progress.snapshots):
        trained.set()


def send_all(connection, stream: list[bytes]) -> None:
    """The worker's side: send every pickled report, then None."""
    for data in stream:
        connection.send_bytes(data)
    connection.send(None)
    connection.close()


def receive_cpu_s(stream: list[bytes], old: bool) -> tuple[float, int]:
    """(CPU seconds of this thread receiving and handling `stream`, snapshots the page keeps at the end)."""
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe(duplex=False)
    sender = context.Process(target=send_all, args=(theirs, stream))
    sender.start()
    theirs.close()
    job = types.SimpleNamespace(_progress=[FitState(ThinnedSnapshots(MAX_SNAPSHOTS), "ready", "", 0, 0.0, 0.0)])
    job._trained = threading.Event()
    start = time.thread_time()
    while (message := ours.recv()) is not None:
        if old:
            old_receive(job._progress, job._trained, message)
        else:
            Job._receive_progress(job, message)  # type: ignore[arg-type]
    spent = time.thread_time() - start
    sender.join()
    ours.close()
    return spent, len(job._progress[0].snapshots.snapshots)


def main() -> None:
    """Replay each fit's stream before and now, alternating, and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of before and now per fit (default 5)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    arguments = parser.parse_args()
    load_before = os.getloadavg()
    results = []
    for fit in FITS:
        streams = {"before": messages(fit, old=True), "now": messages(fit, old=False)}
        training_s = fit.steps / fit.steps_per_second
        spent: dict[str, list[float]] = {"before": [], "now": []}
        kept: dict[str, int] = {}
        for _ in range(arguments.rounds):
            for name in ("before", "now"):
                seconds, kept[name] = receive_cpu_s(streams[name], old=name == "before")
                spent[name].append(seconds)
        assert kept["before"] == kept["now"], kept  # the page keeps the same snapshots either way
        row = {
            "fit": fit.name,
            "messages": {name: len(stream) for name, stream in streams.items()},
            "bytes": {name: sum(map(len, stream)) for name, stream in streams.items()},
            "server_ms_per_training_s": {
                name: 1000 * statistics.median(values) / training_s for name, values in spent.items()
            },
            "snapshots_kept": kept["now"],
        }
        results.append(row)
        per_s = row["server_ms_per_training_s"]
        print(
            f"{fit.name}: server CPU per second of training, median of {arguments.rounds}: "
            f"before {per_s['before']:.2f} ms ({row['messages']['before']} messages), "
            f"now {per_s['now']:.2f} ms ({row['messages']['now']} messages); "
            f"{per_s['before'] / per_s['now']:.1f}x less"
        )
    report = {"load_average_before": load_before, "load_average_after": os.getloadavg(), "fits": results}
    print(f"load average (1, 5, 15 min): before {load_before}, after {report['load_average_after']}")
    if arguments.json:
        arguments.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
