"""Live charts: the component carries each chart's figure and config by key, then only the points added; plotly.js is
placed beside its script."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from streamlit.testing.v1 import AppTest

from bayesdemo.charts import figures
from bayesdemo.charts.chart_style import ChartStyle
from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import Gaussian, exact_posterior
from bayesdemo.core.priors import GaussianPrior, Model
from bayesdemo.core.scenario import Scenario
from bayesdemo.fitting.runner import Snapshot
from bayesdemo.page import live_chart, page_style

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT_S = 60  # a first run imports torch and pyro
LIVE_KEYS = ["chart_mean_slope", "chart_sd_slope", "chart_mean_intercept", "chart_sd_intercept", "chart_loss"]


def live_charts(page: AppTest) -> dict[str, dict]:
    """The data of each live chart on the page, by chart key."""
    charts = {}
    for element in page.main.get("bidi_component"):
        data = json.loads(element.proto.bytes)  # the message's JSON, as the component receives it
        charts[data["name"]] = data
    return charts


def test_the_page_draws_its_live_charts_through_the_component_with_the_engine_numbers():
    page = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    assert not page.exception
    charts = live_charts(page)
    assert set(LIVE_KEYS) <= set(charts), sorted(charts)
    scenario = Scenario()
    exact = exact_posterior(generate(scenario.data), scenario.model)
    figure = charts["chart_mean_slope"]["figure"]
    (exact_mean,) = [trace for trace in figure["data"] if trace["name"].startswith("exact mean")]
    assert exact_mean["y"] == pytest.approx([exact.mean[0]] * 2, rel=1e-12)
    assert charts["chart_mean_slope"]["config"] == {"displaylogo": False, "displayModeBar": False}


def test_without_the_component_the_charts_are_plain_plotly_charts(monkeypatch):
    monkeypatch.setattr(live_chart, "_component", lambda: None)
    page = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    assert not page.exception
    assert not live_charts(page)
    assert len(page.main.get("plotly_chart")) >= len(LIVE_KEYS)


# ---- only what changed ----------------------------------------------------------------------------------------------


def decoded(value):
    """plotly's own JSON read back with its base64 arrays ({"dtype", "bdata"}) as lists: the reference figure."""
    if isinstance(value, dict):
        if set(value) >= {"dtype", "bdata"}:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            return array.reshape(value["shape"]).tolist() if "shape" in value else array.tolist()
        return {key: decoded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decoded(item) for item in value]
    return value


def reference(figure) -> dict:
    """The figure as plotly's own JSON says it: what the browser must end up holding."""
    return decoded(json.loads(pio.to_json(figure, validate=False)))


def trajectory(count: int, exact, seed: int, scale: float = 0.1) -> tuple[Snapshot, ...]:
    """`count` snapshots every 5 steps wandering around the exact posterior (seeded)."""
    rng = np.random.default_rng(seed)
    snapshots = []
    for index in range(count):
        mean = exact.mean + scale * exact.sd * rng.normal(size=2)
        sd = exact.sd * (1.0 + rng.random(2))
        snapshots.append(Snapshot.of(5 * index, 0.001 * index, float(rng.normal()), Gaussian(mean, np.diag(sd**2))))
    return tuple(snapshots)


def live_figures(fits, exact, total_steps: int) -> dict:
    """The page's live charts for these fits, by chart key."""
    return {
        "mean": figures.fig_mean(fits, exact, 0, total_steps),
        "sd": figures.fig_sd(fits, exact, 1, total_steps),
        "loss": figures.fig_loss(fits, exact, total_steps),
    }


def live_specs(fits, exact, total_steps: int) -> dict:
    """The same charts as figure specs, as the page sends them (without building their plotly figures)."""
    return {
        "mean": figures.mean_spec(fits, exact, 0, total_steps),
        "sd": figures.sd_spec(fits, exact, 1, total_steps),
        "loss": figures.loss_spec(fits, exact, total_steps),
    }


