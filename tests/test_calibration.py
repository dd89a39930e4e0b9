"""Simulation-based calibration: exact inference covers and ranks as it should; correlated mean-field under-covers."""

import math
from statistics import NormalDist

import numpy as np
import pytest

from bayesdemo.calibration import (
    CalibrationConfig,
    calibrate,
    chi_square_uniformity,
    expected_mean_field_coverage,
    fit_with_method,
)
from bayesdemo.data import Dataset
from bayesdemo.exact import Gaussian, exact_posterior
from bayesdemo.methods.base import FitConfig
from bayesdemo.priors import GaussianPrior, Model

# Coverage indicators of an exact posterior are independent Bernoulli(level) draws, so a measured coverage has the
# binomial standard error sqrt(l (1 - l) / K). 4 standard errors: a false alarm has probability 6e-5 per check.
TOLERANCE_IN_STANDARD_ERRORS = 4.0
RANK_TEST_LEVEL = 0.01  # reject uniform ranks when the chi-square p-value (10 bins, 9 dof) is below this


def assert_within_standard_errors(measured, expected, standard_error):
    """|measured - expected| < TOLERANCE_IN_STANDARD_ERRORS * standard_error, elementwise after broadcasting."""
    measured, expected, standard_error = np.broadcast_arrays(measured, expected, standard_error)
    gap = np.abs(measured - expected)
    assert np.all(gap < TOLERANCE_IN_STANDARD_ERRORS * standard_error), (measured, expected, standard_error)


@pytest.fixture(scope="module")
def correlated():
    """4,000 datasets of 10 points sharing one x ~ U(0, 1): the slope-intercept posterior correlation is strong."""
    return calibrate(Model(), CalibrationConfig(datasets=4000, n=10, seed=0))


def test_exact_coverage_is_nominal_within_binomial_error(correlated):
    exact = correlated.methods["exact"]
    standard_error = exact.coverage_standard_error()  # 0.0079 at 50%, 0.0047 at 90%
    assert_within_standard_errors(exact.coverage, np.array([[0.5], [0.9]]), standard_error[:, None])


def test_mean_field_under_covers_when_x_is_not_centred_exactly_as_predicted(correlated):
    exact = exact_posterior(Dataset(correlated.shared_x, np.zeros(10)), Model())
    ratio = exact.mean_field_sd / exact.sd  # sqrt(1 - rho^2); the same for every dataset since x is shared
    assert np.all(ratio < 0.6)
    mean_field = correlated.methods["mean_field"]
    for row, level in enumerate((0.5, 0.9)):
        predicted = expected_mean_field_coverage(level, ratio)  # 2 Phi(z ratio) - 1: 0.27 and 0.59 here
        standard_error = np.sqrt(predicted * (1 - predicted) / mean_field.datasets)
        assert_within_standard_errors(mean_field.coverage[row], predicted, standard_error)
        assert np.all(mean_field.coverage[row] < level - 0.2)  # the lesson: far below nominal


def test_exact_ranks_are_uniform_and_mean_field_ranks_are_not(correlated):
    _, exact_p = correlated.methods["exact"].rank_uniformity(bins=10)
    assert np.all(exact_p > RANK_TEST_LEVEL), exact_p  # measured 0.67 and 0.25
    # Too-narrow q: the true theta falls outside its draws often, piling ranks into the end bins.
    histogram = correlated.methods["mean_field"].rank_histogram(bins=10)
    _, mean_field_p = correlated.methods["mean_field"].rank_uniformity(bins=10)
    assert np.all(mean_field_p < 1e-12), mean_field_p
    assert np.all(histogram[[0, -1]].sum(axis=0) > 2 * 0.2 * correlated.config.datasets)


