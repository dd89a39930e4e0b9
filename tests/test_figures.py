"""Figures read back through fig.data / fig.layout: references, bands, fixed ranges, downsampling, colours."""

from __future__ import annotations

import ast
import itertools
import math
import re
import time
from pathlib import Path

import numpy as np
import pytest

from bayesdemo.charts import figures
from bayesdemo.charts.figures import (
    TRAJECTORY_POINTS,
    colour_for,
    downsample_indices,
    fig_data,
    fig_loss,
    fig_mean,
    fig_sd,
)
from bayesdemo.core.data import DataConfig, Dataset, generate
from bayesdemo.core.exact import Gaussian, exact_posterior
from bayesdemo.core.priors import GaussianPrior, Model
from bayesdemo.core.scenario import COMPARED_FITS
from bayesdemo.fitting.runner import RunConfig, Snapshot, run_to_end
from bayesdemo.methods import FitConfig, make_method
from tests.support.figure_json import assert_same_json_without_checks

STEPS = 150


@pytest.fixture(scope="module")
def setting():
    """Tutorial data, its exact posterior, and short real noise-injection and BBB runs."""
    dataset = generate(DataConfig())
    model = Model(noise_sd=DataConfig().noise_sd)
    exact = exact_posterior(dataset, model)
    traces = []
    for method in ("noise", "bbb"):
        config = FitConfig(method=method, steps=STEPS, samples=4)
        run = run_to_end(make_method(dataset, model, config), STEPS, RunConfig(snapshot_every=5))
        traces.append((config.label, run.snapshots))
    return dataset, exact, traces


def long_trajectory(count: int) -> list[Snapshot]:
    """`count` made-up snapshots whose slope mean equals their index (easy to check after downsampling)."""
    return [
        Snapshot.of(i, 0.0, 1.0 / (i + 1), Gaussian.diagonal([float(i), 0.5], [1.0 / (i + 1), 0.2]))
        for i in range(count)
    ]


def named(figure, fragment):
    """The one trace whose name contains `fragment`."""
    (trace,) = [t for t in figure.data if fragment in (t.name or "")]
    return trace


def constant(values, expected):
    """Whether every value equals `expected` (a horizontal line at that height)."""
    return all(value == pytest.approx(expected) for value in values)


def test_the_module_never_imports_streamlit_nor_uses_scattergl():
    tree = ast.parse(Path(figures.__file__).read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names]
    modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not any("streamlit" in name for name in imported + modules)
    assert "Scattergl" not in Path(figures.__file__).read_text()


@pytest.mark.parametrize("count", [1, 2, 1999, 2000, 2001, 100_003])
def test_downsampling_keeps_first_and_last_and_at_most_2000(count):
    index = downsample_indices(count)
    assert index[0] == 0 and index[-1] == count - 1
    assert len(index) == min(count, 2000) and np.all(np.diff(index) > 0)


@pytest.mark.parametrize("parameter", [0, 1])
def test_fig_mean_has_exact_line_band_and_each_trajectory(setting, parameter):
    _, exact, traces = setting
    figure = fig_mean(traces, exact, parameter, STEPS)
    assert len(figure.data) == 2 + len(traces)
    assert all(trace.type == "scatter" for trace in figure.data)
    mean, sd = exact.mean[parameter], math.sqrt(exact.posterior.cov[parameter, parameter])
    band = named(figure, "±1 sd")
    assert min(band.y) == pytest.approx(mean - sd) and max(band.y) == pytest.approx(mean + sd)
    assert set(band.x) == {0, STEPS}
    assert constant(named(figure, "exact mean").y, mean)
    for label, snapshots in traces:
        trace = named(figure, label)
        assert list(trace.x) == [s.step for s in snapshots]
        assert list(trace.y) == pytest.approx([s.mean[parameter] for s in snapshots])
        assert trace.line.color == colour_for(label)
    assert list(figure.layout.xaxis.range) == [0, STEPS]
    low, high = figure.layout.yaxis.range
    values = [v for _, snaps in traces for v in (s.mean[parameter] for s in snaps)]
    assert low <= min(*values, mean - sd) and high >= max(*values, mean + sd)


