"""bayesdemo's page: watch variational fits of a Bayesian linear regression converge, live, against the exact answer.

Run with `streamlit run app.py`. Widgets -> config dataclasses -> engine calls -> figures; no maths here.
Training runs in a `bayesdemo.workers.jobs.Job` worker process kept in session state; a fragment redraws it a few
times a second. main() runs only as __main__ (how Streamlit runs the page), never when a worker process imports this
file.
"""

from __future__ import annotations

import dataclasses
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

# Imported up front, not lazily at the first st.table: two sessions' live fragments importing pandas at the same time
# got a half-initialised module ("partially initialized module 'pandas'") in bench/load_test.py.
import pandas  # noqa: F401
import pyarrow  # noqa: F401
import streamlit as st

from bayesdemo.charts import chart_text, figures
from bayesdemo.core import share
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
from bayesdemo.core.data import MAX_CSV_BYTES, DataConfig, Dataset, generate, parse_csv
from bayesdemo.core.exact import ExactPosterior, exact_posterior
from bayesdemo.core.markup import escape_markdown
from bayesdemo.core.priors import PARAMETER_NAMES, GaussianPrior
from bayesdemo.core.scenario import PRESETS, Scenario
from bayesdemo.core.validation import ConfigError
from bayesdemo.fitting import export
from bayesdemo.fitting.budget import fits_problem
from bayesdemo.fitting.metrics import (
    RUN_STATUS_WORDS,
    STATUS_LABELS,
    Convergence,
    target_for,
)
from bayesdemo.fitting.report import exact_summary
from bayesdemo.page import explore, page_lessons, page_style, streamlit_patches
from bayesdemo.page.live_chart import live_chart
from bayesdemo.page.live_table import live_table
from bayesdemo.teaching import explain
from bayesdemo.teaching.glossary import define, define_used
from bayesdemo.workers.jobs import ACTIVE_STATES, FitView, Job, JobView, paced_interval_s, warm_up

# A fragment run right after a page run must not lose that run's messages (message_queue_fix), nor a rerun right
# after a run's end that run's last messages (runner_handover_fix); each is checked before it is installed.
streamlit_patches.install()

REFRESH_RUNNING_S = 0.2  # live redraw interval while training
RUN_TOKEN_KEY = "run"  # query parameter naming this session's run; not part of the shared scenario
RUN_LOST_NOTICE = (
    "The server restarted or this page's session ended, so the previous run is gone. Press Run to start it again."
)
FIRST_STEPS_WAIT_S = 0.3  # longest the Run click waits for the first training steps to draw them at once
REFRESH_PAUSED_S = 2.0  # slower heartbeat-only redraw while paused
SLOWER_REDRAW_EVERY = 4  # the loss, data and explore charts redraw once per this many live redraws
DOWNLOAD_STATES = ("paused", "stopped", "finished")  # job states whose results can be downloaded (not queued: none yet)
COMPARE = "compare"  # method choice that runs every method side by side
DEFAULT_CHOICE = "default"  # optimizer choice that keeps the method's own default
SPEEDS = (1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 1000, 2000, 5000, 0)  # steps per second offered; 0 = max speed
# An uploaded CSV's least-squares residual sd more than this factor above or below the assumed noise sd is far from
# it: the exact 95% band is then at most half (or at least twice) as wide as the data's scatter needs.
NOISE_SD_FAR_RATIO = 2.0
# Degrees of freedom (n - 2) the residual sd needs before it is judged. With the right noise sd s, (n - 2) r^2 / s^2
# is chi-square with n - 2 degrees of freedom, so from 10 on the ratio r / s leaves [1/2, 2] by chance with
# probability below 1% (0.91% at 10; tests/test_app.py measures it); with fewer points chance alone would warn often.
NOISE_SD_MIN_DEGREES = 10
UNKNOWN_NOISE_TAB = "Unknown noise sd"  # the explore tab that learns the noise sd
SIMULATION_UNUSED = "The uploaded CSV is in use: the simulation's settings below are unused, all but the noise sd."
# Friendly names of config fields, for error messages next to the widget that set them.
FIELD_LABELS = {
    "n": "Data points n",
    "slope": "True slope",
    "intercept": "True intercept",
    "noise_sd": "Noise sd",
    "x_min": "x from",
    "x_max": "x to",
    "seed": "Seed",
    "slope_mean": "Prior mean of the slope",
    "slope_sd": "Prior sd of the slope",
    "intercept_mean": "Prior mean of the intercept",
    "intercept_sd": "Prior sd of the intercept",
    "method": "Method",
    "guide": "Guide",
    "optimizer": "Optimizer",
    "lr": "Learning rate",
    "lr_decay": "Final lr / first lr",
    "samples": "Samples per step",
    "batch_size": "Batch size",
    "steps": "Steps",
    "objective": "Objective",
    "kl": "KL estimator",
    "local_reparam": "Local reparameterisation",
    "centre_x": "Centre x",
    "until_target": "Run until at target",
    "speed": "Speed",
    "snapshot_every": "Snapshot every",
    "csv": "CSV upload",
    "x": "CSV column x",
    "y": "CSV column y",
}


