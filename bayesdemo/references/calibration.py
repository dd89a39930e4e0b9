"""Checking inference by simulation (docs/MATH.md, Checking inference; Talts et al. 2018): coverage and SBC ranks.

Draw theta from the prior, simulate y with the known noise sd, fit, and ask how often the central intervals of the
fitted Gaussian contain the true theta, and where theta ranks among the fit's own draws. Exact inference covers at
the nominal rate and ranks uniformly; the mean-field optimum under-covers when the posterior is correlated: at level
l its coverage is 2 Phi(z_l sqrt(1 - rho^2)) - 1, 0.26 and 0.57 at 50% and 90% on the Pyro tutorial's 100 points
(rho = -0.875; 0.59 is the large-n limit for x ~ U(0, 1)) (docs/MATH.md, Checking inference). A trained fit counts only
where it reached its target (metrics.convergence): an unconverged fit's coverage says nothing about the method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import cast

import numpy as np

from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import Gaussian, design_matrix, exact_posterior
from bayesdemo.core.priors import GaussianPrior, Model
from bayesdemo.core.validation import ConfigError, check_int, check_range
from bayesdemo.fitting.metrics import convergence, target_for
from bayesdemo.fitting.runner import Run, RunConfig, Snapshot
from bayesdemo.methods import FitConfig, make_method
from bayesdemo.methods.base import SettablePosterior

MAX_DATASETS = 100_000  # most simulated datasets
MAX_POINTS = 100_000  # most points per simulated dataset
MAX_RANK_DRAWS = 10_000  # most posterior draws per dataset for SBC ranks
START_SD = 0.049  # a warm-started fit's first sds: softplus(-3), Bayes by Backprop's own start
CHECK_EVERY = 250  # steps between convergence checks of a fit run until at target
SNAPSHOT_EVERY = 10  # steps between the snapshots the convergence rule averages


@dataclass(frozen=True)
class FitOutcome:
    """A trained fit's q, where it stands against its target (metrics.convergence status), and its steps."""

    q: Gaussian
    status: str  # one of metrics.FIT_STATUSES: "at_target", "still_moving", "far_from_target"
    steps: int


Fit = Callable[[Dataset], Gaussian | FitOutcome]  # a trained method: dataset -> its q (and its status)


@dataclass(frozen=True)
class CalibrationConfig:
    """How to check inference: how many simulated datasets, of what size and x, which intervals, how many draws."""

    datasets: int = 200  # K datasets, each with its own theta drawn from the prior
    n: int = 20  # data points per dataset
    levels: tuple[float, ...] = (0.5, 0.9)  # probabilities of the central intervals whose coverage is measured
    x_min: float = 0.0  # lower end of the uniform x range
    x_max: float = 1.0  # upper end of the uniform x range (x in [0, 1] correlates slope and intercept)
    fixed_x: bool = True  # True: one x drawn once and shared by every dataset; False: fresh x for each dataset
    rank_draws: int = 99  # L posterior draws per dataset for SBC ranks; ranks take the L + 1 values 0..L
    seed: int = 0  # seed of the simulation's own generators (theta, x, y, and the rank draws)

    def __post_init__(self) -> None:
        object.__setattr__(self, "datasets", check_int("datasets", self.datasets, 2, MAX_DATASETS))
        object.__setattr__(self, "n", check_int("n", self.n, 2, MAX_POINTS))
        levels = tuple(check_range("levels", level, 0.0, 1.0, low_open=True) for level in self.levels)
        if not levels or any(level >= 1.0 for level in levels) or len(set(levels)) != len(levels):
            raise ConfigError("levels", f"must be distinct probabilities strictly between 0 and 1, got {self.levels!r}")
        object.__setattr__(self, "levels", levels)
        check_range("x_min", self.x_min, -1e6, 1e6)
        check_range("x_max", self.x_max, -1e6, 1e6)
        if not self.x_max > self.x_min:
            raise ConfigError("x_max", f"must be > x_min ({self.x_min!r}), got {self.x_max!r}")
        if not isinstance(self.fixed_x, bool):
            raise ConfigError("fixed_x", f"must be True or False, got {self.fixed_x!r}")
        object.__setattr__(self, "rank_draws", check_int("rank_draws", self.rank_draws, 1, MAX_RANK_DRAWS))
        object.__setattr__(self, "seed", check_int("seed", self.seed, 0, 2**32 - 1))


def interval_half_width(level: float) -> float:
    """z with P(|Z| <= z) = level: a Gaussian's central `level` interval is mean +- z sd."""
    return NormalDist().inv_cdf(0.5 + level / 2.0)


