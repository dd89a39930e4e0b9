"""The sidebar's settings as a form: widget values to a Scenario and back, errors in the words on screen."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st

from bayesdemo.core.config import GUIDE_LABELS, METHOD_LABELS, FitConfig
from bayesdemo.core.data import DataConfig
from bayesdemo.core.markup import escape_markdown
from bayesdemo.core.priors import GaussianPrior
from bayesdemo.core.scenario import Scenario
from bayesdemo.core.validation import ConfigError

COMPARE = "compare"  # method choice that runs every method side by side
DEFAULT_CHOICE = "default"  # optimizer choice that keeps the method's own default
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


def fmt(value: float, digits: int = 4) -> str:
    """A number with `digits` significant figures; inf and nan spelled out."""
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞"
    return f"{value:.{digits}g}"


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