@dataclass(frozen=True, eq=False)
class Context:
    """What the page shows: a scenario with its dataset and exact reference (from the job, or pending)."""

    scenario: Scenario
    dataset: Dataset
    exact: ExactPosterior
    synthetic: bool  # True when the data were simulated from scenario.data (the true line is known)

    @cached_property
    def least_squares(self) -> np.ndarray:
        """Least-squares (slope, intercept) of the data, shape (2,): noise injection's target (once per context)."""
        return self.dataset.least_squares()

    @cached_property
    def residual_sd(self) -> float | None:
        """The data's least-squares residual sd, sqrt(RSS / (n - 2)); None for n = 2 (no degrees of freedom left)."""
        dataset = self.dataset
        degrees = dataset.n - 2
        if degrees < 1:
            return None
        slope, intercept = self.least_squares
        residuals = dataset.y - (slope * dataset.x + intercept)
        return float(math.sqrt(float(residuals @ residuals) / degrees))


# ---- widgets <-> scenario ---------------------------------------------------------------------------------------


def widget_values(scenario: Scenario) -> dict[str, Any]:
    """The session-state value of every sidebar widget that shows `scenario`."""
    data, prior, fit = scenario.data, scenario.prior, scenario.fit
    return {
        "data_n": data.n,
        "data_slope": float(data.slope),
        "data_intercept": float(data.intercept),
        "data_noise_sd": float(data.noise_sd),
        "data_x_min": float(data.x_min),
        "data_x_max": float(data.x_max),
        "data_seed": data.seed,
        "prior_slope_mean": float(prior.slope_mean),
        "prior_slope_sd": float(prior.slope_sd),
        "prior_intercept_mean": float(prior.intercept_mean),
        "prior_intercept_sd": float(prior.intercept_sd),
        "fit_method": COMPARE if scenario.compare_all else fit.method,
        "fit_guide": fit.guide,
        "fit_optimizer": fit.optimizer or DEFAULT_CHOICE,
        "fit_lr": None if fit.lr is None else float(fit.lr),
        "fit_lr_decay": None if fit.lr_decay is None else float(fit.lr_decay),
        "fit_samples": fit.samples,
        "fit_batch_size": fit.batch_size,
        "fit_seed": fit.seed,
        "fit_steps": fit.steps,
        "fit_objective": fit.objective,
        "fit_kl": fit.kl,
        "fit_local_reparam": fit.local_reparam,
        "fit_centre_x": fit.centre_x,
        "fit_until_target": fit.until_target,
        "speed": float(scenario.speed),
        "snapshot_every": scenario.snapshot_every,
    }


def load_scenario(scenario: Scenario) -> None:
    """Put `scenario` into the sidebar widgets (call before they are drawn, or from a callback)."""
    st.session_state.update(widget_values(scenario))


@dataclass(frozen=True)
class FieldProblem:
    """A validation error and the sidebar widget whose value caused it (None when no single widget did)."""

    key: str | None  # a key of widget_values, e.g. "data_noise_sd"
    error: ConfigError


def widget_key(part: str, field: str) -> str | None:
    """The sidebar widget that sets config field `field` of `part` ("data_", "prior_", "fit_" or "" for Scenario)."""
    key = part + field
    return key if key in widget_values(Scenario()) else None


