"""What every method's training step shares: the data as torch tensors (with minibatches) and the optimiser."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from bayesdemo.core.config import ADAM_BETAS, FitConfig
from bayesdemo.core.data import Dataset
from bayesdemo.core.validation import ConfigError

AVERAGING_POWER = 3.0  # eta of polynomial-decay averaging: weight (eta + 1) / (t + eta) on step t's parameters
ADAM_EPS = 1e-8  # torch.optim.Adam's default eps, added to the sd of the second moment


class DataTensors:
    """The dataset as float64 torch tensors on `device`, with minibatches from the fit's own generator."""

    def __init__(self, dataset: Dataset, batch_size: int, generator: torch.Generator, device: str = "cpu"):
        if batch_size > dataset.n:
            raise ConfigError("batch_size", f"must be <= n ({dataset.n}), got {batch_size}")
        self.x = torch.as_tensor(np.array(dataset.x), dtype=torch.float64, device=device)
        self.y = torch.as_tensor(np.array(dataset.y), dtype=torch.float64, device=device)
        self.n = dataset.n
        self.batch_size = batch_size or dataset.n
        self.generator = generator
        self.device = device
        self._order = torch.empty(0, dtype=torch.long)
        self._next = self.n  # the first batch starts a pass

    @property
    def full_batch(self) -> bool:
        """True when every step sees all the data."""
        return self.batch_size == self.n

    @property
    def order(self) -> torch.Tensor:
        """The current pass's permutation of the points (empty before the first batch)."""
        return self._order

    @property
    def batches_into_pass(self) -> int:
        """Batches taken in the current pass: the last one was order[(k - 1) B : k B]."""
        return self._next // self.batch_size

    def next_batch_starts_pass(self) -> bool:
        """True when the next `batch_index` draws a new permutation (a new pass over the data)."""
        return self._next + self.batch_size > self.n

    def batch_index(self) -> torch.Tensor:
        """The next minibatch's indices: consecutive slices of one random permutation per pass over the data.

        Within a pass no point repeats (sampling without replacement); one randperm per pass, not per step, keeps
        a step O(batch) rather than O(n).
        """
        if self.next_batch_starts_pass():
            self._order = torch.randperm(self.n, generator=self.generator, device=self.generator.device)
            self._next = 0
        index = self._order[self._next : self._next + self.batch_size]
        self._next += self.batch_size
        return index

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A minibatch (x, y) drawn without replacement; the full data when batch_size == n."""
        if self.full_batch:
            return self.x, self.y
        index = self.batch_index()
        return self.x[index], self.y[index]


def sufficient_statistics(design: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Phi^T Phi (p, p), Phi^T y (p,), y^T y ()) of design Phi (B, p) and targets y (B,) (docs/MATH.md, Exact
    posterior)."""
    return design.T @ design, y @ design, y @ y


