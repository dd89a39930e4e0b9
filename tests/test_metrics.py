"""Targets per method, sd ratios, and the convergence rule on hand-made trajectories."""

import numpy as np
import pytest

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import Gaussian, exact_posterior
from bayesdemo.core.priors import Model
from bayesdemo.fitting.metrics import (
    STATUS_LABELS,
    Target,
    convergence,
    is_converged,
    kl_to_exact,
    run_status_text,
    sd_ratios,
    step_converged_for_good,
    target_for,
    window_average,
    within_band,
)
from bayesdemo.fitting.runner import Snapshot
from bayesdemo.methods import FitConfig

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


def two_snapshots(mean: np.ndarray, sd: np.ndarray) -> list[Snapshot]:
    """A start at step 0 far away and one trained snapshot (step 1) at (mean, sd): window 1 sees the second only."""
    start = Snapshot.of(0, 0.0, 0.0, Gaussian.diagonal(EXACT.mean + 50 * EXACT.sd, 40 * EXACT.sd))
    return [start, Snapshot.of(1, 0.1, 0.0, Gaussian.diagonal(mean, sd))]


def status_of(mean: np.ndarray, sd: np.ndarray, target: Target, exact=EXACT) -> str:
    """The convergence status of a fit that sits at (mean, sd) after one step, window 1."""
    return convergence(two_snapshots(mean, sd), target, exact, window=1).status


def test_status_boundaries_for_a_positive_target_sd():
    target = Target(EXACT.mean, EXACT.mean_field_sd, "mean-field optimum")
    sd = EXACT.mean_field_sd
    # Inside the benchmark's band (0.1 exact sd, 10%): at target, no reason needed.
    assert status_of(EXACT.mean + 0.09 * EXACT.sd, 1.09 * sd, target) == "at_target"
    assert convergence(two_snapshots(EXACT.mean, sd), target, EXACT, window=1).reason == ""
    # Mean: up to 1 exact sd off is still moving, beyond it far from target (either parameter).
    assert status_of(EXACT.mean + [0.99, 0.0] * EXACT.sd, sd, target) == "still_moving"
    assert status_of(EXACT.mean + [0.0, 1.01] * EXACT.sd, sd, target) == "far_from_target"
    assert status_of(EXACT.mean - [1.01, 0.0] * EXACT.sd, sd, target) == "far_from_target"
    # sd: within [0.5, 2] times the target sd and outside the 10% band is still moving; outside it far.
    for factor, expected in ((1.99, "still_moving"), (2.01, "far_from_target"), (0.51, "still_moving")):
        assert status_of(EXACT.mean, sd * [factor, 1.0], target) == expected, factor
    assert status_of(EXACT.mean, sd * [1.0, 0.49], target) == "far_from_target"


def test_status_boundaries_for_the_sd_zero_target_of_noise_injection():
    target = Target(DATA.least_squares(), np.zeros(2), "least squares, sd 0")
    assert status_of(target.mean, 0.09 * EXACT.sd, target) == "at_target"
    assert status_of(target.mean, 0.5 * EXACT.sd, target) == "still_moving"
    assert status_of(target.mean, [0.99, 0.0] * EXACT.sd, target) == "still_moving"
    assert status_of(target.mean, [1.01, 0.0] * EXACT.sd, target) == "far_from_target"


def test_status_uses_the_window_average_and_never_calls_an_untrained_fit_at_target():
    target = Target(EXACT.mean, EXACT.mean_field_sd, "mean-field optimum")
    on_target = Gaussian.diagonal(EXACT.mean, EXACT.mean_field_sd)
    # Only the starting snapshot, sitting on target: no step taken, so not at target.
    assert convergence([Snapshot.of(0, 0.0, 0.0, on_target)], target, EXACT).status != "at_target"
    assert convergence([], target, EXACT).status == "still_moving"
    # 40 steps far off then 10 on target: the 50-step average is still far, the last step alone is on target.
    far = Gaussian.diagonal(EXACT.mean + 3 * EXACT.sd, EXACT.mean_field_sd)
    snapshots = [Snapshot.of(step, 0.0, 0.0, far if step <= 40 else on_target) for step in range(51)]
    assert convergence(snapshots, target, EXACT, window=50).status == "far_from_target"
    assert convergence(snapshots, target, EXACT, window=1).status == "at_target"


