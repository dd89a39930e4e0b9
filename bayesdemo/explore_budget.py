"""What an explore view's computation will cost, from its settings alone, before it starts.

Each estimate is an upper-leaning linear model of the work (samples x points per gradient draw, points x basis
functions, steps x points) with per-element costs measured on a 2-core server with one torch thread; a view refuses a
computation whose estimate exceeds the budgets below and says what to lower. Pure functions, no Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MEMORY_BUDGET_BYTES = 256 * 2**20  # most memory one explore computation may hold in the server process
CPU_BUDGET_S = 10.0  # most server CPU time one explore computation may take

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
CALIBRATION_FIT_DATASET_S = 0.25  # a fit that runs to its step cap (2,000 steps) on few points
CALIBRATION_FIT_POINT_S = 2e-4  # and per point of its dataset (convergence checks on the data)
# Fits that draw a (samples x points) tensor per step (noise sd learned, Monte-Carlo KL under another prior).
FIT_STEP_S = 1.5e-3
FIT_ELEMENT_S = 60e-9
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
