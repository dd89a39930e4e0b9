"""The optimal factorised Gaussian q for any prior, with s known or learned: the target of BBB and AutoNormal.

For a Gaussian prior and known s this is PRML 10.12-10.13 (exact.ExactPosterior.mean_field). Otherwise the ELBO of
q = N(mu_1, sd_1^2) N(mu_2, sd_2^2) [N(log s | m, v)] is still a smooth deterministic function: the expected
log-likelihood in closed form (docs/MATH.md, ELBO; with E[s^-2] = exp(-2 m + 2 v) when s is learned), Gaussian
entropies,
E_q log p(theta_j) in closed form (Gaussian, Laplace) or by 1-D Gauss-Hermite quadrature, and E_q log p(s) likewise.
It is maximised with L-BFGS in float64 from several starts (one per Gaussian window of the prior), since under a
multimodal posterior the ELBO has several local optima (docs/MATH.md, Mean-field optimum under other priors).
Note: for a non-Gaussian prior this q is *not* the grid marginal: a Gaussian q fitted by KL(q || p) matches the
posterior's shape only as well as a Gaussian can.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import LOG_2PI, Gaussian, SufficientStats, exact_posterior
from bayesdemo.core.priors import Model, NoiseSdPrior, ParameterPrior, Prior
from bayesdemo.references.grid import likelihood_alone, prior_windows

START_TOLERANCE = 0.1  # starts whose means lie within this many sds (log sds within this much) are run once
OPTIMUM_TOLERANCE = 1e-3  # results whose means lie within this many sds (log sds within this much) are one optimum
MIXTURE_REACH = 12.0  # a scale mixture's E_q log p is integrated over q's mean +- this many sds
MIXTURE_PANELS = 8  # Gauss-Legendre panels per piece between breaks
LEGENDRE_POINTS = 16  # nodes per Gauss-Legendre panel
_LEGENDRE_NODES, _LEGENDRE_WEIGHTS = np.polynomial.legendre.leggauss(LEGENDRE_POINTS)
HERMITE_POINTS = 96  # Gauss-Hermite nodes for E_q log p of smooth priors
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(HERMITE_POINTS)
NODES = torch.as_tensor(_NODES, dtype=torch.float64)  # standard-normal quadrature nodes
WEIGHTS = torch.as_tensor(_WEIGHTS / math.sqrt(2.0 * math.pi), dtype=torch.float64)  # they sum to 1


def expected_log_prior(prior: ParameterPrior, mean: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    """E_{N(mean, sd^2)} log p(theta_j): closed form for Gaussian and Laplace, composite Gauss-Legendre for a scale
    mixture, Gauss-Hermite otherwise."""
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
    if prior.kind == "scale_mixture":
        return _expected_log_mixture(prior, mean, sd)
    values = mean + sd * NODES
    return torch.sum(WEIGHTS * prior.distribution().log_prob(values))


def _expected_log_mixture(prior: ParameterPrior, mean: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    """E_{N(mean, sd^2)} log p(theta_j) for a scale mixture: a component narrower than q falls between Gauss-Hermite
    nodes, so composite Gauss-Legendre over q's mean +- MIXTURE_REACH sds, broken at each component's location +-
    MIXTURE_REACH sds (MIXTURE_PANELS panels of LEGENDRE_POINTS nodes per piece). The nodes are fixed for this call;
    the gradient flows through q's density at them."""
    centre, spread = float(mean.detach()), float(sd.detach())
    low, high = centre - MIXTURE_REACH * spread, centre + MIXTURE_REACH * spread
    breaks = {low, high}
    for scale in (prior.scale, prior.second_scale):
        for edge in (prior.location - MIXTURE_REACH * scale, prior.location + MIXTURE_REACH * scale):
            if low < edge < high:
                breaks.add(edge)
    edges = np.concatenate(
        [
            np.linspace(a, b, MIXTURE_PANELS + 1)[:-1]
            for a, b in zip(sorted(breaks)[:-1], sorted(breaks)[1:], strict=True)
        ]
        + [np.array([high])]
    )
    half = 0.5 * np.diff(edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    nodes = torch.as_tensor((centres[:, None] + half[:, None] * _LEGENDRE_NODES).ravel(), dtype=torch.float64)
    weights = torch.as_tensor((half[:, None] * _LEGENDRE_WEIGHTS).ravel(), dtype=torch.float64)
    density = torch.exp(-0.5 * ((nodes - mean) / sd) ** 2) / (sd * math.sqrt(2.0 * math.pi))
    return torch.sum(weights * density * prior.log_density(nodes))


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
    optima: tuple[tuple[Gaussian, float], ...] = ()  # every distinct local optimum found, (q, ELBO), best first

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
    """ELBO of q = N(mean, diag(sd^2)) [x N(log s | log_noise[0], log_noise[1]^2)] (docs/MATH.md, ELBO), differentiable.

    E_q ||y - Phi theta||^2 is taken from the centred statistics (docs/MATH.md, Centring): the raw sums y^T y, Phi^T
    y and
    Phi^T Phi cancel every digit of it when x sits far from 0 (14 nats off at x near 1e5 with n = 1e4).
    """
    centred, n = stats.centred, stats.n
    scatter = torch.as_tensor(centred.phi_scatter)
    phi_mean = torch.as_tensor(centred.phi_mean)
    # ||y - Phi m||^2 = ||(y - ybar) - (Phi - 1 c^T) m||^2 + n (ybar - c^T m)^2 and diag(Phi^T Phi) = diag + n c^2.
    centred_rss = centred.y_scatter - 2.0 * mean @ torch.as_tensor(centred.phi_y_scatter) + mean @ scatter @ mean
    height_rss = n * (centred.y_mean - phi_mean @ mean) ** 2
    expected_rss = centred_rss + height_rss + torch.sum((torch.diagonal(scatter) + n * phi_mean**2) * sd**2)
    if log_noise is None:
        s2 = model.noise_sd**2
        log_lik = -0.5 * n * (LOG_2PI + math.log(s2)) - expected_rss / (2.0 * s2)
        noise_term = torch.zeros((), dtype=torch.float64)
    else:
        log_mean, log_sd = log_noise[0], log_noise[1]
        inverse_variance = torch.exp(-2.0 * log_mean + 2.0 * log_sd**2)  # E_q[s^-2]
        log_lik = -0.5 * n * LOG_2PI - n * log_mean - 0.5 * inverse_variance * expected_rss
        entropy = torch.log(log_sd) + 0.5 * (LOG_2PI + 1.0)
        noise_term = entropy + expected_log_noise_prior(model.noise_prior, log_mean, log_sd)
    entropy_theta = torch.sum(torch.log(sd) + 0.5 * (LOG_2PI + 1.0))
    parts = Prior.of(model.prior).parameter_priors
    log_prior = sum(expected_log_prior(part, mean[j], sd[j]) for j, part in enumerate(parts))
    return log_lik + entropy_theta + log_prior + noise_term


def factorised_start(window: Gaussian) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sds of the KL(q||p)-optimal factorised Gaussian of N(m, C): m and 1 / sqrt(diag(C^-1)) (PRML 10.12)."""
    return np.array(window.mean, dtype=np.float64), 1.0 / np.sqrt(np.diag(np.linalg.inv(window.cov)))


def mean_field_optimum(
    dataset: Dataset, model: Model, *, learn_noise: bool = False, starts: Sequence[Gaussian] = ()
) -> MeanFieldOptimum:
    """Maximise the mean-field ELBO for `model`'s prior (and s's prior when learn_noise) by L-BFGS (docs/MATH.md,
    Mean-field optimum under other priors).

    The ELBO of a multimodal posterior has several local optima, so L-BFGS starts from the factorised optimum of each
    Gaussian window: the conjugate posterior under the moment-matched prior, under each mixture component pairing of
    the prior, the likelihood alone, and each of `starts` (e.g. the grid reference's windows). The best ELBO is
    returned; `optima` lists the distinct local optima found, best first.
    """
    stats = SufficientStats.of(dataset)
    windows = [
        exact_posterior(dataset, model).posterior,
        *prior_windows(dataset, model),
        likelihood_alone(dataset, model),
    ]
    chosen: list[tuple[np.ndarray, np.ndarray]] = []
    for window in [*windows, *starts]:
        mean, sd = factorised_start(window)
        if all(np.all(np.isfinite(v)) for v in (mean, sd)) and not any(
            _same_place(mean, sd, other_mean, other_sd, START_TOLERANCE) for other_mean, other_sd in chosen
        ):
            chosen.append((mean, sd))
    found = sorted(
        (_maximise(stats, model, mean, sd, learn_noise) for mean, sd in chosen), key=lambda optimum: -optimum.elbo
    )
    found = [optimum for optimum in found if math.isfinite(optimum.elbo)]
    distinct: list[MeanFieldOptimum] = []
    for optimum in found:
        if not any(_same_optimum(optimum, other) for other in distinct):
            distinct.append(optimum)
    if not distinct:
        raise ArithmeticError("the ELBO is not finite at any start")
    best = distinct[0]
    return MeanFieldOptimum(
        best.q, best.log_noise_mean, best.log_noise_sd, best.elbo, tuple((o.q, o.elbo) for o in distinct)
    )


def _same_place(
    mean: np.ndarray, sd: np.ndarray, other_mean: np.ndarray, other_sd: np.ndarray, tolerance: float
) -> bool:
    """True when two factorised Gaussians' means lie within `tolerance` sds and their log sds within `tolerance`."""
    scale = np.minimum(sd, other_sd)
    return bool(
        np.all(np.abs(mean - other_mean) <= tolerance * scale) and np.all(np.abs(np.log(sd / other_sd)) <= tolerance)
    )


def _same_optimum(a: MeanFieldOptimum, b: MeanFieldOptimum) -> bool:
    """True when two L-BFGS results are the same local optimum (means, sds and q(log s) within OPTIMUM_TOLERANCE)."""
    noise_a = np.array([a.log_noise_mean, a.log_noise_sd])
    noise_b = np.array([b.log_noise_mean, b.log_noise_sd])
    return _same_place(a.q.mean, a.q.sd, b.q.mean, b.q.sd, OPTIMUM_TOLERANCE) and bool(
        np.all(np.abs(noise_a - noise_b) <= OPTIMUM_TOLERANCE * np.maximum(1.0, np.abs(noise_b)))
    )


def _maximise(
    stats: SufficientStats, model: Model, start_mean: np.ndarray, start_sd: np.ndarray, learn_noise: bool
) -> MeanFieldOptimum:
    """L-BFGS on the negative ELBO from q = N(start_mean, diag(start_sd^2)) [and q(log s) around model.noise_sd]."""
    mean = torch.tensor(start_mean, dtype=torch.float64, requires_grad=True)
    log_sd = torch.tensor(np.log(start_sd), dtype=torch.float64, requires_grad=True)
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
            after = float(negative_elbo())
            if abs(before - after) < 1e-12 or not math.isfinite(after):  # settled, or diverged: no step mends it
                break
    with torch.no_grad():
        q = Gaussian.diagonal(mean.numpy().copy(), torch.exp(log_sd).numpy().copy())
        log_noise_mean = float(noise[0]) if learn_noise else math.log(model.noise_sd)
        log_noise_sd = float(torch.exp(noise[1])) if learn_noise else 0.0
        elbo = -float(negative_elbo())
        return MeanFieldOptimum(q, log_noise_mean, log_noise_sd, elbo if math.isfinite(elbo) else -math.inf)
