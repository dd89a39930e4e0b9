"""Bayes by Backprop's closed-form steps on Python floats: many steps per call, a few tensor calls per call.

With a Gaussian likelihood, a closed-form Gaussian KL and q over the two parameters (slope, intercept), one step
needs the draws only through their sample moments: the mean e = mean_s eps_s (2,) and the second moments
E = mean_s eps_s eps_s^T (2, 2) (docs/MATH.md, Sample moments of the draws). The draws of K steps are drawn in one
call from the fit's generator (the same numbers as K calls), their moments computed in one vectorised pass, and the
K steps of gradient, loss and optimiser update run on 2-parameter floats: no tensor call per step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bayesdemo.methods.optim import AVERAGING_POWER


@dataclass(frozen=True)
class UpdateRule:
    """The optimiser's rule (methods.optim.Optimiser, written out on floats): Adam or SGD, lr decay, averaging."""

    adam: bool  # Adam (torch.optim.Adam's rule) or SGD
    beta1: float  # Adam's first-moment decay
    beta2: float  # Adam's second-moment decay
    eps: float  # Adam's eps, added to the sd of the second moment
    first_lr: float  # learning rate at step 1
    decay_per_step: float  # lr after t steps: first_lr * decay_per_step ** t
    averages: bool  # keep the polynomial-decay average of the parameters


@dataclass(frozen=True)
class Objective:
    """The negative ELBO's constant parts: data size, noise terms, the prior (diagonal or a full precision)."""

    n: int  # data points
    noise_variance: float  # s^2 (in the coordinates the fit trains in)
    log_likelihood_constant: float  # log s + log(2 pi) / 2, per point
    loss_offset: float  # added to every loss: a centred fit's loss in the original data's units (else 0)
    prior_mean: tuple[float, float]  # m0
    prior_sd: tuple[float, float]  # s0 (a diagonal prior)
    prior_precision: tuple[float, float, float, float] | None  # P row by row (a correlated prior), else None
    log_det_precision: float  # log det P (a correlated prior), else 0


@dataclass
class State:
    """What the steps change: q's (mu, rho), the optimiser's moments and averages, each flat (mu0, mu1, rho0, rho1)."""

    parameters: list[float]
    first: list[float]
    second: list[float]
    averages: list[float] | None
    steps_taken: int


def softplus_and_sigmoid(rho: float) -> tuple[float, float]:
    """(softplus(rho), sigmoid(rho)): q's sd as torch.nn.functional.softplus gives it (rho itself above 20), and its
    derivative, without overflow."""
    if rho > 20.0:
        return rho, 1.0 / (1.0 + math.exp(-rho))
    exp_rho = math.exp(rho)
    return math.log1p(exp_rho), exp_rho / (1.0 + exp_rho)


