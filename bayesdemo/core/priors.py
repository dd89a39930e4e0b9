"""The model's priors and noise: theta = (slope, intercept) ~ independent priors, y ~ N(phi^T theta, s^2).

The Gaussian prior (GaussianPrior) is the conjugate default; `Prior` gives each parameter any family of
docs/MATH.md "Non-Gaussian priors" (Laplace, Student-t, Blundell's scale mixture); `NoiseSdPrior` is a prior on s for
docs/MATH.md "Unknown noise sd".
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, overload

import numpy as np

from bayesdemo.core.validation import ConfigError, check_choice, check_range, check_scale

if TYPE_CHECKING:  # torch is imported where a density is evaluated: the problem's layer loads without it
    import torch
    import torch.distributions as td

PARAMETER_NAMES = ("slope", "intercept")  # order of theta everywhere in the engine


@dataclass(frozen=True)
class GaussianPrior:
    """Independent Gaussian prior on slope and intercept (docs/MATH.md, Model: S0 = diag(s0^2))."""

    slope_mean: float = 0.0  # prior mean of the slope
    slope_sd: float = 10.0  # prior sd of the slope (> 0)
    intercept_mean: float = 0.0  # prior mean of the intercept
    intercept_sd: float = 10.0  # prior sd of the intercept (> 0)

    def __post_init__(self) -> None:
        check_range("slope_mean", self.slope_mean, -1e6, 1e6)
        check_scale("slope_sd", self.slope_sd)
        check_range("intercept_mean", self.intercept_mean, -1e6, 1e6)
        check_scale("intercept_sd", self.intercept_sd)

    @property
    def mean(self) -> np.ndarray:
        """Prior mean m0, shape (2,)."""
        return np.array([self.slope_mean, self.intercept_mean], dtype=np.float64)

    @property
    def sd(self) -> np.ndarray:
        """Prior sds s0, shape (2,)."""
        return np.array([self.slope_sd, self.intercept_sd], dtype=np.float64)

    @property
    def is_gaussian(self) -> bool:
        """Always True: the conjugate closed forms apply."""
        return True

    @property
    def parameter_priors(self) -> tuple[ParameterPrior, ParameterPrior]:
        """The (slope, intercept) priors as Gaussian ParameterPriors."""
        return (
            ParameterPrior("gaussian", self.slope_mean, self.slope_sd),
            ParameterPrior("gaussian", self.intercept_mean, self.intercept_sd),
        )

    @overload
    def log_density(self, theta: torch.Tensor) -> torch.Tensor: ...
    @overload
    def log_density(self, theta: np.ndarray) -> np.ndarray: ...
    def log_density(self, theta: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """log p(theta) summed over the last axis (size 2), same array type as `theta` (docs/MATH.md, Model)."""
        return _joint_log_density(self.parameter_priors, theta)


PRIOR_KINDS = ("gaussian", "laplace", "student_t", "scale_mixture")


@dataclass(frozen=True)
class ParameterPrior:
    """One parameter's prior of any family in PRIOR_KINDS (docs/MATH.md, Non-Gaussian priors; Blundell et al. eq. 7)."""

    kind: str = "gaussian"  # one of PRIOR_KINDS
    location: float = 0.0  # centre: the mean (Gaussian, Laplace, mixture) or the location (Student-t)
    scale: float = 10.0  # Gaussian sd, Laplace scale b, Student-t scale, or the mixture's first sd sd1 (> 0)
    df: float = 3.0  # Student-t degrees of freedom (> 0; only kind "student_t")
    mixture_weight: float = 0.5  # pi, weight of the N(location, scale^2) component (only "scale_mixture")
    second_scale: float = 0.1  # sd2 of the mixture's other component (> 0; only "scale_mixture")

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, PRIOR_KINDS)
        check_range("location", self.location, -1e6, 1e6)
        check_scale("scale", self.scale)
        check_range("df", self.df, 0.0, 1e6, low_open=True)
        weight = check_range("mixture_weight", self.mixture_weight, 0.0, 1.0, low_open=True)
        if weight >= 1.0:  # a weight of 0 or 1 is a single Gaussian: choose "gaussian"
            raise ConfigError("mixture_weight", f"must be < 1, got {self.mixture_weight!r}")
        check_scale("second_scale", self.second_scale)

    def distribution(self, distributions: ModuleType | SimpleNamespace | None = None) -> td.Distribution:
        """This prior as a float64 distribution built from `distributions` (torch's by default; Pyro's for Pyro fits).

        `distributions` is any namespace with Normal, Laplace, StudentT, Categorical and MixtureSameFamily.
        """
        import torch
        import torch.distributions as td

        family = td if distributions is None else distributions
        location = torch.tensor(self.location, dtype=torch.float64)
        scale = torch.tensor(self.scale, dtype=torch.float64)
        if self.kind == "gaussian":
            return family.Normal(location, scale)
        if self.kind == "laplace":
            return family.Laplace(location, scale)
        if self.kind == "student_t":
            return family.StudentT(torch.tensor(self.df, dtype=torch.float64), location, scale)
        weights = torch.tensor([self.mixture_weight, 1.0 - self.mixture_weight], dtype=torch.float64)
        scales = torch.tensor([self.scale, self.second_scale], dtype=torch.float64)
        return family.MixtureSameFamily(family.Categorical(probs=weights), family.Normal(location.expand(2), scales))

    @functools.cached_property
    def _cached_distribution(self) -> td.Distribution:
        """distribution(), built once: fits evaluate log_density every step."""
        return self.distribution()

    @overload
    def log_density(self, value: torch.Tensor) -> torch.Tensor: ...
    @overload
    def log_density(self, value: np.ndarray) -> np.ndarray: ...
    def log_density(self, value: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """log p(value) elementwise, same array type as `value`."""
        import torch

        if isinstance(value, torch.Tensor):
            return self._cached_distribution.log_prob(value)
        tensor = torch.as_tensor(np.asarray(value, dtype=np.float64))
        return self._cached_distribution.log_prob(tensor).numpy()

    @property
    def variance(self) -> float:
        """The prior variance: scale^2, 2 b^2, scale^2 df / (df - 2) (inf for df <= 2), or the mixture's."""
        if self.kind == "gaussian":
            return self.scale**2
        if self.kind == "laplace":
            return 2.0 * self.scale**2
        if self.kind == "student_t":
            return self.scale**2 * self.df / (self.df - 2.0) if self.df > 2.0 else math.inf
        return self.mixture_weight * self.scale**2 + (1.0 - self.mixture_weight) * self.second_scale**2

    @property
    def gaussian_windows(self) -> tuple[float, ...]:
        """sds of the Gaussians whose conjugate posteriors bracket this prior's: each mixture component's, else the
        moment-matched approximation's (docs/MATH.md, Non-Gaussian priors)."""
        if self.kind == "scale_mixture":
            return (self.scale, self.second_scale)
        return (self.approximate_sd,)

    @property
    def approximate_sd(self) -> float:
        """sd of the moment-matched Gaussian approximation: the prior sd, or `scale` when the variance is infinite."""
        return math.sqrt(self.variance) if math.isfinite(self.variance) else self.scale


@dataclass(frozen=True)
class Prior:
    """Independent priors of any family on slope and intercept (docs/MATH.md, Non-Gaussian priors)."""

    slope: ParameterPrior = ParameterPrior()  # prior of the slope
    intercept: ParameterPrior = ParameterPrior()  # prior of the intercept

    def __post_init__(self) -> None:
        for name in PARAMETER_NAMES:
            value = getattr(self, name)
            if not isinstance(value, ParameterPrior):
                raise ConfigError(name, f"must be a ParameterPrior, got {value!r}")

    @classmethod
    def of(cls, prior: GaussianPrior | Prior) -> Prior:
        """Any prior as a Prior (a GaussianPrior becomes two Gaussian ParameterPriors)."""
        return prior if isinstance(prior, Prior) else cls(*prior.parameter_priors)

    @property
    def parameter_priors(self) -> tuple[ParameterPrior, ParameterPrior]:
        """The (slope, intercept) priors."""
        return (self.slope, self.intercept)

    @property
    def is_gaussian(self) -> bool:
        """True when both parameters have Gaussian priors (the conjugate closed forms apply)."""
        return all(part.kind == "gaussian" for part in self.parameter_priors)

    @property
    def mean(self) -> np.ndarray:
        """Prior centres (the means where they exist), shape (2,): m0 of the Gaussian approximation."""
        return np.array([part.location for part in self.parameter_priors], dtype=np.float64)

    @property
    def sd(self) -> np.ndarray:
        """sds of the moment-matched Gaussian approximation, shape (2,) (see ParameterPrior.approximate_sd)."""
        return np.array([part.approximate_sd for part in self.parameter_priors], dtype=np.float64)

    @overload
    def log_density(self, theta: torch.Tensor) -> torch.Tensor: ...
    @overload
    def log_density(self, theta: np.ndarray) -> np.ndarray: ...
    def log_density(self, theta: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """log p(theta) summed over the last axis (size 2), same array type as `theta`."""
        return _joint_log_density(self.parameter_priors, theta)


@overload
def _joint_log_density(parts: tuple[ParameterPrior, ParameterPrior], theta: torch.Tensor) -> torch.Tensor: ...
@overload
def _joint_log_density(parts: tuple[ParameterPrior, ParameterPrior], theta: np.ndarray) -> np.ndarray: ...
def _joint_log_density(
    parts: tuple[ParameterPrior, ParameterPrior], theta: np.ndarray | torch.Tensor
) -> np.ndarray | torch.Tensor:
    """Sum of the independent log densities of theta[..., 0] (slope) and theta[..., 1] (intercept)."""
    if theta.shape[-1] != len(parts):
        raise ConfigError("theta", f"must have last axis of size {len(parts)}, got shape {tuple(theta.shape)}")
    return parts[0].log_density(theta[..., 0]) + parts[1].log_density(theta[..., 1])


NOISE_PRIOR_KINDS = ("half_normal", "log_normal", "inverse_gamma")


@dataclass(frozen=True)
class NoiseSdPrior:
    """A prior on the noise sd s (docs/MATH.md, Unknown noise sd); "inverse_gamma" puts IG(shape, rate) on s^2."""

    kind: str = "half_normal"  # one of NOISE_PRIOR_KINDS
    scale: float = 1.0  # half-normal scale of s, or the log-normal's sd of log s (> 0)
    log_median: float = math.log(0.1)  # log-normal: mean of log s (its median is exp(log_median))
    shape: float = 2.0  # inverse-gamma shape a0 of s^2 (> 0)
    rate: float = 0.01  # inverse-gamma rate b0 of s^2 (> 0)

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, NOISE_PRIOR_KINDS)
        check_scale("scale", self.scale)
        check_range("log_median", self.log_median, -50.0, 50.0)
        check_range("shape", self.shape, 0.0, 1e6, low_open=True)
        check_range("rate", self.rate, 0.0, 1e6, low_open=True)

    @overload
    def log_density(self, noise_sd: torch.Tensor) -> torch.Tensor: ...
    @overload
    def log_density(self, noise_sd: np.ndarray) -> np.ndarray: ...
    def log_density(self, noise_sd: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """log p(s) of the density over s (not s^2, not log s), elementwise, same array type as `noise_sd`."""
        import torch
        import torch.distributions as td

        is_tensor = isinstance(noise_sd, torch.Tensor)
        s = noise_sd if isinstance(noise_sd, torch.Tensor) else torch.as_tensor(np.asarray(noise_sd, dtype=np.float64))
        if self.kind == "half_normal":
            result = td.HalfNormal(torch.tensor(self.scale, dtype=torch.float64)).log_prob(s)
        elif self.kind == "log_normal":
            result = td.LogNormal(
                torch.tensor(self.log_median, dtype=torch.float64), torch.tensor(self.scale, dtype=torch.float64)
            ).log_prob(s)
        else:
            # s^2 ~ IG(a0, b0); p(s) = p_IG(s^2) * |d s^2 / d s| = p_IG(s^2) * 2 s.
            inverse_gamma = td.InverseGamma(
                torch.tensor(self.shape, dtype=torch.float64), torch.tensor(self.rate, dtype=torch.float64)
            )
            result = inverse_gamma.log_prob(s**2) + math.log(2.0) + torch.log(s)
        return result if is_tensor else result.numpy()


@dataclass(frozen=True)
class Model:
    """Bayesian linear regression: the prior on theta, the known noise sd, and the prior used when s is learned."""

    prior: GaussianPrior | Prior = GaussianPrior()  # prior on (slope, intercept)
    noise_sd: float = 0.1  # known observation noise sd s of the likelihood (> 0); a learned s starts here
    noise_prior: NoiseSdPrior = NoiseSdPrior()  # prior on s, used only by fits and references that learn s

    def __post_init__(self) -> None:
        if not isinstance(self.prior, GaussianPrior | Prior):
            raise ConfigError("prior", f"must be a GaussianPrior or a Prior, got {self.prior!r}")
        check_scale("noise_sd", self.noise_sd)
        if not isinstance(self.noise_prior, NoiseSdPrior):
            raise ConfigError("noise_prior", f"must be a NoiseSdPrior, got {self.noise_prior!r}")
