"""Sequential Bayesian updating: the posterior after the first k points, one point at a time (PRML 3.3.1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesdemo.data import Dataset
from bayesdemo.exact import Gaussian, SufficientStats, design_matrix, gaussian_posterior_from_stats
from bayesdemo.methods.base import FitConfig, make_method
from bayesdemo.priors import GaussianPrior, Model
from bayesdemo.runner import RunConfig, run_to_end
from bayesdemo.validation import ConfigError, check_int, check_range

MAX_LINE_DRAWS = 200  # most lines drawn from one posterior


def posterior_after(dataset: Dataset, model: Model, k: int) -> Gaussian:
    """N(m_k, S_k) of (slope, intercept) after the first k points (k = 0: the prior), PRML 3.49-3.51."""
    k = check_int("k", k, 0, dataset.n)
    if not isinstance(model.prior, GaussianPrior):
        raise ConfigError("prior", f"must be a GaussianPrior for the conjugate update, got {model.prior!r}")
    stats = SufficientStats.of_design(design_matrix(dataset.x[:k]), dataset.y[:k])
    return gaussian_posterior_from_stats(stats, model.prior.mean, model.prior.sd, model.noise_sd).posterior


def update_one_point(previous: Gaussian, x: float, y: float, noise_sd: float) -> Gaussian:
    """Yesterday's posterior as prior: L' = L + phi phi^T / s^2, m' = S' (L m + phi y / s^2) (PRML 3.49-3.51)."""
    check_range("noise_sd", noise_sd, 0.0, 1e6, low_open=True)
    check_range("x", x, -1e12, 1e12)
    check_range("y", y, -1e12, 1e12)
    phi = np.array([float(x), 1.0])
    previous_precision = np.linalg.inv(previous.cov)
    precision = previous_precision + np.outer(phi, phi) / noise_sd**2
    chol = np.linalg.cholesky(precision)
    inverse_chol = np.linalg.solve(chol, np.eye(2))
    cov = inverse_chol.T @ inverse_chol
    mean = cov @ (previous_precision @ previous.mean + phi * float(y) / noise_sd**2)
    return Gaussian(mean, 0.5 * (cov + cov.T))


def posteriors_one_at_a_time(dataset: Dataset, model: Model, k: int) -> list[Gaussian]:
    """[prior, after 1 point, ..., after k points], each update using only the previous posterior and one point."""
    k = check_int("k", k, 0, dataset.n)
    chain = [posterior_after(dataset, model, 0)]
    for index in range(k):
        chain.append(update_one_point(chain[-1], dataset.x[index], dataset.y[index], model.noise_sd))
    return chain


def line_draws(gaussian: Gaussian, count: int = 20, seed: int = 0) -> np.ndarray:
    """`count` (slope, intercept) draws from the Gaussian, seeded, shape (count, 2): the lines the posterior allows."""
    count = check_int("count", count, 1, MAX_LINE_DRAWS)
    rng = np.random.default_rng(check_int("seed", seed, 0, 2**32 - 1))
    return gaussian.mean + rng.standard_normal((count, 2)) @ np.linalg.cholesky(gaussian.cov).T


@dataclass(frozen=True)
class SequentialFitConfig:
    """The VI fit shown beside the exact update: Bayes by Backprop run to near convergence on the first k points."""

    steps: int = 1500  # Adam steps per k (about 0.4 s of plain torch BBB)
    samples: int = 16  # Monte-Carlo samples per step (16 converge where 1 keeps wandering, DESIGN.md)
    seed: int = 0  # seed of every fit (one per k)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", check_int("steps", self.steps, 1, 100_000))
        object.__setattr__(self, "samples", check_int("samples", self.samples, 1, 1024))
        object.__setattr__(self, "seed", check_int("seed", self.seed, 0, 2**32 - 1))


def vi_fit_after(
    dataset: Dataset, model: Model, k: int, config: SequentialFitConfig = SequentialFitConfig()
) -> Gaussian:
    """Bayes by Backprop's final q (MATH.md) on the first k >= 2 points: near their mean-field optimum."""
    k = check_int("k", k, 2, dataset.n)
    first = Dataset(dataset.x[:k], dataset.y[:k], source=f"{dataset.source}, first {k}")
    fit = FitConfig(method="bbb", samples=config.samples, seed=config.seed, steps=config.steps)
    run = run_to_end(make_method(first, model, fit), fit.steps, RunConfig(snapshot_every=fit.steps))
    return run.last.gaussian
