"""Sequential Bayesian updating: the posterior after the first k points (PRML 3.3.1), its lines, and a VI fit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import Gaussian, SufficientStats, design_matrix, gaussian_posterior_from_stats
from bayesdemo.core.priors import GaussianPrior, Model
from bayesdemo.core.validation import ConfigError, check_int
from bayesdemo.fitting.runner import RunConfig, Snapshot, run_to_end
from bayesdemo.methods import FitConfig, make_method

MAX_LINE_DRAWS = 200  # most lines drawn from one posterior


def _gaussian_prior(model: Model) -> GaussianPrior:
    """The model's prior, which the conjugate update needs to be a GaussianPrior."""
    if not isinstance(model.prior, GaussianPrior):
        raise ConfigError("prior", f"must be a GaussianPrior for the conjugate update, got {model.prior!r}")
    return model.prior


def posterior_after(dataset: Dataset, model: Model, k: int) -> Gaussian:
    """N(m_k, S_k) of (slope, intercept) after the first k points (k = 0: the prior), PRML 3.49-3.51."""
    k = check_int("k", k, 0, dataset.n)
    prior = _gaussian_prior(model)
    stats = SufficientStats.of_design(design_matrix(dataset.x[:k]), dataset.y[:k])
    return gaussian_posterior_from_stats(stats, prior.mean, prior.sd, model.noise_sd).posterior


def line_draws(gaussian: Gaussian, count: int = 20, seed: int = 0) -> np.ndarray:
    """`count` (slope, intercept) draws from the Gaussian, seeded, shape (count, 2): the lines the posterior allows."""
    count = check_int("count", count, 1, MAX_LINE_DRAWS)
    rng = np.random.default_rng(check_int("seed", seed, 0, 2**32 - 1))
    return gaussian.mean + rng.standard_normal((count, 2)) @ np.linalg.cholesky(gaussian.cov).T


@dataclass(frozen=True)
class SequentialFitConfig:
    """The VI fit shown beside the exact update: Bayes by Backprop run to near convergence on the first k points."""

    steps: int = 1500  # Adam steps per k
    samples: int = 16  # Monte-Carlo samples per step: 16 settle where 1 keeps jittering (docs/performance.md)
    seed: int = 0  # seed of every fit (one per k)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", check_int("steps", self.steps, 1, 100_000))
        object.__setattr__(self, "samples", check_int("samples", self.samples, 1, 1024))
        object.__setattr__(self, "seed", check_int("seed", self.seed, 0, 2**32 - 1))


def vi_fit_after(
    dataset: Dataset, model: Model, k: int, config: SequentialFitConfig = SequentialFitConfig()
) -> Gaussian:
    """Bayes by Backprop's final q (docs/MATH.md) on the first k >= 2 points: near their mean-field optimum."""
    k = check_int("k", k, 2, dataset.n)
    first = Dataset(dataset.x[:k], dataset.y[:k], source=f"{dataset.source}, first {k}")
    fit = FitConfig(method="bbb", samples=config.samples, seed=config.seed, steps=config.steps)
    run = run_to_end(make_method(first, model, fit), config.steps, RunConfig(snapshot_every=config.steps))
    # A run records its starting snapshot before its first step, so a finished run always has a last one.
    return cast(Snapshot, run.last).gaussian
