"""How close a fit is: KL to the exact posterior, sd ratios, each method's target, the convergence rule and status."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bayesdemo.core.config import FitConfig, centring_matrix
from bayesdemo.core.exact import ExactPosterior, Gaussian
from bayesdemo.core.priors import PARAMETER_NAMES

if TYPE_CHECKING:  # the runner imports this module for its "until at target" rule
    from bayesdemo.fitting.runner import Snapshot

MEAN_TOLERANCE = 0.1  # in exact posterior sds
SD_TOLERANCE = 0.10  # relative to the target sd
DEFAULT_WINDOW = 50  # steps averaged by the convergence rule
FAR_MEAN_SDS = 1.0  # a window mean further than this many exact sds from the target's is far from target
FAR_SD_RATIOS = (0.5, 2.0)  # a window sd outside these multiples of the target sd is far from target
ILL_CONDITIONED_CORR = 0.99  # |exact corr(slope, intercept)| above this: uncentred x makes the problem ill-conditioned
FIT_STATUSES = ("at_target", "still_moving", "far_from_target")
STATUS_LABELS = {"at_target": "at target", "still_moving": "still moving", "far_from_target": "far from target"}
# How the page, CLI and exports name the runner's status; a diverged fit has no convergence status to show.
RUN_STATUS_WORDS = {
    "ready": "Ready",
    "queued": "Queued",
    "running": "Running",
    "paused": "Paused",
    "done": "Finished",
    "stopped": "Stopped",
    "timeout": "Time budget reached",
}


@dataclass(frozen=True)
class Target:
    """Where a method should converge: its optimum's mean and sds, and what that optimum is called."""

    mean: np.ndarray  # (2,)
    sd: np.ndarray  # (2,)
    name: str
    centred: bool = False  # the fit trains on centred x (FitConfig.centre_x): its advice never says "Centre x"


def x_mean_and_sd(exact: ExactPosterior) -> tuple[float, float]:
    """Mean and (population) sd of x, from Phi^T Phi = [[sum x^2, sum x], [sum x, n]] of the exact reference."""
    phi_t_phi = exact.stats.phi_t_phi
    n = float(phi_t_phi[1, 1])
    x_mean = float(phi_t_phi[0, 1]) / n
    variance = max(float(phi_t_phi[0, 0]) / n - x_mean**2, 0.0)
    return x_mean, float(np.sqrt(variance))


def centred_mean_field_sd(exact: ExactPosterior) -> np.ndarray:
    """Marginal sds (2,) of the mean-field optimum in centred coordinates mapped back to (slope, intercept).

    With theta = A theta_c (A = centring_matrix(mean x)) the precision of theta_c is A^T L A; the optimum has
    variances 1 / (A^T L A)_jj there, and A diag(.) A^T here (docs/MATH.md, Centred parameterisation).
    """
    x_mean, _ = x_mean_and_sd(exact)
    matrix = centring_matrix(x_mean)
    centred_precision = matrix.T @ exact.precision @ matrix
    cov = matrix @ np.diag(1.0 / np.diag(centred_precision)) @ matrix.T
    return np.sqrt(np.diag(cov))


def target_for(config: FitConfig, exact: ExactPosterior, least_squares: np.ndarray) -> Target:
    """The optimum of `config`'s method (docs/MATH.md): exact posterior, mean-field optimum, or least squares, sd 0.

    A centred mean-field fit's optimum is the mean-field optimum in centred coordinates, mapped back
    (docs/MATH.md, Centred parameterisation); the exact posterior and least squares do not depend on the coordinates.
    """
    centred = config.centre_x
    if config.method == "noise":
        return Target(np.asarray(least_squares, dtype=np.float64), np.zeros(2), "least squares, sd 0", centred)
    if config.targets_full_covariance:
        return Target(exact.mean, exact.sd, "exact posterior", centred)
    if centred:
        return Target(exact.mean, centred_mean_field_sd(exact), "mean-field optimum in centred x", True)
    return Target(exact.mean, exact.mean_field_sd, "mean-field optimum")


def kl_to_exact(q: Gaussian, exact: ExactPosterior) -> float:
    """KL(q || exact posterior) (docs/MATH.md, KL between Gaussians)."""
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


@dataclass(frozen=True)
class Convergence:
    """Where a fit stands against its target (docs/MATH.md, Convergence rule): status, its words, and why."""

    status: str  # one of FIT_STATUSES
    label: str  # STATUS_LABELS[status]
    reason: str  # one or two plain sentences: what is off and, for ill-conditioned data, the cure; "" at target


