"""MCMC reference: Pyro NUTS on demand, its histograms beside the exact density and the fits."""

from __future__ import annotations

import streamlit as st

from bayesdemo.charts import figures_explore
from bayesdemo.core.exact import ExactPosterior
from bayesdemo.page.explore.common import (
    LATEST,
    PageContext,
    ViewReader,
    captioned_table,
    compute,
    describe_error,
    draw_explore_job,
    fmt,
    latest_fits,
    request,
    requested,
    session_cache,
    whole_number_input,
    widget_value,
)
from bayesdemo.page.live_chart import live_chart
from bayesdemo.references.mcmc import MCMCConfig, MCMCResult, run_nuts
from bayesdemo.workers import explore_budget

MCMC_DEFAULT = MCMCConfig(warmup=100, samples=150)  # about 4 s of Pyro NUTS on this machine


def mcmc_settings() -> tuple[MCMCConfig | None, str | None]:
    """The NUTS settings the widgets describe, or None and the error naming the field."""
    try:
        config = MCMCConfig(
            warmup=widget_value("explore_mcmc_warmup"),
            samples=widget_value("explore_mcmc_samples"),
            seed=widget_value("explore_mcmc_seed"),
        )
    except ValueError as error:
        return None, describe_error(error)
    return config, None


def draw_mcmc(context: PageContext, read_view: ViewReader) -> None:
    """Pyro NUTS on demand (in a worker past the inline limit), its histograms beside the exact density and the fits."""
    dataset, model = context.dataset, context.scenario.model
    left, middle, right, button = st.columns([2, 2, 2, 2], vertical_alignment="bottom")
    with left:
        whole_number_input("NUTS warm-up iterations", MCMC_DEFAULT.warmup, 50, "explore_mcmc_warmup")
    with middle:
        whole_number_input("NUTS draws", MCMC_DEFAULT.samples, 50, "explore_mcmc_samples")
    with right:
        whole_number_input("Seed", MCMC_DEFAULT.seed, 1, "explore_mcmc_seed")
    config, problem = mcmc_settings()
    refusal = None
    if config is not None:
        refusal = explore_budget.nuts_cost(dataset.n, config.total_iterations).refusal(
            "NUTS warm-up iterations, NUTS draws or the number of points n"
        )
    with button:
        st.button(
            "Run NUTS",
            key="explore_mcmc_run",
            on_click=request,
            args=("mcmc",),
            disabled=config is None or bool(refusal),
            width="stretch",
        )
    if problem is not None:
        st.error(problem)
    if refusal:
        st.warning(refusal)
    results = session_cache("explore_mcmc_cache", dataset, model)
    if requested("mcmc") and config is not None and not refusal:
        cost = explore_budget.nuts_cost(dataset.n, config.total_iterations)
        lower = "NUTS warm-up iterations, NUTS draws or the number of points n"
        compute("mcmc", results, config, cost, run_nuts, (dataset, model, config), lower)
    draw_explore_job("mcmc")
    latest = results.get(LATEST)
    if latest is None:
        st.caption(
            "Pyro's No-U-Turn sampler on the same model: the sampling answer the forum poster compared with "
            f"(PyMC there). {MCMC_DEFAULT.warmup} + {MCMC_DEFAULT.samples} iterations take a few seconds."
        )
        return
    draw_mcmc_result(results[latest], context.exact, read_view)


def draw_mcmc_result(result: MCMCResult, exact: ExactPosterior, read_view: ViewReader) -> None:
    """Histograms of the NUTS draws against the exact density, the mean-field optimum and the live fits."""
    fits = [(figures_explore.MEAN_FIELD_LABEL, exact.mean_field), *latest_fits(read_view())]
    left, right = st.columns(2)
    for column, parameter in ((left, 0), (right, 1)):
        with column:
            live_chart(
                figures_explore.fig_mcmc_histogram(result.samples, exact.posterior, fits, parameter),
                f"explore_mcmc_{parameter}",
            )
    rows: dict[str, list[str]] = {"": ["slope", "intercept"]}
    rows["NUTS mean"] = [fmt(value) for value in result.mean]
    rows["Exact mean"] = [fmt(value) for value in exact.mean]
    rows["± MC error"] = [fmt(value) for value in result.mean_standard_error]
    rows["NUTS sd"] = [fmt(value) for value in result.sd]
    rows["Exact sd"] = [fmt(value) for value in exact.sd]
    rows["ESS"] = [fmt(value, 0, "fixed") for value in result.effective_sample_size]
    rows["R-hat"] = [fmt(value, 3, "fixed") for value in result.r_hat]
    captioned_table(
        "for the slope and the intercept (a row each), the NUTS and the exact mean, the Monte-Carlo error of the "
        "NUTS mean, the NUTS and the exact sd, the effective sample size (ESS) and R-hat of the draws.",
        rows,
    )
    st.caption(
        f"{result.samples.shape[0]} draws in {result.seconds:.1f} s · acceptance {result.mean_accept_prob:.2f} · "
        f"{result.divergences} divergent transitions. NUTS agrees with the exact posterior within its Monte-Carlo "
        "error; any mean-field fit is narrower."
    )
