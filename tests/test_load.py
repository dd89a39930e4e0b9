"""The load test's small version: 3 concurrent sessions each train to the end, with no error, as if alone.

Once with Chromium pages (the frontend draws everything) and once with the browserless websocket driver.
"""

from __future__ import annotations

import pytest

from bench.load_test import run_load_test

SESSIONS = 3
STEPS = 500  # a short Bayes by Backprop fit: the page load dominates the test's time either way


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
