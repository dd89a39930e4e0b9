"""Basis-function regression: the line as a special case, evidence two ways, Occam's razor, predictive by sampling."""

import math

import numpy as np
import pytest

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import exact_posterior
from bayesdemo.core.priors import GaussianPrior, Model
from bayesdemo.references.basis import (
    BasisConfig,
    feature_map,
    fit_basis,
    log_evidence_by_complexity,
    simulate_polynomial,
    weight_prior,
)

CUBIC = (1.0, -2.0, 0.5, 3.0)  # y = 1 - 2x + 0.5x^2 + 3x^3


def test_degree_one_polynomial_is_the_line_model():
    data = generate(DataConfig(n=40, seed=3))
    model = Model(GaussianPrior(0.5, 2.0, -1.0, 3.0), noise_sd=0.2)
    line = exact_posterior(data, model)
    basis = fit_basis(data, BasisConfig("polynomial", 1), model)
    # Same design (x, 1) and prior; the line model sums centred moments of the data while the basis forms the Gram
    # matrix of its features, so the two agree to rounding: rel 1e-12 is a few thousand ulps on 40 well-scaled points
    # (measured: under 1e-15), far below any modelling difference (a wrong prior or design moves them by over 1e-3).
    np.testing.assert_allclose(basis.mean, line.mean, rtol=1e-12)
    np.testing.assert_allclose(basis.posterior.cov, line.posterior.cov, rtol=1e-12)
    assert basis.log_evidence == pytest.approx(line.log_evidence, rel=1e-12)
    grid = np.linspace(-1.0, 2.0, 7)
    for from_basis, from_line in zip(basis.predictive(grid), line.predictive(grid), strict=True):
        np.testing.assert_allclose(from_basis, from_line, rtol=1e-12)
    assert basis.features.names == ("x", "intercept")


@pytest.mark.parametrize("config", [BasisConfig("polynomial", 3), BasisConfig("rbf", 5), BasisConfig("rbf", 4, 0.3)])
def test_log_evidence_matches_the_direct_n_by_n_gaussian_density(config):
    data = simulate_polynomial(CUBIC, n=30, noise_sd=0.3, seed=1)
    model = Model(GaussianPrior(0.4, 1.5, -0.5, 2.0), noise_sd=0.3)
    fitted = fit_basis(data, config, model)
    phi = fitted.features(data.x)
    prior_mean, prior_sd = weight_prior(fitted.features, model.prior)
    covariance = model.noise_sd**2 * np.eye(data.n) + phi @ np.diag(prior_sd**2) @ phi.T
    residual = data.y - phi @ prior_mean
    sign, logdet = np.linalg.slogdet(covariance)
    direct = -0.5 * (data.n * math.log(2 * math.pi) + logdet + residual @ np.linalg.solve(covariance, residual))
    assert sign > 0
    assert fitted.log_evidence == pytest.approx(direct, rel=1e-10, abs=1e-8)
    # And the posterior mean solves the ridge normal equations (S0^-1 + Phi^T Phi / s^2) m = S0^-1 m0 + Phi^T y / s^2.
    lhs = np.diag(prior_sd**-2) + phi.T @ phi / model.noise_sd**2
    np.testing.assert_allclose(lhs @ fitted.mean, prior_mean / prior_sd**2 + phi.T @ data.y / model.noise_sd**2)


@pytest.mark.parametrize("seed", range(5))
def test_evidence_peaks_at_the_degree_that_generated_the_data(seed):
    # Why degree 3 wins: below 3 the missing x^3 term leaves a residual of about 3 * 0.15 (the sd of the part of x^3
    # not explained by 1, x, x^2 on [-1, 1]) against noise 0.1, costing hundreds of nats; above 3 each extra weight
    # buys on average 1/2 nat of fit (chi^2_1 / 2) but pays the Occam factor log(prior sd / posterior sd),
    # about log(10 / 0.15) ~ 4 nats here (PRML 3.4). So the peak is at 3 unless chi^2_1 > 8 (p ~ 0.005 per seed).
    data = simulate_polynomial(CUBIC, n=50, noise_sd=0.1, seed=seed)
    curve = log_evidence_by_complexity(data, "polynomial", range(0, 9), Model(noise_sd=0.1))
    assert curve.best_size == 3
    by_degree = dict(zip(curve.sizes.tolist(), curve.log_evidence.tolist(), strict=True))
    assert by_degree[3] - by_degree[2] > 100.0
    assert by_degree[3] - by_degree[8] > 5.0  # five unneeded weights: measured 8.6 to 12.4 nats lower


