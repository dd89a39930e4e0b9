"""Exact conjugate reference: posterior, mean-field optimum, evidence, predictive, ELBO and Gaussian KL (MATH.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bayesdemo.data import Dataset
from bayesdemo.priors import Model
from bayesdemo.validation import ConfigError

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Gaussian:
    """A Gaussian N(mean, cov) over theta ((slope, intercept), or basis weights); mean (p,), cov (p, p)."""

    mean: np.ndarray
    cov: np.ndarray

    def __post_init__(self) -> None:
        mean = np.array(self.mean, dtype=np.float64).reshape(-1)
        cov = np.array(self.cov, dtype=np.float64).reshape(mean.size, mean.size)
        mean.setflags(write=False)
        cov.setflags(write=False)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "cov", cov)

    @classmethod
    def diagonal(cls, mean: np.ndarray, sd: np.ndarray) -> Gaussian:
        """Factorised Gaussian with the given means and sds."""
        return cls(mean, np.diag(np.asarray(sd, dtype=np.float64) ** 2))

    @property
    def sd(self) -> np.ndarray:
        """Marginal sds sqrt(diag(cov)), shape (p,)."""
        return np.sqrt(np.diag(self.cov))

    @property
    def corr(self) -> float:
        """Correlation of the first two parameters (slope, intercept)."""
        sd = self.sd
        return float(self.cov[0, 1] / (sd[0] * sd[1]))


def kl_gaussian(q: Gaussian, p: Gaussian) -> float:
    """KL(q || p) for two Gaussians (MATH.md, KL between Gaussians); q = N(mu1, C1), p = N(mu0, C0)."""
    chol_p = np.linalg.cholesky(p.cov)
    dim = q.mean.size
    # A q far out (a diverging fit) overflows the squares: that distance is infinite, not an error.
    with np.errstate(over="ignore", invalid="ignore"):
        solved_cov = np.linalg.solve(chol_p, q.cov)
        trace_term = np.trace(np.linalg.solve(chol_p.T, solved_cov))
        diff = np.linalg.solve(chol_p, p.mean - q.mean)
        logdet_p = 2.0 * np.sum(np.log(np.diag(chol_p)))
        sign, logdet_q = np.linalg.slogdet(q.cov)
        value = 0.5 * (trace_term + diff @ diff - dim + logdet_p - logdet_q)
    if sign <= 0 or not math.isfinite(value):
        return math.inf
    return float(value)


def design_matrix(x: np.ndarray) -> np.ndarray:
    """Design rows phi(x) = (x, 1), shape (n, 2) (MATH.md, Model)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    return np.column_stack([x, np.ones_like(x)])


