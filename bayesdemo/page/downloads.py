"""The Share and export section: the scenario's link and the downloads of a run's results."""

from __future__ import annotations

from urllib.parse import quote

import streamlit as st

from bayesdemo.core import share
from bayesdemo.fitting import export
from bayesdemo.fitting.metrics import target_for
from bayesdemo.page import page_lessons
from bayesdemo.page.context import Context
from bayesdemo.workers.jobs import Job, JobView

LINK_SAFE = ":/?&=#%+,;@~"  # characters of a link kept as they are in its address; others (spaces, brackets) escaped
MARKDOWN_SPECIAL = "\\`*_{}[]()<>#+-.!|~"  # characters Markdown could read as formatting in the link's text
DOWNLOAD_STATES = ("paused", "stopped", "finished")  # job states whose results can be downloaded (not queued: none yet)


def markdown_text(text: str) -> str:
    """`text` with every character Markdown could read as formatting escaped, so it is shown as written."""
    return "".join(f"\\{character}" if character in MARKDOWN_SPECIAL else character for character in text)


def export_files(context: Context, view: JobView, job: Job) -> tuple[str, str]:
    """The trajectory CSV and the results JSON of a job that is not training, made once per job state.

    Passed to the download buttons as text, not as callables: the server names a file by its content, so a button
    the browser still shows from an earlier run of the page keeps working (a callable's link ends with its run).
    """
    key = (job, view.state, tuple(fit.steps_done for fit in view.fits))
    cached = st.session_state.get("export_files")
    if cached is None or cached[0] != key:
        targets = {
            label: target_for(config, context.exact, context.least_squares)
            for label, config in zip(job.labels, job.configs, strict=True)
        }
        trajectory = export.trajectory_csv(view.traces(), context.exact, targets)
        results = export.results_json(context.scenario, context.dataset, context.exact, job.runs())
        cached = (key, trajectory, results)
        st.session_state["export_files"] = cached
    return cached[1], cached[2]


def draw_export(context: Context, job_context: Context, view: JobView | None) -> None:
    """Shareable link of the current settings (`context`) and downloads of the job's (`job_context`) results."""
    # The scenario, and the lesson step, student view and open explore tab, as the address bar keeps them.
    lesson_params = page_lessons.link_params(context.scenario, page_lessons.explore_shown())
    params = {**share.encode(context.scenario), **lesson_params}
    query = "&".join(f"{key}={value}" for key, value in params.items())
    base = st.context.url or ""
    link = f"{base.split('?')[0]}?{query}" if query else base
    if link:
        # A plain link, not st.code: the code block's highlighter is a 1.5 MB script the page would load only for it
        # (docs/performance.md, First view). A link is reachable by keyboard and its text is its own label.
        st.markdown(
            "**Share this scenario.** The address bar already holds it; copy this link (select it, or right-click it "
            f"and copy the link address):\n\n[{markdown_text(link)}]({quote(link, safe=LINK_SAFE)})"
        )
    else:
        st.markdown("**Share this scenario.** The default scenario: its link has no parameters.")
    if not context.synthetic:
        st.caption("Uploaded data are not part of the link: whoever opens it sees simulated data.")
    job: Job | None = st.session_state.get("job")
    ready = False
    trajectory, results = "", ""
    if view is not None and job is not None and view.state in DOWNLOAD_STATES:
        ready = True
        trajectory, results = export_files(job_context, view, job)
    left, right = st.columns(2)
    with left:
        st.download_button(
            "Download trajectory (CSV)",
            data=trajectory,
            file_name="bayesdemo_trajectory.csv",
            mime="text/csv",
            key="download_csv",
            on_click="ignore",
            disabled=not ready,
            width="stretch",
        )
    with right:
        st.download_button(
            "Download results (JSON)",
            data=results,
            file_name="bayesdemo_results.json",
            mime="application/json",
            key="download_json",
            on_click="ignore",
            disabled=not ready,
            width="stretch",
        )
    if not ready:
        st.caption("Downloads open once a run is paused, stopped or finished.")