def test_a_straight_line_prefers_degree_one_and_rbf_evidence_rises_then_falls():
    data = generate(DataConfig(n=50, x_min=-1.0, x_max=1.0, seed=7))
    assert log_evidence_by_complexity(data, "polynomial", range(0, 6)).best_size == 1
    # A smooth cubic needs a few bumps; 30 bumps of width = spacing overfit and pay for 30 weights.
    cubic = simulate_polynomial(CUBIC, n=60, noise_sd=0.1, seed=2)
    curve = log_evidence_by_complexity(cubic, "rbf", [1, 2, 4, 6, 8, 12, 30], Model(noise_sd=0.1))
    assert curve.best_size not in (1, 2, 30)
    assert curve.log_evidence[-1] < curve.log_evidence.max() - 5.0


@pytest.mark.parametrize("config", [BasisConfig("polynomial", 4), BasisConfig("rbf", 6)])
def test_predictive_matches_sampled_functions(config):
    data = simulate_polynomial(CUBIC, n=25, noise_sd=0.2, seed=4)
    fitted = fit_basis(data, config, Model(noise_sd=0.2))
    grid = np.array([-1.2, -0.5, 0.0, 0.7, 1.0])
    mean, sd_function, sd_observation = fitted.predictive(grid)
    draws = np.random.default_rng(5).multivariate_normal(fitted.mean, fitted.posterior.cov, size=200_000)
    functions = draws @ fitted.features(grid).T
    # Mean within 5 Monte-Carlo standard errors; the sd's relative standard error is 1/sqrt(2 * 200,000) = 0.16%.
    np.testing.assert_allclose(mean, functions.mean(axis=0), atol=5 * sd_function.max() / math.sqrt(200_000))
    np.testing.assert_allclose(sd_function, functions.std(axis=0), rtol=0.01)
    np.testing.assert_allclose(sd_observation**2, 0.04 + sd_function**2, rtol=1e-12)
    # The observation spread: noisy draws around the sampled functions have sd_observation.
    noisy = functions + np.random.default_rng(6).normal(0.0, 0.2, size=functions.shape)
    np.testing.assert_allclose(sd_observation, noisy.std(axis=0), rtol=0.01)


def test_feature_maps_have_the_documented_columns():
    x = np.array([-1.0, 0.5, 2.0])
    poly = feature_map(BasisConfig("polynomial", 3), (-1.0, 2.0))
    np.testing.assert_array_equal(poly(x), np.column_stack([x, x**2, x**3, np.ones(3)]))
    assert poly.names == ("x", "x^2", "x^3", "intercept")
    assert feature_map(BasisConfig("polynomial", 0), (0.0, 1.0))(x).tolist() == [[1.0]] * 3
    rbf = feature_map(BasisConfig("rbf", 3), (0.0, 2.0))
    np.testing.assert_array_equal(rbf.centres, [0.0, 1.0, 2.0])
    assert rbf.width == 1.0  # the spacing between centres
    expected = np.exp(-0.5 * (x[:, None] - rbf.centres[None, :]) ** 2)
    np.testing.assert_allclose(rbf(x), np.column_stack([expected, np.ones(3)]), rtol=1e-15)
    assert feature_map(BasisConfig("rbf", 3, width=0.25), (0.0, 2.0)).width == 0.25


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"family": "spline"}, "family"),
        ({"family": "polynomial", "size": 16}, "size"),
        ({"family": "rbf", "size": 0}, "size"),
        ({"width": -1.0}, "width"),
    ],
)
def test_invalid_basis_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        BasisConfig(**kwargs)


def test_invalid_inputs_name_the_field():
    data = generate(DataConfig(n=10))
    with pytest.raises(ValueError, match="sizes"):
        log_evidence_by_complexity(data, "polynomial", [])
    with pytest.raises(ValueError, match="x_max"):
        feature_map(BasisConfig(), (1.0, 1.0))
    with pytest.raises(ValueError, match="noise_sd"):
        simulate_polynomial(CUBIC, noise_sd=0.0)