@dataclass(frozen=True)
class SufficientStats:
    """Phi^T Phi (p, p), Phi^T y (p,), y^T y and n: all the exact reference needs (MATH.md, PRML 3.49-3.51)."""

    phi_t_phi: np.ndarray
    phi_t_y: np.ndarray
    y_t_y: float
    n: int

    @classmethod
    def of(cls, dataset: Dataset) -> SufficientStats:
        """Accumulate the statistics in one O(n p^2) pass."""
        return cls.of_design(design_matrix(dataset.x), dataset.y)

    @classmethod
    def of_design(cls, phi: np.ndarray, y: np.ndarray) -> SufficientStats:
        """The statistics of any design Phi (n, p) and targets y (n,), in one O(n p^2) pass."""
        phi = np.asarray(phi, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if phi.ndim != 2 or phi.shape[0] != y.size:
            raise ConfigError("phi", f"must have shape (n, p) with n = {y.size} rows of y, got {phi.shape}")
        if not (np.all(np.isfinite(phi)) and np.all(np.isfinite(y))):
            raise ConfigError("phi", "and y must be finite, got a non-finite value")
        return cls(phi.T @ phi, phi.T @ y, float(y @ y), int(y.size))


def _cholesky_inverse(matrix: np.ndarray) -> tuple[np.ndarray, float]:
    """Inverse of an SPD matrix and its log determinant, through Cholesky."""
    chol = np.linalg.cholesky(matrix)
    inverse_chol = np.linalg.solve(chol, np.eye(matrix.shape[0]))
    return inverse_chol.T @ inverse_chol, 2.0 * float(np.sum(np.log(np.diag(chol))))


@dataclass(frozen=True)
class ExactPosterior:
    """The conjugate posterior N(m_N, S_N) with everything derived from it; theta = (slope, intercept)."""

    model: Model
    prior: Gaussian  # N(m0, S0)
    posterior: Gaussian  # N(m_N, S_N), PRML 3.49-3.51
    precision: np.ndarray  # L = S_N^-1 = S0^-1 + Phi^T Phi / s^2
    stats: SufficientStats
    log_evidence: float  # log p(y), PRML 3.86

    @property
    def mean(self) -> np.ndarray:
        """Posterior mean m_N, shape (2,)."""
        return self.posterior.mean

    @property
    def sd(self) -> np.ndarray:
        """Exact marginal sds sqrt(diag(S_N)), shape (2,)."""
        return self.posterior.sd

    @property
    def corr(self) -> float:
        """Posterior correlation of slope and intercept."""
        return self.posterior.corr

    @property
    def mean_field_sd(self) -> np.ndarray:
        """KL(q||p)-optimal factorised sds 1 / sqrt(L_jj) (MATH.md, PRML 10.12-10.13), shape (2,)."""
        return 1.0 / np.sqrt(np.diag(self.precision))

    @property
    def mean_field(self) -> Gaussian:
        """The optimal mean-field Gaussian: mean m_N, variances 1 / L_jj."""
        return Gaussian.diagonal(self.mean, self.mean_field_sd)

    def predictive(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Posterior predictive at x (n*,): mean, sd of the line, sd of a new observation (PRML 3.57-3.59)."""
        return predictive(self.posterior, x, self.model.noise_sd)

    def expected_log_likelihood(self, q: Gaussian) -> float:
        """E_q[log p(y | theta)] in closed form for Gaussian q (MATH.md, ELBO)."""
        s2 = self.model.noise_sd**2
        mu = q.mean
        stats = self.stats
        residual_sq = stats.y_t_y - 2.0 * mu @ stats.phi_t_y + mu @ stats.phi_t_phi @ mu
        trace = float(np.trace(stats.phi_t_phi @ q.cov))
        return float(-0.5 * stats.n * (LOG_2PI + math.log(s2)) - (residual_sq + trace) / (2.0 * s2))

    def elbo(self, q: Gaussian) -> float:
        """ELBO(q) = E_q[log p(y|theta)] - KL(q || prior) = log p(y) - KL(q || posterior) (MATH.md)."""
        return self.expected_log_likelihood(q) - kl_gaussian(q, self.prior)

    def kl_to_exact(self, q: Gaussian) -> float:
        """KL(q || exact posterior): the headline distance of a fit from the truth."""
        return kl_gaussian(q, self.posterior)


@dataclass(frozen=True)
class DesignPosterior:
    """Posterior of the weights of any design Phi (n, p) under independent Gaussian priors and known noise sd."""

    posterior: Gaussian  # N(m_N, S_N) over the p weights, PRML 3.49-3.51
    precision: np.ndarray  # L = S_N^-1 = S0^-1 + Phi^T Phi / s^2, shape (p, p)
    log_evidence: float  # log p(y) = log N(y | Phi m0, s^2 I + Phi S0 Phi^T), PRML 3.86
    noise_sd: float  # the known noise sd s

    def predictive(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predictive at design rows phi (n*, p): mean, sd of the function, sd of an observation (PRML 3.57-3.59)."""
        return predictive_from_design(self.posterior, phi, self.noise_sd)


def _checked_prior(prior_mean: np.ndarray, prior_sd: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Prior means and sds as float arrays of shape (size,), sds finite and > 0."""
    mean = np.broadcast_to(np.asarray(prior_mean, dtype=np.float64), (size,)).copy()
    sd = np.broadcast_to(np.asarray(prior_sd, dtype=np.float64), (size,)).copy()
    if not np.all(np.isfinite(mean)):
        raise ConfigError("prior_mean", f"must be finite, got {mean.tolist()!r}")
    if not (np.all(np.isfinite(sd)) and np.all(sd > 0)):
        raise ConfigError("prior_sd", f"must be finite and > 0, got {sd.tolist()!r}")
    return mean, sd


def gaussian_posterior_from_stats(
    stats: SufficientStats, prior_mean: np.ndarray, prior_sd: np.ndarray, noise_sd: float
) -> DesignPosterior:
    """N(m_N, S_N) and log p(y) from Phi^T Phi, Phi^T y, y^T y (PRML 3.49-3.51, 3.86; O(p^3), Cholesky)."""
    if not (math.isfinite(noise_sd) and noise_sd > 0):
        raise ConfigError("noise_sd", f"must be finite and > 0, got {noise_sd!r}")
    prior_mean, prior_sd = _checked_prior(prior_mean, prior_sd, stats.phi_t_y.size)
    s2 = float(noise_sd) ** 2
    prior_precision = np.diag(1.0 / prior_sd**2)
    precision = prior_precision + stats.phi_t_phi / s2
    cov, logdet_precision = _cholesky_inverse(precision)
    mean = cov @ (prior_precision @ prior_mean + stats.phi_t_y / s2)
    cov = 0.5 * (cov + cov.T)
    # log N(y | Phi m0, s^2 I + Phi S0 Phi^T) in p x p form (determinant lemma + Woodbury), arranged as PRML 3.86:
    # the residual is taken at m_N, the smallest quadratic, which avoids cancelling two large numbers.
    residual_sq = stats.y_t_y - 2.0 * mean @ stats.phi_t_y + mean @ stats.phi_t_phi @ mean
    prior_shift = (mean - prior_mean) / prior_sd
    quad = max(residual_sq, 0.0) / s2 + prior_shift @ prior_shift
    logdet_prior = float(np.sum(np.log(prior_sd**2)))
    logdet_c = stats.n * math.log(s2) + logdet_prior + logdet_precision
    log_evidence = -0.5 * (stats.n * LOG_2PI + logdet_c + quad)
    return DesignPosterior(Gaussian(mean, cov), precision, float(log_evidence), float(noise_sd))


def gaussian_posterior_from_design(
    phi: np.ndarray, y: np.ndarray, prior_mean: np.ndarray, prior_sd: np.ndarray, noise_sd: float
) -> DesignPosterior:
    """Posterior of weights for design Phi (n, p), y (n,), theta_j ~ N(m0_j, s0_j^2) (PRML 3.49-3.51, 3.86)."""
    return gaussian_posterior_from_stats(SufficientStats.of_design(phi, y), prior_mean, prior_sd, noise_sd)


def predictive_from_design(q: Gaussian, phi: np.ndarray, noise_sd: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predictive of Gaussian q at rows phi (n*, p): phi^T m, sqrt(phi^T C phi), sqrt(s^2 + .) (PRML 3.57-3.59)."""
    phi = np.asarray(phi, dtype=np.float64)
    mean = phi @ q.mean
    var_line = np.einsum("ij,jk,ik->i", phi, q.cov, phi)
    var_line = np.maximum(var_line, 0.0)
    return mean, np.sqrt(var_line), np.sqrt(noise_sd**2 + var_line)


def predictive(q: Gaussian, x: np.ndarray, noise_sd: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predictive of any Gaussian q at x (n*,): phi^T m, sqrt(phi^T C phi), sqrt(s^2 + phi^T C phi) (PRML 3.57-3.59)."""
    return predictive_from_design(q, design_matrix(x), noise_sd)


def exact_posterior(dataset: Dataset, model: Model) -> ExactPosterior:
    """Conjugate posterior of theta = (slope, intercept) given data and known noise sd (PRML 3.49-3.51, 3.86)."""
    stats = SufficientStats.of(dataset)
    fit = gaussian_posterior_from_stats(stats, model.prior.mean, model.prior.sd, model.noise_sd)
    return ExactPosterior(
        model=model,
        prior=Gaussian.diagonal(model.prior.mean, model.prior.sd),
        posterior=fit.posterior,
        precision=fit.precision,
        stats=stats,
        log_evidence=fit.log_evidence,
    )