def build_scenario(values: Mapping[str, Any]) -> tuple[Scenario | None, list[FieldProblem]]:
    """The Scenario the widget `values` describe, or None with every validation error (each with its widget)."""
    errors: list[FieldProblem] = []

    def attempt(make, part: str):
        try:
            return make()
        except ConfigError as error:
            errors.append(FieldProblem(widget_key(part, error.field), error))
        except ValueError as error:
            errors.append(FieldProblem(None, ConfigError("value", str(error))))
        return None

    data = attempt(
        lambda: DataConfig(
            n=values["data_n"],
            slope=values["data_slope"],
            intercept=values["data_intercept"],
            noise_sd=values["data_noise_sd"],
            x_min=values["data_x_min"],
            x_max=values["data_x_max"],
            seed=values["data_seed"],
        ),
        "data_",
    )
    prior = attempt(
        lambda: GaussianPrior(
            slope_mean=values["prior_slope_mean"],
            slope_sd=values["prior_slope_sd"],
            intercept_mean=values["prior_intercept_mean"],
            intercept_sd=values["prior_intercept_sd"],
        ),
        "prior_",
    )
    compare_all = values["fit_method"] == COMPARE
    optimizer = values["fit_optimizer"]
    # Bayes by Backprop's own options reach only a Bayes by Backprop fit: a hidden setting never changes another.
    bbb_options = (
        {"objective": values["fit_objective"], "kl": values["fit_kl"], "local_reparam": values["fit_local_reparam"]}
        if values["fit_method"] == "bbb"
        else {}
    )
    fit = attempt(
        lambda: FitConfig(
            method=FitConfig.method if compare_all else values["fit_method"],
            guide=values["fit_guide"],
            optimizer=None if optimizer == DEFAULT_CHOICE else optimizer,
            lr=values["fit_lr"],
            lr_decay=values["fit_lr_decay"],
            samples=values["fit_samples"],
            batch_size=values["fit_batch_size"],
            seed=values["fit_seed"],
            steps=values["fit_steps"],
            centre_x=values["fit_centre_x"],
            until_target=values["fit_until_target"],
            **bbb_options,
        ),
        "fit_",
    )
    if errors:
        return None, errors
    scenario = attempt(
        lambda: Scenario(
            data=data,
            prior=prior,
            fit=fit,
            compare_all=compare_all,
            speed=values["speed"],
            snapshot_every=values["snapshot_every"],
        ),
        "",
    )
    return scenario, errors


# The validators' comparison signs, in words for the page.
COMPARISON_WORDS = (
    ("must be >= ", "must be at least "),
    ("must be > ", "must be greater than "),
    ("must be <= ", "must be at most "),
    ("must be < ", "must be less than "),
)


def error_sentence(error: ConfigError) -> tuple[str, str]:
    """The widget's label and the rest of the error's sentence in the words on screen, ending with a full stop."""
    label = FIELD_LABELS.get(error.field, error.field)
    text = str(error)
    rest = text[len(error.field) + 1 :] if text.startswith(error.field + " ") else text
    for sign, words in COMPARISON_WORDS:
        rest = rest.replace(sign, words)
    for name, other_label in FIELD_LABELS.items():
        if "_" in name:  # config field names (x_min, noise_sd) become labels; plain words are left alone
            rest = re.sub(rf"\b{name}\b", other_label, rest)
    rest = rest.strip()
    if not rest.endswith((".", "!", "?")):
        rest += "."
    return label, rest


def describe_error(error: ConfigError) -> str:
    """An error sentence led by the widget's name in bold (the rest escaped: it may quote a link value or CSV cell)."""
    label, rest = error_sentence(error)
    return f"**{label}** {escape_markdown(rest)}"


def plain_error(error: ConfigError) -> str:
    """The error sentence as plain words (escaped), e.g. "Noise sd must be greater than 0, got -1.0."."""
    label, rest = error_sentence(error)
    return escape_markdown(f"{label} {rest}")


# ---- callbacks (run before the script, so the page draws the new state) -----------------------------------------
# A click that lands while a live fragment is rerunning can fire its callback twice (once in the fragment run, once
# in the full run it triggers), so every callback states its intent and is idempotent: never a blind toggle.


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


# ---- data and reference -----------------------------------------------------------------------------------------


def uploaded_dataset() -> tuple[Dataset | None, str]:
    """The uploaded CSV as a Dataset (parsed once per file) and a bad file's error (the previous data are kept)."""
    upload = st.session_state.get("upload")
    if upload is None:
        st.session_state.pop("upload_parsed", None)
        return None, ""
    parsed = st.session_state.get("upload_parsed")
    if parsed is None or parsed[0] != upload.file_id:
        try:
            dataset = parse_csv(upload.getvalue(), name=upload.name)
            parsed = (upload.file_id, dataset, None)
        except ValueError as error:
            csv_error = error if isinstance(error, ConfigError) else ConfigError("csv", str(error))
            parsed = (upload.file_id, st.session_state.get("upload_good"), describe_error(csv_error))
        st.session_state["upload_parsed"] = parsed
        if parsed[2] is None:
            st.session_state["upload_good"] = parsed[1]
    problem = ""
    if parsed[2] is not None:
        kept = "the previous upload" if parsed[1] is not None else "the simulated data"
        problem = f"{parsed[2]} Keeping {kept}."
    return parsed[1], problem