def _offences(mean: np.ndarray, sd: np.ndarray, target: Target, exact_sd: np.ndarray) -> list[tuple[float, bool, str]]:
    """Per parameter and moment: (distance in units of the band, far from target?, a sentence saying how far)."""
    offences = []
    for index, name in enumerate(PARAMETER_NAMES):
        mean_off = abs(float(mean[index] - target.mean[index])) / float(exact_sd[index])
        offences.append(
            (
                mean_off / MEAN_TOLERANCE,
                mean_off > FAR_MEAN_SDS,
                f"The {name}'s mean is {mean_off:.2g} exact sds from its target (at target means within "
                f"{MEAN_TOLERANCE:g}).",
            )
        )
        target_sd = float(target.sd[index])
        if target_sd > 0:
            ratio = float(sd[index]) / target_sd
            offences.append(
                (
                    abs(ratio - 1.0) / SD_TOLERANCE,
                    not (FAR_SD_RATIOS[0] <= ratio <= FAR_SD_RATIOS[1]),
                    f"The {name}'s sd is {ratio:.2g} times its target (at target means within {SD_TOLERANCE:.0%}).",
                )
            )
        else:
            in_exact_sds = float(sd[index]) / float(exact_sd[index])
            offences.append(
                (
                    in_exact_sds / MEAN_TOLERANCE,
                    in_exact_sds > FAR_MEAN_SDS,
                    f"The {name}'s sd is {in_exact_sds:.2g} exact sds; its target is 0 (at target means below "
                    f"{MEAN_TOLERANCE:g}).",
                )
            )
    return offences


def ill_conditioning_advice(exact: ExactPosterior, target: Target) -> str:
    """A sentence naming uncentred x as the cause and its cures, when |rho| > 0.99 with x far from 0; else ""."""
    x_mean, x_sd = x_mean_and_sd(exact)
    if target.centred or abs(exact.corr) <= ILL_CONDITIONED_CORR or abs(x_mean) <= x_sd:
        return ""
    return (
        f" x lies far from 0 (mean {x_mean:.4g}, sd {x_sd:.3g}), so slope and intercept are almost perfectly "
        f'correlated (ρ = {exact.corr:+.4f}) and the problem is ill-conditioned: "Centre x" or '
        f'"Run until at target" cures it.'
    )


def convergence(
    snapshots: Sequence[Snapshot], target: Target, exact: ExactPosterior, window: int = DEFAULT_WINDOW
) -> Convergence:
    """The fit's status from its last `window` steps (docs/MATH.md, Convergence rule).

    At target: the window average is within the band (`within_band`, the benchmark's rule). Far from target: a mean
    more than FAR_MEAN_SDS exact sds from the target's, or an sd outside FAR_SD_RATIOS times the target sd (for a
    target sd of 0, more than FAR_MEAN_SDS exact sds). Otherwise still moving. Before any step: never at target.
    """
    if not snapshots:
        return Convergence("still_moving", STATUS_LABELS["still_moving"], "No step has been taken yet.")
    mean, sd = window_average(snapshots, len(snapshots) - 1, window)
    trained = snapshots[-1].step > 0
    if trained and within_band(mean, sd, target, exact.sd):
        return Convergence("at_target", STATUS_LABELS["at_target"], "")
    offences = _offences(mean, sd, target, exact.sd)
    far = [offence for offence in offences if offence[1]]
    status = "far_from_target" if far else "still_moving"
    worst = max(far or offences, key=lambda offence: offence[0])
    return Convergence(status, STATUS_LABELS[status], worst[2] + ill_conditioning_advice(exact, target))


def at_target_rule(
    target: Target, exact: ExactPosterior, window: int = DEFAULT_WINDOW
) -> Callable[[Sequence[Snapshot]], bool]:
    """The "at target" test of `convergence` alone, for the runner's "until at target" (docs/MATH.md, Convergence
    rule)."""

    def reached(snapshots: Sequence[Snapshot]) -> bool:
        """Whether the last `window` steps' average is within the band (and a step has been taken)."""
        return snapshots[-1].step > 0 and is_converged(snapshots, target, exact.sd, window)

    return reached


def run_status_text(run_status: str, conv: Convergence) -> str:
    """The runner's status with the fit's convergence, e.g. "Finished · at target"; a diverged fit reads "Diverged"."""
    if run_status == "diverged":
        return "Diverged"
    word = RUN_STATUS_WORDS.get(run_status, run_status.capitalize())
    return f"{word} · {conv.label}"
