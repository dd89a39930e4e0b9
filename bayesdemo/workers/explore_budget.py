"""What an explore view's computation will cost, from its settings alone, before it starts; and the computations.

Each estimate is an upper-leaning linear model of the work (samples x points per gradient draw, points x basis
functions, steps x points) with per-element costs measured on a 2-core server with one torch thread; a view refuses a
computation whose estimate exceeds the budgets below and says what to lower. A computation estimated above the inline
limits runs in a worker process (jobs.ExploreJob, admitted and limited like a fit) through the pure, module-level
functions at the end of this module, which a worker can unpickle; below them the view runs it in its own thread.
No Streamlit. torch loads with the first computation that needs it, not with this module: the page imports it to
price the views, and draws its first view sooner without torch (docs/performance.md, First view).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

from bayesdemo.core.config import FitConfig
from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import Gaussian
from bayesdemo.core.priors import Model
from bayesdemo.fitting.runner import RunConfig, Snapshot, run_to_end
from bayesdemo.methods import make_method
from bayesdemo.methods.base import NoisePosterior
from bayesdemo.references.basis import BasisConfig, BasisPosterior, EvidenceCurve, fit_basis, log_evidence_by_complexity
from bayesdemo.references.calibration import CalibrationConfig, CalibrationResult, calibrate, fit_until_at_target
from bayesdemo.references.grid import GridPosterior, grid_posterior
from bayesdemo.references.mixture import MixturePosterior, is_scale_mixture, mixture_posterior

if TYPE_CHECKING:
    from bayesdemo.references.mean_field import MeanFieldOptimum

MEMORY_BUDGET_BYTES = 256 * 2**20  # most memory one explore computation may hold
CPU_BUDGET_S = 10.0  # most server CPU time one explore computation may take
# At most this estimate, a computation runs in the page's own thread: a worker's start and the result's way back cost
# tens of milliseconds, and the page's thread is held no longer than one redraw of the live charts takes.
INLINE_S = 0.25
INLINE_MEMORY_BYTES = 16 * 2**20

FLOAT_BYTES = 8  # float64
# Gradient noise: one draw costs a fixed overhead plus a cost per sample x point (measured 21-72 ns, 0.36-0.56 ms).
GRADIENT_DRAW_S = 0.6e-3
GRADIENT_ELEMENT_S = 80e-9
GRADIENT_CHUNK_TENSORS = 12  # (chunk) tensors alive at once in one chunk's forward and backward pass
# Basis functions: the curve's and the shown fit's design matrices, about 25 ns per point x feature (measured).
BASIS_ELEMENT_S = 40e-9
BASIS_FIT_TENSORS = 6  # (n, size + 1) arrays alive at once in one fit
# Calibration: the exact and mean-field answers per dataset, and Bayes by Backprop's fit until at target.
CALIBRATION_DATASET_S = 1e-3
CALIBRATION_POINT_S = 20e-9
CALIBRATION_FIT_DATASET_S = 0.05  # a fit that runs to its step cap (2,000 closed-form Bayes by Backprop steps)
CALIBRATION_FIT_POINT_S = 5e-5  # and per point of its dataset (convergence checks on the data)
# Fits that draw a (samples x points) tensor per step (noise sd learned, Monte-Carlo KL under another prior).
FIT_STEP_S = 1.5e-3
FIT_ELEMENT_S = 60e-9
# Other priors' reference: the grid (or mixture) posterior and the mean-field optimum from its windows, a fixed cost
# plus one per point (measured 0.26 s at n = 100, 0.16-0.21 s at 2,000, 1.1-2.0 s at 20,000, Laplace and Student-t).
PRIOR_REFERENCE_S = 0.25
PRIOR_REFERENCE_POINT_S = 1e-4
PRIOR_REFERENCE_GRID_BYTES = 16 * 256**2 * FLOAT_BYTES  # a few (points x points) grids of the log joint at once
# Pyro NUTS: per iteration (up to 2^depth leapfrog steps, measured 8 ms at n = 1,000) and per point per iteration.
NUTS_ITERATION_S = 15e-3
NUTS_POINT_S = 0.5e-6


@dataclass(frozen=True)
class Cost:
    """An estimate of one computation: seconds of server CPU and bytes held at once."""

    seconds: float
    memory_bytes: float

    def __add__(self, other: Cost) -> Cost:
        """Run one after the other: times add, memory is the larger."""
        return Cost(self.seconds + other.seconds, max(self.memory_bytes, other.memory_bytes))

    @property
    def within_budget(self) -> bool:
        """Whether both the time and the memory fit the explore budgets."""
        return self.seconds <= CPU_BUDGET_S and self.memory_bytes <= MEMORY_BUDGET_BYTES

    @property
    def inline(self) -> bool:
        """Whether the computation is small enough to run in the page's own thread (else in a worker process)."""
        return self.seconds <= INLINE_S and self.memory_bytes <= INLINE_MEMORY_BYTES

    def refusal(self, lower: str) -> str | None:
        """The sentence shown instead of running (None when within budget): the estimate and what to lower."""
        if self.within_budget:
            return None
        parts = []
        if self.seconds > CPU_BUDGET_S:
            parts.append(f"about {describe_seconds(self.seconds)} of server time (the limit is {CPU_BUDGET_S:g} s)")
        if self.memory_bytes > MEMORY_BUDGET_BYTES:
            parts.append(
                f"about {describe_bytes(self.memory_bytes)} of memory (the limit is "
                f"{describe_bytes(MEMORY_BUDGET_BYTES)})"
            )
        return f"Not run: these settings need {' and '.join(parts)}. Lower {lower}."


