"""The benchmark's anchors: stock Pyro SVI as in Pyro's Bayesian regression tutorial, and the same in NumPyro.

Written as a user following the tutorials would: global param store, a hand-written softplus guide, Adam(lr 0.05),
Trace_ELBO, one particle, `pyro.plate(..., subsample_size=B)` for minibatches; NumPyro also with vectorised particles.
Both yield (step, training seconds, mean (2,), sd (2,)) every `every` steps on the benchmark's data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

Trajectory = Iterator[tuple[int, float, np.ndarray, np.ndarray]]


def pyro_tutorial(
    x: np.ndarray,
    y: np.ndarray,
    noise_sd: float,
    steps: int,
    batch_size: int,
    every: int,
    seed: int,
    time_budget_s: float = 0.0,
) -> Trajectory:
    """Stock Pyro SVI (pyro.infer.SVI.step with pyro.optim.Adam and Trace_ELBO), timed step by step."""
    import pyro
    import pyro.distributions as dist
    import torch
    from pyro.infer import SVI, Trace_ELBO
    from pyro.optim import Adam  # type: ignore[attr-defined]  # generated at import time

    pyro.settings.set(module_local_params=False)
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    x_tensor = torch.tensor(x, dtype=torch.float32)
    y_tensor = torch.tensor(y, dtype=torch.float32)
    subsample = batch_size or None

    def model(x, y):
        w = pyro.sample("w", dist.Normal(0.0, 10.0))
        b = pyro.sample("b", dist.Normal(0.0, 10.0))
        with pyro.plate("map", x.shape[0], subsample_size=subsample) as index:
            pyro.sample("obs", dist.Normal(w * x[index] + b, noise_sd), obs=y[index])

    def guide(x, y):
        w_loc = pyro.param("guide_mean_weight", torch.randn(()))
        w_scale = torch.nn.functional.softplus(pyro.param("guide_log_scale_weight", -3.0 + 0.05 * torch.randn(())))
        b_loc = pyro.param("guide_mean_bias", torch.randn(()))
        b_scale = torch.nn.functional.softplus(pyro.param("guide_log_scale_bias", -3.0 + 0.05 * torch.randn(())))
        pyro.sample("w", dist.Normal(w_loc, w_scale))
        pyro.sample("b", dist.Normal(b_loc, b_scale))

    svi = SVI(model, guide, Adam({"lr": 0.05}), loss=Trace_ELBO())
    seconds = 0.0
    for step in range(1, steps + 1):
        started = time.perf_counter()
        svi.step(x_tensor, y_tensor)
        seconds += time.perf_counter() - started
        if step % every == 0:
            store = pyro.get_param_store()
            mean = np.array([store["guide_mean_weight"].item(), store["guide_mean_bias"].item()])
            raw = np.array([store["guide_log_scale_weight"].item(), store["guide_log_scale_bias"].item()])
            yield step, seconds, mean, np.log1p(np.exp(raw))
            if time_budget_s and seconds >= time_budget_s:
                return


def numpyro_tutorial(
    x: np.ndarray,
    y: np.ndarray,
    noise_sd: float,
    steps: int,
    batch_size: int,
    every: int,
    seed: int,
    time_budget_s: float = 0.0,
    particles: int = 1,
) -> Trajectory:
    """Stock NumPyro SVI: the same model and guide, `every` jitted `svi.update` steps per lax.scan between reads.

    With `particles` > 1, `Trace_ELBO(num_particles=particles, vectorize_particles=True)`: the one-argument change a
    NumPyro user makes for a less noisy ELBO gradient.
    """
    import jax
    import jax.numpy as jnp
    import numpyro  # type: ignore[import-untyped]
    import numpyro.distributions as dist  # type: ignore[import-untyped]
    from numpyro.infer import SVI, Trace_ELBO  # type: ignore[import-untyped]
    from numpyro.optim import Adam  # type: ignore[import-untyped]

    jax.config.update("jax_platform_name", "cpu")
    x_array, y_array = jnp.asarray(x, dtype=jnp.float32), jnp.asarray(y, dtype=jnp.float32)
    subsample = batch_size or None

    def model(x, y):
        w = numpyro.sample("w", dist.Normal(0.0, 10.0))
        b = numpyro.sample("b", dist.Normal(0.0, 10.0))
        with numpyro.plate("map", x.shape[0], subsample_size=subsample) as index:
            numpyro.sample("obs", dist.Normal(w * x[index] + b, noise_sd), obs=y[index])

    def guide(x, y):
        w_loc = numpyro.param("guide_mean_weight", 0.0)
        w_scale = jax.nn.softplus(numpyro.param("guide_log_scale_weight", -3.0))
        b_loc = numpyro.param("guide_mean_bias", 0.0)
        b_scale = jax.nn.softplus(numpyro.param("guide_log_scale_bias", -3.0))
        numpyro.sample("w", dist.Normal(w_loc, w_scale))
        numpyro.sample("b", dist.Normal(b_loc, b_scale))

    elbo = Trace_ELBO(num_particles=particles, vectorize_particles=True) if particles > 1 else Trace_ELBO()
    svi = SVI(model, guide, Adam(0.05), loss=elbo)
    state = svi.init(jax.random.PRNGKey(seed), x_array, y_array)

    @jax.jit
    def chunk(state):
        return jax.lax.scan(lambda s, _: svi.update(s, x_array, y_array), state, None, length=every)[0]

    jax.block_until_ready(chunk(state))  # compile outside the timed steps, as svi.run does before its loop
    seconds = 0.0
    for step in range(every, steps + 1, every):
        started = time.perf_counter()
        state = jax.block_until_ready(chunk(state))
        seconds += time.perf_counter() - started
        params = svi.get_params(state)
        mean = np.array([float(params["guide_mean_weight"]), float(params["guide_mean_bias"])])
        raw = np.array([float(params["guide_log_scale_weight"]), float(params["guide_log_scale_bias"])])
        yield step, seconds, mean, np.log1p(np.exp(raw))
        if time_budget_s and seconds >= time_budget_s:
            return