EXACT_CASES = {
    "default": (Scenario().data, Scenario().model),
    # n = 2, x far from 0, a tiny prior: sds near 1e-6 of the means, values far from the axis's round numbers
    "n2_far_x_tiny_prior": (
        DataConfig(n=2, x_min=1e6 - 1, x_max=1e6),
        Model(GaussianPrior(slope_sd=1e-3, intercept_sd=1e-3)),
    ),
    # a huge prior: the exact sd is the likelihood's, the mean-field optimum far below it on the log axis
    "huge_prior": (DataConfig(n=5), Model(GaussianPrior(slope_sd=1e6, intercept_sd=1e6))),
}


@pytest.mark.parametrize("sent_as", ["figure", "spec"])
@pytest.mark.parametrize("case", sorted(EXACT_CASES))
def test_the_updates_sent_rebuild_each_figure_exactly(case, sent_as):
    data, model = EXACT_CASES[case]
    exact = exact_posterior(generate(data), model)
    run = trajectory(figures.TRAJECTORY_POINTS + 60, exact, seed=3)
    sent: dict = {}
    held: dict = {}
    kinds = {"figure": 0, "extend": 0}
    # Growing as a fit's snapshots arrive, past the thinning to TRAJECTORY_POINTS (every point moves then).
    for count in (1, 2, 3, 40, 41, 120, figures.TRAJECTORY_POINTS, figures.TRAJECTORY_POINTS + 60):
        fits = [("Bayes by Backprop", run[:count])]
        specs = live_specs(fits, exact, 2000)
        for key, figure in live_figures(fits, exact, 2000).items():
            sent[key] = live_chart.chart_message(specs[key] if sent_as == "spec" else figure, key, sent.get(key))
            message = json.loads(sent[key].payload)  # as the browser receives it
            assert message["name"] == key and message["height"] == figure.layout.height
            if "figure" not in message:
                assert message["base"] == held[key][0], "an update names the revision it applies to"
            if held.get(key, (None,))[0] != message["revision"]:
                kinds["figure" if "figure" in message else "extend"] += 1
                held[key] = (message["revision"], live_chart.apply_update(held.get(key, (None, None))[1], message))
            # Exact: the same numbers in JSON's shortest round-trip form, compared without tolerance.
            assert held[key][1] == reference(figure), (key, count)
    assert kinds["extend"] >= 3 * 3, "most growth is sent as appended points"
    assert kinds["figure"] >= 3, "each chart's first figure is whole"


@pytest.mark.parametrize("case", sorted(EXACT_CASES))
def test_a_figure_spec_is_sent_as_plotlys_json_of_its_checked_figure(case):
    # The page sends each live chart's spec without building its plotly figure: the browser must get plotly's JSON of
    # the figure built with every property checked, for every live chart, with a loss of each kind (an MSE panel too),
    # a thinned trajectory and a fit of one snapshot. Compared exactly: the same numbers in the same base64 bytes.
    data, model = EXACT_CASES[case]
    dataset = generate(data)
    exact = exact_posterior(dataset, model)
    run = trajectory(figures.TRAJECTORY_POINTS + 9, exact, seed=8)
    fits = [("Bayes by Backprop", run), ("noise injection", run[:7]), ("Pyro SVI, AutoNormal", run[:1])]
    latest = [(label, snapshots[-1].gaussian) for label, snapshots in fits]
    specs = {**live_specs(fits, exact, 5000), "data": figures.data_spec(dataset, exact, latest, 0.5, (3.0, 1.0))}
    figures.VALIDATE = True
    try:
        checked = {**live_figures(fits, exact, 5000), "data": figures.fig_data(dataset, exact, latest, 0.5, (3.0, 1.0))}
    finally:
        figures.VALIDATE = False
    for key, spec in specs.items():
        sent = json.loads(live_chart.chart_message(spec, key, None).payload)
        assert sent["figure"] == json.loads(pio.to_json(checked[key], validate=False)), key
        assert sent["height"] == checked[key].layout.height, key


