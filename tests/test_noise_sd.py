"""Unknown noise sd: the 1-D quadrature equals the Normal-Inverse-Gamma closed form where both describe the same model,
a brute-force 3-D grid where the prior on theta is independent of s, and an independent high-precision reference on
awkward inputs (n = 2, data on a line, x far from 0, tiny and huge prior sds, theta's sd far below its mean, noise far
below the data's scale).

That reference integrates p(s) N(y | Phi m0, s^2 I + Phi S0 Phi^T) over a uniform grid of log s by the trapezoid rule,
the N x N covariance taken through its eigendecomposition and theta's conditional moments in Kalman-gain form,
m0 + S0 Phi^T C^-1 r and S0 - S0 Phi^T C^-1 Phi S0, all in 60-digit mpmath arithmetic, so none of the implementation's
p x p algebra is shared and no cancellation is left to float64. Each range is checked to hold the mass: the end
weights of p(s | y) and of s^2 p(s | y) are below 1e-14, and the grids space at most a tenth of a posterior sd of
log s, where the trapezoid rule on a smooth integrand is accurate far beyond the tolerances below.
"""

import math
import time

import mpmath as mp
import numpy as np
import pytest

from bayesdemo.core.data import DataConfig, Dataset, generate
from bayesdemo.core.exact import exact_posterior
from bayesdemo.core.priors import GaussianPrior, Model, NoiseSdPrior, ParameterPrior, Prior
from bayesdemo.core.validation import ConfigError
from bayesdemo.references.grid import grid_posterior_with_noise
from bayesdemo.references.noise_sd import noise_sd_posterior
from tests.support.oracles import normal_inverse_gamma_posterior
from tests.support.quadrature import trapezoid_rule

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


# ---- awkward inputs against the independent reference ---------------------------------------------------------------

HALF_NORMAL = NoiseSdPrior("half_normal")
LOG_NORMAL = NoiseSdPrior("log_normal")
INVERSE_GAMMA = NoiseSdPrior("inverse_gamma")
DIGITS = 60
LINE_X = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
TWO_POINTS = Dataset([0.3, 0.7], [1.9, 3.1])
RNG = np.random.default_rng(5)
FAR_X = np.sort(RNG.uniform(1000.0, 1002.0, 8))
FAR = Dataset(FAR_X, 3.0 * FAR_X + 1.0 + RNG.normal(0.0, 0.3, 8))
TEN_X = np.sort(RNG.uniform(0.0, 1.0, 10))
TEN = Dataset(TEN_X, 3.0 * TEN_X + 1.0 + RNG.normal(0.0, 0.3, 10))
STEEP = Dataset(TEN_X, 1e6 * TEN_X + 3.0 + RNG.normal(0.0, 0.3, 10))
# The quadrature is float64 on centred sums; against the reference its worst measured error on these cases is 8e-9
# (log p(y) with s ~ 1e-9 beside y ~ 4, where rounding of the data is ~1e-7 of the residuals): 1e-7 leaves a margin and
# still fails the float64 cancellations it replaced (errors of 1e-5 with x far from 0, 100% with n = 2 or data on a
# line, 1e3 in a covariance whose sd is 1e-9 of its mean).
TOLERANCE = 1e-7


def log_noise_prior(noise_prior: NoiseSdPrior, s: mp.mpf) -> mp.mpf:
    """log p(s) written out from the prior's parameters (half-normal, log-normal, or inverse-gamma on s^2)."""
    if noise_prior.kind == "half_normal":
        scale = mp.mpf(noise_prior.scale)
        return mp.log(2) - mp.log(scale) - mp.log(2 * mp.pi) / 2 - s**2 / (2 * scale**2)
    if noise_prior.kind == "log_normal":
        scale, median = mp.mpf(noise_prior.scale), mp.mpf(noise_prior.log_median)
        return -mp.log(s) - mp.log(scale) - mp.log(2 * mp.pi) / 2 - (mp.log(s) - median) ** 2 / (2 * scale**2)
    shape, rate = mp.mpf(noise_prior.shape), mp.mpf(noise_prior.rate)
    return shape * mp.log(rate) - mp.loggamma(shape) - (shape + 1) * mp.log(s**2) - rate / s**2 + mp.log(2 * s)


