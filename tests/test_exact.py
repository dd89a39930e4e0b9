"""The exact reference, each closed form checked an independent way (ridge, grid, N x N density, Monte Carlo)."""

import math

import numpy as np
import pytest

from bayesdemo.data import DataConfig, Dataset, generate
from bayesdemo.exact import Gaussian, design_matrix, exact_posterior, kl_gaussian, predictive
from bayesdemo.priors import GaussianPrior, Model

PRIORS = [GaussianPrior(), GaussianPrior(1.5, 0.3, -2.0, 2.0)]


def grid_moments(dataset: Dataset, model: Model, exact, half_width_sds: float = 9.0, points: int = 401):
    """Posterior moments and log evidence by brute-force integration of the log joint on a 2-D grid."""
    slope_axis = exact.mean[0] + np.linspace(-half_width_sds, half_width_sds, points) * exact.sd[0]
    intercept_axis = exact.mean[1] + np.linspace(-half_width_sds, half_width_sds, points) * exact.sd[1]
    slopes, intercepts = np.meshgrid(slope_axis, intercept_axis, indexing="ij")
    s2 = model.noise_sd**2
    residual_sq = (
        (dataset.y**2).sum()
        - 2 * (slopes * (dataset.x * dataset.y).sum() + intercepts * dataset.y.sum())
        + slopes**2 * (dataset.x**2).sum()
        + 2 * slopes * intercepts * dataset.x.sum()
        + intercepts**2 * dataset.n
    )
    log_lik = -0.5 * dataset.n * math.log(2 * math.pi * s2) - residual_sq / (2 * s2)
    prior = model.prior
    log_prior = (
        -0.5 * ((slopes - prior.slope_mean) / prior.slope_sd) ** 2
        - 0.5 * ((intercepts - prior.intercept_mean) / prior.intercept_sd) ** 2
        - math.log(2 * math.pi * prior.slope_sd * prior.intercept_sd)
    )
    log_joint = log_lik + log_prior
    peak = log_joint.max()
    weights = np.exp(log_joint - peak)
    cell = (slope_axis[1] - slope_axis[0]) * (intercept_axis[1] - intercept_axis[0])
    total = weights.sum()
    mean = np.array([(weights * slopes).sum(), (weights * intercepts).sum()]) / total
    var_s = (weights * (slopes - mean[0]) ** 2).sum() / total
    var_i = (weights * (intercepts - mean[1]) ** 2).sum() / total
    cov_si = (weights * (slopes - mean[0]) * (intercepts - mean[1])).sum() / total
    log_evidence = peak + math.log(total * cell)
    return mean, np.array([[var_s, cov_si], [cov_si, var_i]]), log_evidence


