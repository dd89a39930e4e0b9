"""Pyro SVI on the same model: AutoNormal, AutoMultivariateNormal, or the Pyro tutorial's hand-written softplus guide.

Priors of any family (Normal, Laplace, StudentT, a two-Normal MixtureSameFamily) and, with `learn_noise`, a latent
noise sd under Model.noise_prior; `posterior()` stays the Gaussian over (slope, intercept), `noise_posterior()` gives
q's mean and sd of s. Trace_ELBO always estimates the KL by Monte Carlo, so FitConfig.kl is not used here.
With centre_x the model runs on the standardised data with z0 ~ p_slope carried over and z1 | z0 ~ p_intercept carried
over (docs/MATH.md, Centred parameterisation); `posterior()` maps q back to (slope, intercept).

Pyro keeps process-wide state (a handler stack, the global torch RNG, by default a global param store), so:
params live in the guide modules (`module_local_params`), each fit keeps its own torch RNG state and swaps it in
for its step, and every Pyro call holds PYRO_LOCK, so fits in different threads never interleave inside Pyro.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import cast

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.infer import Trace_ELBO
from pyro.infer.autoguide import AutoMultivariateNormal, AutoNormal
from pyro.infer.autoguide.initialization import init_to_feasible
from torch.distributions import constraints

from bayesdemo.core.config import FitConfig
from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import Gaussian
from bayesdemo.core.priors import Model, NoiseSdPrior, Prior
from bayesdemo.methods.centred import StandardisedProblem
from bayesdemo.methods.optim import DataTensors, Optimiser, sufficient_statistics
from bayesdemo.methods.pyro_context import PYRO_LOCK, OwnTorchRNG

LOG_2PI = math.log(2.0 * math.pi)
MVN_INIT_SCALE = 0.1  # initial sd of the full-covariance guide (Pyro default)
pyro.settings.set(module_local_params=True)


class ScaleMixtureNormal(dist.MixtureSameFamily):
    """Blundell's pi N(c, sd1^2) + (1 - pi) N(c, sd2^2) with support declared real, so autoguides can place it."""

    support = constraints.real


# Pyro's distributions for ParameterPrior.distribution(); the scale mixture declares support real for autoguides.
PYRO_DISTRIBUTIONS = SimpleNamespace(
    Normal=dist.Normal,
    Laplace=dist.Laplace,
    StudentT=dist.StudentT,
    Categorical=dist.Categorical,
    MixtureSameFamily=ScaleMixtureNormal,
)


def pyro_noise_prior(prior: NoiseSdPrior) -> dist.TorchDistribution:
    """The prior on the noise sd s as a Pyro distribution over s (inverse gamma on s^2 transformed to s)."""
    if prior.kind == "half_normal":
        return dist.HalfNormal(torch.tensor(prior.scale, dtype=torch.float64))
    if prior.kind == "log_normal":
        return dist.LogNormal(
            torch.tensor(prior.log_median, dtype=torch.float64), torch.tensor(prior.scale, dtype=torch.float64)
        )
    inverse_gamma = dist.InverseGamma(
        torch.tensor(prior.shape, dtype=torch.float64), torch.tensor(prior.rate, dtype=torch.float64)
    )
    # s = sqrt(s^2): the power transform with exponent 1/2 carries the Jacobian.
    return dist.TransformedDistribution(
        inverse_gamma, [dist.transforms.PowerTransform(torch.tensor(0.5, dtype=torch.float64))]
    )


class TutorialGuide:
    """Seed 002's guide: Normal(loc, softplus(raw_scale)) per parameter, locs ~ N(0, 1), raw scales ~ -3.

    With `initial_noise_sd` it also has q(s) = LogNormal(noise_loc, softplus(noise_raw_scale)) for a learned s.
    """

    def __init__(self, initial_noise_sd: float | None = None) -> None:
        self.locs = torch.randn(2, dtype=torch.float64).requires_grad_(True)
        self.raw_scales = (-3.0 + 0.05 * torch.randn(2, dtype=torch.float64)).requires_grad_(True)
        self.learn_noise = initial_noise_sd is not None
        if initial_noise_sd is not None:
            self.noise_loc = torch.tensor(math.log(initial_noise_sd), dtype=torch.float64, requires_grad=True)
            self.noise_raw_scale = torch.tensor(-3.0, dtype=torch.float64, requires_grad=True)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, subsample: torch.Tensor | None = None) -> None:
        """Sample slope and intercept (and s) from the guide (the data are unused, as in the tutorial)."""
        scales = F.softplus(self.raw_scales)
        pyro.sample("slope", dist.Normal(self.locs[0], scales[0]))
        pyro.sample("intercept", dist.Normal(self.locs[1], scales[1]))
        if self.learn_noise:
            pyro.sample("noise_sd", dist.LogNormal(self.noise_loc, F.softplus(self.noise_raw_scale)))

    def parameters(self) -> list[torch.Tensor]:
        """The trainable tensors."""
        return [self.locs, self.raw_scales] + ([self.noise_loc, self.noise_raw_scale] if self.learn_noise else [])

    def log_noise(self) -> tuple[float, float]:
        """Mean and sd of q(log s)."""
        with torch.no_grad():
            return float(self.noise_loc), float(F.softplus(self.noise_raw_scale))

    def gaussian(self) -> Gaussian:
        """The factorised q this guide represents."""
        with torch.no_grad():
            return Gaussian.diagonal(self.locs.numpy().copy(), F.softplus(self.raw_scales).numpy().copy())


