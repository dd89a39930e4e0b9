"""bench/first_chart.py end to end: one fresh server and page, Run pressed as the page appears."""

from __future__ import annotations

import math

import pytest

from bench.first_chart import measure

pytestmark = pytest.mark.browser


def test_first_chart_benchmark_times_a_real_run_on_a_fresh_server():
    report = measure(runs=1, wait_s=0.0)
    (run,) = report["per_run"]
    # Generous bounds, as the browser test's: the targets are read from the benchmark's report, not asserted here.
    assert 0.0 < run["first_chart_s"] < 10.0
    assert report["first_chart_s_min"] == report["first_chart_s_max"] == run["first_chart_s"]
    assert math.isfinite(run["steps_per_second_while_drawing"]) and run["steps_per_second_while_drawing"] > 0
