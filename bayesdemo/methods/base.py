"""The one protocol every inference method implements, and the optional capabilities some of them add."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bayesdemo.core.config import FitConfig
from bayesdemo.core.exact import Gaussian


class Method(Protocol):
    """An inference method: the caller owns the loop, calling `step` and reading `posterior` when it likes."""

    config: FitConfig

    def step(self) -> float:
        """Take one optimisation step; return its loss (a float, possibly non-finite)."""
        ...

    def posterior(self) -> Gaussian:
        """The current q over theta = (slope, intercept) as N(mean (2,), cov (2, 2))."""
        ...


@runtime_checkable
class SettablePosterior(Method, Protocol):
    """A method whose q can be placed at a given Gaussian (Bayes by Backprop): a start, or a point to measure at."""

    def set_posterior(self, q: Gaussian) -> None:
        """Set q's mean and sds to `q`'s (its diagonal: q is mean-field)."""
        ...


@runtime_checkable
class NoisePosterior(Method, Protocol):
    """A method that reports its q over the noise sd s (Bayes by Backprop, Pyro SVI; learned or held fixed)."""

    def noise_posterior(self) -> tuple[float, float]:
        """(mean, sd) of q(s); (the model's noise sd, 0) when s is not learned."""
        ...


@runtime_checkable
class MultiStep(Method, Protocol):
    """A method that takes several steps in one call (Bayes by Backprop's closed-form steps): fewer Python calls."""

    def take_steps(self, count: int) -> list[float]:
        """Take `count` steps, or fewer (at least one): the same steps as that many `step` calls; their losses.

        It stops after a non-finite loss, which is the last one returned.
        """
        ...