def take_steps(
    state: State,
    rule: UpdateRule,
    objective: Objective,
    moments: Sequence[Sequence[float]],
    statistics: Sequence[Sequence[float]],
) -> list[float]:
    """Take one step per row of `moments` (e0, e1, E00, E01, E11); return the losses, stopping after the first
    non-finite one. `statistics` rows (G00, G01, G10, G11, c0, c1, y^T y, B): the step's batch Phi^T Phi = G,
    Phi^T y = c, y^T y and size B; one row for every step on the full data. Updates `state` in place.

    Per step, with sd = softplus(rho), theta_bar = mu + sd e and scale = n / (B s^2) (docs/MATH.md, Bayes by
    Backprop; Sample moments of the draws): mean_s g_s = scale (G theta_bar - c);
    mean_s (g_s)_j eps_sj = scale ((G mu)_j e_j + sum_k G_jk sd_k E_kj - c_j e_j); the loss uses
    mean_s theta_s theta_s^T = mu mu^T + mu (sd e)^T + (sd e) mu^T + diag(sd) E diag(sd).
    """
    mu0, mu1, rho0, rho1 = state.parameters
    first, second = state.first, state.second
    averages = state.averages if rule.averages else None
    steps_taken = state.steps_taken
    prior_mean0, prior_mean1 = objective.prior_mean
    precision = objective.prior_precision
    if precision is None:
        prior_precision0 = 1.0 / objective.prior_sd[0] ** 2
        prior_precision1 = 1.0 / objective.prior_sd[1] ** 2
        log_prior_sd = math.log(objective.prior_sd[0]) + math.log(objective.prior_sd[1])
    else:
        p00, p01, p10, p11 = precision
    n = objective.n
    likelihood_constant = n * objective.log_likelihood_constant + objective.loss_offset
    beta1, beta2, adam_eps = rule.beta1, rule.beta2, rule.eps
    sqrt, log = math.sqrt, math.log
    losses: list[float] = []
    single_statistics = statistics[0] if len(statistics) == 1 else None
    for index, (e0, e1, m00, m01, m11) in enumerate(moments):
        g00, g01, g10, g11, c0, c1, y_y, batch_size = single_statistics or statistics[index]
        scale = n / batch_size / objective.noise_variance
        try:
            (sd0, sigmoid0), (sd1, sigmoid1) = softplus_and_sigmoid(rho0), softplus_and_sigmoid(rho1)
            mean_theta0, mean_theta1 = mu0 + sd0 * e0, mu1 + sd1 * e1
            # Likelihood gradients in theta, averaged over the draws: G is symmetric, (theta G)_j = sum_k theta_k G_kj.
            gradient_mu0 = scale * (mean_theta0 * g00 + mean_theta1 * g10 - c0)
            gradient_mu1 = scale * (mean_theta0 * g01 + mean_theta1 * g11 - c1)
            gradient_sd0 = scale * ((mu0 * g00 + mu1 * g10 - c0) * e0 + sd0 * g00 * m00 + sd1 * g10 * m01)
            gradient_sd1 = scale * ((mu0 * g01 + mu1 * g11 - c1) * e1 + sd0 * g01 * m01 + sd1 * g11 * m11)
            # mean_s theta_s^T G theta_s - 2 c^T theta_s, then the loss: scaled -log lik plus the closed-form KL.
            second00 = mu0 * mu0 + 2.0 * mu0 * sd0 * e0 + sd0 * sd0 * m00
            second01 = mu0 * mu1 + mu0 * sd1 * e1 + sd0 * e0 * mu1 + sd0 * sd1 * m01
            second11 = mu1 * mu1 + 2.0 * mu1 * sd1 * e1 + sd1 * sd1 * m11
            quadratic = g00 * second00 + (g01 + g10) * second01 + g11 * second11
            quadratic -= 2.0 * (c0 * mean_theta0 + c1 * mean_theta1)
            loss = (quadratic + y_y) * (0.5 * scale) + likelihood_constant
            centred0, centred1 = mu0 - prior_mean0, mu1 - prior_mean1
            if precision is None:
                gradient_mu0 += centred0 * prior_precision0
                gradient_mu1 += centred1 * prior_precision1
                gradient_sd0 += sd0 * prior_precision0 - 1.0 / sd0
                gradient_sd1 += sd1 * prior_precision1 - 1.0 / sd1
                loss += 0.5 * (
                    (sd0 * sd0 + centred0 * centred0) * prior_precision0
                    + (sd1 * sd1 + centred1 * centred1) * prior_precision1
                    - 2.0
                )
                loss -= log(sd0) + log(sd1) - log_prior_sd
            else:
                # A correlated prior N(m, P^-1) (a centred fit): d KL/d mu = P (mu - m), d KL/d sd = diag(P) sd - 1/sd.
                gradient_mu0 += p00 * centred0 + p01 * centred1
                gradient_mu1 += p10 * centred0 + p11 * centred1
                gradient_sd0 += p00 * sd0 - 1.0 / sd0
                gradient_sd1 += p11 * sd1 - 1.0 / sd1
                quadratic_prior = centred0 * (p00 * centred0 + p01 * centred1) + centred1 * (
                    p10 * centred0 + p11 * centred1
                )
                loss += 0.5 * (p00 * sd0 * sd0 + p11 * sd1 * sd1 + quadratic_prior - 2.0 - objective.log_det_precision)
                loss -= log(sd0) + log(sd1)
            gradients = (gradient_mu0, gradient_mu1, gradient_sd0 * sigmoid0, gradient_sd1 * sigmoid1)
        except (ArithmeticError, ValueError):  # an overflow, or sd reaching 0: the fit diverged at this step
            losses.append(math.nan)
            break
        parameters = [mu0, mu1, rho0, rho1]
        steps_taken += 1
        lr = rule.first_lr * rule.decay_per_step ** (steps_taken - 1)
        if rule.adam:
            bias_correction2_sqrt = sqrt(1.0 - beta2**steps_taken)
            step_size = -lr / (1.0 - beta1**steps_taken)
            for j, gradient in enumerate(gradients):
                first_moment = first[j] + (1.0 - beta1) * (gradient - first[j])  # torch's lerp, weight below 0.5
                second_moment = second[j] * beta2 + (1.0 - beta2) * gradient * gradient
                first[j], second[j] = first_moment, second_moment
                parameters[j] += step_size * (first_moment / (sqrt(second_moment) / bias_correction2_sqrt + adam_eps))
        else:
            for j, gradient in enumerate(gradients):
                parameters[j] -= lr * gradient
        if averages is not None:
            # torch's lerp: start + w (end - start) for w < 0.5, else end - (end - start) (1 - w)
            weight = min((AVERAGING_POWER + 1.0) / (steps_taken + AVERAGING_POWER), 1.0)
            if weight < 0.5:
                averages[:] = [a + weight * (p - a) for a, p in zip(averages, parameters, strict=True)]
            else:
                averages[:] = [p - (p - a) * (1.0 - weight) for a, p in zip(averages, parameters, strict=True)]
        mu0, mu1, rho0, rho1 = parameters
        losses.append(loss)
        if not math.isfinite(loss):
            break
    state.parameters = [mu0, mu1, rho0, rho1]
    state.steps_taken = steps_taken
    return losses
