"""Explain text: the numbers it states are parsed back and checked against independent computations."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import Gaussian, exact_posterior
from bayesdemo.core.priors import Model
from bayesdemo.core.scenario import Scenario
from bayesdemo.fitting.runner import RunConfig, Snapshot, run_to_end
from bayesdemo.methods import FitConfig, make_method
from bayesdemo.teaching.explain import elbo_section, fmt, loss_sampling_sd, sections, time_constant

NUMBER = r"(-?[\d,]*\.?\d+(?:e[-+]\d+)?)"


def number_after(text: str, phrase: str) -> float:
    """The number that follows `phrase` in `text` (thousands separators allowed)."""
    match = re.search(re.escape(phrase) + r"\s*" + NUMBER, text)
    assert match, f"{phrase!r} not followed by a number in the text"
    return float(match.group(1).replace(",", ""))


@pytest.fixture(scope="module")
def setting():
    scenario = Scenario(
        data=DataConfig(n=50, seed=4), fit=FitConfig(method="noise", lr=2e-4, steps=30_000), snapshot_every=10
    )
    dataset = generate(scenario.data)
    exact = exact_posterior(dataset, scenario.model)
    config = dataclasses.replace(scenario.fit, steps=200)
    run = run_to_end(make_method(dataset, scenario.model, config), 200, RunConfig(snapshot_every=50))
    correlated = Snapshot.of(150, 1.0, 0.0, Gaussian(exact.mean, exact.posterior.cov * 1.5))
    factorised = Snapshot.of(150, 1.0, 0.0, Gaussian.diagonal(exact.mean, exact.mean_field_sd * 1.2))
    latest = {
        config.label: run.last,
        "Pyro SVI, full covariance (AutoMultivariateNormal)": correlated,
        "Bayes by Backprop": factorised,
    }
    return scenario, dataset, exact, latest


def text_of(items) -> str:
    return "\n".join(text for kind, text in items if kind == "markdown")


def test_sections_are_markdown_or_latex(setting):
    scenario, dataset, exact, latest = setting
    items = sections(exact, dataset, scenario, latest)
    assert items and all(kind in ("markdown", "latex") and text.strip() for kind, text in items)
    assert sum(kind == "latex" for kind, _ in items) >= 5


def test_posterior_numbers_match_a_direct_solve(setting):
    scenario, dataset, exact, latest = setting
    text = text_of(sections(exact, dataset, scenario, latest))
    design = np.column_stack([dataset.x, np.ones_like(dataset.x)])
    s2 = scenario.data.noise_sd**2
    precision = np.diag(1.0 / scenario.prior.sd**2) + design.T @ design / s2
    mean = np.linalg.solve(
        precision, np.diag(1.0 / scenario.prior.sd**2) @ scenario.prior.mean + design.T @ dataset.y / s2
    )
    cov = np.linalg.inv(precision)
    assert number_after(text, "slope =") == pytest.approx(mean[0], rel=1e-3)
    assert number_after(text, "intercept =") == pytest.approx(mean[1], rel=1e-3)
    assert number_after(text, "±") == pytest.approx(math.sqrt(cov[0, 0]), rel=5e-3)
    assert number_after(text, "ρ =") == pytest.approx(cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1]), rel=5e-3)


def test_elbo_numbers(setting):
    scenario, dataset, exact, latest = setting
    text = text_of(sections(exact, dataset, scenario, latest))
    assert number_after(text, "log p(y) =") == pytest.approx(exact.log_evidence, rel=1e-4)
    assert number_after(text, "ln(1 − ρ²) =") == pytest.approx(-0.5 * math.log(1 - exact.corr**2), rel=5e-3)
    # A q with 1.5 times the exact covariance and the exact mean: KL = (p (1.5 - 1) - p ln 1.5) / 2, p = 2.
    expected = 0.5 * (2 * 0.5 - 2 * math.log(1.5))
    assert number_after(text, "full covariance (AutoMultivariateNormal): KL(q ‖ exact) =") == pytest.approx(
        expected, rel=5e-3
    )


def test_noise_injection_numbers_match_the_sgd_recursion(setting):
    scenario, dataset, exact, latest = setting
    text = text_of(sections(exact, dataset, scenario, latest))
    mean_x_squared = float(np.mean(dataset.x**2))
    lr = scenario.fit.lr
    assert number_after(text, "mean(x²) =") == pytest.approx(mean_x_squared, rel=5e-3)
    assert number_after(text, "lr =") == pytest.approx(lr)
    assert number_after(text, "1/(2·lr·mean(x²)) =") == pytest.approx(1 / (2 * lr * mean_x_squared), abs=1)
    # Iterate the averaged SGD update of the slope sd, sd <- sd (1 - 2 lr E[x^2]), from 1 until it passes the exact sd.
    sd, step = 1.0, 0
    while sd >= exact.sd[0]:
        sd *= 1 - 2 * lr * mean_x_squared
        step += 1
    assert number_after(text, "ln(1 − 2·lr·mean(x²)) ≈") == pytest.approx(step, abs=1)
    final = (1 - 2 * lr * mean_x_squared) ** scenario.fit.steps
    assert number_after(text, "the formula gives σ_w ≈") == pytest.approx(final, rel=5e-3)
    assert ("stops before the crossing" in text) == (step > scenario.fit.steps)


def test_noise_injection_reports_the_current_fit(setting):
    scenario, dataset, exact, latest = setting
    text = text_of(sections(exact, dataset, scenario, latest))
    snapshot = latest[FitConfig(method="noise").label]
    now = text[text.index("Now (") :]
    assert number_after(now, "step") == snapshot.step
    assert number_after(now, "slope sd σ_w =") == pytest.approx(snapshot.sd[0], rel=5e-3)
    assert number_after(now, "intercept sd σ_b =") == pytest.approx(snapshot.sd[1], rel=5e-3)
    assert number_after(now, "(") == pytest.approx(snapshot.sd[0] / exact.sd[0], rel=5e-3)


def test_one_notation_throughout_w_is_the_slope_and_b_the_intercept(setting):
    scenario, dataset, exact, latest = setting
    parts = sections(exact, dataset, scenario, latest)
    text = text_of(parts)
    formulas = " ".join(part for kind, part in parts if kind == "latex")
    assert "slope w ~ N(" in text and "intercept b ~ N(" in text, "the notation is stated once, in the model"
    # The slope is what multiplies x: every formula's mean or sd next to x is w's, never b's.
    beside_x = re.findall(r"\\(?:mu|sigma)_(\w)(?:\^2)? x", formulas)
    assert beside_x and set(beside_x) == {"w"}, beside_x
    assert "w\\,x_i + b" in formulas
    assert not re.search(r"\b[ab]_\{?sd", text + formulas), "no second notation (the forum's a, b)"
    assert "(synthetic, seed 4)" in text and "(synthetic (" not in text


def test_time_constant_scales_with_the_learning_rate(setting):
    scenario, dataset, exact, _ = setting
    slower = dataclasses.replace(scenario, fit=dataclasses.replace(scenario.fit, lr=scenario.fit.lr / 10))
    fast = number_after(text_of(sections(exact, dataset, scenario, {})), "1/(2·lr·mean(x²)) =")
    slow = number_after(text_of(sections(exact, dataset, slower, {})), "1/(2·lr·mean(x²)) =")
    assert slow / fast == pytest.approx(10, rel=1e-3)


def test_too_large_a_learning_rate_is_called_out(setting):
    scenario, dataset, exact, _ = setting
    wild = dataclasses.replace(scenario, fit=dataclasses.replace(scenario.fit, lr=5.0))
    text = text_of(sections(exact, dataset, wild, {}))
    assert "overshoots" in text and "keeps falling" not in text


def test_mean_field_ratio_and_current_factorised_fits(setting):
    scenario, dataset, exact, latest = setting
    text = text_of(sections(exact, dataset, scenario, latest))
    precision = np.linalg.inv(exact.posterior.cov)
    ratio = (1 / math.sqrt(precision[0, 0])) / math.sqrt(exact.posterior.cov[0, 0])
    assert number_after(text, "√(1 − ρ²) =") == pytest.approx(ratio, rel=5e-3)
    assert number_after(text, "settle at slope sd") == pytest.approx(1 / math.sqrt(precision[0, 0]), rel=5e-3)
    line = text[text.index("- Bayes by Backprop: slope sd") :]
    assert number_after(line, "slope sd / exact sd =") == pytest.approx(1.2 * ratio, rel=5e-3)
    assert "AutoMultivariateNormal): slope sd" not in text  # a correlated q is not listed as factorised


@pytest.mark.parametrize("value", [0.0123456, 3.14159, -78.6912, 43457.54, 1.5e-7, 2.0])
def test_fmt_keeps_three_significant_figures(value):
    assert float(fmt(value).replace(",", "")) == pytest.approx(value, rel=5e-3)


README = Path(__file__).resolve().parents[1] / "README.md"


def loss_draws(dataset, model, q, samples: int, repeats: int, **options) -> np.ndarray:
    """`repeats` draws of Bayes by Backprop's own full-batch loss at q (no step taken)."""
    method = make_method(dataset, model, FitConfig(method="bbb", samples=samples, seed=11, **options))
    method.set_posterior(q)
    with torch.no_grad():
        return np.array([float(method.loss()) for _ in range(repeats)])


