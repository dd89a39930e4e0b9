"""Text alternatives of the charts: the numbers they read out match a posterior computed here, by normal equations."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from bayesdemo.charts.chart_text import (
    text_data,
    text_loss,
    text_mean,
    text_parameter_space,
    text_sd,
    text_sequential,
)
from bayesdemo.core.data import DataConfig, Dataset, generate
from bayesdemo.core.exact import Gaussian, exact_posterior
from bayesdemo.core.priors import GaussianPrior, Model
from bayesdemo.fitting.runner import Snapshot
from bayesdemo.methods import FitConfig

# Printed to 4 significant figures: a printed number is within 5e-4 of the value, relative.
PRINTED = 5e-4
NOISE_LABEL, BBB_LABEL = FitConfig(method="noise").label, FitConfig(method="bbb").label

CASES = {
    "tutorial data": (generate(DataConfig(n=50, seed=1)), Model()),
    "n = 2": (Dataset(np.array([0.0, 1.0]), np.array([1.0, 4.2])), Model()),
    "x far from 0": (generate(DataConfig(n=30, x_min=1000.0, x_max=1001.0, seed=2)), Model()),
    "tiny prior": (generate(DataConfig(n=20, seed=3)), Model(GaussianPrior(slope_sd=1e-3, intercept_sd=1e-3))),
    "huge prior": (generate(DataConfig(n=20, seed=4)), Model(GaussianPrior(slope_sd=1e5, intercept_sd=1e5))),
}


def reference(dataset: Dataset, model: Model) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean (2,) and covariance (2, 2) by the normal equations with a zero-mean prior (PRML 3.53-3.54)."""
    design = np.column_stack([dataset.x, np.ones(dataset.n)])
    prior = model.prior
    assert isinstance(prior, GaussianPrior)
    prior_precision = np.diag(np.array([prior.slope_sd**-2, prior.intercept_sd**-2]))
    precision = prior_precision + design.T @ design / model.noise_sd**2
    covariance = np.linalg.inv(precision)
    return covariance @ design.T @ dataset.y / model.noise_sd**2, covariance


def numbers(text: str) -> list[float]:
    """Every number in `text` ('−' read as minus, thousands separators dropped)."""
    found = re.findall(r"[−-]?\d[\d,]*\.?\d*(?:e[−+-]?\d+)?", text)
    return [float(n.replace("−", "-").replace(",", "")) for n in found]


def printed(text: str, value: float) -> bool:
    """Whether `text` prints `value` to 4 significant figures."""
    return any(math.isclose(n, value, rel_tol=PRINTED, abs_tol=1e-300) for n in numbers(text))


def snapshots(mean, sd, loss: float = 1.0) -> list[Snapshot]:
    """A fit's snapshots ending at N(mean, diag(sd^2)) at step 1,500."""
    return [
        Snapshot.of(0, 0.0, math.nan, Gaussian.diagonal([0.0, 0.0], [1.0, 1.0])),
        Snapshot.of(1500, 0.0, loss, Gaussian.diagonal(mean, sd)),
    ]


@pytest.mark.parametrize("case", list(CASES))
def test_mean_and_sd_texts_read_the_exact_and_mean_field_numbers_and_each_fit(case):
    dataset, model = CASES[case]
    exact = exact_posterior(dataset, model)
    mean, covariance = reference(dataset, model)
    sd = np.sqrt(np.diag(covariance))
    mean_field_sd = 1.0 / np.sqrt(np.diag(np.linalg.inv(covariance)))  # 1 / sqrt(precision_ii) (PRML 10.12-10.13)
    fit_mean, fit_sd = mean + 0.5 * sd, 0.8 * sd
    fits = [(BBB_LABEL, snapshots(fit_mean, fit_sd))]
    for parameter in (0, 1):
        text = text_mean(fits, exact, parameter)
        assert printed(text.summary, mean[parameter]) and printed(text.summary, mean[parameter] + sd[parameter])
        assert printed(text.summary, fit_mean[parameter]) and "0.5 exact sds off" in text.summary
        assert "1,500" in text.summary and BBB_LABEL in text.summary
        text = text_sd(fits, exact, parameter)
        assert printed(text.summary, sd[parameter]) and printed(text.summary, mean_field_sd[parameter])
        assert printed(text.summary, fit_sd[parameter]) and "0.8 times the exact sd" in text.summary
        assert text.table["Fit"] == [BBB_LABEL] and text.table["Sd ÷ exact sd"] == ["0.8"]


def test_loss_text_sets_an_elbo_against_minus_log_evidence_and_an_mse_against_the_noise_variance():
    dataset, model = CASES["tutorial data"]
    exact = exact_posterior(dataset, model)
    # -log p(y) by the Gaussian marginal y ~ N(0, s^2 I + X S0 X^T) (PRML 3.86), computed here.
    design = np.column_stack([dataset.x, np.ones(dataset.n)])
    marginal = model.noise_sd**2 * np.eye(dataset.n) + design @ np.diag([100.0, 100.0]) @ design.T
    _, log_det = np.linalg.slogdet(2 * np.pi * marginal)
    floor = 0.5 * log_det + 0.5 * dataset.y @ np.linalg.solve(marginal, dataset.y)
    fits = [
        (BBB_LABEL, snapshots(exact.mean, exact.sd, loss=floor + 1.25)),
        (NOISE_LABEL, snapshots(exact.mean, [0.8, 0.7], 0.0123)),
    ]
    text = text_loss(fits, exact)
    assert printed(text.summary, floor) and "1.25 above −log p(y)" in text.summary
    assert f"{NOISE_LABEL}: MSE 0.0123 (not an ELBO)" in text.summary and printed(text.summary, model.noise_sd**2)


def test_parameter_space_and_sequential_texts_read_the_correlation():
    dataset, model = CASES["x far from 0"]
    exact = exact_posterior(dataset, model)
    _, covariance = reference(dataset, model)
    correlation = covariance[0, 1] / math.sqrt(covariance[0, 0] * covariance[1, 1])  # near -1 far from x = 0
    text = text_parameter_space(exact.posterior, exact.mean_field, [(BBB_LABEL, exact.mean_field)])
    assert f"correlation {correlation:.2g}" in text.summary and "correlation 0" in text.summary
    assert text.table[""] == ["exact posterior", "mean-field optimum", BBB_LABEL]
    text = text_sequential(exact.posterior, 30, 30, vi=exact.mean_field)
    assert text.summary.startswith("After 30 of 30 points") and "Bayes by Backprop on the same points" in text.summary


def test_every_text_ends_its_sentences_and_says_when_no_fit_has_run():
    dataset, model = CASES["n = 2"]
    exact = exact_posterior(dataset, model)
    texts = [
        text_mean([], exact, 0),
        text_sd([], exact, 1),
        text_loss([], exact),
        text_data(dataset, exact, []),
        text_parameter_space(exact.posterior, exact.mean_field),
        text_sequential(exact.posterior, 0, 2),
    ]
    for text in texts:
        assert text.summary.endswith(".") and "nan" not in text.summary
        assert len({len(column) for column in text.table.values()}) == 1
    assert all("No fit has run yet." in text.summary for text in texts[:3])
    line = text_data(dataset, exact, [(BBB_LABEL, exact.posterior)])
    assert line.summary.count("y = ") == 2 and "2 points" in line.summary
    with pytest.raises(ValueError, match="parameter"):
        text_mean([], exact, 2)
