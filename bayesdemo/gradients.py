"""Measured gradient noise of Bayes by Backprop: weight sampling vs local reparameterisation (Kingma et al. 2015).

Both estimators are unbiased for the gradient of the negative ELBO; local reparameterisation samples each data point's
prediction phi_i^T theta independently, so the per-point noise averages out instead of adding up (MATH.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bayesdemo.data import Dataset
from bayesdemo.exact import Gaussian, SufficientStats
from bayesdemo.mean_field import mean_field_elbo
from bayesdemo.methods.bbb import BayesByBackprop
from bayesdemo.priors import Model
from bayesdemo.validation import check_int


@dataclass(frozen=True)
class GradientStatistics:
    """Mean and variance over `repeats` independent draws of the gradient of the loss w.r.t. q's means mu (2,)."""

    mean: np.ndarray  # (2,) average gradient d loss / d mu
    variance: np.ndarray  # (2,) per-component variance of one draw
    repeats: int  # number of independent gradient draws

    @property
    def standard_error(self) -> np.ndarray:
        """Standard error of `mean`, shape (2,)."""
        return np.sqrt(self.variance / self.repeats)


def gradient_statistics(method: BayesByBackprop, repeats: int = 2000) -> GradientStatistics:
    """Draw the mu-gradient of `method.loss()` `repeats` times at its current q (no step is taken)."""
    repeats = check_int("repeats", repeats, 2, 10**6)
    draws = np.array([torch.autograd.grad(method.loss(), method.mu)[0].numpy() for _ in range(repeats)])
    return GradientStatistics(draws.mean(axis=0), draws.var(axis=0, ddof=1), repeats)


def expected_gradient(dataset: Dataset, model: Model, q: Gaussian) -> np.ndarray:
    """The exact mu-gradient of the negative ELBO at diagonal q (closed form, MATH.md ELBO), shape (2,)."""
    mean = torch.tensor(np.array(q.mean), dtype=torch.float64, requires_grad=True)
    sd = torch.tensor(np.array(q.sd), dtype=torch.float64)
    loss = -mean_field_elbo(SufficientStats.of(dataset), model, mean, sd, None)
    return torch.autograd.grad(loss, mean)[0].numpy()
