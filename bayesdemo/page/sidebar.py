"""The sidebar: lesson, preset, the settings with each error below its widget, and the run controls."""

from __future__ import annotations

from typing import Any

import streamlit as st

from bayesdemo.core.config import (
    GUIDE_LABELS,
    GUIDES,
    KL_ESTIMATORS,
    METHOD_LABELS,
    METHODS,
    OBJECTIVE_LABELS,
    OBJECTIVES,
    FitConfig,
)
from bayesdemo.core.data import MAX_CSV_BYTES
from bayesdemo.core.scenario import PRESETS, Scenario
from bayesdemo.fitting import budget
from bayesdemo.page import page_lessons, page_style
from bayesdemo.page.callbacks import (
    LESSON_HOOKS,
    UNKNOWN_NOISE_TAB,
    on_learn_noise_sd,
    on_new_data,
    on_pause_resume,
    on_preset,
    on_reset,
    on_run,
    on_stop,
    on_use_residual_sd,
    start_job,
)
from bayesdemo.page.context import Context, noise_sd_mismatch, uploaded_dataset
from bayesdemo.page.form import (
    COMPARE,
    DEFAULT_CHOICE,
    FieldProblem,
    build_scenario,
    describe_error,
    field_help,
    fmt,
    setting_label,
    widget_values,
)
from bayesdemo.teaching.glossary import define
from bayesdemo.workers.jobs import ACTIVE_STATES, Job

SPEEDS = (1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 1000, 2000, 5000, 0)  # steps per second offered; 0 = max speed
SIMULATION_UNUSED = "The uploaded CSV is in use: the simulation's settings below are unused, all but the noise sd."
FIELD_PROBLEMS_KEY = "field_problems"  # this run's FieldProblems by widget key, drawn below their widgets


def number(key: str, label: str | None = None, **options: Any) -> Any:
    """A keyed number input (its value lives in session state) labelled and explained by the table of settings, with
    its errors right below it."""
    options.setdefault("help", field_help(key))
    value = st.number_input(label or setting_label(key), key=key, **options)
    draw_field_errors(key)
    return value


def draw_field_errors(key: str) -> None:
    """The errors of the widget `key`, directly below it (drawn once: the rest go to the sidebar's end)."""
    problems: dict[str | None, list[FieldProblem]] = st.session_state.get(FIELD_PROBLEMS_KEY, {})
    for problem in problems.pop(key, []):
        st.error(describe_error(problem.error, problem.key))


def whole_number(key: str, step: int = 1, label: str | None = None, **options: Any) -> Any:
    """A keyed whole-number input: a float input shown without decimals, so a value past 2^53 reaches the field's check
    and its message (Streamlit's integer input silently keeps its default for values beyond 2^53 - 1)."""
    return number(key, label, step=float(step), format="%.0f", **options)


