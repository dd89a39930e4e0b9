"""Exact conjugate reference: posterior, mean-field optimum, evidence, predictive, ELBO and Gaussian KL
(docs/MATH.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import numpy.typing as npt

from bayesdemo.core.data import Dataset, LineMoments
from bayesdemo.core.priors import Model
from bayesdemo.core.validation import ConfigError

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
    def diagonal(cls, mean: npt.ArrayLike, sd: npt.ArrayLike) -> Gaussian:
        """Factorised Gaussian with the given means and sds."""
        return cls(np.asarray(mean, dtype=np.float64), np.diag(np.asarray(sd, dtype=np.float64) ** 2))

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
    """KL(q || p) for two Gaussians (docs/MATH.md, KL between Gaussians); q = N(mu1, C1), p = N(mu0, C0)."""
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
    """Design rows phi(x) = (x, 1), shape (n, 2) (docs/MATH.md, Model)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    return np.column_stack([x, np.ones_like(x)])


@dataclass(frozen=True)
class CentredStats:
    """Statistics of the centred data Phi - 1 c^T and y - ybar; constant columns stay exactly 0 (docs/MATH.md,
    Centring)."""

    phi_mean: np.ndarray  # c: column means of Phi, shape (p,); all zeros when nothing was centred
    y_mean: float  # ybar
    phi_scatter: np.ndarray  # (Phi - 1 c^T)^T (Phi - 1 c^T), shape (p, p)
    phi_y_scatter: np.ndarray  # (Phi - 1 c^T)^T (y - ybar), shape (p,)
    y_scatter: float  # ||y - ybar||^2

    def residual_sum_of_squares(self, theta: np.ndarray, n: int) -> float:
        """||y - Phi theta||^2 = ||(y - ybar) - (Phi - 1 c^T) theta||^2 + n (ybar - c^T theta)^2, theta (p,)."""
        centred = self.y_scatter - 2.0 * theta @ self.phi_y_scatter + theta @ self.phi_scatter @ theta
        return float(max(centred, 0.0) + n * (self.y_mean - self.phi_mean @ theta) ** 2)


