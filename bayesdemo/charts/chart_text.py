"""Text alternatives of the charts: each chart's key numbers in a sentence or two a screen reader reads.

Each function takes the inputs of the figure builder of the same name (figures.py, figures_explore.py) and returns a
ChartText: the fits' latest mean and sd against the exact posterior and the mean-field optimum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import ExactPosterior, Gaussian
from bayesdemo.core.priors import PARAMETER_NAMES
from bayesdemo.core.scenario import has_mse_loss
from bayesdemo.fitting.runner import Snapshot
from bayesdemo.teaching.explain import fmt, fmt_step

DIGITS = 4  # significant figures, as in the page's tables
Traces = Sequence[tuple[str, Sequence[Snapshot]]]
Named = Sequence[tuple[str, Gaussian]]


@dataclass(frozen=True)
class ChartText:
    """A chart's key numbers: `summary` in sentences, `table` as columns of equal length (column -> cells)."""

    summary: str  # one or two sentences, each ending with a full stop
    table: dict[str, list[str]]  # the same numbers as a small table: first column "Fit"


def _number(value: float) -> str:
    """A number for the text, DIGITS significant figures."""
    return fmt(float(value), DIGITS)


def _latest(snapshots: Sequence[Snapshot]) -> Snapshot | None:
    """The last snapshot, None for a fit that has not trained yet."""
    return snapshots[-1] if snapshots else None


def _check(parameter: int) -> str:
    """The parameter's name, or ValueError naming the index."""
    if parameter not in (0, 1):
        raise ValueError(f"parameter must be 0 (slope) or 1 (intercept), got {parameter!r}")
    return PARAMETER_NAMES[parameter]


def _no_fit(fits: Sequence[object]) -> str:
    """' No fit has run yet.' when there is none, else ''."""
    return "" if fits else " No fit has run yet."


def text_mean(fits: Traces, exact: ExactPosterior, parameter: int) -> ChartText:
    """The mean chart's numbers: exact mean and sd, each fit's latest mean and its distance in exact sds."""
    name = _check(parameter)
    mean, sd = float(exact.mean[parameter]), float(exact.sd[parameter])
    parts = []
    table: dict[str, list[str]] = {"Fit": [], "Step": [], f"Mean of the {name}": [], "Off exact by (exact sds)": []}
    for label, snapshots in fits:
        last = _latest(snapshots)
        if last is None:
            continue
        value = float(last.mean[parameter])
        off = (value - mean) / sd if sd > 0 else math.nan
        parts.append(f"{label} {_number(value)} at step {fmt_step(last.step)} ({fmt(off, 2)} exact sds off)")
        for column, cell in zip(table, (label, fmt_step(last.step), _number(value), fmt(off, 2)), strict=True):
            table[column].append(cell)
    summary = (
        f"Mean of the {name}: exact {_number(mean)}, exact ±1 sd from {_number(mean - sd)} to {_number(mean + sd)}."
    )
    summary += f" {'; '.join(parts)}." if parts else _no_fit(parts)
    return ChartText(summary, table)


def text_sd(fits: Traces, exact: ExactPosterior, parameter: int) -> ChartText:
    """The sd chart's numbers: exact and mean-field sds, each fit's latest sd and its ratio to the exact sd."""
    name = _check(parameter)
    sd, mean_field_sd = float(exact.sd[parameter]), float(exact.mean_field_sd[parameter])
    parts = []
    table: dict[str, list[str]] = {"Fit": [], "Step": [], f"Sd of the {name}": [], "Sd ÷ exact sd": []}
    for label, snapshots in fits:
        last = _latest(snapshots)
        if last is None:
            continue
        value = float(last.sd[parameter])
        ratio = value / sd if sd > 0 else math.nan
        parts.append(f"{label} {_number(value)} at step {fmt_step(last.step)} ({fmt(ratio, 3)} times the exact sd)")
        for column, cell in zip(table, (label, fmt_step(last.step), _number(value), fmt(ratio, 3)), strict=True):
            table[column].append(cell)
    summary = (
        f"Sd of the {name}: exact {_number(sd)}, mean-field optimum {_number(mean_field_sd)} "
        f"({fmt(mean_field_sd / sd if sd > 0 else math.nan, 3)} times the exact sd)."
    )
    summary += f" {'; '.join(parts)}." if parts else _no_fit(parts)
    return ChartText(summary, table)


