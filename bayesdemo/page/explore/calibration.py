"""Calibration: coverage of 50% and 90% intervals over datasets drawn from the prior."""

from __future__ import annotations

import numpy as np
import streamlit as st

from bayesdemo.charts import figures_explore
from bayesdemo.core.config import FitConfig
from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import exact_posterior
from bayesdemo.page.explore.common import (
    LATEST,
    PageContext,
    captioned_table,
    compute,
    describe_error,
    draw_explore_job,
    fmt,
    request,
    requested,
    session_cache,
    whole_number_input,
)
from bayesdemo.page.live_chart import live_chart
from bayesdemo.references.calibration import CalibrationConfig, CalibrationResult, expected_mean_field_coverage
from bayesdemo.workers import explore_budget

# Bayes by Backprop in the calibration: from the least-squares line until at target, checked every 250 steps, at most
# 2000 steps. On 100 datasets of 20 points from the default prior all 100 reached the mean-field optimum, 5.5 s in all.
# 500 steps from a random start covered 0.07 and 0.03 at 50%, where the mean-field optimum covers 0.23 and 0.27.
CALIBRATION_BBB = FitConfig(method="bbb", steps=2000, samples=16, lr=0.02, seed=0)


def calibration_x_range(context: PageContext) -> tuple[float, float]:
    """The x range of the page's data: the simulation's, or the uploaded data's extent."""
    if context.synthetic:
        return float(context.scenario.data.x_min), float(context.scenario.data.x_max)
    return float(context.dataset.x.min()), float(context.dataset.x.max())


def draw_calibration(context: PageContext) -> None:
    """Coverage of 50% and 90% intervals over K datasets drawn from the prior: exact, mean-field optimum, and BBB."""
    model = context.scenario.model
    columns = st.columns([2, 2, 3, 2], vertical_alignment="bottom")
    with columns[0]:
        datasets = whole_number_input("Simulated datasets K", 100, 50, "explore_calibration_datasets")
    with columns[1]:
        points = whole_number_input("Points per dataset", 20, 10, "explore_calibration_n")
    with columns[2]:
        with_bbb = st.checkbox(
            "Also Bayes by Backprop (about 0.1 s per dataset)",
            value=False,
            key="explore_calibration_bbb",
            help=(
                f"On every dataset: from the least-squares line until at target, at most {CALIBRATION_BBB.steps:,} "
                f"steps with {CALIBRATION_BBB.samples} samples per step. Only fits at target count in its coverage."
            ),
        )
    x_min, x_max = calibration_x_range(context)
    problem = ""
    try:
        config = CalibrationConfig(datasets=datasets, n=points, x_min=x_min, x_max=x_max)
    except ValueError as error:
        config = None
        problem = describe_error(error)
    refusal = None
    lower = "Simulated datasets K or Points per dataset" + (", or leave out Bayes by Backprop" if with_bbb else "")
    if config is not None:
        cost = explore_budget.calibration_cost(config.datasets, config.n, with_bbb)
        refusal = cost.refusal(lower)
    with columns[3]:
        st.button(
            "Run calibration",
            key="explore_calibration_run",
            on_click=request,
            args=("calibration",),
            disabled=config is None or bool(refusal),
            width="stretch",
        )
    if config is None:
        st.error(problem)
    if refusal:
        st.warning(refusal)
    results = session_cache("explore_calibration_cache", context.dataset, model)
    if requested("calibration") and config is not None and not refusal:
        arguments = (model, config, CALIBRATION_BBB if with_bbb else None)
        compute("calibration", results, (config, with_bbb), cost, explore_budget.calibration_result, arguments, lower)
    draw_explore_job("calibration")
    latest = results.get(LATEST)
    if latest is None:
        st.caption(
            f"Draw (slope, intercept) from the prior, simulate y with noise sd {fmt(model.noise_sd)} on x from "
            f"{fmt(x_min)} to {fmt(x_max)}, fit, and count how often each 50% and 90% interval holds the truth. "
            "Press **Run calibration**."
        )
        return
    draw_calibration_result(results[latest])


def draw_calibration_result(result: CalibrationResult) -> None:
    """The coverage chart and its numbers."""
    live_chart(figures_explore.fig_calibration(result), "explore_calibration_chart")
    rows: dict[str, list[str]] = {"": [], "Datasets counted": []}
    for name, method in result.methods.items():
        rows[""].append(figures_explore.CALIBRATION_NAMES.get(name, name))
        rows["Datasets counted"].append(
            f"{method.datasets}" if method.statuses is None else f"{method.datasets_at_target} of {method.datasets}"
        )
        coverage = method.coverage_at_target
        for level_index, level in enumerate(method.levels):
            for parameter, parameter_name in enumerate(("slope", "intercept")):
                column = f"{parameter_name} {level:.0%}"
                rows.setdefault(column, []).append(fmt(coverage[level_index, parameter], 2, "fixed"))
    captioned_table(
        "for each method (a row), the datasets counted and the share of them whose 50% and 90% intervals for the "
        "slope and the intercept held the true value (the chart's points).",
        rows,
    )
    notes = [
        f"Coverage over {result.config.datasets} datasets of {result.config.n} points. Exact inference covers at the "
        "nominal rate (within the ±2 se band); the mean-field optimum's intervals are too narrow when slope and "
        "intercept are correlated, so they under-cover."
    ]
    if result.shared_x is not None:
        design = exact_posterior(Dataset(result.shared_x, np.zeros_like(result.shared_x)), result.model)
        ratio = design.mean_field_sd[:1] / design.sd[:1]  # sqrt(1 - rho^2), the same for both parameters
        predicted = [float(expected_mean_field_coverage(level, ratio)[0]) for level in result.config.levels]
        notes.append(
            f"On this design ρ = {fmt(design.corr, 3, 'fixed')}, so the mean-field optimum should cover "
            + " and ".join(fmt(value, 2, "fixed") for value in predicted)
            + f" at {' and '.join(f'{level:.0%}' for level in result.config.levels)}: 2Φ(z·√(1 − ρ²)) − 1."
        )
    for name, method in result.methods.items():
        missed = method.datasets - method.datasets_at_target
        if missed:
            notes.append(
                f"{missed} of {method.datasets} {figures_explore.CALIBRATION_NAMES.get(name, name)} fits had not "
                "reached their target (the mean-field optimum) and are left out of its coverage: an unconverged fit "
                "says nothing about the method."
            )
    st.caption(" ".join(notes))
