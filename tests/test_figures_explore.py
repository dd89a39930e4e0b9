"""The teaching views' figures, read back from fig.data: ellipses on their level sets, histograms that add up."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from bayesdemo.charts import figures_explore
from bayesdemo.charts.figures import MAX_POINTS, MEAN_FIELD_COLOUR
from bayesdemo.charts.figures_explore import (
    EVIDENCE_WINDOW,
    MEAN_FIELD_LABEL,
    fig_basis_fit,
    fig_calibration,
    fig_evidence,
    fig_gradient_variance,
    fig_mcmc_histogram,
    fig_noise_sd,
    fig_parameter_space,
    fig_prior_marginal,
    fig_sequential_data,
    fig_sequential_plane,
)
from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import Gaussian
from bayesdemo.references.basis import BasisConfig, fit_basis
from bayesdemo.references.sequential import line_draws, posterior_after
from tests.support.figure_inputs import (
    CURVED,
    DATA,
    EXACT,
    LIVE,
    MODEL,
    PATH,
    PLANE_PRIOR,
    SLOPE_PRIOR,
    basis_fit,
    calibration_result,
    evidence_curve,
    grid_reference,
    mcmc_samples,
    noise_reference,
)
from tests.support.figure_json import assert_same_json_without_checks


def trace(figure: go.Figure, name_start: str):
    """The one trace whose name starts with `name_start`."""
    found = [t for t in figure.data if t.name and t.name.startswith(name_start)]
    assert len(found) == 1, [t.name for t in figure.data]
    return found[0]


def quadratic_form(q: Gaussian, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(theta - m)^T S^-1 (theta - m) at each point, by the explicit inverse (independent of the Cholesky draw)."""
    diff = np.column_stack([x, y]) - q.mean
    return np.einsum("ij,jk,ik->i", diff, np.linalg.inv(q.cov), diff)