@dataclass(frozen=True)
class MethodCalibration:
    """One method's coverage per interval level and its SBC ranks, over the K simulated datasets."""

    name: str  # "exact", "mean_field", or the callback's name
    levels: tuple[float, ...]  # nominal coverages of the central intervals
    covered: np.ndarray  # (K, levels, 2) bool: did the interval at that level contain the true slope / intercept
    ranks: np.ndarray  # (K, 2) SBC rank of the true theta among L draws of q, in 0..L
    rank_draws: int  # L
    statuses: tuple[str, ...] | None = None  # (K,) each fit's metrics.convergence status; None: a closed form

    @property
    def coverage(self) -> np.ndarray:
        """Fraction of datasets covered, (levels, 2); exact inference gives the nominal level."""
        return self.covered.mean(axis=0)

    @property
    def at_target(self) -> np.ndarray:
        """(K,) bool: the fits that reached their target (every dataset for a closed form)."""
        if self.statuses is None:
            return np.ones(self.covered.shape[0], dtype=bool)
        return np.array([status == "at_target" for status in self.statuses], dtype=bool)

    @property
    def datasets_at_target(self) -> int:
        """How many of the K fits reached their target."""
        return int(self.at_target.sum())

    @property
    def coverage_at_target(self) -> np.ndarray:
        """Fraction covered over the fits that reached their target, (levels, 2); NaN when none did."""
        if not self.datasets_at_target:
            return np.full(self.covered.shape[1:], np.nan)
        return self.covered[self.at_target].mean(axis=0)

    @property
    def datasets(self) -> int:
        """K, the number of simulated datasets."""
        return int(self.covered.shape[0])

    def coverage_standard_error(self) -> np.ndarray:
        """Binomial standard error sqrt(l (1 - l) / K) of a coverage at each nominal level l, (levels,)."""
        levels = np.asarray(self.levels)
        return np.sqrt(levels * (1.0 - levels) / self.datasets)

    def rank_histogram(self, bins: int = 10) -> np.ndarray:
        """Counts of the ranks in `bins` equal-probability bins per parameter, (bins, 2); needs bins | L + 1."""
        values = self.rank_draws + 1
        check_int("bins", bins, 2, values)
        if values % bins:
            raise ConfigError("bins", f"must divide the {values} possible ranks (rank_draws + 1), got {bins}")
        index = self.ranks * bins // values
        return np.stack([np.bincount(index[:, j], minlength=bins) for j in range(2)], axis=1)


@dataclass(frozen=True)
class CalibrationResult:
    """Simulation-based calibration of the exact posterior, the mean-field optimum and optionally a trained fit."""

    config: CalibrationConfig
    model: Model
    true_theta: np.ndarray  # (K, 2) the (slope, intercept) each dataset was simulated from
    shared_x: np.ndarray | None  # (n,) the inputs every dataset shared, or None when x was drawn per dataset
    methods: dict[str, MethodCalibration]  # "exact", "mean_field", and the callback's name when given


def _simulate_x(config: CalibrationConfig, rng: np.random.Generator) -> np.ndarray:
    """n inputs from U(x_min, x_max)."""
    return rng.uniform(config.x_min, config.x_max, size=config.n)