def noise_sd_far(residual_sd: float, noise_sd: float, degrees: int) -> bool:
    """Whether a residual sd with `degrees` degrees of freedom is far from the assumed noise sd (the rule above)."""
    if degrees < NOISE_SD_MIN_DEGREES:
        return False
    ratio = residual_sd / noise_sd
    return not 1.0 / NOISE_SD_FAR_RATIO <= ratio <= NOISE_SD_FAR_RATIO


def noise_sd_mismatch(context: Context) -> float | None:
    """The residual sd of uploaded data when it is far from the assumed noise sd (noise_sd_far), else None.

    Simulated data draw their noise with the noise sd itself, so any difference there is chance: never warned.
    """
    residual_sd = context.residual_sd
    if context.synthetic or residual_sd is None:
        return None
    return residual_sd if noise_sd_far(residual_sd, context.scenario.model.noise_sd, context.dataset.n - 2) else None


def make_context(scenario: Scenario) -> Context:
    """The dataset (upload or simulation) and exact reference for `scenario`, cached across reruns."""
    upload, _ = uploaded_dataset()
    cached: Context | None = st.session_state.get("context_cache")
    if upload is not None:
        if cached is not None and cached.dataset is upload and cached.scenario == scenario:
            return cached
        dataset, synthetic = upload, False
    else:
        if cached is not None and cached.synthetic and cached.scenario.data == scenario.data:
            dataset = cached.dataset
        else:
            dataset = generate(scenario.data)
        synthetic = True
    if cached is not None and cached.dataset is dataset and cached.scenario.model == scenario.model:
        exact = cached.exact
    else:
        exact = exact_posterior(dataset, scenario.model)
    context = Context(scenario, dataset, exact, synthetic)
    st.session_state["context_cache"] = context
    return context


# ---- sidebar ------------------------------------------------------------------------------------------------------


def number(label: str, key: str, **options: Any) -> Any:
    """A keyed number input (its value lives in session state), with its errors right below it."""
    value = st.number_input(label, key=key, **options)
    draw_field_errors(key)
    return value


FIELD_PROBLEMS_KEY = "field_problems"  # this run's FieldProblems by widget key, drawn below their widgets


def draw_field_errors(key: str) -> None:
    """The errors of the widget `key`, directly below it (drawn once: the rest go to the sidebar's end)."""
    problems: dict[str | None, list[FieldProblem]] = st.session_state.get(FIELD_PROBLEMS_KEY, {})
    for problem in problems.pop(key, []):
        st.error(describe_error(problem.error))


def whole_number(label: str, key: str, step: int = 1, **options: Any) -> Any:
    """A keyed whole-number input: a float input shown without decimals, so a value past 2^53 reaches the field's check
    and its message (Streamlit's integer input silently keeps its default for values beyond 2^53 - 1)."""
    value = st.number_input(label, key=key, step=float(step), format="%.0f", **options)
    draw_field_errors(key)
    return value


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
        whole_number("Data points n", "data_n", step=10, min_value=None, disabled=unused)
        left, right = st.columns(2)
        with left:
            number("True slope", "data_slope", step=0.5, format="%.4g", disabled=unused)
        with right:
            number("True intercept", "data_intercept", step=0.5, format="%.4g", disabled=unused)
        number("Noise sd", "data_noise_sd", step=0.05, format="%.4g", help="Also the model's known noise sd.")
        noise_note = st.container()  # filled once the data are known: a warning when they disagree (main)
        left, right = st.columns(2)
        with left:
            number("x from", "data_x_min", step=0.5, format="%.4g", disabled=unused)
        with right:
            number("x to", "data_x_max", step=0.5, format="%.4g", disabled=unused)
        left, right = st.columns([3, 2], vertical_alignment="bottom")
        with left:
            whole_number("Seed", "data_seed", step=1, disabled=unused)
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
            number("Prior mean of the slope", "prior_slope_mean", step=1.0, format="%.4g")
            number("Prior mean of the intercept", "prior_intercept_mean", step=1.0, format="%.4g")
        with right:
            number("Prior sd of the slope", "prior_slope_sd", step=1.0, format="%.4g")
            number("Prior sd of the intercept", "prior_intercept_sd", step=1.0, format="%.4g")
    with side.expander("Method", expanded=True):
        method = st.selectbox(
            "Method",
            [*METHODS, COMPARE],
            key="fit_method",
            format_func=lambda name: "Compare all methods" if name == COMPARE else METHOD_LABELS[name],
            help="Noise injection minimises the MSE of sampled predictions; Bayes by Backprop and Pyro SVI fit q by "
            "maximising the ELBO. Each is judged against the exact posterior.  \n" + define("q", "ELBO", "KL"),
        )
        st.selectbox(
            "Guide (Pyro SVI)",
            list(GUIDES),
            key="fit_guide",
            format_func=lambda name: GUIDE_LABELS[name],
            disabled=method != "svi",
            help="The family of q that Pyro SVI fits.  \n"
            + define("q", "mean-field", "AutoNormal", "AutoMultivariateNormal"),
        )
        until_target = st.session_state.get("fit_until_target")
        whole_number(
            "Steps (at most)" if until_target else "Steps",
            "fit_steps",
            value=None,
            step=500,
            placeholder=default_steps_text(method, st.session_state.get("fit_guide"), bool(until_target)),
            help="Empty: the method's own default. With Run until at target, the most steps the fit may take.",
        )
        left, right = st.columns(2)
        with left:
            st.checkbox(
                "Centre x",
                key="fit_centre_x",
                help="Fits the slope and the intercept at mean x, then maps back; the prior is unchanged.",
            )
        with right:
            st.checkbox(
                "Run until at target",
                key="fit_until_target",
                help="Stops once the fit is at its target; Steps is then the cap.",
            )
        own_defaults = method == COMPARE
        if not student:
            draw_advanced_settings(own_defaults)
        if own_defaults:
            st.caption("Compare all: each method uses its own optimizer and learning rate.")
        draw_bbb_options(enabled=method == "bbb", student=student)
    for problems in by_key.values():  # errors of no single widget, or of a widget that is not a number field
        for problem in problems:
            side.error(describe_error(problem.error))
    by_key.clear()
    return scenario, errors, controls, noise_note