@pytest.mark.parametrize("prior", PRIORS)
def test_posterior_mean_is_the_ridge_solution(prior):
    data = generate(DataConfig(n=50, seed=4))
    model = Model(prior, noise_sd=0.2)
    exact = exact_posterior(data, model)
    # Ridge as an augmented least-squares problem: rows of Phi / s and of I / s0 pulling toward m0.
    phi = design_matrix(data.x)
    augmented = np.vstack([phi / model.noise_sd, np.diag(1 / prior.sd)])
    target = np.concatenate([data.y / model.noise_sd, prior.mean / prior.sd])
    ridge, *_ = np.linalg.lstsq(augmented, target, rcond=None)
    np.testing.assert_allclose(exact.mean, ridge, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("prior", PRIORS)
def test_posterior_moments_and_evidence_match_grid_integration(prior):
    data = generate(DataConfig(n=40, noise_sd=0.3, seed=2))
    model = Model(prior, noise_sd=0.3)
    exact = exact_posterior(data, model)
    mean, cov, log_evidence = grid_moments(data, model, exact)
    # A 401^2 grid over +-9 sd resolves the Gaussian to far better than 1e-4 relative.
    np.testing.assert_allclose(exact.mean, mean, atol=1e-4 * exact.sd.max())
    np.testing.assert_allclose(exact.posterior.cov, cov, rtol=1e-4)
    assert exact.log_evidence == pytest.approx(log_evidence, abs=1e-6)


@pytest.mark.parametrize("prior", PRIORS)
def test_log_evidence_matches_the_direct_n_by_n_gaussian_density(prior):
    data = generate(DataConfig(n=60, seed=9))
    model = Model(prior, noise_sd=0.1)
    phi = design_matrix(data.x)
    covariance = model.noise_sd**2 * np.eye(data.n) + phi @ np.diag(prior.sd**2) @ phi.T
    residual = data.y - phi @ prior.mean
    sign, logdet = np.linalg.slogdet(covariance)
    direct = -0.5 * (data.n * math.log(2 * math.pi) + logdet + residual @ np.linalg.solve(covariance, residual))
    assert sign > 0
    assert exact_posterior(data, model).log_evidence == pytest.approx(direct, rel=1e-10, abs=1e-8)


def test_pyro_tutorial_setting_has_strong_negative_correlation_and_half_width_mean_field():
    exact = exact_posterior(generate(DataConfig()), Model())
    # MATH.md: about -0.87 for x ~ U(0, 1); the mean-field ratio is sqrt(1 - rho^2), about 0.48.
    assert -0.92 < exact.corr < -0.82
    np.testing.assert_allclose(exact.mean_field_sd / exact.sd, math.sqrt(1 - exact.corr**2), rtol=1e-10)
    assert np.all(exact.mean_field_sd < exact.sd)


def test_mean_field_optimum_maximises_the_elbo_among_factorised_gaussians():
    data = generate(DataConfig(n=30, seed=5))
    exact = exact_posterior(data, Model(noise_sd=0.1))
    best = exact.elbo(exact.mean_field)
    rng = np.random.default_rng(0)
    for _ in range(200):
        mean = exact.mean + rng.normal(0, 0.3, 2) * exact.sd
        sd = exact.mean_field_sd * np.exp(rng.normal(0, 0.3, 2))
        assert exact.elbo(Gaussian.diagonal(mean, sd)) < best
    # Small coordinate-wise perturbations of the sds lower the ELBO too (a local optimum, PRML 10.12-10.13).
    for index in range(2):
        for factor in (0.99, 1.01):
            sd = exact.mean_field_sd.copy()
            sd[index] *= factor
            assert exact.elbo(Gaussian.diagonal(exact.mean, sd)) < best


def test_elbo_gap_is_the_kl_to_the_posterior():
    data = generate(DataConfig(n=25, seed=6))
    exact = exact_posterior(data, Model(GaussianPrior(0.5, 2.0, 0.0, 1.0), noise_sd=0.2))
    rng = np.random.default_rng(1)
    for _ in range(20):
        root = rng.normal(size=(2, 2)) * exact.sd
        q = Gaussian(exact.mean + rng.normal(size=2) * exact.sd, root @ root.T + np.diag(exact.sd**2) * 0.1)
        assert exact.elbo(q) == pytest.approx(exact.log_evidence - exact.kl_to_exact(q), abs=1e-8)
    assert exact.kl_to_exact(exact.posterior) == pytest.approx(0.0, abs=1e-10)


def test_expected_log_likelihood_matches_monte_carlo():
    data = generate(DataConfig(n=20, seed=8))
    exact = exact_posterior(data, Model(noise_sd=0.1))
    q = Gaussian([2.9, 1.1], [[0.01, -0.004], [-0.004, 0.004]])
    draws = np.random.default_rng(2).multivariate_normal(q.mean, q.cov, size=200_000)
    predictions = draws @ design_matrix(data.x).T
    log_lik = -0.5 * data.n * math.log(2 * math.pi * 0.01) - ((data.y - predictions) ** 2).sum(axis=1) / 0.02
    standard_error = log_lik.std() / math.sqrt(log_lik.size)
    assert exact.expected_log_likelihood(q) == pytest.approx(log_lik.mean(), abs=5 * standard_error)


def test_kl_between_gaussians_matches_monte_carlo_and_one_dimensional_formula():
    q = Gaussian([0.3, -0.2], [[0.5, 0.2], [0.2, 0.4]])
    p = Gaussian([0.0, 0.1], [[1.0, -0.3], [-0.3, 0.8]])
    rng = np.random.default_rng(3)
    draws = rng.multivariate_normal(q.mean, q.cov, size=400_000)

    def log_density(g: Gaussian, points: np.ndarray) -> np.ndarray:
        diff = points - g.mean
        solved = np.linalg.solve(g.cov, diff.T).T
        return -0.5 * ((diff * solved).sum(axis=1) + np.linalg.slogdet(g.cov)[1] + 2 * math.log(2 * math.pi))

    log_ratio = log_density(q, draws) - log_density(p, draws)
    assert kl_gaussian(q, p) == pytest.approx(log_ratio.mean(), abs=5 * log_ratio.std() / math.sqrt(draws.shape[0]))
    # Two independent 1-D factors: KL adds up, each log(s0/s1) + (s1^2 + (m1-m0)^2) / (2 s0^2) - 1/2.
    one_d = sum(
        math.log(s0 / s1) + (s1**2 + (m1 - m0) ** 2) / (2 * s0**2) - 0.5
        for m1, s1, m0, s0 in [(0.3, 0.5, -1.0, 2.0), (1.0, 0.1, 0.5, 0.3)]
    )
    assert kl_gaussian(Gaussian.diagonal([0.3, 1.0], [0.5, 0.1]), Gaussian.diagonal([-1.0, 0.5], [2.0, 0.3])) == (
        pytest.approx(one_d, rel=1e-12)
    )


def test_predictive_matches_sampled_lines():
    data = generate(DataConfig(n=15, seed=10))
    exact = exact_posterior(data, Model(noise_sd=0.1))
    grid = np.array([-1.0, 0.0, 0.5, 2.0])
    mean, sd_line, sd_obs = exact.predictive(grid)
    draws = np.random.default_rng(4).multivariate_normal(exact.mean, exact.posterior.cov, size=300_000)
    lines = draws[:, :1] * grid + draws[:, 1:]
    np.testing.assert_allclose(mean, lines.mean(axis=0), atol=5 * sd_line.max() / math.sqrt(300_000))
    np.testing.assert_allclose(sd_line, lines.std(axis=0), rtol=0.01)
    np.testing.assert_allclose(sd_obs**2, 0.01 + sd_line**2, rtol=1e-12)
    # Any Gaussian's predictive goes through the same function.
    q_mean, q_sd, _ = predictive(Gaussian.diagonal([1.0, 2.0], [0.1, 0.2]), grid, 0.1)
    np.testing.assert_allclose(q_mean, grid + 2.0)
    np.testing.assert_allclose(q_sd, np.sqrt(0.01 * grid**2 + 0.04))


def test_centred_x_removes_the_correlation_and_mean_field_becomes_exact():
    data = generate(DataConfig(n=2000, x_min=-0.5, x_max=0.5, seed=11))
    exact = exact_posterior(data, Model())
    assert abs(exact.corr) < 0.1
    np.testing.assert_allclose(exact.mean_field_sd, exact.sd, rtol=0.01)


def test_result_does_not_depend_on_data_order_and_scales_to_a_million_points():
    data = generate(DataConfig(n=1_000_000, seed=12))
    exact = exact_posterior(data, Model())
    order = np.random.default_rng(5).permutation(data.n)
    shuffled = exact_posterior(Dataset(data.x[order], data.y[order]), Model())
    np.testing.assert_allclose(shuffled.mean, exact.mean, rtol=1e-9)
    np.testing.assert_allclose(shuffled.posterior.cov, exact.posterior.cov, rtol=1e-7)
    assert abs(exact.mean[0] - 3.0) < 5 * exact.sd[0]
    assert np.all(np.isfinite(exact.sd)) and math.isfinite(exact.log_evidence)


@pytest.mark.parametrize(("field", "value"), [("slope_sd", 0.0), ("intercept_sd", -2.0), ("slope_mean", float("nan"))])
def test_invalid_prior_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        GaussianPrior(**{field: value})


def test_invalid_model_noise_names_the_field():
    with pytest.raises(ValueError, match="noise_sd"):
        Model(noise_sd=-0.1)


def test_kl_of_a_diverged_q_is_infinite_without_warnings():
    p = Gaussian.diagonal([0.0, 0.0], [1.0, 1.0])
    assert kl_gaussian(Gaussian.diagonal([1e200, -1e200], [1.0, 1.0]), p) == math.inf
    assert kl_gaussian(Gaussian([0.0, 0.0], [[1e308, 0.0], [0.0, 1e308]]), p) == math.inf  # trace overflows
    assert kl_gaussian(Gaussian([0.0, 0.0], [[1.0, 1.0], [1.0, 1.0]]), p) == math.inf  # singular q