def conditional_rows(dataset: Dataset, model: Model, log_noise: list) -> list[tuple]:
    """For each log s: (log p(s) s p(y | s), s, E[theta | s, y], Cov(theta | s, y)), from the N x N covariance."""
    n = dataset.n
    x = [mp.mpf(float(value)) for value in dataset.x]
    prior_mean = [mp.mpf(float(value)) for value in model.prior.mean]
    prior_cov = mp.diag([mp.mpf(float(value)) ** 2 for value in model.prior.sd])
    phi = mp.matrix([[value, 1] for value in x])
    # C = s^2 I + Phi S0 Phi^T = Q (diag(lambda) + s^2 I) Q^T: its determinant and solves for every s at once.
    spread, orthogonal = mp.eigsy(phi * prior_cov * phi.T)
    y = [mp.mpf(float(value)) for value in dataset.y]
    residual = mp.matrix([y[i] - prior_mean[0] * x[i] - prior_mean[1] for i in range(n)])
    rotated = orthogonal.T * residual
    gain = prior_cov * phi.T * orthogonal  # S0 Phi^T Q, (2, n)
    rows = []
    for u in log_noise:
        s = mp.exp(u)
        inverse = [1 / (spread[i] + s**2) for i in range(n)]
        log_det = -mp.fsum(mp.log(value) for value in inverse)
        quad = mp.fsum(rotated[i] ** 2 * inverse[i] for i in range(n))
        log_likelihood = -(n * mp.log(2 * mp.pi) + log_det + quad) / 2
        mean = [prior_mean[a] + mp.fsum(gain[a, i] * inverse[i] * rotated[i] for i in range(n)) for a in range(2)]
        cov = [
            [prior_cov[a, b] - mp.fsum(gain[a, i] * inverse[i] * gain[b, i] for i in range(n)) for b in range(2)]
            for a in range(2)
        ]
        rows.append((log_noise_prior(model.noise_prior, s) + u + log_likelihood, s, mean, cov))
    return rows


def reference(dataset: Dataset, model: Model, low: float, high: float, points: int) -> dict:
    """E[s], sd[s], log p(y) and theta's mean and covariance by the trapezoid rule over log s in [low, high]."""
    with mp.workdps(DIGITS):
        step = (mp.log(high) - mp.log(low)) / (points - 1)
        rows = conditional_rows(dataset, model, [mp.log(low) + step * k for k in range(points)])
        p, log_sum = trapezoid_rule([row[0] for row in rows])
        second = [pk * row[1] ** 2 for pk, row in zip(p, rows, strict=True)]
        for ends in ((p[0], p[-1]), (second[0] / mp.fsum(second), second[-1] / mp.fsum(second))):
            assert max(ends) < 1e-14, f"the reference's range of s misses mass: end weights {ends}"
        noise_mean = mp.fsum(pk * row[1] for pk, row in zip(p, rows, strict=True))
        noise_sd = mp.sqrt(mp.fsum(pk * (row[1] - noise_mean) ** 2 for pk, row in zip(p, rows, strict=True)))
        mean = [mp.fsum(pk * row[2][a] for pk, row in zip(p, rows, strict=True)) for a in range(2)]
        cov = [
            [
                mp.fsum(
                    pk * (row[3][a][b] + (row[2][a] - mean[a]) * (row[2][b] - mean[b]))
                    for pk, row in zip(p, rows, strict=True)
                )
                for b in range(2)
            ]
            for a in range(2)
        ]
        return {
            "noise_sd_mean": float(noise_mean),
            "noise_sd_sd": float(noise_sd),
            "log_evidence": float(log_sum + mp.log(step)),
            "mean": np.array([float(value) for value in mean]),
            "cov": np.array([[float(value) for value in row] for row in cov]),
        }


def assert_matches(dataset: Dataset, model: Model, low: float, high: float, points: int = 401) -> None:
    """The quadrature's moments and evidence equal the reference's to TOLERANCE (relative; theta's in its sds)."""
    expected = reference(dataset, model, low, high, points)
    result = noise_sd_posterior(dataset, model)
    assert result.noise_sd_mean == pytest.approx(expected["noise_sd_mean"], rel=TOLERANCE)
    assert result.noise_sd_sd == pytest.approx(expected["noise_sd_sd"], rel=TOLERANCE)
    assert result.log_evidence == pytest.approx(expected["log_evidence"], abs=TOLERANCE)
    sd = np.sqrt(np.diag(expected["cov"]))
    # Plus a few spacings of float64 near the mean: an sd of 3e-9 beside a mean of 1 is 1.2 spacings.
    representable = 4 * np.spacing(np.abs(expected["mean"]))
    assert np.all(np.abs(result.theta.mean - expected["mean"]) <= TOLERANCE * sd + representable)
    np.testing.assert_allclose(result.theta.cov / np.outer(sd, sd), expected["cov"] / np.outer(sd, sd), atol=TOLERANCE)


