"""docs/MATH.md's numbers, recomputed from its own formulas in numpy, and found in the document as written.

Each test derives a quoted number independently of the engine (numpy and the standard library, from the formulas
the document gives), rounds it the way the document writes it, and asserts that exact text is in the document: the
test fails when either the mathematics or the text drifts. Where the document says what the code computes, the
engine's value is also compared with the independent one. Rounding is the tolerance of a quoted value: the text must
be the value rounded to the digits shown (half a unit in the last digit); "about" values state their own rounding.
"""

from __future__ import annotations

import inspect
import math
import re
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MATH_DOC = ROOT / "docs" / "MATH.md"
TUTORIAL_N, TUTORIAL_SLOPE, TUTORIAL_INTERCEPT, TUTORIAL_NOISE_SD, TUTORIAL_PRIOR_SD = 100, 3.0, 1.0, 0.1, 10.0
FORUM_LR = 1e-4  # the forum question's SGD learning rate, as the document states it (checked against the code below)


def doc_text() -> str:
    """docs/MATH.md with every run of whitespace made one space, so that a phrase may wrap across lines."""
    return " ".join(MATH_DOC.read_text(encoding="utf-8").split())


def assert_written(phrase: str) -> None:
    """The phrase appears in docs/MATH.md exactly (up to line wrapping)."""
    assert phrase in doc_text(), f"docs/MATH.md should say {phrase!r}"


def thousands(value: float) -> str:
    """An integer with thousands separators, as the document writes step counts."""
    return f"{round(value):,}"


def tutorial_draw(n: int = TUTORIAL_N) -> tuple[np.ndarray, np.ndarray]:
    """The Pyro tutorial setting drawn as the document says: default_rng(0), n x from U(0, 1), then n noise values."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, size=n)
    y = TUTORIAL_SLOPE * x + TUTORIAL_INTERCEPT + rng.normal(0.0, TUTORIAL_NOISE_SD, size=n)
    return x, y


def conjugate(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Phi (n, 2), L (2, 2), S_N (2, 2), m_N (2,) under the tutorial's N(0, 10^2) prior, by the textbook formulas."""
    phi = np.column_stack([x, np.ones_like(x)])
    precision = np.eye(2) / TUTORIAL_PRIOR_SD**2 + phi.T @ phi / TUTORIAL_NOISE_SD**2
    cov = np.linalg.inv(precision)
    mean = cov @ (phi.T @ y) / TUTORIAL_NOISE_SD**2
    return phi, precision, cov, mean


def correlation(cov: np.ndarray) -> float:
    """rho of a 2 x 2 covariance."""
    return float(cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1]))


def mean_field_coverage(level: float, ratio: float) -> float:
    """2 Phi(z ratio) - 1 with z the central `level` interval's half-width."""
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    return 2.0 * NormalDist().cdf(z * ratio) - 1.0


def test_the_tutorial_data_are_the_draw_the_document_describes():
    from bayesdemo.core.data import generate
    from bayesdemo.core.priors import GaussianPrior
    from bayesdemo.core.scenario import TUTORIAL_DATA

    x, y = tutorial_draw()
    data = generate(TUTORIAL_DATA)
    np.testing.assert_array_equal(data.x, x)  # the same generator calls: bit for bit
    np.testing.assert_array_equal(data.y, y)
    prior = GaussianPrior()
    assert (prior.slope_mean, prior.slope_sd, prior.intercept_mean, prior.intercept_sd) == (0, 10, 0, 10)
    assert_written("100 points, `x ~ U(0, 1)`, slope 3, intercept 1, noise sd 0.1, a `N(0, 10^2)` prior")
    assert_written("simulated by `data.generate` with seed 0")


