"""The main area's live view: exact posterior, progress, convergence charts, fit table, loss and data."""

from __future__ import annotations

import functools

import streamlit as st

from bayesdemo.charts import chart_text, figures
from bayesdemo.core.exact import ExactPosterior
from bayesdemo.core.markup import escape_markdown
from bayesdemo.core.priors import PARAMETER_NAMES
from bayesdemo.fitting.report import exact_summary
from bayesdemo.page import explore, page_lessons
from bayesdemo.page.context import Context
from bayesdemo.page.fit_status import FitStatus, fit_rows, fit_statuses, progress_line
from bayesdemo.page.form import fmt
from bayesdemo.page.live_chart import live_chart
from bayesdemo.page.live_table import live_table
from bayesdemo.teaching import explain
from bayesdemo.teaching.glossary import define_used
from bayesdemo.workers.jobs import Job, JobView, paced_interval_s

REFRESH_RUNNING_S = 0.2  # live redraw interval while training
REFRESH_PAUSED_S = 2.0  # slower heartbeat-only redraw while paused
SLOWER_REDRAW_EVERY = 4  # the loss, data and explore charts redraw once per this many live redraws


def draw_exact_summary(context: Context) -> None:
    """The exact posterior's headline numbers (report.exact_summary) as metrics."""
    summary = exact_summary(context.exact)
    st.markdown("**Exact posterior**: the answer every fit is judged against")
    columns = st.columns(5)
    for column, (label, value, help_text) in zip(
        columns,
        (
            ("Slope mean", summary["mean"]["slope"], "Exact posterior mean m_N of the slope (PRML 3.50)."),
            ("Slope sd", summary["sd"]["slope"], "Exact posterior sd of the slope, sqrt(S_N[0,0]) (PRML 3.51)."),
            ("Intercept mean", summary["mean"]["intercept"], "Exact posterior mean m_N of the intercept."),
            ("Intercept sd", summary["sd"]["intercept"], "Exact posterior sd of the intercept, sqrt(S_N[1,1])."),
            ("Correlation", summary["corr"], "Posterior correlation of slope and intercept."),
        ),
        strict=True,
    ):
        with column:
            st.metric(label, fmt(value), help=help_text, border=True)
    caption = (
        f"Mean-field optimum sds (where diagonal guides stop): slope {fmt(summary['mean_field_sd']['slope'])}, "
        f"intercept {fmt(summary['mean_field_sd']['intercept'])} · log evidence {fmt(summary['log_evidence'], 6)} · "
        f"data: {escape_markdown(context.dataset.source)}, n = {context.dataset.n:,}"
    )
    st.caption(caption, help=define_used(caption))


def draw_status(view: JobView | None, statuses: tuple[FitStatus, ...], previous: str = "") -> None:
    """Progress bar and any messages (divergence as a warning; the charts keep the last snapshot).

    A job on the previous settings (`previous`, previous_settings_note) says so in its progress line and above the
    charts.
    """
    if view is None:
        st.progress(0.0, text="Ready: press **Run** in the sidebar to start fitting.")
        return
    suffix = " · on the previous settings" if previous else ""
    st.progress(view.fraction_done, text=progress_line(view, statuses) + suffix)
    if previous:
        st.warning(previous, icon="⏮️")
    for fit in view.fits:
        # Divergence, and a fit that ran out of memory (stopped with its own message, not "Stopped at step ...").
        if fit.status == "diverged" or (fit.status == "stopped" and not fit.message.startswith("Stopped")):
            st.warning(f"{fit.label}: {fit.message}", icon="⚠️")
    if view.state == "stopped" and view.message and view.message != "Stopped.":
        st.info(view.message)


def draw_fit_table(view: JobView | None, exact: ExactPosterior, statuses: tuple[FitStatus, ...]) -> None:
    """Each fit's current numbers and status, below the charts."""
    if view is not None:
        rows = fit_rows(view, exact, statuses)
        live_table(rows, border="horizontal")  # st.table of the rows, without pandas on every live redraw
        st.caption(headers_defined(tuple(rows)))  # the terms of the column headers, defined right below them


@functools.lru_cache(maxsize=8)
def headers_defined(headers: tuple[str, ...]) -> str:
    """define_used of a table's column headers, worked out once per set of headers (the fit table's never change)."""
    return define_used(*headers)


def total_steps(context: Context, view: JobView | None) -> int:
    """The step axis's extent: the longest fit of the job (or of the pending settings)."""
    if view is not None:
        return max(fit.total_steps for fit in view.fits)
    return max(fit.steps_in_force for fit in context.scenario.fit_configs())


