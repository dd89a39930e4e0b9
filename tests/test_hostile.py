"""The hostile classroom benchmark's small version (bench/hostile.py): one session, over the websocket as a browser,
opens the worst links the page allows, types the widget extremes, uploads a CSV over the limit and the worst one
allowed (fewer rows than the benchmark's), and opens every explore tab at its largest settings, while a default
session trains round after round.

Bounds are generous: the machine running the tests may be shared, so time is checked only against a loose multiple.
"""

from __future__ import annotations

import os

from bayesdemo.core.data import DataConfig, generate, parse_csv
from bayesdemo.core.priors import Model
from bayesdemo.methods import FitConfig
from bayesdemo.workers import jobs
from bayesdemo.workers.jobs import Job
from bench.hostile import MARKUP_METHOD, QUICK_TABS, judge, passed, run_hostile, worst_csv

STEPS = 300  # a short Bayes by Backprop fit: page loads dominate either way
TRAINING_LIMIT_S = 3.0  # the server's training limit here: the allowed hostile fits are stopped by it
CSV_ROWS = 2000  # the benchmark uploads 1,000,000
SLACK_S = 30.0  # on a shared machine a few-second fit can take much longer than twice its time alone


def test_the_judge_flags_a_refusal_without_a_reason_an_exception_link_markup_and_a_missing_range():
    quiet = {"what": "q", "query": {"n": "1000000"}, "ran": False, "exceptions": [], "alerts": ["error: Too big."]}
    assert judge(quiet)
    said = {**quiet, "alerts": ["error: Too big: lower Samples per step."]}
    assert not judge(said)
    crashed = {**said, "exceptions": ["exception on page: ZeroDivisionError"]}
    assert judge(crashed)
    markup = {**said, "query": {"m": MARKUP_METHOD}, "ran": True, "alerts": [f"warning: got {MARKUP_METHOD}"]}
    assert judge(markup)
    escaped = {**markup, "alerts": ["warning: got \\!\\[x\\]\\(http\\://example.com/x.png\\)"]}
    assert not judge(escaped)
    ranged = {**quiet, "expect": "range: Steps", "alerts": ["error: **Steps** must be between 1 and 1000000, got 9."]}
    assert not judge(ranged)
    assert judge({**ranged, "alerts": ["error: **Seed** must be between 0 and 4294967295, got 9."]})


def test_the_worst_csv_has_its_rows_within_its_bytes_and_reads_back():
    content = worst_csv(500, 500 * 19 + 4)
    assert len(content) <= 500 * 19 + 4
    data = parse_csv(content)
    # Row i holds x = i and y = +-(1 + i / 9973) 1e8 with the 11 decimals its 19 bytes allow: 1e-7 is far above that
    # rounding and far below the gap between rows.
    assert data.n == 500 and data.x[7] == 7.0 and abs(data.y[7] + (1 + 7 / 9973) * 1e8) <= 1e8 * 1e-7


def test_a_hostile_session_beside_a_default_one_stays_within_memory_and_every_page_says_why():
    report = run_hostile(sessions=1, steps=STEPS, training_limit_s=TRAINING_LIMIT_S, rows=CSV_ROWS, quick=True)
    print({key: value for key, value in report.items() if key != "hostile_pages"})
    assert not report["problems"], report["problems"]
    assert not report["default_errors"], report["default_errors"]
    assert report["default_all_finished"] and report["default_all_equal_to_solo"]
    assert 0 < report["server_peak_rss_mib"] < report["rss_bound_mib"]
    pages = report["hostile_pages"]
    assert any(page["ran"] for page in pages), "an allowed hostile fit trained beside the default"
    assert all(any(page["what"].startswith(tab) for page in pages) for tab in QUICK_TABS), "the explore tabs"
    assert any(page["what"].startswith("CSV of") and page["ran"] for page in pages), "the worst CSV allowed ran"
    alone = report["default_seconds_alone"]
    assert report["default_rounds_beside_hostile"] >= 1
    assert all(seconds <= 2 * alone + SLACK_S for seconds in report["default_seconds_beside_hostile"])
    assert passed({**report, "slowdown": 1.0}), "passed() agrees with the bounds above"


def test_a_heavy_fit_trains_in_its_own_lane_at_the_lowest_priority_and_never_queues_a_default_fit(monkeypatch):
    # One training slot, as a 1-core server has: before heavy fits had a lane of their own, a default fit pressed
    # while one student's 1,000,000-step fit trained waited in the queue until that fit's time limit.
    monkeypatch.setattr(jobs, "MAX_RUNNING_JOBS", 1)
    data = generate(DataConfig(n=1000))
    huge = FitConfig(method="bbb", steps=1_000_000, local_reparam=True)  # estimated at hours: a heavy fit
    heavy, second_heavy = Job(data, Model(), [huge]), Job(data, Model(), [huge])
    default = Job(data, Model(), [FitConfig(method="bbb", steps=300)])
    try:
        heavy.start()
        assert heavy.wait_for_training(60.0) and heavy.state == "running"
        assert heavy.pid is not None and os.getpriority(os.PRIO_PROCESS, heavy.pid) == jobs.HEAVY_NICENESS > 0
        default.start()
        assert default.state == "running", "a default fit takes its slot beside the heavy one"
        second_heavy.start()
        assert second_heavy.state == "queued" and second_heavy.queue_position == 1, "heavy fits queue behind each other"
        assert default.join(60.0) and default.view().fits[0].status == "done"
        assert heavy.state == "running"
    finally:
        for job in (heavy, second_heavy, default):
            job.stop()
