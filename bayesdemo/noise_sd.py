"""Unknown noise sd: exact reference by 1-D quadrature over s, and the Normal-Inverse-Gamma conjugate alternative.

Named after the quantity it infers (s, `noise_sd` everywhere in the engine); the prior on s is
`priors.NoiseSdPrior`, stored on `Model.noise_prior` (MATH.md, Unknown noise sd).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bayesdemo.data import Dataset
from bayesdemo.exact import LOG_2PI, Gaussian, SufficientStats
from bayesdemo.priors import GaussianPrior, Model, NoiseSdPrior
from bayesdemo.validation import ConfigError, check_int

DEFAULT_NOISE_POINTS = 2001  # points of the log-spaced s grid
EDGE_MASS = 1e-12  # the grid is widened until each end cell holds less posterior mass than this
HALF_WIDTH_LOG_SDS = 12.0  # first half-width of the log s grid in large-sample sds of log s, 1 / sqrt(2 n)


def _log_gamma(value: float) -> float:
    """log Gamma(value)."""
    return math.lgamma(value)


@dataclass(frozen=True)
class NoiseSdPosterior:
    """p(s | y) on a log-spaced grid and theta's exact posterior moments with s integrated out."""

    noise_sd_grid: np.ndarray  # (K,) s values, log-spaced
    weights: np.ndarray  # (K,) quadrature weights of p(s | y), summing to 1
    theta: Gaussian  # exact mean (2,) and covariance (2, 2) of theta | y: the Gaussian mixture's moments
    noise_sd_mean: float  # E[s | y]
    noise_sd_sd: float  # sd[s | y]
    log_evidence: float  # log p(y) = log integral p(s) p(y | s) ds

    @property
    def density(self) -> np.ndarray:
        """p(s | y) at each grid point (weights over the cell widths in s), shape (K,)."""
        log_step = math.log(self.noise_sd_grid[1] / self.noise_sd_grid[0])
        return self.weights / (log_step * self.noise_sd_grid)