def test_mean_field_is_nominal_on_centred_x():
    model = Model(GaussianPrior(1.0, 2.0, -1.0, 3.0), noise_sd=0.5)
    # Exactly centred x: sum x = 0 makes the precision diagonal, so mean-field IS the exact posterior, draw for draw.
    centred = calibrate(model, CalibrationConfig(datasets=300, seed=2), x=np.linspace(-0.5, 0.5, 12))
    np.testing.assert_array_equal(centred.methods["mean_field"].covered, centred.methods["exact"].covered)
    np.testing.assert_array_equal(centred.methods["mean_field"].ranks, centred.methods["exact"].ranks)
    # Fresh x ~ U(-0.5, 0.5) per dataset: only a small chance correlation remains (|rho| ~ 0.1 at n = 100).
    fresh = calibrate(model, CalibrationConfig(datasets=2000, n=100, x_min=-0.5, x_max=0.5, fixed_x=False, seed=1))
    assert fresh.shared_x is None
    for name in ("exact", "mean_field"):
        method = fresh.methods[name]
        assert_within_standard_errors(
            method.coverage, np.array([[0.5], [0.9]]), method.coverage_standard_error()[:, None]
        )


def test_a_callback_that_scales_the_posterior_sd_covers_as_predicted():
    model = Model()
    scale = {"wide": 2.0, "narrow": 0.5}

    def scaled(factor):
        def fit(dataset):
            posterior = exact_posterior(dataset, model).posterior
            return Gaussian(posterior.mean, posterior.cov * factor**2)

        return fit

    for name, factor in scale.items():
        result = calibrate(model, CalibrationConfig(datasets=2000, seed=4), scaled(factor), fit_name=name)
        method = result.methods[name]
        for row, level in enumerate((0.5, 0.9)):
            predicted = expected_mean_field_coverage(level, np.array([factor]))[0]  # 2 Phi(z factor) - 1
            standard_error = np.sqrt(predicted * (1 - predicted) / 2000)
            assert_within_standard_errors(method.coverage[row], predicted, max(standard_error, 1e-3))
        _, p_value = method.rank_uniformity()
        assert np.all(p_value < 1e-12)  # both directions of miscalibration show in the ranks


def test_bayes_by_backprop_plugs_in_and_calibrates_like_the_mean_field_optimum():
    model = Model(GaussianPrior(0.0, 1.0, 0.0, 1.0), noise_sd=0.1)
    calls = []
    result = calibrate(
        model,
        CalibrationConfig(datasets=8, n=10, seed=3),
        fit_with_method(model, FitConfig(method="bbb", steps=200, seed=0)),
        fit_name="bbb",
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(k, 8) for k in range(1, 9)]
    assert set(result.methods) == {"exact", "mean_field", "bbb"}
    bbb, mean_field = result.methods["bbb"], result.methods["mean_field"]
    assert bbb.covered.shape == (8, 2, 2) and bbb.ranks.shape == (8, 2)
    # 200 steps bring BBB near its target, the mean-field optimum: its intervals agree with the mean-field ones on
    # most datasets (measured 29 of 32 indicators) and more often than with the exact posterior's (23 of 32).
    agree_mean_field = (bbb.covered == mean_field.covered).mean()
    assert agree_mean_field >= 0.8
    assert agree_mean_field > (bbb.covered == result.methods["exact"].covered).mean()


def test_chi_square_p_value_matches_known_values():
    assert chi_square_uniformity(np.full(10, 50))[1] == pytest.approx(1.0)
    # 9 dof: P(chi^2 > 16.919) = 0.05 and P(chi^2 > 21.666) = 0.01 (standard tables); this statistic is 20.
    statistic, p_value = chi_square_uniformity(np.array([60, 40] * 5))
    assert statistic == pytest.approx(20.0)
    assert 0.01 < p_value < 0.05
    # 2 dof (3 bins): the survival function is exactly exp(-statistic / 2); 1 dof: 2 (1 - Phi(sqrt(statistic))).
    assert chi_square_uniformity(np.array([60, 40, 50]))[1] == pytest.approx(math.exp(-2.0), rel=1e-12)
    assert chi_square_uniformity(np.array([70, 30]))[1] == pytest.approx(2 * (1 - NormalDist().cdf(4.0)), rel=1e-6)


@pytest.mark.parametrize(
    ("field", "value"),
    [("datasets", 1), ("n", 1), ("levels", ()), ("levels", (0.5, 1.0)), ("levels", (0.9, 0.9)), ("x_max", -1.0),
     ("fixed_x", 1), ("rank_draws", 0), ("seed", -1)],
)  # fmt: skip
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        CalibrationConfig(**{field: value})


def test_rank_bins_must_divide_the_possible_ranks(correlated):
    with pytest.raises(ValueError, match="bins"):
        correlated.methods["exact"].rank_histogram(bins=7)
