"""Grid references: the 2-D grid reproduces the conjugate closed form, and for other priors agrees with importance
sampling, is resolution-independent, and the mean-field optimum solver reproduces PRML 10.12-10.13."""

import math

import numpy as np
import pytest
import torch

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import SufficientStats, exact_posterior
from bayesdemo.core.priors import GaussianPrior, Model, NoiseSdPrior, ParameterPrior, Prior
from bayesdemo.references.grid import grid_posterior
from bayesdemo.references.mean_field import mean_field_elbo, mean_field_optimum

DATA = generate(DataConfig(n=20, noise_sd=0.5, seed=3))  # few noisy points: the prior's shape matters
NON_GAUSSIAN = [
    Prior(ParameterPrior("laplace", 0.0, 0.5), ParameterPrior("laplace", 0.0, 0.5)),
    Prior(ParameterPrior("student_t", 0.0, 0.5, df=2.0), ParameterPrior("gaussian", 0.0, 1.0)),
    Prior(ParameterPrior("scale_mixture", 0.0, 2.0, second_scale=0.1), ParameterPrior("laplace", 1.0, 0.3)),
]


@pytest.mark.parametrize("prior", [GaussianPrior(), GaussianPrior(1.5, 0.3, -2.0, 2.0)])
def test_gaussian_prior_grid_matches_the_closed_form(prior):
    model = Model(prior, noise_sd=0.3)
    exact = exact_posterior(DATA, model)
    grid = grid_posterior(DATA, model)
    # 256 points over +-10 sd: the Riemann sum of a Gaussian is exact to rounding (measured errors ~1e-14).
    np.testing.assert_allclose(grid.mean, exact.mean, atol=1e-9 * exact.sd.max())
    np.testing.assert_allclose(grid.cov, exact.posterior.cov, rtol=1e-9)
    assert grid.log_evidence == pytest.approx(exact.log_evidence, abs=1e-9)
    assert grid.corr == pytest.approx(exact.corr, abs=1e-9)


@pytest.mark.parametrize("prior", NON_GAUSSIAN, ids=["laplace", "student_t", "mixture"])
def test_non_gaussian_grid_agrees_with_importance_sampling_and_a_finer_wider_grid(prior):
    model = Model(prior, noise_sd=0.5)
    grid = grid_posterior(DATA, model)
    finer = grid_posterior(DATA, model, points=512, half_width_sds=14.0)
    # Kinks (Laplace) and narrow components (mixture sd2 = 0.1 ~ 3 cells) limit the Riemann sum to O(h^2):
    # measured differences up to 4e-5 posterior sd, far below anything a fitted q resolves.
    np.testing.assert_allclose(finer.mean, grid.mean, atol=2e-4 * grid.sd.max())
    np.testing.assert_allclose(finer.cov, grid.cov, rtol=1e-3)
    assert finer.log_evidence == pytest.approx(grid.log_evidence, abs=1e-3)
    slope_density, intercept_density = grid.marginal_densities()
    # Trapezoid over the marginal's axis (256 points per window over +-10 sds, joined where windows overlap; a kink
    # is not on a node): measured within 2e-4.
    assert np.trapezoid(slope_density, grid.slope_axis) == pytest.approx(1.0, abs=1e-3)
    assert np.trapezoid(intercept_density, grid.intercept_axis) == pytest.approx(1.0, abs=1e-3)
    assert intercept_density.min() >= 0.0
    # Self-normalised importance sampling from a widened Gaussian: mean within 5 standard errors, evidence 1%.
    proposal = exact_posterior(DATA, model).posterior
    rng = np.random.default_rng(0)
    draws = rng.multivariate_normal(proposal.mean, 4.0 * proposal.cov, size=200_000)
    residual = DATA.y[None, :] - draws[:, :1] * DATA.x - draws[:, 1:]
    log_lik = -0.5 * DATA.n * math.log(2 * math.pi * 0.25) - (residual**2).sum(axis=1) / 0.5
    diff = draws - proposal.mean
    solved = np.linalg.solve(4.0 * proposal.cov, diff.T).T
    log_proposal = -0.5 * ((diff * solved).sum(axis=1) + np.linalg.slogdet(4.0 * proposal.cov)[1]) - math.log(
        2 * math.pi
    )
    log_weights = log_lik + prior.log_density(draws) - log_proposal
    weights = np.exp(log_weights - log_weights.max())
    normalised = weights / weights.sum()
    mean = normalised @ draws
    effective = 1.0 / np.sum(normalised**2)
    np.testing.assert_array_less(np.abs(mean - grid.mean), 5 * grid.sd / math.sqrt(effective))
    evidence = log_weights.max() + math.log(weights.mean())
    assert evidence == pytest.approx(grid.log_evidence, abs=0.01)