def test_fig_mean_y_range_only_grows_as_the_run_goes_on(setting):
    _, exact, traces = setting
    ranges = [
        fig_mean([(label, s[:k]) for label, s in traces], exact, 0, STEPS).layout.yaxis.range for k in (1, 10, 31)
    ]
    for (low_a, high_a), (low_b, high_b) in itertools.pairwise(ranges):
        assert low_b <= low_a and high_b >= high_a
    assert len({tuple(r) for r in ranges}) <= 2  # round steps: a redraw rarely moves the axis


def test_fig_mean_downsamples_long_runs_keeping_the_ends(setting):
    _, exact, _ = setting
    trace = named(fig_mean([("long", long_trajectory(5000))], exact, 0, 5000), "long")
    assert TRAJECTORY_POINTS / 2 < len(trace.x) <= TRAJECTORY_POINTS and trace.x[0] == 0 and trace.x[-1] == 4999
    assert len(set(np.diff(trace.x[:-1]))) == 1  # evenly spaced up to the last
    assert list(trace.y) == list(trace.x)  # each kept point is the snapshot it claims to be


def test_a_growing_trajectory_keeps_the_points_it_drew_but_the_last(setting):
    # Live charts send only what changed: as snapshots arrive, the points drawn stay drawn (all but the last), except
    # at the few counts where the stride doubles (at most log2(count) times).
    _, exact, _ = setting
    run = long_trajectory(3000)
    previous, redrawn = None, 0
    for count in range(1, 3001, 7):
        trace = named(fig_mean([("long", run[:count])], exact, 0, 3000), "long")
        steps = list(trace.x)
        assert len(steps) <= TRAJECTORY_POINTS and steps[0] == 0 and steps[-1] == count - 1
        if previous is not None and steps[: len(previous) - 1] != previous[:-1]:
            redrawn += 1
        previous = steps
    assert redrawn <= math.log2(3000 / TRAJECTORY_POINTS) + 1


@pytest.mark.parametrize("parameter", [0, 1])
def test_fig_sd_reference_lines_are_exact_and_mean_field_sds(setting, parameter):
    _, exact, traces = setting
    figure = fig_sd(traces, exact, parameter, STEPS)
    precision = np.linalg.inv(exact.posterior.cov)
    expected_mean_field = 1.0 / math.sqrt(precision[parameter, parameter])
    assert constant(named(figure, "mean-field optimum").y, expected_mean_field)
    assert constant(named(figure, "exact sd").y, math.sqrt(exact.posterior.cov[parameter, parameter]))
    assert figure.layout.yaxis.type == "log"
    low, high = figure.layout.yaxis.range
    assert 10**low <= expected_mean_field and 10**high >= math.sqrt(exact.posterior.cov[parameter, parameter])
    notes = " ".join(annotation.text for annotation in figure.layout.annotations)
    for label, snapshots in traces:
        assert list(named(figure, label).y) == pytest.approx([s.sd[parameter] for s in snapshots])
        latest = snapshots[-1].sd[parameter]
        # Each fit's latest sd is on the chart, or named at its edge with its value (3 significant figures).
        assert 10**low <= latest <= 10**high or f"{label}: sd {latest:.3g}" in notes
    (label, snapshots), _ = traces
    alone = fig_sd([(label, snapshots)], exact, parameter, STEPS)  # a fit drawn alone is never cut
    low, high = alone.layout.yaxis.range
    assert 10**low <= min(s.sd[parameter] for s in snapshots) and 10**high >= max(s.sd[parameter] for s in snapshots)


def test_fig_sd_log_range_survives_a_collapsing_sd(setting):
    _, exact, _ = setting
    figure = fig_sd([("long", long_trajectory(3000))], exact, 0, 3000)
    low, high = figure.layout.yaxis.range
    assert 10**low <= 1.0 / 3000 and 10**high >= 1.0


