"""Text for the page's Explain section: the model, the exact posterior, the ELBO, and this run's numbers
(docs/MATH.md)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np

from bayesdemo.core.config import FORUM_NOISE_LR, FitConfig
from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import ExactPosterior, Gaussian
from bayesdemo.core.markup import escape_markdown
from bayesdemo.core.scenario import Scenario, is_noise_label
from bayesdemo.fitting.runner import Snapshot

Section = tuple[str, str]  # ("markdown", text) or ("latex", formula)
NOISE_START_SD = 1.0  # the forum recipe starts both scales (the slope sd and the intercept sd) at 1


def fmt(value: float, digits: int = 3) -> str:
    """A number for students: `digits` significant figures, thousands separators for big ones, no exponent soup."""
    if not math.isfinite(value):
        return "∞" if value > 0 else ("−∞" if value < 0 else "undefined")
    if value != 0 and abs(value) >= 10**digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def fmt_step(step: float) -> str:
    """A step count, rounded, with thousands separators."""
    return f"{round(step):,}"


def shrink_factor(lr: float, mean_x_squared: float) -> float:
    """Per-step factor on the slope sd's mean under SGD on the MSE: 1 - 2 lr mean(x^2) of the data (docs/MATH.md, Noise
    injection)."""
    return 1.0 - 2.0 * lr * mean_x_squared


def time_constant(lr: float, mean_x_squared: float) -> float:
    """Steps for the slope sd to shrink by a factor e: 1 / (2 lr mean(x^2)), the data's own (docs/MATH.md, Noise
    injection)."""
    return 1.0 / (2.0 * lr * mean_x_squared)


def crossing_step(start_sd: float, target_sd: float, factor: float) -> float:
    """Step t where start_sd * factor^t = target_sd: ln(target/start) / ln(factor); 0 if it starts below, inf never."""
    if target_sd >= start_sd:
        return 0.0
    if not 0.0 < factor < 1.0:
        return math.inf
    return math.log(target_sd / start_sd) / math.log(factor)


def loss_sampling_sd(exact: ExactPosterior, q: Gaussian, samples: int) -> float:
    """Sd of one step's loss around -ELBO(q): full batch, closed-form KL, `samples` draws of theta (docs/MATH.md, ELBO).

    With theta = mu + B eps (B B^T = C), e = Phi mu - y and G = Phi^T Phi, -log p(y | theta) is a quadratic in eps:
    Var = ||B^T Phi^T e||^2 / s^4 + tr((B^T G B)^2) / (2 s^4), divided by the number of samples.
    """
    centred, n = exact.stats.centred, exact.stats.n
    offset = float(centred.phi_mean @ q.mean - centred.y_mean)
    gradient = centred.phi_scatter @ q.mean - centred.phi_y_scatter + n * offset * centred.phi_mean  # Phi^T e
    gram = centred.phi_scatter + n * np.outer(centred.phi_mean, centred.phi_mean)
    root = np.linalg.cholesky(q.cov)
    whitened_gram = root.T @ gram @ root
    s4 = exact.model.noise_sd**4
    variance = (np.sum((root.T @ gradient) ** 2) + 0.5 * np.sum(whitened_gram**2)) / s4
    return math.sqrt(variance / samples)


def _elbo_samples(scenario: Scenario) -> int:
    """Samples per step of the scenario's first ELBO fit (Bayes by Backprop or Pyro SVI), else Bayes by Backprop's."""
    config = next((config for config in scenario.fit_configs() if config.method != "noise"), None)
    return (config or FitConfig(method="bbb")).samples_in_force


def _noise_config(scenario: Scenario) -> FitConfig | None:
    """The scenario's noise-injection fit, if it runs one."""
    return next((config for config in scenario.fit_configs() if config.method == "noise"), None)