def draw_advanced_settings(own_defaults: bool) -> None:
    """The settings the student view hides: optimizer, lr, samples, batch size, and under More settings the lr decay,
    fit seed and snapshot every (`own_defaults`: compare all, where each method keeps its optimizer and lr)."""
    left, right = st.columns(2)
    with left:
        st.selectbox(
            "Optimizer",
            [DEFAULT_CHOICE, "adam", "sgd"],
            key="fit_optimizer",
            format_func=lambda name: (
                "method default" if name == DEFAULT_CHOICE else name.upper() if name == "sgd" else "Adam"
            ),
            disabled=own_defaults,
        )
    with right:
        number(
            "Learning rate",
            "fit_lr",
            value=None,
            step=0.01,
            format="%.5g",
            placeholder="default",
            disabled=own_defaults,
        )
    left, right = st.columns(2)
    with left:
        whole_number("Samples per step", "fit_samples", value=None, step=1, placeholder="default")
    with right:
        whole_number("Batch size", "fit_batch_size", step=10, help="Data points per step; 0 means all of them.")
    with st.popover("More settings", width="stretch"):
        number(
            "Final lr / first lr",
            "fit_lr_decay",
            value=None,
            step=0.1,
            format="%.4g",
            placeholder="default",
            disabled=own_defaults,
            help="Exponential learning-rate decay over the run; 1 keeps it constant.",
        )
        whole_number("Fit seed", "fit_seed", step=1)
        whole_number("Snapshot every (steps)", "snapshot_every", step=1)


def default_steps_text(method: str, guide: str | None, until_target: bool) -> str:
    """The Steps field's placeholder: the chosen method's default step count (its cap with Run until at target)."""
    if method == COMPARE:
        return "each method's default"
    try:
        config = FitConfig(method=method, guide=guide or FitConfig.guide, until_target=until_target)
        return f"default ({config.step_count:,})"
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
            "Objective",
            list(OBJECTIVES),
            key="fit_objective",
            format_func=lambda name: OBJECTIVE_LABELS[name],
            help="The dial from noise injection to Bayes by Backprop: without the KL to the prior the sds collapse.  \n"
            + define("KL", "ELBO"),
        )
        if student:
            return
        st.selectbox(
            "KL estimator",
            list(KL_ESTIMATORS),
            key="fit_kl",
            format_func=lambda name: "closed form" if name == "closed" else "Monte Carlo (log q − log prior)",
            help="Both are unbiased; the Monte-Carlo KL adds gradient noise.  \n" + define("KL", "q"),
        )
        st.toggle(
            "Local reparameterisation",
            key="fit_local_reparam",
            help="Sample each prediction instead of the weights (Kingma et al. 2015): lower gradient variance.",
        )


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
            "Speed (steps per second)",
            options=speed_options(st.session_state.get("speed") or 0.0),
            key="speed",
            format_func=lambda value: "max" if value == 0 else f"{value:g}",
            help="Slow the fits down so a class can watch; changes apply to a running fit at once.",
        )
        # A fit over the memory budget is refused here, before it starts (bayesdemo.fitting.budget).
        too_big = fits_problem(pending.scenario.fit_configs(), pending.dataset.n) if pending is not None else None
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


