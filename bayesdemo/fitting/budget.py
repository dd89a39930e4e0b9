"""What a fit will cost before it starts: peak memory and a rough training time from its FitConfig and n.

Most paths keep their per-step work O(samples): Bayes by Backprop's closed-form ELBO and Pyro SVI's written-out ELBO
read the data's sufficient statistics. The others draw a (samples x batch) tensor per step and keep several of them
alive for the backward pass: noise injection always, Bayes by Backprop with local reparameterisation, a Monte-Carlo
KL, a learned noise sd or the MSE / likelihood objectives, and Pyro SVI through Trace_ELBO (svi_elbo "trace" or a
learned noise sd). The batch is the minibatch size when batch_size > 0, else all n points. The page and the command
line refuse a fit whose estimate exceeds MEMORY_BUDGET_BYTES, naming what to lower.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bayesdemo.core.config import FitConfig
from bayesdemo.core.fields import BY_WIDGET_KEY

MEMORY_BUDGET_BYTES = 1 << 30  # most memory one fit may need at its peak (1 GiB): a class shares one server
FLOAT_BYTES = 8  # every tensor is float64
# Resident memory per element of the (samples x batch) float64 tensors, in tensors, from resource.getrusage's max RSS
# growth over a step: the factors cover tensors above the C allocator's 32 MiB threshold (mapped, handed back when
# freed) and smaller ones (the heap grows past what is alive), with room (docs/classroom.md, Limits that keep one
# student from stalling the class).
TENSORS_PER_SAMPLE_POINT = {"noise": 40, "bbb": 16, "svi": 16}
TENSORS_PER_POINT = 8  # float64 vectors of length n a fit keeps (x, y, the (n, 2) design, a minibatch order, ...)
# Rough training seconds: a fixed cost per step plus one per element of the (samples x batch) tensors, measured on
# one busy core (docs/classroom.md, Limits that keep one student from stalling the class).
SECONDS_PER_STEP = {"noise": 2e-4, "bbb": 2e-4, "svi": 2.5e-3}
SECONDS_PER_SAMPLE_POINT = {"noise": 2e-7, "bbb": 1e-7, "svi": 1e-7}
SECONDS_PER_STATISTICS_STEP = 1e-8  # per point and step of a minibatch's sufficient statistics
# The settings a memory message names (samples per step, data points, batch size): by their labels on the page, by
# their flags on the command line, both from the settings table.
NAMED_SETTINGS = tuple(BY_WIDGET_KEY[key] for key in ("fit_samples", "data_n", "fit_batch_size"))
PAGE_NAMES = tuple(setting.label for setting in NAMED_SETTINGS)
CLI_NAMES = tuple(str(setting.flag) for setting in NAMED_SETTINGS)


@dataclass(frozen=True)
class FitCost:
    """A fit's estimated peak memory in bytes and training time in seconds, and whether it draws (samples x batch)."""

    peak_bytes: int
    seconds: float
    per_sample_point: bool  # the fit materialises (samples x batch) tensors each step


def batch_points(config: FitConfig, n: int) -> int:
    """Data points one step reads: the minibatch size when batch_size > 0 (at most n), else n."""
    return min(config.batch_size, n) if config.batch_size > 0 else n


def draws_per_point(config: FitConfig) -> bool:
    """Whether each step materialises (samples x batch) tensors (see the module docstring for the paths)."""
    if config.method == "noise":
        return True
    if config.method == "bbb":
        closed_form_elbo = config.objective == "elbo" and config.kl == "closed" and not config.learn_noise
        # A non-Gaussian prior also takes the Monte-Carlo KL; the estimate does not know the prior, so it counts the
        # (samples x 2) draws only, which are small.
        return not closed_form_elbo or config.local_reparam
    return config.svi_elbo_in_force == "trace"


def fit_cost(config: FitConfig, n: int) -> FitCost:
    """Peak memory and rough training time of `config`'s fit on n points (`config.steps_in_force` steps)."""
    batch = batch_points(config, n)
    per_point = draws_per_point(config)
    elements = config.samples_in_force * batch if per_point else 0
    peak = FLOAT_BYTES * (TENSORS_PER_SAMPLE_POINT[config.method] * elements + TENSORS_PER_POINT * n)
    step_seconds = SECONDS_PER_STEP[config.method] + SECONDS_PER_SAMPLE_POINT[config.method] * elements
    if config.batch_size > 0:
        step_seconds += SECONDS_PER_STATISTICS_STEP * batch
    return FitCost(peak, config.steps_in_force * step_seconds, per_point)


def most_points(config: FitConfig, n: int, budget_bytes: int = MEMORY_BUDGET_BYTES) -> int:
    """The largest batch whose (samples x batch) tensors for `config` on n points fit `budget_bytes` (0: none does)."""
    left = budget_bytes - FLOAT_BYTES * TENSORS_PER_POINT * n
    return max(0, left // (FLOAT_BYTES * TENSORS_PER_SAMPLE_POINT[config.method] * config.samples_in_force))


def size_text(size: float) -> str:
    """A byte count in MiB or GiB with three significant figures, e.g. "1.5 GiB"."""
    if size >= 1 << 30:
        return f"{size / (1 << 30):.3g} GiB"
    return f"{size / (1 << 20):.3g} MiB"


def duration_text(seconds: float) -> str:
    """A duration in seconds, minutes, hours or days, e.g. "23 days"."""
    for unit, length in (("days", 86_400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if seconds >= 2 * length:
            return f"{seconds / length:.3g} {unit}"
    return f"{seconds:.2g} s"


def memory_problem(
    config: FitConfig, n: int, names: Sequence[str] = PAGE_NAMES, budget_bytes: int = MEMORY_BUDGET_BYTES
) -> str | None:
    """Why `config`'s fit on n points may not start (its memory estimate exceeds `budget_bytes`), or None.

    `names` are the words for the samples, the number of points and the minibatch size (PAGE_NAMES or CLI_NAMES).
    """
    cost = fit_cost(config, n)
    if cost.peak_bytes <= budget_bytes:
        return None
    batch = batch_points(config, n)
    largest_batch = most_points(config, n, budget_bytes)
    if cost.per_sample_point and largest_batch > 0:
        samples, points, minibatch = names
        lower = f"lower {samples} or {points}, or set a {minibatch} of at most {largest_batch:,}"
        shape = f"{config.samples_in_force} samples x {batch:,} points per step"
    else:
        lower = f"lower {names[1]}"
        shape = f"{n:,} points"
    return (
        f"This fit would need about {size_text(cost.peak_bytes)} of memory ({shape}), more than the "
        f"{size_text(budget_bytes)} one fit may use: {lower}."
    )


def fits_problem(
    configs: Sequence[FitConfig], n: int, names: Sequence[str] = PAGE_NAMES, budget_bytes: int = MEMORY_BUDGET_BYTES
) -> str | None:
    """The first fit's memory problem among `configs` (memory_problem), or None when every fit fits."""
    for config in configs:
        problem = memory_problem(config, n, names, budget_bytes)
        if problem is not None:
            return problem
    return None
