"""How close a fit is: KL to the exact posterior, sd ratios, each method's target, and the convergence rule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bayesdemo.exact import ExactPosterior, Gaussian
from bayesdemo.methods.base import FitConfig
from bayesdemo.runner import Snapshot

MEAN_TOLERANCE = 0.1  # in exact posterior sds
SD_TOLERANCE = 0.10  # relative to the target sd
DEFAULT_WINDOW = 50  # steps averaged by the convergence rule


@dataclass(frozen=True)
class Target:
    """Where a method should converge: its optimum's mean and sds, and what that optimum is called."""

    mean: np.ndarray  # (2,)
    sd: np.ndarray  # (2,)
    name: str


def target_for(config: FitConfig, exact: ExactPosterior, least_squares: np.ndarray) -> Target:
    """The optimum of `config`'s method (MATH.md): exact posterior, mean-field optimum, or least squares, sd 0."""
    if config.method == "noise":
        return Target(np.asarray(least_squares, dtype=np.float64), np.zeros(2), "least squares, sd 0")
    if config.targets_full_covariance:
        return Target(exact.mean, exact.sd, "exact posterior")
    return Target(exact.mean, exact.mean_field_sd, "mean-field optimum")


def kl_to_exact(q: Gaussian, exact: ExactPosterior) -> float:
    """KL(q || exact posterior) (MATH.md, KL between Gaussians)."""
    return exact.kl_to_exact(q)


def sd_ratios(sd: np.ndarray, exact: ExactPosterior) -> dict[str, np.ndarray]:
    """q's sds over the exact marginal sds and over the mean-field optimum's sds."""
    sd = np.asarray(sd, dtype=np.float64)
    return {"to_exact": sd / exact.sd, "to_mean_field": sd / exact.mean_field_sd}


def window_average(snapshots: Sequence[Snapshot], end: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of q's means and sds over the snapshots with step in (snapshots[end].step - window, its step]."""
    last_step = snapshots[end].step
    first = end  # walk back only over the window (steps increase), not the whole prefix: O(window) per call
    while first > 0 and snapshots[first - 1].step > last_step - window:
        first -= 1
    chosen = [s for s in snapshots[first : end + 1] if s.step > 0] or [snapshots[end]]
    return np.mean([s.mean for s in chosen], axis=0), np.mean([s.sd for s in chosen], axis=0)


def within_band(mean: np.ndarray, sd: np.ndarray, target: Target, exact_sd: np.ndarray) -> bool:
    """The rule: |mean - target| <= 0.1 exact sd and |sd - target sd| <= 10% of it (<= 0.1 exact sd for sd 0)."""
    mean_ok = np.all(np.abs(mean - target.mean) <= MEAN_TOLERANCE * exact_sd)
    sd_band = np.where(target.sd > 0, SD_TOLERANCE * target.sd, MEAN_TOLERANCE * exact_sd)
    return bool(mean_ok and np.all(np.abs(sd - target.sd) <= sd_band))


def is_converged(
    snapshots: Sequence[Snapshot], target: Target, exact_sd: np.ndarray, window: int = DEFAULT_WINDOW
) -> bool:
    """Whether the average over the last `window` steps is within the band around the target."""
    if len(snapshots) < 2:
        return False
    mean, sd = window_average(snapshots, len(snapshots) - 1, window)
    return within_band(mean, sd, target, exact_sd)


def step_converged_for_good(
    snapshots: Sequence[Snapshot], target: Target, exact_sd: np.ndarray, window: int = DEFAULT_WINDOW
) -> int | None:
    """First step from which the rule holds at every later snapshot to the end, or None if it never does."""
    first_good: int | None = None
    for index in range(1, len(snapshots)):
        mean, sd = window_average(snapshots, index, window)
        if within_band(mean, sd, target, exact_sd):
            if first_good is None:
                first_good = snapshots[index].step
        else:
            first_good = None
    return first_good