# ---- the main area --------------------------------------------------------------------------------------------------


def fmt(value: float, digits: int = 4) -> str:
    """A number with `digits` significant figures; inf and nan spelled out."""
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞"
    return f"{value:.{digits}g}"


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


@dataclass(frozen=True)
class FitStatus:
    """How the page names one fit's state: the runner's word with its convergence status, and why when it matters."""

    word: str  # "Running", "Paused", "Finished", "Diverged", ... (metrics.RUN_STATUS_WORDS, as run_status_text)
    convergence: Convergence | None  # None before the fit's first step and for a diverged fit
    reason: str  # one sentence why it is not at target (with the cure when there is one), or the divergence advice

    @property
    def text(self) -> str:
        """E.g. "Finished · at target", "Running · still moving", "Diverged", "Queued"."""
        return self.word if self.convergence is None else f"{self.word} · {self.convergence.label}"


def fit_status(fit: FitView, job_state: str, context: Context) -> FitStatus:
    """The fit's status word and convergence status against its method's target (metrics.convergence)."""
    if fit.status == "diverged":
        return FitStatus("Diverged", None, fit.message)  # never "Finished": it has no convergence status
    runner_status = job_state if job_state in ("queued", "paused") and not fit.finished else fit.status
    word = RUN_STATUS_WORDS.get(runner_status, runner_status.capitalize())
    if not fit.finished and (fit.last is None or fit.last.step == 0):
        return FitStatus(word, None, "")  # nothing trained yet: no convergence to speak of
    conv = fit.convergence(context.exact, context.least_squares)
    # A moving fit's distance changes every redraw: its reason is shown once it is far, or once it has ended.
    shown = conv.status == "far_from_target" or (conv.status == "still_moving" and fit.finished)
    return FitStatus(word, conv, conv.reason.strip() if shown else "")


def fit_statuses(view: JobView | None, context: Context) -> tuple[FitStatus, ...]:
    """Each fit's FitStatus, in the job's order (none without a job)."""
    return () if view is None else tuple(fit_status(fit, view.state, context) for fit in view.fits)


def fit_rows(view: JobView, exact: ExactPosterior, statuses: tuple[FitStatus, ...]) -> dict[str, list[str]]:
    """One table row per fit: progress, speed, current q, KL(q || exact) and status, all read from the engine."""
    columns: dict[str, list[str]] = {
        "Fit": [],
        "Step": [],
        "Steps/s": [],
        "Slope mean": [],
        "Slope sd": [],
        "Intercept mean": [],
        "Intercept sd": [],
        "KL(q ‖ exact)": [],
        "Status": [],
        "Why": [],
    }
    for fit, status in zip(view.fits, statuses, strict=True):
        last = fit.last
        columns["Fit"].append(fit.label)
        cap = " (cap)" if fit.config.until_target else ""
        columns["Step"].append(f"{fit.steps_done:,} / {fit.total_steps:,}{cap}")
        live = fit.status == "running" and view.state == "running"
        columns["Steps/s"].append(f"{fit.steps_per_second:,.0f}" if live else "–")
        if last is None:
            for name in ("Slope mean", "Slope sd", "Intercept mean", "Intercept sd", "KL(q ‖ exact)"):
                columns[name].append("–")
        else:
            columns["Slope mean"].append(fmt(last.mean[0]))
            columns["Slope sd"].append(fmt(last.sd[0]))
            columns["Intercept mean"].append(fmt(last.mean[1]))
            columns["Intercept sd"].append(fmt(last.sd[1]))
            columns["KL(q ‖ exact)"].append(fmt(kl_or_inf(exact, fit), 3))
        columns["Status"].append(status.text)
        columns["Why"].append(status.reason or "–")
    return columns


def kl_or_inf(exact: ExactPosterior, fit: FitView) -> float:
    """KL(q || exact) of the fit's latest snapshot; inf for a collapsed q (an sd of exactly 0)."""
    last = fit.last
    if last is None:
        return math.nan
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # a fit near divergence: the KL is honestly inf
            return exact.kl_to_exact(last.gaussian)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return math.inf


