"""Exact reference for any prior by grid integration of the log joint (MATH.md, Non-Gaussian priors).

Two parameters with known noise: a coarse 2-D grid spanning both the Gaussian-approximation posterior and the
likelihood alone (a misplaced heavy-tailed prior puts the posterior anywhere between them), then grids recentred on the
previous grid's moments; three with unknown noise: a theta grid times a log-spaced grid of the noise sd s.
Normalised with logsumexp; the Riemann sum of a smooth, decaying density on a uniform grid is spectrally accurate,
so 256 points over +-10 sds match closed forms to ~1e-10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bayesdemo.data import Dataset
from bayesdemo.exact import LOG_2PI, Gaussian, SufficientStats, exact_posterior
from bayesdemo.priors import GaussianPrior, Model, Prior
from bayesdemo.validation import check_int, check_range

DEFAULT_POINTS = 256  # grid points per theta axis (MATH.md asks for >= 256)
DEFAULT_HALF_WIDTH = 10.0  # half-width of each theta axis in Gaussian-approximation posterior sds
REFINEMENTS = 3  # grids recentred on the previous grid's moments after the coarse one
VAGUE_PRIOR_SD = 1e6  # prior sd standing in for a flat prior: the posterior under it is the likelihood alone


def _logsumexp(values: np.ndarray) -> float:
    """log sum exp(values), stable."""
    peak = float(np.max(values))
    return peak + math.log(float(np.sum(np.exp(values - peak))))


def residual_sum_of_squares(stats: SufficientStats, slopes: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
    """||y - slope x - intercept||^2 at each (slope, intercept), from the sufficient statistics; broadcasts."""
    ptp, pty = stats.phi_t_phi, stats.phi_t_y
    return (
        stats.y_t_y
        - 2.0 * (slopes * pty[0] + intercepts * pty[1])
        + slopes**2 * ptp[0, 0]
        + 2.0 * slopes * intercepts * ptp[0, 1]
        + intercepts**2 * ptp[1, 1]
    )


def gaussian_approximation(dataset: Dataset, model: Model) -> Gaussian:
    """Conjugate posterior under the moment-matched Gaussian prior: where the grid is centred (PRML 3.49-3.51)."""
    return exact_posterior(dataset, model).posterior


def theta_axes(centre: Gaussian, points: int, half_width_sds: float) -> tuple[np.ndarray, np.ndarray]:
    """Uniform slope and intercept axes, each centre +- half_width_sds of its sd, `points` long."""
    offsets = np.linspace(-half_width_sds, half_width_sds, points)
    return centre.mean[0] + offsets * centre.sd[0], centre.mean[1] + offsets * centre.sd[1]


def covering_axes(windows: list[Gaussian], points: int, half_width_sds: float) -> tuple[np.ndarray, np.ndarray]:
    """Uniform slope and intercept axes covering every window's mean +- half_width_sds of its sd, `points` long."""
    low = np.min([w.mean - half_width_sds * w.sd for w in windows], axis=0)
    high = np.max([w.mean + half_width_sds * w.sd for w in windows], axis=0)
    return np.linspace(low[0], high[0], points), np.linspace(low[1], high[1], points)


def prior_windows(dataset: Dataset, model: Model) -> list[Gaussian]:
    """Conjugate posteriors under each Gaussian window of the prior (every mixture component pairing, PRML 3.49-3.51):
    a narrow component's posterior is where the grid must look to find its spike."""
    prior = Prior.of(model.prior)
    return [
        exact_posterior(
            dataset, Model(GaussianPrior(prior.slope.location, slope_sd, prior.intercept.location, sd), model.noise_sd)
        ).posterior
        for slope_sd in prior.slope.gaussian_windows
        for sd in prior.intercept.gaussian_windows
    ]


def likelihood_alone(dataset: Dataset, model: Model) -> Gaussian:
    """The posterior under a vague Gaussian prior: where the data alone put theta (PRML 3.49-3.51)."""
    vague = GaussianPrior(0.0, VAGUE_PRIOR_SD, 0.0, VAGUE_PRIOR_SD)
    return exact_posterior(dataset, Model(vague, model.noise_sd)).posterior


