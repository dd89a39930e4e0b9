"""Noise injection as the forum question "Bayesian regression using noise injection?" does it.

abs() scales, per-point noise, MSE loss, SGD.
"""

from __future__ import annotations

import torch

from bayesdemo.core.config import FitConfig
from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import Gaussian
from bayesdemo.core.priors import Model
from bayesdemo.methods.centred import StandardisedProblem
from bayesdemo.methods.optim import DataTensors, Optimiser

# The forum question's initial values: b is the slope (beta multiplies x), a is the intercept (alpha).
INITIAL_VALUES = {"b_mu": 2.0, "b_sd": 1.0, "a_mu": 0.1, "a_sd": 1.0, "sig": 1.0, "sig_mean": 1.0}


class NoiseInjection:
    """MSE on y_hat = |sigma| eps4 + beta x + alpha with per-point beta, alpha, sigma (docs/MATH.md, noise injection).

    There is no likelihood scale, prior or entropy term: every sd is pushed to 0 and the means to least squares.
    The model's prior and noise sd are deliberately unused; that is the lesson. With centre_x it runs on the
    standardised data and reports q over (slope, intercept) (docs/MATH.md, Centred parameterisation); least squares, the
    target, is the same in every coordinates.
    """

    def __init__(self, dataset: Dataset, model: Model, config: FitConfig):
        self.config = config
        self.generator = torch.Generator(device=config.device).manual_seed(config.seed)
        self.problem = StandardisedProblem.of(dataset, model) if config.centre_x else None
        trained_on = self.problem.dataset if self.problem else dataset
        self.data = DataTensors(trained_on, config.batch_size, self.generator, config.device)
        self.params = {
            name: torch.tensor(value, dtype=torch.float64, device=config.device, requires_grad=True)
            for name, value in INITIAL_VALUES.items()
        }
        self.optimizer = Optimiser(config, list(self.params.values()))

    def _noise(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Standard normal draws from the fit's own generator."""
        return torch.randn(shape, generator=self.generator, dtype=torch.float64, device=self.data.device)

    def step(self) -> float:
        """One SGD step on MSE(y_hat, y), y_hat sampled per point as in the forum question's `model(x)`."""
        x, y = self.data.batch()
        p = self.params
        shape = (self.config.samples_in_force, x.shape[0])
        beta = torch.abs(p["b_sd"]) * self._noise(shape) + p["b_mu"]
        alpha = torch.abs(p["a_sd"]) * self._noise(shape) + p["a_mu"]
        mu = beta * x + alpha
        sigma = torch.abs(p["sig"]) * torch.abs(self._noise(shape)) + p["sig_mean"]
        y_hat = torch.abs(sigma) * self._noise(shape) + mu
        loss = torch.mean((y_hat - y) ** 2)
        value = self.optimizer.minimise(loss)
        return value * self.problem.y_scale**2 if self.problem else value  # the MSE in y's own unit

    def posterior(self) -> Gaussian:
        """q's mean (b_mu, a_mu) and sds (|b_sd|, |a_sd|), factorised."""
        p = {name: value.item() for name, value in self.params.items()}
        q = Gaussian.diagonal([p["b_mu"], p["a_mu"]], [abs(p["b_sd"]), abs(p["a_sd"])])
        return self.problem.to_theta(q) if self.problem else q

    def injected_noise(self) -> tuple[float, float]:
        """The output-noise parameters (|sig|, sig_mean): they shrink to 0 as well."""
        scale = self.problem.y_scale if self.problem else 1.0
        return scale * abs(self.params["sig"].item()), scale * self.params["sig_mean"].item()