def status_counts(statuses: tuple[FitStatus, ...]) -> str:
    """How many fits stand where, e.g. "3 at target, 1 diverged"; "" before any fit has trained."""
    counts: dict[str, int] = {}
    for status in statuses:
        if status.word == "Diverged":
            counts["diverged"] = counts.get("diverged", 0) + 1
        elif status.convergence is not None:
            counts[status.convergence.label] = counts.get(status.convergence.label, 0) + 1
    order = [*STATUS_LABELS.values(), "diverged"]
    return ", ".join(f"{counts[label]} {label}" for label in order if label in counts)


def progress_line(view: JobView, statuses: tuple[FitStatus, ...]) -> str:
    """The progress bar's text: the state in bold with where the fits stand, the steps, the speed, and why."""
    rate = sum(fit.steps_per_second for fit in view.fits if fit.status == "running")
    capped = any(fit.config.until_target for fit in view.fits)
    steps_text = f"Step {view.steps_done:,} of {'at most ' if capped else ''}{view.total_steps:,}"
    rate_text = f" · {rate:,.0f} steps/s" if view.state == "running" else ""
    if len(view.fits) > 1:  # each fit's own steps (the range when they differ) and speed, never their sum
        longest = max(fit.total_steps for fit in view.fits)
        behind, ahead = min(fit.steps_done for fit in view.fits), max(fit.steps_done for fit in view.fits)
        steps = f"Step {ahead:,}" if behind == ahead else f"Steps {behind:,} to {ahead:,}"
        steps_text = f"{steps} of {'at most ' if capped else ''}{longest:,} per fit"
        running = sum(1 for fit in view.fits if fit.status == "running")
        rate_text = f" · {rate / running:,.0f} steps/s per fit" if view.state == "running" and running else ""
    if view.state == "queued" and view.queue_position is not None:
        rate_text = f" · number {view.queue_position} in the queue: the server runs a few fits at a time"
    if len(view.fits) == 1:
        (status,) = statuses
        head = f"**{status.word}**" + (f" · {status.convergence.label}" if status.convergence is not None else "")
        why = f" · {status.reason}" if status.reason and status.word != "Diverged" else ""
        return f"{head} · {steps_text}{rate_text}{why}"
    counts = status_counts(statuses)
    word = view.state.capitalize()
    if view.state == "finished" and any(status.word == "Diverged" for status in statuses):
        word = "Ended"  # the job ended, but a diverged fit never reads as finished
    return f"**{word}**{f' · {counts}' if counts else ''} · {steps_text}{rate_text}"


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
        st.caption(define_used(*rows))  # the terms of the column headers, defined right below them


def total_steps(context: Context, view: JobView | None) -> int:
    """The step axis's extent: the longest fit of the job (or of the pending settings)."""
    if view is not None:
        return max(fit.total_steps for fit in view.fits)
    return max(fit.step_count for fit in context.scenario.fit_configs())


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
            live_chart(figures.fig_mean(traces, context.exact, parameter, total), f"chart_mean_{name}")
            st.caption(chart_text.text_mean(traces, context.exact, parameter).summary)  # the chart's text alternative
        with right:
            live_chart(figures.fig_sd(traces, context.exact, parameter, total), f"chart_sd_{name}")
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
            live_chart(figures.fig_loss(traces, context.exact, total_steps(context, view)), "chart_loss")
            st.caption(chart_text.text_loss(traces, context.exact).summary)
    if "data" not in columns:
        return
    with columns["data"]:
        fits = [(fit.label, fit.last.gaussian) for fit in view.fits if fit.last is not None] if view else []
        data = context.scenario.data
        true_line = (float(data.slope), float(data.intercept)) if context.synthetic else None
        noise_sd = context.scenario.model.noise_sd
        live_chart(figures.fig_data(context.dataset, context.exact, fits, noise_sd, true_line), "chart_data")
        st.caption(chart_text.text_data(context.dataset, context.exact, fits).summary)


def current_view() -> JobView | None:
    """The job's current view (touching its heartbeat), or None without a job."""
    job: Job | None = st.session_state.get("job")
    if job is None:
        return None
    job.touch()
    return job.view()


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
    st.markdown("**Share this scenario.** The address bar already holds it; copy this link:")
    st.code(f"{base.split('?')[0]}?{query}" if query else base or "(default scenario: no parameters)", language=None)
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


def restore_from_link() -> None:
    """On a session's first run: load the scenario in the query string (problems kept to show as warnings)."""
    if st.session_state.get("restored"):
        return
    warm_up()  # the training processes' forkserver imports torch and Pyro now, not at the first Run
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


