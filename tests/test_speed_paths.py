"""The fast paths give the straightforward paths' results: closed-form BBB gradients on sufficient statistics equal
autograd through the per-point loss, the written-out optimiser equals torch.optim, averaging and devices behave."""

import dataclasses

import numpy as np
import pytest
import torch

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.priors import GaussianPrior, Model, ParameterPrior, Prior
from bayesdemo.methods import FitConfig, make_method
from bayesdemo.methods.optim import AVERAGING_POWER, DataTensors, Optimiser

DATA = generate(DataConfig())
LARGE = generate(DataConfig(n=20_000, seed=3))
MODEL = Model()


def both_paths(method) -> tuple[tuple[float, list[np.ndarray]], tuple[float, list[np.ndarray]]]:
    """(loss, gradients in mu and rho) by autograd through `loss()` and in closed form, on the same draws."""
    generator_state = method.generator.get_state()
    data_state = (method.data._order.clone(), method.data._next)
    loss = method.loss()
    autograd = [g.numpy() for g in torch.autograd.grad(loss, [method.mu, method.rho])]
    method.generator.set_state(generator_state)
    method.data._order, method.data._next = data_state
    closed_loss, closed = method.loss_and_gradients()
    return (float(loss.detach()), autograd), (float(closed_loss), [g.numpy() for g in closed])


@pytest.mark.parametrize(
    ("dataset", "config"),
    [
        (DATA, FitConfig(method="bbb", seed=1)),
        (DATA, FitConfig(method="bbb", samples=1, seed=2)),
        (DATA, FitConfig(method="bbb", batch_size=20, seed=3)),
        (LARGE, FitConfig(method="bbb", seed=4)),
        (LARGE, FitConfig(method="bbb", batch_size=100, samples=4, seed=5)),
        (LARGE, FitConfig(method="bbb", batch_size=100, samples=5, seed=5)),
    ],
    ids=["full", "one-sample", "minibatch-antithetic", "n20000-full", "n20000-minibatch-antithetic", "n20000-odd"],
)
def test_sufficient_statistic_gradients_equal_autograd_through_the_per_point_loss(dataset, config):
    method = make_method(dataset, MODEL, config)
    assert method.uses_sufficient_statistics
    for _ in range(5):  # also away from the start, after a few steps
        (loss, autograd), (closed_loss, closed) = both_paths(method)
        assert closed_loss == pytest.approx(loss, rel=1e-10)
        for a, c in zip(autograd, closed, strict=True):
            np.testing.assert_allclose(c, a, rtol=1e-9, atol=1e-9 * np.abs(a).max())
        method.step()


def test_fast_and_autograd_trajectories_agree():
    config = FitConfig(method="bbb", batch_size=25, steps=200, seed=6)
    fast, slow = make_method(DATA, MODEL, config), make_method(DATA, MODEL, config)
    slow.uses_sufficient_statistics = False
    for _ in range(200):
        assert fast.step() == pytest.approx(slow.step(), rel=1e-9)
    np.testing.assert_allclose(fast.posterior().mean, slow.posterior().mean, rtol=1e-9)
    np.testing.assert_allclose(fast.posterior().cov, slow.posterior().cov, rtol=1e-8)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_written_out_optimiser_matches_torch_optim(optimizer):
    config = FitConfig(method="bbb", optimizer=optimizer, lr=0.01, lr_decay=0.2, steps=50, average=False)
    ours = [torch.tensor([0.3, -1.0], dtype=torch.float64), torch.tensor([2.0], dtype=torch.float64)]
    theirs = [p.clone().requires_grad_(True) for p in ours]
    optimiser = Optimiser(config, ours)
    torch_class = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    reference = torch_class(theirs, lr=0.01)
    decay = 0.2 ** (1 / 49)
    generator = torch.Generator().manual_seed(0)
    for step in range(50):
        gradients = [torch.randn(p.shape, generator=generator, dtype=torch.float64) for p in ours]
        optimiser.apply(gradients)
        for parameter, gradient in zip(theirs, gradients, strict=True):
            parameter.grad = gradient.clone()
        reference.step()
        for group in reference.param_groups:
            group["lr"] = 0.01 * decay ** (step + 1)
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_averaging_reports_the_polynomial_decay_average_and_keeps_the_iterate():
    config = FitConfig(method="bbb", optimizer="sgd", lr=0.1, steps=10, average=True)
    parameter = torch.tensor([0.0], dtype=torch.float64)
    optimiser = Optimiser(config, [parameter])
    expected, eta = 0.0, AVERAGING_POWER
    for step in range(1, 11):
        optimiser.apply([torch.tensor([-1.0], dtype=torch.float64)])  # parameter = 0.1 * step
        expected += min((eta + 1) / (step + eta), 1.0) * (0.1 * step - expected)
    with optimiser.averaged():
        assert float(parameter) == pytest.approx(expected)
    assert float(parameter) == pytest.approx(1.0)