@pytest.mark.parametrize("style", ["standard", "projector", "dark", "focused"])
def test_a_spec_is_drawn_in_the_sessions_style_as_its_figure_would_be(monkeypatch, style):
    # A spec is sent as it is only where the session's style leaves the figure as built; in any other style (and for
    # the focused chart) the browser must get the styled figure, as page_style.styled makes it of the plotly figure.
    exact = exact_posterior(generate(Scenario().data), Scenario().model)
    run = trajectory(50, exact, seed=9)
    chart_style = ChartStyle(projector=style == "projector", dark=style == "dark")
    monkeypatch.setattr(page_style, "current_style", lambda: chart_style)
    monkeypatch.setattr(page_style, "focused_chart", lambda: "chart" if style == "focused" else None)
    monkeypatch.setattr(live_chart.st, "session_state", {})
    mounted: list[dict] = []
    monkeypatch.setattr(live_chart, "_component", lambda: lambda **options: mounted.append(options))
    live_chart.live_chart(figures.mean_spec([("fit", run)], exact, 0, 3000), "chart")
    (sent,) = mounted
    expected = page_style.styled(figures.fig_mean([("fit", run)], exact, 0, 3000), "chart")
    message = json.loads(sent["data"])
    assert message["figure"] == json.loads(pio.to_json(expected, validate=False))
    assert message["height"] == (expected.layout.height or live_chart.PLOTLY_DEFAULT_HEIGHT)


def test_an_update_is_a_small_part_of_the_whole_figure():
    exact = exact_posterior(generate(Scenario().data), Scenario().model)
    run = trajectory(300, exact, seed=1)
    first = live_chart.chart_message(figures.fig_mean([("fit", run[:299])], exact, 0, 3000), "chart", None)
    update = live_chart.chart_message(figures.fig_mean([("fit", run)], exact, 0, 3000), "chart", first)
    assert update.message["extend"] == [[2, [run[-1].step], [float(run[-1].mean[0])]]]
    assert len(json.dumps(update.message)) < len(json.dumps(first.message)) / 10


@pytest.mark.parametrize(
    "change",
    ["steps", "second_fit", "other_label", "moved_point"],
)
def test_a_change_but_appended_points_sends_the_whole_figure(change):
    exact = exact_posterior(generate(Scenario().data), Scenario().model)
    run = trajectory(30, exact, seed=2)
    first = live_chart.chart_message(figures.fig_sd([("fit", run[:20])], exact, 0, 3000), "chart", None)
    if change == "steps":  # the x axis's extent: a layout change
        later = figures.fig_sd([("fit", run)], exact, 0, 4000)
    elif change == "second_fit":  # another trace and a taller legend
        later = figures.fig_sd([("fit", run), ("other fit", run[:3])], exact, 0, 3000)
    elif change == "other_label":
        later = figures.fig_sd([("renamed fit", run)], exact, 0, 3000)
    else:  # a point already sent has another value: the trajectory is not the one shown, extended
        moved = Snapshot.of(run[5].step, run[5].seconds, run[5].loss, Gaussian(run[5].mean, 4 * run[5].cov))
        later = figures.fig_sd([("fit", (*run[:5], moved, *run[6:]))], exact, 0, 3000)
    update = live_chart.chart_message(later, "chart", first)
    assert "figure" in update.message and "extend" not in update.message
    assert update.message["revision"] != first.message["revision"]
    assert live_chart.apply_update(None, json.loads(update.payload)) == reference(later)


def test_the_same_figure_sends_the_same_message_until_the_browser_asks_for_the_whole_figure():
    exact = exact_posterior(generate(Scenario().data), Scenario().model)
    run = trajectory(30, exact, seed=4)
    first = live_chart.chart_message(figures.fig_mean([("fit", run[:10])], exact, 1, 3000), "chart", None)
    update = live_chart.chart_message(figures.fig_mean([("fit", run)], exact, 1, 3000), "chart", first)
    again = live_chart.chart_message(figures.fig_mean([("fit", run)], exact, 1, 3000), "chart", update)
    assert again.message == update.message, "a rerun where nothing moved draws nothing"
    again.wants_whole = True  # the component's resync trigger (a plot mounted afresh)
    whole = live_chart.chart_message(figures.fig_mean([("fit", run)], exact, 1, 3000), "chart", again)
    assert "figure" in whole.message and whole.message["revision"] != update.message["revision"]
    assert decoded(json.loads(whole.message["figure"])) == reference(figures.fig_mean([("fit", run)], exact, 1, 3000))