def sidebar() -> tuple[Scenario | None, list[FieldProblem], Any, Any]:
    """Draw the sidebar's settings; return the scenario (or None and its errors), the controls and noise-sd boxes."""
    side = st.sidebar
    page_lessons.keep_hidden_values()  # the student view's hidden controls keep their values
    student = page_lessons.student_view()
    # The settings are validated before their widgets are drawn (session state already holds the values), so each
    # error is drawn directly below its widget.
    values = {key: st.session_state.get(key) for key in widget_values(Scenario())}
    scenario, errors = build_scenario(values)
    by_key: dict[str | None, list[FieldProblem]] = {}
    for problem in errors:
        by_key.setdefault(problem.key, []).append(problem)
    st.session_state[FIELD_PROBLEMS_KEY] = by_key
    side.title("bayesdemo")
    with side:
        page_lessons.draw_selector(LESSON_HOOKS)
    side.selectbox(
        "Preset",
        list(PRESETS),
        index=None,
        key="preset",
        placeholder="Choose a preset scenario…",
        on_change=on_preset,
        help="Load a ready-made scenario; every setting below can still be changed.",
    )
    controls = side.container()
    with side.expander("Data", expanded=True):
        # While an uploaded CSV is in use, the simulation's settings are shown disabled and said to be unused.
        unused = uploaded_dataset()[0] is not None
        if unused:
            st.caption(SIMULATION_UNUSED)
        whole_number("data_n", step=10, min_value=None, disabled=unused)
        left, right = st.columns(2)
        with left:
            number("data_slope", step=0.5, format="%.4g", disabled=unused)
        with right:
            number("data_intercept", step=0.5, format="%.4g", disabled=unused)
        number("data_noise_sd", step=0.05, format="%.4g")
        noise_note = st.container()  # filled once the data are known: a warning when they disagree (main)
        left, right = st.columns(2)
        with left:
            number("data_x_min", step=0.5, format="%.4g", disabled=unused)
        with right:
            number("data_x_max", step=0.5, format="%.4g", disabled=unused)
        left, right = st.columns([3, 2], vertical_alignment="bottom")
        with left:
            whole_number("data_seed", step=1, disabled=unused)
        with right:
            st.button(
                "New data",
                key="new_data",
                on_click=on_new_data,
                args=(st.session_state.get("data_seed") or 0,),
                help="Draw new data with the next seed.",
                disabled=unused,
            )
        st.file_uploader(
            "Or upload a CSV with columns x,y",
            type=["csv", "txt"],
            key="upload",
            help=f"At most {MAX_CSV_BYTES // 10**6} MB. Remove the file to go back to simulated data.",
        )
        _, upload_problem = uploaded_dataset()
        if upload_problem:
            st.error(upload_problem)
    with side.expander("Prior", expanded=False):
        left, right = st.columns(2)
        with left:
            number("prior_slope_mean", step=1.0, format="%.4g")
            number("prior_intercept_mean", step=1.0, format="%.4g")
        with right:
            number("prior_slope_sd", step=1.0, format="%.4g")
            number("prior_intercept_sd", step=1.0, format="%.4g")
    with side.expander("Method", expanded=True):
        method = st.selectbox(
            setting_label("fit_method"),
            [*METHODS, COMPARE],
            key="fit_method",
            format_func=lambda name: setting_label("compare_all") if name == COMPARE else METHOD_LABELS[name],
            help=field_help("fit_method") + "  \n" + define("q", "ELBO", "KL"),
        )
        st.selectbox(
            setting_label("fit_guide"),
            list(GUIDES),
            key="fit_guide",
            format_func=lambda name: GUIDE_LABELS[name],
            disabled=method != "svi",
            help=field_help("fit_guide") + "  \n" + define("q", "mean-field", "AutoNormal", "AutoMultivariateNormal"),
        )
        until_target = st.session_state.get("fit_until_target")
        whole_number(
            "fit_steps",
            step=500,
            label=f"{setting_label('fit_steps')} (at most)" if until_target else None,
            value=None,
            placeholder=default_steps_text(method, st.session_state.get("fit_guide"), bool(until_target)),
        )
        left, right = st.columns(2)
        with left:
            st.checkbox(setting_label("fit_centre_x"), key="fit_centre_x", help=field_help("fit_centre_x"))
        with right:
            st.checkbox(setting_label("fit_until_target"), key="fit_until_target", help=field_help("fit_until_target"))
        own_defaults = method == COMPARE
        if not student:
            draw_advanced_settings(own_defaults)
        if own_defaults:
            st.caption("Compare all: each method uses its own optimizer and learning rate.")
        draw_bbb_options(enabled=method == "bbb", student=student)
    for problems in by_key.values():  # errors of no single widget, or of a widget that is not a number field
        for problem in problems:
            side.error(describe_error(problem.error, problem.key))
    by_key.clear()
    return scenario, errors, controls, noise_note


def draw_advanced_settings(own_defaults: bool) -> None:
    """The settings the student view hides: optimizer, lr, samples, batch size, and under More settings the lr decay,
    fit seed and snapshot every (`own_defaults`: compare all, where each method keeps its optimizer and lr)."""
    left, right = st.columns(2)
    with left:
        st.selectbox(
            setting_label("fit_optimizer"),
            [DEFAULT_CHOICE, "adam", "sgd"],
            key="fit_optimizer",
            format_func=lambda name: (
                "method default" if name == DEFAULT_CHOICE else name.upper() if name == "sgd" else "Adam"
            ),
            disabled=own_defaults,
        )
    with right:
        number(
            "fit_lr",
            value=None,
            step=0.01,
            format="%.5g",
            placeholder="default",
            disabled=own_defaults,
        )
    left, right = st.columns(2)
    with left:
        whole_number("fit_samples", step=1, value=None, placeholder="default")
    with right:
        whole_number("fit_batch_size", step=10)
    with st.popover("More settings", width="stretch"):
        number("fit_lr_decay", value=None, step=0.1, format="%.4g", placeholder="default", disabled=own_defaults)
        whole_number("fit_seed", step=1)
        whole_number("snapshot_every", step=1)


def default_steps_text(method: str, guide: str | None, until_target: bool) -> str:
    """The Steps field's placeholder: the chosen method's default step count (its cap with Run until at target)."""
    if method == COMPARE:
        return "each method's default"
    try:
        config = FitConfig(method=method, guide=guide or FitConfig.guide, until_target=until_target)
        return f"default ({config.steps_in_force:,})"
    except ValueError:
        return "method default"


