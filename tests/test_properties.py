"""Property tests of the exact reference across the allowed ranges, and of every figure builder (hypothesis)."""

import dataclasses
import math

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bayesdemo.charts import figures
from bayesdemo.charts.chart_style import METHOD_STYLES
from bayesdemo.charts.figures_explore import (
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
from bayesdemo.core.data import DataConfig, Dataset, generate
from bayesdemo.core.exact import DesignPosterior, Gaussian, design_matrix, exact_posterior
from bayesdemo.core.priors import PRIOR_KINDS, GaussianPrior, Model, ParameterPrior
from bayesdemo.fitting.runner import Snapshot
from bayesdemo.references.basis import BasisConfig, BasisPosterior, EvidenceCurve, feature_map
from bayesdemo.references.calibration import CalibrationConfig, CalibrationResult, MethodCalibration

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

data_configs = st.builds(
    DataConfig,
    n=st.integers(2, 400),
    slope=st.floats(-1e3, 1e3),
    intercept=st.floats(-1e3, 1e3),
    noise_sd=st.floats(1e-3, 1e2),
    x_min=st.floats(-100, 99),
    x_max=st.just(100.0),
    seed=st.integers(0, 2**32 - 1),
)
models = st.builds(
    Model,
    prior=st.builds(
        GaussianPrior,
        slope_mean=st.floats(-100, 100),
        slope_sd=st.floats(1e-2, 1e3),
        intercept_mean=st.floats(-100, 100),
        intercept_sd=st.floats(1e-2, 1e3),
    ),
    noise_sd=st.floats(1e-3, 1e2),
)


@SETTINGS
@given(config=data_configs, model=models)
def test_posterior_is_finite_symmetric_positive_definite_and_narrower_than_the_prior(config, model):
    exact = exact_posterior(generate(config), model)
    cov = exact.posterior.cov
    assert np.all(np.isfinite(exact.mean)) and np.all(np.isfinite(cov)) and math.isfinite(exact.log_evidence)
    np.testing.assert_array_equal(cov, cov.T)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    assert -1.0 <= exact.corr <= 1.0
    assert np.all(exact.sd <= model.prior.sd * (1 + 1e-9))  # data never widen a Gaussian posterior
    assert np.all(exact.mean_field_sd <= exact.sd * (1 + 1e-9))


@SETTINGS
@given(config=data_configs, model=models)
def test_posterior_agrees_with_the_brute_force_normal_equations(config, model):
    data = generate(config)
    exact = exact_posterior(data, model)
    phi = design_matrix(data.x)
    precision = np.diag(1 / model.prior.sd**2) + phi.T @ phi / model.noise_sd**2
    rhs = model.prior.mean / model.prior.sd**2 + phi.T @ data.y / model.noise_sd**2
    # Solve in scaled coordinates so the check is well conditioned whatever the units.
    np.testing.assert_allclose(exact.precision, precision, rtol=1e-9)
    residual = precision @ exact.mean - rhs
    assert np.all(np.abs(residual) <= 1e-7 * (np.abs(precision) @ np.abs(exact.mean) + np.abs(rhs)))


@SETTINGS
@given(config=data_configs, model=models, permutation_seed=st.integers(0, 1000))
def test_result_is_invariant_to_the_order_of_the_data(config, model, permutation_seed):
    data = generate(config)
    order = np.random.default_rng(permutation_seed).permutation(data.n)
    first = exact_posterior(data, model)
    second = exact_posterior(Dataset(data.x[order], data.y[order]), model)
    np.testing.assert_allclose(second.mean, first.mean, rtol=1e-6, atol=1e-9 * (1 + np.abs(first.mean).max()))
    np.testing.assert_allclose(second.posterior.cov, first.posterior.cov, rtol=1e-6, atol=1e-12)
    # The residual comes from sufficient statistics (MATH.md), so its rounding floor is about eps * y^T y / s^2.
    floor = 1e-6 + 1e-13 * first.stats.y_t_y / model.noise_sd**2
    assert math.isclose(second.log_evidence, first.log_evidence, rel_tol=1e-8, abs_tol=floor)


@SETTINGS
@given(config=data_configs, model=models)
def test_predictive_sds_are_ordered(config, model):
    data = generate(config)
    exact = exact_posterior(data, model)
    grid = np.linspace(config.x_min - 1, config.x_max + 1, 7)
    mean, sd_line, sd_obs = exact.predictive(grid)
    assert np.all(np.isfinite(mean)) and np.all(sd_line >= 0)
    assert np.all(sd_obs >= sd_line) and np.all(sd_obs >= model.noise_sd * (1 - 1e-12))


# ---- Figures: every builder draws whatever the numbers' size, and whatever non-finite value slips in --------------
# Data sizes span 1e-12 to 1e15 (the largest |x| or |y| a dataset accepts); derived quantities (losses, log
# evidences) reach far beyond, so they are drawn up to 1e300. Half the examples sprinkle nan, inf and -inf in.

# No shrinking phase: shrinking a failure through plotly took minutes; the failing draws are printed as they are.
FIGURE_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
scales = st.floats(-12.0, 15.0).map(lambda exponent: 10.0**exponent)
huge_scales = st.floats(-12.0, 300.0).map(lambda exponent: 10.0**exponent)
FIT_LABELS = st.sampled_from([*METHOD_STYLES, "Bayes by Backprop, MSE", MEAN_FIELD_LABEL, "any fit"])


def number(draw, scale, odd, positive=False):
    """One value of size up to `scale` (> 0 when positive); non-finite now and then when `odd`."""
    if odd and draw(st.integers(0, 3)) == 0:
        return draw(NON_FINITE)
    unit = draw(st.floats(1e-3, 1.0) if positive else st.floats(-1.0, 1.0))
    return unit * scale


def numbers(draw, count, scale, odd, positive=False):
    """`count` values of `number` as a float64 array."""
    return np.array([number(draw, scale, odd, positive) for _ in range(count)], dtype=np.float64)


@st.composite
def gaussians(draw, odd=None):
    """A Gaussian over (slope, intercept) at a drawn scale: any correlation, possibly non-finite moments."""
    scale, odd = draw(scales), draw(st.booleans()) if odd is None else odd
    sd = numbers(draw, 2, scale, odd, positive=True)
    corr = draw(st.floats(-0.999, 0.999))
    with np.errstate(all="ignore"):  # inf * 0 is meant: a nan covariance is one of the inputs
        cov = np.array([[sd[0] ** 2, corr * sd[0] * sd[1]], [corr * sd[0] * sd[1], sd[1] ** 2]])
    return Gaussian(numbers(draw, 2, draw(scales), odd), cov)


@st.composite
def datasets(draw):
    """2 to 40 points with x and y each of its own size from 1e-12 to 1e15 (x spans [-scale, scale])."""
    count = draw(st.integers(0, 38))
    x = np.concatenate([[-1.0, 1.0], draw(st.lists(st.floats(-1, 1), min_size=count, max_size=count))])
    y = np.array(draw(st.lists(st.floats(-1, 1), min_size=count + 2, max_size=count + 2)))
    return Dataset(x * draw(scales), y * draw(scales))


@st.composite
def exact_posteriors(draw, dataset):
    """The exact posterior of `dataset` under a drawn prior and noise sd; in odd examples with fields spoilt."""
    prior_sd, noise_sd = draw(st.floats(-9.0, 6.0)), draw(st.floats(-9.0, 6.0))
    model = Model(GaussianPrior(slope_sd=10.0**prior_sd, intercept_sd=10.0**prior_sd), noise_sd=10.0**noise_sd)
    exact = exact_posterior(dataset, model)
    if draw(st.booleans()):
        spoilt = draw(gaussians(odd=True))
        exact = dataclasses.replace(
            exact,
            posterior=spoilt,
            precision=np.array(draw(st.sampled_from([exact.precision, spoilt.cov, np.full((2, 2), math.nan)]))),
            log_evidence=draw(st.one_of(NON_FINITE, huge_scales.map(lambda value: -value))),
        )
    return exact


@st.composite
def snapshot_runs(draw):
    """Up to 3 fits, each 0 to 30 snapshots whose loss, means and sds have their own sizes and may be non-finite."""
    runs = []
    for _ in range(draw(st.integers(0, 3))):
        odd, loss_scale = draw(st.booleans()), draw(huge_scales)
        snapshots = []
        for step in range(draw(st.integers(0, 30))):
            q = draw(gaussians(odd=odd))
            snapshots.append(Snapshot(step * 10, 0.0, number(draw, loss_scale, odd), q.mean, q.sd, q.cov))
        runs.append((draw(FIT_LABELS), snapshots))
    return runs


def named_gaussians(draw, most=3):
    """(label, Gaussian) pairs."""
    return [(draw(FIT_LABELS), draw(gaussians())) for _ in range(draw(st.integers(0, most)))]


def assert_drawable(figure):
    """A figure whose every fixed axis range is two finite numbers, low < high, and which serialises for the page."""
    assert isinstance(figure, go.Figure)
    layout = figure.to_plotly_json()["layout"]
    for key, axis in layout.items():
        if key.startswith(("xaxis", "yaxis")) and axis.get("range") is not None:
            low, high = axis["range"]
            assert math.isfinite(low) and math.isfinite(high) and low < high, (key, axis["range"])
    pio.to_json(figure, validate=False)  # what the page sends to the browser


@FIGURE_SETTINGS
@given(data=st.data())
def test_live_figures_draw_any_scale_and_non_finite_values(data):
    dataset = data.draw(datasets())
    exact = data.draw(exact_posteriors(dataset))
    runs = data.draw(snapshot_runs())
    total_steps = data.draw(st.integers(1, 10**7))
    for parameter in (0, 1):
        assert_drawable(figures.fig_mean(runs, exact, parameter, total_steps))
        assert_drawable(figures.fig_sd(runs, exact, parameter, total_steps))
    assert_drawable(figures.fig_loss(runs, exact, total_steps))
    noise_sd = number(data.draw, data.draw(scales), data.draw(st.booleans()), positive=True)
    true_line = data.draw(st.none() | st.tuples(st.floats(allow_nan=True), st.floats(allow_nan=True)))
    fits = named_gaussians(data.draw)
    assert_drawable(figures.fig_data(dataset, exact, fits, noise_sd, true_line))


@FIGURE_SETTINGS
@given(data=st.data())
def test_parameter_space_and_sequential_figures_draw_any_scale_and_non_finite_values(data):
    draw = data.draw
    paths = [(draw(FIT_LABELS), numbers(draw, 2 * draw(st.integers(0, 20)), draw(scales), draw(st.booleans())))]
    figure = fig_parameter_space(draw(gaussians()), draw(gaussians()), named_gaussians(draw), paths)
    assert_drawable(figure)
    dataset = draw(datasets())
    k = draw(st.integers(0, dataset.n))
    vi, truth = draw(st.none() | gaussians()), draw(st.none() | st.tuples(st.floats(), st.floats()))
    assert_drawable(fig_sequential_plane(draw(gaussians()), draw(gaussians()), k, vi=vi, truth=truth))
    lines = numbers(draw, 2 * draw(st.integers(0, 10)), draw(scales), draw(st.booleans())).reshape(-1, 2)
    y_range = draw(st.none() | st.lists(st.floats(), min_size=2, max_size=2))
    noise_sd = number(draw, draw(scales), draw(st.booleans()), positive=True)
    figure = fig_sequential_data(dataset, k, draw(gaussians()), noise_sd, lines, vi=vi, y_range=y_range)
    assert_drawable(figure)


@FIGURE_SETTINGS
@given(data=st.data())
def test_mcmc_noise_sd_and_prior_figures_draw_any_scale_and_non_finite_values(data):
    draw = data.draw
    samples = numbers(draw, 2 * draw(st.integers(0, 60)), draw(scales), draw(st.booleans())).reshape(-1, 2)
    for parameter in (0, 1):
        assert_drawable(fig_mcmc_histogram(samples, draw(gaussians()), named_gaussians(draw), parameter))
    scale, odd = draw(scales), draw(st.booleans())
    grid = np.sort(numbers(draw, draw(st.integers(0, 60)), scale, False, positive=True))
    density = numbers(draw, grid.size, 1.0 / scale, odd, positive=True)
    fits = [(draw(FIT_LABELS), number(draw, scale, odd, True), number(draw, scale, odd, True)) for _ in range(2)]
    true_noise_sd = draw(st.none() | st.just(number(draw, scale, odd, True)))
    assert_drawable(fig_noise_sd(grid, density, fits, true_noise_sd))
    axis = np.sort(numbers(draw, draw(st.integers(0, 60)), draw(scales), False))
    density = numbers(draw, axis.size, draw(scales), draw(st.booleans()), positive=True)
    prior = ParameterPrior(
        draw(st.sampled_from(PRIOR_KINDS)), draw(st.floats(-1e6, 1e6)), 10.0 ** draw(st.floats(-9.0, 6.0))
    )
    for parameter in (0, 1):
        assert_drawable(fig_prior_marginal(axis, density, prior, named_gaussians(draw), parameter))


@FIGURE_SETTINGS
@given(data=st.data())
def test_basis_evidence_calibration_and_gradient_figures_draw_any_scale_and_non_finite_values(data):
    draw = data.draw
    dataset = draw(datasets())
    config = BasisConfig(draw(st.sampled_from(["polynomial", "rbf"])), draw(st.integers(1, 5)))
    features = feature_map(config, (float(dataset.x.min()), float(dataset.x.max())))
    size, odd = features.size, draw(st.booleans())
    sd = numbers(draw, size, draw(scales), odd, positive=True)
    weights = Gaussian(numbers(draw, size, draw(scales), odd), np.diag(sd**2))
    noise_sd = number(draw, draw(scales), odd, positive=True)
    fit = BasisPosterior(features, DesignPosterior(weights, np.diag(sd**-2), -draw(huge_scales), noise_sd))
    assert_drawable(fig_basis_fit(dataset, fit, "basis"))
    sizes = np.arange(draw(st.integers(1, 8)))
    curve = EvidenceCurve("polynomial", sizes, -numbers(draw, sizes.size, draw(huge_scales), draw(st.booleans())))
    assert_drawable(fig_evidence(curve, draw(st.none() | st.integers(-1, 9))))
    levels = (0.5, 0.9)
    methods = {}
    for name in draw(st.lists(st.sampled_from(["exact", "mean_field", "bbb"]), unique=True, max_size=3)):
        count = draw(st.integers(1, 6))  # CalibrationConfig asks for at least 2 datasets; 1 is the awkward edge
        covered = np.array(draw(st.lists(st.booleans(), min_size=count * 4, max_size=count * 4))).reshape(count, 2, 2)
        methods[name] = MethodCalibration(name, levels, covered, np.zeros((count, 2), dtype=np.int64), 99)
    result = CalibrationResult(CalibrationConfig(levels=levels), Model(), np.zeros((0, 2)), None, methods)
    assert_drawable(fig_calibration(result))
    rows = [(draw(FIT_LABELS), numbers(draw, 2, draw(huge_scales), draw(st.booleans()))) for _ in range(3)]
    assert_drawable(fig_gradient_variance(rows))
