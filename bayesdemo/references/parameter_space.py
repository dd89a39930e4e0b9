"""Geometry of the (slope, intercept) plane: sd ellipses of Gaussians, and the same data with x centred
(docs/MATH.md)."""

from __future__ import annotations

import numpy as np

from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import ExactPosterior, Gaussian, exact_posterior
from bayesdemo.core.priors import Model
from bayesdemo.core.validation import check_int, check_range

ELLIPSE_POINTS = 121  # points on a drawn ellipse, the first repeated at the end to close it


def ellipse_points(gaussian: Gaussian, level_sd: float = 1.0, points: int = ELLIPSE_POINTS) -> np.ndarray:
    """Points theta (points, 2) with (theta - m)^T S^-1 (theta - m) = level_sd^2: m + level_sd * chol(S) (cos, sin)."""
    check_range("level_sd", level_sd, 0.0, 1e3, low_open=True)
    points = check_int("points", points, 4, 100_000)
    mean, cov = gaussian.mean[:2], gaussian.cov[:2, :2]
    angle = np.linspace(0.0, 2.0 * np.pi, points)
    angle[-1] = 0.0  # close exactly
    circle = np.stack([np.cos(angle), np.sin(angle)])
    return mean + level_sd * (np.linalg.cholesky(cov) @ circle).T


def has_ellipse(gaussian: Gaussian) -> bool:
    """Whether q's (slope, intercept) block is finite and positive definite, so its sd ellipse can be drawn."""
    mean, cov = gaussian.mean[:2], gaussian.cov[:2, :2]
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
        return False
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return False
    return True


def centred(dataset: Dataset) -> Dataset:
    """The same data with x replaced by x - mean(x): the intercept becomes the line's height at mean(x)."""
    return Dataset(dataset.x - dataset.x.mean(), dataset.y, source=f"{dataset.source}, x centred")


def centred_posterior(dataset: Dataset, model: Model) -> ExactPosterior:
    """Exact posterior (PRML 3.49-3.51) on centred x: Phi^T Phi is diagonal, so with a diagonal prior S_N is too.

    sum(x - mean(x)) = 0 zeroes the off-diagonal of Phi^T Phi; L = S0^-1 + Phi^T Phi / s^2 is then diagonal, the
    correlation is 0 and the mean-field optimum 1 / sqrt(L_jj) equals the exact sds (docs/MATH.md, mean-field optimum).
    """
    return exact_posterior(centred(dataset), model)