def draw_noise_sd_note(box: Any, context: Context) -> None:
    """Below the noise-sd field: a warning when uploaded data scatter far more or less than it, with two cures."""
    residual_sd = noise_sd_mismatch(context)
    if residual_sd is None:
        return
    noise_sd = context.scenario.model.noise_sd
    ratio = residual_sd / noise_sd
    shown = float(f"{residual_sd:.4g}")  # what the field shows after "Use", so the message and the field agree
    comparison = f"{ratio:.2g} times larger" if ratio > 1 else f"{1 / ratio:.2g} times smaller"
    with box:
        st.warning(
            f"These data's residual sd is {fmt(residual_sd)} (least-squares residuals, n − 2 = "
            f"{context.dataset.n - 2:,} degrees of freedom), {comparison} than the **Noise sd** of {fmt(noise_sd)}. "
            f"The exact posterior assumes the noise sd, so its 95% band is too {'narrow' if ratio > 1 else 'wide'} "
            "for these data.",
            icon="⚠️",
        )
        left, right = st.columns(2)
        with left:
            st.button(
                f"Use {fmt(shown)}",
                key="use_residual_sd",
                on_click=on_use_residual_sd,
                args=(shown,),
                width="stretch",
                help="Set the noise sd to the data's residual sd.",
            )
        with right:
            st.button(
                "Learn the noise sd",
                key="learn_noise_sd",
                on_click=on_learn_noise_sd,
                width="stretch",
                help=f"Open the {UNKNOWN_NOISE_TAB} tab below the charts and fit with the noise sd learned.",
            )


def draw_bbb_options(enabled: bool, student: bool = False) -> None:
    """Bayes by Backprop's objective dial and gradient estimators (disabled for the other methods; the student view
    shows the objective only)."""
    with st.popover("Bayes by Backprop options", width="stretch", disabled=not enabled):
        st.selectbox(
            setting_label("fit_objective"),
            list(OBJECTIVES),
            key="fit_objective",
            format_func=lambda name: OBJECTIVE_LABELS[name],
            help=field_help("fit_objective") + "  \n" + define("KL", "ELBO"),
        )
        if student:
            return
        st.selectbox(
            setting_label("fit_kl"),
            list(KL_ESTIMATORS),
            key="fit_kl",
            format_func=lambda name: "closed form" if name == "closed" else "Monte Carlo (log q − log prior)",
            help=field_help("fit_kl") + "  \n" + define("KL", "q"),
        )
        st.toggle(setting_label("fit_local_reparam"), key="fit_local_reparam", help=field_help("fit_local_reparam"))


def speed_options(current: float) -> list[float]:
    """The speed slider's choices, including `current` (a shared link may carry any speed)."""
    finite = sorted({float(s) for s in SPEEDS if s} | ({float(current)} if current else set()))
    return [*finite, 0.0]


def draw_controls(
    controls: Any, scenario: Scenario | None, pending: Context | None, blockers: list[str] | None = None
) -> None:
    """Run / Pause / Stop / Reset and the live speed slider; `blockers` say why Run is off (plain sentences)."""
    with controls:
        st.select_slider(
            setting_label("speed"),
            options=speed_options(st.session_state.get("speed") or 0.0),
            key="speed",
            format_func=lambda value: "max" if value == 0 else f"{value:g}",
            help="Slow the fits down so a class can watch; changes apply to a running fit at once.",
        )
        # A fit over the memory budget is refused here, before it starts (bayesdemo.fitting.budget, looked up at each
        # call so that a replaced estimate takes effect, as tests/test_app_limits.py replaces it).
        too_big = None
        if pending is not None:
            too_big = budget.fits_problem(pending.scenario.fit_configs(), pending.dataset.n)
        left, right = st.columns(2)
        with left:
            st.button(
                "Run",
                key="run",
                type="primary",
                width="stretch",
                on_click=on_run,
                disabled=scenario is None or pending is None or too_big is not None,
            )
        if too_big is not None:
            st.error(too_big)
        elif blockers and (scenario is None or pending is None):
            st.warning(f"Run is off until the settings below are fixed: {' '.join(blockers)}", icon="⛔")
        run_requested = st.session_state.pop("run_requested", False)
        if run_requested and scenario is not None and pending is not None and too_big is None:
            start_job(pending)
            page_style.close_sidebar_on_phone()  # on a phone the open sidebar covers the charts the class watches
        job: Job | None = st.session_state.get("job")
        state = job.state if job is not None else "ready"
        with right:
            st.button(
                "Resume" if state == "paused" else "Pause",
                key="pause",
                width="stretch",
                on_click=on_pause_resume,
                args=("resume" if state == "paused" else "pause",),
                disabled=state not in ("running", "paused"),
            )
        left, right = st.columns(2)
        with left:
            st.button(
                "Stop",
                key="stop",
                width="stretch",
                on_click=on_stop,
                disabled=state not in ACTIVE_STATES,
            )
        with right:
            st.button("Reset", key="reset", width="stretch", on_click=on_reset, disabled=job is None)
    if job is not None and job.state in ("running", "paused") and scenario is not None:
        job.set_speed(scenario.speed)
