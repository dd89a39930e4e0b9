"""Targets per method, sd ratios, and the convergence rule on hand-made trajectories."""

import numpy as np
import pytest

from bayesdemo.data import DataConfig, generate
from bayesdemo.exact import Gaussian, exact_posterior
from bayesdemo.methods import FitConfig
from bayesdemo.metrics import (
    Target,
    is_converged,
    kl_to_exact,
    sd_ratios,
    step_converged_for_good,
    target_for,
    window_average,
    within_band,
)
from bayesdemo.priors import Model
from bayesdemo.runner import Snapshot

DATA = generate(DataConfig())
EXACT = exact_posterior(DATA, Model())


def test_each_method_has_the_target_math_md_derives():
    least_squares = DATA.least_squares()
    noise = target_for(FitConfig(method="noise"), EXACT, least_squares)
    np.testing.assert_array_equal(noise.mean, least_squares)
    np.testing.assert_array_equal(noise.sd, [0.0, 0.0])
    for config in (
        FitConfig(method="bbb"),
        FitConfig(method="svi", guide="normal"),
        FitConfig(method="svi", guide="tutorial"),
    ):
        target = target_for(config, EXACT, least_squares)
        np.testing.assert_array_equal(target.sd, EXACT.mean_field_sd)
    full = target_for(FitConfig(method="svi", guide="mvn"), EXACT, least_squares)
    np.testing.assert_array_equal(full.sd, EXACT.sd)


def test_sd_ratios_and_kl():
    ratios = sd_ratios(EXACT.mean_field_sd, EXACT)
    np.testing.assert_allclose(ratios["to_mean_field"], 1.0)
    np.testing.assert_allclose(ratios["to_exact"], np.sqrt(1 - EXACT.corr**2))
    assert kl_to_exact(EXACT.posterior, EXACT) == pytest.approx(0.0, abs=1e-12)
    assert kl_to_exact(EXACT.mean_field, EXACT) > 0.1


def snapshots_from(means: list[float], sds: list[float]) -> list[Snapshot]:
    """Snapshots at steps 0..len-1 whose slope mean/sd follow the given lists; intercept sits on target."""
    result = []
    for step, (mean, sd) in enumerate(zip(means, sds, strict=True)):
        q = Gaussian.diagonal([mean, EXACT.mean[1]], [sd, EXACT.mean_field_sd[1]])
        result.append(Snapshot.of(step, float(step), 0.0, q))
    return result


def test_band_is_point_one_posterior_sd_and_ten_percent_of_the_target_sd():
    target = Target(EXACT.mean, EXACT.mean_field_sd, "mean-field optimum")
    inside_mean = EXACT.mean + 0.09 * EXACT.sd
    outside_mean = EXACT.mean + 0.11 * EXACT.sd
    assert within_band(inside_mean, EXACT.mean_field_sd * 1.09, target, EXACT.sd)
    assert not within_band(outside_mean, EXACT.mean_field_sd, target, EXACT.sd)
    assert not within_band(EXACT.mean, EXACT.mean_field_sd * 1.11, target, EXACT.sd)
    zero = Target(EXACT.mean, np.zeros(2), "least squares, sd 0")
    assert within_band(EXACT.mean, 0.05 * EXACT.sd, zero, EXACT.sd)
    assert not within_band(EXACT.mean, 0.2 * EXACT.sd, zero, EXACT.sd)


def test_converged_for_good_is_the_last_entry_into_the_band():
    target = Target(EXACT.mean, EXACT.mean_field_sd, "mean-field optimum")
    good_sd = EXACT.mean_field_sd[0]
    far = EXACT.mean[0] + EXACT.sd[0]
    means = [far] * 100 + [EXACT.mean[0]] * 100 + [far] * 50 + [EXACT.mean[0]] * 150
    snapshots = snapshots_from(means, [good_sd] * len(means))
    # Window of 1 step: the rule holds exactly where the mean is on target.
    assert step_converged_for_good(snapshots, target, EXACT.sd, window=1) == 250
    # Window of 50 steps: the average needs about 45 good steps to come within 0.1 sd.
    entered = step_converged_for_good(snapshots, target, EXACT.sd, window=50)
    assert 250 < entered < 300
    assert is_converged(snapshots, target, EXACT.sd, window=50)
    assert not is_converged(snapshots[:260], target, EXACT.sd, window=50)
    assert step_converged_for_good(snapshots[:240], target, EXACT.sd, window=1) is None


def test_window_average_is_the_mean_over_the_snapshots_in_the_window():
    rng = np.random.default_rng(0)
    steps = [0, *np.cumsum(rng.integers(1, 7, size=300)).tolist()]
    snapshots = [
        Snapshot.of(step, 0.0, 0.0, Gaussian.diagonal(rng.normal(size=2), rng.uniform(1, 2, 2))) for step in steps
    ]
    for end in (0, 1, 7, 150, 300):
        last = snapshots[end].step
        chosen = [s for s in snapshots[: end + 1] if last - 50 < s.step and s.step > 0] or [snapshots[end]]
        mean, sd = window_average(snapshots, end, 50)
        np.testing.assert_allclose(mean, np.mean([s.mean for s in chosen], axis=0), rtol=1e-12)
        np.testing.assert_allclose(sd, np.mean([s.sd for s in chosen], axis=0), rtol=1e-12)