@dataclass(frozen=True)
class GridPosterior:
    """The posterior of theta on a grid: axes (P,), normalised cell probabilities (P, P), moments, log evidence."""

    slope_axis: np.ndarray  # (P,) slope values
    intercept_axis: np.ndarray  # (P,) intercept values
    probabilities: np.ndarray  # (P, P) posterior mass of each cell, summing to 1 (slope index first)
    mean: np.ndarray  # (2,) posterior mean of (slope, intercept)
    cov: np.ndarray  # (2, 2) posterior covariance
    log_evidence: float  # log p(y)

    @property
    def sd(self) -> np.ndarray:
        """Marginal posterior sds, shape (2,)."""
        return np.sqrt(np.diag(self.cov))

    @property
    def corr(self) -> float:
        """Posterior correlation of slope and intercept."""
        return float(self.cov[0, 1] / (self.sd[0] * self.sd[1]))

    @property
    def gaussian(self) -> Gaussian:
        """The moment-matched Gaussian N(mean, cov) of the grid posterior."""
        return Gaussian(self.mean, self.cov)

    def marginal_densities(self) -> tuple[np.ndarray, np.ndarray]:
        """Marginal posterior densities of slope and intercept on their axes, each (P,)."""
        slope_step = self.slope_axis[1] - self.slope_axis[0]
        intercept_step = self.intercept_axis[1] - self.intercept_axis[0]
        return self.probabilities.sum(axis=1) / slope_step, self.probabilities.sum(axis=0) / intercept_step


