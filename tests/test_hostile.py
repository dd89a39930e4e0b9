"""The hostile classroom benchmark's small version (bench/hostile.py): one session opens the worst links the page
allows, one after another, while a default session trains; the explore button and the uploads go through AppTest.

Bounds are generous: the machine running the tests may be shared, so time is checked only against a loose multiple.
"""

from __future__ import annotations

import os

from bayesdemo import jobs
from bayesdemo.data import DataConfig, generate
from bayesdemo.jobs import Job
from bayesdemo.methods import FitConfig
from bayesdemo.priors import Model
from bench.hostile import MARKUP_METHOD, apptest_refusals, judge_link, passed, run_hostile

STEPS = 300  # a short Bayes by Backprop fit: page loads dominate either way
TRAINING_LIMIT_S = 3.0  # the server's training limit here: the allowed hostile fits are stopped by it
SLACK_S = 30.0  # on a shared machine a few-second fit can take much longer than twice its time alone


def test_the_judge_flags_a_refusal_without_a_reason_an_exception_and_link_markup_shown_as_markup():
    quiet = {"query": {"n": "1000000"}, "ran": False, "exceptions": [], "alerts": ["error: Too big."]}
    assert judge_link("quiet", quiet)
    said = {**quiet, "alerts": ["error: Too big: lower Samples per step."]}
    assert not judge_link("said", said)
    crashed = {**said, "exceptions": ["exception on page: ZeroDivisionError"]}
    assert judge_link("crashed", crashed)
    markup = {"query": {"m": MARKUP_METHOD}, "ran": True, "exceptions": [], "alerts": [f"warning: got {MARKUP_METHOD}"]}
    assert judge_link("markup", markup)
    escaped = {**markup, "alerts": ["warning: got \\!\\[x\\]\\(http\\://example.com/x.png\\)"]}
    assert not judge_link("escaped", escaped)


def test_a_hostile_session_beside_a_default_one_stays_within_memory_and_every_page_says_why():
    report = run_hostile(sessions=1, steps=STEPS, training_limit_s=TRAINING_LIMIT_S, check_uploads=False)
    print({key: value for key, value in report.items() if key not in ("hostile_pages", "apptest_cases")})
    assert not report["problems"], report["problems"]
    assert not report["default_errors"], report["default_errors"]
    assert report["default_all_finished"] and report["default_all_equal_to_solo"]
    assert 0 < report["server_peak_rss_mib"] < report["rss_bound_mib"]
    assert any(page["ran"] for page in report["hostile_pages"]), "an allowed hostile fit trained beside the default"
    assert all(page["ran"] or page["alerts"] for page in report["hostile_pages"])
    assert report["default_seconds_beside_hostile"] <= 2 * report["default_seconds_alone"] + SLACK_S
    assert passed({**report, "slowdown": 1.0}), "passed() agrees with the bounds above"


def test_the_gradient_noise_button_and_the_uploads_refuse_with_a_reason_and_never_raise():
    cases = apptest_refusals()
    assert [case["problems"] for case in cases] == [[], [], []], cases
    refusals = {case["what"]: case["shown"] for case in cases}
    assert any("Lower" in text for text in refusals["gradient noise at 1,024 samples x 1,000,000 points"])


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
