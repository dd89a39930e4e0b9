"""Sequential Bayesian updating: the posterior after the first k points, one point at a time (PRML 3.3.1)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import numpy as np

from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import Gaussian, SufficientStats, design_matrix, gaussian_posterior_from_stats, qr_upper
from bayesdemo.core.priors import GaussianPrior, Model
from bayesdemo.core.validation import ConfigError, check_int, check_range
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
    chain = [posterior_after(dataset, model, 0)]
    state = InformationForm.of_prior(_gaussian_prior(model))
    for index in range(k):
        state = state.updated(dataset.x[index], dataset.y[index], model.noise_sd)
        chain.append(state.gaussian)
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
    """Bayes by Backprop's final q (docs/MATH.md) on the first k >= 2 points: near their mean-field optimum."""
    k = check_int("k", k, 2, dataset.n)
    first = Dataset(dataset.x[:k], dataset.y[:k], source=f"{dataset.source}, first {k}")
    fit = FitConfig(method="bbb", samples=config.samples, seed=config.seed, steps=config.steps)
    run = run_to_end(make_method(first, model, fit), config.steps, RunConfig(snapshot_every=config.steps))
    # A run records its starting snapshot before its first step, so a finished run always has a last one.
    return cast(Snapshot, run.last).gaussian
