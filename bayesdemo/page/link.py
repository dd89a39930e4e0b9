"""The address bar: a shared link's settings restored on a session's first run, then kept equal to the page."""

from __future__ import annotations

import streamlit as st

from bayesdemo.core import share
from bayesdemo.core.scenario import Scenario
from bayesdemo.page import page_lessons, page_style
from bayesdemo.page.form import load_scenario
from bayesdemo.workers.jobs import warm_up_in_background

RUN_TOKEN_KEY = "run"  # query parameter naming this session's run; not part of the shared scenario
RUN_LOST_NOTICE = (
    "The server restarted or this page's session ended, so the previous run is gone. Press Run to start it again."
)


def restore_from_link() -> None:
    """On a session's first run: load the scenario in the query string (problems kept to show as warnings)."""
    if st.session_state.get("restored"):
        return
    # The training processes' forkserver imports torch and Pyro now, not at the first Run; in the background, so the
    # first page after a start is drawn without waiting seconds for torch (docs/performance.md, First view).
    warm_up_in_background()
    params = st.query_params.to_dict()
    # A lesson step's settings, with the link's own settings over them (the address bar writes both).
    step_link, lesson_problems = page_lessons.restore_from_link(params)
    scenario, problems = share.decode({**step_link, **params})
    problems += lesson_problems
    load_scenario(scenario)
    # A run token in the address bar of a fresh session: its run lived in a session (or server) that is gone.
    if RUN_TOKEN_KEY in st.query_params:
        st.session_state["run_lost"] = True
        del st.query_params[RUN_TOKEN_KEY]
    st.session_state["link_problems"] = problems
    st.session_state["restored"] = True


def sync_link(scenario: Scenario) -> None:
    """Keep the address bar equal to the scenario shown, so it can be shared as it is."""
    params = {
        **share.encode(scenario),
        **page_style.link_params(),
        **page_lessons.link_params(scenario, page_lessons.explore_shown()),
    }
    if st.session_state.get("run_token"):
        params[RUN_TOKEN_KEY] = st.session_state["run_token"]
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
