"""Basis functions: polynomial or RBF features, the exact fit and the log evidence against model size."""

from __future__ import annotations

import streamlit as st

from bayesdemo.charts import figures_explore
from bayesdemo.core.data import Dataset
from bayesdemo.core.priors import Model
from bayesdemo.core.validation import check_int
from bayesdemo.page.explore.common import (
    PageContext,
    compute,
    describe_error,
    draw_explore_job,
    fmt,
    on_explore_again,
    session_cache,
    stopped_for,
    whole_number_input,
)
from bayesdemo.page.live_chart import live_chart
from bayesdemo.references.basis import (
    BASIS_FAMILIES,
    BASIS_LABELS,
    DEFAULT_MODEL,
    MAX_CENTRES,
    MAX_DEGREE,
    BasisConfig,
    simulate_polynomial,
)
from bayesdemo.workers import explore_budget

BASIS_CUBIC = (0.5, 1.0, -1.5, -2.0)  # c_0..c_3 of the simulated curve that the basis view offers besides the page data


def basis_data(context: PageContext, choice: str) -> tuple[Dataset, Model]:
    """The page's data with its model, or a simulated cubic with the basis module's default model."""
    if choice == "page":
        return context.dataset, context.scenario.model
    return simulate_polynomial(BASIS_CUBIC, n=50, noise_sd=DEFAULT_MODEL.noise_sd, seed=0), DEFAULT_MODEL


def draw_basis(context: PageContext) -> None:
    """Polynomial or RBF features: the exact fit with its predictive bands, and log evidence against model size."""
    columns = st.columns(4)
    with columns[0]:
        choice = st.selectbox(
            "Data",
            ["cubic", "page"],
            key="explore_basis_data",
            format_func=lambda name: "this page's data" if name == "page" else "a simulated cubic",
        )
    with columns[1]:
        family = st.selectbox(
            "Basis family",
            list(BASIS_FAMILIES),
            key="explore_basis_family",
            format_func=lambda name: BASIS_LABELS[name],
        )
    polynomial = family == "polynomial"
    with columns[2]:
        size = whole_number_input(
            "Polynomial degree" if polynomial else "Number of RBF centres", 3, 1, "explore_basis_size"
        )
    with columns[3]:
        width = st.number_input(
            "RBF width (0: centre spacing)",
            value=0.0,
            step=0.05,
            format="%.4g",
            key="explore_basis_width",
            disabled=polynomial,
        )
    largest = whole_number_input(
        "Largest size on the evidence curve",
        10,
        1,
        "explore_basis_max",
        help=f"Degrees 0 to this (at most {MAX_DEGREE}), or 1 to this many centres (at most {MAX_CENTRES}).",
    )
    dataset, model = basis_data(context, choice)
    try:
        config = BasisConfig(family, size, width if not polynomial else 0.0)
        top = check_int("max_size", largest, 1, MAX_DEGREE if polynomial else MAX_CENTRES)
        sizes = list(range(0 if polynomial else 1, top + 1))
        lower = "the number of RBF centres, the largest size on the evidence curve, or the number of points n"
        cost = explore_budget.basis_cost(dataset.n, config.size, sizes)
        refusal = cost.refusal(lower)
        if refusal:
            st.warning(refusal)
            return
    except ValueError as error:
        st.error(describe_error(error))
        return
    results = session_cache("explore_basis_cache", dataset, model)
    key = (config, tuple(sizes))
    if key not in results and not stopped_for("basis", key):  # computed as the settings change, no button
        compute("basis", results, key, cost, explore_budget.basis_results, (dataset, model, config, key[1]), lower)
    draw_explore_job("basis")
    if key not in results:
        if stopped_for("basis", key):
            st.button("Compute again", key="explore_basis_again", on_click=on_explore_again, args=("basis",))
        return
    fit, curve = results[key]
    size_name = f"degree {config.size}" if polynomial else f"{config.size} centres"
    left, right = st.columns(2)
    with left:
        live_chart(
            figures_explore.fig_basis_fit(dataset, fit, f"{BASIS_LABELS[family]}, {size_name}"), "explore_basis_fit"
        )
    with right:
        live_chart(figures_explore.fig_evidence(curve, config.size), "explore_basis_evidence")
    best_name = "degree" if polynomial else "centres"
    st.markdown(
        f"Log evidence of the shown model: **{fmt(fit.log_evidence)}** · best on the curve: {best_name} "
        f"**{curve.best_size}**"
    )
    st.caption(
        "Every weight gets the slope's prior and the constant the intercept's (PRML 3.86): the evidence rises while "
        "extra weights explain the data and falls once they only add freedom."
    )
