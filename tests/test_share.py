"""Scenario <-> query string: round trips (hypothesis), only non-defaults, and tampered values reported, not obeyed."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayesdemo.core.config import (
    GUIDES,
    KL_ESTIMATORS,
    MAX_SAMPLES,
    MAX_STEPS,
    METHODS,
    OBJECTIVES,
    OPTIMIZERS,
    FitConfig,
)
from bayesdemo.core.data import DataConfig
from bayesdemo.core.priors import GaussianPrior
from bayesdemo.core.scenario import PRESETS, Scenario
from bayesdemo.core.share import decode, encode

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
positive = st.floats(min_value=1e-9, max_value=1e6, allow_nan=False, exclude_min=True)


@st.composite
def data_configs(draw):
    x_min = draw(st.floats(min_value=-1e6, max_value=1e5))
    width = draw(st.floats(min_value=1e-3, max_value=1e5))
    return DataConfig(
        n=draw(st.integers(2, 10**6)),
        slope=draw(finite),
        intercept=draw(finite),
        noise_sd=draw(positive),
        x_min=x_min,
        x_max=x_min + width,
        seed=draw(st.integers(0, 2**32 - 1)),
    )


priors = st.builds(GaussianPrior, slope_mean=finite, slope_sd=positive, intercept_mean=finite, intercept_sd=positive)
fits = st.builds(
    FitConfig,
    method=st.sampled_from(METHODS),
    guide=st.sampled_from(GUIDES),
    optimizer=st.none() | st.sampled_from(OPTIMIZERS),
    lr=st.none() | st.floats(min_value=1e-9, max_value=10.0),
    lr_decay=st.none() | st.floats(min_value=1e-6, max_value=1.0),
    samples=st.none() | st.integers(1, MAX_SAMPLES),
    batch_size=st.integers(0, 10**7),
    seed=st.integers(0, 2**32 - 1),
    steps=st.none() | st.integers(1, MAX_STEPS),
    objective=st.sampled_from(OBJECTIVES),
    kl=st.sampled_from(KL_ESTIMATORS),
    local_reparam=st.booleans(),
    centre_x=st.booleans(),
    until_target=st.booleans(),
)
scenarios = st.builds(
    Scenario,
    data=data_configs(),
    prior=priors,
    fit=fits,
    compare_all=st.booleans(),
    speed=st.floats(min_value=0.0, max_value=1e5),
    snapshot_every=st.integers(1, 10**6),
)


@settings(max_examples=150, deadline=None)
@given(scenarios)
def test_round_trip_restores_every_field_without_complaint(scenario):
    params = encode(scenario)
    assert all(isinstance(value, str) for value in params.values())
    assert all(len(key) <= 3 for key in params)
    assert decode(params) == (scenario, [])


@settings(max_examples=50, deadline=None)
@given(scenarios)
def test_round_trip_through_a_real_url(scenario):
    parsed = parse_qs(urlencode(encode(scenario)), keep_blank_values=True)  # values arrive as lists
    assert decode(parsed) == (scenario, [])


def test_only_non_default_fields_are_written():
    assert encode(Scenario()) == {}
    changed = Scenario(data=DataConfig(n=7), fit=FitConfig(lr=0.01))
    assert len(encode(changed)) == 2


def test_presets_round_trip():
    for preset in PRESETS.values():
        assert decode(encode(preset.scenario)) == (preset.scenario, [])


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("n", "abc", "n"),
        ("n", "1", "n"),
        ("s", "-1", "noise_sd"),
        ("s", "nan", "noise_sd"),
        ("pws", "inf", "slope_sd"),
        ("m", "__import__('os')", "method"),
        ("g", "laplace", "guide"),
        ("lr", "0", "lr"),
        ("k", "5000", "samples"),
        ("v", "1e9", "speed"),
        ("se", "0", "snapshot_every"),
        ("all", "yes", "compare_all"),
    ],
)
def test_a_tampered_value_keeps_the_default_and_is_reported(key, value, field):
    scenario, problems = decode({key: value, "w": "2.5"})
    assert scenario == Scenario(data=DataConfig(slope=2.5))  # the good value next to it survives
    assert len(problems) == 1
    assert key in problems[0] and repr(value) in problems[0] and field in problems[0]


def test_values_that_clash_fall_back_to_the_default_data_settings():
    scenario, problems = decode({"x0": "2", "x1": "1.5", "n": "7", "pw": "4"})
    assert scenario.data == DataConfig()
    assert scenario.prior == GaussianPrior(slope_mean=4.0)  # other parts are unaffected
    assert len(problems) == 1 and "x_max" in problems[0] and "x0" in problems[0] and "x1" in problems[0]


def test_values_valid_together_are_accepted_even_if_one_alone_would_clash():
    scenario, problems = decode({"x0": "-2", "x1": "-1"})
    assert (scenario.data.x_min, scenario.data.x_max, problems) == (-2.0, -1.0, [])


def test_unknown_keys_are_ignored():
    assert decode({"zz": "1", "__class__": "x", "": ""}) == (Scenario(), [])


def test_an_overlong_value_is_refused_unread():
    scenario, problems = decode({"n": "9" * 10_000})
    assert scenario == Scenario() and len(problems) == 1 and "n" in problems[0] and len(problems[0]) < 200


def test_a_repeated_key_takes_the_last_value():
    scenario, problems = decode({"n": ["5", "12"], "t": []})
    assert scenario == Scenario(data=dataclasses.replace(DataConfig(), n=12)) and problems == []


def test_bayes_by_backprop_options_travel_and_bad_ones_are_reported():
    scenario = Scenario(fit=FitConfig(objective="mse", kl="monte_carlo", local_reparam=True))
    assert encode(scenario) == {"obj": "mse", "kl": "monte_carlo", "lrp": "1"}
    assert decode(encode(scenario)) == (scenario, [])
    decoded, problems = decode({"obj": "kl-free", "lrp": "maybe", "kl": "monte_carlo"})
    assert decoded.fit == FitConfig(kl="monte_carlo")
    assert len(problems) == 2 and any("obj=" in p and "objective" in p for p in problems)
    assert any("lrp=" in p and "local_reparam" in p for p in problems)
