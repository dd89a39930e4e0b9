"""Fits with the new options land on the target theory gives them: the optimal factorised Gaussian under that prior
(mean_field.mean_field_optimum), with s learned or known. For a non-Gaussian prior that target is not the grid
marginal: a Gaussian q fitted by KL(q || p) is narrower and centred differently, so we test against the target the
method can reach, and check that it differs from the Gaussian-prior answer (so a prior that was ignored would fail).

Tolerances as in test_methods.py: means within 0.1 exact sd, sds within 8% (10% for Pyro's 2,000 steps), averaged
over the last 500 steps; measured errors were below 0.01 sd and 2.5%."""

import math

import numpy as np
import pytest

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import SufficientStats, exact_posterior
from bayesdemo.core.priors import Model, NoiseSdPrior, ParameterPrior, Prior
from bayesdemo.methods import FitConfig, make_method
from bayesdemo.references.mean_field import mean_field_elbo, mean_field_optimum
from bayesdemo.references.noise_sd import noise_sd_posterior

SMALL = generate(DataConfig(n=20, noise_sd=0.5, seed=3))  # the prior matters here
LAPLACE = Model(Prior(ParameterPrior("laplace", 0.0, 0.5), ParameterPrior("laplace", 0.0, 0.5)), noise_sd=0.5)
MIXTURE = Model(Prior(*[ParameterPrior("scale_mixture", 0.0, 2.0, second_scale=0.1)] * 2), noise_sd=0.5)
TUTORIAL = generate(DataConfig())
LEARNED = Model(noise_sd=0.3, noise_prior=NoiseSdPrior("half_normal", scale=1.0))  # s starts 3x too wide


def averaged(data, model, config, window=500):
    """Run `config`; average q's theta mean, sd and s's mean, sd over the last `window` steps."""
    method = make_method(data, model, config)
    records = []
    for step in range(config.steps_in_force):
        method.step()
        if step >= config.steps_in_force - window:
            q = method.posterior()
            records.append(np.concatenate([q.mean, q.sd, method.noise_posterior()]))
    average = np.mean(records, axis=0)
    return average[:2], average[2:4], average[4], average[5]


@pytest.mark.parametrize(
    ("model", "config"),
    [
        (LAPLACE, FitConfig(method="bbb", steps=3000, seed=1)),  # kl="closed" falls back to Monte Carlo
        (MIXTURE, FitConfig(method="bbb", kl="monte_carlo", steps=3000, seed=1)),
        (LAPLACE, FitConfig(method="svi", steps=2000, seed=1)),
    ],
    ids=["bbb-laplace", "bbb-mixture", "svi-laplace"],
)
def test_fits_under_non_gaussian_priors_reach_the_mean_field_optimum_of_that_prior(model, config):
    target = mean_field_optimum(SMALL, model).q
    exact_sd = exact_posterior(SMALL, model).sd
    gaussian = exact_posterior(SMALL, Model(noise_sd=0.5))
    assert np.max(np.abs(target.mean - gaussian.mean) / exact_sd) > 0.25  # the prior moves the answer (0.29-0.47)
    mean, sd, _, _ = averaged(SMALL, model, config)
    np.testing.assert_array_less(np.abs(mean - target.mean), 0.1 * exact_sd)
    np.testing.assert_allclose(sd, target.sd, rtol=0.08 if config.method == "bbb" else 0.1)


@pytest.mark.parametrize(
    "config",
    [
        FitConfig(method="bbb", learn_noise=True, steps=3000, seed=1),
        FitConfig(method="bbb", learn_noise=True, local_reparam=True, kl="monte_carlo", steps=3000, seed=2),
        FitConfig(method="svi", learn_noise=True, steps=2000, seed=1),
    ],
    ids=["bbb", "bbb-local-mc", "svi-normal"],
)
def test_learning_the_noise_sd_reaches_the_three_factor_mean_field_optimum(config):
    target = mean_field_optimum(TUTORIAL, LEARNED, learn_noise=True)
    exact_sd = exact_posterior(TUTORIAL, Model()).sd
    mean, sd, noise_mean, noise_sd = averaged(TUTORIAL, LEARNED, config)
    np.testing.assert_array_less(np.abs(mean - target.q.mean), 0.1 * exact_sd)
    np.testing.assert_allclose(sd, target.q.sd, rtol=0.1)
    # s from 0.3 to ~0.099 (true 0.1); its q-sd 0.0071: measured within 4%.
    assert noise_mean == pytest.approx(target.noise_sd_mean, abs=0.2 * target.noise_sd_sd)
    assert noise_sd == pytest.approx(target.noise_sd_sd, rel=0.15)


