"""The closed-form posterior under scale-mixture (spike-and-slab) priors, and the grid reference checked against it.

The reference in these tests is built here from the n x n marginal likelihood N(y; Phi m0, s^2 I + Phi S0 Phi^T) and
the Woodbury form of each component's conjugate posterior (PRML 3.49-3.51, 3.86), not from bayesdemo's code.
"""

import math

import numpy as np
import pytest

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.priors import GaussianPrior, Model, ParameterPrior, Prior
from bayesdemo.references.grid import grid_posterior
from bayesdemo.references.mixture import is_scale_mixture, mixture_posterior


def direct_component(x, y, prior_mean, prior_sd, noise_sd):
    """Posterior mean, covariance and log evidence under N(prior_mean, diag(prior_sd^2)), in the n x n form."""
    phi = np.column_stack([x, np.ones_like(x)])
    prior_cov = np.diag(np.asarray(prior_sd, dtype=np.float64) ** 2)
    marginal_cov = noise_sd**2 * np.eye(x.size) + phi @ prior_cov @ phi.T
    residual = y - phi @ prior_mean
    chol = np.linalg.cholesky(marginal_cov)
    whitened = np.linalg.solve(chol, residual)
    log_evidence = -0.5 * (x.size * math.log(2 * math.pi) + 2 * np.log(np.diag(chol)).sum() + whitened @ whitened)
    gain = np.linalg.solve(marginal_cov, phi @ prior_cov)  # C^-1 Phi S0
    return prior_mean + gain.T @ residual, prior_cov - prior_cov @ phi.T @ gain, log_evidence


def direct_mixture(dataset, slope_components, intercept_components, location, noise_sd):
    """Weights, component (mean, cov) and log p(y) of the exact mixture posterior, with its mean and covariance."""
    parts, log_weights = [], []
    for slope_weight, slope_sd in slope_components:
        for intercept_weight, intercept_sd in intercept_components:
            mean, cov, log_evidence = direct_component(
                dataset.x, dataset.y, np.asarray(location, dtype=np.float64), [slope_sd, intercept_sd], noise_sd
            )
            parts.append((mean, cov))
            log_weights.append(math.log(slope_weight * intercept_weight) + log_evidence)
    log_weights = np.array(log_weights)
    log_evidence = log_weights.max() + math.log(np.exp(log_weights - log_weights.max()).sum())
    weights = np.exp(log_weights - log_evidence)
    mean = sum(w * m for w, (m, _) in zip(weights, parts, strict=True))
    cov = sum(w * (c + np.outer(m - mean, m - mean)) for w, (m, c) in zip(weights, parts, strict=True))
    return weights, parts, mean, cov, log_evidence


def components(part):
    """(weight, sd) of a ParameterPrior's Gaussian components, written out here from its fields."""
    if part.kind == "gaussian":
        return [(1.0, part.scale)]
    return [(part.mixture_weight, part.scale), (1.0 - part.mixture_weight, part.second_scale)]


SPIKE_AND_SLAB = ParameterPrior("scale_mixture", 0.0, 10.0, mixture_weight=0.5, second_scale=0.01)
CASES = {
    # x in [0, 1], n = 10, noise sd 0.5: the spike holds most of the intercept's mass, the slab the rest.
    "spike_and_slab_intercept": (
        DataConfig(n=10, noise_sd=0.5, intercept=0.3, seed=3),
        Prior(ParameterPrior(), SPIKE_AND_SLAB),
    ),
    "two_points_huge_slab_tiny_spike": (
        DataConfig(n=2, noise_sd=0.5, intercept=0.01, seed=1),
        Prior(
            ParameterPrior("scale_mixture", 0.0, 1e3, mixture_weight=0.3, second_scale=1e-3),
            ParameterPrior("scale_mixture", 0.0, 1e4, mixture_weight=0.5, second_scale=1e-3),
        ),
    ),
    "x_far_from_zero": (
        DataConfig(n=30, noise_sd=0.5, intercept=0.02, x_min=100.0, x_max=102.0, seed=2),
        Prior(ParameterPrior("gaussian", 0.0, 10.0), SPIKE_AND_SLAB),
    ),
    "both_spike_and_slab": (
        DataConfig(n=10, noise_sd=0.5, slope=0.002, intercept=0.05, x_min=10.0, x_max=12.0, seed=4),
        Prior(
            ParameterPrior("scale_mixture", 0.0, 1.0, mixture_weight=0.9, second_scale=1e-3),
            ParameterPrior("scale_mixture", 0.0, 1.0, mixture_weight=0.9, second_scale=1e-3),
        ),
    ),
}