def test_fig_loss_floor_is_minus_log_evidence_and_step_zero_is_skipped(setting):
    _, exact, traces = setting
    figure = fig_loss(traces, exact, STEPS)
    floor = named(figure, "−log p(y)")
    assert constant(floor.y, -exact.log_evidence) and "KL" in floor.name
    rho = exact.posterior.cov[0, 1] / math.sqrt(exact.posterior.cov[0, 0] * exact.posterior.cov[1, 1])
    gap = -0.5 * math.log(1.0 - rho**2)  # KL of the best factorised q, in closed form for two parameters
    assert constant(named(figure, "best mean-field").y, -exact.log_evidence + gap)
    for label, snapshots in traces:
        trace = named(figure, label)
        assert trace.x[0] == snapshots[1].step and all(math.isfinite(v) for v in trace.y)
        assert list(trace.y) == pytest.approx([s.loss for s in snapshots[1:]])
    noise_label, bbb_label = (label for label, _ in traces)
    assert named(figure, noise_label).yaxis == "y2" and "not an ELBO" in named(figure, noise_label).name
    assert named(figure, bbb_label).yaxis in (None, "y")
    low, high = figure.layout.yaxis.range
    assert low < -exact.log_evidence < -exact.log_evidence + gap < high
    mse_low, mse_high = figure.layout.yaxis2.range
    mse = named(figure, noise_label).y
    assert 10**mse_low <= min(mse) and 10**mse_high >= max(mse)


def test_fig_loss_without_noise_injection_has_no_second_axis(setting):
    _, exact, traces = setting
    figure = fig_loss(traces[1:], exact, STEPS)
    assert "yaxis2" not in figure.layout.to_plotly_json()
    assert all(trace.yaxis in (None, "y") for trace in figure.data)


def test_fig_loss_puts_bbb_without_kl_where_its_loss_belongs(setting):
    dataset, exact, _ = setting
    model = Model(noise_sd=DataConfig().noise_sd)
    traces = []
    for objective in ("mse", "likelihood"):
        config = FitConfig(method="bbb", objective=objective, steps=STEPS, samples=4)
        run = run_to_end(make_method(dataset, model, config), STEPS, RunConfig(snapshot_every=5))
        traces.append((config.label, run.snapshots))
    figure = fig_loss(traces, exact, STEPS)
    mse_label, likelihood_label = (label for label, _ in traces)
    assert "MSE" in mse_label and "likelihood" in likelihood_label  # the labels tell the notches apart
    assert named(figure, mse_label).yaxis == "y2" and "not an ELBO" in named(figure, mse_label).name
    assert named(figure, likelihood_label).yaxis in (None, "y")
    assert "not an ELBO" in named(figure, likelihood_label).name


def test_fig_data_bands_match_the_predictive_formula(setting):
    dataset, exact, traces = setting
    q = traces[1][1][-1].gaussian
    figure = fig_data(dataset, exact, [("my fit", q)], 0.1, (3.0, 1.0))
    z = 1.959963984540054

    def edges(trace):
        half = len(trace.x) // 2
        x = np.asarray(trace.x[:half])
        return x, np.asarray(trace.y[:half]), np.asarray(trace.y[half:])[::-1]

    def line_sd(cov, x):
        return np.sqrt(cov[0, 0] * x**2 + 2 * cov[0, 1] * x + cov[1, 1])

    x, upper, lower = edges(named(figure, "exact 95% for the line"))
    mean = exact.mean[0] * x + exact.mean[1]
    assert upper == pytest.approx(mean + z * line_sd(exact.posterior.cov, x))
    assert lower == pytest.approx(mean - z * line_sd(exact.posterior.cov, x))
    x, upper, _ = edges(named(figure, "exact 95% for new y"))
    assert upper == pytest.approx(mean + z * np.sqrt(0.1**2 + line_sd(exact.posterior.cov, x) ** 2))
    x, upper, lower = edges(named(figure, "my fit"))
    fit_mean = q.mean[0] * x + q.mean[1]
    assert upper == pytest.approx(fit_mean + z * line_sd(q.cov, x))
    assert lower == pytest.approx(fit_mean - z * line_sd(q.cov, x))
    truth = named(figure, "true line")
    assert np.asarray(truth.y) == pytest.approx(3.0 * np.asarray(truth.x) + 1.0)
    data = named(figure, "data")
    assert len(data.x) == dataset.n
    low, high = figure.layout.yaxis.range
    assert low <= dataset.y.min() and high >= dataset.y.max()


