"""The model's prior and known noise sd: theta = (slope, intercept) ~ N(m0, diag(s0^2)), y ~ N(phi^T theta, s^2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesdemo.validation import check_range

PARAMETER_NAMES = ("slope", "intercept")  # order of theta everywhere in the engine


@dataclass(frozen=True)
class GaussianPrior:
    """Independent Gaussian prior on slope and intercept (MATH.md, Model: S0 = diag(s0^2))."""

    slope_mean: float = 0.0  # prior mean of the slope
    slope_sd: float = 10.0  # prior sd of the slope (> 0)
    intercept_mean: float = 0.0  # prior mean of the intercept
    intercept_sd: float = 10.0  # prior sd of the intercept (> 0)

    def __post_init__(self) -> None:
        check_range("slope_mean", self.slope_mean, -1e6, 1e6)
        check_range("slope_sd", self.slope_sd, 0.0, 1e6, low_open=True)
        check_range("intercept_mean", self.intercept_mean, -1e6, 1e6)
        check_range("intercept_sd", self.intercept_sd, 0.0, 1e6, low_open=True)

    @property
    def mean(self) -> np.ndarray:
        """Prior mean m0, shape (2,)."""
        return np.array([self.slope_mean, self.intercept_mean], dtype=np.float64)

    @property
    def sd(self) -> np.ndarray:
        """Prior sds s0, shape (2,)."""
        return np.array([self.slope_sd, self.intercept_sd], dtype=np.float64)


@dataclass(frozen=True)
class Model:
    """Bayesian linear regression with known noise: the prior plus the noise sd the likelihood assumes."""

    prior: GaussianPrior = GaussianPrior()  # prior on (slope, intercept)
    noise_sd: float = 0.1  # known observation noise sd s of the likelihood (> 0)

    def __post_init__(self) -> None:
        check_range("noise_sd", self.noise_sd, 0.0, 1e6, low_open=True)
