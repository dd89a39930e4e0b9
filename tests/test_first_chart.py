"""bench/first_chart.py end to end: one fresh server, a cold and a warm page's first view, Run pressed at once."""

from __future__ import annotations

import math

import pytest

from bench.first_chart import measure

pytestmark = pytest.mark.browser


def test_first_chart_benchmark_times_page_open_and_a_real_run_on_a_fresh_server():
    report = measure(runs=1, wait_s=0.0)
    assert list(report["variants"]) == ["basic"]
    basic = report["variants"]["basic"]
    (run,) = basic["per_run"]
    # Generous bounds, as the browser test's: the targets are read from the benchmark's report, not asserted here.
    assert 0.0 < run["first_chart_s"] < 10.0
    assert basic["first_chart_s_min"] == basic["first_chart_s_max"] == run["first_chart_s"]
    assert math.isfinite(run["steps_per_second_while_drawing"]) and run["steps_per_second_while_drawing"] > 0
    assert run["load_average"] >= 0.0
    for page in ("cold", "warm", "cached"):
        # In the page's clock: the metrics and a chart come before every chart is drawn, and the charts after the
        # plotly.js bundle arrived, all within the benchmark's five-minute wait.
        first, every = run[f"{page}_first_chart_drawn_s"], run[f"{page}_all_charts_drawn_s"]
        assert 0.0 < run[f"{page}_plotly_fetched_s"] < first <= every < 300.0, run
        assert 0.0 < run[f"{page}_metrics_s"] < 300.0, run
        assert basic["page_open"][f"{page}_all_charts_drawn_s"]["median"] == every