def _evaluate(q: Gaussian, theta: np.ndarray, z: np.ndarray, eps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coverage indicators (levels, 2) of q's central intervals and SBC ranks (2,) of theta among draws of q."""
    sd = q.sd
    covered = np.abs(theta - q.mean)[None, :] <= z[:, None] * sd[None, :]
    draws = q.mean + eps @ np.linalg.cholesky(q.cov).T
    return covered, np.sum(draws < theta, axis=0)


def calibrate(
    model: Model,
    config: CalibrationConfig = CalibrationConfig(),
    fit: Fit | None = None,
    *,
    fit_name: str = "fit",
    x: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CalibrationResult:
    """Coverage and SBC ranks over K datasets with theta ~ prior and y ~ N(slope x + intercept, s^2) (docs/MATH.md).

    `x` (n,) replaces the simulated inputs for every dataset; `fit` adds a trained method (returning a FitOutcome,
    its statuses are kept); `progress(done, K)` is called after each dataset.
    """
    if not isinstance(model.prior, GaussianPrior):
        raise ConfigError("prior", f"must be a GaussianPrior for the conjugate reference, got {model.prior!r}")
    if fit_name in ("exact", "mean_field"):
        raise ConfigError("fit_name", f"must differ from 'exact' and 'mean_field', got {fit_name!r}")
    simulation = np.random.default_rng([config.seed, 0])
    rank_rng = np.random.default_rng([config.seed, 1])
    shared_x = None
    if x is not None:
        shared_x = Dataset(x, np.zeros_like(np.asarray(x, dtype=np.float64)), source="calibration").x
    elif config.fixed_x:
        shared_x = _simulate_x(config, simulation)
        shared_x.setflags(write=False)
    z = np.array([interval_half_width(level) for level in config.levels])
    names = ["exact", "mean_field"] + ([fit_name] if fit is not None else [])
    count = config.datasets
    covered = {name: np.empty((count, len(config.levels), 2), dtype=bool) for name in names}
    ranks = {name: np.empty((count, 2), dtype=np.int64) for name in names}
    true_theta = np.empty((count, 2))
    statuses: list[str] = []
    for index in range(count):
        theta = model.prior.mean + model.prior.sd * simulation.standard_normal(2)
        inputs = shared_x if shared_x is not None else _simulate_x(config, simulation)
        y = theta[0] * inputs + theta[1] + model.noise_sd * simulation.standard_normal(inputs.size)
        dataset = Dataset(inputs, y, source=f"calibration dataset {index}")
        exact = exact_posterior(dataset, model)
        fits = {"exact": exact.posterior, "mean_field": exact.mean_field}
        if fit is not None:
            outcome = fit(dataset)
            if isinstance(outcome, FitOutcome):
                statuses.append(outcome.status)
                outcome = outcome.q
            fits[fit_name] = outcome
        eps = rank_rng.standard_normal((config.rank_draws, 2))  # common random numbers for every method
        for name, q in fits.items():
            covered[name][index], ranks[name][index] = _evaluate(q, theta, z, eps)
        true_theta[index] = theta
        if progress is not None:
            progress(index + 1, count)
    methods = {
        name: MethodCalibration(name, config.levels, covered[name], ranks[name], config.rank_draws) for name in names
    }
    if fit is not None and statuses:
        if len(statuses) != count:
            raise ConfigError("fit", "must return a FitOutcome for every dataset or for none")
        method = methods[fit_name]
        methods[fit_name] = MethodCalibration(
            fit_name, config.levels, method.covered, method.ranks, config.rank_draws, tuple(statuses)
        )
    return CalibrationResult(config, model, true_theta, shared_x, methods)


def fit_until_at_target(
    model: Model, config: FitConfig, check_every: int = CHECK_EVERY
) -> Callable[[Dataset], FitOutcome]:
    """A `fit` callback that trains `config`'s method until metrics.convergence says "at target", at most
    `config.steps` steps, checked every `check_every` steps (docs/MATH.md, Convergence rule).

    A method that can be placed (Bayes by Backprop) starts at the least-squares line with sds START_SD: the data's
    own fit, not the answer, and far closer than a random start to the target of a theta drawn from a wide prior.
    """
    check_every = check_int("check_every", check_every, SNAPSHOT_EVERY, 10**6)

    def fit(dataset: Dataset) -> FitOutcome:
        """Train on `dataset` until at target (or the step cap) and return q with its status."""
        exact = exact_posterior(dataset, model)
        least_squares = np.linalg.lstsq(design_matrix(dataset.x), dataset.y, rcond=None)[0]
        target = target_for(config, exact, least_squares)
        method = make_method(dataset, model, config)
        if isinstance(method, SettablePosterior) and not config.centre_x:
            method.set_posterior(Gaussian.diagonal(least_squares, np.full(2, START_SD)))
        run = Run(method, config.steps_in_force, RunConfig(snapshot_every=SNAPSHOT_EVERY))
        for snapshot in run:  # None between snapshots; a diverged run ends at its last finite snapshot
            if snapshot is None or snapshot.step % check_every:
                continue
            if convergence(run.snapshots, target, exact).status == "at_target":
                break
        status = convergence(run.snapshots, target, exact).status
        # A run records its starting snapshot before its first step, so a finished run always has a last one.
        last = cast(Snapshot, run.last)
        return FitOutcome(last.gaussian, status, last.step)

    return fit


def expected_mean_field_coverage(level: float, sd_ratio: np.ndarray) -> np.ndarray:
    """Coverage of the mean-field `level` interval when sd_MF / sd_exact = sd_ratio: 2 Phi(z ratio) - 1
    (docs/MATH.md)."""
    z = interval_half_width(level)
    return np.array([2.0 * NormalDist().cdf(z * ratio) - 1.0 for ratio in np.atleast_1d(sd_ratio)])