def test_a_confident_misplaced_laplace_prior_is_found_where_a_brute_force_box_puts_it():
    # The Gaussian approximation of Laplace(-1, 0.05) on the slope sits far from the posterior (~2.97 +- 0.03): the
    # grid must still land on it. Reference: a 2048^2 Riemann sum over a fixed box holding prior and data regions.
    data = generate(DataConfig())
    prior = Prior(ParameterPrior("laplace", -1.0, 0.05), ParameterPrior("laplace", 0.0, 10.0))
    model = Model(prior, noise_sd=0.1)
    grid = grid_posterior(data, model)
    stats = SufficientStats.of(data)
    slopes, intercepts = np.meshgrid(np.linspace(-2.0, 5.0, 2048), np.linspace(-2.0, 3.0, 2048), indexing="ij")
    rss = (
        stats.y_t_y
        - 2.0 * (slopes * stats.phi_t_y[0] + intercepts * stats.phi_t_y[1])
        + slopes**2 * stats.phi_t_phi[0, 0]
        + 2.0 * slopes * intercepts * stats.phi_t_phi[0, 1]
        + intercepts**2 * stats.phi_t_phi[1, 1]
    )
    log_joint = -rss / (2 * 0.01) + prior.log_density(np.stack([slopes, intercepts], axis=-1))
    weights = np.exp(log_joint - log_joint.max())
    weights /= weights.sum()
    box_mean = np.array([(weights * slopes).sum(), (weights * intercepts).sum()])
    box_sd = np.sqrt([(weights * (slopes - box_mean[0]) ** 2).sum(), (weights * (intercepts - box_mean[1]) ** 2).sum()])
    assert box_mean[0] > 2.5  # the data win over the misplaced prior
    # The box's cells are ~0.1 posterior sd wide: its Riemann sum is good to ~1e-3 sd.
    np.testing.assert_allclose(grid.mean, box_mean, atol=0.01 * box_sd.min())
    np.testing.assert_allclose(grid.sd, box_sd, rtol=0.01)


def test_a_spike_and_slab_prior_matches_its_closed_form_mixture_posterior():
    # Under pi N(0, 1) + (1 - pi) N(0, 1e-4^2) on the slope the posterior is the mixture of the two conjugate
    # posteriors, weighted by pi_k p(y | component k) (PRML 3.49-3.51, 3.86): a closed form the grid must match,
    # though the spike is far narrower than the cells of any grid covering both components. The slab holds ~1e-5 of
    # the mass, yet it adds half again to the slope's variance: the grid must count it.
    data = generate(DataConfig(slope=0.0))
    weight, spike_sd = 1e-4, 1e-4
    spike = ParameterPrior("scale_mixture", 0.0, 1.0, mixture_weight=weight, second_scale=spike_sd)
    grid = grid_posterior(data, Model(Prior(spike, ParameterPrior()), noise_sd=0.1))
    parts = [exact_posterior(data, Model(GaussianPrior(0.0, sd, 0.0, 10.0), noise_sd=0.1)) for sd in (1.0, spike_sd)]
    log_weights = np.log([weight, 1 - weight]) + [part.log_evidence for part in parts]
    weights = np.exp(log_weights - log_weights.max())
    weights /= weights.sum()
    mean = sum(w * part.mean for w, part in zip(weights, parts, strict=True))
    second = sum(
        w * (part.posterior.cov + np.outer(part.mean, part.mean)) for w, part in zip(weights, parts, strict=True)
    )
    cov = second - np.outer(mean, mean)
    assert weights[1] > 0.9999 and spike_sd < 0.01 * parts[0].sd[0]  # a spike far narrower than the slab's posterior
    # Measured: means within 1e-9 sd, covariance within 1e-9 relative, log p(y) within 1e-10.
    np.testing.assert_allclose(grid.mean, mean, atol=1e-6 * np.sqrt(np.diag(cov)).min())
    np.testing.assert_allclose(grid.cov, cov, rtol=1e-6, atol=1e-6 * np.abs(cov).min())
    log_evidence = log_weights.max() + math.log(np.exp(log_weights - log_weights.max()).sum())
    assert grid.log_evidence == pytest.approx(log_evidence, abs=1e-6)


