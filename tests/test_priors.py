"""Prior families: log densities against their textbook formulas, normalisation, moments, and field validation."""

import math

import numpy as np
import pytest
import torch

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import exact_posterior
from bayesdemo.core.priors import GaussianPrior, Model, NoiseSdPrior, ParameterPrior, Prior
from bayesdemo.methods import FitConfig

VALUES = np.linspace(-3.0, 4.0, 15)


def test_log_densities_match_their_formulas():
    laplace = ParameterPrior("laplace", 0.5, 2.0)
    np.testing.assert_allclose(laplace.log_density(VALUES), -math.log(4.0) - np.abs(VALUES - 0.5) / 2.0, rtol=1e-12)
    student = ParameterPrior("student_t", 1.0, 0.5, df=3.0)
    z = (VALUES - 1.0) / 0.5
    t_formula = (
        math.lgamma(2.0) - math.lgamma(1.5) - 0.5 * math.log(3.0 * math.pi) - math.log(0.5) - 2.0 * np.log1p(z**2 / 3)
    )
    np.testing.assert_allclose(student.log_density(VALUES), t_formula, rtol=1e-12)
    mixture = ParameterPrior("scale_mixture", 0.0, 1.0, mixture_weight=0.25, second_scale=0.1)

    def normal(x, sd):
        return np.exp(-0.5 * (x / sd) ** 2) / (sd * math.sqrt(2 * math.pi))

    mixture_formula = np.log(0.25 * normal(VALUES, 1.0) + 0.75 * normal(VALUES, 0.1))
    np.testing.assert_allclose(mixture.log_density(VALUES), mixture_formula, rtol=1e-10)
    # GaussianPrior and Prior evaluate theta (..., 2) the same way, for numpy and torch alike.
    gaussian = GaussianPrior(1.0, 2.0, -1.0, 0.5)
    theta = np.column_stack([VALUES, VALUES[::-1]])
    expected = np.log(normal(VALUES - 1.0, 2.0)) + np.log(normal(VALUES[::-1] + 1.0, 0.5))
    np.testing.assert_allclose(gaussian.log_density(theta), expected, rtol=1e-12)
    np.testing.assert_allclose(Prior.of(gaussian).log_density(torch.as_tensor(theta)).numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize(
    "prior",
    [
        ParameterPrior("gaussian", 1.0, 0.7),
        ParameterPrior("laplace", -1.0, 0.4),
        ParameterPrior("student_t", 0.0, 0.5, df=4.0),
        ParameterPrior("scale_mixture", 0.3, 1.0, mixture_weight=0.5, second_scale=0.05),
    ],
    ids=lambda prior: prior.kind,
)
def test_each_family_integrates_to_one_and_has_the_stated_variance(prior):
    grid = np.linspace(prior.location - 400.0, prior.location + 400.0, 400_001)
    density = np.exp(prior.log_density(grid))
    step = grid[1] - grid[0]
    assert density.sum() * step == pytest.approx(1.0, abs=2e-4)  # the t's tails beyond +-400 hold ~1e-8
    torch.manual_seed(0)
    samples = prior.distribution().sample((400_000,)).numpy()
    # The sample variance of 400k draws is within a few % of the truth (kurtosis of t(4) is large: 15%).
    assert samples.var() == pytest.approx(prior.variance, rel=0.15 if prior.kind == "student_t" else 0.02)
    assert prior.approximate_sd == pytest.approx(math.sqrt(prior.variance))


def test_heavy_tailed_t_has_infinite_variance_and_falls_back_to_its_scale():
    prior = ParameterPrior("student_t", 0.0, 0.3, df=2.0)
    assert prior.variance == math.inf
    assert prior.approximate_sd == 0.3


@pytest.mark.parametrize(
    "noise_prior",
    [NoiseSdPrior("half_normal", scale=0.5), NoiseSdPrior("log_normal", scale=0.3), NoiseSdPrior("inverse_gamma")],
    ids=lambda prior: prior.kind,
)
def test_noise_sd_priors_are_densities_over_s(noise_prior):
    log_s = np.linspace(-25.0, 8.0, 200_001)
    s = np.exp(log_s)
    mass = np.exp(noise_prior.log_density(s)) * s  # density over log s
    assert mass.sum() * (log_s[1] - log_s[0]) == pytest.approx(1.0, abs=1e-6)


def test_inverse_gamma_noise_prior_has_the_mean_of_s_squared_it_should():
    noise_prior = NoiseSdPrior("inverse_gamma", shape=3.0, rate=0.2)
    log_s = np.linspace(-20.0, 6.0, 200_001)
    s = np.exp(log_s)
    mass = np.exp(noise_prior.log_density(s)) * s * (log_s[1] - log_s[0])
    assert mass @ s**2 == pytest.approx(0.2 / (3.0 - 1.0), rel=1e-6)  # E[s^2] = b / (a - 1)


def test_a_gaussian_prior_class_gives_the_same_model_as_gaussian_parameter_priors():
    data = generate(DataConfig(n=20, seed=1))
    old = exact_posterior(data, Model(GaussianPrior(1.0, 2.0, -1.0, 0.5), noise_sd=0.2))
    new_prior = Prior(ParameterPrior("gaussian", 1.0, 2.0), ParameterPrior("gaussian", -1.0, 0.5))
    new = exact_posterior(data, Model(new_prior, noise_sd=0.2))
    assert new_prior.is_gaussian and not Prior(ParameterPrior("laplace")).is_gaussian
    np.testing.assert_array_equal(new.mean, old.mean)
    np.testing.assert_array_equal(new.posterior.cov, old.posterior.cov)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "cauchy"),
        ("location", float("nan")),
        ("scale", 0.0),
        ("df", -1.0),
        ("mixture_weight", 1.5),
        ("second_scale", 0.0),
    ],
)
def test_invalid_parameter_prior_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ParameterPrior(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [("kind", "gamma"), ("scale", -1.0), ("log_median", float("inf")), ("shape", 0.0), ("rate", -0.1)],
)
def test_invalid_noise_prior_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        NoiseSdPrior(**{field: value})


def test_wrong_types_name_the_field():
    with pytest.raises(ValueError, match="slope"):
        Prior(slope=GaussianPrior())
    with pytest.raises(ValueError, match="prior"):
        Model(prior=ParameterPrior())
    with pytest.raises(ValueError, match="noise_prior"):
        Model(noise_prior=GaussianPrior())
    with pytest.raises(ValueError, match="theta"):
        GaussianPrior().log_density(np.zeros(3))


@pytest.mark.parametrize(
    ("field", "value"),
    [("learn_noise", 1), ("local_reparam", "yes"), ("kl", "analytic"), ("objective", "map")],
)
def test_invalid_new_fit_options_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        FitConfig(**{field: value})


def test_new_fit_options_default_to_the_old_behaviour():
    config = FitConfig()
    assert (config.learn_noise, config.kl, config.local_reparam, config.objective) == (False, "closed", False, "elbo")
    assert Model() == Model(GaussianPrior(), 0.1)