def test_points_json_cannot_carry_are_sent_in_a_whole_figure_as_plotly_writes_it():
    first = live_chart.chart_message(go.Figure(go.Scatter(x=[0, 1], y=[1.0, 2.0])), "chart", None)
    gap = go.Figure(go.Scatter(x=[0, 1, 2], y=[1.0, 2.0, float("nan")]))  # a gap in a line: JSON has no NaN
    update = live_chart.chart_message(gap, "chart", first)
    assert json.loads(update.message["figure"]) == json.loads(pio.to_json(gap, validate=False))
    after_gap = go.Figure(go.Scatter(x=[0, 1, 2, 3], y=[1.0, 2.0, float("nan"), 4.0]))
    following = live_chart.chart_message(after_gap, "chart", update)
    assert "figure" in following.message, "a NaN already sent never compares equal: the whole figure again"


def test_the_figure_json_read_from_the_figure_is_plotlys_own():
    # figure_json reads the figure's dicts without plotly's deep copy and conversion: its JSON must be plotly's
    # to_plotly_json's, character for character, for the live figures (built with and without plotly's checks) and for
    # arrays of every kind plotly converts or leaves alone (wide and narrow integers, 2-D, empty, a numpy range).
    exact = exact_posterior(generate(DataConfig(n=2, x_min=1e6 - 1, x_max=1e6)), Model(GaussianPrior(slope_sd=1e-3)))
    run = trajectory(figures.TRAJECTORY_POINTS + 7, exact, seed=5)
    fits = [("Bayes by Backprop", run), ("noise injection", run[:3])]
    built = []
    for validate in (False, True):
        figures.VALIDATE = validate
        try:
            built += [*live_figures(fits, exact, 5000).values()]
            built.append(figures.fig_data(generate(DataConfig(n=2)), exact, [("fit", run[-1].gaussian)], 0.5, None))
        finally:
            figures.VALIDATE = False
    arrays = {
        "x": np.array([0, 2**40, -(2**40)]),
        "y": np.array([1.5, np.nan, np.inf], dtype=np.float32),
        "customdata": np.arange(6, dtype=np.uint64).reshape(3, 2),
        "ids": np.array(["a", "b", "c"]),
        "text": np.array([], dtype=np.float64),
    }
    odd = go.Figure(go.Scatter(**arrays), layout={"xaxis": {"range": np.array([0.0, 3.0])}})
    unchecked = go.Figure(go.Scatter(x=np.arange(300), y=np.arange(300) - 150, _validate=False), _validate=False)
    for figure in [*built, odd, unchecked]:
        ours = pio.to_json(live_chart.figure_json(figure), validate=False)
        plotlys = figure.to_plotly_json()
        assert ours == pio.to_json({"data": plotlys["data"], "layout": plotlys["layout"]}, validate=False)


def test_a_trajectory_past_its_thinning_is_sent_as_points_with_its_last_one_replaced():
    # Past TRAJECTORY_POINTS snapshots the drawn points are every stride-th and the latest: each update keeps all
    # but the last point held. The browser's figure must equal plotly's JSON of the new figure exactly.
    exact = exact_posterior(generate(Scenario().data), Scenario().model)
    run = trajectory(3 * figures.TRAJECTORY_POINTS, exact, seed=6)
    sent = live_chart.chart_message(figures.fig_mean([("fit", run[:1000])], exact, 0, 6000), "chart", None)
    held = live_chart.apply_update(None, json.loads(sent.payload))
    replaced = 0
    for count in (1003, 1004, 1010, 1011):
        figure = figures.fig_mean([("fit", run[:count])], exact, 0, 6000)
        sent = live_chart.chart_message(figure, "chart", sent)
        message = json.loads(sent.payload)
        assert "extend" in message, count
        replaced += sum(len(entry) == 4 for entry in message["extend"])
        held = live_chart.apply_update(held, message)
        assert held == reference(figure), count
    assert replaced >= 3