def direct_log_evidence(x, y, prior_sd, noise_sd):
    """log N(y; 0, s^2 I + Phi diag(prior_sd^2) Phi^T), the n x n marginal likelihood with prior mean 0."""
    phi = np.column_stack([x, np.ones_like(x)])
    marginal_cov = noise_sd**2 * np.eye(x.size) + phi @ np.diag(np.asarray(prior_sd) ** 2) @ phi.T
    chol = np.linalg.cholesky(marginal_cov)
    whitened = np.linalg.solve(chol, y)
    return -0.5 * (x.size * math.log(2 * math.pi) + 2 * np.log(np.diag(chol)).sum() + whitened @ whitened)


@pytest.mark.parametrize("x_min", [100.0, 1000.0])
def test_grid_log_evidence_is_exact_when_x_is_far_from_zero(x_min):
    # Before: +1.78 nats at x in [100, 102] and +2.81 at [1000, 1002]; an axis-aligned cell was hundreds of times the
    # posterior's minor-axis sd. Now the grids are whitened and the residuals are taken at each window's mean.
    data = generate(DataConfig(n=30, noise_sd=0.5, x_min=x_min, x_max=x_min + 2.0, seed=5))
    model = Model(GaussianPrior(), noise_sd=0.5)
    grid = grid_posterior(data, model)
    # The n x n reference rounds to ~1e-9 (x near 100) and ~6e-7 nats (x near 1000; condition number ~1e10).
    assert grid.log_evidence == pytest.approx(direct_log_evidence(data.x, data.y, [10.0, 10.0], 0.5), abs=1e-5)
    exact = exact_posterior(data, model)
    np.testing.assert_array_less(np.abs(grid.mean - exact.mean), 1e-6 * exact.sd)
    np.testing.assert_allclose(grid.sd, exact.sd, rtol=1e-6)
    assert grid.corr == pytest.approx(exact.corr, abs=1e-9)


