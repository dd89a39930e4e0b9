"""Other priors: Laplace, Student-t or a scale mixture per parameter, exact by grid or mixture, and the fits."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from bayesdemo.charts import figures_explore
from bayesdemo.core.config import FitConfig
from bayesdemo.core.exact import Gaussian
from bayesdemo.core.priors import PARAMETER_NAMES, PRIOR_KINDS, Model, ParameterPrior, Prior
from bayesdemo.page.explore.common import (
    PageContext,
    captioned_table,
    compute,
    describe_error,
    draw_explore_job,
    fmt,
    moments_row,
    on_explore_again,
    request,
    requested,
    session_cache,
    stopped_for,
    table_of,
)
from bayesdemo.page.live_chart import live_chart
from bayesdemo.references.grid import GridPosterior
from bayesdemo.references.mixture import MixturePosterior
from bayesdemo.workers import explore_budget

if TYPE_CHECKING:
    from bayesdemo.references.mean_field import MeanFieldOptimum  # torch: not loaded for a type

# Fits under any prior: 2000 steps put both within 5% of the mean-field optimum's sds on the default data (seeds 0-2;
# at 1500 Pyro's intercept sd was still 12% wide on seed 0); about 1.5 s (BBB) and 2 s (Pyro SVI) each.
PRIOR_FITS = (
    FitConfig(method="bbb", kl="monte_carlo", steps=2000),
    FitConfig(method="svi", guide="normal", steps=2000),
)
PRIOR_DISAGREEMENT_SDS = 3.0  # warn when the mean-field optimum's mean is this many exact sds from the grid's
PRIOR_FAMILY_LABELS = {
    "gaussian": "Gaussian",
    "laplace": "Laplace",
    "student_t": "Student-t",
    "scale_mixture": "Scale mixture (Blundell)",
}


def parameter_prior_input(name: str, centre: float, spread: float) -> tuple[ParameterPrior | None, str | None]:
    """One parameter's prior family and its settings (defaults: the page's prior), or None and the error."""
    label = name.capitalize()
    kind = st.selectbox(
        f"{label} prior",
        list(PRIOR_KINDS),
        index=1,
        key=f"explore_prior_{name}_kind",
        format_func=lambda kind: PRIOR_FAMILY_LABELS[kind],
    )
    settings = {
        "location": st.number_input("Location", value=centre, format="%.4g", key=f"explore_prior_{name}_location"),
        "scale": st.number_input(
            "Scale",
            value=spread,
            format="%.4g",
            key=f"explore_prior_{name}_scale",
            help="Gaussian sd, Laplace scale b, Student-t scale, or the scale mixture's first sd.",
        ),
    }
    if kind == "student_t":
        settings["df"] = st.number_input("Degrees of freedom", value=3.0, format="%.4g", key=f"explore_prior_{name}_df")
    if kind == "scale_mixture":
        settings["mixture_weight"] = st.number_input(
            "Mixture weight π",
            value=0.5,
            format="%.4g",
            key=f"explore_prior_{name}_weight",
            help="Weight of N(location, scale²); the rest goes to N(location, second scale²) (Blundell et al. eq. 7).",
        )
        settings["second_scale"] = st.number_input(
            "Second scale", value=0.1, format="%.4g", key=f"explore_prior_{name}_second_scale"
        )
    try:
        return ParameterPrior(kind, **settings), None
    except ValueError as error:
        return None, f"{label} prior · {describe_error(error)}"


def reference_label(reference: GridPosterior | MixturePosterior) -> str:
    """How the exact posterior was computed, as the table and the figures name it."""
    return "exact, mixture" if isinstance(reference, MixturePosterior) else "exact, grid"


def reference_method(reference: GridPosterior | MixturePosterior) -> str:
    """One phrase saying how the exact posterior was computed."""
    if isinstance(reference, MixturePosterior):
        return f"a mixture of {len(reference.components)} conjugate posteriors weighted by their evidence"
    count = len(reference.windows)
    return f"the log joint on {count} whitened {reference.points}² grid{'s' if count > 1 else ''}"


def optima_note(optimum: MeanFieldOptimum) -> str | None:
    """The lesson when the ELBO has several local optima, or None."""
    count = len(optimum.optima)
    if count < 2:
        return None
    other = "the other one" if count == 2 else "another one"
    elbos = ", ".join(fmt(elbo, 2, "fixed") for _, elbo in optimum.optima)
    return (
        f"The ELBO has {count} optima here; the best is shown. Variational inference started elsewhere can stop at "
        f"{other}. (ELBOs: {elbos}.)"
    )


def draw_other_priors(context: PageContext) -> None:
    """Laplace, Student-t or Blundell's scale mixture per parameter: the exact posterior by grid integration, the
    mean-field optimum, and Bayes by Backprop (Monte-Carlo KL) and Pyro SVI under the same prior (docs/MATH.md,
    Non-Gaussian priors)."""
    page_prior = context.scenario.prior
    parts: list[ParameterPrior] = []
    problems: list[str] = []
    for parameter, (column, name) in enumerate(zip(st.columns(2), PARAMETER_NAMES, strict=True)):
        with column:
            part, problem = parameter_prior_input(
                name, float(page_prior.mean[parameter]), float(page_prior.sd[parameter])
            )
        if part is not None:
            parts.append(part)
        if problem is not None:
            problems.append(problem)
    if problems:
        for problem in problems:
            st.error(problem)
        return
    model = Model(Prior(*parts), context.scenario.model.noise_sd)
    labels = [config.label for config in PRIOR_FITS]
    cost = explore_budget.full_batch_fit_cost(
        context.dataset.n, [(config.steps_in_force, config.samples_in_force) for config in PRIOR_FITS]
    )
    refusal = cost.refusal("the number of points n")
    st.button(
        f"Fit {' and '.join(labels)} under this prior",
        key="explore_priors_run",
        on_click=request,
        args=("priors",),
        help=f"{PRIOR_FITS[0].steps} steps each; Bayes by Backprop estimates the KL by Monte Carlo.",
        disabled=bool(refusal),
    )
    if refusal:
        st.warning(refusal)
    fits_by_prior = session_cache("explore_priors_cache", context.dataset, context.scenario.model)
    if requested("priors") and not refusal:
        arguments = (context.dataset, model, tuple(zip(labels, PRIOR_FITS, strict=True)))
        compute(
            "priors", fits_by_prior, model, cost, explore_budget.fits_under_prior, arguments, "the number of points n"
        )
    draw_explore_job("priors")
    # The exact posterior under this prior and the mean-field optimum, per prior: in a worker past the inline limit,
    # refused past the budget; a cancelled or failed one starts again only when asked.
    references = session_cache("explore_priors_reference_cache", context.dataset, context.scenario.model)
    reference_cost = explore_budget.prior_reference_cost(context.dataset.n)
    reference_refusal = reference_cost.refusal("the number of points n")
    if reference_refusal:
        st.warning(reference_refusal.replace("Not run", "Exact posterior not computed", 1))
        return
    if stopped_for("priors_reference", model):
        draw_explore_job("priors_reference")
        st.button(
            "Compute the exact posterior again",
            key="explore_priors_reference_again",
            on_click=on_explore_again,
            args=("priors_reference",),
        )
        return
    reference_arguments = (context.dataset, model)
    lower = "the number of points n"
    compute(
        "priors_reference",
        references,
        model,
        reference_cost,
        explore_budget.prior_reference,
        reference_arguments,
        lower,
    )
    draw_explore_job("priors_reference")
    if model not in references:
        return
    grid, optimum = references[model]
    apart = np.abs(optimum.q.mean - grid.mean) / grid.sd
    if np.any(apart > PRIOR_DISAGREEMENT_SDS):
        st.warning(
            f"The mean-field optimum sits {float(np.max(apart)):.0f} exact sds from the exact mean, which counts every "
            "mode of the posterior: a single factorised Gaussian covers only part of it."
        )
    lesson = optima_note(optimum)
    if lesson is not None:
        st.info(lesson)
    fitted: list[tuple[str, Gaussian, float]] = fits_by_prior.get(model, [])
    named = [(figures_explore.MEAN_FIELD_LABEL, optimum.q), *((label, q) for label, q, _ in fitted)]
    for column, parameter, (axis, density) in zip(
        st.columns(2),
        (0, 1),
        zip((grid.slope_axis, grid.intercept_axis), grid.marginal_densities(), strict=True),
        strict=True,
    ):
        with column:
            live_chart(
                figures_explore.fig_prior_marginal(
                    axis, density, parts[parameter], named, parameter, reference_label(grid).replace(",", " posterior,")
                ),
                f"explore_priors_{PARAMETER_NAMES[parameter]}",
            )
    rows = [moments_row(reference_label(grid), grid.gaussian), *(moments_row(label, q) for label, q in named)]
    captioned_table(
        "the mean and sd of the slope and the intercept, for " + "; ".join(row[""] for row in rows) + " (a row each).",
        table_of(rows),
    )
    notes = [
        f"Exact: {reference_method(grid)} · correlation **{fmt(round(grid.corr, 3) + 0.0, 3, 'fixed')}** · "
        f"log p(y) = **{fmt(grid.log_evidence)}**."
    ]
    if fitted:
        notes.append(" · ".join(f"{label}: {seconds:.1f} s" for label, _, seconds in fitted) + ".")
    else:
        notes.append("Press the button to fit.")
    st.markdown(" ".join(notes))
    st.caption(
        "Both fits aim at the mean-field optimum (a factorised Gaussian), not at the exact posterior. A hundred points "
        "pin the line down and a wide prior barely matters: try a Laplace scale of 0.02 on the slope, or upload a "
        "few points, to see the prior pull."
    )
