"""Closed-form posterior under independent Gaussian or scale-mixture (spike-and-slab) priors (docs/MATH.md, Mixture
posterior).

With theta_j ~ sum_c pi_jc N(location_j, sd_jc^2) independently, the prior is a mixture of Gaussians over the
component pairings (c_slope, c_intercept), each with weight pi_slope,c * pi_intercept,c'. Bayes' rule applied to each
pairing gives the posterior exactly: a mixture of the pairings' conjugate posteriors N(m_k, S_k) (PRML 3.49-3.51),
weighted by prior weight times evidence, w_k proportional to pi_k p(y | k) (PRML 3.86); p(y) = sum_k pi_k p(y | k).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import Gaussian, SufficientStats, gaussian_posterior_from_stats
from bayesdemo.core.priors import GaussianPrior, ParameterPrior, Prior
from bayesdemo.core.validation import ConfigError
from bayesdemo.references.moments import GaussianMoments

MIXTURE_KINDS = ("gaussian", "scale_mixture")  # parameter prior families whose posterior is a Gaussian mixture
AXIS_HALF_WIDTH_SDS = 10.0  # a marginal axis spans every component's mean +- this many of its sds
AXIS_POINTS = 256  # points of a marginal density's axis per component (the axis joins every component's)


def is_scale_mixture(prior: GaussianPrior | Prior) -> bool:
    """True when every parameter's prior is Gaussian or a scale mixture of Gaussians: the closed form applies."""
    return all(part.kind in MIXTURE_KINDS for part in Prior.of(prior).parameter_priors)


def components_of(part: ParameterPrior) -> tuple[tuple[float, float], ...]:
    """(weight, sd) of each Gaussian component of one parameter's prior."""
    if part.kind == "gaussian":
        return ((1.0, part.scale),)
    if part.kind == "scale_mixture":
        return ((part.mixture_weight, part.scale), (1.0 - part.mixture_weight, part.second_scale))
    raise ConfigError(
        "kind", f"must be one of {MIXTURE_KINDS} for the closed-form mixture posterior, got {part.kind!r}"
    )


@dataclass(frozen=True)
class MixturePosterior(GaussianMoments):
    """The posterior sum_k w_k N(m_k, S_k): components (K,), weights (K,), moments (sd, corr and gaussian from
    GaussianMoments), log evidence."""

    components: tuple[Gaussian, ...]  # each pairing's conjugate posterior N(m_k, S_k) over (slope, intercept)
    weights: np.ndarray  # (K,) posterior weights w_k, summing to 1
    log_evidence: float  # log p(y) = log sum_k pi_k p(y | k)

    @functools.cached_property
    def mean(self) -> np.ndarray:
        """Posterior mean sum_k w_k m_k, shape (2,)."""
        return np.sum([w * c.mean for w, c in zip(self.weights, self.components, strict=True)], axis=0)

    @functools.cached_property
    def cov(self) -> np.ndarray:
        """Posterior covariance sum_k w_k (S_k + (m_k - m)(m_k - m)^T), shape (2, 2)."""
        return np.sum(
            [
                w * (c.cov + np.outer(c.mean - self.mean, c.mean - self.mean))
                for w, c in zip(self.weights, self.components, strict=True)
            ],
            axis=0,
        )

    def marginal_density(self, parameter: int, values: np.ndarray) -> np.ndarray:
        """The marginal density of theta[parameter] at `values` (P,): sum_k w_k N(value; m_k, S_k)."""
        values = np.asarray(values, dtype=np.float64)
        density = np.zeros_like(values)
        for weight, component in zip(self.weights, self.components, strict=True):
            sd = component.sd[parameter]
            density += (
                weight * np.exp(-0.5 * ((values - component.mean[parameter]) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
            )
        return density

    def marginal_axis(self, parameter: int) -> np.ndarray:
        """Sorted axis joining each component's (weight >= 1e-12) uniform AXIS_POINTS over its mean +-
        AXIS_HALF_WIDTH_SDS sds: a spike is resolved beside the slab."""
        offsets = np.linspace(-AXIS_HALF_WIDTH_SDS, AXIS_HALF_WIDTH_SDS, AXIS_POINTS)
        pieces = [
            c.mean[parameter] + offsets * c.sd[parameter]
            for w, c in zip(self.weights, self.components, strict=True)
            if w >= 1e-12
        ]
        return np.unique(np.concatenate(pieces))

    @functools.cached_property
    def slope_axis(self) -> np.ndarray:
        """Slope axis of the marginal density (see marginal_axis)."""
        return self.marginal_axis(0)

    @functools.cached_property
    def intercept_axis(self) -> np.ndarray:
        """Intercept axis of the marginal density (see marginal_axis)."""
        return self.marginal_axis(1)

    def marginal_densities(self) -> tuple[np.ndarray, np.ndarray]:
        """Marginal densities of slope and intercept on slope_axis and intercept_axis, each (P,)."""
        return self.marginal_density(0, self.slope_axis), self.marginal_density(1, self.intercept_axis)


def mixture_posterior(dataset: Dataset, prior: GaussianPrior | Prior, noise_sd: float) -> MixturePosterior:
    """Exact posterior under independent Gaussian or scale-mixture priors and known noise sd (docs/MATH.md, Mixture
    posterior): one conjugate posterior per component pairing, weighted by prior weight times evidence."""
    prior = Prior.of(prior)
    for name, part in zip(("slope", "intercept"), prior.parameter_priors, strict=True):
        if part.kind not in MIXTURE_KINDS:
            raise ConfigError(name, f"prior must be Gaussian or a scale mixture for the closed form, got {part.kind!r}")
    stats = SufficientStats.of(dataset)
    location = prior.mean
    components: list[Gaussian] = []
    component_log_weights: list[float] = []
    for slope_weight, slope_sd in components_of(prior.slope):
        for intercept_weight, intercept_sd in components_of(prior.intercept):
            fit = gaussian_posterior_from_stats(stats, location, np.array([slope_sd, intercept_sd]), noise_sd)
            components.append(fit.posterior)
            component_log_weights.append(math.log(slope_weight * intercept_weight) + fit.log_evidence)
    log_weights = np.array(component_log_weights)
    peak = float(np.max(log_weights))
    log_evidence = peak + math.log(float(np.sum(np.exp(log_weights - peak))))
    return MixturePosterior(tuple(components), np.exp(log_weights - log_evidence), log_evidence)