def _conditional_posteriors(
    stats: SufficientStats, prior_mean: np.ndarray, prior_var: np.ndarray, noise_sd: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each s (K,) with prior variances prior_var (K, 2): m_N(s) (K, 2), S_N(s) (K, 2, 2), log p(y | s) (K,).

    PRML 3.49-3.51 and 3.86 in p x p form, as in exact.exact_posterior, batched over s.
    """
    s2 = noise_sd[:, None, None] ** 2
    prior_precision = np.zeros((noise_sd.size, 2, 2))
    prior_precision[:, [0, 1], [0, 1]] = 1.0 / prior_var
    precision = prior_precision + stats.phi_t_phi / s2
    cov = np.linalg.inv(precision)
    rhs = prior_precision @ prior_mean + stats.phi_t_y / s2[..., 0]
    mean = np.einsum("kij,kj->ki", cov, rhs)
    shifted = stats.phi_t_y - stats.phi_t_phi @ prior_mean
    r_t_r = stats.y_t_y - 2.0 * prior_mean @ stats.phi_t_y + prior_mean @ stats.phi_t_phi @ prior_mean
    s2 = s2[:, 0, 0]
    quad = r_t_r / s2 - np.einsum("i,kij,j->k", shifted, cov, shifted) / s2**2
    logdet_precision = np.linalg.slogdet(precision)[1]
    logdet_c = stats.n * np.log(s2) + np.log(prior_var).sum(axis=1) + logdet_precision
    log_evidence = -0.5 * (stats.n * LOG_2PI + logdet_c + quad)
    return mean, cov, log_evidence


def _least_squares_noise_sd(stats: SufficientStats) -> float:
    """sqrt(min_theta RSS / n): the maximum-likelihood s, where the s grid starts centred."""
    solution = np.linalg.solve(stats.phi_t_phi, stats.phi_t_y)
    rss = max(stats.y_t_y - solution @ stats.phi_t_y, 1e-12 * max(stats.y_t_y, 1e-300))
    return math.sqrt(rss / stats.n)


def noise_sd_posterior(
    dataset: Dataset,
    model: Model,
    points: int = DEFAULT_NOISE_POINTS,
    *,
    prior_scales_with_noise: bool = False,
) -> NoiseSdPosterior:
    """Exact reference for unknown s by quadrature: p(s|y) ∝ p(s) N(y | Phi m0, s^2 I + Phi S0 Phi^T) (MATH.md).

    theta ~ N(m0, S0) independently of s with S0 = diag(prior.sd^2); with `prior_scales_with_noise` instead
    theta | s ~ N(m0, s^2 S0), the Normal-Inverse-Gamma model's conditional prior. s's prior is model.noise_prior.
    """
    if not model.prior.is_gaussian:
        raise ConfigError(
            "prior", f"must be Gaussian for the quadrature (use grid.grid_posterior_with_noise), got {model.prior!r}"
        )
    points = check_int("points", points, 64, 200_001)
    stats = SufficientStats.of(dataset)
    centre = math.log(_least_squares_noise_sd(stats))
    half_width = HALF_WIDTH_LOG_SDS / math.sqrt(2.0 * stats.n)
    for _ in range(8):
        log_noise = np.linspace(centre - half_width, centre + half_width, points)
        noise_sd = np.exp(log_noise)
        prior_var = np.broadcast_to(model.prior.sd**2, (points, 2))
        if prior_scales_with_noise:
            prior_var = prior_var * noise_sd[:, None] ** 2
        means, covs, log_lik = _conditional_posteriors(stats, model.prior.mean, prior_var, noise_sd)
        # Weights over u = log s: p(s) s p(y | s) du.
        log_mass = model.noise_prior.log_density(noise_sd) + log_noise + log_lik
        peak = log_mass.max()
        mass = np.exp(log_mass - peak)
        weights = mass / mass.sum()
        if max(weights[0], weights[-1]) < EDGE_MASS:
            break
        half_width *= 2.0
    log_evidence = float(peak + math.log(mass.sum() * (log_noise[1] - log_noise[0])))
    mean = weights @ means
    second_moment = np.einsum("k,kij->ij", weights, covs + np.einsum("ki,kj->kij", means, means))
    cov = second_moment - np.outer(mean, mean)
    noise_mean = float(weights @ noise_sd)
    noise_sd_sd = math.sqrt(max(float(weights @ (noise_sd - noise_mean) ** 2), 0.0))
    return NoiseSdPosterior(
        noise_sd, weights, Gaussian(mean, 0.5 * (cov + cov.T)), noise_mean, noise_sd_sd, log_evidence
    )


@dataclass(frozen=True)
class NormalInverseGammaPosterior:
    """theta | s^2 ~ N(m_N, s^2 V_N), s^2 ~ IG(a_N, b_N) (MATH.md, Unknown noise sd, conjugate alternative)."""

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
        return math.sqrt(self.rate) * math.exp(_log_gamma(self.shape - 0.5) - _log_gamma(self.shape))

    @property
    def noise_sd_sd(self) -> float:
        """sd[s] = sqrt(E[s^2] - E[s]^2) with E[s^2] = b / (a - 1)."""
        return math.sqrt(max(self.rate / (self.shape - 1.0) - self.noise_sd_mean**2, 0.0))


def normal_inverse_gamma_posterior(
    dataset: Dataset, prior: GaussianPrior, noise_prior: NoiseSdPrior
) -> NormalInverseGammaPosterior:
    """Conjugate NIG update (MATH.md): theta | s^2 ~ N(m0, s^2 V0) with V0 = diag(prior.sd^2), s^2 ~ IG(a0, b0).

    `noise_prior` must be of kind "inverse_gamma" (shape a0, rate b0); note prior.sd is per unit of noise sd here.
    """
    if noise_prior.kind != "inverse_gamma":
        raise ConfigError(
            "noise_prior", f"must be of kind 'inverse_gamma' for the NIG update, got {noise_prior.kind!r}"
        )
    stats = SufficientStats.of(dataset)
    prior_precision = np.diag(1.0 / prior.sd**2)
    precision = prior_precision + stats.phi_t_phi
    scale_matrix = np.linalg.inv(precision)
    mean = scale_matrix @ (prior_precision @ prior.mean + stats.phi_t_y)
    shape = noise_prior.shape + stats.n / 2.0
    rate = noise_prior.rate + 0.5 * (stats.y_t_y + prior.mean @ prior_precision @ prior.mean - mean @ precision @ mean)
    log_evidence = (
        -0.5 * stats.n * LOG_2PI
        + 0.5 * (np.linalg.slogdet(scale_matrix)[1] - float(np.sum(np.log(prior.sd**2))))
        + noise_prior.shape * math.log(noise_prior.rate)
        - shape * math.log(rate)
        + _log_gamma(shape)
        - _log_gamma(noise_prior.shape)
    )
    return NormalInverseGammaPosterior(mean, 0.5 * (scale_matrix + scale_matrix.T), shape, rate, float(log_evidence))