def setting_label(key: str) -> str:
    """The label on screen of the sidebar widget `key` (a key of widget_values)."""
    if key == "fit_seed":
        return "Fit seed"
    field = key.split("_", 1)[1] if key.startswith(("data_", "prior_", "fit_")) else key
    return FIELD_LABELS.get(field, field)


def setting_text(key: str, value: Any) -> str:
    """A sidebar widget's value as its widget shows it."""
    if value is None:
        return "default"
    if isinstance(value, bool):
        return "on" if value else "off"
    if key == "fit_method":
        return "Compare all methods" if value == COMPARE else METHOD_LABELS.get(value, str(value))
    if key == "fit_guide":
        return GUIDE_LABELS.get(value, str(value))
    if isinstance(value, float):
        return fmt(value)
    return str(value)


def previous_settings_note(job_context: Context, current: Context) -> str:
    """What the job's settings were where they differ from the current ones (speed aside: it is a pace)."""
    old, new = widget_values(job_context.scenario), widget_values(current.scenario)
    changes = [
        f"{setting_label(key)} = {setting_text(key, old[key])} (now {setting_text(key, new[key])})"
        for key in old
        if key != "speed" and old[key] != new[key]
    ]
    if job_context.dataset is not current.dataset and not (job_context.synthetic and current.synthetic):
        old_data, new_data = job_context.dataset, current.dataset
        changes.append(
            f"data {escape_markdown(old_data.source)}, n = {old_data.n:,} "
            f"(now {escape_markdown(new_data.source)}, n = {new_data.n:,})"
        )
    listed = "; ".join(changes) if changes else "other data"
    return f"These fits ran on the previous settings: {listed}. Press **Run** to fit the current ones."


def same_run_settings(first: Scenario, second: Scenario) -> bool:
    """Whether two scenarios ask for the same fits: speed is a pace, applied to a running fit at once."""
    return dataclasses.replace(first, speed=second.speed) == second


def same_context(first: Context, second: Context) -> bool:
    """Whether two contexts show the same fits' settings (speed aside) on the same data."""
    return same_run_settings(first.scenario, second.scenario) and first.dataset is second.dataset


def main() -> None:
    """The page."""
    st.set_page_config(page_title="bayesdemo: Bayesian regression, live", page_icon="📈", layout="wide")
    page_style.restore_from_link()
    page_style.draw_page_style()
    restore_from_link()
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
            sync_link(scenario)
            draw_noise_sd_note(noise_note, pending)
    draw_controls(controls, scenario, pending, blockers)

    job: Job | None = st.session_state.get("job")
    job_context: Context | None = st.session_state.get("job_context") if job is not None else None
    # The exact reference costs microseconds: it always shows the current settings. The fits show the settings they
    # ran on (the job's), marked as the previous settings once those differ from the current ones.
    context = pending or job_context or st.session_state.get("context_cache")
    previous = ""
    if job_context is not None and pending is not None and not same_context(pending, job_context):
        previous = previous_settings_note(job_context, pending)

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

    view = current_view()
    if job_context is not None:
        run_exact, run_n = job_context.exact, job_context.dataset.n
        page_lessons.draw_step(LESSON_HOOKS, view, job_context.scenario, run_exact, run_n, job_context.synthetic)
    else:
        page_lessons.draw_step(LESSON_HOOKS, None, None, None, 0, False)
    draw_exact_summary(context)
    live_context = job_context or context
    polling_view = view if view is not None and view.active else None  # the job's view while it may still change
    st.session_state["polling"] = polling_view is not None
    st.session_state["polling_state"] = polling_view.state if polling_view is not None else None
    refresh = None
    # While training, slower when more jobs train than the server has cores (jobs.paced_interval_s).
    if polling_view is not None:
        refresh = paced_interval_s(REFRESH_RUNNING_S) if polling_view.state == "running" else REFRESH_PAUSED_S
    draw_live_fragments(live_context, refresh, previous)
    # The explore views sit below the fold: their live parameter space redraws at the loss and data charts' pace.
    if page_lessons.explore_shown():  # a lesson step without an explore view leaves them out
        explore.draw_explore(live_context, current_view, None if refresh is None else SLOWER_REDRAW_EVERY * refresh)

    with st.expander("Explain: what the charts show, with this data's numbers"):
        draw_explain(context, None if previous else view)  # a previous run's fits are not this data's numbers
    with st.expander("Share and export"):
        draw_export(context, live_context, view)


if __name__ == "__main__":
    main()
