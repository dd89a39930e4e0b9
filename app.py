"""bayesdemo's page: watch variational fits of a Bayesian linear regression converge, live, against the exact answer.

Run with `streamlit run app.py`. This file is the page's table of contents, top to bottom as the page draws it; each
part lives in bayesdemo/page/. Widgets -> config dataclasses -> engine calls -> figures; no maths here. Training runs
in a `bayesdemo.workers.jobs.Job` worker process kept in session state; a fragment redraws it a few times a second.
main() runs only as __main__ (how Streamlit runs the page), never when a worker process imports this file.
"""

from __future__ import annotations

# Imported up front, not lazily at the first st.table: two sessions' live fragments importing pandas at the same time
# got a half-initialised module ("partially initialized module 'pandas'") in bench/load_test.py.
import pandas  # noqa: F401
import pyarrow  # noqa: F401
import streamlit as st

from bayesdemo.core.markup import escape_markdown
from bayesdemo.core.scenario import PRESETS
from bayesdemo.page import explore, page_lessons, page_style, streamlit_patches
from bayesdemo.page.callbacks import LESSON_HOOKS, on_dismiss_link_problems
from bayesdemo.page.context import Context, make_context, previous_settings_note, same_context, same_run_settings
from bayesdemo.page.downloads import draw_export
from bayesdemo.page.form import plain_error
from bayesdemo.page.link import RUN_LOST_NOTICE, restore_from_link, sync_link
from bayesdemo.page.live_view import (
    SLOWER_REDRAW_EVERY,
    current_view,
    draw_exact_summary,
    draw_explain,
    draw_live_fragments,
    live_refresh_s,
)
from bayesdemo.page.sidebar import draw_controls, draw_noise_sd_note, sidebar
from bayesdemo.workers.jobs import Job

# ---- page setup and patches ------------------------------------------------------------------------------------------
# A fragment run right after a page run must not lose that run's messages (message_queue_fix), nor a rerun right
# after a run's end that run's last messages (runner_handover_fix); each is checked before it is installed.
streamlit_patches.install()


def main() -> None:
    """The page."""
    st.set_page_config(page_title="bayesdemo: Bayesian regression, live", page_icon="📈", layout="wide")
    page_style.restore_from_link()
    page_style.draw_page_style()

    # ---- restore from link (a session's first run only) --------------------------------------------------------------
    restore_from_link()

    # ---- sidebar: lesson, preset, settings, then the run controls once the data are known ----------------------------
    scenario, errors, controls, noise_note = sidebar()
    page_style.draw_display_settings(st.sidebar)
    st.session_state["scenario"] = scenario
    pending: Context | None = None
    blockers = [plain_error(problem.error) for problem in errors]  # why Run is off, said next to it
    if scenario is not None:
        try:
            pending = make_context(scenario)
        except (ValueError, ArithmeticError) as error:
            message = f"Cannot use these settings: {escape_markdown(error)}"
            message += "" if message.endswith(".") else "."
            st.sidebar.error(message)
            blockers.append(message)
        else:
            sync_link(scenario)  # the address bar follows the settings shown, ready to share
            draw_noise_sd_note(noise_note, pending)
    draw_controls(controls, scenario, pending, blockers)

    # ---- main area: which settings and which fits it shows -----------------------------------------------------------
    job: Job | None = st.session_state.get("job")
    job_context: Context | None = st.session_state.get("job_context") if job is not None else None
    # The exact reference costs microseconds: it always shows the current settings. The fits show the settings they
    # ran on (the job's), marked as the previous settings once those differ from the current ones.
    context = pending or job_context or st.session_state.get("context_cache")
    previous = ""
    if job_context is not None and pending is not None and not same_context(pending, job_context):
        previous = previous_settings_note(job_context, pending)

    # ---- main area: heading and messages -----------------------------------------------------------------------------
    # The messages above the charts come and go: in one container, the live fragments below keep their place.
    with st.container():
        if page_lessons.open_lesson() is None:  # a lesson step's own heading takes its place
            st.header("Bayesian linear regression, live", anchor=False)
        for problem in st.session_state.get("link_problems", []):
            st.warning(f"Shared link: {escape_markdown(problem)}")
        if st.session_state.get("link_problems"):
            st.button("Dismiss", key="dismiss_link", on_click=on_dismiss_link_problems)
        if st.session_state.get("run_error"):
            st.error(st.session_state["run_error"])
        if st.session_state.get("run_lost"):
            st.info(RUN_LOST_NOTICE)
        if context is None:
            st.info("Fix the settings marked in the sidebar to see the data and the exact posterior.")
            return
        preset = PRESETS.get(st.session_state.get("preset") or "")
        if preset is not None and same_run_settings(preset.scenario, context.scenario):
            st.info(f"**{preset.name}.** {preset.description}")
        if errors and pending is None:
            st.caption("Showing the last valid settings.")

    # ---- main area: the lesson step, then the exact posterior --------------------------------------------------------
    view = current_view()
    if job_context is not None:
        run_exact, run_n = job_context.exact, job_context.dataset.n
        page_lessons.draw_step(LESSON_HOOKS, view, job_context.scenario, run_exact, run_n, job_context.synthetic)
    else:
        page_lessons.draw_step(LESSON_HOOKS, None, None, None, 0, False)
    draw_exact_summary(context)

    # ---- main area: status and live view -----------------------------------------------------------------------------
    live_context = job_context or context
    refresh = live_refresh_s(view)  # None once the job can no longer change
    draw_live_fragments(live_context, refresh, previous)

    # ---- main area: explore tabs -------------------------------------------------------------------------------------
    # The explore views sit below the fold: their live parameter space redraws at the loss and data charts' pace.
    if page_lessons.explore_shown():  # a lesson step without an explore view leaves them out
        explore.draw_explore(live_context, current_view, None if refresh is None else SLOWER_REDRAW_EVERY * refresh)

    # ---- main area: explain, share and downloads ---------------------------------------------------------------------
    with st.expander("Explain: what the charts show, with this data's numbers"):
        draw_explain(context, None if previous else view)  # a previous run's fits are not this data's numbers
    with st.expander("Share and export"):
        draw_export(context, live_context, view)


if __name__ == "__main__":
    main()
