"""The objective dial on Bayes by Backprop: MSE -> Gaussian likelihood -> plus KL. The first two collapse the sds
(no entropy term holds them up, MATH.md noise injection); the third is Bayes by Backprop and lands on the mean-field
optimum. Measured at Adam lr 0.05, 16 samples: the collapsing sds halve about every 1,400 steps."""

import numpy as np
import pytest

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import exact_posterior
from bayesdemo.core.priors import Model
from bayesdemo.fitting.metrics import window_average
from bayesdemo.fitting.runner import RunConfig, run_to_end
from bayesdemo.methods import FitConfig, make_method

DATA = generate(DataConfig())
EXACT = exact_posterior(DATA, Model())


def sds_along(config: FitConfig, checkpoints: tuple[int, ...]) -> tuple[list[np.ndarray], np.ndarray]:
    """q's sds at each checkpoint step, and q's mean at the last."""
    method = make_method(DATA, Model(), config)
    sds = []
    for step in range(1, checkpoints[-1] + 1):
        method.step()
        if step in checkpoints:
            sds.append(method.posterior().sd)
    return sds, method.posterior().mean


@pytest.mark.parametrize("objective", ["mse", "likelihood"])
def test_without_the_kl_the_sds_collapse_and_the_means_go_to_least_squares(objective):
    sds, mean = sds_along(FitConfig(method="bbb", objective=objective, seed=1), (1000, 2000, 3000))
    ratio = [sd / EXACT.mean_field_sd for sd in sds]  # measured at 3000: 0.14-0.19 and still falling
    assert np.all(ratio[2] < 0.35)
    assert np.all(ratio[2] < 0.6 * ratio[0])  # shrinking, not settled
    np.testing.assert_array_less(np.abs(mean - DATA.least_squares()), 0.1 * EXACT.sd)


def test_the_likelihood_scale_alone_changes_nothing_under_adam():
    """With known s the log-likelihood is an affine map of the MSE; Adam is scale-invariant, so the paths coincide."""
    mse, _ = sds_along(FitConfig(method="bbb", objective="mse", seed=2), (500,))
    likelihood, _ = sds_along(FitConfig(method="bbb", objective="likelihood", seed=2), (500,))
    np.testing.assert_allclose(mse[0], likelihood[0], rtol=1e-3)


def test_the_likelihood_objective_with_a_learned_noise_finds_the_maximum_likelihood_noise_sd():
    method = make_method(DATA, Model(noise_sd=0.3), FitConfig(method="bbb", objective="likelihood", learn_noise=True))
    for _ in range(3000):
        method.step()
    slope, intercept = DATA.least_squares()
    mle = np.sqrt(np.mean((DATA.y - slope * DATA.x - intercept) ** 2))
    mean, sd = method.noise_posterior()
    assert mean == pytest.approx(mle, rel=0.01)  # measured 0.03% off
    assert sd < 0.1 * EXACT.sd[1]  # q(s) collapses too: measured 0.0006


def test_adding_the_kl_cures_the_collapse_bayes_by_backprop():
    config = FitConfig(method="bbb", objective="elbo", steps=3000, seed=1)
    run = run_to_end(make_method(DATA, Model(), config), config.steps_in_force, RunConfig(snapshot_every=1))
    mean, sd = window_average(run.snapshots, len(run.snapshots) - 1, 500)
    np.testing.assert_allclose(sd, EXACT.mean_field_sd, rtol=0.08)
    np.testing.assert_array_less(np.abs(mean - EXACT.mean), 0.1 * EXACT.sd)
