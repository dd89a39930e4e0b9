"""What the sidebar's buttons and choices do, before the page redraws; and starting a run."""

from __future__ import annotations

import secrets

import streamlit as st

from bayesdemo.core.markup import escape_markdown
from bayesdemo.core.scenario import PRESETS
from bayesdemo.core.validation import ConfigError
from bayesdemo.page import explore, page_lessons
from bayesdemo.page.context import Context
from bayesdemo.page.form import describe_error, load_scenario, widget_values
from bayesdemo.page.link import RUN_TOKEN_KEY
from bayesdemo.workers.jobs import Job

FIRST_STEPS_WAIT_S = 0.3  # longest the Run click waits for the first training steps to draw them at once
UNKNOWN_NOISE_TAB = "Unknown noise sd"  # the explore tab that learns the noise sd

# Callbacks run before the script, so the page draws the new state. A click that lands while a live fragment is
# rerunning can fire its callback twice (once in the fragment run, once in the full run it triggers), so every callback
# states its intent and is idempotent: never a blind toggle.


def on_preset() -> None:
    """Load the chosen preset into the widgets, keeping the chosen speed (the teacher's pace, not the scenario's)."""
    name = st.session_state.get("preset")
    if name in PRESETS:
        values = widget_values(PRESETS[name].scenario)
        del values["speed"]
        st.session_state.update(values)


def on_new_data(shown_seed: int) -> None:
    """New data: the seed after the one shown when clicked, so every draw stays reproducible."""
    st.session_state["data_seed"] = (int(shown_seed) + 1) % 2**32


def on_run() -> None:
    """Ask the script to start a job with the settings it is about to read."""
    st.session_state["run_requested"] = True


def on_pause_resume(intent: str) -> None:
    """Pause a running job (intent "pause") or resume a paused one (intent "resume")."""
    job: Job | None = st.session_state.get("job")
    if job is None:
        return
    if intent == "pause":
        job.pause(wait_s=0.3)  # the worker confirms within one slice; never hold the page longer
    else:
        job.resume()


def on_stop() -> None:
    """Stop the job, keeping what it has drawn."""
    job: Job | None = st.session_state.get("job")
    if job is not None:
        job.stop()


def on_reset() -> None:
    """Stop and forget the job: the page shows the current settings with no fits."""
    job: Job | None = st.session_state.pop("job", None)
    if job is not None:
        job.stop()
    st.session_state.pop("job_context", None)
    st.session_state.pop("export_files", None)
    st.session_state.pop("run_token", None)
    st.session_state["run_lost"] = False


def on_use_residual_sd(residual_sd: float) -> None:
    """Set the noise sd to the data's residual sd."""
    st.session_state["data_noise_sd"] = float(residual_sd)


def on_learn_noise_sd() -> None:
    """Open the explore tab that learns the noise sd, and ask it to fit."""
    st.session_state[explore.TAB_KEY] = UNKNOWN_NOISE_TAB
    explore.request("noise")


def on_dismiss_link_problems() -> None:
    """Hide the warnings about the shared link."""
    st.session_state["link_problems"] = []


LESSON_HOOKS = page_lessons.PageHooks(load_scenario=load_scenario, reset_run=on_reset)  # what a lesson step may do


def start_job(context: Context) -> None:
    """Replace any job by a new one training the context's fits (errors shown, the old job kept)."""
    scenario = context.scenario
    try:
        job = Job(
            context.dataset,
            scenario.model,
            scenario.fit_configs(),
            snapshot_every=scenario.snapshot_every,
            max_steps_per_second=scenario.speed,
        )
    except ConfigError as error:
        st.session_state["run_error"] = describe_error(error)
        return
    except ValueError as error:
        st.session_state["run_error"] = f"Could not start the fit: {escape_markdown(error)}"
        return
    old: Job | None = st.session_state.get("job")
    if old is not None:
        old.stop()
    st.session_state["run_error"] = ""
    st.session_state.pop("export_files", None)
    st.session_state["job"] = job
    st.session_state["job_context"] = context
    st.session_state["run_lost"] = False
    st.session_state["run_token"] = secrets.token_hex(4)
    st.query_params[RUN_TOKEN_KEY] = st.session_state["run_token"]
    job.start()
    if job.state == "running":
        # The Run click's own redraw then shows the first training steps, not an empty chart for a refresh interval.
        job.wait_for_training(FIRST_STEPS_WAIT_S)