@pytest.mark.parametrize(("n", "x_min", "samples"), [(100, 0.0, 16), (100, 0.0, 1), (2, 0.0, 4), (50, 1e4, 16)])
def test_the_loss_scatter_matches_draws_of_the_fits_own_loss(n, x_min, samples):
    dataset = generate(DataConfig(n=n, x_min=x_min, x_max=x_min + 1.0, seed=2))
    model = Model()
    exact = exact_posterior(dataset, model)
    for q in (exact.mean_field, Gaussian(exact.mean + exact.sd, exact.posterior.cov * 2.0)):
        if q.cov[0, 1] != 0.0:
            continue  # Bayes by Backprop's q is factorised
        draws = loss_draws(dataset, model, q, samples, 3000)
        # An sd from 3,000 draws of a near-chi-square variable has a relative standard error below 3%; 12% is 4.
        assert loss_sampling_sd(exact, q, samples) == pytest.approx(draws.std(ddof=1), rel=0.12)
        # Averaged over draws the loss above the floor is the KL: mean within 4 standard errors.
        gap = draws.mean() + exact.log_evidence
        assert gap == pytest.approx(exact.kl_to_exact(q), abs=4 * draws.std(ddof=1) / math.sqrt(draws.size))
    shifted = Gaussian.diagonal(exact.mean + exact.sd, 1.5 * exact.mean_field_sd)
    draws = loss_draws(dataset, model, shifted, samples, 3000)
    assert loss_sampling_sd(exact, shifted, samples) == pytest.approx(draws.std(ddof=1), rel=0.12)


