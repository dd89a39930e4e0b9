"""The moments every non-Gaussian reference posterior reports alike: sd, correlation and the moment-matched Gaussian."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from bayesdemo.core.exact import Gaussian


class _MeanAndCov(Protocol):
    """A posterior over (slope, intercept) that knows its mean (2,) and covariance (2, 2)."""

    @property
    def mean(self) -> np.ndarray: ...

    @property
    def cov(self) -> np.ndarray: ...


class GaussianMoments:
    """sd, corr and gaussian of a posterior from its own `mean` (2,) and `cov` (2, 2), as Gaussian computes them."""

    @property
    def gaussian(self: _MeanAndCov) -> Gaussian:
        """The moment-matched Gaussian N(mean, cov) of the posterior."""
        return Gaussian(self.mean, self.cov)

    @property
    def sd(self: _MeanAndCov) -> np.ndarray:
        """Marginal posterior sds, shape (2,)."""
        return Gaussian(self.mean, self.cov).sd

    @property
    def corr(self: _MeanAndCov) -> float:
        """Posterior correlation of slope and intercept."""
        return Gaussian(self.mean, self.cov).corr
