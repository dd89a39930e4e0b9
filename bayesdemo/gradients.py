"""Measured gradient noise of Bayes by Backprop: weight sampling vs local reparameterisation (Kingma et al. 2015).

Both estimators are unbiased for the gradient of the negative ELBO; local reparameterisation samples each data point's
prediction phi_i^T theta independently, so the per-point noise averages out instead of adding up (MATH.md). Its gain
for the mean's gradient grows in proportion to n; for the sd's gradient it stays a few fold (MATH.md, Gradient noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bayesdemo.data import Dataset
from bayesdemo.exact import Gaussian, SufficientStats, design_matrix
from bayesdemo.mean_field import mean_field_elbo
from bayesdemo.methods.bbb import BayesByBackprop
from bayesdemo.priors import Model
from bayesdemo.validation import ConfigError, check_int


@dataclass(frozen=True)
class GradientStatistics:
    """Mean and variance over `repeats` independent draws of d loss / d mu and d loss / d sd at q, each (2,)."""

    mean: np.ndarray  # (2,) average gradient d loss / d mu
    variance: np.ndarray  # (2,) per-component variance of one draw of d loss / d mu
    repeats: int  # number of independent gradient draws
    sd_mean: np.ndarray  # (2,) average gradient d loss / d sd (sd = softplus(rho))
    sd_variance: np.ndarray  # (2,) per-component variance of one draw of d loss / d sd

    @property
    def standard_error(self) -> np.ndarray:
        """Standard error of `mean`, shape (2,)."""
        return np.sqrt(self.variance / self.repeats)


def gradient_statistics(method: BayesByBackprop, repeats: int = 2000) -> GradientStatistics:
    """Draw the mu- and sd-gradients of `method.loss()` `repeats` times at its current q (no step is taken)."""
    repeats = check_int("repeats", repeats, 2, 10**6)
    slope_of_softplus = torch.sigmoid(method.rho.detach())  # d sd / d rho
    mean_draws, sd_draws = [], []
    for _ in range(repeats):
        gradient_mu, gradient_rho = torch.autograd.grad(method.loss(), (method.mu, method.rho))
        mean_draws.append(gradient_mu.numpy())
        sd_draws.append((gradient_rho / slope_of_softplus).numpy())
    means, sds = np.array(mean_draws), np.array(sd_draws)
    return GradientStatistics(
        means.mean(axis=0), means.var(axis=0, ddof=1), repeats, sds.mean(axis=0), sds.var(axis=0, ddof=1)
    )


def expected_gradient(dataset: Dataset, model: Model, q: Gaussian) -> np.ndarray:
    """The exact mu-gradient of the negative ELBO at diagonal q (closed form, MATH.md ELBO), shape (2,)."""
    mean = torch.tensor(np.array(q.mean), dtype=torch.float64, requires_grad=True)
    sd = torch.tensor(np.array(q.sd), dtype=torch.float64)
    loss = -mean_field_elbo(SufficientStats.of(dataset), model, mean, sd, None)
    return torch.autograd.grad(loss, mean)[0].numpy()


def gradient_variance(
    dataset: Dataset, model: Model, q: Gaussian, local_reparam: bool, samples: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form variances (2,), (2,) of one full-batch draw of d loss / d mu and d loss / d sd at diagonal q.

    Closed-form KL, independent draws (MATH.md, Gradient noise; Local reparameterisation). With r = Phi^T (Phi mu - y),
    G = Phi^T Phi, e_i = phi_i^T mu - y_i and tau_i^2 = sum_j phi_ij^2 sd_j^2:
    weight sampling  Var d/dmu_j = sum_k G_jk^2 sd_k^2 / s^4,  Var d/dsd_j = (r_j^2 + G_jj^2 sd_j^2 + sum_k G_jk^2
    sd_k^2) / s^4;  local  Var d/dmu_j = sum_i phi_ij^2 tau_i^2 / s^4,  Var d/dsd_j = sum_i (phi_ij^2 sd_j / tau_i)^2
    (e_i^2 + 2 tau_i^2) / s^4; S samples divide each by S.
    """
    samples = check_int("samples", samples, 1, 10**6)
    if not np.allclose(q.cov, np.diag(np.diag(q.cov)), rtol=0.0, atol=0.0):
        raise ConfigError("q", "must be a factorised (diagonal) Gaussian for Bayes by Backprop's gradients")
    phi = design_matrix(dataset.x)
    sd = q.sd
    s4 = model.noise_sd**4
    errors = phi @ q.mean - dataset.y  # e_i
    if local_reparam:
        tau_squared = (phi**2) @ sd**2  # (n,)
        mean_variance = (phi**2).T @ tau_squared / s4
        slope_of_tau = phi**2 * sd / np.sqrt(tau_squared)[:, None]  # d tau_i / d sd_j, (n, 2)
        sd_variance = (slope_of_tau**2).T @ (errors**2 + 2.0 * tau_squared) / s4
    else:
        gram = phi.T @ phi
        residual_gradient = phi.T @ errors  # r
        mean_variance = (gram**2) @ sd**2 / s4
        sd_variance = (residual_gradient**2 + np.diag(gram) ** 2 * sd**2 + (gram**2) @ sd**2) / s4
    return mean_variance / samples, sd_variance / samples
