"""Explore computations run in worker processes like fits: another process, the same cap and queue, the same memory
and time limits, cancelled with their tab; and the explore views wait for them with "Computing…" and Cancel."""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.priors import Model, ParameterPrior, Prior
from bayesdemo.methods import FitConfig
from bayesdemo.page import explore
from bayesdemo.page.explore import EXPLORE_JOBS_KEY, SEQUENTIAL_FIT, TAB_KEY, ExploreEntry
from bayesdemo.references.basis import BasisConfig, fit_basis, log_evidence_by_complexity
from bayesdemo.references.grid import grid_posterior
from bayesdemo.references.mcmc import MCMCConfig, run_nuts
from bayesdemo.references.mean_field import mean_field_optimum
from bayesdemo.references.sequential import vi_fit_after
from bayesdemo.workers import explore_budget
from bayesdemo.workers import jobs as jobs_module
from bayesdemo.workers.jobs import ExploreJob, Job
from tests.support.pages import no_exception, page_at, rerun_until_computed
from tests.support.waiting import wait_for

DATASET = generate(DataConfig(n=100, seed=3))
MODEL = Model(noise_sd=0.1)
LONG_BBB = FitConfig(method="bbb", steps=1_000_000, seed=1)
GONE_S = 5.0  # a killed worker is reaped within this (it is usually a few milliseconds; a busy machine is slower)


