"""Default fits beside a full-speed fit on 2 core slots: how much slower than alone, with and without the light lane.

Run: `python bench/light_lane.py` (3 rounds; --rounds). The job cap is 2 (a 2-core server). In each round one
full-speed Bayes by Backprop fit of 1,000,000 steps holds a core slot (a hostile student's ordinary fit), then two
default fits (Bayes by Backprop, 2,000 steps at the page's 300 steps/s) start together; each one's time from the
start to its end is divided by the time of the same fit alone. "before": no fit is light (LIGHT_CPU_SHARE below
zero), so the two default fits take turns in the one free core slot; "now": they take the light lane. Rounds
alternate before and now; the slowdowns, their medians and the slowest are printed with the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.priors import Model
from bayesdemo.core.scenario import DEFAULT_SPEED
from bayesdemo.methods import FitConfig
from bayesdemo.workers import jobs
from bayesdemo.workers.jobs import Job

DATA = generate(DataConfig(n=100, seed=1))
DEFAULT_FIT = FitConfig(method="bbb", steps=2000)
FULL_SPEED_FIT = FitConfig(method="bbb", steps=1_000_000, seed=9)


def default_seconds(count: int) -> list[float]:
    """Start `count` default fits together; each one's seconds from the start to its end."""
    started = [Job(DATA, Model(), [DEFAULT_FIT], max_steps_per_second=DEFAULT_SPEED) for _ in range(count)]
    start = time.monotonic()
    for job in started:
        job.start()
    seconds = []
    for job in started:
        job.join(300.0)
        seconds.append(time.monotonic() - start)
    return seconds


def beside_full_speed(light: bool) -> list[float]:
    """Two default fits' seconds while a full-speed fit holds a core slot."""
    jobs.LIGHT_CPU_SHARE = 0.25 if light else -1.0
    full_speed = Job(DATA, Model(), [FULL_SPEED_FIT])
    full_speed.start()
    full_speed.wait_for_training(60.0)
    try:
        return default_seconds(2)
    finally:
        full_speed.stop()
        full_speed.join(10.0)


def main() -> None:
    """Time a default fit alone, then alternate rounds before and now; print the slowdowns."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of before and now (default 3)")
    arguments = parser.parse_args()
    jobs.MAX_RUNNING_JOBS = 2
    jobs.HEAVY_JOB_S = float("inf")  # the full-speed fit holds a core slot, not the heavy lane
    jobs.warm_up()
    default_seconds(1)  # the first worker starts the forkserver: not counted
    alone = default_seconds(1)[0]
    slowdowns: dict[str, list[float]] = {"before": [], "now": []}
    for _ in range(arguments.rounds):
        for name in ("before", "now"):
            slowdowns[name] += [seconds / alone for seconds in beside_full_speed(light=name == "now")]
    print(f"a default fit alone: {alone:.2f} s; load average (1, 5, 15 min) {os.getloadavg()}")
    for name, values in slowdowns.items():
        print(
            f"{name}: slowdowns {[round(value, 2) for value in values]}, median {statistics.median(values):.2f}x, "
            f"slowest {max(values):.2f}x"
        )


if __name__ == "__main__":
    main()