@dataclass(frozen=True)
class SufficientStats:
    """Phi^T Phi (p, p), Phi^T y (p,), y^T y, n, and the same centred (docs/MATH.md, PRML 3.49-3.51; docs/MATH.md,
    Centring).

    The raw sums serve formulas that want them; the posterior and evidence use `centred`, which keeps their accuracy
    when x sits far from 0 (x near 1e4 loses every digit of the raw 2 x 2 system). Built from raw sums only,
    `centred` holds them uncentred (c = 0).
    """

    phi_t_phi: np.ndarray
    phi_t_y: np.ndarray
    y_t_y: float
    n: int
    # Omitted, it is None only until __post_init__ puts the uncentred statistics there; once built, a CentredStats.
    centred: CentredStats = field(default=cast(CentredStats, None))

    def __post_init__(self) -> None:
        if self.centred is None:
            size = np.asarray(self.phi_t_y).size
            uncentred = CentredStats(
                np.zeros(size), 0.0, np.asarray(self.phi_t_phi), np.asarray(self.phi_t_y), float(self.y_t_y)
            )
            object.__setattr__(self, "centred", uncentred)

    @classmethod
    def of(cls, dataset: Dataset) -> SufficientStats:
        """The statistics of the design rows (x, 1), from the dataset's moments (O(n) once per dataset, then O(1))."""
        return dataset.memo("sufficient_stats", lambda: cls.of_moments(dataset.moments()))

    @classmethod
    def of_moments(cls, moments: LineMoments) -> SufficientStats:
        """The statistics of the design rows (x, 1) from the sums of x and y; the constant column's centred sums are
        exactly 0, as of_design gives them (docs/MATH.md, Centring)."""
        centred = CentredStats(
            np.array([moments.x_mean, 1.0]),
            moments.y_mean,
            np.array([[moments.x_scatter, 0.0], [0.0, 0.0]]),
            np.array([moments.xy_scatter, 0.0]),
            moments.y_scatter,
        )
        phi_t_phi = np.array([[moments.xx_sum, moments.x_sum], [moments.x_sum, float(moments.n)]])
        phi_t_y = np.array([moments.xy_sum, moments.y_sum])
        return cls(phi_t_phi, phi_t_y, moments.yy_sum, moments.n, centred)

    @classmethod
    def of_design(cls, phi: np.ndarray, y: np.ndarray) -> SufficientStats:
        """The statistics of any design Phi (n, p) and targets y (n,), raw and centred, in O(n p^2)."""
        phi = np.asarray(phi, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if phi.ndim != 2 or phi.shape[0] != y.size:
            raise ConfigError("phi", f"must have shape (n, p) with n = {y.size} rows of y, got {phi.shape}")
        if not (np.all(np.isfinite(phi)) and np.all(np.isfinite(y))):
            raise ConfigError("phi", "and y must be finite, got a non-finite value")
        phi_mean, y_mean = _centre(phi), float(_centre(y[:, None])[0])
        phi_centred, y_centred = phi - phi_mean, y - y_mean
        centred = CentredStats(
            phi_mean, y_mean, phi_centred.T @ phi_centred, phi_centred.T @ y_centred, float(y_centred @ y_centred)
        )
        return cls(phi.T @ phi, phi.T @ y, float(y @ y), int(y.size), centred)

    @classmethod
    def combine(cls, parts: list[SufficientStats]) -> SufficientStats:
        """The statistics of the concatenated data of `parts`, centred ones merged exactly (Chan et al. 1979)."""
        parts = [part for part in parts if part.n > 0]
        if not parts:
            raise ConfigError("parts", "must hold at least one data point, got none")
        n = sum(part.n for part in parts)
        means = np.array([part.centred.phi_mean for part in parts])
        weights = np.array([part.n for part in parts], dtype=np.float64) / n
        phi_mean = weights @ means
        same = np.all(means == means[0], axis=0)
        phi_mean[same] = means[0][same]  # a constant column keeps its exact value, so its centred column stays 0
        y_means = np.array([part.centred.y_mean for part in parts])
        y_mean = float(weights @ y_means)
        size = phi_mean.size
        phi_scatter, phi_y_scatter, y_scatter = np.zeros((size, size)), np.zeros(size), 0.0
        for part, part_y_mean in zip(parts, y_means, strict=True):
            shift, y_shift = part.centred.phi_mean - phi_mean, part_y_mean - y_mean
            phi_scatter = phi_scatter + part.centred.phi_scatter + part.n * np.outer(shift, shift)
            phi_y_scatter = phi_y_scatter + part.centred.phi_y_scatter + part.n * shift * y_shift
            y_scatter += part.centred.y_scatter + part.n * y_shift**2
        centred = CentredStats(phi_mean, y_mean, phi_scatter, phi_y_scatter, float(y_scatter))
        return cls(
            sum((part.phi_t_phi for part in parts), np.zeros_like(parts[0].phi_t_phi)),
            sum((part.phi_t_y for part in parts), np.zeros_like(parts[0].phi_t_y)),
            float(sum(part.y_t_y for part in parts)),
            n,
            centred,
        )


def _centre(columns: np.ndarray) -> np.ndarray:
    """Column means of (n, p) refined by a second pass; a constant column's is its value exactly; zeros if n = 0."""
    if columns.shape[0] == 0:
        return np.zeros(columns.shape[1])
    mean = columns.mean(axis=0)
    mean = mean + (columns - mean).mean(axis=0)
    constant = np.all(columns == columns[0], axis=0)
    mean[constant] = columns[0][constant]
    return mean


def qr_upper(matrix: np.ndarray) -> np.ndarray:
    """R of the Householder QR of `matrix` (..., m, p), shape (..., min(m, p), p); stacked matrices each their own."""
    # mode="r" returns R alone, an ndarray; numpy's stubs type every mode as the (Q, R) QRResult.
    return cast(np.ndarray, np.linalg.qr(matrix, mode="r"))


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
    precision_root: np.ndarray | None = None  # upper triangular R with R^T R = L, from QR (docs/MATH.md, Centring)

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
        """KL(q||p)-optimal factorised sds 1 / sqrt(L_jj) (docs/MATH.md, PRML 10.12-10.13), shape (2,)."""
        return 1.0 / np.sqrt(np.diag(self.precision))

    @property
    def mean_field(self) -> Gaussian:
        """The optimal mean-field Gaussian: mean m_N, variances 1 / L_jj."""
        return Gaussian.diagonal(self.mean, self.mean_field_sd)

    def predictive(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Posterior predictive at x (n*,): mean, sd of the line, sd of a new observation (PRML 3.57-3.59)."""
        return predictive_from_design(self.posterior, design_matrix(x), self.model.noise_sd, self.precision_root)

    def expected_log_likelihood(self, q: Gaussian) -> float:
        """E_q[log p(y | theta)] in closed form for Gaussian q (docs/MATH.md, ELBO)."""
        s2 = self.model.noise_sd**2
        centred, n = self.stats.centred, self.stats.n
        residual_sq = centred.residual_sum_of_squares(q.mean, n)
        # tr(Phi^T Phi C) with Phi^T Phi = centred scatter + n c c^T (docs/MATH.md, Centring).
        trace = float(np.trace(centred.phi_scatter @ q.cov) + n * centred.phi_mean @ q.cov @ centred.phi_mean)
        return float(-0.5 * n * (LOG_2PI + math.log(s2)) - (residual_sq + trace) / (2.0 * s2))

    def elbo(self, q: Gaussian) -> float:
        """ELBO(q) = E_q[log p(y|theta)] - KL(q || prior) = log p(y) - KL(q || posterior) (docs/MATH.md)."""
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
    precision_root: np.ndarray | None = None  # upper triangular R with R^T R = L, from QR (docs/MATH.md, Centring)

    def predictive(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predictive at design rows phi (n*, p): mean, sd of the function, sd of an observation (PRML 3.57-3.59)."""
        return predictive_from_design(self.posterior, phi, self.noise_sd, self.precision_root)


def _checked_prior(prior_mean: np.ndarray, prior_sd: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Prior means and sds as float arrays of shape (size,), sds finite and > 0."""
    mean = np.broadcast_to(np.asarray(prior_mean, dtype=np.float64), (size,)).copy()
    sd = np.broadcast_to(np.asarray(prior_sd, dtype=np.float64), (size,)).copy()
    if not np.all(np.isfinite(mean)):
        raise ConfigError("prior_mean", f"must be finite, got {mean.tolist()!r}")
    if not (np.all(np.isfinite(sd)) and np.all(sd > 0)):
        raise ConfigError("prior_sd", f"must be finite and > 0, got {sd.tolist()!r}")
    return mean, sd


def _square_root(scatter: np.ndarray, cross: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows R (r, p) and targets z (r,) with R^T R = scatter and R^T z = cross, from a scaled eigendecomposition.

    Directions the data do not reach (eigenvalues below p eps of the largest, scaled) are left out, as is a column
    with zero scatter (the centred constant column).
    """
    size = scatter.shape[0]
    diagonal = np.diag(scatter)
    active = diagonal > 0.0
    if not np.any(active):
        return np.zeros((0, size)), np.zeros(0)
    scale = np.sqrt(diagonal[active])
    values, vectors = np.linalg.eigh(scatter[np.ix_(active, active)] / np.outer(scale, scale))
    keep = values > values.max() * size * np.finfo(np.float64).eps
    root_values, kept_vectors = np.sqrt(values[keep]), vectors[:, keep]
    rows = np.zeros((root_values.size, size))
    rows[:, active] = (kept_vectors * root_values).T * scale
    return rows, (kept_vectors.T @ (cross[active] / scale)) / root_values


def gaussian_posterior_from_stats(
    stats: SufficientStats, prior_mean: np.ndarray, prior_sd: np.ndarray, noise_sd: float
) -> DesignPosterior:
    """N(m_N, S_N) and log p(y) from the centred statistics (PRML 3.49-3.51, 3.86; docs/MATH.md, Centring; O(p^3)).

    Phi^T Phi = centred scatter + n c c^T is never summed: the posterior is the least-squares problem with rows
    (square root of the centred scatter) / s, sqrt(n) c^T / s (target sqrt(n) ybar / s) and diag(1 / s0) (target
    m0 / s0), solved by Householder QR. Each row keeps its own scale, so x near 1e5, a prior sd of 1e-8 or of 1e6
    all keep their digits, where the summed p x p system loses every one.
    """
    if not (math.isfinite(noise_sd) and noise_sd > 0):
        raise ConfigError("noise_sd", f"must be finite and > 0, got {noise_sd!r}")
    prior_mean, prior_sd = _checked_prior(prior_mean, prior_sd, stats.phi_t_y.size)
    noise_sd = float(noise_sd)
    s2 = noise_sd**2
    centred, n = stats.centred, stats.n
    root_n = math.sqrt(n)
    data_rows, data_targets = _square_root(centred.phi_scatter, centred.phi_y_scatter)
    rows = np.vstack([data_rows / noise_sd, root_n * centred.phi_mean[None, :] / noise_sd, np.diag(1.0 / prior_sd)])
    targets = np.concatenate([data_targets / noise_sd, [root_n * centred.y_mean / noise_sd], prior_mean / prior_sd])
    # QR of [rows | targets]: the last column of R holds Q^T targets, so the mean is one back substitution.
    augmented = qr_upper(np.column_stack([rows, targets]))
    size = prior_mean.size
    upper = augmented[:size, :size]
    inverse_upper = np.linalg.solve(upper, np.eye(size))
    mean = inverse_upper @ augmented[:size, size]
    cov = inverse_upper @ inverse_upper.T
    cov = 0.5 * (cov + cov.T)
    precision = (
        np.diag(1.0 / prior_sd**2) + (centred.phi_scatter + n * np.outer(centred.phi_mean, centred.phi_mean)) / s2
    )
    logdet_precision = 2.0 * float(np.sum(np.log(np.abs(np.diag(upper)))))
    # log N(y | Phi m0, s^2 I + Phi S0 Phi^T) in p x p form (determinant lemma + Woodbury), arranged as PRML 3.86:
    # the residual is taken at m_N from centred statistics, the smallest quadratic with no large numbers to cancel.
    residual_sq = centred.residual_sum_of_squares(mean, n)
    prior_shift = (mean - prior_mean) / prior_sd
    quad = residual_sq / s2 + prior_shift @ prior_shift
    logdet_prior = float(np.sum(np.log(prior_sd**2)))
    logdet_c = n * math.log(s2) + logdet_prior + logdet_precision
    log_evidence = -0.5 * (n * LOG_2PI + logdet_c + quad)
    return DesignPosterior(Gaussian(mean, cov), precision, float(log_evidence), noise_sd, upper)


def gaussian_posterior_from_design(
    phi: np.ndarray, y: np.ndarray, prior_mean: np.ndarray, prior_sd: np.ndarray, noise_sd: float
) -> DesignPosterior:
    """Posterior of weights for design Phi (n, p), y (n,), theta_j ~ N(m0_j, s0_j^2) (PRML 3.49-3.51, 3.86)."""
    return gaussian_posterior_from_stats(SufficientStats.of_design(phi, y), prior_mean, prior_sd, noise_sd)


def predictive_from_design(
    q: Gaussian, phi: np.ndarray, noise_sd: float, precision_root: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predictive of Gaussian q at rows phi (n*, p): phi^T m, sqrt(phi^T C phi), sqrt(s^2 + .) (PRML 3.57-3.59).

    Given R with R^T R = C^-1 (precision_root), phi^T C phi = ||R^-T phi||^2: no cancellation in a near-singular C.
    """
    phi = np.asarray(phi, dtype=np.float64)
    mean = phi @ q.mean
    if precision_root is None:
        var_line = np.einsum("ij,jk,ik->i", phi, q.cov, phi)
    else:
        solved = np.linalg.solve(precision_root.T, phi.T)
        var_line = np.sum(solved**2, axis=0)
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
        precision_root=fit.precision_root,
    )