def test_elbo_text_says_the_gap_is_the_kl_on_average_and_states_the_scatter():
    dataset = generate(DataConfig())
    model = Model()
    exact = exact_posterior(dataset, model)
    text = text_of(elbo_section(exact, {}, samples=16))
    assert "is its KL to the exact posterior on average" in text
    draws = loss_draws(dataset, model, exact.mean_field, 16, 3000)
    # The stated scatter (2 significant figures) against 3,000 draws of the fit's own loss at the optimum: 12%.
    assert number_after(text, "varies by ±") == pytest.approx(draws.std(ddof=1), rel=0.12)
    assert number_after(text, "around the KL of") == pytest.approx(-0.5 * math.log(1 - exact.corr**2), rel=5e-3)
    assert "dip below the floor" in text


def test_readme_e_fold_time_is_the_tutorial_datas_own():
    text = " ".join(README.read_text(encoding="utf-8").split())
    match = re.search(
        r"([\d,]+) steps per e-fold at lr 1e-4 on the Pyro tutorial's data \(mean of x\^2 = ([\d.]+)\)", text
    )
    assert match, "README's noise-injection sentence is missing or reworded"
    tutorial = generate(DataConfig())  # the Pyro tutorial's setting: 100 points, x ~ U(0, 1)
    mean_x_squared = float(np.mean(tutorial.x**2))
    assert float(match.group(2)) == pytest.approx(mean_x_squared, abs=5e-5)
    # Iterate the averaged SGD factor until the slope sd has shrunk by e: the e-fold step, independent of time_constant.
    factor, sd, step = 1 - 2 * 1e-4 * mean_x_squared, 1.0, 0
    while sd > math.exp(-1):
        sd *= factor
        step += 1
    assert float(match.group(1).replace(",", "")) == pytest.approx(step, abs=1)
    assert time_constant(1e-4, mean_x_squared) == pytest.approx(step, abs=1)
