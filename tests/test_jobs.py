"""Jobs train off the calling thread: pause, stop, heartbeat, speed cap, seeded equality with a solo run, divergence."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.priors import Model
from bayesdemo.core.validation import ConfigError
from bayesdemo.fitting.runner import RunConfig, run_to_end
from bayesdemo.methods import FitConfig, make_method
from bayesdemo.workers import jobs as jobs_module
from bayesdemo.workers.jobs import Job, JobView, unique_labels
from tests.support.waiting import wait_for

DATASET = generate(DataConfig(n=100, seed=3))
MODEL = Model(noise_sd=0.1)
LONG_BBB = FitConfig(method="bbb", steps=1_000_000, seed=1)


@pytest.fixture
def jobs(monkeypatch):
    """Jobs made in a test, stopped afterwards whatever happened. Their long fits fill the ordinary slots: none is
    heavy here (tests/test_hostile.py checks the heavy fits' lane)."""
    monkeypatch.setattr(jobs_module, "HEAVY_JOB_S", float("inf"))
    made: list[Job] = []
    yield made
    for job in made:
        job.stop()
        job.join(5.0)


def test_job_trains_in_background_and_finishes(jobs):
    job = Job(DATASET, MODEL, [FitConfig(method="bbb", steps=300, seed=2)], snapshot_every=10)
    jobs.append(job)
    assert job.view().state == "ready"
    job.start()
    assert wait_for(lambda: job.view().state == "finished")
    view = job.view()
    fit = view.fits[0]
    assert fit.status == "done"
    assert fit.steps_done == 300 and fit.fraction_done == 1.0
    assert [s.step for s in fit.snapshots] == list(range(0, 301, 10))
    assert fit.steps_per_second == 0.0 and fit.seconds > 0
    assert view.traces()[0][0] == fit.label == "Bayes by Backprop"


def test_waiting_for_training_returns_once_steps_are_reported_and_times_out_before(jobs):
    job = Job(DATASET, MODEL, [LONG_BBB])
    jobs.append(job)
    assert not job.wait_for_training(0.05)  # not started: nothing can arrive
    job.start()
    assert job.wait_for_training(30.0)
    assert job.view().steps_done > 0 and len(job.view().fits[0].snapshots) > 1


# Every kind of fit a page can start: each method and guide, minibatches, learned noise, non-Gaussian priors, each
# objective and KL estimator, local reparameterisation, Pyro's own Trace_ELBO.
EVERY_KIND_OF_FIT = """
import json, sys
from bayesdemo.workers import jobs
for module in jobs.PRELOAD:
    __import__(module)
from bayesdemo.core.data import DataConfig, generate
from bayesdemo.methods import FitConfig, GUIDES, make_method
from bayesdemo.core.config import OBJECTIVES
from bayesdemo.core.priors import Model, ParameterPrior, Prior
from bayesdemo.fitting.runner import Run, RunConfig
dataset = generate(DataConfig(n=200, seed=1))
laplace = Model(prior=Prior(ParameterPrior(kind="laplace", scale=1.0), ParameterPrior(kind="student_t", scale=1.0)))
fits = [(Model(), FitConfig(method=m, steps=5)) for m in ("noise", "bbb")]
fits += [(Model(), FitConfig(method="svi", guide=g, steps=5, svi_elbo=e)) for g in GUIDES for e in ("direct", "trace")]
fits += [(Model(), FitConfig(method="bbb", objective=o, steps=5)) for o in OBJECTIVES]
fits += [(Model(), FitConfig(method=m, batch_size=20, learn_noise=True, steps=5)) for m in ("bbb", "svi")]
fits += [(laplace, FitConfig(method=m, kl="monte_carlo", steps=5)) for m in ("bbb", "svi")]
fits += [(Model(), FitConfig(method="bbb", local_reparam=True, batch_size=50, steps=5))]
before = set(sys.modules)
for model, config in fits:
    Run(make_method(dataset, model, config), config.steps_in_force, RunConfig(snapshot_every=1)).advance(10.0)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_the_forkserver_preload_holds_everything_a_workers_first_steps_import():
    # A module a worker imports at its first steps delays the first chart of every Run (sympy: 0.3 s).
    result = subprocess.run(
        [sys.executable, "-c", EVERY_KIND_OF_FIT], capture_output=True, text=True, timeout=300, check=True
    )
    imported = json.loads(result.stdout.strip().splitlines()[-1])
    heavy = [name for name in imported if name.split(".")[0] in ("torch", "pyro", "sympy", "mpmath", "scipy")]
    assert heavy == []


def test_pause_stops_step_count_and_resume_continues(jobs):
    job = Job(DATASET, MODEL, [LONG_BBB])
    jobs.append(job)
    job.start()
    assert wait_for(lambda: job.view().steps_done > 50)
    job.pause(wait_s=10.0)
    paused = job.view()
    assert paused.state == "paused"
    time.sleep(0.3)
    assert job.view().steps_done == paused.steps_done
    assert job.view().fits[0].snapshots == paused.fits[0].snapshots
    job.resume()
    assert job.view().state == "running"
    assert wait_for(lambda: job.view().steps_done > paused.steps_done + 20)


def test_stop_ends_the_job_and_keeps_snapshots(jobs):
    job = Job(DATASET, MODEL, [LONG_BBB, FitConfig(method="svi", steps=1_000_000, seed=1)])
    jobs.append(job)
    job.start()
    assert wait_for(lambda: all(fit.steps_done > 10 for fit in job.view().fits))
    job.stop()
    assert job.join(5.0)
    view = job.view()
    assert view.state == "stopped" and not view.active
    assert [fit.status for fit in view.fits] == ["stopped", "stopped"]
    assert all(fit.snapshots and fit.message.startswith("Stopped at step") for fit in view.fits)
    steps = view.steps_done
    time.sleep(0.1)
    assert job.view().steps_done == steps


def test_stop_before_start_and_while_paused(jobs):
    never_started = Job(DATASET, MODEL, [LONG_BBB])
    jobs.append(never_started)
    never_started.stop()
    assert never_started.view().state == "stopped"
    assert never_started.view().fits[0].status == "stopped"
    paused = Job(DATASET, MODEL, [LONG_BBB])
    jobs.append(paused)
    paused.start()
    paused.pause()
    paused.stop()
    assert paused.join(5.0)
    assert paused.view().state == "stopped"


def test_heartbeat_timeout_stops_an_abandoned_job(jobs):
    job = Job(DATASET, MODEL, [LONG_BBB], heartbeat_timeout_s=0.3)
    jobs.append(job)
    job.start()
    for _ in range(6):  # touched: alive for well past the timeout
        time.sleep(0.1)
        job.touch()
    assert job.view().state == "running"
    assert wait_for(lambda: job.view().state == "stopped", timeout_s=5.0)
    view = job.view()
    assert "heartbeat" in view.message
    assert view.fits[0].status == "stopped"


def test_heartbeat_also_stops_a_paused_job(jobs):
    job = Job(DATASET, MODEL, [LONG_BBB], heartbeat_timeout_s=0.3)
    jobs.append(job)
    job.start()
    job.pause()
    assert wait_for(lambda: job.view().state == "stopped", timeout_s=5.0)


def test_speed_cap_is_respected_and_can_change(jobs):
    job = Job(DATASET, MODEL, [LONG_BBB], max_steps_per_second=50.0)
    jobs.append(job)
    job.start()
    time.sleep(0.2)
    before, started = job.view().steps_done, time.monotonic()
    time.sleep(1.0)
    rate = (job.view().steps_done - before) / (time.monotonic() - started)
    assert 20 <= rate <= 80, rate
    job.set_speed(0.0)  # unlimited: BBB runs at thousands of steps per second
    time.sleep(0.2)
    before, started = job.view().steps_done, time.monotonic()
    time.sleep(0.5)
    fast = (job.view().steps_done - before) / (time.monotonic() - started)
    assert fast > 4 * 80, fast
    assert job.view().fits[0].steps_per_second > 80
    with pytest.raises(ConfigError, match="max_steps_per_second"):
        job.set_speed(-1.0)


def test_jobs_match_solo_runs_with_the_same_seed(jobs):
    """Two jobs at once (Pyro and BBB, sharing the process) reproduce solo seeded runs step for step."""
    configs = [FitConfig(method="svi", guide="normal", steps=300, seed=5), FitConfig(method="bbb", steps=600, seed=6)]
    together = [Job(DATASET, MODEL, [config], snapshot_every=20) for config in configs]
    jobs.extend(together)
    for job in together:
        job.start()
    for job in together:
        assert job.join(60.0)
    for job, config in zip(together, configs, strict=True):
        assert_same_as_solo(job, config, snapshot_every=20)


def assert_same_as_solo(job: Job, config: FitConfig, snapshot_every: int) -> None:
    """The job's only fit equals a solo seeded run of `config`, snapshot for snapshot."""
    solo = run_to_end(
        make_method(DATASET, MODEL, config), config.steps_in_force, RunConfig(snapshot_every=snapshot_every)
    )
    fit = job.view().fits[0]
    assert fit.status == solo.status == "done"
    assert [s.step for s in fit.snapshots] == [s.step for s in solo.snapshots]
    for mine, theirs in zip(fit.snapshots, solo.snapshots, strict=True):
        np.testing.assert_array_equal(mine.mean, theirs.mean)
        np.testing.assert_array_equal(mine.cov, theirs.cov)
        assert mine.loss == theirs.loss or (np.isnan(mine.loss) and np.isnan(theirs.loss))


def test_two_pyro_svi_jobs_at_once_match_solo_runs_and_leave_nothing_broken(jobs, two_slots):
    """Pyro's process-wide param store and handler stack: two SVI fits at once, then one more, each as if alone."""
    configs = [
        FitConfig(method="svi", guide="normal", steps=400, seed=11),
        FitConfig(method="svi", guide="mvn", steps=400, seed=12),
    ]
    together = [Job(DATASET, MODEL, [config], snapshot_every=25) for config in configs]
    jobs.extend(together)
    for job in together:
        job.start()
    assert [job.view().state for job in together] == ["running", "running"], "both train at once"
    assert wait_for(lambda: all(0 < job.view().steps_done < 400 for job in together), timeout_s=30.0)
    for job in together:
        assert job.join(60.0)
    for job, config in zip(together, configs, strict=True):
        assert_same_as_solo(job, config, snapshot_every=25)
    later = Job(DATASET, MODEL, [configs[0]], snapshot_every=25)
    jobs.append(later)
    later.start()
    assert later.join(60.0)
    assert_same_as_solo(later, configs[0], snapshot_every=25)


def test_divergence_ends_with_message_and_last_finite_snapshot(jobs):
    config = FitConfig(method="noise", optimizer="sgd", lr=10.0, steps=5000, seed=0)
    job = Job(DATASET, MODEL, [config], snapshot_every=1)
    jobs.append(job)
    job.start()
    assert job.join(30.0)
    view = job.view()
    fit = view.fits[0]
    assert fit.status == "diverged"
    assert "Lower the learning rate" in fit.message
    assert fit.steps_done < 5000
    assert fit.snapshots and all(np.all(np.isfinite(s.mean)) and np.all(np.isfinite(s.sd)) for s in fit.snapshots)
    assert view.state == "finished"


def test_round_robin_advances_every_fit_and_labels_are_unique(jobs):
    configs = [FitConfig(method="bbb", steps=1_000_000, seed=s) for s in (1, 2)] + [
        FitConfig(method="svi", guide="mvn", steps=1_000_000)
    ]
    job = Job(DATASET, MODEL, configs)
    jobs.append(job)
    assert job.labels == ("Bayes by Backprop", "Bayes by Backprop #2", configs[2].label)
    assert unique_labels(configs) == list(job.labels)
    job.start()
    assert wait_for(lambda: all(fit.steps_done > 20 for fit in job.view().fits))
    assert isinstance(job.view(), JobView)


def test_bad_configuration_raises_on_the_callers_thread():
    with pytest.raises(ConfigError, match="batch_size"):
        Job(DATASET, MODEL, [FitConfig(method="bbb", batch_size=1000)])
    with pytest.raises(ValueError, match="fit_configs"):
        Job(DATASET, MODEL, [])
    with pytest.raises(ConfigError, match="max_steps_per_second"):
        Job(DATASET, MODEL, [LONG_BBB], max_steps_per_second=-5)


def test_a_worker_that_dies_ends_the_job_with_a_message(jobs):
    job = Job(DATASET, MODEL, [LONG_BBB])
    jobs.append(job)
    job.start()
    assert wait_for(lambda: job.view().steps_done > 10)
    job._process.kill()  # as the operating system would, out of memory
    assert job.join(10.0)
    view = job.view()
    assert view.state == "stopped" and "ended unexpectedly" in view.message
    assert view.fits[0].status == "stopped" and view.fits[0].snapshots


@pytest.fixture
def two_slots(monkeypatch):
    """At most two jobs train at once in this test, whatever the machine's core count."""
    monkeypatch.setattr(jobs_module, "MAX_RUNNING_JOBS", 2)


def test_jobs_beyond_the_cap_queue_in_order_and_start_when_a_slot_frees(jobs, two_slots):
    running = [Job(DATASET, MODEL, [LONG_BBB]) for _ in range(2)]
    queued = [Job(DATASET, MODEL, [FitConfig(method="bbb", steps=200, seed=s)]) for s in (1, 2)]
    jobs.extend(running + queued)
    for job in running + queued:
        job.start()
    assert [job.view().state for job in running] == ["running", "running"]
    views = [job.view() for job in queued]
    assert [(view.state, view.queue_position) for view in views] == [("queued", 1), ("queued", 2)]
    assert all(view.active and view.steps_done == 0 for view in views)
    assert jobs_module.load() == (2, 2)
    time.sleep(0.3)
    assert queued[0].view().state == "queued", "no slot is free: it keeps waiting"
    running[0].stop()
    assert queued[0].join(30.0) and queued[0].view().state == "finished"
    assert queued[0].view().fits[0].steps_done == 200 and queued[0].view().queue_position is None
    assert queued[1].join(30.0) and queued[1].view().fits[0].status == "done"
    assert running[1].view().state == "running"


def test_a_stopped_or_abandoned_queued_job_leaves_the_queue(jobs, two_slots):
    running = [Job(DATASET, MODEL, [LONG_BBB]) for _ in range(2)]
    stopped = Job(DATASET, MODEL, [LONG_BBB])
    abandoned = Job(DATASET, MODEL, [LONG_BBB], heartbeat_timeout_s=0.3)
    watched = Job(DATASET, MODEL, [LONG_BBB])
    jobs.extend([*running, stopped, abandoned, watched])
    for job in [*running, stopped, abandoned, watched]:
        job.start()
    assert watched.view().queue_position == 3
    stopped.stop()
    assert stopped.view().state == "stopped" and stopped.view().fits[0].status == "stopped"
    assert watched.view().queue_position == 2
    time.sleep(0.5)  # `abandoned` is never touched; `watched` is touched by its view
    view = watched.view()
    assert view.queue_position == 1, "the abandoned job left the queue"
    assert abandoned.view().state == "stopped" and "heartbeat" in abandoned.view().message
    running[0].stop()
    assert wait_for(lambda: watched.view().state == "running")
    assert jobs_module.load() == (2, 0)


def test_snapshots_per_fit_are_thinned_evenly_past_the_cap(jobs, monkeypatch):
    monkeypatch.setattr(jobs_module, "MAX_SNAPSHOTS", 50)
    config = FitConfig(method="bbb", steps=3000, seed=4)
    job = Job(DATASET, MODEL, [config], snapshot_every=1)
    jobs.append(job)
    job.start()
    assert job.join(60.0)
    fit = job.view().fits[0]
    steps = [snapshot.step for snapshot in fit.snapshots]
    assert fit.status == "done" and len(steps) <= 51
    assert steps[0] == 0 and steps[-1] == 3000, "the first and the latest snapshot are always kept"
    gaps = set(np.diff(steps[:-1]).tolist())
    assert len(gaps) == 1 and gaps.pop() >= 3000 // 50, "the kept snapshots are evenly spaced"
    solo = run_to_end(make_method(DATASET, MODEL, config), config.steps_in_force, RunConfig(snapshot_every=1))
    np.testing.assert_array_equal(fit.snapshots[-1].mean, solo.snapshots[-1].mean)


def test_a_fast_fit_reports_at_most_ten_times_a_second_sending_only_the_snapshots_the_page_keeps(jobs, monkeypatch):
    # The page's process pays per message and per snapshot unpickled (bench/receive_cpu.py): a fit at full speed took
    # one message per 0.02 s slice, with every snapshot, thousands a second the page then dropped.
    monkeypatch.setattr(jobs_module, "MAX_SNAPSHOTS", 50)
    received = {"messages": 0, "snapshots": 0}
    receive = Job._receive_progress

    def counted(job, progress):
        received["messages"] += 1
        received["snapshots"] += sum(len(fit.snapshots.indices) for fit in progress.fits if fit.snapshots)
        receive(job, progress)

    monkeypatch.setattr(Job, "_receive_progress", counted)
    job = Job(DATASET, MODEL, [LONG_BBB], snapshot_every=1)
    jobs.append(job)
    job.start()
    assert job.wait_for_training(30.0)
    started = time.monotonic()
    time.sleep(1.5)
    job.stop()
    elapsed = time.monotonic() - started
    taken = job.view().steps_done + 1  # a snapshot every step, and one at step 0
    assert taken > 2000, "a fast fit: thousands of snapshots"
    # One report per 0.1 s of training (it started before the window: twice the window's share covers that), the last.
    assert received["messages"] <= 2 * (elapsed / 0.1) + 2
    # The kept ones (50, then at most 26 more per doubling of the stride), one per doubling and one latest per report;
    # the stride doubles at most log2(taken) times.
    doublings = math.ceil(math.log2(taken))
    assert received["snapshots"] <= 50 + doublings * 26 + doublings + received["messages"] < taken / 4
    steps = [snapshot.step for snapshot in job.view().fits[0].snapshots]
    assert len(steps) <= 51 and steps[0] == 0 and steps[-1] == job.view().steps_done


@pytest.mark.parametrize(
    ("running", "cores", "expected_s"),
    [(0, 2, 0.2), (2, 2, 0.2), (1, 4, 0.2), (4, 2, 0.4), (20, 2, 2.0)],
)
def test_redraws_slow_down_only_when_more_jobs_train_than_there_are_cores(monkeypatch, running, cores, expected_s):
    monkeypatch.setattr(jobs_module._SCHEDULER, "counts", lambda: (running, 0))
    assert jobs_module.paced_interval_s(0.2, cores=cores) == pytest.approx(expected_s)


def test_paced_redraws_follow_the_jobs_that_really_train(jobs, two_slots):
    # Two jobs held in their workers by a speed cap, on one core: the redraw interval doubles; both ended, it is back.
    held = [Job(DATASET, MODEL, [LONG_BBB], max_steps_per_second=10) for _ in range(2)]
    jobs.extend(held)
    for job in held:
        job.start()
    assert wait_for(lambda: jobs_module.load()[0] == 2)
    assert jobs_module.paced_interval_s(0.2, cores=1) == pytest.approx(0.4)
    for job in held:
        job.stop()
    assert wait_for(lambda: jobs_module.load()[0] == 0)
    assert jobs_module.paced_interval_s(0.2, cores=1) == pytest.approx(0.2)


def test_until_target_in_a_job_stops_where_a_solo_run_does_and_the_view_says_so(jobs):
    """The worker keeps the convergence window of snapshots it has sent, so the rule sees what a solo run sees."""
    from bayesdemo.core.exact import exact_posterior
    from bayesdemo.fitting.runner import fit_run

    config = FitConfig(method="bbb", until_target=True, seed=2)
    job = Job(DATASET, MODEL, [config], snapshot_every=10)
    jobs.append(job)
    job.start()
    assert job.join(120.0)
    solo = fit_run(DATASET, MODEL, config, RunConfig(snapshot_every=10))
    for _ in solo:
        pass
    fit = job.view().fits[0]
    assert solo.message.startswith("At target at step ")
    assert fit.status == "done" and fit.last.step == solo.last.step < config.steps_in_force
    assert fit.message.startswith(f"At target at step {solo.last.step} ")
    exact = exact_posterior(DATASET, MODEL)
    assert fit.status_text(exact, DATASET.least_squares()) == "Finished · at target"


def test_a_paused_job_gives_its_slot_to_the_next_in_line_and_resumes_in_turn_keeping_its_fit(jobs, monkeypatch):
    monkeypatch.setattr(jobs_module, "MAX_RUNNING_JOBS", 1)
    first = Job(DATASET, MODEL, [LONG_BBB])
    second = Job(DATASET, MODEL, [LONG_BBB])
    third = Job(DATASET, MODEL, [LONG_BBB])
    jobs.extend([first, second, third])
    first.start()
    assert wait_for(lambda: first.view().steps_done > 20)
    second.start()
    assert second.view().queue_position == 1
    first.pause(wait_s=10.0)
    paused_steps = first.view().steps_done
    paused_snapshots = first.view().fits[0].snapshots
    assert wait_for(lambda: second.view().state == "running"), "the paused job's slot went to the queue"
    first.resume()  # no slot is free: it joins the back of the queue, first come first served
    third.start()
    assert (first.view().state, first.view().queue_position) == ("queued", 1)
    assert third.view().queue_position == 2
    assert jobs_module.load() == (1, 2)
    second.stop()
    assert wait_for(lambda: first.view().state == "running")
    assert wait_for(lambda: first.view().steps_done > paused_steps + 20)
    # Its fit went on from where it paused: the snapshots before the pause are kept, steps continue from there.
    snapshots = first.view().fits[0].snapshots
    assert snapshots[: len(paused_snapshots)] == paused_snapshots and snapshots[-1].step > paused_steps
    assert third.view().queue_position == 1
    first.stop()
    assert wait_for(lambda: third.view().state == "running")
    assert jobs_module.load() == (1, 0)


def test_a_job_ends_at_the_training_time_limit_and_frees_its_slot(jobs, monkeypatch):
    monkeypatch.setattr(jobs_module, "MAX_RUNNING_JOBS", 1)
    monkeypatch.setattr(jobs_module, "MAX_TRAINING_S", 0.5)
    hog = Job(DATASET, MODEL, [LONG_BBB])
    waiting = Job(DATASET, MODEL, [FitConfig(method="bbb", steps=200, seed=2)])
    jobs.extend([hog, waiting])
    hog.start()
    waiting.start()
    assert waiting.view().queue_position == 1
    started = time.monotonic()
    assert hog.join(20.0)
    # 0.5 s of training plus one slice and the worker's start; 20 s is a generous bound on a busy machine.
    assert time.monotonic() - started < 20.0
    view = hog.view()
    assert view.state == "stopped" and "limit" in view.message and "Steps" in view.message
    assert view.fits[0].snapshots and view.fits[0].steps_done > 0
    assert waiting.join(30.0) and waiting.view().fits[0].status == "done"


def test_pauses_do_not_count_as_training_time_but_end_after_the_pause_limit(jobs, monkeypatch):
    monkeypatch.setattr(jobs_module, "MAX_PAUSE_S", 0.5)
    job = Job(DATASET, MODEL, [LONG_BBB])
    jobs.append(job)
    job.start()
    assert wait_for(lambda: job.view().steps_done > 10)
    job.pause(wait_s=10.0)
    assert job.join(20.0)
    view = job.view()
    assert view.state == "stopped" and "paused for longer than 0.5 s" in view.message
    assert jobs_module.load()[0] == 0


def test_a_worker_beyond_its_memory_limit_ends_with_a_clear_message_and_its_slot_comes_back(jobs, monkeypatch):
    monkeypatch.setattr(jobs_module, "MAX_RUNNING_JOBS", 1)
    monkeypatch.setattr(jobs_module, "WORKER_MEMORY_HEADROOM_BYTES", 64 * 2**20)
    # Let the fit past the page's own estimate, as a fit the estimate underrates would be: 1024 samples x 20,000
    # points is 156 MiB per tensor, beyond the worker's 64 MiB of headroom at its first draw.
    monkeypatch.setattr(jobs_module, "fits_problem", lambda configs, n: None)
    big = generate(DataConfig(n=20_000, seed=3))
    hungry = Job(big, MODEL, [FitConfig(method="noise", samples=1024, steps=5)])
    after = Job(DATASET, MODEL, [FitConfig(method="bbb", steps=200, seed=2)])
    jobs.extend([hungry, after])
    hungry.start()
    after.start()
    assert hungry.join(30.0)
    fit = hungry.view().fits[0]
    assert fit.status == "stopped" and "ran out of memory" in fit.message and "diverged" not in fit.message
    assert after.join(30.0) and after.view().fits[0].status == "done", "the slot came back"


def test_the_server_process_runs_torch_on_one_thread():
    # In a fresh process with torch on 4 threads, the page's warm_up (called by every session's first run) sets 1.
    code = (
        "import torch; torch.set_num_threads(4)\n"
        "from bayesdemo.workers import jobs; jobs.warm_up(); print(torch.get_num_threads())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "1"
