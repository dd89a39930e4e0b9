"""Basis-function regression: polynomial and radial-basis feature maps, their exact posterior and evidence curve.

The design row is phi(x) = (f_1(x), ..., f_k(x), 1) (docs/MATH.md, Model); every weight f_j gets the slope's prior
N(slope_mean, slope_sd^2) and the constant gets the intercept's, so degree 1 is exactly the line model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import DesignPosterior, Gaussian, gaussian_posterior_from_design
from bayesdemo.core.priors import GaussianPrior, Model, Prior
from bayesdemo.core.validation import ConfigError, check_choice, check_int, check_range

BASIS_FAMILIES = ("polynomial", "rbf")  # powers x^j, or Gaussian bumps exp(-(x - c_j)^2 / (2 width^2))
BASIS_LABELS = {"polynomial": "polynomial (x, x^2, ..., x^d)", "rbf": "radial basis (Gaussian bumps)"}
MAX_DEGREE = 15  # highest polynomial degree: raw powers beyond it are numerically singular on most ranges
MAX_CENTRES = 100  # most RBF centres
DEFAULT_MODEL = Model()  # prior N(0, 10^2) on every weight, noise sd 0.1


@dataclass(frozen=True)
class BasisConfig:
    """Which feature map: the family, its size (degree d or number of centres k) and the RBF width."""

    family: str = "polynomial"  # one of BASIS_FAMILIES
    size: int = 3  # polynomial degree d (0 = intercept only) or number of RBF centres k (>= 1)
    width: float = 0.0  # RBF width in x units; 0 means the spacing between neighbouring centres (ignored for powers)

    def __post_init__(self) -> None:
        check_choice("family", self.family, BASIS_FAMILIES)
        low, high = (0, MAX_DEGREE) if self.family == "polynomial" else (1, MAX_CENTRES)
        object.__setattr__(self, "size", check_int("size", self.size, low, high))
        check_range("width", self.width, 0.0, 1e6)


@dataclass(frozen=True)
class FeatureMap:
    """phi(x) = (f_1(x), ..., f_k(x), 1) for a fixed family, size, centres and width (docs/MATH.md, Model)."""

    config: BasisConfig
    centres: np.ndarray  # RBF centres c_j, shape (k,); empty for polynomials
    width: float  # RBF width in force (x units); 0.0 for polynomials

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Design matrix Phi, shape (n, p) with p = size + 1; the last column is the constant 1."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        if self.config.family == "polynomial":
            features = [x**power for power in range(1, self.config.size + 1)]
        else:
            features = list(np.exp(-0.5 * ((x[None, :] - self.centres[:, None]) / self.width) ** 2))
        return np.column_stack([*features, np.ones_like(x)])

    @property
    def size(self) -> int:
        """Number of weights p, the constant included."""
        return self.config.size + 1

    @property
    def names(self) -> tuple[str, ...]:
        """A label per weight, e.g. ("x", "x^2", "intercept") or ("rbf@0.25", ..., "intercept")."""
        if self.config.family == "polynomial":
            labels = ["x" if power == 1 else f"x^{power}" for power in range(1, self.config.size + 1)]
        else:
            labels = [f"rbf@{centre:.3g}" for centre in self.centres]
        return (*labels, "intercept")


def feature_map(config: BasisConfig, x_range: tuple[float, float]) -> FeatureMap:
    """The feature map of `config`; RBF centres spread evenly over x_range = (low, high), ends included."""
    low = check_range("x_min", x_range[0])
    high = check_range("x_max", x_range[1])
    if not high > low:
        raise ConfigError("x_max", f"must be > x_min ({low!r}), got {high!r}")
    if config.family == "polynomial":
        return FeatureMap(config, np.empty(0), 0.0)
    k = config.size
    centres = np.linspace(low, high, k) if k > 1 else np.array([(low + high) / 2.0])
    spacing = (high - low) / (k - 1) if k > 1 else high - low
    centres.setflags(write=False)
    return FeatureMap(config, centres, float(config.width or spacing))


def weight_prior(features: FeatureMap, prior: GaussianPrior | Prior) -> tuple[np.ndarray, np.ndarray]:
    """Prior means and sds (p,): the slope's prior on every f_j weight, the intercept's on the constant."""
    if not isinstance(prior, GaussianPrior):
        raise ConfigError("prior", f"must be a GaussianPrior for the closed-form basis fit, got {prior!r}")
    k = features.size - 1
    mean = np.array([prior.slope_mean] * k + [prior.intercept_mean], dtype=np.float64)
    sd = np.array([prior.slope_sd] * k + [prior.intercept_sd], dtype=np.float64)
    return mean, sd


@dataclass(frozen=True)
class BasisPosterior:
    """The exact posterior of the basis weights, with its feature map, predictive and log evidence."""

    features: FeatureMap
    fit: DesignPosterior  # N(m_N, S_N), precision and log p(y) (PRML 3.49-3.51, 3.86)

    @property
    def posterior(self) -> Gaussian:
        """N(m_N, S_N) over the p weights (constant last)."""
        return self.fit.posterior

    @property
    def mean(self) -> np.ndarray:
        """Posterior mean m_N, shape (p,)."""
        return self.fit.posterior.mean

    @property
    def sd(self) -> np.ndarray:
        """Posterior marginal sds, shape (p,)."""
        return self.fit.posterior.sd

    @property
    def log_evidence(self) -> float:
        """log p(y | family, size) (PRML 3.86)."""
        return self.fit.log_evidence

    def predictive(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """At x (n*,): predictive mean, sd of the fitted function, sd of a new observation (PRML 3.57-3.59)."""
        return self.fit.predictive(self.features(x))


def fit_basis(dataset: Dataset, config: BasisConfig, model: Model = DEFAULT_MODEL) -> BasisPosterior:
    """Exact posterior of the weights of `config`'s features on `dataset`, RBF centres over its x range."""
    features = feature_map(config, (float(dataset.x.min()), float(dataset.x.max())))
    prior_mean, prior_sd = weight_prior(features, model.prior)
    try:
        fit = gaussian_posterior_from_design(features(dataset.x), dataset.y, prior_mean, prior_sd, model.noise_sd)
    except np.linalg.LinAlgError:
        raise ConfigError(
            "size", f"{config.size} makes the {config.family} design numerically singular on this x range: lower it"
        ) from None
    return BasisPosterior(features, fit)