def source_text(dataset: Dataset) -> str:
    """Where the data came from, for a sentence: "synthetic, seed 0" or the uploaded file's name (escaped)."""
    match = re.fullmatch(r"synthetic \(seed (\d+)\)", dataset.source)
    return f"synthetic, seed {match.group(1)}" if match else escape_markdown(dataset.source)


def model_section(dataset: Dataset, scenario: Scenario) -> list[Section]:
    """The model in words and symbols (docs/MATH.md, Model)."""
    prior = scenario.prior
    return [
        (
            "markdown",
            "#### The model\n"
            f"Each of the n = {dataset.n:,} points ({source_text(dataset)}) is a line plus Gaussian noise "
            "of known sd "
            f"s = {fmt(scenario.model.noise_sd)}. Before seeing data we believe slope w ~ N({fmt(prior.slope_mean)}, "
            f"{fmt(prior.slope_sd)}²) and intercept b ~ N({fmt(prior.intercept_mean)}, {fmt(prior.intercept_sd)}²), "
            "independently. Everywhere below, w is the slope and b the intercept.",
        ),
        (
            "latex",
            r"y_i = w\,x_i + b + \varepsilon_i,\quad \varepsilon_i \sim \mathcal{N}(0, s^2),\quad "
            r"w \sim \mathcal{N}(m_w, s_w^2),\quad b \sim \mathcal{N}(m_b, s_b^2)",
        ),
    ]


def posterior_section(exact: ExactPosterior) -> list[Section]:
    """The conjugate posterior and this data's numbers (PRML 3.49-3.51)."""
    mean, sd = exact.mean, exact.sd
    return [
        (
            "markdown",
            "#### The exact posterior\n"
            "A Gaussian prior and a Gaussian likelihood give a Gaussian posterior in closed form "
            "(Bishop, PRML 3.49-3.51), with design rows φ(x) = (x, 1):",
        ),
        (
            "latex",
            r"S_N = \left(S_0^{-1} + \Phi^\top \Phi / s^2\right)^{-1},\qquad "
            r"m_N = S_N \left(S_0^{-1} m_0 + \Phi^\top y / s^2\right)",
        ),
        (
            "markdown",
            f"For this data: slope = {fmt(mean[0], 4)} ± {fmt(sd[0])}, intercept = {fmt(mean[1], 4)} ± {fmt(sd[1])} "
            f"(mean ± sd), and their correlation is ρ = {fmt(exact.corr)}. Every fit on this page is judged against "
            "these numbers.",
        ),
    ]


def elbo_section(exact: ExactPosterior, latest: Mapping[str, Snapshot], samples: int = 16) -> list[Section]:
    """The ELBO identity: the loss's gap above -log p(y) is KL(q || exact) on average over the loss's draws
    (docs/MATH.md,
    ELBO); `samples` is the fits' draws of theta per step, for the loss's scatter at the mean-field optimum."""
    mean_field_kl = exact.kl_to_exact(exact.mean_field)
    scatter = loss_sampling_sd(exact, exact.mean_field, samples)
    text = (
        "#### The ELBO, and why its gap is the distance to the truth\n"
        "Variational inference picks q to maximise the evidence lower bound. Because the two forms below are equal, "
        "maximising the ELBO is the same as minimising KL(q ‖ exact posterior):"
    )
    numbers = (
        f"Here log p(y) = {fmt(exact.log_evidence, 5)}, so the loss chart's floor is −log p(y) = "
        f"{fmt(-exact.log_evidence, 5)}: a fit's loss (the negative ELBO) minus that floor is its KL to the exact "
        f"posterior on average. The best a mean-field q can do is KL = −½ ln(1 − ρ²) = {fmt(mean_field_kl)}; "
        "a full-covariance q can reach 0. Each step's loss is a Monte-Carlo estimate, so single steps scatter: at "
        f"the mean-field optimum, with {samples} draw{'s' if samples > 1 else ''} of θ per step on the full data, the "
        f"loss minus the floor varies by ±{fmt(scatter, 2)} nats (one sd) around the KL of {fmt(mean_field_kl)}, and "
        "a step can dip below the floor. Minibatches add more."
    )
    lines = [
        f"- {label}: KL(q ‖ exact) = {fmt(exact.kl_to_exact(snapshot.gaussian))} at step {fmt_step(snapshot.step)}"
        for label, snapshot in latest.items()
        if not is_noise_label(label) and np.all(snapshot.sd > 0)
    ]
    if lines:
        numbers += "\n\nNow:\n" + "\n".join(lines)
    return [
        ("markdown", text),
        (
            "latex",
            r"\mathrm{ELBO}(q) = \mathbb{E}_q[\log p(y \mid \theta)] - \mathrm{KL}(q \,\|\, p(\theta))"
            r" = \log p(y) - \mathrm{KL}(q \,\|\, p(\theta \mid y))",
        ),
        ("markdown", numbers),
    ]


