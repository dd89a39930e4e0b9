"""Bayes by Backprop in plain torch (Blundell et al. 2015): q = N(mu, softplus(rho)^2), closed-form KL, Adam."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bayesdemo.data import Dataset
from bayesdemo.exact import Gaussian
from bayesdemo.methods.base import DataTensors, FitConfig, Optimiser
from bayesdemo.priors import Model

INITIAL_RHO = -3.0  # softplus(-3) = 0.049: start narrow, as Blundell and seed 002 do
LOG_2PI = math.log(2.0 * math.pi)


class BayesByBackprop:
    """Minimise KL(q || prior) - (N / B) sum_batch E_q log N(y_i | phi_i^T theta, s^2) (MATH.md, Bayes by Backprop).

    The per-step loss is an unbiased estimate of the full-data negative ELBO, so it is directly comparable with
    -log p(y): Blundell's per-batch KL weight 1/M with an unscaled batch likelihood is this loss divided by M.
    """

    def __init__(self, dataset: Dataset, model: Model, config: FitConfig):
        self.config = config
        self.generator = torch.Generator().manual_seed(config.seed)
        self.data = DataTensors(dataset, config.batch_size, self.generator)
        self.noise_sd = float(model.noise_sd)
        self.prior_mean = torch.as_tensor(model.prior.mean, dtype=torch.float64)
        self.prior_sd = torch.as_tensor(model.prior.sd, dtype=torch.float64)
        start = 0.1 * torch.randn(2, generator=self.generator, dtype=torch.float64)
        self.mu = start.requires_grad_(True)
        self.rho = torch.full((2,), INITIAL_RHO, dtype=torch.float64, requires_grad=True)
        self.optimizer = Optimiser(config, [self.mu, self.rho])

    def kl_to_prior(self, sd: torch.Tensor) -> torch.Tensor:
        """Closed-form KL(N(mu, sd^2) || N(m0, s0^2)) summed over parameters."""
        ratio = sd / self.prior_sd
        return torch.sum(0.5 * (ratio**2 + ((self.mu - self.prior_mean) / self.prior_sd) ** 2 - 1.0) - torch.log(ratio))

    def step(self) -> float:
        """One Adam step on the S-sample reparameterised estimate of the negative ELBO."""
        x, y = self.data.batch()
        sd = F.softplus(self.rho)
        eps = torch.randn((self.config.sample_count, 2), generator=self.generator, dtype=torch.float64)
        theta = self.mu + sd * eps  # (S, 2)
        prediction = theta[:, :1] * x + theta[:, 1:]  # (S, B)
        residual = (y - prediction) / self.noise_sd
        batch_log_lik = -0.5 * torch.sum(residual**2, dim=1) - x.shape[0] * (math.log(self.noise_sd) + 0.5 * LOG_2PI)
        scale = self.data.n / x.shape[0]
        loss = self.kl_to_prior(sd) - scale * batch_log_lik.mean()
        return self.optimizer.minimise(loss)

    def posterior(self) -> Gaussian:
        """q = N(mu, diag(softplus(rho)^2))."""
        with torch.no_grad():
            return Gaussian.diagonal(self.mu.numpy().copy(), F.softplus(self.rho).numpy().copy())