def test_mean_field_ratio_correlation_and_kl_on_the_tutorial_data():
    from bayesdemo.core.data import Dataset
    from bayesdemo.core.exact import exact_posterior
    from bayesdemo.core.priors import Model

    x, y = tutorial_draw()
    _, precision, cov, _ = conjugate(x, y)
    rho = correlation(cov)
    ratio = math.sqrt(1.0 - rho**2)
    # 1 / sqrt(L_jj) over sqrt(S_N[j, j]) is sqrt(1 - rho^2) for both parameters (2-D identity, to rounding).
    np.testing.assert_allclose(1.0 / np.sqrt(np.diag(precision)) / np.sqrt(np.diag(cov)), ratio, rtol=1e-12)
    kl = -0.5 * math.log(1.0 - rho**2)
    assert_written(f"`rho = {rho:.4f}`, the ratio is {ratio:.4f} and the KL {kl:.3f}")
    # The wide-prior approximation -mean(x) / sqrt(mean(x^2)) agrees to the 4 digits quoted.
    assert f"{-x.mean() / math.sqrt(np.mean(x**2)):.4f}" == f"{rho:.4f}"
    # Large n, x ~ U(0, 1): E x = 1/2, E x^2 = 1/3.
    limit = -0.5 / math.sqrt(1.0 / 3.0)
    limit_ratio = math.sqrt(1 - limit**2)
    assert_written(f"`-0.5 / sqrt(1/3) = {limit:.2f}`, and the ratio is `sqrt(1 - 0.75) = {limit_ratio:.1f}`")
    # The engine computes the same (QR of centred statistics against the textbook inverse: float64 rounding only).
    exact = exact_posterior(Dataset(x, y, source="tutorial"), Model())
    assert exact.corr == pytest.approx(rho, abs=1e-10)
    np.testing.assert_allclose(exact.mean_field_sd / exact.sd, ratio, rtol=1e-10)


def test_mean_field_coverage_on_the_tutorial_data_and_for_large_n():
    from bayesdemo.references.calibration import expected_mean_field_coverage

    x, y = tutorial_draw()
    rho = correlation(conjugate(x, y)[2])
    ratio = math.sqrt(1.0 - rho**2)
    fifty, ninety = mean_field_coverage(0.5, ratio), mean_field_coverage(0.9, ratio)
    assert_written(f"(`rho = {rho:.3f}`) that is {fifty:.2f} at the 50% level and {ninety:.2f} at the 90% level")
    limit_ratio = math.sqrt(1.0 - 0.75)  # rho^2 -> (1/4) / (1/3) for x ~ U(0, 1)
    limit = [mean_field_coverage(level, limit_ratio) for level in (0.5, 0.9)]
    assert_written(f"it tends to {limit[0]:.2f} and {limit[1]:.2f}")
    # A Monte-Carlo check of the formula: theta - m_N ~ N(0, S_N), interval m_N +- z sd_MF. 200,000 draws give a
    # binomial se of at most 0.0011; 0.005 is over 4 of those.
    cov = conjugate(x, y)[2]
    draws = np.random.default_rng(1).multivariate_normal(np.zeros(2), cov, size=200_000)
    half_width = NormalDist().inv_cdf(0.95) * ratio * np.sqrt(np.diag(cov))
    assert np.mean(np.abs(draws) <= half_width, axis=0) == pytest.approx([ninety, ninety], abs=0.005)
    # The engine's formula gives the same (no randomness: float64 rounding).
    assert float(expected_mean_field_coverage(0.9, ratio)[0]) == pytest.approx(ninety, abs=1e-12)


def test_noise_injection_time_constants_and_crossing_on_the_tutorial_data():
    x, y = tutorial_draw()
    mean_x_squared = float(np.mean(x**2))
    tau = 1.0 / (2.0 * FORUM_LR * mean_x_squared)
    assert_written(f"`mean(x^2) = {mean_x_squared:.4f}`, so at lr 1e-4 `tau = {thousands(tau)}` steps")
    assert_written(f"`mean(x^2)` is 1/3 on average, and `tau = {thousands(1.0 / (2.0 * FORUM_LR / 3.0))}`")
    assert_written(f"`tau = 1 / (2 lr) = {thousands(1.0 / (2.0 * FORUM_LR))}` steps")
    exact_slope_sd = math.sqrt(conjugate(x, y)[2][0, 0])
    assert_written(f"exact slope sd ({exact_slope_sd:.4f})")
    factor = 1.0 - 2.0 * FORUM_LR * mean_x_squared
    crossing = math.log(float(f"{exact_slope_sd:.4f}")) / math.log(factor)
    # "about 43,000": the crossing rounded to the nearest thousand.
    assert_written(f"`ln({exact_slope_sd:.4f}) / ln(1 - 2 lr mean(x^2))`, about {thousands(round(crossing, -3))}")
    assert_written(f"and is {factor**60_000:.3f} after 60,000 steps")
    # The expected update E[b_sd]_(t+1) = (1 - 2 lr mean(x^2)) E[b_sd]_t: the mean over the draws of one point's
    # gradient 2 (y_hat - y) eps1 x is 2 b_sd x^2. 400,000 draws: se about 0.3% of the value; 2% is over 6 se.
    rng = np.random.default_rng(2)
    b_sd, point = 0.7, 0.8
    eps = rng.standard_normal((4, 400_000))
    sigma = 0.3 * np.abs(eps[2]) + 0.4  # |sig| |eps3| + sig_mean
    y_hat = np.abs(sigma) * eps[3] + (b_sd * eps[0] + 2.0) * point + (0.2 * eps[1] + 0.5)
    gradient = 2.0 * (y_hat - 1.9) * eps[0] * point
    assert gradient.mean() == pytest.approx(2.0 * b_sd * point**2, rel=0.02)


