"""NUTS reference: agrees with the exact posterior within Monte-Carlo error, reproducible, leaves other RNGs alone."""

import math
import threading

import numpy as np
import pytest
import torch

from bayesdemo.core.config import FitConfig
from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import exact_posterior
from bayesdemo.core.priors import GaussianPrior, Model
from bayesdemo.methods.pyro_svi import PyroSVI
from bayesdemo.references.mcmc import MCMCConfig, NUTSRun, run_nuts

CASES = {
    # The Pyro tutorial setting: x ~ U(0, 1), posterior correlation about -0.87, prior nearly flat.
    "tutorial": (DataConfig(), Model()),
    # Ten points and an informative, off-centre prior: the prior visibly moves the posterior.
    "informative prior": (DataConfig(n=10, noise_sd=0.5, seed=3), Model(GaussianPrior(2.0, 0.5, 0.0, 0.3), 0.5)),
}


@pytest.mark.parametrize("case", CASES)
def test_nuts_moments_agree_with_the_exact_posterior_within_monte_carlo_error(case):
    data_config, model = CASES[case]
    exact = exact_posterior(generate(data_config), model)
    result = run_nuts(generate(data_config), model, MCMCConfig(warmup=200, samples=400, seed=1))
    ess = result.effective_sample_size
    assert result.samples.shape == (400, 2)
    assert np.all(ess > 100), ess  # measured 150-400 with a dense mass matrix
    # Monte-Carlo standard errors: sd / sqrt(ESS) for a mean, about sd / sqrt(2 ESS) for a Gaussian's sd,
    # (1 - rho^2) / sqrt(ESS) for a correlation. 4 standard errors: a false alarm has probability < 1e-4 per check.
    np.testing.assert_array_less(np.abs(result.mean - exact.mean), 4 * exact.sd / np.sqrt(ess))
    np.testing.assert_array_less(np.abs(result.sd - exact.sd), 4 * exact.sd / np.sqrt(2 * ess))
    sample_corr = np.corrcoef(result.samples, rowvar=False)[0, 1]
    assert abs(sample_corr - exact.corr) < 4 * (1 - exact.corr**2) / math.sqrt(ess.min())
    assert 0.6 < result.mean_accept_prob < 1.0  # adapted towards target_accept = 0.8
    assert 0.5 < result.acceptance_rate <= 1.0
    assert result.divergences == 0
    assert np.all(np.abs(result.r_hat - 1.0) < 0.05)
    assert result.seconds > 0 and math.isfinite(result.step_size)


def test_same_seed_same_draws_even_beside_an_svi_fit_in_another_thread():
    data = generate(DataConfig(n=30, seed=2))
    model = Model()
    config = MCMCConfig(warmup=60, samples=80, seed=5)
    global_state = torch.get_rng_state()
    alone = run_nuts(data, model, config)
    np.testing.assert_array_equal(torch.get_rng_state().numpy(), global_state.numpy())  # caller's stream untouched

    def sample_in_small_chunks(run: NUTSRun) -> None:
        while not run.finished:
            run.advance(5)  # release PYRO_LOCK often so the SVI steps interleave

    svi_alone = PyroSVI(data, model, FitConfig(method="svi", seed=9, steps=40))
    for _ in range(40):
        svi_alone.step()
    svi_beside = PyroSVI(data, model, FitConfig(method="svi", seed=9, steps=40))
    run = NUTSRun(data, model, config)
    sampler = threading.Thread(target=sample_in_small_chunks, args=(run,))
    sampler.start()
    for _ in range(40):
        svi_beside.step()
    sampler.join()
    threaded = run.result()
    np.testing.assert_array_equal(threaded.samples, alone.samples)
    np.testing.assert_array_equal(svi_beside.posterior().mean, svi_alone.posterior().mean)
    other_seed = run_nuts(data, model, MCMCConfig(warmup=60, samples=80, seed=6))
    assert not np.array_equal(other_seed.samples, alone.samples)


def test_chains_run_one_after_another_with_their_own_streams():
    data = generate(DataConfig(n=30, seed=2))
    result = run_nuts(data, Model(), MCMCConfig(warmup=60, samples=80, seed=5, chains=2))
    assert result.samples.shape == (160, 2) and result.by_chain.shape == (2, 80, 2)
    assert not np.array_equal(result.by_chain[0], result.by_chain[1])
    single = run_nuts(data, Model(), MCMCConfig(warmup=60, samples=80, seed=5))
    np.testing.assert_array_equal(result.by_chain[0], single.samples)  # chain 0 is the one-chain run
    assert np.all(np.isfinite(result.r_hat)) and np.all(result.r_hat < 1.1)


def test_unfinished_run_refuses_a_result_and_reports_progress():
    run = NUTSRun(generate(DataConfig(n=20)), Model(), MCMCConfig(warmup=10, samples=10))
    run.advance(5)
    assert run.progress == 0.25 and not run.finished
    with pytest.raises(RuntimeError, match="not finished"):
        run.result()


@pytest.mark.parametrize(
    ("field", "value"),
    [("warmup", -1), ("samples", 1), ("seed", -3), ("chains", 0), ("chains", 9), ("target_accept", 1.0),
     ("dense_mass", "yes"), ("max_tree_depth", 0), ("samples", 2.5)],
)  # fmt: skip
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        MCMCConfig(**{field: value})