class PyroSVI:
    """Trace_ELBO SVI with a torch optimiser over the guide's parameters; minibatches through `pyro.plate`.

    With the noise sd known the step uses `direct_loss`, Trace_ELBO's estimate written out (tested equal), which is
    also where antithetic draws live; a learned noise sd steps on Pyro's Trace_ELBO itself.
    """

    def __init__(self, dataset: Dataset, model: Model, config: FitConfig):
        self.config = config
        # Minibatches as Bayes by Backprop's (one permutation per pass, the fit's own generator), handed to the model's
        # and the guide's plate as `subsample`: Pyro's own subsampling draws randperm(n) every step, O(n).
        self.problem = StandardisedProblem.of(dataset, model) if config.centre_x else None
        trained_on = self.problem.dataset if self.problem else dataset
        self.data = DataTensors(trained_on, config.batch_size, torch.Generator().manual_seed(config.seed))
        self.prior_mean = torch.as_tensor(model.prior.mean, dtype=torch.float64)
        self.prior_sd = torch.as_tensor(model.prior.sd, dtype=torch.float64)
        noise_sd = self.problem.noise_sd if self.problem else float(model.noise_sd)
        self.noise_sd = torch.tensor(noise_sd, dtype=torch.float64)
        # Built from Pyro's classes (PYRO_DISTRIBUTIONS): Pyro distributions, though distribution() is typed by torch's.
        self.slope_prior, self.intercept_prior = (
            cast(dist.TorchDistribution, part.distribution(PYRO_DISTRIBUTIONS))
            for part in Prior.of(model.prior).parameter_priors
        )
        if self.problem is not None:
            # slope = M00 z0: z0's prior is the slope's, scaled by 1 / M00 (the transform carries the Jacobian).
            matrix = self.problem.matrix
            self.slope_prior = dist.TransformedDistribution(
                self.slope_prior, [dist.transforms.AffineTransform(0.0, 1.0 / matrix[0, 0])]
            )
        self.noise_prior = pyro_noise_prior(model.noise_prior)
        self.elbo = Trace_ELBO(
            num_particles=config.samples_in_force, vectorize_particles=config.samples_in_force > 1, max_plate_nesting=1
        )
        self.rng_state = torch.Generator().manual_seed(config.seed).get_state()
        with self._pyro_context():
            init_loc_fn = self._init_noise_at_model_value if config.learn_noise else init_to_feasible
            # One class per config.guide; the methods below tell them apart by class.
            self.guide: AutoNormal | AutoMultivariateNormal | TutorialGuide
            if config.guide == "normal":
                self.guide = AutoNormal(self.model, init_loc_fn=init_loc_fn, create_plates=self.data_plate)
            elif config.guide == "mvn":
                # AutoContinuous takes no create_plates; its prototype saw the full data, so its plate never draws.
                self.guide = AutoMultivariateNormal(self.model, init_loc_fn=init_loc_fn, init_scale=MVN_INIT_SCALE)
            else:
                self.guide = TutorialGuide(float(model.noise_sd) if config.learn_noise else None)
            self.guide(self.data.x, self.data.y, None)  # autoguides create their parameters on first call
        self.optimizer = Optimiser(config, list(self.guide.parameters()))
        # With the noise sd known every site has real support: Trace_ELBO's estimate can be written out (direct_loss).
        # Antithetic draws (config.antithetic_in_force) exist only there.
        self.uses_direct_elbo = config.svi_elbo_in_force == "direct"
        self.design = torch.stack([self.data.x, torch.ones_like(self.data.x)], dim=1)  # Phi (n, 2), rows (x_i, 1)
        self.full_statistics = sufficient_statistics(self.design, self.data.y)

    def data_plate(self, x: torch.Tensor, y: torch.Tensor, subsample: torch.Tensor | None) -> pyro.plate:
        """The plate over data points, on the minibatch `subsample` (None: all of them), scaled by n / batch."""
        return pyro.plate("data", x.shape[0], subsample=subsample)

    def model(self, x: torch.Tensor, y: torch.Tensor, subsample: torch.Tensor | None) -> None:
        """slope, intercept ~ their priors independently; [s ~ p(s)]; y_i ~ N(slope x_i + intercept, s^2)
        (docs/MATH.md)."""
        slope = pyro.sample("slope", self.slope_prior)
        intercept = pyro.sample("intercept", self.intercept_prior_given(slope))
        noise_sd = pyro.sample("noise_sd", self.noise_prior) if self.config.learn_noise else self.noise_sd
        with self.data_plate(x, y, subsample) as index:
            pyro.sample("obs", dist.Normal(slope * x[index] + intercept, noise_sd), obs=y[index])

    def intercept_prior_given(self, slope: torch.Tensor) -> dist.TorchDistribution:
        """The intercept site's prior: the intercept's own, or for a centred fit z1 | z0 with
        intercept = M10 z0 + M11 z1 + c1, i.e. p_intercept shifted and scaled (docs/MATH.md, Centred
        parameterisation)."""
        if self.problem is None:
            return self.intercept_prior
        matrix, offset = self.problem.matrix, self.problem.offset
        shift = -(matrix[1, 0] * slope + offset[1]) / matrix[1, 1]
        return dist.TransformedDistribution(
            self.intercept_prior, [dist.transforms.AffineTransform(shift, 1.0 / matrix[1, 1])]
        )

    def _init_noise_at_model_value(self, site: dict) -> torch.Tensor:
        """Start s at the model's noise sd (as Bayes by Backprop does); other sites as init_to_feasible."""
        if site["name"] == "noise_sd":
            return self.noise_sd.clone()
        return init_to_feasible(site)

    def _pyro_context(self) -> OwnTorchRNG:
        """Lock Pyro and swap this fit's RNG state in for the duration of a Pyro call."""
        return OwnTorchRNG(self)

    def _subsample(self) -> torch.Tensor | None:
        """This step's minibatch indices, or None for the full data."""
        return None if self.data.full_batch else self.data.batch_index()

    def trace_elbo_loss(self, subsample: torch.Tensor | None) -> torch.Tensor:
        """Pyro's Trace_ELBO differentiable loss (negative ELBO estimate, full-data scale) on `subsample`."""
        return self.elbo.differentiable_loss(self.model, self.guide, self.data.x, self.data.y, subsample)

    def _antithetic_eps(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Standard normal draws of `shape` (S, ...) in mirrored pairs: the first half eps, the second -eps."""
        half = torch.randn((shape[0] // 2, *shape[1:]), dtype=torch.float64)
        return torch.cat([half, -half])

    def _guide_draws(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(slope, intercept, summed log q) drawn as the guide draws them under Trace_ELBO's particle plate.

        Without antithetic draws these are the guide's own rsample calls, in its order (equal to Trace_ELBO's);
        with them, theta = loc + scale eps on mirrored eps, each half still distributed as q.
        """
        antithetic = self.config.antithetic_in_force
        if isinstance(self.guide, AutoMultivariateNormal):
            posterior = self.guide.get_posterior()
            if antithetic:
                eps = self._antithetic_eps((*shape, 2))
                latent = posterior.loc + torch.einsum("...j,ij->...i", eps, posterior.scale_tril)
            else:
                latent = posterior.rsample(shape)  # (S, 1, 2), or (2,) for one particle
            return latent[..., 0], latent[..., 1], posterior.log_prob(latent).sum()
        if isinstance(self.guide, AutoNormal):
            locs, scales = self.guide.locs, self.guide.scales
            slope_q = dist.Normal(locs.slope, scales.slope)
            intercept_q = dist.Normal(locs.intercept, scales.intercept)
        else:
            scales = F.softplus(self.guide.raw_scales)
            slope_q = dist.Normal(self.guide.locs[0], scales[0])
            intercept_q = dist.Normal(self.guide.locs[1], scales[1])
        if antithetic:
            eps = self._antithetic_eps((*shape, 2))
            slope = slope_q.loc + eps[..., 0] * slope_q.scale
            intercept = intercept_q.loc + eps[..., 1] * intercept_q.scale
        else:
            slope = slope_q.rsample(shape)
            intercept = intercept_q.rsample(shape)
        return slope, intercept, slope_q.log_prob(slope).sum() + intercept_q.log_prob(intercept).sum()

    def _statistics(self, subsample: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """Sufficient statistics (Phi^T Phi, Phi^T y, y^T y) and size of the batch; the full data's computed once."""
        if subsample is None:
            return (*self.full_statistics, self.data.n)
        return (*sufficient_statistics(self.design[subsample], self.data.y[subsample]), subsample.shape[0])

    def direct_loss(self, subsample: torch.Tensor | None) -> torch.Tensor:
        """Trace_ELBO's estimate written out without poutine: the same draws in the same order, the same terms.

        -1/S sum_particles [log p(theta) + (n / B) sum_batch log N(y_i | phi_i^T theta, s^2) - log q(theta)]
        (docs/MATH.md, ELBO); every site has real support, so the autoguides' Delta sites add 0. The batch sum is
        -(y^T y - 2 theta^T Phi^T y + theta^T Phi^T Phi theta) / (2 s^2) - B log(s sqrt(2 pi)): O(S) per step
        whatever the batch size. Tested equal to Trace_ELBO (to rounding) without antithetic draws.
        """
        samples = self.config.samples_in_force
        slope, intercept, log_q = self._guide_draws((samples, 1) if samples > 1 else ())
        gram, phi_y, y_y, batch_size = self._statistics(subsample)
        theta = torch.stack([slope, intercept], dim=-1)
        quadratic = y_y - 2.0 * (theta @ phi_y) + ((theta @ gram) * theta).sum(dim=-1)
        variance = self.noise_sd**2
        log_likelihood = -0.5 * quadratic.sum() / variance - theta[..., 0].numel() * batch_size * (
            torch.log(self.noise_sd) + 0.5 * LOG_2PI
        )
        log_likelihood = log_likelihood * (self.data.n / batch_size)
        if self.problem is None:
            log_prior = self.slope_prior.log_prob(slope).sum() + self.intercept_prior.log_prob(intercept).sum()
        else:  # log p_z(z) = log p_theta(M z + c) + log |det M|, the model's two sites in one (docs/MATH.md)
            log_prior = self.problem.log_prior(theta).sum()
        return -(log_prior + log_likelihood - log_q) / samples

    def step(self) -> float:
        """One optimiser step on the Trace_ELBO estimate of the negative ELBO (full-data scale)."""
        with self._pyro_context():
            subsample = self._subsample()
            loss = self.direct_loss(subsample) if self.uses_direct_elbo else self.trace_elbo_loss(subsample)
            value = self.optimizer.minimise(loss)
        # A centred fit's loss on the standardised data as the negative ELBO of the original data (docs/MATH.md).
        return value + self.problem.likelihood_offset(self.data.n) if self.problem else value

    def posterior(self) -> Gaussian:
        """The guide's current q over (slope, intercept), its parameters averaged over steps when averaging."""
        q = self._trained_posterior()
        return self.problem.to_theta(q) if self.problem else q

    def _trained_posterior(self) -> Gaussian:
        """The guide's q over the coordinates it trains in (z for a centred fit)."""
        with PYRO_LOCK, torch.no_grad(), self.optimizer.averaged():
            if isinstance(self.guide, AutoNormal):
                mean = [float(self.guide.locs.slope), float(self.guide.locs.intercept)]
                sd = [float(self.guide.scales.slope), float(self.guide.scales.intercept)]
                return Gaussian.diagonal(mean, sd)
            if isinstance(self.guide, AutoMultivariateNormal):
                # Latents in model order: slope, intercept (then log s when learned): theta is the first block.
                posterior = self.guide.get_posterior()
                return Gaussian(posterior.loc[:2].numpy().copy(), posterior.covariance_matrix[:2, :2].numpy().copy())
            return self.guide.gaussian()

    def noise_posterior(self) -> tuple[float, float]:
        """Mean and sd of s under q (log-normal in s: exp(m + v/2), mean sqrt(exp(v) - 1)); (noise_sd, 0) if known."""
        if not self.config.learn_noise:
            return float(self.noise_sd), 0.0
        with PYRO_LOCK, torch.no_grad(), self.optimizer.averaged():
            if isinstance(self.guide, AutoNormal):
                log_mean, log_sd = float(self.guide.locs.noise_sd), float(self.guide.scales.noise_sd)
            elif isinstance(self.guide, AutoMultivariateNormal):
                posterior = self.guide.get_posterior()
                log_mean, log_sd = float(posterior.loc[2]), math.sqrt(float(posterior.covariance_matrix[2, 2]))
            else:
                log_mean, log_sd = self.guide.log_noise()
        mean = math.exp(log_mean + 0.5 * log_sd**2)
        return mean, mean * math.sqrt(math.expm1(log_sd**2))