def test_fig_data_without_true_line_or_fits(setting):
    dataset, exact, _ = setting
    figure = fig_data(dataset, exact, [], 0.1, None)
    assert not [t for t in figure.data if "true line" in (t.name or "")]
    assert len(figure.data) == 4  # two exact bands, the data, the exact mean


def test_fig_data_downsamples_big_data_reproducibly(setting):
    _, exact, _ = setting
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, 5000)
    big = Dataset(x, 3 * x + 1 + rng.normal(0, 0.1, 5000))
    first, second = (named(fig_data(big, exact, [], 0.1, None), "data") for _ in range(2))
    assert len(first.x) == 2000 and list(first.x) == list(second.x)
    kept = set(zip(first.x, first.y, strict=True))
    assert kept <= set(zip(big.x, big.y, strict=True))  # real points, each with its own y


def test_colours_are_stable_and_distinct_for_the_compared_fits():
    labels = [FitConfig(method=method, guide=guide).label for method, guide in COMPARED_FITS]
    colours = [colour_for(label) for label in labels]
    assert len(set(colours)) == len(labels)
    assert colour_for("some other label") == colour_for("some other label")
    assert colour_for("some other label").startswith("#")


def test_bad_parameter_index_is_refused(setting):
    _, exact, traces = setting
    with pytest.raises(ValueError, match="parameter"):
        fig_mean(traces, exact, 2, STEPS)