def test_one_steps_loss_scatter_at_the_mean_field_optimum():
    x, y = tutorial_draw()
    phi, precision, cov, mean = conjugate(x, y)
    root = np.diag(1.0 / np.sqrt(np.diag(precision)))  # B with B B^T = the mean-field covariance
    errors = phi @ mean - y
    gram = phi.T @ phi
    s4 = TUTORIAL_NOISE_SD**4
    one_draw = (np.sum((root.T @ phi.T @ errors) ** 2) + 0.5 * np.sum((root.T @ gram @ root) ** 2)) / s4
    loss_sd = math.sqrt(one_draw / 16)
    kl = -0.5 * math.log(1.0 - correlation(cov) ** 2)
    assert_written(f"with 16 draws that sd is {loss_sd:.2f} nats, around a mean gap of {kl:.2f}")
    # The variance formula against draws of ||y - Phi theta||^2 / (2 s^2): 200,000 single draws estimate the
    # variance to about 0.5% (its kurtosis is near 3); 3% is 6 se.
    eps = np.random.default_rng(3).standard_normal((200_000, 2))
    theta = mean + eps @ root.T
    residuals = y[None, :] - theta @ phi.T
    losses = np.sum(residuals**2, axis=1) / (2.0 * TUTORIAL_NOISE_SD**2)
    assert np.var(losses) == pytest.approx(one_draw, rel=0.03)


def test_centred_coordinates_on_the_tutorial_data():
    from bayesdemo.core.data import Dataset
    from bayesdemo.core.exact import exact_posterior
    from bayesdemo.core.priors import Model
    from bayesdemo.fitting.metrics import centred_mean_field_sd

    x, y = tutorial_draw()
    _, precision, cov, _ = conjugate(x, y)
    centring = np.array([[1.0, 0.0], [-x.mean(), 1.0]])
    centred_precision = centring.T @ precision @ centring
    centred_corr = -centred_precision[0, 1] / math.sqrt(centred_precision[0, 0] * centred_precision[1, 1])
    assert f"{abs(centred_corr):.0e}".replace("e-0", "e-") == "2e-6"
    assert_written("the correlation in centred coordinates is 2e-6")
    mapped_back = np.sqrt(np.diag(centring @ np.diag(1.0 / np.diag(centred_precision)) @ centring.T))
    exact_sd = np.sqrt(np.diag(cov))
    assert [f"{value:.6g}" for value in mapped_back] == [f"{value:.6g}" for value in exact_sd]
    assert_written("the mapped-back sds equal the exact ones to six digits")
    exact = exact_posterior(Dataset(x, y, source="tutorial"), Model())
    np.testing.assert_allclose(centred_mean_field_sd(exact), mapped_back, rtol=1e-9)
    # x near 1,001, slope 3, intercept 1: the intercept at mean x, and Adam's distance to it at lr 0.05.
    height = 3 * 1_001 + 1
    assert_written(
        f"3 * 1,001 + 1 = {thousands(height)}, would be {thousands(height)} / 0.05, about "
        f"{thousands(round(height / 0.05, -4))} steps of lr 0.05"
    )


