"""The optimal factorised Gaussian q for any prior, with s known or learned: the target of BBB and AutoNormal.

For a Gaussian prior and known s this is PRML 10.12-10.13 (exact.ExactPosterior.mean_field). Otherwise the ELBO of
q = N(mu_1, sd_1^2) N(mu_2, sd_2^2) [N(log s | m, v)] is still a smooth deterministic function: the expected
log-likelihood in closed form (MATH.md, ELBO; with E[s^-2] = exp(-2 m + 2 v) when s is learned), Gaussian entropies,
E_q log p(theta_j) in closed form (Gaussian, Laplace) or by 1-D Gauss-Hermite quadrature, and E_q log p(s) likewise.
It is maximised with L-BFGS in float64. Note: for a non-Gaussian prior this q is *not* the grid marginal: a Gaussian
q fitted by KL(q || p) matches the posterior's shape only as well as a Gaussian can.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from bayesdemo.data import Dataset
from bayesdemo.exact import LOG_2PI, Gaussian, SufficientStats, exact_posterior
from bayesdemo.priors import Model, NoiseSdPrior, ParameterPrior, Prior

HERMITE_POINTS = 96  # Gauss-Hermite nodes for E_q log p of smooth priors
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(HERMITE_POINTS)
NODES = torch.as_tensor(_NODES, dtype=torch.float64)  # standard-normal quadrature nodes
WEIGHTS = torch.as_tensor(_WEIGHTS / math.sqrt(2.0 * math.pi), dtype=torch.float64)  # they sum to 1


def expected_log_prior(prior: ParameterPrior, mean: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    """E_{N(mean, sd^2)} log p(theta_j): closed form for Gaussian and Laplace, Gauss-Hermite otherwise."""
    location = torch.tensor(prior.location, dtype=torch.float64)
    if prior.kind == "gaussian":
        return -0.5 * LOG_2PI - math.log(prior.scale) - ((mean - location) ** 2 + sd**2) / (2.0 * prior.scale**2)
    if prior.kind == "laplace":
        # E|X - c| for X ~ N(mean, sd^2): sd sqrt(2/pi) exp(-d^2 / 2 sd^2) + d (1 - 2 Phi(-d / sd)), d = mean - c.
        d = mean - location
        z = d / sd
        standard_normal = torch.distributions.Normal(torch.zeros((), dtype=torch.float64), 1.0)
        mean_abs = sd * math.sqrt(2.0 / math.pi) * torch.exp(-0.5 * z**2) + d * (1.0 - 2.0 * standard_normal.cdf(-z))
        return -math.log(2.0 * prior.scale) - mean_abs / prior.scale
    values = mean + sd * NODES
    return torch.sum(WEIGHTS * prior.distribution().log_prob(values))


def expected_log_noise_prior(prior: NoiseSdPrior, log_mean: torch.Tensor, log_sd: torch.Tensor) -> torch.Tensor:
    """E_{log s ~ N(log_mean, log_sd^2)} [log p(s) + log s], the prior density of log s, by Gauss-Hermite."""
    log_noise = log_mean + log_sd * NODES
    return torch.sum(WEIGHTS * (prior.log_density(torch.exp(log_noise)) + log_noise))


@dataclass(frozen=True)
class MeanFieldOptimum:
    """The ELBO-optimal factorised Gaussian: q over theta, and q over log s when s is learned."""

    q: Gaussian  # diagonal N(mu, diag(sd^2)) over (slope, intercept)
    log_noise_mean: float  # mean of q(log s); log(model.noise_sd) when s is known
    log_noise_sd: float  # sd of q(log s); 0 when s is known
    elbo: float  # ELBO at the optimum

    @property
    def noise_sd_mean(self) -> float:
        """E_q[s] = exp(m + v / 2) (log-normal mean)."""
        return math.exp(self.log_noise_mean + 0.5 * self.log_noise_sd**2)

    @property
    def noise_sd_sd(self) -> float:
        """sd_q[s] = E_q[s] sqrt(exp(v) - 1)."""
        return self.noise_sd_mean * math.sqrt(math.expm1(self.log_noise_sd**2))


def mean_field_elbo(
    stats: SufficientStats, model: Model, mean: torch.Tensor, sd: torch.Tensor, log_noise: torch.Tensor | None
) -> torch.Tensor:
    """ELBO of q = N(mean, diag(sd^2)) [x N(log s | log_noise[0], log_noise[1]^2)] (MATH.md, ELBO), differentiable."""
    ptp = torch.as_tensor(stats.phi_t_phi)
    pty = torch.as_tensor(stats.phi_t_y)
    expected_rss = stats.y_t_y - 2.0 * mean @ pty + mean @ ptp @ mean + torch.sum(torch.diagonal(ptp) * sd**2)
    if log_noise is None:
        s2 = model.noise_sd**2
        log_lik = -0.5 * stats.n * (LOG_2PI + math.log(s2)) - expected_rss / (2.0 * s2)
        noise_term = torch.zeros((), dtype=torch.float64)
    else:
        log_mean, log_sd = log_noise[0], log_noise[1]
        inverse_variance = torch.exp(-2.0 * log_mean + 2.0 * log_sd**2)  # E_q[s^-2]
        log_lik = -0.5 * stats.n * LOG_2PI - stats.n * log_mean - 0.5 * inverse_variance * expected_rss
        entropy = torch.log(log_sd) + 0.5 * (LOG_2PI + 1.0)
        noise_term = entropy + expected_log_noise_prior(model.noise_prior, log_mean, log_sd)
    entropy_theta = torch.sum(torch.log(sd) + 0.5 * (LOG_2PI + 1.0))
    parts = Prior.of(model.prior).parameter_priors
    log_prior = sum(expected_log_prior(part, mean[j], sd[j]) for j, part in enumerate(parts))
    return log_lik + entropy_theta + log_prior + noise_term


def mean_field_optimum(dataset: Dataset, model: Model, *, learn_noise: bool = False) -> MeanFieldOptimum:
    """Maximise the mean-field ELBO for `model`'s prior (and s's prior when learn_noise) by L-BFGS (see module doc)."""
    stats = SufficientStats.of(dataset)
    start = exact_posterior(dataset, model)
    mean = torch.tensor(start.mean, dtype=torch.float64, requires_grad=True)
    log_sd = torch.tensor(np.log(start.mean_field_sd), dtype=torch.float64, requires_grad=True)
    noise = torch.tensor([math.log(model.noise_sd), math.log(0.1)], dtype=torch.float64, requires_grad=True)
    parameters = [mean, log_sd] + ([noise] if learn_noise else [])

    def negative_elbo() -> torch.Tensor:
        log_noise = torch.stack([noise[0], torch.exp(noise[1])]) if learn_noise else None
        return -mean_field_elbo(stats, model, mean, torch.exp(log_sd), log_noise)

    optimizer = torch.optim.LBFGS(
        parameters, lr=1.0, max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-15, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = negative_elbo()
        loss.backward()
        return loss

    for _ in range(20):
        with torch.no_grad():
            before = float(negative_elbo())
        optimizer.step(closure)
        with torch.no_grad():
            if abs(before - float(negative_elbo())) < 1e-12:
                break
    with torch.no_grad():
        q = Gaussian.diagonal(mean.numpy().copy(), torch.exp(log_sd).numpy().copy())
        log_noise_mean = float(noise[0]) if learn_noise else math.log(model.noise_sd)
        log_noise_sd = float(torch.exp(noise[1])) if learn_noise else 0.0
        return MeanFieldOptimum(q, log_noise_mean, log_noise_sd, -float(negative_elbo()))
