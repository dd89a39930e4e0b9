"""Measured gradient noise of Bayes by Backprop: weight sampling vs local reparameterisation (Kingma et al. 2015).

Both estimators are unbiased for the gradient of the negative ELBO; local reparameterisation samples each data point's
prediction phi_i^T theta independently, so the per-point noise averages out instead of adding up (docs/MATH.md). Its
gain
for the mean's gradient grows in proportion to n; for the sd's gradient it stays a few fold (docs/MATH.md, Gradient
noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F

from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import Gaussian, design_matrix
from bayesdemo.core.priors import Model
from bayesdemo.core.validation import ConfigError, check_int
from bayesdemo.methods.bbb import BayesByBackprop


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


GRADIENT_CHUNK_ELEMENTS = 2**18  # samples x points per chunk of one gradient draw: ~2 MiB per (chunk) tensor


def gradient_draw(method: BayesByBackprop, chunk_elements: int = GRADIENT_CHUNK_ELEMENTS) -> tuple[np.ndarray, ...]:
    """One draw of d loss / d mu and d loss / d rho (each (2,)) of `method.loss()`'s estimator, accumulated over
    chunks of at most `chunk_elements` samples x points, so memory stays fixed whatever S and n are.

    The loss is the KL plus a sum over samples and points (docs/MATH.md, Bayes by Backprop), so its gradient is the
    sum of
    the chunks' gradients with the draws held fixed. The draws come from the fit's generator in the order `loss()`
    takes them: the minibatch, then eps (S, 2), or for local reparameterisation one row of n noises per sample.
    """
    config = method.config
    if config.learn_noise or method.problem is not None:
        raise ConfigError("learn_noise", "must be off (and centre_x off) to measure gradient noise")
    chunk_elements = check_int("chunk_elements", chunk_elements, 1, 10**9)
    x, y = method.data.batch()
    batch = x.shape[0]
    samples = config.samples_in_force
    mu, rho = method.mu, method.rho
    gradient_mu, gradient_rho = torch.zeros_like(mu), torch.zeros_like(rho)
    scale = method.data.n / batch
    rows = max(1, chunk_elements // batch)  # sample rows per chunk
    columns = min(batch, chunk_elements)  # points per chunk
    eps = None if config.local_reparam else method._parameter_draws(samples)
    for first_row in range(0, samples, rows):
        count = min(rows, samples - first_row)
        noise = None
        if config.local_reparam:  # one call per row, as loss() draws them row after row
            noise = torch.stack([method._normal((batch,)) for _ in range(count)])
        for first_point in range(0, batch, columns):
            points = slice(first_point, first_point + columns)
            x_chunk, y_chunk = x[points], y[points]
            sd = F.softplus(rho)
            if noise is not None:
                line_sd = torch.sqrt(x_chunk**2 * sd[0] ** 2 + sd[1] ** 2)
                prediction = mu[0] * x_chunk + mu[1] + line_sd * noise[:, points]
            else:
                # Without local_reparam (noise is None) the parameter draws eps were taken above.
                theta = mu + sd * cast(torch.Tensor, eps)[first_row : first_row + count]
                prediction = theta[:, :1] * x_chunk + theta[:, 1:]
            if config.objective == "mse":
                part = torch.sum((y_chunk - prediction) ** 2) / (samples * batch)
            else:
                residual = (y_chunk - prediction) / method.noise_sd
                part = scale * torch.sum(0.5 * residual**2) / samples
            chunk_mu, chunk_rho = torch.autograd.grad(part, (mu, rho), allow_unused=True)
            gradient_mu += chunk_mu if chunk_mu is not None else 0.0
            gradient_rho += chunk_rho if chunk_rho is not None else 0.0
    if config.objective == "elbo":
        sd = F.softplus(rho)
        if method.closed_form_kl:
            kl = method.kl_to_prior(sd)
        else:
            draws = method._normal((samples, 2)) if eps is None else eps
            kl = method.monte_carlo_kl(mu + sd * draws, sd)
        kl_mu, kl_rho = torch.autograd.grad(kl, (mu, rho))
        gradient_mu += kl_mu
        gradient_rho += kl_rho
    return gradient_mu.numpy(), gradient_rho.numpy()


def gradient_statistics(
    method: BayesByBackprop, repeats: int = 2000, chunk_elements: int = GRADIENT_CHUNK_ELEMENTS
) -> GradientStatistics:
    """Draw the mu- and sd-gradients of `method.loss()` `repeats` times at its current q (no step is taken), each
    draw accumulated over chunks of at most `chunk_elements` samples x points (`gradient_draw`); the moments are
    summed draw by draw (Welford), so memory does not grow with `repeats` either."""
    repeats = check_int("repeats", repeats, 2, 10**6)
    slope_of_softplus = torch.sigmoid(method.rho.detach()).numpy()  # d sd / d rho
    means, squares = np.zeros((2, 2)), np.zeros((2, 2))  # rows: mu-gradient, sd-gradient
    for count in range(1, repeats + 1):
        gradient_mu, gradient_rho = gradient_draw(method, chunk_elements)
        draw = np.stack([gradient_mu, gradient_rho / slope_of_softplus])
        delta = draw - means
        means += delta / count
        squares += delta * (draw - means)
    variances = squares / (repeats - 1)
    return GradientStatistics(means[0], variances[0], repeats, means[1], variances[1])


def gradient_variance(
    dataset: Dataset, model: Model, q: Gaussian, local_reparam: bool, samples: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form variances (2,), (2,) of one full-batch draw of d loss / d mu and d loss / d sd at diagonal q.

    Closed-form KL, independent draws (docs/MATH.md, Gradient noise; Local reparameterisation). With r = Phi^T (Phi
    mu - y),
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