def noise_injection_section(
    exact: ExactPosterior, dataset: Dataset, scenario: Scenario, latest: Mapping[str, Snapshot]
) -> list[Section]:
    """Why noise injection's sds drift to 0, with the data's mean(x^2), time constant and crossing step (docs/MATH.md).

    The time constant uses the data's own mean of x^2 (0.3925 on the Pyro tutorial's data: 12,739 steps at lr 1e-4),
    not E[x^2] = 1/3 of x ~ U(0, 1) (15,000 steps) (docs/MATH.md, Noise injection).
    """
    config = _noise_config(scenario)
    lr = config.lr_in_force if config is not None else FORUM_NOISE_LR
    steps = config.steps_in_force if config is not None else None
    mean_x_squared = float(np.mean(dataset.x**2))
    factor = shrink_factor(lr, mean_x_squared)
    exact_slope_sd = float(exact.sd[0])
    intro = (
        "#### Why noise injection's sds drift to 0 (the forum question)\n"
        "The forum poster sampled slope, intercept and output noise per point and minimised the mean squared error "
        "with SGD. Averaged over that noise the loss is"
    )
    which_lr = "this run's" if config is not None else "the forum's"
    if factor <= 0.0:
        dynamics = (
            f"For this data mean(x²) = {fmt(mean_x_squared)}. At {which_lr} lr = {fmt(lr)} the factor "
            f"1 − 2·lr·mean(x²) = {fmt(factor)} is not positive: SGD overshoots and the sds oscillate or blow up."
        )
    else:
        crossing = crossing_step(NOISE_START_SD, exact_slope_sd, factor)
        dynamics = (
            f"For this data mean(x²) = {fmt(mean_x_squared)}. At {which_lr} lr = {fmt(lr)} the time constant is "
            f"1/(2·lr·mean(x²)) = {fmt_step(time_constant(lr, mean_x_squared))} steps. Starting at 1, the slope sd "
            "σ_w passes "
            f"the exact slope sd {fmt(exact_slope_sd)} at step ln({fmt(exact_slope_sd)}) / ln(1 − 2·lr·mean(x²)) ≈ "
            f"{fmt_step(crossing)}, and keeps falling."
        )
        if steps is not None:
            dynamics += (
                f" After this run's {fmt_step(steps)} steps the formula gives σ_w ≈ "
                f"{fmt(NOISE_START_SD * factor**steps)}."
            )
            if crossing > steps:
                dynamics += " The run stops before the crossing, so its sds still look plausible."
        dynamics += (
            ' That is why the forum poster saw a slope sd "very close to MCMC": training stopped while the sds were '
            "passing by on their way to 0. It is least squares with decaying noise, not inference."
        )
    current = next(((label, s) for label, s in latest.items() if is_noise_label(label)), None)
    if current is not None:
        label, snapshot = current
        dynamics += (
            f"\n\nNow ({label}, step {fmt_step(snapshot.step)}): slope sd σ_w = {fmt(snapshot.sd[0])} "
            f"({fmt(snapshot.sd[0] / exact_slope_sd)} × the exact slope sd) and intercept sd σ_b = "
            f"{fmt(snapshot.sd[1])} ({fmt(snapshot.sd[1] / exact.sd[1])} × the exact intercept sd)."
        )
        if factor > 0.0:
            dynamics += f" The formula predicts σ_w ≈ {fmt(NOISE_START_SD * factor**snapshot.step)} at this step."
    return [
        ("markdown", intro),
        (
            "latex",
            r"\mathbb{E}\left[(y - \hat y)^2\right] = (y - \mu_w x - \mu_b)^2 + \sigma_w^2 x^2 + \sigma_b^2"
            r" + \mathbb{E}[\sigma^2]",
        ),
        (
            "markdown",
            "Nothing in it rewards a wide q (there is no prior and no entropy term), so every sd only costs loss. "
            "Here μ_w, σ_w are q's mean and sd of the slope w, and μ_b, σ_b those of the intercept b. The gradient "
            "with respect to the slope sd σ_w is 2·mean(x²)·σ_w, so each SGD step multiplies it by a constant:",
        ),
        (
            "latex",
            r"\sigma_{w,t} \approx (1 - 2\,\mathrm{lr}\,\overline{x^2})^t,\qquad "
            r"\tau = \frac{1}{2\,\mathrm{lr}\,\overline{x^2}},\qquad \overline{x^2} = \frac{1}{n}\sum_i x_i^2",
        ),
        ("markdown", dynamics),
    ]