def test_averaged_fit_reports_averaged_q_and_same_seed_same_trajectory():
    config = FitConfig(method="bbb", batch_size=20, steps=100, seed=9, average=True)
    first, second = make_method(DATA, MODEL, config), make_method(DATA, MODEL, config)
    for _ in range(100):
        first.step()
        second.step()
    np.testing.assert_array_equal(first.posterior().mean, second.posterior().mean)
    assert not np.array_equal(first.posterior().mean, first.mu.detach().numpy())


def test_minibatches_cover_every_point_once_per_pass():
    data = DataTensors(DATA, 30, torch.Generator().manual_seed(0))
    seen = torch.cat([data.batch_index() for _ in range(3)])
    assert seen.unique().numel() == 90  # no repeats within a pass of 100 points (3 full batches)
    assert data.batch_index().unique().numel() == 30  # a new pass starts when too few points are left


def test_device_is_validated_naming_the_field():
    with pytest.raises(ValueError, match="device"):
        FitConfig(device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device"):
            FitConfig(device="cuda")
    with pytest.raises(ValueError, match="device"):
        FitConfig(method="svi", device="cuda:0")
    assert FitConfig(device="cpu").device == "cpu"


def svi_losses_both_ways(method, subsample) -> tuple[tuple[float, list[np.ndarray]], tuple[float, list[np.ndarray]]]:
    """(loss, gradients) of Pyro's Trace_ELBO and of the written-out `direct_loss`, on the same random draws."""
    parameters = list(method.guide.parameters())
    with method._pyro_context():
        state = torch.get_rng_state()
        trace_elbo = method.trace_elbo_loss(subsample)
        trace_gradients = [g.numpy() for g in torch.autograd.grad(trace_elbo, parameters)]
        torch.set_rng_state(state)
        direct = method.direct_loss(subsample)
        direct_gradients = [g.numpy() for g in torch.autograd.grad(direct, parameters)]
    return (float(trace_elbo.detach()), trace_gradients), (float(direct.detach()), direct_gradients)


LAPLACE_MODEL = Model(prior=Prior(ParameterPrior("laplace", 0.0, 2.0), ParameterPrior("scale_mixture", 0.0, 5.0)))


@pytest.mark.parametrize("guide", ["normal", "tutorial", "mvn"])
@pytest.mark.parametrize(
    ("model", "options"),
    [(MODEL, {}), (MODEL, {"samples": 1}), (MODEL, {"batch_size": 20}), (LAPLACE_MODEL, {"samples": 4})],
    ids=["full", "one-particle", "minibatch", "non-gaussian-prior"],
)
def test_direct_elbo_equals_pyro_trace_elbo(guide, model, options):
    method = make_method(DATA, model, FitConfig(method="svi", guide=guide, seed=7, antithetic=False, **options))
    assert method.uses_direct_elbo
    for _ in range(3):  # also away from the start
        subsample = method._subsample()
        (loss, gradients), (direct_loss, direct_gradients) = svi_losses_both_ways(method, subsample)
        assert direct_loss == pytest.approx(loss, rel=1e-11)
        for a, b in zip(gradients, direct_gradients, strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-8, atol=1e-9 * np.abs(a).max())
        method.step()


@pytest.mark.parametrize("guide", ["normal", "mvn"])
def test_direct_and_trace_elbo_svi_trajectories_agree(guide):
    config = FitConfig(method="svi", guide=guide, batch_size=25, steps=60, seed=8, antithetic=False)
    fast = make_method(DATA, MODEL, config)
    slow = make_method(DATA, MODEL, dataclasses.replace(config, svi_elbo="trace"))
    assert fast.uses_direct_elbo and not slow.uses_direct_elbo
    for _ in range(60):
        assert fast.step() == pytest.approx(slow.step(), rel=1e-10)
    np.testing.assert_allclose(fast.posterior().mean, slow.posterior().mean, rtol=1e-9)
    np.testing.assert_allclose(fast.posterior().cov, slow.posterior().cov, rtol=1e-8)


def test_learned_noise_svi_keeps_trace_elbo():
    assert not make_method(DATA, MODEL, FitConfig(method="svi", learn_noise=True)).uses_direct_elbo


def test_svi_elbo_choice_is_validated_naming_the_field():
    with pytest.raises(ValueError, match="svi_elbo"):
        FitConfig(method="svi", svi_elbo="jit")
    with pytest.raises(ValueError, match="antithetic"):
        FitConfig(method="svi", svi_elbo="trace", antithetic=True, batch_size=10)
    assert not FitConfig(method="svi", svi_elbo="trace", batch_size=10).antithetic_in_force


def test_minibatch_defaults_draw_antithetic_pairs_and_forget_early_gradients():
    full, minibatch = FitConfig(method="bbb"), FitConfig(method="bbb", batch_size=10)
    assert not full.antithetic_in_force and full.adam_beta2_in_force == 0.999
    assert minibatch.antithetic_in_force and minibatch.adam_beta2_in_force == 0.99
    assert not FitConfig(method="bbb", batch_size=10, samples=3).antithetic_in_force  # pairs need an even count
    assert not FitConfig(method="svi", batch_size=10, learn_noise=True).antithetic_in_force  # Trace_ELBO path
    method = make_method(DATA, MODEL, FitConfig(method="bbb", batch_size=10, samples=6))
    eps = method._parameter_draws(6)
    np.testing.assert_array_equal(eps[3:].numpy(), -eps[:3].numpy())


@pytest.mark.parametrize(
    "options", [{"antithetic": True, "samples": 1}, {"antithetic": True, "method": "noise"}, {"adam_beta2": 1.0}]
)
def test_antithetic_and_beta2_are_validated_naming_the_field(options):
    with pytest.raises(ValueError, match=r"antithetic|adam_beta2"):
        FitConfig(**{"method": "bbb", **options})
    with pytest.raises(ValueError, match="antithetic"):
        FitConfig(method="svi", antithetic=True, learn_noise=True)


@pytest.mark.parametrize("guide", ["normal", "mvn"])
def test_antithetic_svi_loss_and_gradients_are_unbiased_for_trace_elbo(guide):
    """Mean over many antithetic estimates == mean over many Trace_ELBO estimates, within Monte-Carlo error."""
    config = FitConfig(method="svi", guide=guide, batch_size=50, seed=10)
    method = make_method(DATA, MODEL, config)
    for _ in range(30):
        method.step()
    parameters = list(method.guide.parameters())
    subsample = method._subsample()

    def estimates(loss_fn):
        rows = []
        with method._pyro_context():
            for _ in range(300):
                loss = loss_fn(subsample)
                gradient = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, parameters)])
                rows.append(torch.cat([loss.detach().reshape(1), gradient]).numpy())
        return np.array(rows)

    antithetic, trace_elbo = estimates(method.direct_loss), estimates(method.trace_elbo_loss)
    standard_error = np.sqrt(antithetic.var(axis=0) / 300 + trace_elbo.var(axis=0) / 300)
    assert np.all(np.abs(antithetic.mean(axis=0) - trace_elbo.mean(axis=0)) <= 5 * standard_error + 1e-9)
    assert antithetic[:, 0].var() < trace_elbo[:, 0].var()  # the point of pairing the draws