def test_the_legend_sits_between_title_and_plot_area_and_the_plot_area_keeps_its_height(setting):
    _, exact, traces = setting
    one = fig_mean(traces[:1], exact, 0, STEPS)
    both = fig_mean(traces, exact, 0, STEPS)
    for figure in (one, both):
        layout = figure.layout
        entries = sum(1 for trace in figure.data if trace.showlegend is not False)
        assert layout.height - layout.margin.t - layout.margin.b == figures.PLOT_AREA_HEIGHT
        # plotly.js wraps a legend into columns as wide as its widest entry (line sample ~50 px, characters ~0.55
        # em): in the 440 px of a half-width chart at 1280 px beside the sidebar, these fit `columns` to a row.
        widest = max(50 + 0.55 * figures.FONT_SIZE * len(trace.name) for trace in figure.data)
        columns = max(1, int(figures.LEGEND_WIDTH // widest))
        assert layout.margin.t >= figures.TITLE_HEIGHT + figures.LEGEND_ROW_HEIGHT * math.ceil(entries / columns)
        # Its bottom sits LEGEND_GAP px above the plot area, the rows grow up towards the title: on screen whenever
        # the chart's top is, and in place however tall the page draws the figure.
        assert (layout.legend.yref, layout.legend.yanchor) == ("paper", "bottom")
        assert (layout.legend.y - 1.0) * figures.PLOT_AREA_HEIGHT == pytest.approx(figures.LEGEND_GAP)
        assert layout.legend.tracegroupgap == 0  # plotly's gaps between groups would outgrow the rows made room for
    assert both.layout.height >= one.layout.height  # more methods, never a shorter legend


def population_data() -> Dataset:
    """200 yearly counts of world-population size (about 8e9), as a class might upload them."""
    years = np.arange(1825.0, 2025.0)
    return Dataset(years, 8e9 + 4e7 * (years - 1825.0) + np.random.default_rng(5).normal(0.0, 1e7, years.size))


@pytest.mark.parametrize(
    ("dataset", "model"),
    [
        (population_data(), Model()),
        (Dataset(np.array([1.0, 2.0, 3.0]), np.array([1e8, 2e8, 1e8])), Model()),  # a 3-row CSV of y near 1e8
        # The link ?w=1000000&pws=1e-9&s=0.001: a steep simulated slope that a tight prior forbids.
        (generate(DataConfig(slope=1e6, noise_sd=0.001)), Model(GaussianPrior(slope_sd=1e-9), noise_sd=0.001)),
    ],
    ids=["population", "csv-1e8", "link"],
)
def test_the_loss_chart_of_data_whose_minus_log_evidence_passes_1e17_is_zoomed_on_it(dataset, model):
    exact = exact_posterior(dataset, model)
    floor = -exact.log_evidence
    assert floor > 1e17  # the size at which round axis steps fell below float spacing and the chart raised
    snapshots = long_trajectory(50)
    for figure in (fig_loss([("Bayes by Backprop", snapshots)], exact, 50), fig_mean([], exact, 0, 50)):
        low, high = figure.layout.yaxis.range
        assert math.isfinite(low) and math.isfinite(high) and low < high
    low, high = fig_loss([], exact, 50).layout.yaxis.range
    # Still zoomed on -log p(y): float64 tells numbers apart at about 2e-16 of their size, the range is kept
    # within 1e-9 of it (far wider than the float spacing, far narrower than the value).
    assert low <= floor <= high and high - low <= 1e-9 * floor
    assert fig_sd([], exact, 1, 50).layout.yaxis.range is not None
    fig_data(dataset, exact, [], model.noise_sd, None)


@pytest.mark.parametrize(
    ("reference", "seen"),
    [
        ([math.nan, math.inf], []),
        ([1e308, -1e308], [math.inf, -1e308]),
        ([1e17 - 2.0, 1e17 + 10.0], []),
        ([1e-300, 1e-300], [math.nan]),
        ([], [3.0, 4.0]),
    ],
)
def test_stable_range_is_finite_and_covers_the_finite_values_whatever_they_are(reference, seen):
    low, high = figures.stable_range(reference, seen)
    assert math.isfinite(low) and math.isfinite(high) and low < high
    drawable = [v for v in (*reference, *seen) if math.isfinite(v) and abs(v) <= figures.AXIS_LIMIT]
    assert all(low <= value <= high for value in drawable)


def tick_value(text: str) -> float:
    """The number a log-axis tick label reads as: '0.02', '5,000', '10<sup>-7</sup>' or '2×10<sup>-7</sup>'."""
    power = re.fullmatch(r"(?:([\d.]+)×)?10<sup>(-?\d+)</sup>", text)
    if power:
        return float(power.group(1) or 1.0) * 10.0 ** int(power.group(2))
    return float(text.replace(",", ""))


@pytest.mark.parametrize("scale", [1e-7, 0.03, 1.0, 4e5, 1e12])
def test_log_sd_axes_label_each_tick_with_its_full_value(setting, scale):
    _, exact, _ = setting
    snapshots = [
        Snapshot.of(i, 0.0, 1.0, Gaussian.diagonal([3.0, 1.0], [scale * (1 + 9 / (i + 1))] * 2)) for i in range(50)
    ]
    for figure in (fig_sd([("Bayes by Backprop", snapshots)], exact, 0, 50), fig_sd([], exact, 1, 50)):
        axis = figure.layout.yaxis
        low, high = axis.range
        assert axis.tickmode == "array" and len(axis.tickvals) >= 2
        for value, text in zip(axis.tickvals, axis.ticktext, strict=True):
            # A label is the tick's whole value (never a bare mantissa digit such as "3" for 0.03), to 6 digits.
            assert tick_value(text) == pytest.approx(value, rel=1e-6), text
            assert low - 1e-9 <= math.log10(value) <= high + 1e-9


def test_noise_injection_alone_gets_an_mse_chart_not_an_elbo_one(setting):
    _, exact, traces = setting
    noise_label, snapshots = traces[0]
    figure = fig_loss([(noise_label, snapshots)], exact, STEPS)
    assert "ELBO" not in figure.layout.yaxis.title.text and "not an ELBO" in figure.layout.title.text
    assert "yaxis2" not in figure.layout.to_plotly_json() and figure.layout.yaxis.type == "log"
    assert not [t for t in figure.data if "log p(y)" in (t.name or "")]  # no ELBO floor on an MSE chart
    low, high = figure.layout.yaxis.range
    losses = [s.loss for s in snapshots[1:]]
    assert 10**low <= min(losses) and 10**high >= max(losses)


def test_the_mse_panel_has_its_own_y_axis_under_the_elbo_panel(setting):
    _, exact, traces = setting
    figure = fig_loss(traces, exact, STEPS)
    layout = figure.layout
    assert layout.yaxis2.overlaying is None  # a panel of its own, not a second scale over the ELBO's
    assert layout.yaxis2.domain[1] < layout.yaxis.domain[0]  # below it, with a gap
    assert "MSE" in layout.yaxis2.title.text and "ELBO" in layout.yaxis.title.text
    assert any("not an ELBO" in annotation.text for annotation in layout.annotations)
    plot_area = layout.height - layout.margin.t - layout.margin.b
    assert (layout.yaxis.domain[1] - layout.yaxis.domain[0]) * plot_area == pytest.approx(figures.PLOT_AREA_HEIGHT)


def test_the_mse_reference_is_the_noise_variance_the_true_lines_mean_squared_error(setting):
    _, exact, traces = setting
    reference = named(fig_loss(traces, exact, STEPS), "true line's MSE")
    assert constant(reference.y, exact.model.noise_sd**2) and reference.yaxis == "y2"
    # The claim in its name: on data simulated around the true line, the mean squared residual of that line is s^2.
    # 20,000 points: the mean of squared N(0, s^2) draws has relative sd sqrt(2 / n) = 1%; 5% is 5 of those sds.
    big = generate(DataConfig(n=20_000, seed=3))
    residuals = big.y - (DataConfig().slope * big.x + DataConfig().intercept)
    assert np.mean(residuals**2) == pytest.approx(DataConfig().noise_sd ** 2, rel=0.05)


def test_compare_all_sd_chart_keeps_the_fits_near_the_references_readable(setting):
    _, exact, _ = setting
    exact_sd, mean_field_sd = float(exact.sd[0]), float(exact.mean_field_sd[0])
    noise_label, bbb_label = (FitConfig(method=method).label for method in ("noise", "bbb"))

    def settling(target):
        return [
            Snapshot.of(i, 0.0, 1.0, Gaussian.diagonal([3.0, 1.0], [target * (1 + 3 / (i + 1))] * 2)) for i in range(50)
        ]

    noise_sd = 25 * exact_sd  # noise injection's sds stay far above the posterior's (about 0.8 against 0.03)
    fits = [(noise_label, settling(noise_sd)), (bbb_label, settling(mean_field_sd))]
    figure = fig_sd(fits, exact, 0, 50)
    low, high = figure.layout.yaxis.range
    assert 10**low <= mean_field_sd and exact_sd <= 10**high
    # The gap between the references takes at least a fifth of the axis height (0.16 when the axis ran up to
    # noise injection's sd: 0.01 to 1 for these references).
    assert (math.log10(exact_sd) - math.log10(mean_field_sd)) / (high - low) >= 0.2
    (note,) = figure.layout.annotations
    latest = fits[0][1][-1].sd[0]
    assert noise_label in note.text and f"sd {latest:.3g}" in note.text and "above the chart" in note.text
    assert 10**high < min(s.sd[0] for s in fits[0][1])  # the note is true: its whole line is above the chart


def awkward_settings() -> list[tuple[Dataset, Model]]:
    """Data and models at the edges: n = 2, x near 1e6, huge and tiny prior sds, y near 8e9."""
    rng = np.random.default_rng(11)
    far_x = 1e6 + np.linspace(0.0, 1.0, 40)
    return [
        (generate(DataConfig()), Model(noise_sd=DataConfig().noise_sd)),
        (Dataset(np.array([0.0, 1.0]), np.array([1.0, 3.0])), Model()),  # n = 2
        (Dataset(far_x, 2.0 * far_x + rng.normal(0.0, 0.1, far_x.size)), Model(noise_sd=0.1)),  # x near 1e6
        (generate(DataConfig()), Model(GaussianPrior(slope_sd=1e6, intercept_sd=1e6))),  # a huge prior
        (generate(DataConfig()), Model(GaussianPrior(slope_sd=1e-9, intercept_sd=1e-9))),  # a tiny prior
        (population_data(), Model()),
    ]


def wandering_trajectory(count: int, scale: float, seed: int) -> list[Snapshot]:
    """`count` made-up snapshots whose means, sds and losses wander over many sizes (one loss and one sd not finite)."""
    rng = np.random.default_rng(seed)
    snapshots = []
    for i in range(count):
        sds = scale * np.exp(rng.normal(0.0, 3.0, 2))
        loss = math.nan if i == 1 else float(scale * rng.normal(1.0, 0.5))
        snapshots.append(Snapshot.of(10 * i, loss, 1.0, Gaussian.diagonal(list(scale * rng.normal(0.0, 1.0, 2)), sds)))
    if count > 3:
        snapshots[2] = Snapshot.of(20, math.inf, 1.0, Gaussian.diagonal([math.inf, 0.0], [math.inf, 1.0]))
    return snapshots


@pytest.mark.parametrize("setting_index", range(6))
def test_figures_built_without_plotlys_checks_are_the_figures_plotly_checks(setting_index, monkeypatch):
    # The live charts skip plotly's check of every property (figures.VALIDATE): the same builders with the checks on
    # are the reference, and the JSON sent to the browser must be equal in every value, bit for bit (no tolerance:
    # both builds hold the same numbers; a property plotly would refuse or reshape shows up as a difference).
    dataset, model = awkward_settings()[setting_index]
    exact = exact_posterior(dataset, model)
    scale = float(np.max(np.abs(exact.mean))) + 1.0
    traces = [
        ("Bayes by Backprop", wandering_trajectory(2, scale, setting_index)),
        ("noise injection", wandering_trajectory(TRAJECTORY_POINTS + 37, scale, setting_index + 20)),
        ("Pyro SVI, AutoMultivariateNormal (full covariance)", wandering_trajectory(60, 1e-6 * scale, 3)),
    ]
    fits = [(label, snapshots[-1].gaussian) for label, snapshots in traces] + [("n/a", exact.posterior)]
    builds = [
        lambda: fig_mean(traces, exact, 0, 4000),
        lambda: fig_mean(traces[:1], exact, 1, 2),
        lambda: fig_sd(traces, exact, 1, 4000),
        lambda: fig_sd(traces[1:2], exact, 0, 4000),
        lambda: fig_loss(traces, exact, 4000),
        lambda: fig_loss(traces[1:2], exact, 4000),
        lambda: fig_loss(traces[::2], exact, 4000),
        lambda: fig_loss([], exact, 4000),
        lambda: fig_data(dataset, exact, fits, model.noise_sd, (2.0, -1e6)),
        lambda: fig_data(dataset, exact, [], model.noise_sd, None),
    ]
    assert_same_json_without_checks(monkeypatch, figures, builds)


def test_figures_built_without_plotlys_checks_are_quicker(setting):
    # A generous bound on a loaded 2-core machine: unchecked builds took a fifth of the checked ones' time here.
    _, exact, traces = setting
    times = {}
    for validate in (True, False):
        figures.VALIDATE = validate
        try:
            start = time.perf_counter()
            for _ in range(5):
                fig_mean(traces, exact, 0, STEPS)
            times[validate] = time.perf_counter() - start
        finally:
            figures.VALIDATE = False
    assert times[False] < 0.8 * times[True]