class Optimiser:
    """SGD or Adam (torch.optim's update rules, written out) over `parameters`, with exponential lr decay.

    Written out rather than torch.optim so one step is a handful of tensor ops (torch.optim's per-step machinery
    cost more than the whole Bayes by Backprop gradient); tests check it matches torch.optim to rounding. With
    `config.average_in_force` it also keeps the polynomial-decay average of the parameters (Shamir and Zhang 2013):
    avg_t = avg_(t-1) + (eta + 1) / (t + eta) (x_t - avg_(t-1)), eta = AVERAGING_POWER, which forgets the start.
    """

    def __init__(self, config: FitConfig, parameters: list[torch.Tensor]):
        self.parameters = list(parameters)
        self.adam = config.optimizer_in_force == "adam"
        self.betas = (ADAM_BETAS[0], config.adam_beta2_in_force)
        self.first_lr = config.lr_in_force
        self.lr = self.first_lr
        self.decay_per_step = config.lr_decay_in_force ** (1.0 / max(config.steps_in_force - 1, 1))
        self.steps_taken = 0
        # The state is one tensor, rows (first moments, second moments[, averages]) flat over the parameters, with a
        # view per parameter: a caller can read or write it whole (flat_state / load_flat_state) in one call.
        first = self.parameters[0]
        total = sum(p.numel() for p in self.parameters)
        rows = 3 if config.average_in_force else 2
        self._state = torch.zeros((rows, total), dtype=first.dtype, device=first.device)
        self.first_moments = self._views(self._state[0])
        self.second_moments = self._views(self._state[1])
        self.averages: list[torch.Tensor] | None = None
        if config.average_in_force:
            self._state[2] = torch.cat([p.detach().reshape(-1) for p in self.parameters])
            self.averages = self._views(self._state[2])
        self._state_array = self._state.numpy() if first.device.type == "cpu" else None

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """One view of `flat` per parameter, in its shape."""
        views, start = [], 0
        for parameter in self.parameters:
            views.append(flat[start : start + parameter.numel()].view(parameter.shape))
            start += parameter.numel()
        return views

    def flat_state(self) -> list[list[float]]:
        """Rows (Adam's first moments, second moments[, the averages]), each flat over the parameters in order."""
        return self._state.tolist()

    def load_flat_state(self, steps_taken: int, rows: list[list[float]]) -> None:
        """Set the rows `flat_state` reads, after `steps_taken` steps in all (the lr follows the step count).

        On the CPU through the state's numpy view: no autograd record, which the moments and averages never need.
        """
        if self._state_array is not None:
            self._state_array[:] = rows
        else:
            with torch.no_grad():
                self._state.copy_(torch.tensor(rows, dtype=self._state.dtype))
        self.steps_taken = steps_taken
        self.lr = self.first_lr * self.decay_per_step**steps_taken

    def minimise(self, loss: torch.Tensor) -> float:
        """Backpropagate `loss`, take one step, decay the learning rate; return the loss as a float."""
        gradients = torch.autograd.grad(loss, self.parameters)
        self.apply(gradients)
        return float(loss.detach())

    @torch.no_grad()
    def apply(self, gradients: tuple[torch.Tensor, ...] | list[torch.Tensor]) -> None:
        """One update of every parameter from its gradient (torch.optim.Adam / SGD, no weight decay)."""
        self.steps_taken += 1
        lr = self.lr
        if self.adam:
            beta1, beta2 = self.betas
            bias_correction1 = 1.0 - beta1**self.steps_taken
            bias_correction2_sqrt = math.sqrt(1.0 - beta2**self.steps_taken)
            for parameter, gradient, first, second in zip(
                self.parameters, gradients, self.first_moments, self.second_moments, strict=True
            ):
                first.lerp_(gradient, 1.0 - beta1)
                second.mul_(beta2).addcmul_(gradient, gradient, value=1.0 - beta2)
                denominator = (second.sqrt() / bias_correction2_sqrt).add_(ADAM_EPS)
                parameter.addcdiv_(first, denominator, value=-lr / bias_correction1)
        else:
            for parameter, gradient in zip(self.parameters, gradients, strict=True):
                parameter.add_(gradient, alpha=-lr)
        self.lr = self.first_lr * self.decay_per_step**self.steps_taken
        if self.averages is not None:
            weight = (AVERAGING_POWER + 1.0) / (self.steps_taken + AVERAGING_POWER)
            for average, parameter in zip(self.averages, self.parameters, strict=True):
                average.lerp_(parameter, min(weight, 1.0))

    @contextmanager
    def averaged(self) -> Iterator[None]:
        """Inside the block the parameters hold their averages (when averaging); restored on exit."""
        if self.averages is None or self.steps_taken == 0:
            yield
            return
        with torch.no_grad():
            current = [p.detach().clone() for p in self.parameters]
            for parameter, average in zip(self.parameters, self.averages, strict=True):
                parameter.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for parameter, value in zip(self.parameters, current, strict=True):
                    parameter.copy_(value)
