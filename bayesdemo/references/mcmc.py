"""MCMC reference on demand: Pyro NUTS on the same model (docs/MATH.md, Model), seeded, in chunks that share Pyro
fairly.

Pyro's handler stack and the global torch RNG are process-wide (see methods/pyro_svi.py): every chunk of NUTS
iterations holds PYRO_LOCK and runs on this run's own torch RNG state, swapped in and out, so other fits' streams
are untouched and the same seed gives the same draws whatever else runs. The lock is released between chunks, so a
live SVI fit in another thread keeps stepping while the reference samples.

torch and Pyro load on a run's start, not with this module: the page imports it for its settings and result types,
and a page that does not sample draws sooner without them (docs/performance.md, First view).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import Gaussian
from bayesdemo.core.priors import PARAMETER_NAMES, GaussianPrior, Model
from bayesdemo.core.validation import ConfigError, check_int, check_range

if TYPE_CHECKING:
    import torch
    from pyro.infer.mcmc import NUTS

MAX_ITERATIONS = 100_000  # most warm-up or kept iterations per chain
MAX_CHAINS = 8  # chains run one after another in this process
DEFAULT_CHUNK = 25  # NUTS iterations per lock hold in `advance`


@dataclass(frozen=True)
class MCMCConfig:
    """How to sample: warm-up and kept iterations, seed, chains and NUTS settings."""

    warmup: int = 300  # NUTS warm-up iterations per chain (step size and mass matrix adaptation), discarded
    samples: int = 500  # kept draws per chain
    seed: int = 0  # seed of the run's own torch RNG stream (each chain derives its own from it)
    chains: int = 1  # independent chains, run one after another; >= 2 makes R-hat meaningful across chains
    target_accept: float = 0.8  # NUTS step-size adaptation target for the mean acceptance probability
    dense_mass: bool = True  # adapt a full mass matrix: undoes the slope-intercept correlation, shallower trees
    max_tree_depth: int = 10  # NUTS tree depth limit (at most 2^depth leapfrog steps per iteration)

    def __post_init__(self) -> None:
        object.__setattr__(self, "warmup", check_int("warmup", self.warmup, 0, MAX_ITERATIONS))
        object.__setattr__(self, "samples", check_int("samples", self.samples, 2, MAX_ITERATIONS))
        object.__setattr__(self, "seed", check_int("seed", self.seed, 0, 2**32 - 1))
        object.__setattr__(self, "chains", check_int("chains", self.chains, 1, MAX_CHAINS))
        check_range("target_accept", self.target_accept, 0.0, 1.0, low_open=True)
        if self.target_accept >= 1.0:
            raise ConfigError("target_accept", f"must be < 1, got {self.target_accept!r}")
        if not isinstance(self.dense_mass, bool):
            raise ConfigError("dense_mass", f"must be True or False, got {self.dense_mass!r}")
        object.__setattr__(self, "max_tree_depth", check_int("max_tree_depth", self.max_tree_depth, 1, 15))

    @property
    def total_iterations(self) -> int:
        """Warm-up plus kept iterations over all chains."""
        return self.chains * (self.warmup + self.samples)


@dataclass(frozen=True)
class MCMCResult:
    """Draws of theta = (slope, intercept) and their diagnostics; samples (chains * samples, 2), chain after chain."""

    config: MCMCConfig
    samples: np.ndarray  # (chains * samples, 2) posterior draws, read-only
    acceptance_rate: float  # fraction of kept iterations that moved (Pyro's "acceptance rate"), mean over chains
    mean_accept_prob: float  # mean NUTS acceptance statistic over kept iterations (adapted towards target_accept)
    step_size: float  # adapted step size of the last chain
    divergences: int  # divergent transitions among the kept iterations, all chains
    effective_sample_size: np.ndarray  # (2,) ESS per parameter over all chains (Pyro's autocorrelation estimate)
    r_hat: np.ndarray  # (2,) split Gelman-Rubin R-hat per parameter (near 1 when the chains mixed)
    seconds: float  # wall-clock seconds spent sampling (waiting for the lock excluded)

    @property
    def by_chain(self) -> np.ndarray:
        """The draws as (chains, samples, 2)."""
        return self.samples.reshape(self.config.chains, self.config.samples, 2)

    @property
    def mean(self) -> np.ndarray:
        """Sample mean of (slope, intercept), shape (2,)."""
        return self.samples.mean(axis=0)

    @property
    def sd(self) -> np.ndarray:
        """Sample sd of (slope, intercept), shape (2,)."""
        return self.samples.std(axis=0, ddof=1)

    @property
    def gaussian(self) -> Gaussian:
        """The moment-matched Gaussian N(sample mean, sample covariance)."""
        return Gaussian(self.mean, np.cov(self.samples, rowvar=False))

    @property
    def mean_standard_error(self) -> np.ndarray:
        """Monte-Carlo standard error of the sample mean, sd / sqrt(ESS), shape (2,)."""
        return self.sd / np.sqrt(self.effective_sample_size)


def _chain_seed(seed: int, chain: int) -> int:
    """A well-separated torch seed for one chain of a run."""
    return int(np.random.SeedSequence([seed, chain]).generate_state(1, dtype=np.uint64)[0] >> 1)


class NUTSRun:
    """A NUTS run in progress: call `advance` until `finished` (or use `run_nuts`), then read `result()`."""

    def __init__(self, dataset: Dataset, model: Model, config: MCMCConfig = MCMCConfig()):
        if not isinstance(model.prior, GaussianPrior):
            raise ConfigError("prior", f"must be a GaussianPrior for the NUTS reference, got {model.prior!r}")
        import torch

        self.config = config
        self.x = torch.as_tensor(np.array(dataset.x), dtype=torch.float64)
        self.y = torch.as_tensor(np.array(dataset.y), dtype=torch.float64)
        self.prior_mean = torch.as_tensor(model.prior.mean, dtype=torch.float64)
        self.prior_sd = torch.as_tensor(model.prior.sd, dtype=torch.float64)
        self.noise_sd = torch.tensor(float(model.noise_sd), dtype=torch.float64)
        self.draws = np.empty((config.chains, config.samples, 2))
        self.chain = 0  # chain in progress
        self.iteration = 0  # iterations done in the chain in progress
        self.seconds = 0.0
        self.acceptance_rates: list[float] = []
        self.mean_accept_probs: list[float] = []
        self.divergences = 0
        self.step_size = math.nan
        self.kernel: NUTS | None = None
        self.params: dict[str, torch.Tensor] = {}
        self.rng_state = torch.Generator().manual_seed(_chain_seed(config.seed, 0)).get_state()

    def model(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """slope, intercept ~ N(m0, s0^2) independently; y_i ~ N(slope x_i + intercept, s^2) (docs/MATH.md, Model)."""
        import pyro
        import pyro.distributions as dist

        slope = pyro.sample("slope", dist.Normal(self.prior_mean[0], self.prior_sd[0]))
        intercept = pyro.sample("intercept", dist.Normal(self.prior_mean[1], self.prior_sd[1]))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("obs", dist.Normal(slope * x + intercept, self.noise_sd), obs=y)

    @property
    def finished(self) -> bool:
        """True once every chain has all its draws."""
        return self.chain >= self.config.chains

    @property
    def progress(self) -> float:
        """Fraction of all iterations done, in [0, 1]."""
        per_chain = self.config.warmup + self.config.samples
        return (self.chain * per_chain + self.iteration) / self.config.total_iterations

    def advance(self, iterations: int = DEFAULT_CHUNK) -> None:
        """Run up to `iterations` NUTS iterations holding PYRO_LOCK, on this run's own RNG stream."""
        check_int("iterations", iterations, 1, MAX_ITERATIONS)
        from bayesdemo.methods.pyro_context import OwnTorchRNG

        with OwnTorchRNG(self):
            started = time.perf_counter()
            for _ in range(iterations):
                if self.finished:
                    break
                self._iterate()
            self.seconds += time.perf_counter() - started

    def _iterate(self) -> None:
        """One NUTS iteration, setting up the chain first and closing it after its last draw."""
        config = self.config
        kernel = self.kernel
        if kernel is None:
            from pyro.infer.mcmc import NUTS

            kernel = self.kernel = NUTS(
                self.model,
                target_accept_prob=config.target_accept,
                full_mass=config.dense_mass,
                max_tree_depth=config.max_tree_depth,
            )
            kernel.setup(config.warmup, self.x, self.y)
            self.params = kernel.initial_params
        self.params = kernel.sample(self.params)
        kept = self.iteration - config.warmup
        if kept >= 0:
            self.draws[self.chain, kept] = [float(self._constrained(kernel, name)) for name in PARAMETER_NAMES]
        self.iteration += 1
        if self.iteration == config.warmup + config.samples:
            self._end_chain(kernel)

    def _constrained(self, kernel: NUTS, name: str) -> torch.Tensor:
        """The current value of site `name` mapped back from `kernel`'s unconstrained space (identity for reals)."""
        value = self.params[name]
        transform = kernel.transforms.get(name)
        return transform.inv(value) if transform is not None else value

    def _end_chain(self, kernel: NUTS) -> None:
        """Record the chain's diagnostics from its `kernel`, release the kernel, and seed the next chain."""
        diagnostics = kernel.diagnostics()
        self.acceptance_rates.append(float(diagnostics["acceptance rate"]))
        self.divergences += len(diagnostics["divergences"])
        self.mean_accept_probs.append(float(kernel.logging()["acc. prob"]))
        self.step_size = float(kernel.step_size)
        kernel.cleanup()
        self.kernel = None
        self.params = {}
        self.chain += 1
        self.iteration = 0
        # Set on the live global state: OwnTorchRNG's exit saves it as this run's stream for the next chain.
        import torch

        torch.set_rng_state(torch.Generator().manual_seed(_chain_seed(self.config.seed, self.chain)).get_state())

    def result(self) -> MCMCResult:
        """The draws and diagnostics; only once `finished`."""
        if not self.finished:
            raise RuntimeError(f"NUTS run not finished: {self.progress:.0%} of the iterations done")
        import torch
        from pyro.ops.stats import effective_sample_size, split_gelman_rubin

        draws = torch.as_tensor(self.draws)
        samples = self.draws.reshape(-1, 2).copy()
        samples.setflags(write=False)
        return MCMCResult(
            config=self.config,
            samples=samples,
            acceptance_rate=float(np.mean(self.acceptance_rates)),
            mean_accept_prob=float(np.mean(self.mean_accept_probs)),
            step_size=self.step_size,
            divergences=self.divergences,
            effective_sample_size=effective_sample_size(draws, chain_dim=0, sample_dim=1).numpy(),
            r_hat=split_gelman_rubin(draws, chain_dim=0, sample_dim=1).numpy(),
            seconds=self.seconds,
        )


def run_nuts(dataset: Dataset, model: Model, config: MCMCConfig = MCMCConfig()) -> MCMCResult:
    """NUTS draws from p(slope, intercept | y) to the end, releasing PYRO_LOCK every DEFAULT_CHUNK iterations."""
    run = NUTSRun(dataset, model, config)
    while not run.finished:
        run.advance(DEFAULT_CHUNK)
    if not math.isfinite(float(run.draws.sum())):
        raise RuntimeError("NUTS produced non-finite draws: check the data scale and the prior")
    return run.result()