def describe_seconds(seconds: float) -> str:
    """A duration in words: seconds, minutes or hours."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"


def describe_bytes(count: float) -> str:
    """A size in MiB or GiB."""
    mebibytes = count / 2**20
    return f"{mebibytes:,.0f} MiB" if mebibytes < 1024 else f"{mebibytes / 1024:,.1f} GiB"


def gradient_noise_cost(n: int, batch_points: int, sample_counts: Sequence[int], repeats: int, chunk: int) -> Cost:
    """`repeats` gradient draws per estimator, one estimator per entry of `sample_counts` (its samples per step), on
    minibatches of `batch_points` of the `n` points, each draw in chunks of at most `chunk` samples x points."""
    elements = sum(samples * batch_points for samples in sample_counts)
    seconds = repeats * (len(sample_counts) * GRADIENT_DRAW_S + elements * GRADIENT_ELEMENT_S)
    largest = max(samples * batch_points for samples in sample_counts)
    memory = GRADIENT_CHUNK_TENSORS * min(largest, chunk) * FLOAT_BYTES + 4 * n * FLOAT_BYTES
    return Cost(seconds, memory)


def basis_cost(n: int, shown_size: int, curve_sizes: Sequence[int]) -> Cost:
    """The shown fit with `shown_size` features plus one fit per size on the evidence curve, on `n` points."""
    features = shown_size + 1 + sum(size + 1 for size in curve_sizes)
    largest = max([shown_size, *curve_sizes]) + 1
    return Cost(n * features * BASIS_ELEMENT_S, BASIS_FIT_TENSORS * n * largest * FLOAT_BYTES)


def calibration_cost(datasets: int, n: int, with_fit: bool) -> Cost:
    """K = `datasets` simulated datasets of `n` points, each with the exact answer and, `with_fit`, a fit that may run
    to its step cap."""
    seconds = datasets * (CALIBRATION_DATASET_S + n * CALIBRATION_POINT_S)
    if with_fit:
        seconds += datasets * (CALIBRATION_FIT_DATASET_S + n * CALIBRATION_FIT_POINT_S)
    return Cost(seconds, 8 * n * FLOAT_BYTES)


def full_batch_fit_cost(n: int, fits: Sequence[tuple[int, int]]) -> Cost:
    """Fits one after the other, each (steps, samples per step), drawing samples x all `n` points per step."""
    seconds = sum(steps * (FIT_STEP_S + samples * n * FIT_ELEMENT_S) for steps, samples in fits)
    largest = max(samples for _, samples in fits)
    return Cost(seconds, 6 * largest * n * FLOAT_BYTES)


def nuts_cost(n: int, iterations: int) -> Cost:
    """Pyro NUTS for `iterations` (warm-up and kept, all chains) on `n` points."""
    return Cost(iterations * (NUTS_ITERATION_S + n * NUTS_POINT_S), 16 * n * FLOAT_BYTES)


def prior_reference_cost(n: int) -> Cost:
    """The exact posterior under another prior (grid or mixture) and the mean-field optimum, on `n` points."""
    return Cost(PRIOR_REFERENCE_S + n * PRIOR_REFERENCE_POINT_S, PRIOR_REFERENCE_GRID_BYTES + 16 * n * FLOAT_BYTES)


# ---- the computations, pure and module-level so that a worker process can run them (jobs.ExploreJob) -------------

GradientRow = tuple[str, np.ndarray, np.ndarray]  # estimator label, variance (2, 2) of the gradients, its sd
NoiseFit = tuple[Gaussian, float, float]  # a fit with s learned: q over (slope, intercept), then s's mean and sd


def gradient_noise_rows(
    dataset: Dataset, model: Model, q: Gaussian, estimators: Sequence[tuple[str, FitConfig]], repeats: int
) -> list[GradientRow]:
    """Per Bayes by Backprop estimator at q: (label, variance, sd of the variance) of `repeats` gradient draws, each
    (2, 2) with rows mu-gradient and sd-gradient (docs/MATH.md, Gradient noise)."""
    from bayesdemo.methods.bbb import BayesByBackprop
    from bayesdemo.references.gradients import gradient_statistics

    rows = []
    for label, config in estimators:
        method = make_method(dataset, model, config)
        if not isinstance(method, BayesByBackprop):
            raise ValueError(f"{label} is not a Bayes by Backprop estimator")
        method.set_posterior(q)
        statistics = gradient_statistics(method, repeats)
        rows.append((label, statistics.variance, statistics.sd_variance))
    return rows


def noise_sd_fits(
    dataset: Dataset, model: Model, fits: Sequence[tuple[str, FitConfig]]
) -> tuple[MeanFieldOptimum, dict[str, NoiseFit]]:
    """The mean-field optimum with s learned, and each named fit's q with s's mean and sd after its steps
    (docs/MATH.md, Unknown noise sd)."""
    from bayesdemo.references.mean_field import mean_field_optimum

    optimum = mean_field_optimum(dataset, model, learn_noise=True)
    learned: dict[str, NoiseFit] = {}
    for name, config in fits:
        method = make_method(dataset, model, config)
        if not isinstance(method, NoisePosterior):
            raise ValueError(f"{config.label} does not learn the noise sd")
        run = run_to_end(method, config.steps_in_force, RunConfig(snapshot_every=config.steps_in_force))
        # A run records its starting snapshot before its first step, so a finished run has a last one.
        learned[name] = (cast(Snapshot, run.last).gaussian, *method.noise_posterior())
    return optimum, learned


def fits_under_prior(
    dataset: Dataset, model: Model, fits: Sequence[tuple[str, FitConfig]]
) -> list[tuple[str, Gaussian, float]]:
    """Each named fit's q after its steps under `model`'s prior, with the seconds it took (docs/MATH.md,
    Non-Gaussian priors)."""
    fitted = []
    for label, config in fits:
        started = time.perf_counter()
        method = make_method(dataset, model, config)
        run = run_to_end(method, config.steps_in_force, RunConfig(snapshot_every=config.steps_in_force))
        # A run records its starting snapshot before its first step, so a finished run has a last one.
        fitted.append((label, cast(Snapshot, run.last).gaussian, time.perf_counter() - started))
    return fitted


def prior_reference(dataset: Dataset, model: Model) -> tuple[GridPosterior | MixturePosterior, MeanFieldOptimum]:
    """The exact posterior under `model`'s prior (the closed-form mixture for Gaussian and scale-mixture priors, else
    the grid) and the mean-field optimum started from its windows or components (docs/MATH.md, Non-Gaussian priors)."""
    from bayesdemo.references.mean_field import mean_field_optimum

    reference: GridPosterior | MixturePosterior
    if is_scale_mixture(model.prior):
        reference = mixture_posterior(dataset, model.prior, model.noise_sd)
        starts = reference.components
    else:
        reference = grid_posterior(dataset, model)
        starts = reference.windows
    return reference, mean_field_optimum(dataset, model, starts=starts)


def basis_results(
    dataset: Dataset, model: Model, config: BasisConfig, sizes: Sequence[int]
) -> tuple[BasisPosterior, EvidenceCurve]:
    """The exact fit with `config`'s features and the log evidence of each size in `sizes` (PRML 3.86)."""
    curve = log_evidence_by_complexity(dataset, config.family, sizes, model, width=config.width)
    return fit_basis(dataset, config, model), curve


def calibration_result(model: Model, config: CalibrationConfig, fit: FitConfig | None) -> CalibrationResult:
    """Coverage over `config`'s simulated datasets: exact and mean-field optimum, and `fit` trained until at target
    on each when given (docs/MATH.md, Checking inference)."""
    trained = fit_until_at_target(model, fit) if fit is not None else None
    return calibrate(model, config, trained, fit_name=fit.method if fit is not None else "fit")