def text_loss(fits: Traces, exact: ExactPosterior) -> ChartText:
    """The loss chart's numbers: -log p(y), the best mean-field loss, each fit's latest finite loss.

    A negative ELBO's gap above -log p(y) is KL(q || exact) on average (docs/MATH.md, ELBO); an MSE is set against
    the noise variance s^2, the true line's MSE on average.
    """
    floor = -float(exact.log_evidence)
    try:
        gap = exact.kl_to_exact(exact.mean_field)
    except (np.linalg.LinAlgError, ValueError):
        gap = math.inf
    noise_variance = float(exact.model.noise_sd) ** 2
    parts = []
    table: dict[str, list[str]] = {"Fit": [], "Step": [], "Loss": [], "Against": []}
    for label, snapshots in fits:
        finite = [s for s in snapshots if math.isfinite(s.loss)]
        if not finite:
            continue
        last = finite[-1]
        if has_mse_loss(label):
            against = f"MSE; s² = {_number(noise_variance)}"
            parts.append(
                f"{label}: MSE {_number(last.loss)} (not an ELBO), the true line's is {_number(noise_variance)}"
            )
        else:
            against = f"{fmt(last.loss - floor, 3)} above −log p(y)"
            parts.append(f"{label} {_number(last.loss)}, {against}")
        for column, cell in zip(table, (label, fmt_step(last.step), _number(last.loss), against), strict=True):
            table[column].append(cell)
    summary = f"Loss: −log p(y) = {_number(floor)}, best mean-field loss {_number(floor + gap)}."
    summary += f" {'; '.join(parts)}." if parts else _no_fit(parts)
    return ChartText(summary, table)


def _line(q: Gaussian) -> str:
    """q's mean line as 'y = a x + b'."""
    slope, intercept = float(q.mean[0]), float(q.mean[1])
    sign = "−" if intercept < 0 else "+"
    return f"y = {_number(slope)} x {sign} {_number(abs(intercept))}"


def text_data(dataset: Dataset, exact: ExactPosterior, fits: Named) -> ChartText:
    """The data chart's numbers: the points, the exact posterior's mean line and each fit's."""
    parts = [f"{label}: {_line(q)}" for label, q in fits]
    table = {"Line": ["exact posterior", *(label for label, _ in fits)]}
    table["Slope"] = [_number(exact.mean[0]), *(_number(q.mean[0]) for _, q in fits)]
    table["Intercept"] = [_number(exact.mean[1]), *(_number(q.mean[1]) for _, q in fits)]
    summary = f"Data: {dataset.n:,} points; exact posterior mean line {_line(exact.posterior)}."
    summary += f" {'; '.join(parts)}." if parts else ""
    return ChartText(summary, table)


def _describe(q: Gaussian, second: str = "intercept") -> str:
    """q's means, sds and correlation in words; `second` names the second parameter."""
    sd = q.sd
    correlation = float(q.cov[0, 1] / (sd[0] * sd[1])) if sd[0] > 0 and sd[1] > 0 else math.nan
    return (
        f"slope {_number(q.mean[0])} ± {_number(sd[0])}, {second} {_number(q.mean[1])} ± {_number(sd[1])}, "
        f"correlation {fmt(correlation, 2)}"
    )


def _gaussian_table(named: Named) -> dict[str, list[str]]:
    """Means, sds and correlation of each named Gaussian as columns."""
    table: dict[str, list[str]] = {"": [], "Slope mean": [], "Slope sd": [], "Intercept mean": [], "Intercept sd": []}
    for label, q in named:
        cells = (label, _number(q.mean[0]), _number(q.sd[0]), _number(q.mean[1]), _number(q.sd[1]))
        for column, cell in zip(table, cells, strict=True):
            table[column].append(cell)
    return table


def text_parameter_space(
    exact: Gaussian, mean_field: Gaussian, fits: Named = (), second: str = "intercept"
) -> ChartText:
    """The parameter-space chart's numbers: exact posterior, mean-field optimum and each fit, mean ± sd.

    `second` names the second coordinate ("intercept at mean x" on centred axes).
    """
    parts = [f"{label}: {_describe(q, second)}" for label, q in fits]
    summary = f"Exact posterior: {_describe(exact, second)}. Mean-field optimum: {_describe(mean_field, second)}."
    summary += f" {'; '.join(parts)}." if parts else ""
    return ChartText(summary, _gaussian_table([("exact posterior", exact), ("mean-field optimum", mean_field), *fits]))


def text_sequential(posterior: Gaussian, k: int, n: int, vi: Gaussian | None = None) -> ChartText:
    """The sequential-updating charts' numbers: the posterior after k of n points, and a VI fit on the same points."""
    summary = f"After {k:,} of {n:,} points: posterior {_describe(posterior)}."
    named = [(f"posterior after {k:,}", posterior)]
    if vi is not None:
        summary += f" Bayes by Backprop on the same points: {_describe(vi)}."
        named.append((f"Bayes by Backprop on {k:,}", vi))
    return ChartText(summary, _gaussian_table(named))
