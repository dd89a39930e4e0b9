"""The sidebar's settings as a form: widget values to a Scenario and back, errors in the words on screen."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st

from bayesdemo.core import fields
from bayesdemo.core.config import GUIDE_LABELS, METHOD_LABELS, FitConfig
from bayesdemo.core.data import DataConfig
from bayesdemo.core.markup import escape_markdown
from bayesdemo.core.priors import GaussianPrior
from bayesdemo.core.scenario import Scenario
from bayesdemo.core.validation import ConfigError

COMPARE = "compare"  # method choice that runs every method side by side
DEFAULT_CHOICE = "default"  # optimizer choice that keeps the method's own default
BBB_OPTIONS = ("objective", "kl", "local_reparam")  # the fit settings only a Bayes by Backprop fit reads
# Config field -> its label on screen, for a message that names a field without its widget: the table of settings'
# labels (the first one of a name shared by two parts: "seed" is the data's Seed) and the CSV upload's.
FIELD_LABELS = {
    **{setting.name: setting.label for setting in reversed(fields.SETTINGS)},
    "csv": "CSV upload",
    "x": "CSV column x",
    "y": "CSV column y",
}


def widget_values(scenario: Scenario) -> dict[str, Any]:
    """The session-state value of every sidebar widget that shows `scenario`, by the table of settings' widget keys."""
    values: dict[str, Any] = {}
    for setting in fields.ON_FORM:
        value = setting.value_of(scenario)
        values[setting.widget_key] = float(value) if setting.kind == "float" and value is not None else value
    values["fit_method"] = COMPARE if scenario.compare_all else scenario.fit.method
    values["fit_optimizer"] = scenario.fit.optimizer or DEFAULT_CHOICE
    return values


def load_scenario(scenario: Scenario) -> None:
    """Put `scenario` into the sidebar widgets (call before they are drawn, or from a callback)."""
    st.session_state.update(widget_values(scenario))


@dataclass(frozen=True)
class FieldProblem:
    """A validation error and the sidebar widget whose value caused it (None when no single widget did)."""

    key: str | None  # a key of widget_values, e.g. "data_noise_sd"
    error: ConfigError


def widget_key(part: str, field: str) -> str | None:
    """The sidebar widget that sets config field `field` of `part` ("data", "prior", "fit" or "" for Scenario)."""
    setting = fields.setting_of(part, field)
    return setting.widget_key if setting is not None and setting.on_form else None


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

    def given(part: str) -> dict[str, Any]:
        """The widgets' values of `part`'s settings, by field name."""
        return {setting.name: values[setting.widget_key] for setting in fields.ON_FORM if setting.part == part}

    data = attempt(lambda: DataConfig(**given("data")), "data")
    prior = attempt(lambda: GaussianPrior(**given("prior")), "prior")
    compare_all = values["fit_method"] == COMPARE
    fit_values = given("fit")
    if compare_all:
        fit_values["method"] = FitConfig.method
    if fit_values["optimizer"] == DEFAULT_CHOICE:
        fit_values["optimizer"] = None
    # Bayes by Backprop's own options reach only a Bayes by Backprop fit: a hidden setting never changes another.
    if values["fit_method"] != "bbb":
        for name in BBB_OPTIONS:
            del fit_values[name]
    fit = attempt(lambda: FitConfig(**fit_values), "fit")
    if errors:
        return None, errors
    scenario = attempt(lambda: Scenario(data=data, prior=prior, fit=fit, compare_all=compare_all, **given("")), "")
    return scenario, errors


# The validators' comparison signs, in words for the page.
COMPARISON_WORDS = (
    ("must be >= ", "must be at least "),
    ("must be > ", "must be greater than "),
    ("must be <= ", "must be at most "),
    ("must be < ", "must be less than "),
)


def error_sentence(error: ConfigError, key: str | None = None) -> tuple[str, str]:
    """The label of the widget `key` (else of the error's field) and the rest of the error's sentence in the words on
    screen, ending with a full stop."""
    setting = fields.BY_WIDGET_KEY.get(key or "")
    label = setting.label if setting is not None else FIELD_LABELS.get(error.field, error.field)
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


def describe_error(error: ConfigError, key: str | None = None) -> str:
    """An error sentence led by the name of the widget `key` (else of the error's field) in bold (the rest escaped: it
    may quote a link value or CSV cell)."""
    label, rest = error_sentence(error, key)
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
    """The label on screen of the sidebar widget `key` (a key of widget_values), from the table of settings."""
    setting = fields.BY_WIDGET_KEY.get(key)
    return key if setting is None else setting.label


def field_help(key: str) -> str:
    """The hover of the sidebar widget `key`: the table of settings' help and, for a number, the values accepted."""
    setting = fields.BY_WIDGET_KEY[key]
    if setting.kind not in ("int", "float"):
        return setting.help
    empty = " Empty: the method's own default." if setting.optional else ""
    return f"{setting.help} Accepted: {setting.range_text}.{empty}"


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
