"""Exact conjugate reference: posterior, mean-field optimum, evidence, predictive, ELBO and Gaussian KL (MATH.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bayesdemo.data import Dataset
from bayesdemo.priors import Model

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Gaussian:
    """A Gaussian N(mean, cov) over theta = (slope, intercept); mean (p,), cov (p, p)."""

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
    solved_cov = np.linalg.solve(chol_p, q.cov)
    trace_term = np.trace(np.linalg.solve(chol_p.T, solved_cov))
    diff = np.linalg.solve(chol_p, p.mean - q.mean)
    logdet_p = 2.0 * np.sum(np.log(np.diag(chol_p)))
    sign, logdet_q = np.linalg.slogdet(q.cov)
    if sign <= 0:
        return math.inf
    return float(0.5 * (trace_term + diff @ diff - dim + logdet_p - logdet_q))


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
        phi = design_matrix(dataset.x)
        return cls(phi.T @ phi, phi.T @ dataset.y, float(dataset.y @ dataset.y), dataset.n)


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


def predictive(q: Gaussian, x: np.ndarray, noise_sd: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predictive of any Gaussian q at x (n*,): phi^T m, sqrt(phi^T C phi), sqrt(s^2 + phi^T C phi) (PRML 3.57-3.59)."""
    phi = design_matrix(x)
    mean = phi @ q.mean
    var_line = np.einsum("ij,jk,ik->i", phi, q.cov, phi)
    var_line = np.maximum(var_line, 0.0)
    return mean, np.sqrt(var_line), np.sqrt(noise_sd**2 + var_line)


def exact_posterior(dataset: Dataset, model: Model) -> ExactPosterior:
    """Conjugate posterior of theta = (slope, intercept) given data and known noise sd (PRML 3.49-3.51, 3.86)."""
    stats = SufficientStats.of(dataset)
    s2 = model.noise_sd**2
    prior_mean = model.prior.mean
    prior_precision = np.diag(1.0 / model.prior.sd**2)
    precision = prior_precision + stats.phi_t_phi / s2
    cov, logdet_precision = _cholesky_inverse(precision)
    mean = cov @ (prior_precision @ prior_mean + stats.phi_t_y / s2)
    cov = 0.5 * (cov + cov.T)
    # log N(y | Phi m0, s^2 I + Phi S0 Phi^T) in p x p form: determinant lemma and Woodbury.
    shifted_phi_t_r = stats.phi_t_y - stats.phi_t_phi @ prior_mean
    r_t_r = stats.y_t_y - 2.0 * prior_mean @ stats.phi_t_y + prior_mean @ stats.phi_t_phi @ prior_mean
    quad = r_t_r / s2 - shifted_phi_t_r @ cov @ shifted_phi_t_r / s2**2
    logdet_prior = float(np.sum(np.log(model.prior.sd**2)))
    logdet_c = stats.n * math.log(s2) + logdet_prior + logdet_precision
    log_evidence = -0.5 * (stats.n * LOG_2PI + logdet_c + quad)
    return ExactPosterior(
        model=model,
        prior=Gaussian.diagonal(prior_mean, model.prior.sd),
        posterior=Gaussian(mean, cov),
        precision=precision,
        stats=stats,
        log_evidence=float(log_evidence),
    )
