"""Unknown noise sd: the 1-D quadrature equals the Normal-Inverse-Gamma closed form where both describe the same model,
and a brute-force 3-D grid where the prior on theta is independent of s."""

import math

import numpy as np
import pytest

from bayesdemo.data import DataConfig, generate
from bayesdemo.exact import exact_posterior
from bayesdemo.grid import grid_posterior_with_noise
from bayesdemo.noise_sd import noise_sd_posterior, normal_inverse_gamma_posterior
from bayesdemo.priors import GaussianPrior, Model, NoiseSdPrior, ParameterPrior, Prior

DATA = generate(DataConfig(n=30, noise_sd=0.3, seed=2))


@pytest.mark.parametrize(("shape", "rate"), [(3.0, 0.2), (1.5, 2.0)])
def test_quadrature_equals_normal_inverse_gamma_when_the_prior_scales_with_the_noise(shape, rate):
    noise_prior = NoiseSdPrior("inverse_gamma", shape=shape, rate=rate)
    prior = GaussianPrior(0.5, 2.0, -0.5, 3.0)
    quadrature = noise_sd_posterior(DATA, Model(prior, noise_prior=noise_prior), prior_scales_with_noise=True)
    conjugate = normal_inverse_gamma_posterior(DATA, prior, noise_prior)
    # Quadrature over 2001 log-spaced points of a smooth density: agreement to ~1e-12 measured.
    np.testing.assert_allclose(quadrature.theta.mean, conjugate.mean, rtol=1e-9)
    np.testing.assert_allclose(quadrature.theta.cov, conjugate.theta.cov, rtol=1e-8)
    assert quadrature.noise_sd_mean == pytest.approx(conjugate.noise_sd_mean, rel=1e-9)
    assert quadrature.noise_sd_sd == pytest.approx(conjugate.noise_sd_sd, rel=1e-7)
    assert quadrature.log_evidence == pytest.approx(conjugate.log_evidence, abs=1e-8)
    s = quadrature.noise_sd_grid
    assert np.sum(0.5 * (quadrature.density[1:] + quadrature.density[:-1]) * np.diff(s)) == pytest.approx(1, abs=1e-5)


def test_normal_inverse_gamma_evidence_matches_the_student_t_density_of_y():
    """log p(y) = log St(y | Phi m0, (b0 / a0)(I + Phi V0 Phi^T), 2 a0), an N x N computation."""
    noise_prior = NoiseSdPrior("inverse_gamma", shape=2.5, rate=0.3)
    prior = GaussianPrior(0.5, 2.0, -0.5, 3.0)
    phi = np.column_stack([DATA.x, np.ones(DATA.n)])
    scale = (0.3 / 2.5) * (np.eye(DATA.n) + phi @ np.diag(prior.sd**2) @ phi.T)
    residual = DATA.y - phi @ prior.mean
    nu, n = 5.0, DATA.n
    quad = residual @ np.linalg.solve(scale, residual)
    direct = (
        math.lgamma((nu + n) / 2)
        - math.lgamma(nu / 2)
        - 0.5 * n * math.log(nu * math.pi)
        - 0.5 * np.linalg.slogdet(scale)[1]
        - 0.5 * (nu + n) * math.log1p(quad / nu)
    )
    assert normal_inverse_gamma_posterior(DATA, prior, noise_prior).log_evidence == pytest.approx(direct, abs=1e-9)


@pytest.mark.parametrize(
    "noise_prior",
    [NoiseSdPrior("half_normal", scale=1.0), NoiseSdPrior("log_normal", scale=0.5, log_median=math.log(0.2))],
)
def test_quadrature_matches_a_brute_force_three_dimensional_grid(noise_prior):
    model = Model(GaussianPrior(0.0, 2.0, 0.0, 2.0), noise_prior=noise_prior)
    quadrature = noise_sd_posterior(DATA, model)
    centre, width = math.log(quadrature.noise_sd_mean), 10 * quadrature.noise_sd_sd / quadrature.noise_sd_mean
    grid = grid_posterior_with_noise(DATA, model, (math.exp(centre - width), math.exp(centre + width)))
    # 128^2 x 256 cells; measured agreement ~1e-5 relative: 1e-3 leaves a wide margin and still catches a wrong
    # Jacobian (p(s) vs p(s) s moves E[s] by ~sd^2 / mean, 2% here).
    np.testing.assert_allclose(grid.theta.mean, quadrature.theta.mean, atol=1e-3 * quadrature.theta.sd.max())
    np.testing.assert_allclose(grid.theta.cov, quadrature.theta.cov, rtol=1e-3)
    assert grid.noise_sd_mean == pytest.approx(quadrature.noise_sd_mean, rel=1e-4)
    assert grid.noise_sd_sd == pytest.approx(quadrature.noise_sd_sd, rel=1e-3)
    assert grid.theta.log_evidence == pytest.approx(quadrature.log_evidence, abs=1e-3)


def test_a_sharp_noise_prior_recovers_the_known_noise_posterior_and_wider_noise_widens_theta():
    model = Model(GaussianPrior(), noise_sd=0.3)
    sharp = noise_sd_posterior(
        DATA, Model(GaussianPrior(), noise_prior=NoiseSdPrior("log_normal", scale=1e-4, log_median=math.log(0.3)))
    )
    known = exact_posterior(DATA, model)
    np.testing.assert_allclose(sharp.theta.mean, known.mean, rtol=1e-4)
    np.testing.assert_allclose(sharp.theta.cov, known.posterior.cov, rtol=1e-3)
    vague = noise_sd_posterior(DATA, Model(GaussianPrior(), noise_prior=NoiseSdPrior("half_normal", scale=1.0)))
    assert abs(vague.noise_sd_mean - 0.3) < 3 * vague.noise_sd_sd  # the data locate the true noise sd
    assert vague.noise_sd_sd > 0.02


def test_the_grid_handles_non_gaussian_priors_with_unknown_noise():
    model = Model(Prior(ParameterPrior("laplace", 0.0, 1.0), ParameterPrior("laplace", 0.0, 1.0)))
    reference = noise_sd_posterior(DATA, Model(GaussianPrior(0, 1.5, 0, 1.5)))
    low, high = reference.noise_sd_mean / 3, reference.noise_sd_mean * 3
    grid = grid_posterior_with_noise(DATA, model, (low, high), points=96, noise_points=96)
    assert grid.noise_sd_probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    assert max(grid.noise_sd_probabilities[0], grid.noise_sd_probabilities[-1]) < 1e-6  # the range holds the mass
    assert abs(grid.noise_sd_mean - reference.noise_sd_mean) < reference.noise_sd_sd


def test_invalid_inputs_name_the_field():
    with pytest.raises(ValueError, match="prior"):
        noise_sd_posterior(DATA, Model(Prior(ParameterPrior("laplace"), ParameterPrior())))
    with pytest.raises(ValueError, match="noise_prior"):
        normal_inverse_gamma_posterior(DATA, GaussianPrior(), NoiseSdPrior("half_normal"))
    with pytest.raises(ValueError, match="points"):
        noise_sd_posterior(DATA, Model(), points=3)
    with pytest.raises(ValueError, match="noise_sd_range"):
        grid_posterior_with_noise(DATA, Model(), (0.0, 1.0))