def test_local_reparameterisation_reaches_the_mean_field_optimum():
    exact = exact_posterior(TUTORIAL, Model())
    mean, sd, _, _ = averaged(TUTORIAL, Model(), FitConfig(method="bbb", local_reparam=True, steps=3000, seed=1))
    np.testing.assert_array_less(np.abs(mean - exact.mean), 0.1 * exact.sd)
    np.testing.assert_allclose(sd, exact.mean_field_sd, rtol=0.08)


@pytest.mark.parametrize(
    ("data", "model", "config"),
    [
        (SMALL, LAPLACE, FitConfig(method="bbb", samples=4, lr=1e-9, steps=2000, seed=2)),
        (TUTORIAL, LEARNED, FitConfig(method="bbb", learn_noise=True, local_reparam=True, lr=1e-9, steps=2000)),
    ],
    ids=["monte-carlo-kl-laplace", "learned-noise-local-reparam"],
)
def test_new_losses_are_unbiased_estimates_of_the_negative_elbo(data, model, config):
    """q frozen (lr 1e-9): the mean step loss matches -ELBO(q) computed by quadrature within 5 standard errors."""
    import torch

    method = make_method(data, model, config)
    q = method.posterior()
    log_noise = None
    if config.learn_noise:
        log_noise = torch.stack([method.log_noise_mu.detach(), torch.nn.functional.softplus(method.log_noise_rho)])
    elbo = mean_field_elbo(SufficientStats.of(data), model, torch.tensor(q.mean), torch.tensor(q.sd), log_noise)
    losses = np.array([method.step() for _ in range(config.steps_in_force)])
    assert losses.mean() == pytest.approx(-float(elbo.detach()), abs=5 * losses.std() / math.sqrt(losses.size))


@pytest.mark.parametrize("guide", ["mvn", "tutorial"])
def test_pyro_guides_with_a_learned_noise_keep_theta_two_dimensional_and_find_s(guide):
    """After 800 steps q(s) matches the quadrature's p(s | y) (measured: mean 0.0997 and 0.0991 vs 0.0992, sd 0.007)."""
    reference = noise_sd_posterior(TUTORIAL, LEARNED)
    method = make_method(TUTORIAL, LEARNED, FitConfig(method="svi", guide=guide, learn_noise=True, seed=3))
    assert method.noise_posterior()[0] == pytest.approx(0.3, rel=0.05)  # starts at the model's noise sd
    for _ in range(800):
        method.step()
    q = method.posterior()
    assert q.mean.shape == (2,) and q.cov.shape == (2, 2)
    mean, sd = method.noise_posterior()
    assert abs(mean - reference.noise_sd_mean) < 0.5 * reference.noise_sd_sd
    assert sd == pytest.approx(reference.noise_sd_sd, rel=0.25)


def test_known_noise_reports_a_point_mass_and_gaussian_prior_class_keeps_the_closed_form_path():
    from bayesdemo.core.priors import GaussianPrior

    old = make_method(TUTORIAL, Model(GaussianPrior()), FitConfig(method="bbb", seed=4))
    new = make_method(TUTORIAL, Model(Prior.of(GaussianPrior())), FitConfig(method="bbb", seed=4))
    for _ in range(30):
        old.step(), new.step()
    np.testing.assert_array_equal(old.posterior().mean, new.posterior().mean)
    assert old.noise_posterior() == (0.1, 0.0)