def test_reason_names_the_worst_moment_and_the_cure_for_uncentred_x():
    data = generate(DataConfig(x_min=10.0, x_max=12.0))
    exact = exact_posterior(data, Model())
    target = target_for(FitConfig(method="bbb"), exact, data.least_squares())
    sd = target.sd * [1.0, 3.1]
    result = convergence(two_snapshots(exact.mean, sd), target, exact, window=1)
    assert result.status == "far_from_target" and result.label == STATUS_LABELS["far_from_target"]
    assert result.reason.startswith("The intercept's sd is 3.1 times its target")
    assert "ill-conditioned" in result.reason and "Centre x" in result.reason and "Run until at target" in result.reason
    # The same miss on the tutorial's x in [0, 1] (|rho| < 0.99) names the miss but not uncentred x.
    tutorial = convergence(
        two_snapshots(EXACT.mean, EXACT.mean_field_sd * [1.0, 3.1]),
        target_for(FitConfig(method="bbb"), EXACT, DATA.least_squares()),
        EXACT,
        window=1,
    )
    assert abs(EXACT.corr) < 0.99
    assert "intercept's sd is 3.1 times" in tutorial.reason and "ill-conditioned" not in tutorial.reason
    # A centred fit is never told to centre x.
    centred = target_for(FitConfig(method="bbb", centre_x=True), exact, data.least_squares())
    far = convergence(two_snapshots(exact.mean, centred.sd * 3.1), centred, exact, window=1)
    assert far.status == "far_from_target" and "Centre x" not in far.reason


def test_centred_mean_field_target_maps_the_centred_optimum_back():
    # Independent route: the covariance of theta_c = (slope, intercept + mean x slope) from the exact covariance,
    # inverted to its precision; the factorised optimum has variances 1 / precision_jj (PRML 10.12-10.13), and
    # intercept = theta_c[1] - mean x slope maps them back. Agreement to 1e-9 relative: float64 rounding of 2x2 solves.
    for x_min, x_max in ((10.0, 12.0), (1000.0, 1002.0), (0.0, 1.0), (-3.0, -2.0)):
        data = generate(DataConfig(n=2 if x_min < 0 else 100, x_min=x_min, x_max=x_max))
        exact = exact_posterior(data, Model())
        x_mean = float(np.mean(data.x))
        to_centred = np.array([[1.0, 0.0], [x_mean, 1.0]])
        centred_cov = to_centred @ exact.posterior.cov @ to_centred.T
        variances = 1.0 / np.diag(np.linalg.inv(centred_cov))
        expected = np.sqrt([variances[0], variances[1] + x_mean**2 * variances[0]])
        target = target_for(FitConfig(method="svi", guide="normal", centre_x=True), exact, data.least_squares())
        np.testing.assert_allclose(target.sd, expected, rtol=1e-9)
        np.testing.assert_array_equal(target.mean, exact.mean)
        assert target.centred
    # Full covariance and least squares do not depend on the coordinates.
    full = target_for(FitConfig(method="svi", guide="mvn", centre_x=True), EXACT, DATA.least_squares())
    np.testing.assert_array_equal(full.sd, EXACT.sd)
    noise = target_for(FitConfig(method="noise", centre_x=True), EXACT, DATA.least_squares())
    np.testing.assert_array_equal(noise.mean, DATA.least_squares())


def test_run_status_text_never_says_finished_alone_and_diverged_has_no_status():
    at = convergence(
        two_snapshots(EXACT.mean, EXACT.mean_field_sd),
        target_for(FitConfig(), EXACT, DATA.least_squares()),
        EXACT,
        window=1,
    )
    far = convergence(
        two_snapshots(EXACT.mean + 5 * EXACT.sd, EXACT.mean_field_sd),
        target_for(FitConfig(), EXACT, DATA.least_squares()),
        EXACT,
        window=1,
    )
    assert run_status_text("done", at) == "Finished · at target"
    assert run_status_text("done", far) == "Finished · far from target"
    assert run_status_text("stopped", far) == "Stopped · far from target"
    assert run_status_text("running", at) == "Running · at target"
    assert run_status_text("diverged", at) == "Diverged"