def gradient_variances(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """The document's closed forms at the mean-field optimum, one full-data draw: weight-sampling and local
    variances of the mean and sd gradients, each (2,)."""
    phi, precision, _, mean = conjugate(x, y)
    sd = 1.0 / np.sqrt(np.diag(precision))
    s4 = TUTORIAL_NOISE_SD**4
    gram = phi.T @ phi
    errors = phi @ mean - y
    residual_gradient = phi.T @ errors
    weight_mean = (gram**2) @ sd**2 / s4
    weight_sd = (residual_gradient**2 + np.diag(gram) ** 2 * sd**2 + (gram**2) @ sd**2) / s4
    tau_squared = (phi**2) @ sd**2
    local_mean = (phi**2).T @ tau_squared / s4
    local_sd = ((phi**2 * sd / np.sqrt(tau_squared)[:, None]) ** 2).T @ (errors**2 + 2.0 * tau_squared) / s4
    return weight_mean, weight_sd, local_mean, local_sd


def test_local_reparameterisation_gains_on_the_tutorial_x():
    from bayesdemo.core.data import Dataset
    from bayesdemo.core.exact import Gaussian
    from bayesdemo.core.priors import Model
    from bayesdemo.references.gradients import gradient_variance

    gains = {}
    for n in (20, 100, 1_000):
        weight_mean, weight_sd, local_mean, local_sd = gradient_variances(*tutorial_draw(n))
        gains[n] = (weight_mean / local_mean, weight_sd / local_sd)
    mean_gain, sd_gain = gains[100]
    assert_written(
        f"the gain is {mean_gain[0]:.0f} for the slope and {mean_gain[1]:.0f} for the intercept; on the tutorial's x "
        f"it is {gains[20][0][0]:.1f} for the slope at n = 20 and {gains[1_000][0][0]:.0f} at n = 1,000"
    )
    # "about in proportion to n": gain / n within 5% across the 50-fold range of n.
    per_point = [gains[n][0][0] / n for n in gains]
    assert max(per_point) < 1.05 * min(per_point)
    assert_written(
        f"about {sd_gain.mean():.0f} ({sd_gain[0]:.1f} for the slope, {sd_gain[1]:.1f} for the intercept), for the "
        f"slope {gains[20][1][0]:.1f} at n = 20 and {gains[1_000][1][0]:.1f} at n = 1,000"
    )
    # Per-pair ratios (sum_i phi_ij phi_ik)^2 / sum_i phi_ij^2 phi_ik^2 over n for x ~ U(0, 1): (E x^2)^2 / E x^4 =
    # 5/9 and (E x)^2 / E x^2 = 3/4 in the limit. 10^6 draws fix each moment to about 0.1%; 1% is ample.
    many = np.random.default_rng(6).uniform(0.0, 1.0, size=1_000_000)
    per_pair = (np.sum(many**2) ** 2 / np.sum(many**4), np.sum(many) ** 2 / np.sum(many**2))
    np.testing.assert_allclose(np.array(per_pair) / many.size, [5 / 9, 3 / 4], rtol=0.01)
    assert_written("about `5n/9` (slope with slope), `3n/4` (slope with intercept) and `n` (intercept with intercept)")
    # The engine's closed forms are the document's (float64 rounding only).
    x, y = tutorial_draw()
    _, precision, _, mean = conjugate(x, y)
    q = Gaussian.diagonal(mean, 1.0 / np.sqrt(np.diag(precision)))
    data, model = Dataset(x, y, source="tutorial"), Model()
    weights, local = (gradient_variance(data, model, q, local_reparam=flag) for flag in (False, True))
    np.testing.assert_allclose(weights[0] / local[0], mean_gain, rtol=1e-9)
    np.testing.assert_allclose(weights[1] / local[1], sd_gain, rtol=1e-9)


def test_gradient_variance_formulas_against_draws():
    # n = 100 tutorial points at q = (m_N + 1 exact sd, 2 x the mean-field sd), where r is far from 0, so every term
    # of the formulas counts. A variance from 40,000 draws has relative se sqrt((kurtosis - 1) / 40,000): under 2% for
    # these products of Gaussians; 8% is over 4 se.
    x, y = tutorial_draw()
    phi, precision, cov, mean = conjugate(x, y)
    mu = mean + np.sqrt(np.diag(cov))
    sd = 2.0 / np.sqrt(np.diag(precision))
    s2 = TUTORIAL_NOISE_SD**2
    gram, errors = phi.T @ phi, phi @ mu - y
    draws = 40_000
    rng = np.random.default_rng(4)
    eps = rng.standard_normal((draws, 2))
    likelihood_gradient = ((mu + sd * eps) @ gram - phi.T @ y) / s2  # the prior's terms are constants
    weight_mean, weight_sd = likelihood_gradient.var(axis=0), (likelihood_gradient * eps).var(axis=0)
    tau = np.sqrt((phi**2) @ sd**2)
    eta = rng.standard_normal((draws, x.size))
    point_error = (errors + tau * eta) / s2  # d loss / d f_i
    local_mean = (point_error @ phi).var(axis=0)
    local_sd = ((point_error * eta) @ (phi**2 * sd / tau[:, None])).var(axis=0)
    s4 = TUTORIAL_NOISE_SD**4
    r = phi.T @ errors
    tau_squared = tau**2
    np.testing.assert_allclose(weight_mean, (gram**2) @ sd**2 / s4, rtol=0.08)
    np.testing.assert_allclose(weight_sd, (r**2 + np.diag(gram) ** 2 * sd**2 + (gram**2) @ sd**2) / s4, rtol=0.08)
    np.testing.assert_allclose(local_mean, (phi**2).T @ tau_squared / s4, rtol=0.08)
    expected_local_sd = ((phi**2 * sd / tau[:, None]) ** 2).T @ (errors**2 + 2.0 * tau_squared) / s4
    np.testing.assert_allclose(local_sd, expected_local_sd, rtol=0.08)


def test_mass_inside_the_sd_ellipses_of_a_2d_gaussian():
    inside = {r: 1.0 - math.exp(-(r**2) / 2.0) for r in (1, 2)}
    assert_written(f"{inside[1]:.0%} for r = 1 and {inside[2]:.0%} for r = 2")
    # Draws of a correlated 2-D Gaussian (the tutorial posterior's shape): 400,000 draws, binomial se under 0.08%.
    cov = np.array([[1.0, -0.8752], [-0.8752, 1.0]])
    draws = np.random.default_rng(5).multivariate_normal(np.zeros(2), cov, size=400_000)
    distance_squared = np.einsum("ij,jk,ik->i", draws, np.linalg.inv(cov), draws)
    for r, share in inside.items():
        assert np.mean(distance_squared <= r**2) == pytest.approx(share, abs=0.004)


def dense_log_evidence(x: np.ndarray, y: np.ndarray, noise_sd: float) -> float:
    """log N(y | 0, s^2 I + Phi S0 Phi^T) from the n x n covariance, S0 = 10^2 I."""
    phi = np.column_stack([x, np.ones_like(x)])
    cov = noise_sd**2 * np.eye(x.size) + TUTORIAL_PRIOR_SD**2 * phi @ phi.T
    _, log_det = np.linalg.slogdet(cov)
    return float(-0.5 * (x.size * math.log(2 * math.pi) + log_det + y @ np.linalg.solve(cov, y)))


@pytest.mark.parametrize("n", [3, 5])
def test_evidence_of_points_on_a_line_grows_like_a_power_of_one_over_s(n):
    # p(y | s) ~ s^-(n - 2) as s -> 0: the slope of log p(y | s) in log s between s = 1e-2 and 1e-3. The next term
    # is O(s^2 / (prior sd^2 sxx)), below 1e-5 here, and the n x n covariance's condition (1e8) costs about 1e-8 in
    # its log determinant: 1e-3 is ample.
    x = np.linspace(0.0, 1.0, n)
    y = 3.0 * x + 1.0
    slope = (dense_log_evidence(x, y, 1e-2) - dense_log_evidence(x, y, 1e-3)) / math.log(10.0)
    assert slope == pytest.approx(-(n - 2), abs=1e-3)
    assert_written("and `p(y | s)` grows like `s^-(n - 2)` as s goes to 0")


def test_the_quadrature_refuses_a_half_normal_prior_on_three_or_more_points_on_a_line():
    from bayesdemo.core.data import Dataset
    from bayesdemo.core.priors import Model, NoiseSdPrior
    from bayesdemo.core.validation import ConfigError
    from bayesdemo.references.noise_sd import noise_sd_posterior

    def posterior(n: int, kind: str):
        x = np.linspace(0.0, 1.0, n)
        return noise_sd_posterior(Dataset(x, 3.0 * x + 1.0, source="line"), Model(noise_prior=NoiseSdPrior(kind)))

    with pytest.raises(ConfigError) as refused:
        posterior(3, "half_normal")
    assert refused.value.field == "noise_prior"
    for kind in ("log_normal", "inverse_gamma"):
        assert math.isfinite(posterior(3, kind).noise_sd_mean)
    assert math.isfinite(posterior(2, "half_normal").noise_sd_mean)  # two points: p(s | y) stays finite at 0
    assert_written("With n >= 3 points on a line")
    assert_written("Two points always lie on a line, and there `p(s | y)` stays finite at 0.")


def test_settings_the_document_quotes_are_the_codes():
    from bayesdemo.core import config
    from bayesdemo.fitting import metrics
    from bayesdemo.methods import bbb, optim, pyro_svi
    from bayesdemo.references import basis, calibration, grid, mcmc, mean_field, noise_sd

    def general(value: float) -> str:
        """A number as the document writes a setting: 16, 0.05, 1e-150."""
        text = f"{value:.0e}" if 0 < abs(value) < 1e-3 else f"{value:g}"
        if "e" not in text:
            return text
        mantissa, exponent = text.split("e")
        return f"{mantissa}e{int(exponent)}"

    softplus_start = math.log1p(math.exp(bbb.INITIAL_RHO))
    quoted = [
        f"ending with {noise_sd.DEFAULT_NOISE_POINTS} points",
        f"the part within {general(noise_sd.LOG_DENSITY_DROP)} of the peak",
        f"steps of {general(noise_sd.SCAN_STEP)} in log s, first {general(noise_sd.SCAN_HALF_WIDTH)} either side",
        f"`{general(noise_sd.NOISE_SD_LIMITS[0])} <= s <= {general(noise_sd.NOISE_SD_LIMITS[1])}`",
        f"`({general(noise_sd.ROUNDING_ULPS)} eps)^2 sum_i",
        f"At least {grid.DEFAULT_POINTS} points per whitened axis",
        f"z on `[-{general(grid.DEFAULT_HALF_WIDTH)}, {general(grid.DEFAULT_HALF_WIDTH)}]`",
        f"({grid.REFINE_POINTS} points a side",
        f"symmetric KL of {general(grid.SETTLED_KL)}, at most {grid.REFINEMENTS} times",
        f"within a symmetric KL of {general(grid.SAME_WINDOW_KL)}",
        f"(sd {general(grid.VAGUE_PRIOR_SD)}: the likelihood alone",
        f"by {mean_field.HERMITE_POINTS}-node Gauss-Hermite",
        f"mean ± {general(mean_field.MIXTURE_REACH)} sds",
        f"({mean_field.MIXTURE_PANELS} panels of {mean_field.LEGENDRE_POINTS} nodes per piece)",
        f"within {general(mean_field.START_TOLERANCE)} sd and log sds within {general(mean_field.START_TOLERANCE)}",
        f"more than {general(mean_field.OPTIMUM_TOLERANCE)} sd or log sds",
        f"the last {metrics.DEFAULT_WINDOW} steps",
        f"within {general(metrics.MEAN_TOLERANCE)} exact sd of the target mean",
        f"within {metrics.SD_TOLERANCE:.0%} of the target sd",
        f"more than {general(metrics.FAR_MEAN_SDS)} exact sd from the target mean",
        f"`[{general(metrics.FAR_SD_RATIOS[0])}, {general(metrics.FAR_SD_RATIOS[1])}]` times the target sd",
        f"`abs(rho) > {general(metrics.ILL_CONDITIONED_CORR)}`",
        f"`rho` at {general(bbb.INITIAL_RHO)} (an sd of `softplus({general(bbb.INITIAL_RHO)}) = {softplus_start:.3f}`)",
        f"`eta = {general(optim.AVERAGING_POWER)}`",
        f"Adam runs at lr {general(config.DEFAULT_LR['bbb'])} with {config.DEFAULT_SAMPLES['bbb']} draws per step",
        f"(beta2 {general(config.MINIBATCH_ADAM_BETA2)} on minibatches)",
        f"initial scale {general(pyro_svi.MVN_INIT_SCALE)}",
        f"plain SGD at lr {general(config.FORUM_NOISE_LR)} (`core.config.FORUM_NOISE_LR`",
        f"runs at lr {general(config.DEFAULT_LR['noise'])} by default",
        f"its steps are then a cap, {config.UNTIL_TARGET_CAP_FACTOR} times the method's default",
        f"least-squares line with sds {general(calibration.START_SD)}",
        f"(checked every {calibration.CHECK_EVERY} steps",
        f"L = {calibration.CalibrationConfig().rank_draws} draws of q",
        f"over {inspect.signature(calibration.MethodCalibration.rank_histogram).parameters['bins'].default} "
        "equal-probability bins",
        f"to {basis.MAX_DEGREE}; degree 1",
        f"(1 to {basis.MAX_CENTRES})",
        f"{mcmc.MCMCConfig().warmup} warm-up iterations",
        f"target acceptance {general(mcmc.MCMCConfig().target_accept)}), then {mcmc.MCMCConfig().samples} kept",
    ]
    assert f"{softplus_start:.3f}" == f"{calibration.START_SD:.3f}"  # calibration starts at Bayes by Backprop's sd
    assert mcmc.MCMCConfig().dense_mass
    missing = [phrase for phrase in quoted if phrase not in doc_text()]
    assert not missing, f"docs/MATH.md quotes settings the code no longer has: {missing}"


# ---- citations ------------------------------------------------------------------------------------------------------

CITATION_PATTERNS = (
    re.compile(r'MATH\.md,\s+([^;:)"]+)'),  # (MATH.md, Name ...), (...; MATH.md, Name), (...: MATH.md, Name)
    re.compile(r'\(MATH\.md:\s+([^;:)"]+)'),  # (MATH.md: Name ...)
    re.compile(r'MATH\.md\s+"([^"]+)"'),  # MATH.md "Name"
    re.compile(r"MATH\.md\s+([A-Za-z][A-Za-z -]*)\)"),  # (..., MATH.md Name)
)


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation other than - dropped, spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def doc_index() -> tuple[dict[str, str], set[str], list[str]]:
    """{cited name (lower case): anchor} from the index table, the anchors of every heading, and the headings."""
    text = MATH_DOC.read_text(encoding="utf-8")
    headings = [line.lstrip("#").strip() for line in text.splitlines() if re.match(r"#{2,3} ", line)]
    names = {}
    for names_cell, section_cell in re.findall(r"^\| (.+?) \| (\[.+?\]\(#.+?\).*?) \|$", text, flags=re.MULTILINE):
        anchor = re.search(r"\(#([^)]+)\)", section_cell).group(1)
        for name in names_cell.split(";"):
            names[name.strip().lower()] = anchor
    return names, {github_anchor(heading) for heading in headings}, headings


def cited_names() -> dict[str, list[str]]:
    """{name: [files citing it]} over the project's code, tests, benchmarks and README."""
    files = [*ROOT.glob("bayesdemo/**/*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("bench/*"), ROOT / "app.py"]
    files += [ROOT / "README.md"]
    found: dict[str, list[str]] = {}
    for path in files:
        if not path.is_file() or path.name == Path(__file__).name:
            continue
        text = " ".join(path.read_text(encoding="utf-8", errors="replace").replace("#", " ").split())
        for pattern in CITATION_PATTERNS:
            for match in pattern.finditer(text):
                found.setdefault(match.group(1).strip().rstrip("."), []).append(str(path.relative_to(ROOT)))
    return found


def test_every_index_entry_links_to_a_heading_and_every_heading_is_indexed():
    names, anchors, headings = doc_index()
    assert names, "the index table of docs/MATH.md was not found"
    assert not {anchor for anchor in names.values() if anchor not in anchors}
    linked = set(names.values())
    unindexed = [h for h in headings if github_anchor(h) not in linked and h not in ("Index", "Sources")]
    assert not unindexed, f"headings missing from the index: {unindexed}"


def test_every_citation_in_the_code_names_an_indexed_section():
    names, _, _ = doc_index()
    citations = cited_names()
    assert len(citations) > 10  # the scan finds the citations at all
    # A citation's name is a name in the index; text after it (", PRML 3.49-3.51" is part of one name) must match.
    unknown = {name: files for name, files in citations.items() if name.lower() not in names}
    assert not unknown, f"citations with no section in docs/MATH.md: {unknown}"