@pytest.mark.parametrize("config, prior", CASES.values(), ids=CASES.keys())
def test_mixture_posterior_is_the_evidence_weighted_mixture_of_conjugate_posteriors(config, prior):
    data = generate(config)
    weights, parts, mean, cov, log_evidence = direct_mixture(
        data, components(prior.slope), components(prior.intercept), prior.mean, config.noise_sd
    )
    mixture = mixture_posterior(data, prior, config.noise_sd)
    assert is_scale_mixture(prior)
    # Two float64 routes to the same closed form (p x p precision vs n x n Woodbury): rounding, amplified by the
    # n x n matrix's condition number (up to ~1e10 for x near 100 with a 1e6 prior sd), stays below 1e-5.
    np.testing.assert_allclose(mixture.weights, weights, atol=1e-6)
    for component, (part_mean, part_cov) in zip(mixture.components, parts, strict=True):
        part_sd = np.sqrt(np.diag(part_cov))
        np.testing.assert_allclose(component.mean, part_mean, atol=1e-5 * part_sd.min())
        np.testing.assert_allclose(component.sd, part_sd, rtol=1e-5)
    np.testing.assert_allclose(mixture.mean, mean, atol=1e-5 * np.sqrt(np.diag(cov)).min())
    np.testing.assert_allclose(mixture.sd, np.sqrt(np.diag(cov)), rtol=1e-5)
    assert mixture.corr == pytest.approx(cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1]), abs=1e-5)
    assert mixture.log_evidence == pytest.approx(log_evidence, abs=1e-5)
    # The marginal densities hold all the mass and have the mixture's means: trapezoid on the joined axes, whose
    # 256 points per component over +-10 sds leave a relative error ~1e-3 on a unit-mass Gaussian.
    for parameter, (axis, density) in enumerate(
        zip((mixture.slope_axis, mixture.intercept_axis), mixture.marginal_densities(), strict=True)
    ):
        assert np.all(np.diff(axis) > 0)
        assert np.trapezoid(density, axis) == pytest.approx(1.0, abs=1e-3)
        assert np.trapezoid(density * axis, axis) == pytest.approx(
            mean[parameter], abs=0.01 * math.sqrt(cov[parameter, parameter])
        )


@pytest.mark.parametrize("config, prior", CASES.values(), ids=CASES.keys())
def test_the_grid_counts_every_mode_of_a_spike_and_slab_posterior(config, prior):
    # Before: the grid kept the single refined grid holding the most mass and lost the other mode (intercept sd
    # 0.057 against 0.075, correlation -0.30 against -0.38 on the first case).
    data = generate(config)
    _, _, mean, cov, log_evidence = direct_mixture(
        data, components(prior.slope), components(prior.intercept), prior.mean, config.noise_sd
    )
    grid = grid_posterior(data, Model(prior, config.noise_sd))
    sd = np.sqrt(np.diag(cov))
    # A spike narrower than a broad window's cells is integrated on its own grid; what is left is the Riemann error
    # where recentred windows' shares cross. Measured on these cases: up to 5e-5 sd on the means, 3.1e-4 on the sds,
    # 6.2e-4 nats (x far from 0; ~1e-10 on the first two). The tolerances leave about 3x room.
    np.testing.assert_array_less(np.abs(grid.mean - mean), 2e-4 * sd)
    np.testing.assert_allclose(grid.sd, sd, rtol=1e-3)
    assert grid.corr == pytest.approx(cov[0, 1] / (sd[0] * sd[1]), abs=1e-3)
    assert grid.log_evidence == pytest.approx(log_evidence, abs=2e-3)


def test_only_gaussian_and_scale_mixture_priors_have_the_closed_form():
    data = generate(DataConfig(n=5))
    assert is_scale_mixture(GaussianPrior())
    laplace = Prior(ParameterPrior("laplace", 0.0, 1.0), SPIKE_AND_SLAB)
    assert not is_scale_mixture(laplace)
    with pytest.raises(ValueError, match="slope"):
        mixture_posterior(data, laplace, 0.1)
