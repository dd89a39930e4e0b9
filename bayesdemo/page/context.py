"""What the main area shows: the scenario with its data (simulated or uploaded) and exact posterior."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import streamlit as st

from bayesdemo.core.data import Dataset, generate, parse_csv
from bayesdemo.core.exact import ExactPosterior, exact_posterior
from bayesdemo.core.markup import escape_markdown
from bayesdemo.core.scenario import Scenario
from bayesdemo.core.validation import ConfigError
from bayesdemo.page.form import describe_error, setting_label, setting_text, widget_values

# An uploaded CSV's least-squares residual sd more than this factor above or below the assumed noise sd is far from
# it: the exact 95% band is then at most half (or at least twice) as wide as the data's scatter needs.
NOISE_SD_FAR_RATIO = 2.0
# Degrees of freedom (n - 2) the residual sd needs before it is judged. With the right noise sd s, (n - 2) r^2 / s^2
# is chi-square with n - 2 degrees of freedom, so from 10 on the ratio r / s leaves [1/2, 2] by chance with
# probability below 1% (0.91% at 10; tests/test_app.py measures it); with fewer points chance alone would warn often.
NOISE_SD_MIN_DEGREES = 10


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

    @property
    def residual_sd(self) -> float | None:
        """The data's least-squares residual sd, sqrt(RSS / (n - 2)); None for n = 2 (no degrees of freedom left)."""
        return self.dataset.residual_sd()  # once per dataset, not once per page run


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
    if context.synthetic:
        return None
    residual_sd = context.residual_sd
    if residual_sd is None:
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


def same_run_settings(first: Scenario, second: Scenario) -> bool:
    """Whether two scenarios ask for the same fits: speed is a pace, applied to a running fit at once."""
    return dataclasses.replace(first, speed=second.speed) == second


def same_context(first: Context, second: Context) -> bool:
    """Whether two contexts show the same fits' settings (speed aside) on the same data."""
    return same_run_settings(first.scenario, second.scenario) and first.dataset is second.dataset


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
