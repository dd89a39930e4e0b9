"""Second ways to compute what the engine computes, kept for the tests that compare the two.

Each function or class here is a reference the engine does not call: the conjugate update one point at a time, the
Normal-Inverse-Gamma closed form, the exact mean-gradient of the negative ELBO, a Mahalanobis distance, a fit callback
that trains for a fixed number of steps, and a chi-square test of uniform ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from bayesdemo.core.config import FitConfig
from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import LOG_2PI, Gaussian, SufficientStats, gaussian_posterior_from_stats, qr_upper
from bayesdemo.core.priors import GaussianPrior, Model, NoiseSdPrior
from bayesdemo.core.validation import ConfigError, check_int, check_range
from bayesdemo.fitting.runner import RunConfig, Snapshot, run_to_end
from bayesdemo.methods import make_method
from bayesdemo.references.calibration import Fit, MethodCalibration
from bayesdemo.references.mean_field import mean_field_elbo
from bayesdemo.references.sequential import posterior_after


@dataclass(frozen=True)
class InformationForm:
    """N(m, S) of (slope, intercept) as R (2, 2) and z (2,): R^T R = S'^-1 and R (m' - o') = z in the frame theta' =
    (slope, intercept + centre slope), the slope and the line's height at x = centre (docs/MATH.md, Centring).

    o is a fixed origin (the prior's or the previous mean). One point adds the row (x - centre, 1) / s with target
    (y - o_slope x - o_intercept) / s, re-triangularised by QR: no covariance is inverted and no sum of x^2 formed,
    and z carries only the move away from o, so x near 1e5, prior sds of 1e-9 or of 1e6 all keep their digits.
    """

    centre: float  # c: the frame's second coordinate is the line's height at x = c
    origin: np.ndarray  # o, (slope, intercept) the mean is measured from, shape (2,)
    root: np.ndarray  # R, shape (2, 2), R^T R the precision of theta' = (slope, intercept + c slope)
    target: np.ndarray  # z = R (m' - o'), shape (2,)

    @classmethod
    def of_prior(cls, prior: GaussianPrior) -> InformationForm:
        """The prior N(m0, diag(s0^2)) in the frame at x = 0: R = diag(1 / s0), origin m0, z = 0."""
        return cls(0.0, prior.mean, np.diag(1.0 / prior.sd), np.zeros(2))

    @classmethod
    def of_gaussian(cls, gaussian: Gaussian) -> InformationForm:
        """Any Gaussian, in the frame where slope and height are uncorrelated: c = -S12 / S11, var = S22 + c S12."""
        cov = gaussian.cov
        centre = float(-cov[0, 1] / cov[0, 0]) if cov[0, 0] > 0 else 0.0
        height_var = float(cov[1, 1] + centre * cov[0, 1])
        if not (cov[0, 0] > 0 and height_var > 0):
            raise ConfigError("previous", f"must have a positive definite covariance, got {cov.tolist()!r}")
        root = np.diag([1.0 / math.sqrt(cov[0, 0]), 1.0 / math.sqrt(height_var)])
        return cls(centre, gaussian.mean, root, np.zeros(2))

    def updated(self, x: float, y: float, noise_sd: float) -> InformationForm:
        """The posterior after one more point (x, y) with noise sd s (PRML 3.49-3.51 as one QR step)."""
        row = np.array([float(x) - self.centre, 1.0]) / noise_sd
        residual = (float(y) - self.origin[0] * float(x) - self.origin[1]) / noise_sd
        # QR of [rows | targets]: the last column of R holds Q^T targets.
        upper = qr_upper(np.column_stack([np.vstack([self.root, row]), [*self.target, residual]]))
        return InformationForm(self.centre, self.origin, upper[:2, :2], upper[:2, 2])

    @property
    def gaussian(self) -> Gaussian:
        """N(m, S) of (slope, intercept): m' = o' + R^-1 z, S' = R^-1 R^-T, mapped back by T^-1 = [[1, 0], [-c, 1]]."""
        back = np.array([[1.0, 0.0], [-self.centre, 1.0]])
        factor = back @ np.linalg.solve(self.root, np.eye(2))
        cov = factor @ factor.T
        return Gaussian(self.origin + factor @ self.target, 0.5 * (cov + cov.T))


def update_one_point(previous: Gaussian, x: float, y: float, noise_sd: float) -> Gaussian:
    """Yesterday's posterior as prior: L' = L + phi phi^T / s^2, m' = S' (L m + phi y / s^2) (PRML 3.49-3.51).

    Taken as one QR step in the frame where the previous slope and height are uncorrelated (InformationForm): a
    covariance stored in float64 fixes the line's height to eps times its condition, and no more is lost.
    """
    check_range("noise_sd", noise_sd, 0.0, 1e6, low_open=True)
    check_range("x", x, -1e12, 1e12)
    check_range("y", y, -1e12, 1e12)
    return InformationForm.of_gaussian(previous).updated(x, y, noise_sd).gaussian


def posteriors_one_at_a_time(dataset: Dataset, model: Model, k: int) -> list[Gaussian]:
    """[prior, after 1 point, ..., after k points], each update using only the previous posterior and one point.

    The posterior travels as its InformationForm (docs/MATH.md, Centring), each point one QR step on the rows (x, 1)
    / s:
    QR keeps each column's own scale, so x far from 0 costs no digits. Inverting each float64 covariance, as the
    textbook update reads, put the mean 146 sds off after 1,000 points near x = 1e4 under a prior sd of 1e6.
    """
    k = check_int("k", k, 0, dataset.n)
    chain = [posterior_after(dataset, model, 0)]  # raises ConfigError unless the prior is a GaussianPrior
    state = InformationForm.of_prior(cast(GaussianPrior, model.prior))
    for index in range(k):
        state = state.updated(dataset.x[index], dataset.y[index], model.noise_sd)
        chain.append(state.gaussian)
    return chain


@dataclass(frozen=True)
class NormalInverseGammaPosterior:
    """theta | s^2 ~ N(m_N, s^2 V_N), s^2 ~ IG(a_N, b_N) (docs/MATH.md, Unknown noise sd, conjugate alternative)."""

    mean: np.ndarray  # (2,) m_N
    scale_matrix: np.ndarray  # (2, 2) V_N
    shape: float  # a_N
    rate: float  # b_N
    log_evidence: float  # log p(y)

    @property
    def theta(self) -> Gaussian:
        """theta's marginal Student-t(2 a_N, m_N, (b_N / a_N) V_N) as its mean and covariance (b_N / (a_N - 1)) V_N."""
        if self.shape <= 1.0:
            raise ConfigError("shape", f"a_N must be > 1 for theta's covariance to exist, got {self.shape!r}")
        return Gaussian(self.mean, self.rate / (self.shape - 1.0) * self.scale_matrix)

    @property
    def noise_sd_mean(self) -> float:
        """E[s] for s^2 ~ IG(a, b): sqrt(b) Gamma(a - 1/2) / Gamma(a)."""
        return math.sqrt(self.rate) * math.exp(math.lgamma(self.shape - 0.5) - math.lgamma(self.shape))

    @property
    def noise_sd_sd(self) -> float:
        """sd[s] = sqrt(E[s^2] - E[s]^2) with E[s^2] = b / (a - 1)."""
        return math.sqrt(max(self.rate / (self.shape - 1.0) - self.noise_sd_mean**2, 0.0))


def normal_inverse_gamma_posterior(
    dataset: Dataset, prior: GaussianPrior, noise_prior: NoiseSdPrior
) -> NormalInverseGammaPosterior:
    """Conjugate NIG update (docs/MATH.md): theta | s^2 ~ N(m0, s^2 V0) with V0 = diag(prior.sd^2), s^2 ~ IG(a0, b0).

    `noise_prior` must be of kind "inverse_gamma" (shape a0, rate b0); note prior.sd is per unit of noise sd here.
    """
    if noise_prior.kind != "inverse_gamma":
        raise ConfigError(
            "noise_prior", f"must be of kind 'inverse_gamma' for the NIG update, got {noise_prior.kind!r}"
        )
    stats = SufficientStats.of(dataset)
    # theta | s^2 ~ N(m_N, s^2 V_N) is the known-noise posterior at s = 1, from centred statistics by QR (docs/MATH.md,
    # Centring): the raw Phi^T Phi + V0^-1 and y^T y + m0^T V0^-1 m0 - m_N^T V_N^-1 m_N lose every digit with x far
    # from 0. 2 (b_N - b0) is the same quadratic written as ||y - Phi m_N||^2 + ||(m_N - m0) / s0||^2, each >= 0.
    fit = gaussian_posterior_from_stats(stats, prior.mean, prior.sd, 1.0)
    mean, scale_matrix = fit.posterior.mean, fit.posterior.cov
    prior_shift = (mean - prior.mean) / prior.sd
    quad = stats.centred.residual_sum_of_squares(mean, stats.n) + float(prior_shift @ prior_shift)
    shape = noise_prior.shape + stats.n / 2.0
    rate = noise_prior.rate + 0.5 * quad
    # gaussian_posterior_from_stats always returns the QR root R of the precision (V_N^-1 = R^T R).
    precision_root = cast(np.ndarray, fit.precision_root)
    log_det_scale = -2.0 * float(np.sum(np.log(np.abs(np.diag(precision_root)))))
    log_evidence = (
        -0.5 * stats.n * LOG_2PI
        + 0.5 * (log_det_scale - float(np.sum(np.log(prior.sd**2))))
        + noise_prior.shape * math.log(noise_prior.rate)
        - shape * math.log(rate)
        + math.lgamma(shape)
        - math.lgamma(noise_prior.shape)
    )
    return NormalInverseGammaPosterior(mean, scale_matrix, shape, rate, float(log_evidence))


def expected_gradient(dataset: Dataset, model: Model, q: Gaussian) -> np.ndarray:
    """The exact mu-gradient of the negative ELBO at diagonal q (closed form, docs/MATH.md ELBO), shape (2,)."""
    mean = torch.tensor(np.array(q.mean), dtype=torch.float64, requires_grad=True)
    sd = torch.tensor(np.array(q.sd), dtype=torch.float64)
    loss = -mean_field_elbo(SufficientStats.of(dataset), model, mean, sd, None)
    return torch.autograd.grad(loss, mean)[0].numpy()


def mahalanobis_squared(gaussian: Gaussian, theta: np.ndarray) -> np.ndarray:
    """(theta - m)^T S^-1 (theta - m) for each row of theta (k, 2), via Cholesky; shape (k,)."""
    chol = np.linalg.cholesky(gaussian.cov[:2, :2])
    whitened = np.linalg.solve(chol, (np.atleast_2d(theta) - gaussian.mean[:2]).T)
    return np.sum(whitened**2, axis=0)


def fit_with_method(model: Model, config: FitConfig) -> Fit:
    """A `fit` callback training `config`'s method for `config.steps` steps; q is the last finite snapshot."""

    def fit(dataset: Dataset) -> Gaussian:
        """Train on `dataset` and return the final q."""
        steps = config.steps_in_force
        run = run_to_end(make_method(dataset, model, config), steps, RunConfig(snapshot_every=steps))
        # A run records its starting snapshot before its first step, so a finished run always has a last one.
        return cast(Snapshot, run.last).gaussian

    return fit


def chi_square_uniformity(counts: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-square statistic of equal-probability bin counts (bins,) and its p-value (bins - 1 dof)."""
    counts = np.asarray(counts, dtype=np.float64)
    expected = counts.sum() / counts.size
    statistic = float(np.sum((counts - expected) ** 2) / expected)
    dof = counts.size - 1
    p_value = torch.special.gammaincc(torch.tensor(dof / 2.0), torch.tensor(statistic / 2.0, dtype=torch.float64))
    return statistic, float(p_value)


def rank_uniformity(method: MethodCalibration, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Chi-square statistics and p-values (2,) of a method's SBC ranks against uniform: small p means miscalibrated."""
    histogram = method.rank_histogram(bins)
    results = [chi_square_uniformity(histogram[:, j]) for j in range(2)]
    return np.array([r[0] for r in results]), np.array([r[1] for r in results])