TWO_POINTS = generate(DataConfig(n=2, seed=11))
FAR_X = generate(DataConfig(n=200, x_min=1000.0, x_max=1001.0, seed=12))
TINY_PRIOR = Model(prior=GaussianPrior(slope_mean=1.0, slope_sd=1e-3, intercept_sd=1e-3))
HUGE_PRIOR = Model(prior=GaussianPrior(slope_sd=1e6, intercept_sd=1e6))
STEPS_IN_CALLS_CASES = [
    (DATA, MODEL, FitConfig(method="bbb", seed=1)),
    (DATA, MODEL, FitConfig(method="bbb", batch_size=30, seed=2)),  # a new pass every 3 steps, inside calls
    (DATA, MODEL, FitConfig(method="bbb", batch_size=30, samples=6, seed=3)),  # 6 numbers a step: drawn one by one
    (DATA, MODEL, FitConfig(method="bbb", samples=1, seed=4)),
    (DATA, MODEL, FitConfig(method="bbb", samples=3, lr_decay=0.3, seed=5)),
    (DATA, MODEL, FitConfig(method="bbb", optimizer="sgd", lr=1e-5, average=True, seed=6)),
    (DATA, MODEL, FitConfig(method="bbb", centre_x=True, seed=7)),  # correlated prior over z
    (LARGE, MODEL, FitConfig(method="bbb", batch_size=1000, seed=8)),
    (TWO_POINTS, MODEL, FitConfig(method="bbb", seed=9)),
    (FAR_X, MODEL, FitConfig(method="bbb", lr=0.01, seed=10)),
    (DATA, TINY_PRIOR, FitConfig(method="bbb", seed=11)),
    (DATA, HUGE_PRIOR, FitConfig(method="bbb", batch_size=20, seed=12)),
]
STEPS_IN_CALLS_IDS = [
    "full",
    "minibatch-antithetic",
    "minibatch-six-samples",
    "one-sample",
    "odd-samples-lr-decay",
    "sgd-averaged",
    "centred",
    "n20000-minibatch",
    "n2",
    "x-far-from-0",
    "tiny-prior",
    "huge-prior",
]