def process_gone(pid: int) -> bool:
    """Whether process `pid` has ended (no longer exists, or only a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.fixture
def made():
    """Jobs and explore jobs made in a test, stopped afterwards whatever happened."""
    started: list[Job | ExploreJob] = []
    yield started
    for job in started:
        job.stop()
        job.join(5.0)


def test_an_explore_computation_runs_in_another_process_and_returns_its_value(made):
    where = ExploreJob(os.getpid, (), "n")
    made.append(where)
    where.start()
    assert where.join(60.0) and where.state == "finished"
    assert isinstance(where.result, int) and where.result != os.getpid() and where.result == where.pid
    # A view's computation, pickled to the worker and back, equals the same functions called here.
    config, sizes = BasisConfig("rbf", 6, 0.0), (1, 2, 3, 4, 5, 6, 7, 8)
    basis = ExploreJob(explore_budget.basis_results, (DATASET, MODEL, config, sizes), "n")
    made.append(basis)
    basis.start()
    assert basis.join(60.0) and basis.state == "finished", basis.message
    fit, curve = basis.result
    expected_curve = log_evidence_by_complexity(DATASET, "rbf", sizes, MODEL, width=0.0)
    assert fit.log_evidence == fit_basis(DATASET, config, MODEL).log_evidence  # the same float64 arithmetic
    np.testing.assert_array_equal(curve.log_evidence, expected_curve.log_evidence)
    assert jobs_module.load() == (0, 0), "the slot came back"


def test_nuts_the_sequential_fit_and_the_other_priors_reference_compute_in_workers_as_the_direct_calls(made):
    # The three computations that ran in the server's thread, each in a worker: another pid, the same numbers as
    # calling the function here. Awkward inputs: the sequential fit on 2 points, a Laplace prior of scale 0.02.
    nuts_config = MCMCConfig(warmup=20, samples=30, seed=7)
    laplace = Model(Prior(ParameterPrior("laplace", 0.0, 0.02), ParameterPrior("laplace", 0.0, 10.0)), 0.1)
    where = ExploreJob(os.getpid, (), "n")
    nuts = ExploreJob(run_nuts, (DATASET, MODEL, nuts_config), "NUTS draws")
    fit = ExploreJob(vi_fit_after, (DATASET, MODEL, 2, SEQUENTIAL_FIT), "n")
    reference = ExploreJob(explore_budget.prior_reference, (DATASET, laplace), "n")
    made.extend([where, nuts, fit, reference])
    for job in made:
        job.start()
    for job in made:
        assert job.join(120.0) and job.state == "finished", job.message
    assert where.result not in (None, os.getpid())
    # Seeded and float64 on one torch thread in both processes: the same arithmetic gives the same bits.
    np.testing.assert_array_equal(nuts.result.samples, run_nuts(DATASET, MODEL, nuts_config).samples)
    direct_fit = vi_fit_after(DATASET, MODEL, 2, SEQUENTIAL_FIT)
    np.testing.assert_array_equal(fit.result.mean, direct_fit.mean)
    np.testing.assert_array_equal(fit.result.cov, direct_fit.cov)
    grid, optimum = reference.result
    direct_grid = grid_posterior(DATASET, laplace)
    np.testing.assert_array_equal(grid.mean, direct_grid.mean)
    np.testing.assert_array_equal(grid.cov, direct_grid.cov)
    direct_optimum = mean_field_optimum(DATASET, laplace, starts=direct_grid.windows)
    np.testing.assert_array_equal(optimum.q.mean, direct_optimum.q.mean)
    assert jobs_module.load() == (0, 0)


def test_a_heavy_explore_job_takes_the_heavy_lane_at_lower_priority_while_the_slots_are_full(made, monkeypatch):
    monkeypatch.setattr(jobs_module, "MAX_RUNNING_JOBS", 1)
    holding = ExploreJob(time.sleep, (120,), "n")  # estimated at nothing: an ordinary slot
    waiting = ExploreJob(os.getpid, (), "n")
    # os.nice(0) returns the process's niceness: the heavy worker's, once it runs.
    heavy = ExploreJob(os.nice, (0,), "n", estimated_s=2 * jobs_module.HEAVY_JOB_S)
    made.extend([holding, waiting, heavy])
    holding.start()
    waiting.start()
    heavy.start()
    assert not holding.heavy and heavy.heavy
    assert waiting.state == "queued" and waiting.queue_position == 1
    assert heavy.join(60.0) and heavy.state == "finished", heavy.message
    assert heavy.result == min(os.nice(0) + jobs_module.HEAVY_NICENESS, 19)
    assert waiting.state == "queued", "the heavy computation took no ordinary slot"
    holding.stop()
    assert waiting.join(60.0) and waiting.state == "finished"


def test_a_live_fragment_run_keeps_the_explore_computations_of_closed_tabs_alive(made, monkeypatch):
    # Another explore tab open while a computation runs: no full rerun, no status line of that view; only the live
    # fragment reruns. Here every page run draws no explore view at all, so only the live parts can touch the job.
    page = page_at()
    monkeypatch.setattr(explore, "draw_explore", lambda *arguments: None)
    # A page run takes 0.2-1 s here (more on a busy machine): a 6 s heartbeat timeout is well past the gaps.
    job = ExploreJob(time.sleep, (120,), "n", heartbeat_timeout_s=6.0)
    made.append(job)
    job.start()
    page.session_state[EXPLORE_JOBS_KEY] = {"gradient": ExploreEntry("settings", {}, job)}
    deadline = time.monotonic() + 14.0  # well past the heartbeat timeout
    while time.monotonic() < deadline:
        page.run()
        no_exception(page)
        time.sleep(0.2)
    assert job.state == "running", job.message


def test_cancelling_a_running_explore_job_ends_its_process_within_seconds(made):
    job = ExploreJob(time.sleep, (120,), "n")
    made.append(job)
    job.start()
    assert job.state == "running" and job.pid is not None
    time.sleep(0.3)
    started = time.monotonic()
    job.stop("Cancelled.")
    assert job.state == "stopped" and job.message == "Cancelled." and job.result is None
    assert wait_for(lambda: process_gone(job.pid), GONE_S), "the worker was killed"
    assert time.monotonic() - started < GONE_S
    assert jobs_module.load() == (0, 0)


def test_an_explore_job_its_page_stops_touching_ends_its_process(made):
    # A closed tab stops touching its jobs: after the heartbeat timeout the computation's process is killed.
    job = ExploreJob(time.sleep, (120,), "n", heartbeat_timeout_s=0.5)
    made.append(job)
    job.start()
    pid = job.pid
    assert pid is not None
    assert wait_for(lambda: job.state == "stopped", 0.5 + GONE_S)
    assert "heartbeat" in job.message and "tab closed" in job.message
    assert wait_for(lambda: process_gone(pid), GONE_S)


def test_an_explore_job_waits_in_the_queue_behind_fits_and_starts_when_a_slot_frees(made, monkeypatch):
    monkeypatch.setattr(jobs_module, "MAX_RUNNING_JOBS", 1)
    monkeypatch.setattr(jobs_module, "HEAVY_JOB_S", math.inf)  # the long fit holds an ordinary slot, not the heavy lane
    fit = Job(DATASET, MODEL, [LONG_BBB])
    explore = ExploreJob(os.getpid, (), "n")
    later_fit = Job(DATASET, MODEL, [FitConfig(method="bbb", steps=200, seed=2)])
    made.extend([fit, explore, later_fit])
    fit.start()
    explore.start()
    later_fit.start()
    assert explore.state == "queued" and explore.queue_position == 1 and explore.pid is None
    assert later_fit.view().queue_position == 2, "one queue for fits and explore computations, first come first"
    assert jobs_module.load() == (1, 2)
    time.sleep(0.3)
    assert explore.state == "queued", "no slot is free: it keeps waiting"
    fit.stop()
    assert explore.join(60.0) and explore.state == "finished" and explore.queue_position is None
    assert later_fit.join(60.0) and later_fit.view().fits[0].status == "done"


def test_an_explore_job_beyond_its_memory_limit_says_so_and_its_slot_comes_back(made, monkeypatch):
    monkeypatch.setattr(jobs_module, "MAX_RUNNING_JOBS", 1)
    monkeypatch.setattr(jobs_module, "WORKER_MEMORY_HEADROOM_BYTES", 64 * 2**20)
    hungry = ExploreJob(np.ones, (2**28,), "the number of points n")  # 2 GiB of float64, 32 times the headroom
    after = ExploreJob(os.getpid, (), "n")
    made.extend([hungry, after])
    hungry.start()
    after.start()
    assert hungry.join(60.0) and hungry.state == "stopped"
    assert hungry.message == (
        "Stopped: the computation ran out of its memory limit (64 MiB beyond its start). Lower the number of points n."
    )
    assert after.join(60.0) and after.state == "finished" and after.result != os.getpid()


def test_an_explore_job_ends_at_the_time_limit_and_an_error_comes_back_as_a_sentence(made, monkeypatch):
    monkeypatch.setattr(jobs_module, "MAX_TRAINING_S", 0.5)
    slow = ExploreJob(time.sleep, (120,), "Simulated datasets K")
    made.append(slow)
    slow.start()
    pid = slow.pid
    assert slow.join(0.5 + GONE_S) and slow.state == "stopped"
    assert "limit of 0.5 s" in slow.message and slow.message.endswith("Lower Simulated datasets K.")
    assert wait_for(lambda: process_gone(pid), GONE_S)
    failing = ExploreJob(math.sqrt, (-1.0,), "n")
    made.append(failing)
    failing.start()
    assert failing.join(60.0) and failing.message == "Stopped: the computation failed (math domain error)."
    assert "Traceback" not in failing.message


# ---- the explore views through AppTest ---------------------------------------------------------------------------


def open_gradient_noise(page: AppTest) -> None:
    """Open the Gradient noise tab."""
    page.session_state[TAB_KEY] = "Gradient noise"
    page.run()
    no_exception(page)


def gradient_entry(page: AppTest):
    """The Gradient noise view's computation (an ExploreEntry), or None."""
    return (page.session_state.get(EXPLORE_JOBS_KEY) or {}).get("gradient")