@dataclass(frozen=True)
class EvidenceCurve:
    """log p(y) for each model size of one family: the "evidence vs model complexity" chart (PRML 3.4-3.5)."""

    family: str  # one of BASIS_FAMILIES
    sizes: np.ndarray  # degrees or numbers of centres, shape (m,)
    log_evidence: np.ndarray  # log p(y | size), shape (m,)

    @property
    def best_size(self) -> int:
        """The size with the largest evidence."""
        return int(self.sizes[int(np.argmax(self.log_evidence))])


def log_evidence_by_complexity(
    dataset: Dataset, family: str, sizes: Sequence[int], model: Model = DEFAULT_MODEL, width: float = 0.0
) -> EvidenceCurve:
    """log p(y) of the basis model at each size in `sizes` (PRML 3.86), same prior and noise sd throughout."""
    if len(sizes) == 0:
        raise ConfigError("sizes", "must name at least one model size, got none")
    values = [fit_basis(dataset, BasisConfig(family, size, width), model).log_evidence for size in sizes]
    return EvidenceCurve(family, np.array(sizes, dtype=np.int64), np.array(values, dtype=np.float64))


def simulate_polynomial(
    coefficients: Sequence[float],
    n: int = 50,
    noise_sd: float = 0.1,
    x_min: float = -1.0,
    x_max: float = 1.0,
    seed: int = 0,
) -> Dataset:
    """y = sum_j c_j x^j + N(0, noise_sd^2), coefficients c_0, c_1, ... in rising powers, x ~ U(x_min, x_max)."""
    n = check_int("n", n, 2, 1_000_000)
    check_range("noise_sd", noise_sd, 0.0, 1e6, low_open=True)
    if len(coefficients) == 0:
        raise ConfigError("coefficients", "must hold at least the constant c_0, got none")
    for index, value in enumerate(coefficients):
        check_range(f"coefficients[{index}]", value, -1e6, 1e6)
    if not check_range("x_max", x_max, -1e6, 1e6) > check_range("x_min", x_min, -1e6, 1e6):
        raise ConfigError("x_max", f"must be > x_min ({x_min!r}), got {x_max!r}")
    rng = np.random.default_rng(check_int("seed", seed, 0, 2**32 - 1))
    x = rng.uniform(x_min, x_max, size=n)
    y = np.polynomial.polynomial.polyval(x, np.asarray(coefficients, dtype=np.float64))
    return Dataset(x, y + rng.normal(0.0, noise_sd, size=n), source=f"polynomial (seed {seed})")
