"""Unknown noise sd: the noise sd learned, exact by quadrature, against the mean-field optimum and the fits."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from bayesdemo.charts import figures_explore
from bayesdemo.core.config import METHOD_LABELS, FitConfig
from bayesdemo.core.exact import Gaussian
from bayesdemo.core.priors import NOISE_PRIOR_KINDS, Model, NoiseSdPrior
from bayesdemo.page.explore.common import (
    PageContext,
    captioned_table,
    compute,
    describe_error,
    draw_explore_job,
    fmt,
    moments_row,
    request,
    requested,
    session_cache,
    table_of,
)
from bayesdemo.page.live_chart import live_chart
from bayesdemo.references.noise_sd import noise_sd_posterior
from bayesdemo.workers import explore_budget

if TYPE_CHECKING:
    from bayesdemo.references.mean_field import MeanFieldOptimum  # torch: not loaded for a type

NOISE_BBB = FitConfig(method="bbb", steps=3000, learn_noise=True)  # ~3.5 s; 1500 steps had not settled on s
# Pyro SVI with s learned steps on Pyro's own Trace_ELBO (~4-5 ms a step here): at lr 0.05 it took 3000 steps (~12 s)
# to settle; at lr 0.2, 1000 steps (~4 s) put s's mean within 0.4% and every sd within 5% of the mean-field optimum.
NOISE_SVI = FitConfig(method="svi", guide="normal", steps=1000, lr=0.2, learn_noise=True)
NOISE_PRIOR_LABELS = {
    "half_normal": "half-normal, scale 1",
    "log_normal": "log-normal, median 0.1, sd of log s 1",
    "inverse_gamma": "inverse-gamma on s², shape 2, rate 0.01",
}
NoiseFit = explore_budget.NoiseFit


def noise_row(name: str, q: Gaussian, noise_mean: float, noise_sd: float) -> dict[str, str]:
    """One table row: q's (slope, intercept) moments and the noise sd's mean and sd."""
    return moments_row(name, q, {"Noise sd mean": noise_mean, "Noise sd sd": noise_sd})


def draw_unknown_noise(context: PageContext) -> None:
    """The noise sd learned, not known: exact p(s | y) and theta's moments by quadrature, the mean-field optimum,
    Bayes by Backprop and Pyro SVI, each with a q over log s (docs/MATH.md, Unknown noise sd)."""
    kind = st.selectbox(
        "Prior on the noise sd s",
        list(NOISE_PRIOR_KINDS),
        key="explore_noise_prior",
        format_func=lambda kind: NOISE_PRIOR_LABELS[kind],
    )
    scenario = context.scenario
    model = Model(scenario.prior, scenario.model.noise_sd, NoiseSdPrior(kind=kind))
    try:
        reference = noise_sd_posterior(context.dataset, model)
    except (ValueError, ArithmeticError) as error:
        st.error(describe_error(error) if isinstance(error, ValueError) else f"Quadrature failed: {error}")
        return
    cost = explore_budget.full_batch_fit_cost(
        context.dataset.n, [(config.steps_in_force, config.samples_in_force) for config in (NOISE_BBB, NOISE_SVI)]
    )
    refusal = cost.refusal("the number of points n")
    st.button(
        f"Fit the mean-field optimum, {METHOD_LABELS['bbb']} and {NOISE_SVI.label} with s learned",
        key="explore_noise_run",
        on_click=request,
        args=("noise",),
        disabled=bool(refusal),
    )
    if refusal:
        st.warning(refusal)
    learned_fits = session_cache("explore_noise_cache", context.dataset, scenario.model)
    if requested("noise") and not refusal:
        arguments = (context.dataset, model, (("bbb", NOISE_BBB), ("svi", NOISE_SVI)))
        compute("noise", learned_fits, model, cost, explore_budget.noise_sd_fits, arguments, "the number of points n")
    draw_explore_job("noise")
    fits: tuple[MeanFieldOptimum, dict[str, NoiseFit]] | None = learned_fits.get(model)
    rows = [noise_row("exact, quadrature over s", reference.theta, reference.noise_sd_mean, reference.noise_sd_sd)]
    curves: list[tuple[str, float, float]] = []
    if fits is not None:
        optimum, learned = fits
        rows.append(noise_row(figures_explore.MEAN_FIELD_LABEL, optimum.q, optimum.noise_sd_mean, optimum.noise_sd_sd))
        curves.append((figures_explore.MEAN_FIELD_LABEL, optimum.noise_sd_mean, optimum.noise_sd_sd))
        for label, (q, noise_mean, noise_sd) in (
            (METHOD_LABELS["bbb"], learned["bbb"]),
            (NOISE_SVI.label, learned["svi"]),
        ):
            rows.append(noise_row(label, q, noise_mean, noise_sd))
            curves.append((label, noise_mean, noise_sd))
    true_noise_sd = float(scenario.data.noise_sd) if context.synthetic else None
    live_chart(
        figures_explore.fig_noise_sd(reference.noise_sd_grid, reference.density, curves, true_noise_sd),
        "explore_noise_chart",
    )
    captioned_table(
        "the mean and sd of the slope, the intercept and the noise sd s, for "
        + "; ".join(row[""] for row in rows)
        + " (a row each).",
        table_of(rows),
    )
    st.caption(
        f"Exact: p(s | y) on a grid of s, theta's moments mixed over it (log p(y) = {fmt(reference.log_evidence)}). "
        "The live fits above keep s known; this view learns it."
    )