def mean_field_section(exact: ExactPosterior, latest: Mapping[str, Snapshot]) -> list[Section]:
    """Why factorised q's sds are sqrt(1 - rho^2) times the exact ones (PRML 10.12-10.13)."""
    rho = exact.corr
    ratio = math.sqrt(1.0 - rho**2)
    mean_field_sd, sd = exact.mean_field_sd, exact.sd
    text = (
        f"Here ρ = {fmt(rho)}, so √(1 − ρ²) = {fmt(ratio)}: a mean-field fit (Bayes by Backprop, AutoNormal) should "
        f"settle at slope sd {fmt(mean_field_sd[0])} and intercept sd {fmt(mean_field_sd[1])}, not at the exact "
        f"{fmt(sd[0])} and {fmt(sd[1])}. Only the full-covariance guide can reach the exact sds. Centring x makes ρ "
        "close to 0 and the mean-field answer exact."
    )
    lines = [
        f"- {label}: slope sd / exact sd = {fmt(snapshot.sd[0] / sd[0])}, intercept sd / exact sd = "
        f"{fmt(snapshot.sd[1] / sd[1])} at step {fmt_step(snapshot.step)}"
        for label, snapshot in latest.items()
        if not is_noise_label(label) and snapshot.cov[0, 1] == 0.0
    ]
    if lines:
        text += "\n\nNow, the factorised fits:\n" + "\n".join(lines)
    return [
        (
            "markdown",
            "#### Why mean-field sds are too small\n"
            "A factorised q cannot express the correlation between slope and intercept. Minimising KL(q ‖ p) makes "
            "each of its sds the sd of that parameter *with the other held fixed* (Bishop, PRML 10.12-10.13), which "
            "is smaller than the marginal sd whenever the two are correlated:",
        ),
        ("latex", r"\sigma^{\mathrm{MF}}_j = \frac{1}{\sqrt{L_{jj}}} = \sigma_j \sqrt{1 - \rho^2},\qquad L = S_N^{-1}"),
        ("markdown", text),
    ]


def sections(
    exact: ExactPosterior, dataset: Dataset, scenario: Scenario, latest: Mapping[str, Snapshot]
) -> list[Section]:
    """The Explain section in order; `latest` maps each fit's label (FitConfig.label) to its newest snapshot."""
    return [
        *model_section(dataset, scenario),
        *posterior_section(exact),
        *elbo_section(exact, latest, _elbo_samples(scenario)),
        *noise_injection_section(exact, dataset, scenario, latest),
        *mean_field_section(exact, latest),
    ]
