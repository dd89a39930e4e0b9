"""Scenario validation, its model and fit list, and the presets' teaching claims checked against the exact posterior."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from bayesdemo.core.config import FitConfig
from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import exact_posterior
from bayesdemo.core.priors import GaussianPrior
from bayesdemo.core.scenario import PRESETS, Preset, Scenario, is_noise_label
from bayesdemo.fitting.runner import RunConfig


def exact_for(scenario: Scenario):
    """Dataset and exact posterior of a scenario."""
    dataset = generate(scenario.data)
    return dataset, exact_posterior(dataset, scenario.model)


def test_model_takes_the_prior_and_the_data_noise_sd():
    prior = GaussianPrior(slope_mean=1.5, slope_sd=0.25, intercept_mean=-2.0, intercept_sd=4.0)
    scenario = Scenario(data=DataConfig(noise_sd=0.37), prior=prior)
    assert scenario.model.prior == prior
    assert scenario.model.noise_sd == 0.37


@pytest.mark.parametrize("speed", [-1.0, 100_000.5, math.nan, math.inf, "fast"])
def test_bad_speed_is_refused_naming_the_field(speed):
    with pytest.raises(ValueError, match="speed") as error:
        Scenario(speed=speed)
    assert repr(speed) in str(error.value)


@pytest.mark.parametrize("speed", [0.0, 12.5, 100_000])
def test_speed_in_range_is_kept_as_float(speed):
    scenario = Scenario(speed=speed)
    assert scenario.speed == speed and isinstance(scenario.speed, float)


@pytest.mark.parametrize("every", [0, -3, 2.5, "10"])
def test_bad_snapshot_every_is_refused(every):
    with pytest.raises(ValueError, match="snapshot_every"):
        Scenario(snapshot_every=every)


@pytest.mark.parametrize(("field", "value"), [("compare_all", 1), ("data", {"n": 5}), ("fit", "bbb")])
def test_wrong_types_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        Scenario(**{field: value})


def test_single_fit_is_the_fit_itself():
    fit = FitConfig(method="svi", guide="tutorial", lr=0.01, seed=7, steps=123)
    assert Scenario(fit=fit).fit_configs() == (fit,)


def test_compare_all_runs_four_methods_sharing_seed_steps_samples_batch():
    fit = FitConfig(
        method="svi",
        guide="tutorial",
        optimizer="sgd",
        lr=0.3,
        lr_decay=0.5,
        samples=4,
        batch_size=20,
        seed=9,
        steps=321,
    )
    configs = Scenario(fit=fit, compare_all=True).fit_configs()
    kinds = [(c.method, c.guide if c.method == "svi" else None) for c in configs]
    assert sorted(kinds, key=str) == sorted(
        [("noise", None), ("bbb", None), ("svi", "normal"), ("svi", "mvn")], key=str
    )
    for config in configs:
        assert (config.seed, config.steps, config.samples, config.batch_size) == (9, 321, 4, 20)
        assert (config.lr, config.optimizer, config.lr_decay) == (None, None, None)
    assert len({c.label for c in configs}) == 4


def test_noise_label_is_recognised_only_for_noise_injection():
    assert is_noise_label(FitConfig(method="noise").label)
    assert not any(is_noise_label(FitConfig(method=m).label) for m in ("bbb", "svi"))


def test_presets_are_keyed_by_name_and_explained():
    for name, preset in PRESETS.items():
        assert isinstance(preset, Preset) and preset.name == name
        assert isinstance(preset.scenario, Scenario)
        assert 20 < len(preset.description) < 400 and preset.description.count(". ") <= 2


def test_pyro_tutorial_preset_is_the_tutorials_setting():
    scenario = PRESETS["Pyro tutorial"].scenario
    dataset, exact = exact_for(scenario)
    slope, intercept = dataset.least_squares()
    assert abs(slope - 3.0) < 0.1 and abs(intercept - 1.0) < 0.05 and dataset.n == 100
    assert (scenario.fit.method, scenario.fit.guide) == ("svi", "normal")
    assert -0.92 < exact.corr < -0.82  # MATH.md: about -0.87 for x ~ U(0, 1)


def test_forum_preset_runs_long_enough_for_the_sd_to_drop_well_below_exact():
    scenario = PRESETS["Forum noise injection"].scenario
    dataset, exact = exact_for(scenario)
    (fit,) = scenario.fit_configs()
    assert fit.method == "noise" and fit.optimizer_in_force == "sgd"
    # Expected |b_sd| under the averaged SGD recursion, iterated step by step (no closed form used).
    factor = 1.0 - 2.0 * fit.lr_in_force * float(np.mean(dataset.x**2))
    sd, crossed_at = 1.0, None
    for step in range(1, fit.steps + 1):
        sd *= factor
        if crossed_at is None and sd < exact.sd[0]:
            crossed_at = step
    assert crossed_at is not None and crossed_at < 0.8 * fit.steps
    assert sd < 0.5 * exact.sd[0]
    assert fit.steps / scenario.snapshot_every <= 2000  # the chart keeps every snapshot


def test_strong_wrong_prior_pulls_the_posterior_away_from_the_data():
    scenario = PRESETS["Strong wrong prior"].scenario
    dataset, exact = exact_for(scenario)
    least_squares = dataset.least_squares()
    assert abs(exact.mean[0] - least_squares[0]) > 5 * exact.sd[0]
    assert abs(exact.mean[0] - scenario.prior.slope_mean) > 5 * exact.sd[0]


def test_tiny_data_has_a_wide_posterior():
    tiny = PRESETS["Tiny data"].scenario
    _, exact_tiny = exact_for(tiny)
    _, exact_full = exact_for(dataclasses.replace(tiny, data=dataclasses.replace(tiny.data, n=100)))
    assert tiny.data.n <= 5
    assert np.all(exact_tiny.sd > 3 * exact_full.sd)


def test_centred_x_makes_mean_field_nearly_exact():
    _, exact = exact_for(PRESETS["Centred x"].scenario)
    assert abs(exact.corr) < 0.2
    assert np.all(exact.mean_field_sd / exact.sd > 0.98)


def test_x_far_from_0_preset_ends_far_from_target_and_centre_x_brings_it_there():
    from bayesdemo.fitting.metrics import convergence, target_for
    from bayesdemo.fitting.runner import fit_run

    scenario = PRESETS["x far from 0"].scenario
    dataset, exact = exact_for(scenario)
    assert abs(exact.corr) > 0.99
    statuses = []
    for fit in (scenario.fit, dataclasses.replace(scenario.fit, centre_x=True)):
        run = fit_run(dataset, scenario.model, fit, RunConfig(snapshot_every=scenario.snapshot_every))
        for _ in run:
            pass
        statuses.append(convergence(run.snapshots, target_for(fit, exact, dataset.least_squares()), exact).status)
    assert statuses == ["far_from_target", "at_target"]
