"""Property tests of the exact reference across the allowed ranges (hypothesis)."""

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayesdemo.data import DataConfig, Dataset, generate
from bayesdemo.exact import design_matrix, exact_posterior
from bayesdemo.priors import GaussianPrior, Model

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
