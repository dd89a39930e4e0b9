"""Sequential updating: the data one point at a time, prior to posterior, with Bayes by Backprop beside it."""

from __future__ import annotations

from collections.abc import Hashable

import streamlit as st

from bayesdemo.charts import chart_text, figures_explore
from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import Gaussian
from bayesdemo.core.priors import Model
from bayesdemo.page.explore.common import (
    PageContext,
    captioned_table,
    compute,
    draw_explore_job,
    moments_row,
    session_cache,
    stopped_for,
    table_of,
)
from bayesdemo.page.live_chart import live_chart
from bayesdemo.references.sequential import SequentialFitConfig, line_draws, posterior_after, vi_fit_after
from bayesdemo.workers import explore_budget

PLAY_INTERVAL_S = 1.0  # one more data point per this many seconds while sequential updating plays
LINES_DRAWN = 20  # lines drawn from the posterior in the sequential view (same seed for every k: they move smoothly)
SEQUENTIAL_FIT = SequentialFitConfig()  # Bayes by Backprop beside the exact update (~0.3-0.4 s per k, cached)


def on_sequential_goto(points: int) -> None:
    """Show the posterior after `points` points (a target, not a step: a doubled click lands in the same place)."""
    st.session_state["explore_points"] = points


def on_sequential_play(intent: str, points: int, total: int) -> None:
    """Start ("play", from the prior when all points are shown) or stop ("pause") adding points."""
    playing = intent == "play"
    st.session_state["explore_playing"] = playing
    if playing and points >= total:
        st.session_state["explore_points"] = 0


def sequential_vi(dataset: Dataset, model: Model, points: int) -> Gaussian | None:
    """Bayes by Backprop's q on the first `points` points, cached per points for this dataset and model; None while
    it computes in a worker (past the inline limit, as every fit of SEQUENTIAL_FIT is) or after it stopped."""
    fits: dict[Hashable, Gaussian] = session_cache("explore_vi_cache", dataset, model)
    if not stopped_for("sequential", points):
        cost = explore_budget.full_batch_fit_cost(points, [(SEQUENTIAL_FIT.steps, SEQUENTIAL_FIT.samples)])
        arguments = (dataset, model, points, SEQUENTIAL_FIT)
        compute("sequential", fits, points, cost, vi_fit_after, arguments, "the number of points n")
    return fits.get(points)


def draw_sequential(context: PageContext) -> None:
    """Add the data one point at a time: prior -> posterior, lines from it, the band narrowing, and BBB beside it."""
    dataset, model = context.dataset, context.scenario.model
    total = dataset.n
    playing = bool(st.session_state.get("explore_playing"))
    points = min(max(int(st.session_state.get("explore_points", 0)), 0), total)
    left, right = st.columns([1, 3], vertical_alignment="bottom")
    with left:
        st.button(
            "Pause" if playing else "Play",
            key="explore_play",
            icon=":material/pause:" if playing else ":material/play_arrow:",
            on_click=on_sequential_play,
            args=("pause" if playing else "play", points, total),
            width="stretch",
            help=f"Add one point every {PLAY_INTERVAL_S:g} s.",
        )
    with right:
        with_vi = st.toggle(
            "Bayes by Backprop on the same points",
            value=True,
            key="explore_sequential_vi",
            help=f"A {SEQUENTIAL_FIT.steps}-step fit with {SEQUENTIAL_FIT.samples} samples per step, once per "
            "number of points (cached): it settles near the mean-field optimum, inside the exact ellipse.",
        )

    @st.fragment(run_every=PLAY_INTERVAL_S if playing else None)
    def sequential_view() -> None:
        shown = min(max(int(st.session_state.get("explore_points", 0)), 0), total)
        if st.session_state.get("explore_playing"):
            if shown >= total:
                st.session_state["explore_playing"] = False
                st.rerun(scope="app")  # the Play button and the redraw timer follow
            shown += 1
            st.session_state["explore_points"] = shown
        columns = st.columns(6)
        for column, (key, label, icon, target, enabled) in zip(
            columns,
            (
                ("prior", "Prior", "first_page", 0, shown > 0),
                ("back", "−1", "chevron_left", shown - 1, shown > 0),
                ("forward", "+1", "chevron_right", shown + 1, shown < total),
                ("forward_10", "+10", "fast_forward", min(shown + 10, total), shown < total),
                ("all", "All", "last_page", total, shown < total),
            ),
            strict=False,
        ):
            with column:
                st.button(
                    label,
                    key=f"explore_goto_{key}",
                    icon=f":material/{icon}:",
                    on_click=on_sequential_goto,
                    args=(target,),
                    disabled=not enabled,
                    width="stretch",
                )
        with columns[5]:
            st.markdown(f"Points seen: **{shown}** of {total}")
        posterior = posterior_after(dataset, model, shown)
        vi = None
        if with_vi and shown >= 2:
            vi = sequential_vi(dataset, model, shown)
            if vi is None:
                draw_explore_job("sequential")
        rows = [moments_row(f"exact after {shown}", posterior)]
        if vi is not None:
            rows.append(moments_row(f"Bayes by Backprop on {shown}", vi))
        if with_vi and shown < 2:
            st.caption("Bayes by Backprop joins from 2 points on.")
        data = context.scenario.data
        truth = (float(data.slope), float(data.intercept)) if context.synthetic else None
        prior = posterior_after(dataset, model, 0)
        plane, lines = st.columns(2)
        with plane:
            live_chart(
                figures_explore.fig_sequential_plane(prior, posterior, shown, vi=vi, truth=truth),
                "explore_sequential_plane",
            )
        with lines:
            drawn = line_draws(posterior, LINES_DRAWN, seed=0)
            live_chart(
                figures_explore.fig_sequential_data(dataset, shown, posterior, model.noise_sd, drawn, vi=vi),
                "explore_sequential_data",
            )
        st.caption(chart_text.text_sequential(posterior, shown, dataset.n, vi).summary)  # the charts' text alternative
        fitted = " and of Bayes by Backprop fitted to them" if vi is not None else ""
        captioned_table(
            f"the mean and sd of the slope and the intercept, of the exact posterior after {shown} of {total} "
            f"points{fitted}.",
            table_of(rows),
        )

    sequential_view()
