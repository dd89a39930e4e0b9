"""Unknown noise sd: exact reference by 1-D quadrature over s.

Named after the quantity it infers (s, `noise_sd` everywhere in the engine); the prior on s is
`priors.NoiseSdPrior`, stored on `Model.noise_prior` (docs/MATH.md, Unknown noise sd).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import LOG_2PI, Gaussian, SufficientStats, qr_upper
from bayesdemo.core.priors import Model
from bayesdemo.core.validation import ConfigError, check_int

DEFAULT_NOISE_POINTS = 2001  # points of the log-spaced s grid
LOG_DENSITY_DROP = 40.0  # the grid spans log s where log p(log s | y) is within this of its peak (e^-40 ~ 4e-18)
SCAN_STEP = 0.25  # step in log s of the first, coarse scan for where p(s | y) has mass
SCAN_HALF_WIDTH = 8.0  # first half-width in log s of that scan, doubled on each side that still holds mass
NOISE_SD_LIMITS = (1e-150, 1e150)  # the scan never leaves this range of s
SEARCH_POINTS = 257  # points of the grid while it is still being narrowed to the peak
MAX_REFINEMENTS = 40  # re-samplings of the grid on its part within LOG_DENSITY_DROP of the peak
ROUNDING_ULPS = 16.0  # a residual sum of squares below (16 eps)^2 sum_i (|y_i| + |slope x_i| + |intercept|)^2 is 0


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


@dataclass(frozen=True)
class _LineFit:
    """The data's least-squares line in centred form: all the quadrature over s reads (docs/MATH.md, Unknown noise
    sd)."""

    n: int
    x_mean: float
    y_mean: float
    centred_sxx: float  # sum (x - x_mean)^2 > 0
    least_squares: np.ndarray  # (2,) least-squares (slope, intercept)
    rss: float  # min_theta ||y - Phi theta||^2, set to 0 when within rounding of a straight line

    @classmethod
    def of(cls, dataset: Dataset) -> _LineFit:
        """Means and scatters from exact.SufficientStats' centred statistics (docs/MATH.md, Centring), so that x far
        from 0
        loses no digits; the residual from one pass over the data, since ||y - ybar||^2 - sxy^2 / sxx would cancel
        every digit of a residual near 0."""
        centred = SufficientStats.of(dataset).centred
        x_mean, y_mean = float(centred.phi_mean[0]), float(centred.y_mean)
        sxx = float(centred.phi_scatter[0, 0])
        slope = float(centred.phi_y_scatter[0]) / sxx
        intercept = y_mean - slope * x_mean
        x, y = dataset.x, dataset.y
        residual = (y - y_mean) - slope * (x - x_mean)
        rss = float(residual @ residual)
        rounding = ROUNDING_ULPS * np.finfo(np.float64).eps * (np.abs(y) + abs(slope) * np.abs(x) + abs(intercept))
        if rss <= float(rounding @ rounding):
            rss = 0.0
        return cls(int(x.size), x_mean, y_mean, sxx, np.array([slope, intercept]), rss)


def _conditional_posteriors(
    line: _LineFit, prior_mean: np.ndarray, log_prior_var: np.ndarray, log_noise: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """m_N(s) - theta_LS (K, 2), m_N(s) - m0 (K, 2), S_N(s) (K, 2, 2), log p(y | s) (K,) at each log s (K,) with log
    prior variances (K, 2): PRML 3.49-3.51 and 3.86 as one least-squares problem per s, solved by batched Householder
    QR as exact.gaussian_posterior_from_stats does (docs/MATH.md, Unknown noise sd; docs/MATH.md, Centring)."""
    # Rows, all multiplied by s so that no s in NOISE_SD_LIMITS over- or underflows: the centred data (sqrt(sxx), 0),
    # sqrt(n) (x_mean, 1), and the prior's diag(s / s0). Targets: R_data (theta_LS - m0) on the data rows and 0 on the
    # prior's give f = m_N - m0; 0 on the data rows and (m0 - theta_LS) s / s0 on the prior's give e = m_N - theta_LS.
    # Each row keeps its own scale, where the 2 x 2 covariance times a vector lost ~x_mean^2 / var(x) eps (1e-2 of an
    # sd at x near 1e5). Each QR's third diagonal entry is its target's least-squares residual, and both equal the
    # quadratic of log p(y | s) less RSS / s^2 (times s): ||y - Phi m_N||^2 / s^2 + (m_N - m0)^T S0^-1 (m_N - m0) =
    # (RSS + R33^2) / s^2, a sum of terms >= 0. R33 is read from the shorter target, whose rounding is the smaller.
    n, x_mean, sxx = line.n, line.x_mean, line.centred_sxx
    count = log_noise.size
    root_n, root_sxx = math.sqrt(n), math.sqrt(sxx)
    noise = np.exp(log_noise)
    scaled_prior = np.exp(log_noise[:, None] - 0.5 * log_prior_var)  # s / s0, (K, 2)
    to_prior = prior_mean - line.least_squares
    prior_line_gap = line.y_mean - prior_mean[1] - x_mean * prior_mean[0]  # height of theta_LS - m0 at x_mean
    rows = np.zeros((count, 4, 2))
    rows[:, 0, 0] = root_sxx
    rows[:, 1, 0], rows[:, 1, 1] = root_n * x_mean, root_n
    rows[:, 2, 0], rows[:, 3, 1] = scaled_prior[:, 0], scaled_prior[:, 1]
    to_mean_from_prior = np.zeros((count, 4))
    to_mean_from_prior[:, 0], to_mean_from_prior[:, 1] = -root_sxx * to_prior[0], root_n * prior_line_gap
    to_mean_from_line = np.zeros((count, 4))
    to_mean_from_line[:, 2:] = scaled_prior * to_prior
    upper_prior = qr_upper(np.concatenate([rows, to_mean_from_prior[:, :, None]], axis=2))
    upper_line = qr_upper(np.concatenate([rows, to_mean_from_line[:, :, None]], axis=2))
    a, b, c = upper_prior[:, 0, 0], upper_prior[:, 0, 1], upper_prior[:, 1, 1]

    def solve(upper: np.ndarray) -> np.ndarray:
        """R^-1 (Q^T target) for the target in the last column of `upper`, shape (K, 2)."""
        second = upper[:, 1, 2] / upper[:, 1, 1]
        return np.stack([(upper[:, 0, 2] - upper[:, 0, 1] * second) / upper[:, 0, 0], second], axis=1)

    from_prior, from_least_squares = solve(upper_prior), solve(upper_line)
    shorter = np.linalg.norm(to_mean_from_prior, axis=1) <= np.linalg.norm(to_mean_from_line, axis=1)
    residual = np.where(shorter, upper_prior[:, 2, 2], upper_line[:, 2, 2])
    # S_N = s^2 R^-1 R^-T with s R^-1 = [[s / a, -(s / a)(b / c)], [0, s / c]].
    factor = np.zeros((count, 2, 2))
    factor[:, 0, 0] = noise / a
    factor[:, 0, 1] = -factor[:, 0, 0] * (b / c)
    factor[:, 1, 1] = noise / c
    cov = factor @ np.transpose(factor, (0, 2, 1))
    log_det_precision = 2.0 * (np.log(np.abs(a)) + np.log(np.abs(c))) - 4.0 * log_noise
    with np.errstate(over="ignore"):  # a residual too large for float64 at this s: its mass is 0, log p(y | s) = -inf
        quad = line.rss * np.exp(-2.0 * log_noise) + (residual / noise) ** 2
    log_det_c = 2.0 * n * log_noise + log_prior_var.sum(axis=1) + log_det_precision
    log_evidence = -0.5 * (n * LOG_2PI + log_det_c + quad)
    return from_least_squares, from_prior, cov, log_evidence


def _noise_grid(
    evaluate: Callable[[np.ndarray], tuple[np.ndarray, ...]], start: float, points: int, on_a_line: bool
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """log s grid (points,) over all of p(log s | y) and s^2 p(log s | y) within LOG_DENSITY_DROP of their peaks, and
    `evaluate` (first output log p(log s, y)) on it (docs/MATH.md, Unknown noise sd)."""
    # A coarse scan from `start` widens each side that still holds mass, up to NOISE_SD_LIMITS, so the peak is found
    # wherever it lies, also when the least-squares residual is 0 (n = 2, data on a line). The grid is then re-sampled
    # on the part of the last one within LOG_DENSITY_DROP of the peak (SEARCH_POINTS while that part is narrower than
    # half the grid, then `points`) until it fills the grid. s^2 p(log s | y) is covered too: E[s^2] and E[S_N(s)],
    # which grows like s^2, read a heavy upper tail (like s^-(n - 3) per unit of log s) further out than p does.
    lowest, highest = (math.log(limit) for limit in NOISE_SD_LIMITS)
    low, high = max(start - SCAN_HALF_WIDTH, lowest), min(start + SCAN_HALF_WIDTH, highest)
    while True:
        log_noise = np.linspace(low, high, max(math.ceil((high - low) / SCAN_STEP) + 1, 3))
        result = evaluate(log_noise)
        relative = _relative_log_mass(log_noise, result[0])
        low_open, high_open = relative[0] > -LOG_DENSITY_DROP, relative[-1] > -LOG_DENSITY_DROP
        if not (low_open or high_open):
            break
        if (low_open and low <= lowest) or (high_open and high >= highest):
            raise ConfigError("noise_prior", _improper_message(low_open and low <= lowest, on_a_line))
        width = high - low
        low = max(low - width, lowest) if low_open else low
        high = min(high + width, highest) if high_open else high
    for _ in range(MAX_REFINEMENTS):
        kept = np.flatnonzero(relative > -LOG_DENSITY_DROP)
        low, high = log_noise[max(kept[0] - 1, 0)], log_noise[min(kept[-1] + 1, log_noise.size - 1)]
        fills = high - low >= 0.5 * (log_noise[-1] - log_noise[0])
        if fills and log_noise.size == points:
            return log_noise, result
        log_noise = np.linspace(low, high, points if fills else SEARCH_POINTS)
        result = evaluate(log_noise)
        relative = _relative_log_mass(log_noise, result[0])
    raise ArithmeticError(f"the grid of s did not settle on the peak of p(s | y) in {MAX_REFINEMENTS} re-samplings")


def _relative_log_mass(log_noise: np.ndarray, log_mass: np.ndarray) -> np.ndarray:
    """Elementwise the larger of log p(log s | y) and log s^2 p(log s | y), each less its own peak (<= 0)."""
    if np.isnan(log_mass).any() or not np.isfinite(log_mass.max()):
        raise ArithmeticError(f"log p(s | y) is not finite on the grid of s (largest value {log_mass.max()!r})")
    tilted = log_mass + 2.0 * log_noise
    return np.maximum(log_mass - log_mass.max(), tilted - tilted.max())


def _improper_message(at_zero: bool, on_a_line: bool) -> str:
    """Why p(s | y) cannot be normalised on the range of s searched."""
    if at_zero and on_a_line:
        return (
            "gives no proper posterior of s: the data lie on a straight line, so p(s | y) keeps rising as s goes to 0. "
            "Choose the log-normal or inverse-gamma prior on the noise sd."
        )
    side = f"below s = {NOISE_SD_LIMITS[0]:g}" if at_zero else f"above s = {NOISE_SD_LIMITS[1]:g}"
    return f"leaves posterior mass of s {side}, beyond the range the quadrature covers. Choose another prior."


def noise_sd_posterior(
    dataset: Dataset,
    model: Model,
    points: int = DEFAULT_NOISE_POINTS,
    *,
    prior_scales_with_noise: bool = False,
) -> NoiseSdPosterior:
    """Exact reference for unknown s by quadrature: p(s|y) ∝ p(s) N(y | Phi m0, s^2 I + Phi S0 Phi^T) (docs/MATH.md).

    theta ~ N(m0, S0) independently of s with S0 = diag(prior.sd^2); with `prior_scales_with_noise` instead
    theta | s ~ N(m0, s^2 S0), the Normal-Inverse-Gamma model's conditional prior. s's prior is model.noise_prior.
    The grid of `points` log-spaced s covers where p(s | y) has mass; theta's covariance is the law of total
    covariance, E[S_N(s)] + Cov(m_N(s)), the second from deviations of m_N(s) from their mean (docs/MATH.md, Unknown
    noise
    sd). Raises ConfigError("noise_prior") when p(s | y) cannot be normalised (a half-normal prior and data on a line).
    """
    if not model.prior.is_gaussian:
        raise ConfigError(
            "prior", f"must be Gaussian for the quadrature (use grid.grid_posterior_with_noise), got {model.prior!r}"
        )
    points = check_int("points", points, 64, 200_001)
    line = _LineFit.of(dataset)
    prior_mean = model.prior.mean
    log_prior_var = 2.0 * np.log(model.prior.sd)

    def evaluate(log_noise: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """log p(log s, y), m_N(s) - theta_LS, m_N(s) - m0 and S_N(s) on the grid of log s."""
        log_var = np.broadcast_to(log_prior_var, (log_noise.size, 2))
        if prior_scales_with_noise:
            log_var = log_var + 2.0 * log_noise[:, None]
        from_least_squares, from_prior, covs, log_lik = _conditional_posteriors(line, prior_mean, log_var, log_noise)
        # Weights over u = log s: p(s) s p(y | s) du.
        log_mass = model.noise_prior.log_density(np.exp(log_noise)) + log_noise + log_lik
        return log_mass, from_least_squares, from_prior, covs

    spread = math.sqrt(line.rss / line.n) if line.rss > 0 else float(np.std(dataset.y)) or 1.0
    log_noise, (log_mass, from_least_squares, from_prior, covs) = _noise_grid(
        evaluate, math.log(spread), points, line.rss == 0.0
    )
    noise_sd = np.exp(log_noise)
    peak = float(log_mass.max())
    mass = np.exp(log_mass - peak)
    weights = mass / mass.sum()
    log_evidence = peak + math.log(mass.sum() * (log_noise[1] - log_noise[0]))
    # m_N(s) = theta_LS + e(s) = m0 + f(s): mix the smaller of the two, so deviations keep their digits.
    if np.abs(from_prior).max() <= np.abs(from_least_squares).max():
        base, offsets = prior_mean, from_prior
    else:
        base, offsets = line.least_squares, from_least_squares
    mean_offset = weights @ offsets
    deviations = offsets - mean_offset
    cov = np.einsum("k,kij->ij", weights, covs) + np.einsum("k,ki,kj->ij", weights, deviations, deviations)
    noise_mean = float(weights @ noise_sd)
    noise_sd_sd = math.sqrt(float(weights @ (noise_sd - noise_mean) ** 2))
    return NoiseSdPosterior(
        noise_sd, weights, Gaussian(base + mean_offset, 0.5 * (cov + cov.T)), noise_mean, noise_sd_sd, log_evidence
    )