def draw_convergence(context: Context, view: JobView | None) -> None:
    """Mean and sd of each parameter against the exact posterior (and the mean-field optimum)."""
    traces = view.traces() if view is not None else ()
    total = total_steps(context, view)
    shown = page_lessons.shown_charts()  # a lesson step shows only its charts
    for parameter, name in enumerate(PARAMETER_NAMES):
        if name not in shown:
            continue
        left, right = st.columns(2)
        with left:
            live_chart(figures.mean_spec(traces, context.exact, parameter, total), f"chart_mean_{name}")
            st.caption(chart_text.text_mean(traces, context.exact, parameter).summary)  # the chart's text alternative
        with right:
            live_chart(figures.sd_spec(traces, context.exact, parameter, total), f"chart_sd_{name}")
            st.caption(chart_text.text_sd(traces, context.exact, parameter).summary)


def draw_loss_and_data(context: Context, view: JobView | None) -> None:
    """The loss against -log p(y), and the data with the exact and each fit's predictive bands."""
    traces = view.traces() if view is not None else ()
    shown = [chart for chart in ("loss", "data") if chart in page_lessons.shown_charts()]  # a lesson step's charts
    if not shown:
        return
    columns = dict(zip(shown, st.columns(2), strict=False))
    if "loss" in columns:
        with columns["loss"]:
            live_chart(figures.loss_spec(traces, context.exact, total_steps(context, view)), "chart_loss")
            st.caption(chart_text.text_loss(traces, context.exact).summary)
    if "data" not in columns:
        return
    with columns["data"]:
        fits = [(fit.label, fit.last.gaussian) for fit in view.fits if fit.last is not None] if view else []
        data = context.scenario.data
        true_line = (float(data.slope), float(data.intercept)) if context.synthetic else None
        noise_sd = context.scenario.model.noise_sd
        live_chart(figures.data_spec(context.dataset, context.exact, fits, noise_sd, true_line), "chart_data")
        st.caption(chart_text.text_data(context.dataset, context.exact, fits).summary)


def current_view() -> JobView | None:
    """The job's current view (touching its heartbeat), or None without a job."""
    job: Job | None = st.session_state.get("job")
    if job is None:
        return None
    job.touch()
    return job.view()


def live_refresh_s(view: JobView | None) -> float | None:
    """How often the live parts redraw: at the running or paused pace while the job may still change, else None.

    Records whether they poll the job, and its state, in session state: draw_live reruns the whole page when either
    changes.
    """
    polling_view = view if view is not None and view.active else None  # the job's view while it may still change
    st.session_state["polling"] = polling_view is not None
    st.session_state["polling_state"] = polling_view.state if polling_view is not None else None
    if polling_view is None:
        return None
    # While training, slower when more jobs train than the server has cores (jobs.paced_interval_s).
    return paced_interval_s(REFRESH_RUNNING_S) if polling_view.state == "running" else REFRESH_PAUSED_S


def draw_live(context: Context, previous: str = "") -> None:
    """The progress and the convergence charts: what changes fastest while a job trains.

    `previous` (previous_settings_note) marks a job that ran on settings other than the current ones.
    """
    view = current_view()
    if st.session_state.get("polling") and (view is None or not view.active):
        # The job just ended: one full rerun stops the polling and refreshes the explanation and exports. Only that
        # run clears "polling", so a full rerun lost between fragment runs is asked for again by the next one.
        st.rerun(scope="app")
    if st.session_state.get("polling") and view is not None and view.state != st.session_state.get("polling_state"):
        # A queued job started (polled every REFRESH_PAUSED_S): one full rerun switches to the live redraw rate.
        st.rerun(scope="app")
    # Each part in a container of its own: the fragment's children are the same blocks whatever a part shows, so a
    # redraw that overlaps another run never finds an element where it expects a block.
    statuses = fit_statuses(view, context)
    previous = previous if view is not None else ""
    with st.container():
        draw_status(view, statuses, previous)
    with st.container():
        draw_convergence(context, view)
    with st.container():
        draw_fit_table(view, context.exact, statuses)
        if previous:
            st.caption("These rows are the fits of the previous settings. Press **Run** to fit the current ones.")


def draw_live_fragments(context: Context, refresh_s: float | None, previous: str = "") -> None:
    """The live parts in fragments rerun every `refresh_s` s (None: only with the page); the rest less often.

    The two slower-moving charts refresh at a quarter of the rate, leaving more of a projector laptop's CPU to the
    convergence charts and to training. Each chart is updated in place (bayesdemo/page/live_chart.py).
    """

    @st.fragment(run_every=refresh_s)
    def live_convergence() -> None:
        explore.touch_explore_jobs()  # explore computations keep their heartbeat while another explore tab is open
        draw_live(context, previous)

    @st.fragment(run_every=None if refresh_s is None else SLOWER_REDRAW_EVERY * refresh_s)
    def live_loss_and_data() -> None:
        draw_loss_and_data(context, current_view())

    live_convergence()
    live_loss_and_data()


def draw_explain(context: Context, view: JobView | None) -> None:
    """The explanation of what the charts show, with this data's numbers."""
    latest = {fit.config.label: fit.last for fit in view.fits if fit.last is not None} if view else {}
    for kind, text in explain.sections(context.exact, context.dataset, context.scenario, latest):
        if kind == "latex":
            st.latex(text)
        else:
            st.markdown(text)
