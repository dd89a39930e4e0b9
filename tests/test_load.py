"""The load test's small version: 3 concurrent sessions each train to the end, with no error, as if alone.

Once with Chromium pages (the frontend draws everything) and once with the browserless websocket driver.
"""

from __future__ import annotations

import pytest

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.priors import Model
from bayesdemo.fitting import export
from bayesdemo.fitting.runner import RunConfig, run_to_end
from bayesdemo.methods import FitConfig, make_method
from bayesdemo.workers import jobs as jobs_module
from bayesdemo.workers.jobs import Job
from bench.load_test import matches_solo, page_trajectory, run_load_test

SESSIONS = 3
# Long enough for live redraws and CPU samples while it trains (a second or two): Bayes by Backprop's closed-form steps
# run at tens of thousands of steps per second, so 500 steps ended within one redraw.
STEPS = 40_000


def check(report: dict) -> None:
    """No error, every session finished and equal to its solo run, the queue and the server's resources seen."""
    print({key: value for key, value in report.items() if key != "per_session"})
    assert report["errors"] == 0, report["error_messages"]
    assert report["all_finished"] and report["finished"] == SESSIONS
    assert report["all_equal_to_solo"], "every session's downloaded trajectory equals the engine's solo run"
    assert set(report["queue_positions_seen"]) <= {1}, "cap 2: at most the third session waits, first in line"
    assert report["server_peak_rss_mib"] > 0
    assert report["training_processes_cores_while_training"] > 0, "the fits trained in processes under the server"


@pytest.mark.browser
def test_three_concurrent_browser_sessions_finish_without_errors_and_match_solo_runs():
    check(run_load_test(sessions=SESSIONS, steps=STEPS, method="bbb", max_running_jobs=2, timeout_s=120.0))


def test_three_concurrent_websocket_sessions_finish_without_errors_and_match_solo_runs():
    report = run_load_test(
        sessions=SESSIONS, steps=STEPS, method="bbb", max_running_jobs=2, timeout_s=120.0, driver="websocket"
    )
    check(report)
    assert report["pages_that_reconnected"] == 0
    assert report["chart_updates_seen"] > 0, "the slope-mean chart got new figures while a fit trained"


def test_a_thinned_trajectory_matches_its_solo_run_and_a_changed_one_does_not(monkeypatch):
    # Past MAX_SNAPSHOTS a page keeps an even thinning of the snapshots: still the solo run's, row for row.
    monkeypatch.setattr(jobs_module, "MAX_SNAPSHOTS", 20)
    dataset, model, config = generate(DataConfig(n=50, seed=4)), Model(), FitConfig(method="bbb", steps=500, seed=3)
    job = Job(dataset, model, [config], snapshot_every=10)
    job.start()
    assert job.join(60.0) and job.view().state == "finished"
    page = page_trajectory(export.trajectory_csv(job.view().traces()))
    solo_run = run_to_end(make_method(dataset, model, config), config.steps, RunConfig(snapshot_every=10))
    solo = [(s.step, float(s.mean[0]), float(s.mean[1]), float(s.sd[0]), float(s.sd[1])) for s in solo_run.snapshots]
    assert len(solo) == 51 and 2 < len(page) <= 21, "thinned"
    assert matches_solo(page, solo)
    changed = [*page[:5], (page[5][0], page[5][1] + 1e-9, *page[5][2:]), *page[6:]]
    assert not matches_solo(changed, solo)
    assert not matches_solo(page[:-1], solo), "the latest snapshot is always kept"
    monkeypatch.setattr(jobs_module, "MAX_SNAPSHOTS", 2000)
    assert not matches_solo(page, solo), "under the cap every snapshot must be there"
