"""Parameter space: the exact 1 and 2 sd ellipses, the mean-field optimum and each live q with its path."""

from __future__ import annotations

import numpy as np
import streamlit as st

from bayesdemo.charts import chart_text, figures_explore
from bayesdemo.charts.figures import TRAJECTORY_POINTS, downsample_indices
from bayesdemo.core.exact import Gaussian
from bayesdemo.page.explore.common import PageContext, ViewReader, fmt, latest_fits
from bayesdemo.page.live_chart import live_chart
from bayesdemo.references.parameter_space import centred_posterior


def draw_parameter_space(context: PageContext, read_view: ViewReader, refresh_s: float | None) -> None:
    """Exact 1 and 2 sd ellipses, the mean-field optimum and each live q with the path its mean took."""
    centre = st.toggle(
        "Centre x (use x − mean x)",
        key="explore_centre_x",
        help="The intercept becomes the line's height at the mean x: the posterior correlation vanishes and the "
        "mean-field optimum equals the exact posterior.",
    )
    exact = centred_posterior(context.dataset, context.scenario.model) if centre else context.exact
    ratio = exact.mean_field_sd / exact.sd
    with st.container():  # the caption comes and goes: the live fragment below keeps its place
        st.markdown(
            f"Posterior correlation of slope and intercept: **{fmt(round(exact.corr, 3) + 0.0, 3, 'fixed')}** · "
            "mean-field sd / exact sd: "
            f"slope **{fmt(ratio[0])}**, intercept **{fmt(ratio[1])}**"
        )
        if centre:
            st.caption("The fits of the current run were trained on raw x, so they are not drawn on centred x.")

    @st.fragment(run_every=refresh_s)
    def live_parameter_space() -> None:
        fits: list[tuple[str, Gaussian]] = []
        paths: list[tuple[str, np.ndarray]] = []
        if not centre:
            view = read_view()
            fits = latest_fits(view)
            if view is not None:
                for label, snapshots in view.traces():
                    if snapshots:
                        shown = downsample_indices(len(snapshots), TRAJECTORY_POINTS)
                        paths.append((label, np.array([snapshots[i].mean[:2] for i in shown])))
        title = "Parameter space: (slope, height at mean x)" if centre else "Parameter space: (slope, intercept)"
        figure = figures_explore.fig_parameter_space(exact.posterior, exact.mean_field, fits, paths, title=title)
        if centre:
            figure.update_yaxes(title_text="intercept at mean x")
        live_chart(figure, "explore_parameter_space")  # updated in place while a fit trains
        second = "intercept at mean x" if centre else "intercept"
        st.caption(chart_text.text_parameter_space(exact.posterior, exact.mean_field, fits, second).summary)

    live_parameter_space()