def page_text(page: AppTest) -> str:
    """Every markdown, info and warning text on the page."""
    return " ".join(element.value for kind in ("markdown", "info", "warning") for element in getattr(page, kind))


def test_gradient_noise_is_measured_in_a_worker_and_waits_behind_a_fit_with_computing_and_cancel(monkeypatch):
    monkeypatch.setattr(jobs_module, "MAX_RUNNING_JOBS", 1)
    monkeypatch.setattr(jobs_module, "HEAVY_JOB_S", math.inf)  # the long fit holds an ordinary slot, not the heavy lane
    fit = Job(DATASET, MODEL, [LONG_BBB])  # another student's fit holds the only slot
    page = page_at()
    try:
        fit.start()
        open_gradient_noise(page)
        page.button(key="explore_gradient_run").click().run()
        no_exception(page)
        entry = gradient_entry(page)
        assert entry is not None and entry.job.state == "queued"
        assert "Computing… (queued: number 1" in page_text(page)
        assert not page.table, "nothing measured in the page's own process meanwhile"
        assert page.button(key="explore_gradient_cancel")
        fit.stop()
        rerun_until_computed(page)
        assert entry.job.state == "finished" and entry.job.pid != os.getpid()
        rows = page.table[0].value.to_dict("records")
        assert len(rows) == 8 and "Computing" not in page_text(page)
    finally:
        fit.stop()
        fit.join(5.0)


def test_cancel_on_the_page_stops_the_computations_process():
    page = page_at({"n": "5000"})  # estimated 10 s of gradient draws: still running when Cancel is pressed
    open_gradient_noise(page)
    page.button(key="explore_gradient_run").click().run()
    no_exception(page)
    job = gradient_entry(page).job
    assert wait_for(lambda: job.state == "running" and job.pid is not None, 30.0)
    pid = job.pid
    assert pid != os.getpid()
    page.button(key="explore_gradient_cancel").click().run()
    no_exception(page)
    assert job.state == "stopped" and wait_for(lambda: process_gone(pid), GONE_S)
    assert "Cancelled." in page_text(page) and not page.table
    assert jobs_module.load()[0] == 0


def test_a_computation_out_of_memory_on_the_page_is_said_in_words_and_the_page_goes_on(monkeypatch):
    monkeypatch.setattr(jobs_module, "WORKER_MEMORY_HEADROOM_BYTES", 4 * 2**20)  # far below 12 tensors of 2 MiB
    page = page_at({"n": "5000"})
    open_gradient_noise(page)
    page.button(key="explore_gradient_run").click().run()
    rerun_until_computed(page)
    warnings = " ".join(warning.value for warning in page.warning).replace("\\", "")  # as shown: unescaped
    assert "ran out of its memory limit (4 MiB beyond its start)" in warnings
    assert "Lower the number of points n" in warnings and "Traceback" not in warnings
    page.session_state[TAB_KEY] = "Parameter space"
    page.run()
    no_exception(page)
    assert page.tabs, "the page still draws"
