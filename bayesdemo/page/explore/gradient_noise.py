"""Gradient noise: the measured variance of Bayes by Backprop's gradients per estimator."""

from __future__ import annotations

import numpy as np
import streamlit as st

from bayesdemo.charts import figures_explore
from bayesdemo.core.config import METHOD_LABELS, FitConfig
from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import Gaussian
from bayesdemo.core.priors import Model
from bayesdemo.page.explore.common import (
    LATEST,
    PageContext,
    ViewReader,
    captioned_table,
    compute,
    draw_explore_job,
    fmt,
    request,
    requested,
    session_cache,
)
from bayesdemo.page.live_chart import live_chart
from bayesdemo.references.parameter_space import has_ellipse
from bayesdemo.workers import explore_budget
from bayesdemo.workers.jobs import JobView

GRADIENT_REPEATS = 300  # gradient draws per estimator (8 estimators take about 1.3 s)


def gradient_point(context: PageContext, view: JobView | None) -> tuple[str, Gaussian]:
    """Where to measure: the live Bayes by Backprop q if a fit has one, else the mean-field optimum (its target)."""
    for fit in view.fits if view is not None else ():
        if fit.config.method == "bbb" and fit.last is not None and has_ellipse(fit.last.gaussian):
            return f"the live Bayes by Backprop q at step {fit.last.step:,}", fit.last.gaussian
    return "the mean-field optimum (where Bayes by Backprop ends)", context.exact.mean_field


def gradient_estimators(fit: FitConfig) -> list[tuple[str, FitConfig]]:
    """Bayes by Backprop's estimators to compare: 1 and the fit's samples per step, weight sampling or local
    reparameterisation, closed-form or Monte-Carlo KL; everything else as in `fit`."""
    base = fit if fit.method == "bbb" else FitConfig(method="bbb", batch_size=fit.batch_size, seed=fit.seed)
    counts = sorted({1, base.samples_in_force})
    estimators = []
    for samples in counts:
        for local in (False, True):
            for kl in ("closed", "monte_carlo"):
                label = f"{samples} sample{'s' if samples > 1 else ''}, {'local' if local else 'weights'}, {kl} KL"
                config = FitConfig(
                    method="bbb",
                    samples=samples,
                    local_reparam=local,
                    kl=kl,
                    batch_size=base.batch_size,
                    seed=base.seed,
                    objective=base.objective,
                )
                estimators.append((label.replace("monte_carlo", "MC"), config))
    return estimators


def local_reparameterisation_gains(dataset: Dataset, model: Model, q: Gaussian) -> tuple[float, float] | None:
    """Closed-form variance ratios, weight sampling over local reparameterisation, of the slope's mean and sd
    gradients at q (docs/MATH.md, Gradient noise); None when q is not factorised."""
    if q.cov[0, 1] != 0.0:
        return None
    from bayesdemo.references.gradients import gradient_variance  # torch: loaded when this view is drawn

    weights_mean, weights_sd = gradient_variance(dataset, model, q, local_reparam=False)
    local_mean, local_sd = gradient_variance(dataset, model, q, local_reparam=True)
    return float(weights_mean[0] / local_mean[0]), float(weights_sd[0] / local_sd[0])


def draw_gradient_noise(context: PageContext, read_view: ViewReader) -> None:
    """Measured variance of Bayes by Backprop's mu-gradient per estimator, at the live q (docs/MATH.md, local
    reparam)."""
    from bayesdemo.references.gradients import GRADIENT_CHUNK_ELEMENTS  # torch: loaded when this view is drawn

    where, q = gradient_point(context, read_view())
    st.markdown(
        f"How noisy is one step's gradient? {GRADIENT_REPEATS} independent draws of d loss / d mean and d loss / d sd "
        f"per estimator, at {where}."
    )
    estimators = gradient_estimators(context.scenario.fit)
    batch_points = min(context.scenario.fit.batch_size or context.dataset.n, context.dataset.n)
    cost = explore_budget.gradient_noise_cost(
        context.dataset.n,
        batch_points,
        [config.samples_in_force for _, config in estimators],
        GRADIENT_REPEATS,
        GRADIENT_CHUNK_ELEMENTS,
    )
    lower = "the number of points n, the batch size or the samples per step in the sidebar"
    refusal = cost.refusal(lower)
    st.button(
        "Measure gradient noise",
        key="explore_gradient_run",
        on_click=request,
        args=("gradient",),
        disabled=bool(refusal),
    )
    if refusal:
        st.warning(refusal)
    dataset, model = context.dataset, context.scenario.model
    measured = session_cache("explore_gradient_cache", dataset, model)
    settings = (where, tuple(q.mean), tuple(q.sd), tuple(config for _, config in estimators))
    if requested("gradient") and not refusal:
        measured[("point", settings)] = (where, q)
        arguments = (dataset, model, q, tuple(estimators), GRADIENT_REPEATS)
        compute("gradient", measured, settings, cost, explore_budget.gradient_noise_rows, arguments, lower)
    draw_explore_job("gradient")
    shown = settings if settings in measured else measured.get(LATEST)
    if shown is None:
        st.caption(
            f"Uses the sidebar's batch size, seed and samples per step ({METHOD_LABELS['bbb']} defaults for other "
            "methods). Local reparameterisation samples each prediction instead of the weights (Kingma et al. 2015)."
        )
        return
    rows: list[explore_budget.GradientRow] = measured[shown]
    measured_where, measured_q = measured[("point", shown)]
    mean_rows = [(label, variance) for label, variance, _ in rows]
    live_chart(figures_explore.fig_gradient_variance(mean_rows), "explore_gradient_chart")
    first_mean, first_sd = rows[0][1], rows[0][2]
    table = {
        "Estimator": [label for label, _, _ in rows],
        "Variance (slope)": [fmt(variance[0], 3, "general") for _, variance, _ in rows],
        "Variance (intercept)": [fmt(variance[1], 3, "general") for _, variance, _ in rows],
        "vs first row (slope)": [fmt(variance[0] / first_mean[0], 3, "general") for _, variance, _ in rows],
        "sd gradient variance (slope)": [fmt(sd_variance[0], 3, "general") for _, _, sd_variance in rows],
        "sd gradient vs first row (slope)": [
            fmt(sd_variance[0] / first_sd[0], 3, "general") for _, _, sd_variance in rows
        ],
    }
    captioned_table(
        "for each gradient estimator (a row), the variance of the gradient of the slope's and the intercept's means "
        "(the chart's bars), the slope's as a multiple of the first row's, then the variance of the gradient of the "
        "slope's sd and its multiple of the first row's.",
        table,
    )
    notes = [
        f"Measured at {measured_where}. The variance columns are for the gradient of the means, the sd gradient "
        "columns for the gradient of the sds."
    ]
    gains = local_reparameterisation_gains(dataset, model, measured_q)
    if gains is not None:
        notes.append(
            f"For these n = {dataset.n:,} points the closed form (one sample, full batch) gives local "
            f"reparameterisation {fmt(gains[0])} times less variance for the slope mean's gradient and "
            f"{fmt(gains[1])} times less for the slope sd's gradient. The first gain grows in proportion to n (the "
            "points' noise averages out instead of adding up); the second stays a few fold near the optimum."
        )
    largest = max(float(np.max(variance)) for _, variance, _ in rows)
    if any(float(np.max(variance)) < 1e-12 * largest for _, variance, _ in rows):
        notes.append(
            "A variance at rounding level means no noise at all: with draws in antithetic pairs (ε, −ε) the "
            "gradient of the mean, linear in ε for this model, is exact."
        )
    st.caption(" ".join(notes))