@pytest.mark.parametrize(("noise_prior", "low", "high"), [(HALF_NORMAL, 1e-16, 30.0), (LOG_NORMAL, 1e-6, 1e4)])
def test_two_points_match_the_reference(noise_prior, low, high):
    """n = 2: any line fits, the least-squares residual is 0, and p(s | y) spans many decades below its mode."""
    assert_matches(TWO_POINTS, Model(GaussianPrior(), noise_prior=noise_prior), low, high, points=801)


@pytest.mark.parametrize(("noise_prior", "low"), [(LOG_NORMAL, 1e-12), (INVERSE_GAMMA, 1e-3)])
def test_data_on_a_line_match_the_reference_under_priors_that_vanish_at_zero(noise_prior, low):
    assert_matches(Dataset(LINE_X, 2.0 * LINE_X), Model(GaussianPrior(), noise_prior=noise_prior), low, 100.0, 1601)


@pytest.mark.parametrize("intercept", [0.0, 0.1])
def test_data_on_a_line_have_no_posterior_of_s_under_a_half_normal_prior(intercept):
    """p(y | s) grows like s^-(n - 2) as s -> 0 on a line, so with p(0) > 0 the posterior of s cannot be normalised;
    y = 0.1 + 2 x is on a line only to rounding and is treated alike."""
    dataset = Dataset(LINE_X, intercept + 2.0 * LINE_X)
    model = Model(GaussianPrior(), noise_prior=HALF_NORMAL)
    with mp.workdps(DIGITS):
        rows = conditional_rows(dataset, model, [mp.log(mp.mpf(s)) for s in (1e-6, 1e-9, 1e-12)])
    log_mass = [float(row[0]) for row in rows]
    if intercept == 0.0:  # exactly on the line: the reference's mass per unit of log s rises without end
        assert log_mass[0] < log_mass[1] < log_mass[2]
    with pytest.raises(ConfigError, match=r"noise_prior.*straight line") as error:
        noise_sd_posterior(dataset, model)
    assert error.value.field == "noise_prior"


@pytest.mark.parametrize("noise_prior", [HALF_NORMAL, LOG_NORMAL])
def test_x_far_from_zero_matches_the_reference(noise_prior):
    assert_matches(FAR, Model(GaussianPrior(), noise_prior=noise_prior), 0.01, 100.0)


@pytest.mark.parametrize("prior_sd", [1e-4, 1e6])
@pytest.mark.parametrize("noise_prior", [HALF_NORMAL, LOG_NORMAL])
def test_tiny_and_huge_prior_sds_match_the_reference(prior_sd, noise_prior):
    assert_matches(TEN, Model(GaussianPrior(0.0, prior_sd, 0.0, prior_sd), noise_prior=noise_prior), 1e-3, 100.0)


def test_theta_covariance_keeps_its_digits_when_its_sd_is_far_below_its_mean():
    """Slope ~ 1e6 with sd 1e-3 (sd / mean = 1e-9): E[theta theta^T] - m m^T would cancel all its digits."""
    model = Model(GaussianPrior(1e6, 1e-3, 3.0, 1e-3), noise_prior=HALF_NORMAL)
    assert_matches(STEEP, model, 1e-3, 100.0)


def test_noise_far_below_the_data_matches_the_reference():
    """s ~ 1e-9 beside y ~ 4: the heavy upper tail of p(s | y) (like s^-4 here) is covered for sd[s] and theta."""
    dataset = generate(DataConfig(n=6, noise_sd=1e-9, seed=3))
    assert_matches(dataset, Model(GaussianPrior(), noise_prior=HALF_NORMAL), 1e-12, 10.0, 1601)


@pytest.mark.parametrize("n", [100, 100_000])
def test_the_reference_is_fast_enough_for_the_page(n):
    dataset = generate(DataConfig(n=n, seed=0))
    model = Model(GaussianPrior(), noise_prior=HALF_NORMAL)
    start = time.perf_counter()
    result = noise_sd_posterior(dataset, model)
    assert time.perf_counter() - start < 2.0  # measured ~2 ms (n = 100) and ~20 ms (n = 100,000)
    assert abs(result.noise_sd_mean - 0.1) < 5 * result.noise_sd_sd  # the data's true noise sd
    assert math.isfinite(result.log_evidence)