def gauss_legendre(low, high, panels, nodes=12):
    """Composite Gauss-Legendre nodes and weights over [low, high]."""
    unit_nodes, unit_weights = np.polynomial.legendre.leggauss(nodes)
    edges = np.linspace(low, high, panels + 1)
    half = 0.5 * np.diff(edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    return (centres[:, None] + half[:, None] * unit_nodes).ravel(), (half[:, None] * unit_weights).ravel()


def test_a_laplace_prior_with_two_points_matches_a_kink_aware_quadrature():
    # Reference: 2-D composite Gauss-Legendre with the panels split at both kinks (theta_j = 0), so every panel's
    # integrand is smooth: exact to rounding. The grid's cells are oblique to the kinks, which limits the Riemann sum:
    # measured 2.4e-4 nats, 4.5e-5 sd on the means, 1.1e-4 on the sds (the module doc states these); ~3x room.
    data = generate(DataConfig(n=2, noise_sd=0.5, slope=0.5, intercept=0.2, seed=7))
    prior = Prior(ParameterPrior("laplace", 0.0, 0.3), ParameterPrior("laplace", 0.0, 0.3))
    grid = grid_posterior(data, Model(prior, noise_sd=0.5))
    pieces = zip(gauss_legendre(-12.0, 0.0, 300), gauss_legendre(0.0, 12.0, 300), strict=True)
    nodes, weights = map(np.concatenate, pieces)
    slopes, intercepts = np.meshgrid(nodes, nodes, indexing="ij")
    residual = data.y[None, None, :] - slopes[..., None] * data.x - intercepts[..., None]
    log_joint = (
        -data.n * math.log(2 * math.pi * 0.25) / 2
        - (residual**2).sum(axis=-1) / (2 * 0.25)
        - (np.abs(slopes) + np.abs(intercepts)) / 0.3
        - 2 * math.log(2 * 0.3)
    )
    mass = np.exp(log_joint) * np.outer(weights, weights)
    evidence = mass.sum()
    mean = np.array([(mass * slopes).sum(), (mass * intercepts).sum()]) / evidence
    sd = np.sqrt(
        [(mass * (slopes - mean[0]) ** 2).sum() / evidence, (mass * (intercepts - mean[1]) ** 2).sum() / evidence]
    )
    assert grid.log_evidence == pytest.approx(math.log(evidence), abs=1e-3)
    np.testing.assert_array_less(np.abs(grid.mean - mean), 2e-4 * sd)
    np.testing.assert_allclose(grid.sd, sd, rtol=5e-4)


def test_a_laplace_prior_shrinks_harder_than_the_gaussian_of_equal_variance_near_zero():
    """Same prior variance, more mass at 0: the small, noisy intercept is pulled further towards 0."""
    data = generate(DataConfig(n=10, slope=2.0, intercept=0.3, noise_sd=1.0, seed=1))
    laplace = grid_posterior(data, Model(Prior(ParameterPrior(), ParameterPrior("laplace", 0.0, 0.2)), noise_sd=1.0))
    gaussian_sd = math.sqrt(2.0) * 0.2
    gaussian = exact_posterior(data, Model(GaussianPrior(0.0, 10.0, 0.0, gaussian_sd), noise_sd=1.0))
    assert abs(laplace.mean[1]) < abs(gaussian.mean[1])


def test_mean_field_optimum_reproduces_prml_10_12_for_a_gaussian_prior():
    data = generate(DataConfig())
    exact = exact_posterior(data, Model())
    optimum = mean_field_optimum(data, Model())
    np.testing.assert_allclose(optimum.q.mean, exact.mean, rtol=1e-9)
    np.testing.assert_allclose(optimum.q.sd, exact.mean_field_sd, rtol=1e-7)
    assert optimum.elbo == pytest.approx(exact.elbo(exact.mean_field), abs=1e-8)


@pytest.mark.parametrize("prior", NON_GAUSSIAN, ids=["laplace", "student_t", "mixture"])
def test_mean_field_elbo_matches_monte_carlo_for_any_prior_and_a_learned_noise(prior):
    model = Model(prior, noise_sd=0.5, noise_prior=NoiseSdPrior("half_normal", scale=1.0))
    stats = SufficientStats.of(DATA)
    mean, sd = np.array([2.0, 0.8]), np.array([0.3, 0.2])
    log_noise = np.array([math.log(0.5), 0.2])
    closed = float(
        mean_field_elbo(stats, model, torch.tensor(mean), torch.tensor(sd), torch.tensor(log_noise)).detach()
    )
    rng = np.random.default_rng(1)
    theta = mean + sd * rng.standard_normal((400_000, 2))
    u = log_noise[0] + log_noise[1] * rng.standard_normal(400_000)
    s = np.exp(u)
    residual = DATA.y[None, :] - theta[:, :1] * DATA.x - theta[:, 1:]
    log_lik = -0.5 * DATA.n * math.log(2 * math.pi) - DATA.n * u - (residual**2).sum(axis=1) / (2 * s**2)
    log_q = (-0.5 * ((theta - mean) / sd) ** 2 - np.log(sd) - 0.5 * math.log(2 * math.pi)).sum(axis=1)
    log_q += -0.5 * ((u - log_noise[0]) / log_noise[1]) ** 2 - math.log(log_noise[1]) - 0.5 * math.log(2 * math.pi)
    log_p = prior.log_density(theta) + model.noise_prior.log_density(s) + u
    terms = log_lik + log_p - log_q
    assert closed == pytest.approx(terms.mean(), abs=5 * terms.std() / math.sqrt(terms.size))


def test_invalid_grid_settings_name_the_field():
    with pytest.raises(ValueError, match="points"):
        grid_posterior(DATA, Model(), points=3)
    with pytest.raises(ValueError, match="half_width_sds"):
        grid_posterior(DATA, Model(), half_width_sds=0.0)
