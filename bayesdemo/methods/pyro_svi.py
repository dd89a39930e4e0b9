"""Pyro SVI on the same model: AutoNormal, AutoMultivariateNormal, or seed 002's hand-written softplus guide.

Pyro keeps process-wide state (a handler stack, the global torch RNG, by default a global param store), so:
params live in the guide modules (`module_local_params`), each fit keeps its own torch RNG state and swaps it in
for its step, and every Pyro call holds PYRO_LOCK, so fits in different threads never interleave inside Pyro.
"""

from __future__ import annotations

import threading

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.infer import Trace_ELBO
from pyro.infer.autoguide import AutoMultivariateNormal, AutoNormal
from pyro.infer.autoguide.initialization import init_to_feasible

from bayesdemo.data import Dataset
from bayesdemo.exact import Gaussian
from bayesdemo.methods.base import DataTensors, FitConfig, Optimiser
from bayesdemo.priors import Model

MVN_INIT_SCALE = 0.1  # initial sd of the full-covariance guide (Pyro default)
PYRO_LOCK = threading.RLock()  # held around every Pyro call in the process
pyro.settings.set(module_local_params=True)


class TutorialGuide:
    """Seed 002's guide: Normal(loc, softplus(raw_scale)) per parameter, locs ~ N(0, 1), raw scales ~ -3."""

    def __init__(self) -> None:
        self.locs = torch.randn(2, dtype=torch.float64).requires_grad_(True)
        self.raw_scales = (-3.0 + 0.05 * torch.randn(2, dtype=torch.float64)).requires_grad_(True)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Sample slope and intercept from the guide (the data are unused, as in the tutorial)."""
        scales = F.softplus(self.raw_scales)
        pyro.sample("slope", dist.Normal(self.locs[0], scales[0]))
        pyro.sample("intercept", dist.Normal(self.locs[1], scales[1]))

    def parameters(self) -> list[torch.Tensor]:
        """The trainable tensors."""
        return [self.locs, self.raw_scales]

    def gaussian(self) -> Gaussian:
        """The factorised q this guide represents."""
        with torch.no_grad():
            return Gaussian.diagonal(self.locs.numpy().copy(), F.softplus(self.raw_scales).numpy().copy())


class PyroSVI:
    """Trace_ELBO SVI with a torch optimiser over the guide's parameters; minibatches through `pyro.plate`."""

    def __init__(self, dataset: Dataset, model: Model, config: FitConfig):
        self.config = config
        self.data = DataTensors(dataset, 0, torch.Generator())
        self.batch_size = config.batch_size or dataset.n
        self.prior_mean = torch.as_tensor(model.prior.mean, dtype=torch.float64)
        self.prior_sd = torch.as_tensor(model.prior.sd, dtype=torch.float64)
        self.noise_sd = torch.tensor(float(model.noise_sd), dtype=torch.float64)
        self.elbo = Trace_ELBO(
            num_particles=config.sample_count, vectorize_particles=config.sample_count > 1, max_plate_nesting=1
        )
        self.rng_state = torch.Generator().manual_seed(config.seed).get_state()
        with self._pyro_context():
            if config.guide == "normal":
                self.guide = AutoNormal(self.model, init_loc_fn=init_to_feasible)
            elif config.guide == "mvn":
                self.guide = AutoMultivariateNormal(self.model, init_loc_fn=init_to_feasible, init_scale=MVN_INIT_SCALE)
            else:
                self.guide = TutorialGuide()
            self.guide(self.data.x, self.data.y)  # autoguides create their parameters on first call
        self.optimizer = Optimiser(config, list(self.guide.parameters()))

    def model(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """slope, intercept ~ N(m0, s0^2) independently; y_i ~ N(slope x_i + intercept, s^2) (MATH.md, Model)."""
        slope = pyro.sample("slope", dist.Normal(self.prior_mean[0], self.prior_sd[0]))
        intercept = pyro.sample("intercept", dist.Normal(self.prior_mean[1], self.prior_sd[1]))
        with pyro.plate("data", x.shape[0], subsample_size=self.batch_size) as index:
            pyro.sample("obs", dist.Normal(slope * x[index] + intercept, self.noise_sd), obs=y[index])

    def _pyro_context(self) -> _PyroContext:
        """Lock Pyro and swap this fit's RNG state in for the duration of a Pyro call."""
        return _PyroContext(self)

    def step(self) -> float:
        """One optimiser step on the Trace_ELBO estimate of the negative ELBO (full-data scale)."""
        with self._pyro_context():
            loss = self.elbo.differentiable_loss(self.model, self.guide, self.data.x, self.data.y)
            return self.optimizer.minimise(loss)

    def posterior(self) -> Gaussian:
        """The guide's current q over (slope, intercept)."""
        with PYRO_LOCK, torch.no_grad():
            if self.config.guide == "normal":
                mean = [float(self.guide.locs.slope), float(self.guide.locs.intercept)]
                sd = [float(self.guide.scales.slope), float(self.guide.scales.intercept)]
                return Gaussian.diagonal(mean, sd)
            if self.config.guide == "mvn":
                posterior = self.guide.get_posterior()
                return Gaussian(posterior.loc.numpy().copy(), posterior.covariance_matrix.numpy().copy())
            return self.guide.gaussian()


class _PyroContext:
    """Holds PYRO_LOCK and this fit's torch RNG state; restores the process's RNG state on exit."""

    def __init__(self, fit: PyroSVI):
        self.fit = fit

    def __enter__(self) -> None:
        PYRO_LOCK.acquire()
        self.saved_state = torch.get_rng_state()
        torch.set_rng_state(self.fit.rng_state)

    def __exit__(self, *exc_info: object) -> None:
        self.fit.rng_state = torch.get_rng_state()
        torch.set_rng_state(self.saved_state)
        PYRO_LOCK.release()
