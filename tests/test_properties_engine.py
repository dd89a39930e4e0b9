"""Property tests (hypothesis) of data, priors and the exact reference over their whole allowed ranges.

tests/test_properties.py checks the posterior on moderate ranges against the normal equations; here: the config
boundaries themselves, finiteness at the extremes, and independent brute-force routes (the N x N Gaussian evidence,
the dual/Woodbury covariance, ridge regression by least squares, chunked sufficient statistics).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayesdemo.core.data import MAX_POINTS, MIN_RELATIVE_X_WIDTH, DataConfig, Dataset, generate, parse_csv
from bayesdemo.core.exact import (
    LOG_2PI,
    SufficientStats,
    design_matrix,
    exact_posterior,
    gaussian_posterior_from_stats,
    kl_gaussian,
)
from bayesdemo.core.priors import GaussianPrior, Model
from bayesdemo.core.validation import MIN_SCALE, ConfigError

PROPERTIES = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
LIMIT = 1e6  # every location, slope and sd of DataConfig and GaussianPrior lies within +-LIMIT

locations = st.floats(-LIMIT, LIMIT)
scales = st.floats(MIN_SCALE, LIMIT)
# GaussianPrior still accepts sds in (0, MIN_SCALE), where 1 / sd^2 overflows: drawn from MIN_SCALE up.
prior_scales = st.floats(MIN_SCALE, LIMIT)


@st.composite
def data_configs(draw, max_n: int = 300) -> DataConfig:
    """Any valid DataConfig, extremes included (n capped for speed)."""
    x_min = draw(st.floats(-LIMIT, LIMIT - 2.0))
    x_max = draw(st.floats(x_min, LIMIT, exclude_min=True))
    # Widen a range narrower than DataConfig accepts to twice its smallest width (so the edge itself is drawn too).
    needed = MIN_RELATIVE_X_WIDTH * max(1.0, abs(x_min), abs(x_max))
    if x_max - x_min < needed:
        x_max = x_min + 2 * needed
    return DataConfig(
        n=draw(st.integers(2, max_n)),
        slope=draw(locations),
        intercept=draw(locations),
        noise_sd=draw(scales),
        x_min=x_min,
        x_max=x_max,
        seed=draw(st.integers(0, 2**32 - 1)),
    )


gaussian_priors = st.builds(
    GaussianPrior, slope_mean=locations, slope_sd=prior_scales, intercept_mean=locations, intercept_sd=prior_scales
)


def model_of(config: DataConfig, prior: GaussianPrior) -> Model:
    """The page's model: this prior and the data's noise sd as the known noise."""
    return Model(prior, config.noise_sd)


# ---- configs: everything inside the ranges builds, everything outside names its field ----------------------------

out_of_range = st.one_of(
    st.just(math.nan), st.just(math.inf), st.just(-math.inf), st.floats(LIMIT, 1e300, exclude_min=True)
)


@PROPERTIES
@given(config=data_configs(max_n=MAX_POINTS), prior=gaussian_priors)
def test_every_value_inside_the_allowed_ranges_is_accepted_unchanged(config, prior):
    assert DataConfig(**vars(config)) == config
    assert GaussianPrior(**vars(prior)) == prior
    assert 2 <= config.n <= MAX_POINTS and config.x_min < config.x_max


@PROPERTIES
@given(
    field=st.sampled_from(["slope", "intercept", "noise_sd", "x_min", "x_max"]),
    value=out_of_range,
    sign=st.sampled_from([1.0, -1.0]),
)
def test_a_data_value_outside_its_range_is_refused_by_name(field, value, sign):
    try:
        DataConfig(**{field: sign * value})
    except ConfigError as error:
        assert error.field == field and field in str(error)
    else:
        raise AssertionError(f"DataConfig accepted {field}={sign * value!r}")


@PROPERTIES
@given(noise_sd=st.floats(-1e300, MIN_SCALE, exclude_max=True))
def test_a_noise_sd_below_the_smallest_scale_is_refused_by_name(noise_sd):
    try:
        DataConfig(noise_sd=noise_sd)
    except ConfigError as error:
        assert error.field == "noise_sd" and "noise_sd" in str(error)
    else:
        raise AssertionError(f"DataConfig accepted noise_sd={noise_sd!r}")


@PROPERTIES
@given(
    field=st.sampled_from(["slope_mean", "slope_sd", "intercept_mean", "intercept_sd"]),
    value=st.one_of(out_of_range, st.floats(-1e300, 0.0)),
)
def test_a_prior_value_outside_its_range_is_refused_by_name(field, value):
    if field.endswith("_mean") and -LIMIT <= value <= LIMIT:
        value = -2 * LIMIT  # a mean may be zero or negative; refuse it only outside +-LIMIT
    try:
        GaussianPrior(**{field: value})
    except ConfigError as error:
        assert error.field == field and field in str(error)
    else:
        raise AssertionError(f"GaussianPrior accepted {field}={value!r}")


# ---- data -----------------------------------------------------------------------------------------------------------


@PROPERTIES
@given(config=data_configs())
def test_generated_data_are_finite_in_range_and_a_function_of_the_seed_alone(config):
    data = generate(config)
    assert data.n == config.n and np.all(np.isfinite(data.x)) and np.all(np.isfinite(data.y))
    assert np.all((data.x >= config.x_min) & (data.x <= config.x_max))
    again = generate(config)
    np.testing.assert_array_equal(again.x, data.x)
    np.testing.assert_array_equal(again.y, data.y)


@PROPERTIES
@given(config=data_configs(max_n=50), semicolons=st.booleans())
def test_csv_round_trip_is_exact(config, semicolons):
    data = generate(config)
    text = data.to_csv()
    parsed = parse_csv(text.replace(",", ";") if semicolons else text)
    np.testing.assert_array_equal(parsed.x, data.x)
    np.testing.assert_array_equal(parsed.y, data.y)


# ---- the exact reference -------------------------------------------------------------------------------------------


@PROPERTIES
@given(config=data_configs(), prior=gaussian_priors)
def test_posterior_is_finite_symmetric_positive_definite_across_the_whole_allowed_ranges(config, prior):
    model = model_of(config, prior)
    exact = exact_posterior(generate(config), model)
    cov = exact.posterior.cov
    assert np.all(np.isfinite(exact.mean)) and np.all(np.isfinite(cov)) and math.isfinite(exact.log_evidence)
    np.testing.assert_array_equal(cov, cov.T)
    assert np.linalg.eigvalsh(cov).min() > 0 and np.all(exact.sd > 0)
    np.linalg.cholesky(cov)  # raises if not positive definite in floating point
    assert np.all(np.isfinite(exact.mean_field_sd)) and np.all(exact.mean_field_sd > 0)


# Moderate ranges for the brute-force routes: the N x N matrices must be well conditioned for them to be exact.
moderate_configs = st.builds(
    DataConfig,
    n=st.integers(2, 40),
    slope=st.floats(-10, 10),
    intercept=st.floats(-10, 10),
    noise_sd=st.floats(0.05, 10),
    x_min=st.floats(-10, 9),
    x_max=st.just(10.0),
    seed=st.integers(0, 2**32 - 1),
)
moderate_priors = st.builds(
    GaussianPrior,
    slope_mean=st.floats(-10, 10),
    slope_sd=st.floats(0.1, 100),
    intercept_mean=st.floats(-10, 10),
    intercept_sd=st.floats(0.1, 100),
)


@PROPERTIES
@given(config=moderate_configs, prior=moderate_priors)
def test_log_evidence_equals_the_brute_force_n_by_n_gaussian_density(config, prior):
    data, model = generate(config), model_of(config, prior)
    phi = design_matrix(data.x)
    prior_cov = np.diag(prior.sd**2)
    marginal_cov = config.noise_sd**2 * np.eye(data.n) + phi @ prior_cov @ phi.T  # y ~ N(Phi m0, s^2 I + Phi S0 Phi^T)
    residual = data.y - phi @ prior.mean
    sign, logdet = np.linalg.slogdet(marginal_cov)
    assert sign > 0
    brute = -0.5 * (data.n * LOG_2PI + logdet + residual @ np.linalg.solve(marginal_cov, residual))
    exact = exact_posterior(data, model)
    assert math.isclose(exact.log_evidence, brute, rel_tol=1e-8, abs_tol=1e-7)
    # ELBO of the exact posterior is the evidence itself (KL to itself is 0).
    assert math.isclose(exact.elbo(exact.posterior), exact.log_evidence, rel_tol=1e-9, abs_tol=1e-7)
    assert exact.kl_to_exact(exact.posterior) == 0.0 or abs(exact.kl_to_exact(exact.posterior)) < 1e-9


@PROPERTIES
@given(config=moderate_configs, prior=moderate_priors)
def test_posterior_agrees_with_the_dual_form_and_with_ridge_least_squares(config, prior):
    data, model = generate(config), model_of(config, prior)
    exact = exact_posterior(data, model)
    phi, s2 = design_matrix(data.x), config.noise_sd**2
    prior_cov = np.diag(prior.sd**2)
    # Dual (N x N) form: S_N = S0 - S0 Phi^T (s^2 I + Phi S0 Phi^T)^-1 Phi S0, m_N = m0 + S0 Phi^T (.)^-1 (y - Phi m0).
    gram = s2 * np.eye(data.n) + phi @ prior_cov @ phi.T
    gain = prior_cov @ phi.T @ np.linalg.inv(gram)
    dual_cov = prior_cov - gain @ phi @ prior_cov
    dual_mean = prior.mean + gain @ (data.y - phi @ prior.mean)
    # The dual form subtracts nearly equal matrices: its rounding floor grows with the condition number of the gram.
    floor = 1e-14 * np.linalg.cond(gram)
    np.testing.assert_allclose(exact.posterior.cov, dual_cov, rtol=1e-9, atol=floor * prior_cov.max())
    scale_of_mean = np.abs(prior.mean).max() + np.abs(gain).max() * np.abs(data.y - phi @ prior.mean).sum()
    np.testing.assert_allclose(exact.mean, dual_mean, rtol=1e-9, atol=floor * scale_of_mean)
    # Ridge regression as one least-squares problem: rows Phi / s with targets y / s, rows I / s0 with m0 / s0.
    stacked = np.vstack([phi / config.noise_sd, np.diag(1 / prior.sd)])
    targets = np.concatenate([data.y / config.noise_sd, prior.mean / prior.sd])
    ridge, *_ = np.linalg.lstsq(stacked, targets, rcond=None)
    np.testing.assert_allclose(exact.mean, ridge, rtol=1e-7, atol=1e-7 * exact.sd.max())


@PROPERTIES
@given(config=data_configs(), prior=gaussian_priors, cut_seed=st.integers(0, 1000))
def test_posterior_is_the_same_whatever_order_and_chunks_the_data_arrive_in(config, prior, cut_seed):
    data, model = generate(config), model_of(config, prior)
    rng = np.random.default_rng(cut_seed)
    order = rng.permutation(data.n)
    cuts = np.sort(rng.choice(np.arange(1, data.n), size=min(3, data.n - 1), replace=False))
    chunks = [SufficientStats.of_design(design_matrix(data.x[part]), data.y[part]) for part in np.split(order, cuts)]
    summed = SufficientStats(
        sum(chunk.phi_t_phi for chunk in chunks),
        sum(chunk.phi_t_y for chunk in chunks),
        sum(chunk.y_t_y for chunk in chunks),
        sum(chunk.n for chunk in chunks),
    )
    whole = exact_posterior(data, model)
    chunked = gaussian_posterior_from_stats(summed, prior.mean, prior.sd, config.noise_sd)
    shuffled = exact_posterior(Dataset(data.x[order], data.y[order]), model)
    for other in (chunked.posterior, shuffled.posterior):
        # Only summation order differs: agreement to rounding, measured in the posterior's own metric. Rounding moves
        # the mean by about eps * |mean| (times the sums' length), which is many sds when the posterior is narrow.
        rounding_in_sds = 1e-13 * np.max(np.abs(whole.mean) / whole.sd)
        assert kl_gaussian(other, whole.posterior) < 1e-8 + rounding_in_sds**2
        np.testing.assert_allclose(other.sd / whole.sd, 1.0, rtol=1e-6)
