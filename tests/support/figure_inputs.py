"""What the figure tests draw: one small dataset, its exact posterior, a live fit, and each teaching view's reference.

The references are computed once per test process (functools.cache) and shared by every figure test that draws them.
"""

from __future__ import annotations

import functools

import numpy as np

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import Gaussian, exact_posterior
from bayesdemo.core.priors import Model, ParameterPrior, Prior
from bayesdemo.references.basis import (
    BasisConfig,
    BasisPosterior,
    EvidenceCurve,
    fit_basis,
    log_evidence_by_complexity,
    simulate_polynomial,
)
from bayesdemo.references.calibration import CalibrationConfig, CalibrationResult, calibrate
from bayesdemo.references.grid import GridPosterior, grid_posterior
from bayesdemo.references.noise_sd import NoiseSdPosterior, noise_sd_posterior

DATA = generate(DataConfig(n=40, seed=2))
MODEL = Model()
EXACT = exact_posterior(DATA, MODEL)
LIVE = Gaussian([2.9, 1.05], [[0.01, 0.001], [0.001, 0.004]])  # a correlated fit near the exact mean
PATH = np.array([[0.0, 0.0], [1.5, 0.5], [2.9, 1.05]])  # the path of its mean, ending at LIVE's
PLANE_PRIOR = Gaussian.diagonal([0.0, 0.0], [1.0, 1.0])  # the sequential plane's prior
SLOPE_PRIOR = ParameterPrior("laplace", 0.0, 0.5)  # the other-priors view's slope prior
CURVED = simulate_polynomial([0.5, -1.0, 2.0], n=40, seed=1)  # points on a parabola, for the basis views


def mcmc_samples(count: int) -> np.ndarray:
    """`count` seeded draws (count, 2) of the exact posterior, as NUTS would give them."""
    return np.random.default_rng(0).multivariate_normal(EXACT.mean, EXACT.posterior.cov, size=count)


@functools.cache
def grid_reference() -> GridPosterior:
    """The grid posterior under SLOPE_PRIOR on the slope and a Student-t (3 dof) on the intercept."""
    return grid_posterior(DATA, Model(Prior(SLOPE_PRIOR, ParameterPrior("student_t", 0.0, 1.0, df=3.0))))


@functools.cache
def noise_reference() -> NoiseSdPosterior:
    """p(s | y) of DATA by quadrature."""
    return noise_sd_posterior(DATA, MODEL)


@functools.cache
def basis_fit() -> BasisPosterior:
    """A quadratic fitted to CURVED."""
    return fit_basis(CURVED, BasisConfig("polynomial", 2), MODEL)


@functools.cache
def evidence_curve(low: int = 0, high: int = 6) -> EvidenceCurve:
    """log p(y) of CURVED under polynomials of degree low..high."""
    return log_evidence_by_complexity(CURVED, "polynomial", range(low, high + 1), MODEL)


@functools.cache
def calibration_result() -> CalibrationResult:
    """Simulation-based calibration over 40 datasets of 10 points."""
    return calibrate(MODEL, CalibrationConfig(datasets=40, n=10, seed=0))