def steps_in_calls(method, steps: int, call_sizes) -> list[float]:
    """`steps` steps through take_steps, in calls of the given sizes (cycled)."""
    losses: list[float] = []
    sizes = iter(call_sizes * steps)
    while len(losses) < steps:
        losses += method.take_steps(min(next(sizes), steps - len(losses)))
    return losses


@pytest.mark.parametrize(("dataset", "model", "config"), STEPS_IN_CALLS_CASES, ids=STEPS_IN_CALLS_IDS)
def test_several_steps_per_call_equal_single_steps(dataset, model, config):
    """take_steps on floats gives `step`'s trajectory: the same draws and batches (the generator and the pass end in
    the same state), losses and q equal to rounding."""
    single, grouped = make_method(dataset, model, config), make_method(dataset, model, config)
    assert grouped.steps_on_floats
    single_losses = [single.step() for _ in range(240)]
    grouped_losses = steps_in_calls(grouped, 240, [1, 5, 7, 64, 13])
    # The loss is (quadratic + y^T y) s^-2 / 2 + KL: the same sums grouped differently round differently by about
    # 1e-16 of y^T y s^-2, which is up to 1e-11 of the loss on these data; 1e-9 leaves room and catches any real
    # difference (a wrong draw or batch changes the loss in its third digit).
    np.testing.assert_allclose(grouped_losses, single_losses, rtol=1e-9)
    mine, theirs = grouped.posterior(), single.posterior()
    np.testing.assert_allclose(mine.mean, theirs.mean, rtol=1e-9)
    np.testing.assert_allclose(mine.cov, theirs.cov, rtol=1e-9, atol=1e-12 * np.abs(theirs.cov).max())
    assert torch.equal(grouped.generator.get_state(), single.generator.get_state())
    assert grouped.data.batches_into_pass == single.data.batches_into_pass
    assert torch.equal(grouped.data.order, single.data.order)


@pytest.mark.parametrize(("dataset", "model", "config"), STEPS_IN_CALLS_CASES[:3], ids=STEPS_IN_CALLS_IDS[:3])
def test_grouping_steps_into_calls_does_not_change_a_single_bit(dataset, model, config):
    """A fit's trajectory does not depend on how its steps are grouped into calls (snapshot cadence, pauses)."""
    results = []
    for call_sizes in ([1], [5], [64], [3, 17, 1, 40]):
        method = make_method(dataset, model, config)
        losses = steps_in_calls(method, 300, call_sizes)
        results.append((losses, method.posterior().mean, method.posterior().cov))
    for losses, mean, cov in results[1:]:
        assert losses == results[0][0]
        np.testing.assert_array_equal(mean, results[0][1])
        np.testing.assert_array_equal(cov, results[0][2])


def test_steps_per_call_stop_at_the_first_non_finite_loss_where_single_steps_do():
    config = FitConfig(method="bbb", optimizer="sgd", lr=1e-3, seed=5)  # SGD at this lr diverges within 100 steps
    single, grouped = make_method(DATA, MODEL, config), make_method(DATA, MODEL, config)
    single_losses = []
    while not single_losses or np.isfinite(single_losses[-1]):
        single_losses.append(single.step())
    grouped_losses: list[float] = []
    while not grouped_losses or np.isfinite(grouped_losses[-1]):
        grouped_losses += grouped.take_steps(64)
    assert len(grouped_losses) == len(single_losses) < 100
    np.testing.assert_allclose(grouped_losses[:-1], single_losses[:-1], rtol=1e-9)


def test_other_paths_take_one_step_per_call():
    straightforward = make_method(DATA, MODEL, FitConfig(method="bbb", local_reparam=True, seed=1))
    assert not straightforward.steps_on_floats
    assert len(straightforward.take_steps(10)) == 1
