"""Slots count CPU and are shared: machine-wide slot files across processes (a dead holder's slot comes back, a
queued job takes it by itself), and a light lane where paced fits of little CPU start beside full-speed ones."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.priors import Model
from bayesdemo.fitting import budget
from bayesdemo.methods import FitConfig
from bayesdemo.workers import jobs as jobs_module
from bayesdemo.workers.jobs import Job, cpu_share
from bayesdemo.workers.scheduler import Lane, SlotFiles
from tests.support.waiting import wait_for

DATASET = generate(DataConfig(n=100, seed=3))
MODEL = Model(noise_sd=0.1)
LONG_BBB = FitConfig(method="bbb", steps=1_000_000, seed=1)
DEFAULT_BBB = FitConfig(method="bbb", steps=2000, seed=2)  # a default fit: the page's default Bayes by Backprop
DEFAULT_PACE = 300.0  # the page's default speed, steps per second (core/scenario.DEFAULT_SPEED)

# Another process: takes `count` slots of the lane "core" (of `slots`) in FOLDER, says which it got, then holds them.
HOLDER = """
import sys, time
from pathlib import Path
from bayesdemo.workers.scheduler import SlotFiles
folder, slots, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
files = SlotFiles(folder, "core")
print(" ".join(str(files.take(slots) is not None) for _ in range(count)), flush=True)
time.sleep(600)
"""


@pytest.fixture
def holders():
    """Start holder processes: holders(folder, slots, count) -> (process, its first line); killed afterwards."""
    started: list[subprocess.Popen] = []

    def start(folder, slots: int, count: int) -> tuple[subprocess.Popen, str]:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(folder), str(slots), str(count)], stdout=subprocess.PIPE, text=True
        )
        started.append(process)
        assert process.stdout is not None
        return process, process.stdout.readline().strip()

    yield start
    for process in started:
        process.kill()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def made():
    """Jobs made in a test, stopped afterwards whatever happened."""
    jobs: list[Job] = []
    yield jobs
    for job in jobs:
        job.stop()
        job.join(5.0)


def test_two_processes_sharing_a_folder_hold_at_most_the_slots_and_a_killed_holders_slot_comes_back(tmp_path, holders):
    first, got = holders(tmp_path, 2, 3)
    assert got == "True True False", "two slots of two, the third refused"
    _, got = holders(tmp_path, 2, 1)
    assert got == "False", "another process finds none free"
    here = SlotFiles(tmp_path, "core")
    assert here.take(2) is None
    first.kill()  # no clean-up of its own: the kernel drops its locks
    first.wait(10)
    taken = [here.take(2), here.take(2)]
    assert None not in taken and here.take(2) is None
    for descriptor in taken:
        SlotFiles.give_back(descriptor)
    assert here.take(2) is not None


def test_a_job_queued_for_a_slot_another_process_holds_starts_by_itself_when_that_process_dies(
    tmp_path, holders, made, monkeypatch
):
    monkeypatch.setattr(jobs_module, "_SCHEDULER", Lane("core", lambda: 1, slot_dir=lambda: tmp_path))
    monkeypatch.setattr(jobs_module, "HEAVY_JOB_S", float("inf"))  # the long fit takes the core lane
    holder, got = holders(tmp_path, 1, 1)
    assert got == "True"
    job = Job(DATASET, MODEL, [LONG_BBB])  # full speed
    made.append(job)
    job.start()
    assert job.state == "queued" and job.queue_position == 1
    time.sleep(0.6)  # a few retries find the slot still held
    assert job.state == "queued"
    holder.kill()
    assert wait_for(lambda: job.state == "running", 10.0), "it retries without a page polling it"
    _, got = holders(tmp_path, 1, 1)
    assert got == "False", "the job's slot is held machine-wide"
    job.stop()
    assert job.join(10.0)
    _, got = holders(tmp_path, 1, 1)
    assert got == "True", "and handed back when it ends"


def test_a_jobs_cpu_share_is_its_full_speed_cost_per_step_times_its_pace():
    # The reference from budget's constants directly: Bayes by Backprop's closed-form step costs SECONDS_PER_STEP;
    # noise injection on n = 100 points, 1 sample, adds 100 draws at SECONDS_PER_SAMPLE_POINT each.
    bbb_step_s = budget.SECONDS_PER_STEP["bbb"]
    assert cpu_share([DEFAULT_BBB], DATASET.n, DEFAULT_PACE) == pytest.approx(DEFAULT_PACE * bbb_step_s)
    noise = FitConfig(method="noise", steps=3000, samples=1)
    noise_step_s = budget.SECONDS_PER_STEP["noise"] + 100 * budget.SECONDS_PER_SAMPLE_POINT["noise"]
    both = cpu_share([DEFAULT_BBB, noise], DATASET.n, DEFAULT_PACE)
    assert both == pytest.approx(DEFAULT_PACE * (bbb_step_s + noise_step_s))
    assert cpu_share([DEFAULT_BBB], DATASET.n, 0.0) == 1.0, "unpaced: a whole core"
    assert cpu_share([DEFAULT_BBB], DATASET.n, 1e6) == 1.0, "at most a core: the fits share one worker"


def test_with_the_core_slots_full_a_paced_default_fit_starts_at_once_and_the_light_lane_is_bounded(made, monkeypatch):
    monkeypatch.setattr(jobs_module, "MAX_RUNNING_JOBS", 1)
    monkeypatch.setattr(jobs_module, "HEAVY_JOB_S", float("inf"))  # the long fit takes the core slot
    monkeypatch.setattr(jobs_module, "LIGHT_JOBS_PER_SLOT", 2)  # two light slots per core slot: 2 here
    full_speed = Job(DATASET, MODEL, [LONG_BBB])
    made.append(full_speed)
    full_speed.start()
    assert full_speed.state == "running"
    paced = [Job(DATASET, MODEL, [DEFAULT_BBB], max_steps_per_second=DEFAULT_PACE) for _ in range(3)]
    made.extend(paced)
    for job in paced:
        job.start()
    assert [job.state for job in paced] == ["running", "running", "queued"], "two light slots, the third waits"
    assert paced[2].queue_position == 1
    # Not light: the same fit unpaced, and a Pyro SVI fit at the same pace (2.5 ms a step: 0.75 of a core).
    unpaced = Job(DATASET, MODEL, [DEFAULT_BBB])
    svi = Job(DATASET, MODEL, [FitConfig(method="svi", steps=2000)], max_steps_per_second=DEFAULT_PACE)
    made.extend([unpaced, svi])
    unpaced.start()
    svi.start()
    assert unpaced.state == "queued" and svi.state == "queued"
    assert unpaced.queue_position == 1 and svi.queue_position == 2, "they wait for the core slot, in turn"
    assert paced[0].join(60.0) and paced[0].view().fits[0].status == "done"
    assert wait_for(lambda: paced[2].state == "running"), "a freed light slot goes to the next light job"
    assert unpaced.state == "queued", "never to a full-speed one"


def test_a_light_job_sped_up_keeps_its_slot_and_resumed_takes_the_lane_of_its_speed_now(made, monkeypatch):
    monkeypatch.setattr(jobs_module, "MAX_RUNNING_JOBS", 1)
    monkeypatch.setattr(jobs_module, "HEAVY_JOB_S", float("inf"))
    full_speed = Job(DATASET, MODEL, [LONG_BBB])
    paced = Job(DATASET, MODEL, [LONG_BBB], max_steps_per_second=DEFAULT_PACE)
    made.extend([full_speed, paced])
    full_speed.start()
    paced.start()
    assert paced.state == "running"
    paced.set_speed(0.0)  # full speed now: it keeps its admission (the bounded oversubscription)
    assert paced.state == "running"
    paced.pause(wait_s=10.0)
    paced.resume()
    assert paced.state == "queued", "resumed at full speed, it waits for the core slot"


def test_a_slot_folder_that_cannot_be_made_leaves_the_lane_counting_this_process_alone(tmp_path):
    blocked = tmp_path / "a file"
    blocked.write_text("")  # a file where the folder should be: mkdir fails
    lane = Lane("core", lambda: 1, slot_dir=lambda: blocked / "slots")
    first, second = object(), object()
    assert lane.admit(first) is True, "no error on the page: the lane counts here"
    assert lane.admit(second) is False and lane.counts() == (1, 1)
    lane.withdraw(second)
