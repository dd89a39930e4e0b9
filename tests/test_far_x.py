"""x far from 0 (x in [1e4, 1e4 + 2] and [1e5, 1e5 + 2]): every engine module that reads the data's sums keeps its
digits, checked against the textbook formulas on the raw sums in 60-digit mpmath arithmetic.

Float64 products of two doubles are exact at 60 digits and sums of 1e4 terms lose about 4 of them, so the raw 2 x 2
systems (condition up to 1e21 at x near 1e5) keep 35 or more correct digits: a reference that shares none of the
implementation's float64 algebra. Cases cover n = 2 to 10,000, tiny (1e-9) and huge (1e6) prior sds.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import mpmath
import numpy as np
import pytest
import torch

from bayesdemo.core.data import DataConfig, Dataset, generate
from bayesdemo.core.exact import Gaussian, SufficientStats, exact_posterior
from bayesdemo.core.priors import GaussianPrior, Model, NoiseSdPrior
from bayesdemo.references.basis import BasisConfig, fit_basis, simulate_polynomial
from bayesdemo.references.mean_field import mean_field_elbo, mean_field_optimum
from bayesdemo.references.noise_sd import noise_sd_posterior
from bayesdemo.references.parameter_space import (
    centred,
    centred_posterior,
    ellipse_points,
    has_ellipse,
)
from tests.support.oracles import (
    mahalanobis_squared,
    normal_inverse_gamma_posterior,
    posteriors_one_at_a_time,
    update_one_point,
)
from tests.support.quadrature import trapezoid_rule

DIGITS = 60
NOISE_SD = 0.1
mp = mpmath.mpf

CASES = [
    # (x_min, n, prior): x from x_min to x_min + 2; tiny and huge prior sds; n = 2.
    (1e4, 10_000, GaussianPrior()),
    (1e5, 10_000, GaussianPrior()),
    (1e5, 1_000, GaussianPrior(3.0, 1e-9, 1.0, 1e-9)),
    (1e4, 1_000, GaussianPrior(0.0, 1e6, 0.0, 1e6)),
    (1e4, 1_000, GaussianPrior(0.0, 1e-6, 0.0, 1e6)),
    (1e5, 2, GaussianPrior()),
]
CASE_IDS = ["1e4-n1e4", "1e5-n1e4", "1e5-tiny-prior", "1e4-huge-prior", "1e4-mixed-prior", "1e5-n2"]


def far_data(x_min: float, n: int, seed: int = 3) -> Dataset:
    """y = 3 x + 1 + N(0, 0.1^2) with x ~ U(x_min, x_min + 2)."""
    return generate(DataConfig(n=n, noise_sd=NOISE_SD, x_min=x_min, x_max=x_min + 2.0, seed=seed))


@dataclass
class RawSums:
    """Phi^T Phi, Phi^T y, y^T y and n of the float64 data, exact in 60-digit arithmetic."""

    gram: mpmath.matrix
    phi_t_y: mpmath.matrix
    y_t_y: mpmath.mpf
    n: int

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray) -> RawSums:
        """The sums of the points (x, y), any number of them."""
        mpmath.mp.dps = DIGITS
        x, y = [mp(float(v)) for v in x], [mp(float(v)) for v in y]
        gram = mpmath.matrix([[mpmath.fdot(x, x), mpmath.fsum(x)], [mpmath.fsum(x), len(x)]])
        return cls(gram, mpmath.matrix([mpmath.fdot(x, y), mpmath.fsum(y)]), mpmath.fdot(y, y), len(x))

    def residual_sq(self, theta: mpmath.matrix) -> mpmath.mpf:
        """||y - Phi theta||^2 from the raw sums."""
        return self.y_t_y - 2 * (theta.T * self.phi_t_y)[0] + (theta.T * self.gram * theta)[0]

    def posterior(self, prior_mean, prior_sd, noise_sd) -> dict:
        """PRML 3.49-3.51 and 3.86 on the raw sums: mean, cov, precision, log p(y) (all mpmath)."""
        s2 = mp(noise_sd) ** 2
        m0 = mpmath.matrix([mp(float(v)) for v in prior_mean])
        d0 = mpmath.diag([1 / mp(float(v)) ** 2 for v in prior_sd])
        precision = d0 + self.gram / s2
        cov = precision**-1
        mean = cov * (d0 * m0 + self.phi_t_y / s2)
        shift = mean - m0
        quad = self.residual_sq(mean) / s2 + (shift.T * d0 * shift)[0]
        log_det = mpmath.log(mpmath.det(precision)) - mpmath.log(mpmath.det(d0))
        log_evidence = -(self.n * mpmath.log(2 * mpmath.pi * s2) + log_det + quad) / 2
        return {"mean": mean, "cov": cov, "precision": precision, "log_evidence": log_evidence, "quad": quad}


def as_array(values) -> np.ndarray:
    return np.array([float(v) for v in values])


def as_matrix(values) -> np.ndarray:
    return np.array([[float(values[i, j]) for j in range(values.cols)] for i in range(values.rows)])


# ---- mean_field: the ELBO of a factorised q and its optimum ---------------------------------------------------------


def reference_mean_field_elbo(sums: RawSums, model: Model, mean, sd, log_noise=None) -> float:
    """ELBO of N(mean, diag(sd^2)) [x N(log s | m, v^2), log-normal prior on s] in closed form on the raw sums."""
    mu = mpmath.matrix([mp(float(v)) for v in mean])
    var = [mp(float(v)) ** 2 for v in sd]
    expected_rss = sums.residual_sq(mu) + sums.gram[0, 0] * var[0] + sums.gram[1, 1] * var[1]
    entropy_and_prior = mp(0)
    for j, (location, scale) in enumerate(zip(model.prior.mean, model.prior.sd, strict=True)):
        s0 = mp(float(scale))
        # E_q log N(theta_j | m0, s0^2) + entropy of N(mu_j, var_j).
        entropy_and_prior += -mpmath.log(s0) - ((mu[j] - mp(float(location))) ** 2 + var[j]) / (2 * s0**2)
        entropy_and_prior += mpmath.log(var[j]) / 2 + mp(1) / 2
    if log_noise is None:
        s2 = mp(model.noise_sd) ** 2
        log_lik = -sums.n * mpmath.log(2 * mpmath.pi * s2) / 2 - expected_rss / (2 * s2)
        return float(log_lik + entropy_and_prior)
    m, v = mp(float(log_noise[0])), mp(float(log_noise[1]))
    log_lik = -sums.n * mpmath.log(2 * mpmath.pi) / 2 - sums.n * m - mpmath.exp(-2 * m + 2 * v**2) * expected_rss / 2
    prior = model.noise_prior  # log-normal over s: log s ~ N(log_median, scale^2), so E_q log p(log s) is closed form
    median, scale = mp(prior.log_median), mp(prior.scale)
    noise_part = mpmath.log(v) + (mpmath.log(2 * mpmath.pi) + 1) / 2  # entropy of q(log s)
    noise_part += -mpmath.log(scale) - mpmath.log(2 * mpmath.pi) / 2 - ((m - median) ** 2 + v**2) / (2 * scale**2)
    return float(log_lik + entropy_and_prior + noise_part)


@pytest.mark.parametrize(("x_min", "n", "prior"), CASES, ids=CASE_IDS)
def test_mean_field_elbo_keeps_its_digits_with_x_far_from_zero(x_min, n, prior):
    data = far_data(x_min, n)
    model = Model(prior, noise_sd=NOISE_SD, noise_prior=NoiseSdPrior("log_normal", scale=0.5))
    sums = RawSums.of(data.x, data.y)
    exact = sums.posterior(model.prior.mean, model.prior.sd, NOISE_SD)
    # q at the mean-field optimum, 0.5 of a mean-field sd off along each axis, and with a learned s.
    sd = as_array([1 / mpmath.sqrt(exact["precision"][j, j]) for j in range(2)])
    mean = as_array(exact["mean"]) + 0.5 * sd
    stats = SufficientStats.of(data)
    log_noise = (math.log(NOISE_SD) + 0.01, 0.05)
    known = float(mean_field_elbo(stats, model, torch.tensor(mean), torch.tensor(sd), None))
    noise = torch.tensor(log_noise, dtype=torch.float64)
    learned = float(mean_field_elbo(stats, model, torch.tensor(mean), torch.tensor(sd), noise))
    # Float64 floor: the residual's eps * ||y - ybar||^2 / s^2 and the height at mean(x) (eps * |y| * sqrt(n) / s)
    # stay below 1e-7 nats on these data; the raw sums were 0.05 to 14 nats off.
    assert known == pytest.approx(reference_mean_field_elbo(sums, model, mean, sd), abs=1e-6)
    assert learned == pytest.approx(reference_mean_field_elbo(sums, model, mean, sd, log_noise), abs=1e-6)


@pytest.mark.parametrize(("x_min", "n", "prior"), CASES, ids=CASE_IDS)
def test_mean_field_optimum_is_the_conjugate_one_with_x_far_from_zero(x_min, n, prior):
    data = far_data(x_min, n)
    model = Model(prior, noise_sd=NOISE_SD)
    sums = RawSums.of(data.x, data.y)
    exact = sums.posterior(model.prior.mean, model.prior.sd, NOISE_SD)
    start = time.perf_counter()
    optimum = mean_field_optimum(data, model)
    assert time.perf_counter() - start < 10.0  # generous: measured well under a second
    # A Gaussian prior with known s: the optimum is m_N with sds 1 / sqrt(L_jj) (PRML 10.12-10.13). The ELBO is flat
    # to 1e-7 nats within 1e-3 of a mean-field sd of the optimum (its curvature there is 1 per sd^2), so L-BFGS on a
    # float64 ELBO settles to ~1e-4 sds; the raw sums left the ELBO 0.05 to 20 nats off and an sd 32% off.
    mean_field_sd = as_array([1 / mpmath.sqrt(exact["precision"][j, j]) for j in range(2)])
    np.testing.assert_allclose(optimum.q.sd, mean_field_sd, rtol=1e-3)
    assert np.all(np.abs(optimum.q.mean - as_array(exact["mean"])) <= 1e-3 * np.sqrt(np.diag(as_matrix(exact["cov"]))))
    best = reference_mean_field_elbo(sums, model, as_array(exact["mean"]), mean_field_sd)
    assert optimum.elbo == pytest.approx(best, abs=1e-5)


# ---- sequential: one point at a time ---------------------------------------------------------------------------------

SEQUENTIAL_CASES = [
    (1e4, 1_000, GaussianPrior()),
    (1e5, 1_000, GaussianPrior()),
    (1e4, 1_000, GaussianPrior(0.0, 1e6, 0.0, 1e6)),
    (1e5, 1_000, GaussianPrior(3.0, 1e-9, 1.0, 1e-9)),
    (1e4, 1_000, GaussianPrior(0.0, 1e6, 1.0, 1e-9)),
    (1e5, 2, GaussianPrior(0.0, 1e6, 0.0, 1.0)),
]


@pytest.mark.parametrize(("x_min", "n", "prior"), SEQUENTIAL_CASES, ids=["1e4", "1e5", "huge", "tiny", "mixed", "n2"])
def test_one_point_at_a_time_keeps_its_digits_with_x_far_from_zero(x_min, n, prior):
    data = far_data(x_min, n)
    model = Model(prior, noise_sd=NOISE_SD)
    chain = posteriors_one_at_a_time(data, model, n)
    for k in sorted({1, 2, 10, n} & set(range(1, n + 1))):
        exact = RawSums.of(data.x[:k], data.y[:k]).posterior(model.prior.mean, model.prior.sd, NOISE_SD)
        cov = as_matrix(exact["cov"])
        sd = np.sqrt(np.diag(cov))
        # The chain's Gaussians are float64 (mean, cov) of (slope, intercept); a 2 x 2 covariance whose correlation is
        # 1 - 1e-11 still stores each entry to ~eps, so 1e-6 (of an sd; relative) is float64's floor times a margin,
        # plus a few spacings of float64 near the mean (an sd of 1e-9 beside a mean of 3 is 2 spacings).
        # Inverting the previous covariance put the mean 146 sds off after 1,000 points under a 1e6 prior.
        mean = as_array(exact["mean"])
        assert np.all(np.abs(chain[k].mean - mean) <= 1e-6 * sd + 4 * np.spacing(np.abs(mean))), k
        np.testing.assert_allclose(chain[k].sd, sd, rtol=1e-6, err_msg=f"k = {k}")
        assert chain[k].corr == pytest.approx(cov[0, 1] / (sd[0] * sd[1]), rel=1e-6, abs=1e-9), k


@pytest.mark.parametrize("x_min", [1e4, 1e5])
def test_one_update_of_a_float64_posterior_keeps_its_digits_with_x_far_from_zero(x_min):
    data = far_data(x_min, 1_000)
    model = Model(GaussianPrior(0.0, 1e6, 0.0, 1e6), noise_sd=NOISE_SD)
    before = RawSums.of(data.x[:-1], data.y[:-1]).posterior(model.prior.mean, model.prior.sd, NOISE_SD)
    after = RawSums.of(data.x, data.y).posterior(model.prior.mean, model.prior.sd, NOISE_SD)
    updated = update_one_point(
        Gaussian(as_array(before["mean"]), as_matrix(before["cov"])), data.x[-1], data.y[-1], 0.1
    )
    cov = as_matrix(after["cov"])
    sd = np.sqrt(np.diag(cov))
    # The previous covariance, rounded to float64, fixes the line's height near the data to eps / (1 - corr^2):
    # 1e-7 (x near 1e4) and 1e-5 (x near 1e5) relative, read back undiluted by the one new point.
    tolerance = 1e-6 if x_min == 1e4 else 1e-4
    assert np.all(np.abs(updated.mean - as_array(after["mean"])) <= tolerance * sd)
    np.testing.assert_allclose(updated.sd, sd, rtol=tolerance)
    assert updated.corr == pytest.approx(cov[0, 1] / (sd[0] * sd[1]), rel=tolerance, abs=1e-9)


# ---- noise_sd: the Normal-Inverse-Gamma closed form and the quadrature over s ----------------------------------------

INVERSE_GAMMA = NoiseSdPrior("inverse_gamma", shape=2.0, rate=0.01)


@pytest.mark.parametrize(("x_min", "n", "prior"), CASES, ids=CASE_IDS)
def test_normal_inverse_gamma_keeps_its_digits_with_x_far_from_zero(x_min, n, prior):
    data = far_data(x_min, n)
    sums = RawSums.of(data.x, data.y)
    # NIG: theta | s^2 ~ N(m_N, s^2 V_N) with V_N, m_N the known-noise posterior at s = 1; b_N from the raw sums.
    given_s = sums.posterior(prior.mean, prior.sd, 1.0)
    m0 = mpmath.matrix([mp(float(v)) for v in prior.mean])
    d0 = mpmath.diag([1 / mp(float(v)) ** 2 for v in prior.sd])
    a0, b0 = mp(INVERSE_GAMMA.shape), mp(INVERSE_GAMMA.rate)
    mean, precision = given_s["mean"], given_s["precision"]
    shape = a0 + mp(n) / 2
    rate = b0 + (sums.y_t_y + (m0.T * d0 * m0)[0] - (mean.T * precision * mean)[0]) / 2
    log_evidence = (
        -n * mpmath.log(2 * mpmath.pi) / 2
        + (mpmath.log(mpmath.det(d0)) - mpmath.log(mpmath.det(precision))) / 2
        + a0 * mpmath.log(b0)
        - shape * mpmath.log(rate)
        + mpmath.loggamma(shape)
        - mpmath.loggamma(a0)
    )
    result = normal_inverse_gamma_posterior(data, prior, INVERSE_GAMMA)
    scale_matrix = as_matrix(given_s["cov"])
    sd = np.sqrt(np.diag(scale_matrix))
    # As for the known-noise posterior (test_exact): 1e-6 of an sd and relative, 1e-5 nats; the float64 floor is
    # eps times the design's condition in the posterior's metric (x_min sqrt(12) <= 4e5), or the spacing near the mean.
    # The raw sums left b_N 100% off (even negative) with x near 1e5.
    mean_float = as_array(mean)
    assert np.all(np.abs(result.mean - mean_float) <= 1e-6 * sd + 4 * np.spacing(np.abs(mean_float)))
    np.testing.assert_allclose(np.sqrt(np.diag(result.scale_matrix)), sd, rtol=1e-6)
    assert result.scale_matrix[0, 1] / (sd[0] * sd[1]) == pytest.approx(
        scale_matrix[0, 1] / (sd[0] * sd[1]), rel=1e-6, abs=1e-9
    )
    assert result.shape == float(shape)
    assert result.rate == pytest.approx(float(rate), rel=1e-6)
    assert result.log_evidence == pytest.approx(float(log_evidence), abs=1e-5)


NOISE_CASES = [
    # (x_min, n, prior, half-width of the reference's range of log s around log 0.1)
    (1e4, 1_000, GaussianPrior(), 0.4),
    (1e5, 10_000, GaussianPrior(), 0.15),
    (1e5, 1_000, GaussianPrior(0.0, 1e6, 0.0, 1e6), 0.4),
    (1e5, 20, GaussianPrior(3.0, 1e-9, 1.0, 1e-9), 2.5),
    (1e4, 3, GaussianPrior(), 12.0),
]


@pytest.mark.parametrize(
    ("x_min", "n", "prior", "half_width"), NOISE_CASES, ids=["1e4", "1e5", "1e5-huge", "1e5-tiny", "n3"]
)
def test_noise_sd_quadrature_holds_up_with_x_far_from_zero(x_min, n, prior, half_width):
    data = far_data(x_min, n)
    model = Model(prior, noise_prior=NoiseSdPrior("log_normal"))
    sums = RawSums.of(data.x, data.y)
    # Trapezoid rule over log s of p(s) s p(y | s), p(y | s) and theta's moments given s from the raw sums at 60 digits,
    # 801 points (at most a tenth of a posterior sd of log s apart), the ends checked to hold no mass.
    median, scale = mp(model.noise_prior.log_median), mp(model.noise_prior.scale)
    log_noise = [median + mp(half_width) * (2 * mp(k) / 800 - 1) for k in range(801)]
    rows = []
    for u in log_noise:
        given = sums.posterior(prior.mean, prior.sd, mpmath.exp(u))
        log_prior = -((u - median) ** 2) / (2 * scale**2)  # the density of log s, up to a constant
        rows.append((log_prior + given["log_evidence"], mpmath.exp(u), given["mean"], given["cov"]))
    p, log_sum = trapezoid_rule([row[0] for row in rows])
    assert max(p[0], p[-1]) < 1e-14, "the reference's range of s misses mass"
    noise_mean = mpmath.fsum(pk * row[1] for pk, row in zip(p, rows, strict=True))
    mean = [mpmath.fsum(pk * row[2][a] for pk, row in zip(p, rows, strict=True)) for a in range(2)]
    cov = np.array(
        [
            [
                float(
                    mpmath.fsum(
                        pk * (row[3][a, b] + (row[2][a] - mean[a]) * (row[2][b] - mean[b]))
                        for pk, row in zip(p, rows, strict=True)
                    )
                )
                for b in range(2)
            ]
            for a in range(2)
        ]
    )
    step = 2 * mp(half_width) / 800
    log_evidence = log_sum + mpmath.log(step) - mpmath.log(scale * mpmath.sqrt(2 * mpmath.pi))
    result = noise_sd_posterior(data, model)
    sd = np.sqrt(np.diag(cov))
    # 1e-8: the quadrature solves each s's posterior by QR on rows that keep their own scale (measured worst 3e-9 sds
    # and 1e-11 nats at x near 1e5 with n = 1e4); multiplying by the 2 x 2 covariance instead put log p(y | s) 9e-4
    # nats and the mean 0.02 sds off there.
    assert result.noise_sd_mean == pytest.approx(float(noise_mean), rel=1e-8)
    assert result.log_evidence == pytest.approx(float(log_evidence), abs=1e-8)
    mean_float = as_array(mean)
    assert np.all(np.abs(result.theta.mean - mean_float) <= 1e-8 * sd + 4 * np.spacing(np.abs(mean_float)))
    np.testing.assert_allclose(result.theta.sd, sd, rtol=1e-8)
    assert result.theta.corr == pytest.approx(cov[0, 1] / (sd[0] * sd[1]), rel=1e-8, abs=1e-12)


# ---- basis and parameter_space: they read exact.py's centred solve and hold up ---------------------------------------


@pytest.mark.parametrize(("x_min", "degree"), [(1e4, 1), (1e5, 1), (1e4, 2), (1e5, 2), (1e4, 3)])
def test_basis_evidence_matches_the_direct_density_with_x_far_from_zero(x_min, degree):
    data = simulate_polynomial([1.0, 3.0], n=40, noise_sd=NOISE_SD, x_min=x_min, x_max=x_min + 2.0, seed=1)
    model = Model(GaussianPrior(), noise_sd=NOISE_SD)
    fit = fit_basis(data, BasisConfig("polynomial", degree), model)
    # y ~ N(0, s^2 I + Phi S0 Phi^T) with Phi = (x, ..., x^d, 1) in 60-digit arithmetic, n x n: shares nothing with the
    # p x p solve. Measured agreement 6e-12 nats (x^3 near 1e12 included); 1e-8 leaves a margin.
    mpmath.mp.dps = DIGITS
    phi = mpmath.matrix([[mp(float(v)) ** power for power in range(1, degree + 1)] + [1] for v in data.x])
    prior_cov = mpmath.diag([mp(10) ** 2] * (degree + 1))
    covariance = mp(NOISE_SD) ** 2 * mpmath.eye(data.n) + phi * prior_cov * phi.T
    y = mpmath.matrix([mp(float(v)) for v in data.y])
    log_det = mpmath.log(mpmath.det(covariance))
    direct = -(data.n * mpmath.log(2 * mpmath.pi) + log_det + (y.T * covariance**-1 * y)[0]) / 2
    assert fit.log_evidence == pytest.approx(float(direct), abs=1e-8)


@pytest.mark.parametrize("x_min", [1e4, 1e5])
def test_parameter_space_geometry_holds_up_with_x_far_from_zero(x_min):
    data = far_data(x_min, 10_000)
    model = Model(GaussianPrior(), noise_sd=NOISE_SD)
    posterior = exact_posterior(data, model).posterior
    assert has_ellipse(posterior)
    points = ellipse_points(posterior, 2.0, points=9)
    # (theta - m)^T S^-1 (theta - m) of the drawn points in 60-digit arithmetic on the float64 m and S: 4 to 1e-6.
    # The float64 floor is eps / (1 - corr^2), 2e-8 here (1 + corr = 5e-9); measured 7e-8 at x near 1e5.
    mpmath.mp.dps = DIGITS
    cov = mpmath.matrix([[mp(float(v)) for v in row] for row in posterior.cov])
    for point in points:
        shift = mpmath.matrix([mp(float(point[j])) - mp(float(posterior.mean[j])) for j in range(2)])
        assert float((shift.T * cov**-1 * shift)[0]) == pytest.approx(4.0, rel=1e-6)
    np.testing.assert_allclose(mahalanobis_squared(posterior, points), 4.0, rtol=1e-6)
    # x centred: the 60-digit posterior of the centred data is uncorrelated and its mean-field sds are exact.
    centred_data = centred(data)
    reference = RawSums.of(centred_data.x, centred_data.y).posterior(model.prior.mean, model.prior.sd, NOISE_SD)
    result = centred_posterior(data, model)
    sd = np.sqrt(np.diag(as_matrix(reference["cov"])))
    np.testing.assert_allclose(result.sd, sd, rtol=1e-9)
    mean = as_array(reference["mean"])  # the height at mean(x), 3e5 beside an sd of 1e-3: a few float64 spacings
    assert np.all(np.abs(result.mean - mean) <= 1e-9 * sd + 4 * np.spacing(np.abs(mean)))
    assert abs(result.corr) < 1e-9
    np.testing.assert_allclose(result.mean_field_sd, result.sd, rtol=1e-9)