def test_parameter_space_ellipses_lie_on_their_level_sets():
    figure = fig_parameter_space(EXACT.posterior, EXACT.mean_field, [("BBB", LIVE)], [("BBB", PATH)])
    for level in (1, 2):
        ellipse = trace(figure, f"exact posterior, {level} sd")
        np.testing.assert_allclose(quadratic_form(EXACT.posterior, ellipse.x, ellipse.y), level**2, rtol=1e-9)
    mean_field = trace(figure, "mean-field optimum")
    # Axis-aligned with semi-axes mean_field_sd: ((x - m) / sd)^2 sums to 1, and the extremes are m +- sd.
    scaled = (np.column_stack([mean_field.x, mean_field.y]) - EXACT.mean) / EXACT.mean_field_sd
    np.testing.assert_allclose(np.sum(scaled**2, axis=1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(np.max(mean_field.x) - EXACT.mean[0], EXACT.mean_field_sd[0], rtol=1e-3)
    np.testing.assert_allclose(
        quadratic_form(LIVE, *(np.asarray(v) for v in (trace(figure, "BBB: q").x, trace(figure, "BBB: q").y))),
        1.0,
        rtol=1e-9,
    )
    np.testing.assert_array_equal(trace(figure, "BBB: path").x, PATH[:, 0])
    assert all(not isinstance(t, go.Scattergl) for t in figure.data)


def test_parameter_space_axes_cover_the_exact_two_sd_ellipse():
    figure = fig_parameter_space(EXACT.posterior, EXACT.mean_field)
    ellipse = trace(figure, "exact posterior, 2 sd")
    x_range, y_range = figure.layout.xaxis.range, figure.layout.yaxis.range
    assert x_range[0] <= min(ellipse.x) and max(ellipse.x) <= x_range[1]
    assert y_range[0] <= min(ellipse.y) and max(ellipse.y) <= y_range[1]


def test_sequential_views_show_k_points_and_the_posterior_after_them():
    k = 5
    prior, posterior = posterior_after(DATA, MODEL, 0), posterior_after(DATA, MODEL, k)
    plane = fig_sequential_plane(prior, posterior, k, truth=(3.0, 1.0))
    np.testing.assert_allclose(
        quadratic_form(posterior, trace(plane, "posterior after 5, 1 sd").x, trace(plane, "posterior after 5, 1 sd").y),
        1.0,
        rtol=1e-9,
    )
    np.testing.assert_allclose(quadratic_form(prior, trace(plane, "prior").x, trace(plane, "prior").y), 1.0, rtol=1e-9)
    lines = line_draws(posterior, 12, seed=0)
    data = fig_sequential_data(DATA, k, posterior, MODEL.noise_sd, lines)
    assert len(trace(data, "first 5").x) == k
    assert len(trace(data, "points still to come").x) == DATA.n - k
    drawn = trace(data, "12 lines")
    assert np.sum(np.isnan(np.asarray(drawn.x, dtype=float))) == 12


def test_band_narrows_as_points_arrive():
    def band_width(k: int) -> float:
        posterior = posterior_after(DATA, MODEL, k)
        band = trace(fig_sequential_data(DATA, k, posterior, MODEL.noise_sd, line_draws(posterior, 3)), "exact 95%")
        y = np.asarray(band.y)
        return float(np.mean(y[:101] - y[101:][::-1]))

    widths = [band_width(k) for k in (0, 2, 10, 40)]
    assert widths == sorted(widths, reverse=True)


def test_mcmc_histogram_counts_add_up_and_density_integrates_to_one():
    samples = mcmc_samples(500)
    for parameter in (0, 1):
        figure = fig_mcmc_histogram(samples, EXACT.posterior, [("BBB", EXACT.mean_field)], parameter)
        bars = trace(figure, "NUTS")
        assert int(np.sum(bars.customdata)) == 500
        np.testing.assert_allclose(np.sum(np.asarray(bars.y) * np.asarray(bars.width)), 1.0, rtol=1e-9)
        exact_curve = trace(figure, "exact posterior")
        peak = float(np.max(exact_curve.y))
        np.testing.assert_allclose(peak, 1.0 / (EXACT.sd[parameter] * np.sqrt(2 * np.pi)), rtol=1e-3)
        mean_field_peak = float(np.max(trace(figure, "BBB").y))
        assert mean_field_peak > peak  # narrower mean-field marginal


def test_basis_fit_and_evidence_figures():
    fit = basis_fit()
    figure = fig_basis_fit(CURVED, fit, "degree 2")
    mean = trace(figure, "predictive mean")
    np.testing.assert_allclose(mean.y, fit.predictive(np.asarray(mean.x))[0], rtol=1e-12)
    curve = evidence_curve(0, 6)
    evidence = fig_evidence(curve, chosen=2)
    np.testing.assert_allclose(trace(evidence, "log evidence").y, curve.log_evidence)
    assert trace(evidence, "best").x[0] == curve.best_size == 2
    # Degree 0 misses the curve by far more than the window: the axis keeps the models near the best readable.
    assert curve.log_evidence[0] < curve.log_evidence.max() - EVIDENCE_WINDOW
    low, high = evidence.layout.yaxis.range
    assert low == curve.log_evidence.max() - EVIDENCE_WINDOW and high > curve.log_evidence.max()
    near = fig_evidence(evidence_curve(2, 4))
    assert near.layout.yaxis.range is None, "no clipping when every model is within the window"


def test_calibration_figure_reads_the_coverages():
    result = calibration_result()
    figure = fig_calibration(result)
    exact_bars = trace(figure, "exact posterior")
    np.testing.assert_allclose(exact_bars.y, result.methods["exact"].coverage.reshape(-1))
    assert list(trace(figure, "nominal").y) == [0.5, 0.5, 0.9, 0.9]
    mean_field = np.asarray(trace(figure, "mean-field").y)
    assert np.all(mean_field <= np.asarray(exact_bars.y) + 1e-12)


def test_gradient_variance_figure_reads_each_estimators_variances():
    estimators = [("weight sampling", np.array([8000.0, 20000.0])), ("local", np.array([100.0, 210.0]))]
    figure = fig_gradient_variance(estimators)
    slope = trace(figure, "slope")
    assert list(slope.y) == ["weight sampling", "local"] and list(slope.x) == [8000.0, 100.0]
    assert list(trace(figure, "intercept").x) == [20000.0, 210.0]
    assert figure.layout.xaxis.type == "log" and slope.orientation == "h"


def test_scatters_of_big_data_are_thinned_to_max_points():
    big = generate(DataConfig(n=3 * MAX_POINTS + 7, seed=4))
    k = MAX_POINTS + 10
    posterior = posterior_after(big, MODEL, k)
    figure = fig_sequential_data(big, k, posterior, MODEL.noise_sd, line_draws(posterior, 5))
    seen = trace(figure, f"first {k} points")
    assert len(seen.x) <= MAX_POINTS and seen.name.endswith(f"({len(seen.x):,} of {k:,} shown)")
    assert seen.x[0] == big.x[0] and seen.x[-1] == big.x[k - 1]
    to_come = trace(figure, "points still to come")
    assert len(to_come.x) <= MAX_POINTS and to_come.x[0] == big.x[k] and to_come.x[-1] == big.x[-1]
    fit = fit_basis(big, BasisConfig("polynomial", 1), MODEL)
    assert len(trace(fig_basis_fit(big, fit, "line"), "data").x) <= MAX_POINTS
    small = fig_sequential_data(DATA, 3, posterior_after(DATA, MODEL, 3), MODEL.noise_sd, np.zeros((1, 2)))
    assert len(trace(small, "points still to come").x) == DATA.n - 3 and trace(small, "first 3 points")


def test_noise_sd_figure_shows_the_quadrature_density_and_log_normal_fits():
    reference = noise_reference()
    log_mean, log_sd = np.log(0.1), 0.07  # q(log s) = N(log 0.1, 0.07^2): mean and sd of s below
    mean = np.exp(log_mean + log_sd**2 / 2)
    fits = [("BBB", mean, mean * np.sqrt(np.expm1(log_sd**2)))]
    figure = fig_noise_sd(reference.noise_sd_grid, reference.density, fits, 0.1)
    exact = trace(figure, "exact p(s | y)")
    x, y = np.asarray(exact.x), np.asarray(exact.y)
    np.testing.assert_allclose(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(x)), 1.0, atol=2e-3)  # the shown part
    fit = trace(figure, "BBB: q(s)")
    fit_x, fit_y = np.asarray(fit.x), np.asarray(fit.y)
    np.testing.assert_allclose(np.sum(0.5 * (fit_y[1:] + fit_y[:-1]) * np.diff(fit_x)), 1.0, atol=0.02)
    assert fit_x[np.argmax(fit_y)] == pytest.approx(0.1 * np.exp(-(0.07**2)), rel=0.02)  # log-normal mode
    assert list(trace(figure, "true s").x) == [0.1, 0.1]


def test_the_mean_field_optimum_is_drawn_in_its_own_grey_beside_a_method():
    reference = noise_reference()
    fits = [(MEAN_FIELD_LABEL, 0.1, 0.007), ("Bayes by Backprop", 0.1, 0.007)]
    figure = fig_noise_sd(reference.noise_sd_grid, reference.density, fits)
    assert trace(figure, MEAN_FIELD_LABEL).line.color == MEAN_FIELD_COLOUR
    assert trace(figure, "Bayes by Backprop").line.color != MEAN_FIELD_COLOUR
    histogram = fig_mcmc_histogram(
        np.zeros((10, 2)) + EXACT.mean, EXACT.posterior, [(MEAN_FIELD_LABEL, EXACT.mean_field)], 0
    )
    assert trace(histogram, MEAN_FIELD_LABEL).line.color == MEAN_FIELD_COLOUR


def test_prior_marginal_shows_the_grid_density_the_prior_and_each_fits_gaussian():
    grid = grid_reference()
    fit = Gaussian.diagonal(grid.mean + 0.1 * grid.sd, 0.8 * grid.sd)
    density = grid.marginal_densities()[0]
    figure = fig_prior_marginal(grid.slope_axis, density, SLOPE_PRIOR, [(MEAN_FIELD_LABEL, fit)], 0)
    exact = trace(figure, "exact posterior, grid")
    x, y = np.asarray(exact.x), np.asarray(exact.y)
    np.testing.assert_allclose(y, np.interp(x, grid.slope_axis, density))
    assert np.sum(y) * (x[1] - x[0]) == pytest.approx(1.0, abs=1e-4), "mean +- 5 sd holds the whole marginal"
    prior = trace(figure, "prior")
    np.testing.assert_allclose(prior.y, np.exp(-np.abs(np.asarray(prior.x)) / 0.5) / (2 * 0.5))
    q = trace(figure, MEAN_FIELD_LABEL)
    qx, qy = np.asarray(q.x), np.asarray(q.y)
    assert qx[np.argmax(qy)] == pytest.approx(fit.mean[0], abs=qx[1] - qx[0])
    assert qy.max() == pytest.approx(1.0 / (fit.sd[0] * np.sqrt(2 * np.pi)), rel=1e-3)
    assert q.line.color == MEAN_FIELD_COLOUR
    assert q.marker.symbol and q.mode == "lines+markers"  # told from the dotted prior by its markers, not its colour
    low, high = figure.layout.xaxis.range
    assert low <= grid.mean[0] - 5 * grid.sd[0] + 1e-12 and high >= grid.mean[0] + 5 * grid.sd[0] - 1e-12
    assert figure.layout.xaxis.title.text == "slope"


def test_axis_titles_stand_off_from_their_tick_labels_in_the_plane_views():
    figures = [
        fig_parameter_space(EXACT.posterior, EXACT.mean_field, [("BBB", LIVE)], [("BBB", np.zeros((3, 2)))]),
        fig_sequential_plane(PLANE_PRIOR, posterior_after(DATA, MODEL, 3), 3, vi=LIVE, truth=(3.0, 1.0)),
    ]
    for figure in figures:
        for axis in (figure.layout.xaxis, figure.layout.yaxis):
            # plotly.js places a title `standoff` px beyond its tick labels only with automargin on; without it the
            # title "slope" sat on the middle tick label.
            assert axis.automargin is True and axis.title.standoff >= 10
        # Grouped entries (an ellipse and its path) with plotly's default 10 px gaps outgrew the legend's margin.
        assert figure.layout.legend.tracegroupgap == 0
        assert figure.layout.xaxis.title.text == "slope" and figure.layout.yaxis.title.text == "intercept"


@pytest.mark.parametrize("case", ["plain", "far", "degenerate"])
def test_parameter_space_built_without_plotlys_checks_sends_the_same_json(monkeypatch, case):
    # The live parameter-space figure skips plotly's check of every property (figures_explore.VALIDATE): the same
    # builder with the checks on is the reference, and the JSON sent must be equal in every value, bit for bit (no
    # tolerance: both builds hold the same numbers; a property plotly would refuse or reshape shows up as a difference).
    exact, mean_field = EXACT.posterior, EXACT.mean_field
    live, path = LIVE, PATH
    if case == "far":  # x far from 0 and a huge spread: means near 1e6, sds near 1e4
        exact = Gaussian([1e6, -3e5], [[1e8, -9.9e7], [-9.9e7, 1e8]])
        mean_field = Gaussian.diagonal([1e6, -3e5], [1e3, 1e3])
        live, path = Gaussian.diagonal([1.2e6, -2e5], [2e4, 1e-3]), np.array([[0.0, 0.0], [1e6, -3e5]])
    if case == "degenerate":  # a fit whose covariance is not positive definite draws no ellipse; one-point path
        live, path = Gaussian([0.5, 0.5], [[1.0, 2.0], [2.0, 1.0]]), np.array([[0.5, 0.5]])
    builds = [
        lambda: fig_parameter_space(exact, mean_field),
        lambda: fig_parameter_space(exact, mean_field, [("BBB", live)], [("BBB", path)]),
        lambda: fig_parameter_space(exact, mean_field, [("BBB", live), ("noise injection", exact)], [], title="t"),
    ]
    assert_same_json_without_checks(monkeypatch, figures_explore, builds)
