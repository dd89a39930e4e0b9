"""Sequential updating: k points at once equals k one-point updates equals the exact posterior; seeded line draws."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bayesdemo.core.data import DataConfig, Dataset, generate
from bayesdemo.core.exact import exact_posterior
from bayesdemo.core.priors import GaussianPrior, Model
from bayesdemo.core.validation import ConfigError
from bayesdemo.references.sequential import (
    SequentialFitConfig,
    line_draws,
    posterior_after,
    vi_fit_after,
)
from tests.support.oracles import posteriors_one_at_a_time, update_one_point

DATA = generate(DataConfig(n=30, seed=3))
MODEL = Model(GaussianPrior(slope_mean=1.0, slope_sd=2.0, intercept_mean=-0.5, intercept_sd=3.0), noise_sd=0.1)


def test_posterior_after_zero_points_is_the_prior():
    prior = posterior_after(DATA, MODEL, 0)
    np.testing.assert_allclose(prior.mean, [1.0, -0.5])
    np.testing.assert_allclose(prior.cov, np.diag([4.0, 9.0]))


@pytest.mark.parametrize("k", [2, 7, 30])
def test_posterior_after_k_points_is_the_exact_posterior_of_the_first_k(k):
    first = Dataset(DATA.x[:k], DATA.y[:k])
    exact = exact_posterior(first, MODEL)
    after = posterior_after(DATA, MODEL, k)
    np.testing.assert_allclose(after.mean, exact.mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(after.cov, exact.posterior.cov, rtol=1e-9, atol=1e-15)


def test_one_point_at_a_time_equals_all_at_once():
    # The lesson: yesterday's posterior is today's prior, and the order of arrival does not matter.
    chain = posteriors_one_at_a_time(DATA, MODEL, DATA.n)
    assert len(chain) == DATA.n + 1
    for k in (0, 1, 5, DATA.n):
        at_once = posterior_after(DATA, MODEL, k)
        np.testing.assert_allclose(chain[k].mean, at_once.mean, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(chain[k].cov, at_once.cov, rtol=1e-7, atol=1e-14)
    reversed_order = Dataset(DATA.x[::-1], DATA.y[::-1])
    np.testing.assert_allclose(
        posteriors_one_at_a_time(reversed_order, MODEL, DATA.n)[-1].mean, chain[-1].mean, rtol=1e-8
    )


def test_each_point_shrinks_the_posterior():
    chain = posteriors_one_at_a_time(DATA, MODEL, 10)
    determinants = [np.linalg.det(q.cov) for q in chain]
    assert all(later < earlier for earlier, later in itertools.pairwise(determinants))


def test_update_rejects_bad_noise():
    with pytest.raises(ConfigError, match="noise_sd"):
        update_one_point(posterior_after(DATA, MODEL, 0), 0.5, 1.0, 0.0)


def test_line_draws_are_seeded_and_follow_the_gaussian():
    q = posterior_after(DATA, MODEL, 5)
    np.testing.assert_array_equal(line_draws(q, 20, seed=4), line_draws(q, 20, seed=4))
    assert not np.array_equal(line_draws(q, 20, seed=4), line_draws(q, 20, seed=5))
    draws = line_draws(q, 200, seed=1)
    assert draws.shape == (200, 2)
    np.testing.assert_allclose(draws.mean(axis=0), q.mean, atol=4 * q.sd.max() / np.sqrt(200))


def test_vi_fit_on_the_first_k_points_lands_near_their_mean_field_optimum():
    k = 10
    exact = exact_posterior(Dataset(DATA.x[:k], DATA.y[:k]), MODEL)
    q = vi_fit_after(DATA, MODEL, k, SequentialFitConfig(steps=1500, seed=2))
    np.testing.assert_allclose(q.mean, exact.mean, atol=0.3 * exact.sd.max())
    np.testing.assert_allclose(q.sd, exact.mean_field_sd, rtol=0.2)


def test_k_out_of_range_and_bad_config_raise():
    with pytest.raises(ConfigError, match="k"):
        posterior_after(DATA, MODEL, DATA.n + 1)
    with pytest.raises(ConfigError, match="steps"):
        SequentialFitConfig(steps=0)
