"""Ellipses of Gaussians in the (slope, intercept) plane, and centring x decorrelating the exact posterior."""

from __future__ import annotations

import numpy as np
import pytest

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import Gaussian, exact_posterior
from bayesdemo.core.priors import Model
from bayesdemo.core.validation import ConfigError
from bayesdemo.references.parameter_space import (
    centred,
    centred_posterior,
    ellipse_points,
    has_ellipse,
)
from tests.support.oracles import mahalanobis_squared

DATA = generate(DataConfig(n=50, seed=1))
MODEL = Model()


@pytest.mark.parametrize("level", [1.0, 2.0])
def test_ellipse_points_lie_on_the_level_set(level):
    q = Gaussian([3.0, 1.0], [[0.04, -0.017], [-0.017, 0.01]])
    points = ellipse_points(q, level, points=50)
    assert points.shape == (50, 2)
    np.testing.assert_allclose(points[0], points[-1])
    np.testing.assert_allclose(mahalanobis_squared(q, points), level**2, rtol=1e-9)
    # Independent check with the explicit inverse.
    diff = points - q.mean
    np.testing.assert_allclose(np.einsum("ij,jk,ik->i", diff, np.linalg.inv(q.cov), diff), level**2, rtol=1e-9)


def test_diagonal_ellipse_is_axis_aligned():
    q = Gaussian.diagonal([0.0, 0.0], [2.0, 0.5])
    points = ellipse_points(q)
    np.testing.assert_allclose(points[:, 0].max(), 2.0, rtol=1e-3)
    np.testing.assert_allclose(points[:, 1].max(), 0.5, rtol=1e-3)


def test_centring_x_makes_the_exact_posterior_uncorrelated_and_mean_field_exact():
    plain = exact_posterior(DATA, MODEL)
    assert plain.corr < -0.8  # x ~ U(0, 1): strongly correlated (MATH.md)
    centre = centred_posterior(DATA, MODEL)
    assert abs(centre.corr) < 1e-9
    np.testing.assert_allclose(centre.mean_field_sd, centre.sd, rtol=1e-12)
    np.testing.assert_allclose(centre.mean[0], plain.mean[0], rtol=1e-3)  # the slope barely moves
    np.testing.assert_allclose(centred(DATA).x.mean(), 0.0, atol=1e-12)


def test_bad_level_raises():
    with pytest.raises(ConfigError, match="level_sd"):
        ellipse_points(Gaussian.diagonal([0, 0], [1, 1]), 0.0)


def test_has_ellipse_refuses_collapsed_and_diverged_fits():
    assert has_ellipse(Gaussian([3.0, 1.0], [[0.04, -0.017], [-0.017, 0.01]]))
    assert not has_ellipse(Gaussian([3.0, 1.0], [[0.0, 0.0], [0.0, 0.01]]))  # noise injection's sd collapsed to 0
    assert not has_ellipse(Gaussian([np.nan, 1.0], [[0.04, 0.0], [0.0, 0.01]]))
    assert not has_ellipse(Gaussian([3.0, 1.0], [[np.inf, 0.0], [0.0, 0.01]]))