def _moments(
    log_mass: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised probabilities (same shape as log_mass), mean (2,) and covariance (2, 2) over the theta axes."""
    probabilities = np.exp(log_mass - _logsumexp(log_mass))
    theta_mass = probabilities if probabilities.ndim == 2 else probabilities.sum(axis=2)
    mean = np.array([(theta_mass * slopes).sum(), (theta_mass * intercepts).sum()])
    ds, di = slopes - mean[0], intercepts - mean[1]
    cov_si = (theta_mass * ds * di).sum()
    cov = np.array([[(theta_mass * ds**2).sum(), cov_si], [cov_si, (theta_mass * di**2).sum()]])
    return probabilities, mean, cov


def _grid_on_axes(
    stats: SufficientStats, model: Model, slope_axis: np.ndarray, intercept_axis: np.ndarray
) -> GridPosterior:
    """The normalised log joint on the given axes: cell probabilities, moments and log evidence."""
    slopes, intercepts = np.meshgrid(slope_axis, intercept_axis, indexing="ij")
    s2 = model.noise_sd**2
    log_lik = -0.5 * stats.n * (LOG_2PI + math.log(s2)) - residual_sum_of_squares(stats, slopes, intercepts) / (2 * s2)
    log_joint = log_lik + Prior.of(model.prior).log_density(np.stack([slopes, intercepts], axis=-1))
    cell = (slope_axis[1] - slope_axis[0]) * (intercept_axis[1] - intercept_axis[0])
    probabilities, mean, cov = _moments(log_joint, slopes, intercepts)
    return GridPosterior(slope_axis, intercept_axis, probabilities, mean, cov, _logsumexp(log_joint) + math.log(cell))


def grid_posterior(
    dataset: Dataset, model: Model, points: int = DEFAULT_POINTS, half_width_sds: float = DEFAULT_HALF_WIDTH
) -> GridPosterior:
    """Posterior of theta under any prior and known noise by 2-D grid integration (MATH.md, Non-Gaussian priors).

    Starts: one grid covering the Gaussian approximation, each mixture component's conjugate posterior and the
    likelihood alone, and one grid on each of them (a spike of a prior is narrower than the covering grid's cells).
    Each refinement spans the previous grid's mean +- half_width_sds of its sd (at least one previous cell wide).
    The refined grid holding the most mass, i.e. the largest evidence, is the answer.
    """
    points = check_int("points", points, 16, 4096)
    half_width_sds = check_range("half_width_sds", half_width_sds, 1.0, 100.0)
    stats = SufficientStats.of(dataset)
    windows = [gaussian_approximation(dataset, model), *prior_windows(dataset, model), likelihood_alone(dataset, model)]
    starts = [covering_axes(windows, points, half_width_sds)] + [theta_axes(w, points, half_width_sds) for w in windows]
    refined = [_refine(stats, model, start, points, half_width_sds) for start in starts]
    return max(refined, key=lambda grid: grid.log_evidence)


def _refine(
    stats: SufficientStats, model: Model, axes: tuple[np.ndarray, np.ndarray], points: int, half_width_sds: float
) -> GridPosterior:
    """The grid on `axes`, then REFINEMENTS grids each centred on the previous one's moments."""
    grid = _grid_on_axes(stats, model, *axes)
    for _ in range(REFINEMENTS):
        cells = np.array([grid.slope_axis[1] - grid.slope_axis[0], grid.intercept_axis[1] - grid.intercept_axis[0]])
        window = Gaussian.diagonal(grid.mean, np.maximum(grid.sd, cells))
        grid = _grid_on_axes(stats, model, *theta_axes(window, points, half_width_sds))
    return grid


@dataclass(frozen=True)
class GridPosteriorWithNoise:
    """theta and the noise sd s on a 3-D grid: theta moments, s moments, log evidence (MATH.md, Unknown noise sd)."""

    theta: GridPosterior  # theta's posterior with s integrated out (probabilities summed over s)
    noise_sd_axis: np.ndarray  # (K,) log-spaced s values
    noise_sd_probabilities: np.ndarray  # (K,) posterior mass of each s cell
    noise_sd_mean: float  # E[s | y]
    noise_sd_sd: float  # sd[s | y]


def grid_posterior_with_noise(
    dataset: Dataset,
    model: Model,
    noise_sd_range: tuple[float, float],
    points: int = 128,
    noise_points: int = 256,
    half_width_sds: float = DEFAULT_HALF_WIDTH,
) -> GridPosteriorWithNoise:
    """Brute-force 3-D grid over (slope, intercept, log s) for any prior on theta and on s; s in noise_sd_range."""
    low, high = (check_range("noise_sd_range", value, 0.0, 1e6, low_open=True) for value in noise_sd_range)
    if not high > low:
        raise ValueError(f"noise_sd_range must be increasing, got {noise_sd_range!r}")
    stats = SufficientStats.of(dataset)
    widest = gaussian_approximation(dataset, Model(model.prior, high))
    slope_axis, intercept_axis = theta_axes(widest, points, half_width_sds)
    slopes, intercepts = np.meshgrid(slope_axis, intercept_axis, indexing="ij")
    log_noise = np.linspace(math.log(low), math.log(high), noise_points)
    noise_sd = np.exp(log_noise)
    rss = residual_sum_of_squares(stats, slopes, intercepts)[..., None]
    log_lik = -0.5 * stats.n * LOG_2PI - stats.n * log_noise - rss / (2.0 * noise_sd**2)
    # Density over log s: p(s) * s (the Jacobian of s = exp(u)).
    log_noise_prior = model.noise_prior.log_density(noise_sd) + log_noise
    log_theta_prior = Prior.of(model.prior).log_density(np.stack([slopes, intercepts], axis=-1))[..., None]
    log_joint = log_lik + log_noise_prior + log_theta_prior
    cell = (slope_axis[1] - slope_axis[0]) * (intercept_axis[1] - intercept_axis[0]) * (log_noise[1] - log_noise[0])
    log_evidence = _logsumexp(log_joint) + math.log(cell)
    probabilities, mean, cov = _moments(log_joint, slopes, intercepts)
    theta = GridPosterior(slope_axis, intercept_axis, probabilities.sum(axis=2), mean, cov, log_evidence)
    noise_mass = probabilities.sum(axis=(0, 1))
    noise_mean = float(noise_mass @ noise_sd)
    noise_sd_sd = math.sqrt(max(float(noise_mass @ (noise_sd - noise_mean) ** 2), 0.0))
    return GridPosteriorWithNoise(theta, noise_sd, noise_mass, noise_mean, noise_sd_sd)
