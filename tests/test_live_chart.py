"""Live charts: the component carries each chart's figure and config by key; plotly.js is placed beside its script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from bayesdemo import live_chart
from bayesdemo.data import generate
from bayesdemo.exact import exact_posterior
from bayesdemo.scenario import Scenario

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT_S = 60  # a first run imports torch and pyro
LIVE_KEYS = ["chart_mean_slope", "chart_sd_slope", "chart_mean_intercept", "chart_sd_intercept", "chart_loss"]


def live_charts(page: AppTest) -> dict[str, dict]:
    """The data of each live chart on the page, by chart key."""
    charts = {}
    for element in page.main.get("bidi_component"):
        data = json.loads(element.proto.json)
        charts[data["name"]] = data
    return charts


def test_the_installed_plotly_js_is_copied_beside_the_script_once(tmp_path):
    source = tmp_path / "source.js"
    source.write_bytes(b"window.Plotly = {};" * 100)
    target = tmp_path / "web" / "plotly.min.js"
    target.parent.mkdir()
    assert live_chart.ensure_plotly_js(source, target)
    assert target.read_bytes() == source.read_bytes()
    assert [path.name for path in target.parent.iterdir()] == ["plotly.min.js"], "no temporary file left behind"
    stamp = target.stat().st_mtime_ns
    assert live_chart.ensure_plotly_js(source, target) and target.stat().st_mtime_ns == stamp, "not copied twice"


def test_a_place_plotly_js_cannot_go_means_falling_back(tmp_path):
    source = tmp_path / "source.js"
    source.write_bytes(b"x")
    assert not live_chart.ensure_plotly_js(source, tmp_path / "missing" / "plotly.min.js")
    assert not live_chart.ensure_plotly_js(tmp_path / "no-such-source.js", tmp_path / "plotly.min.js")


def test_the_page_draws_its_live_charts_through_the_component_with_the_engine_numbers():
    page = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    assert not page.exception
    charts = live_charts(page)
    assert set(LIVE_KEYS) <= set(charts), sorted(charts)
    scenario = Scenario()
    exact = exact_posterior(generate(scenario.data), scenario.model)
    figure = json.loads(charts["chart_mean_slope"]["figure"])
    (exact_mean,) = [trace for trace in figure["data"] if trace["name"].startswith("exact mean")]
    assert exact_mean["y"] == pytest.approx([exact.mean[0]] * 2, rel=1e-12)
    assert charts["chart_mean_slope"]["config"] == {"displaylogo": False, "displayModeBar": False}
    assert live_chart.PLOTLY_JS.stat().st_size == live_chart.PLOTLY_JS_SOURCE.stat().st_size


def test_without_the_component_the_charts_are_plain_plotly_charts(monkeypatch):
    monkeypatch.setattr(live_chart, "_component", lambda: None)
    page = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    assert not page.exception
    assert not live_charts(page)
    assert len(page.main.get("plotly_chart")) >= len(LIVE_KEYS)
