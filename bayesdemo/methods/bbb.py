"""Bayes by Backprop in plain torch (Blundell et al. 2015): q = N(mu, softplus(rho)^2), closed-form KL, Adam.

Options (FitConfig): any prior family with a Monte-Carlo KL, a learned noise sd with q(log s) Gaussian, local
reparameterisation (Kingma et al. 2015), the objective dial mse -> likelihood -> elbo (docs/MATH.md), and centre_x: q is
factorised over the standardised problem's z (docs/MATH.md, Centred parameterisation), reported over theta.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from bayesdemo.core.config import FitConfig
from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import Gaussian
from bayesdemo.core.priors import Model, Prior
from bayesdemo.core.validation import ConfigError
from bayesdemo.methods import closed_form_steps
from bayesdemo.methods.centred import StandardisedProblem
from bayesdemo.methods.optim import ADAM_EPS, DataTensors, Optimiser, sufficient_statistics

INITIAL_RHO = -3.0  # softplus(-3) = 0.049: start narrow, as Blundell et al. 2015 and Pyro's tutorial do
LOG_2PI = math.log(2.0 * math.pi)
# torch's CPU normal sampler fills blocks of 16 numbers: draws of K steps in one call equal K calls' draws when a
# step draws a multiple of 16 numbers (16 samples: 32; 16 antithetic: 16); otherwise each step draws on its own.
NORMAL_FILL_BLOCK = 16


def inverse_softplus(value: torch.Tensor) -> torch.Tensor:
    """rho with softplus(rho) = value (> 0)."""
    return value + torch.log(-torch.expm1(-value))


class BayesByBackprop:
    """Minimise KL(q || prior) - (N / B) sum_batch E_q log N(y_i | phi_i^T theta, s^2) (docs/MATH.md, Bayes by
    Backprop).

    The per-step loss is an unbiased estimate of the full-data negative ELBO, so it is directly comparable with
    -log p(y): Blundell's per-batch KL weight 1/M with an unscaled batch likelihood is this loss divided by M.
    """

    def __init__(self, dataset: Dataset, model: Model, config: FitConfig):
        self.config = config
        device = config.device
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.problem = StandardisedProblem.of(dataset, model) if config.centre_x else None
        self.data = DataTensors(
            self.problem.dataset if self.problem else dataset, config.batch_size, self.generator, device
        )
        self.noise_sd = self.problem.noise_sd if self.problem else float(model.noise_sd)
        self.prior_mean = torch.as_tensor(model.prior.mean, dtype=torch.float64, device=device)
        self.prior_sd = torch.as_tensor(model.prior.sd, dtype=torch.float64, device=device)
        self.prior = Prior.of(model.prior)
        # A centred fit's Gaussian prior is correlated in z: its mean and full precision matrix (None: diagonal).
        self.prior_precision_matrix: torch.Tensor | None = None
        if self.problem is not None and self.prior.is_gaussian:
            mean_z, precision_z = self.problem.gaussian_prior()
            self.prior_mean = torch.as_tensor(mean_z, dtype=torch.float64, device=device)
            self.prior_precision_matrix = torch.as_tensor(precision_z, dtype=torch.float64, device=device)
        self.noise_prior = model.noise_prior
        # Closed-form KL exists only for a Gaussian prior; any other prior uses the Monte-Carlo KL (docs/MATH.md).
        self.closed_form_kl = config.kl == "closed" and self.prior.is_gaussian
        start = 0.1 * torch.randn(2, generator=self.generator, dtype=torch.float64, device=device)
        self.mu = start.requires_grad_(True)
        self.rho = torch.full((2,), INITIAL_RHO, dtype=torch.float64, device=device, requires_grad=True)
        parameters = [self.mu, self.rho]
        if config.learn_noise:
            # q(log s) = N(log_noise_mu, softplus(log_noise_rho)^2), starting at the model's noise sd.
            self.log_noise_mu = torch.tensor(
                math.log(self.noise_sd), dtype=torch.float64, device=device, requires_grad=True
            )
            self.log_noise_rho = torch.tensor(INITIAL_RHO, dtype=torch.float64, device=device, requires_grad=True)
            parameters += [self.log_noise_mu, self.log_noise_rho]
        self.optimizer = Optimiser(config, parameters)
        # The Gaussian ELBO with a closed-form KL has closed-form reparameterised gradients on sufficient statistics.
        self.uses_sufficient_statistics = (
            config.objective == "elbo" and self.closed_form_kl and not config.learn_noise and not config.local_reparam
        )
        self.design = torch.stack([self.data.x, torch.ones_like(self.data.x)], dim=1)  # Phi (n, 2), rows (x_i, 1)
        self.full_statistics = sufficient_statistics(self.design, self.data.y) if self.data.full_batch else None
        self.log_likelihood_constant = math.log(self.noise_sd) + 0.5 * LOG_2PI
        # take_steps' optimiser rule and objective constants, built on its first call (the optimiser may be swapped).
        self._float_step_constants: tuple[closed_form_steps.UpdateRule, closed_form_steps.Objective] | None = None
        self._full_statistics_values: list[float] | None = None
        self._pass_statistics_of: torch.Tensor | None = None  # the permutation _pass_statistics_rows belong to
        self._pass_statistics_rows: list[list[float]] = []
        self._points: np.ndarray | None = None  # the data as rows (x_i, y_i), for the per-pass statistics
        self._draws_in_pairs = config.antithetic_in_force
        self._parameter_arrays: tuple[np.ndarray, ...] = (
            (self.mu.detach().numpy(), self.rho.detach().numpy()) if device == "cpu" else ()
        )

    def kl_to_prior(self, sd: torch.Tensor) -> torch.Tensor:
        """Closed-form KL(N(mu, sd^2) || N(m0, s0^2)) summed over parameters (a correlated prior: docs/MATH.md, KL)."""
        if self.prior_precision_matrix is not None:
            return self._kl_to_correlated_prior(sd, self.prior_precision_matrix)
        ratio = sd / self.prior_sd
        return torch.sum(0.5 * (ratio**2 + ((self.mu - self.prior_mean) / self.prior_sd) ** 2 - 1.0) - torch.log(ratio))

    def _kl_to_correlated_prior(self, sd: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
        """KL(N(mu, diag sd^2) || N(m, P^-1)) = (sum P_jj sd_j^2 + (mu - m)^T P (mu - m) - 2 - log det P) / 2
        - sum log sd_j (docs/MATH.md, KL between Gaussians)."""
        centred = self.mu - self.prior_mean
        quadratic = torch.diagonal(precision) @ sd.square() + centred @ precision @ centred
        return 0.5 * (quadratic - sd.numel() - torch.logdet(precision)) - torch.log(sd).sum()

    def log_prior(self, theta: torch.Tensor) -> torch.Tensor:
        """log p of samples (S, 2) in the coordinates q lives in (z for a centred fit), any prior family."""
        return self.problem.log_prior(theta) if self.problem else self.prior.log_density(theta)

    def monte_carlo_kl(self, theta: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
        """Mean over samples theta (S, 2) of log q(theta) - log p(theta): unbiased for KL(q || prior), any prior."""
        log_q = torch.distributions.Normal(self.mu, sd).log_prob(theta).sum(dim=-1)
        return torch.mean(log_q - self.log_prior(theta))

    def _normal(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Standard normal draws from the fit's own generator."""
        return torch.randn(shape, generator=self.generator, dtype=torch.float64, device=self.data.device)

    def _parameter_draws(self, samples: int) -> torch.Tensor:
        """eps (S, 2) for theta = mu + sd eps: independent, or antithetic pairs (eps, -eps) with config.antithetic.

        Pairs keep every expectation (each half is N(0, I)) and cancel exactly what is odd in eps, such as the
        minibatch noise times eps in the sd gradient: the likelihood gradient is linear in theta (docs/MATH.md, BBB).
        """
        if not self.config.antithetic_in_force:
            return self._normal((samples, 2))
        half = self._normal((samples // 2, 2))
        return torch.cat([half, -half])

    def _batch_statistics(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """Sufficient statistics of this step's (mini)batch: the full data's are computed once."""
        if self.full_statistics is not None:
            return (*self.full_statistics, self.data.n)
        index = self.data.batch_index()
        return (*sufficient_statistics(self.design[index], self.data.y[index]), index.shape[0])

    @torch.no_grad()
    def loss_and_gradients(self) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """`loss()` and its gradients in (mu, rho) in closed form: same draws, same estimate (docs/MATH.md, BBB).

        Per sample: -log lik = (y^T y - 2 theta^T Phi^T y + theta^T Phi^T Phi theta) / (2 s^2) + B log(s sqrt(2 pi)),
        so d/dtheta = scale (Phi^T Phi theta - Phi^T y) / s^2: O(p^2) per sample whatever the batch size.
        theta = mu + sd eps gives d/dmu = g, d/dsd = g eps, d/drho = d/dsd sigmoid(rho); the KL adds
        (mu - m0) / s0^2 and sd / s0^2 - 1 / sd.
        """
        gram, phi_y, y_y, batch_size = self._batch_statistics()
        eps = self._parameter_draws(self.config.samples_in_force)
        sd = F.softplus(self.rho)
        theta = torch.addcmul(self.mu, sd, eps)  # (S, 2)
        gram_theta = theta @ gram  # (S, 2); the Gram matrix is symmetric
        scale_over_variance = self.data.n / batch_size / self.noise_sd**2
        gradient_theta = (gram_theta - phi_y).mul_(scale_over_variance)  # (S, 2)
        centred = self.mu - self.prior_mean
        quadratic = (gram_theta - 2.0 * phi_y).mul_(theta).sum(dim=1).mean()
        likelihood = (quadratic + y_y) * (0.5 * scale_over_variance) + self.data.n * self.log_likelihood_constant
        if self.prior_precision_matrix is not None:
            # A correlated prior (centred fit): d KL / d mu = P (mu - m), d KL / d sd = diag(P) sd - 1 / sd.
            precision = self.prior_precision_matrix
            gradient_mu = gradient_theta.mean(dim=0).add_(precision @ centred)
            gradient_sd = (gradient_theta * eps).mean(dim=0).addcmul_(sd, torch.diagonal(precision))
            gradient_sd.sub_(sd.reciprocal())
            return likelihood + self._kl_to_correlated_prior(sd, precision), (
                gradient_mu,
                gradient_sd.mul_(torch.sigmoid(self.rho)),
            )
        prior_precision = self.prior_sd.reciprocal().square()
        gradient_mu = gradient_theta.mean(dim=0).addcmul_(centred, prior_precision)
        gradient_sd = (gradient_theta * eps).mean(dim=0).addcmul_(sd, prior_precision).sub_(sd.reciprocal())
        gradient_rho = gradient_sd.mul_(torch.sigmoid(self.rho))
        # The loss itself: mean over samples of the scaled -log lik, plus the closed-form KL.
        log_ratio = torch.log(sd / self.prior_sd)
        kl = 0.5 * (sd.square().mul(prior_precision) + centred.square().mul(prior_precision) - 1.0) - log_ratio
        return likelihood + kl.sum(), (gradient_mu, gradient_rho)

    def loss(self) -> torch.Tensor:
        """The objective's S-sample estimate on a fresh minibatch (negative ELBO unless config.objective says else)."""
        config = self.config
        x, y = self.data.batch()
        samples = config.samples_in_force
        sd = F.softplus(self.rho)
        theta = None
        if config.local_reparam:
            # phi^T theta ~ N(phi^T mu, sum_j phi_j^2 sd_j^2), an independent draw per data point (docs/MATH.md).
            line_sd = torch.sqrt(x**2 * sd[0] ** 2 + sd[1] ** 2)
            prediction = self.mu[0] * x + self.mu[1] + line_sd * self._normal((samples, x.shape[0]))
        else:
            eps = self._parameter_draws(samples)
            theta = self.mu + sd * eps  # (S, 2)
            prediction = theta[:, :1] * x + theta[:, 1:]  # (S, B)
        if config.objective == "mse":
            return torch.mean((y - prediction) ** 2)
        if config.learn_noise:
            noise_q_sd = F.softplus(self.log_noise_rho)
            log_noise = self.log_noise_mu + noise_q_sd * self._normal((samples, 1))  # (S, 1)
            noise_sd = torch.exp(log_noise)
            residual = (y - prediction) / noise_sd
            batch_log_lik = -0.5 * torch.sum(residual**2, dim=1) - x.shape[0] * (log_noise[:, 0] + 0.5 * LOG_2PI)
        else:
            residual = (y - prediction) / self.noise_sd
            batch_log_lik = -0.5 * torch.sum(residual**2, dim=1) - x.shape[0] * (
                math.log(self.noise_sd) + 0.5 * LOG_2PI
            )
        scale = self.data.n / x.shape[0]
        if config.objective == "likelihood":
            return -scale * batch_log_lik.mean()
        if self.closed_form_kl:
            kl = self.kl_to_prior(sd)
        else:
            if theta is None:
                theta = self.mu + sd * self._normal((samples, 2))
            kl = self.monte_carlo_kl(theta, sd)
        if config.learn_noise:
            # Monte-Carlo KL of q(log s) to the prior of log s, p(s) s (Jacobian of s = exp(log s)).
            log_q = torch.distributions.Normal(self.log_noise_mu, noise_q_sd).log_prob(log_noise)
            log_prior = self.noise_prior.log_density(noise_sd) + log_noise
            kl = kl + torch.mean(log_q - log_prior)
        return kl - scale * batch_log_lik.mean()

    @property
    def steps_on_floats(self) -> bool:
        """Whether `take_steps` runs the closed-form steps on floats (closed_form_steps): the closed-form path with
        the written-out optimiser, on the CPU."""
        return self.uses_sufficient_statistics and isinstance(self.optimizer, Optimiser) and self.data.device == "cpu"

    def take_steps(self, count: int) -> list[float]:
        """Take `count` steps (fewer when a loss turns non-finite: the last one returned); return their losses.

        The same steps as `count` calls of `step`: the same draws and minibatches from the generator in the same
        order, equal to rounding. Off the closed-form path it takes one step with `step`.
        """
        if not self.steps_on_floats:
            return [self.step()]
        moments, statistics = self._draw_steps(count)
        optimizer = self.optimizer
        rows = optimizer.flat_state()
        averages = rows[2] if len(rows) > 2 else None
        state = closed_form_steps.State(
            self.mu.tolist() + self.rho.tolist(), rows[0], rows[1], averages, optimizer.steps_taken
        )
        if self._float_step_constants is None:
            self._float_step_constants = (self._update_rule(), self._objective())
        losses = closed_form_steps.take_steps(state, *self._float_step_constants, moments, statistics)
        # Written through numpy views of mu and rho: between steps no autograd graph holds them.
        self._parameter_arrays[0][:] = state.parameters[:2]
        self._parameter_arrays[1][:] = state.parameters[2:]
        optimizer.load_flat_state(
            state.steps_taken, [state.first, state.second, *([averages] if averages is not None else [])]
        )
        return losses

    def _draw_steps(self, count: int) -> tuple[list[list[float]], list[list[float]]]:
        """For `count` steps: the draws' sample moments (count rows of e0, e1, E00, E01, E11) and the batches'
        statistics (one row on the full data, else one per step), consuming the generator as `count` steps do."""
        data = self.data
        statistics: list[list[float]] = []
        blocks: list[torch.Tensor] = []
        pending = 0  # steps whose draws come before the next permutation
        for _ in range(count):
            if not data.full_batch:
                if data.next_batch_starts_pass() and pending:
                    blocks.append(self._draws_of(pending))
                    pending = 0
                data.batch_index()
                statistics.append(self._pass_statistics()[data.batches_into_pass - 1])
            pending += 1
        blocks.append(self._draws_of(pending))
        eps = blocks[0] if len(blocks) == 1 else torch.cat(blocks)  # (count, S, 2)
        samples = eps.shape[1]
        # Per step and coordinate pair one row of S numbers (eps_0, eps_1, eps_0^2, eps_0 eps_1, eps_1^2), summed
        # along the contiguous last axis: each row's sum is the same whatever `count` is, so a fit's trajectory does
        # not depend on how its steps are grouped into calls.
        rows = np.empty((count, 5, samples))
        rows[:, :2] = eps.numpy().transpose(0, 2, 1)
        np.multiply(rows[:, :2], rows[:, :1], out=rows[:, 2:4])
        np.multiply(rows[:, 1], rows[:, 1], out=rows[:, 4])
        moments = (rows.sum(axis=2) / samples).tolist()
        return moments, statistics if statistics else [self._full_statistics_row()]

    def _pass_statistics(self) -> list[list[float]]:
        """Each batch of the current pass's (G00, G01, G10, G11, c0, c1, y^T y, B), computed once per pass: O(n) per
        pass, O(B) per step, as per-step statistics cost."""
        data = self.data
        if self._pass_statistics_of is not data.order:
            if self._points is None:
                self._points = np.stack([data.x.numpy(), data.y.numpy()], axis=1)  # (n, 2) rows (x_i, y_i)
            batches = data.n // data.batch_size
            index = data.order[: batches * data.batch_size].numpy()
            points = self._points[index].reshape(batches, data.batch_size, 2)
            sums = points.sum(axis=1)  # (batches, 2): sum x, sum y
            products = np.matmul(points.transpose(0, 2, 1), points).reshape(batches, 4)  # x x, x y, y x, y y
            size = np.full(batches, float(data.batch_size))
            columns = [products[:, 0], sums[:, 0], sums[:, 0], size, products[:, 1], sums[:, 1], products[:, 3], size]
            self._pass_statistics_rows = np.stack(columns, axis=1).tolist()
            self._pass_statistics_of = data.order
        return self._pass_statistics_rows

    def _draws_of(self, steps: int) -> torch.Tensor:
        """eps (steps, S, 2) of `steps` consecutive steps, the numbers `steps` calls of `_parameter_draws` give."""
        antithetic = self._draws_in_pairs
        per_step = self.config.samples_in_force // 2 if antithetic else self.config.samples_in_force
        if (per_step * 2) % NORMAL_FILL_BLOCK == 0:
            half = self._normal((steps, per_step, 2))
        else:
            half = torch.stack([self._normal((per_step, 2)) for _ in range(steps)])
        return torch.cat([half, -half], dim=1) if antithetic else half

    def _full_statistics_row(self) -> list[float]:
        """The full data's (G00, G01, G10, G11, c0, c1, y^T y, n) as floats."""
        if self._full_statistics_values is None:
            assert self.full_statistics is not None
            gram, phi_y, y_y = self.full_statistics
            self._full_statistics_values = [*gram.reshape(-1).tolist(), *phi_y.tolist(), float(y_y), float(self.data.n)]
        return self._full_statistics_values

    def _update_rule(self) -> closed_form_steps.UpdateRule:
        """The optimiser's rule, for the steps on floats."""
        optimizer = self.optimizer
        assert isinstance(optimizer, Optimiser)
        beta1, beta2 = optimizer.betas
        return closed_form_steps.UpdateRule(
            optimizer.adam,
            beta1,
            beta2,
            ADAM_EPS,
            optimizer.first_lr,
            optimizer.decay_per_step,
            optimizer.averages is not None,
        )

    def _objective(self) -> closed_form_steps.Objective:
        """The negative ELBO's constant parts, for the steps on floats."""
        precision = None
        log_det = 0.0
        if self.prior_precision_matrix is not None:
            precision = tuple(self.prior_precision_matrix.reshape(-1).tolist())
            log_det = float(torch.logdet(self.prior_precision_matrix))
        return closed_form_steps.Objective(
            self.data.n,
            self.noise_sd**2,
            self.log_likelihood_constant,
            self._in_data_units(0.0),
            tuple(self.prior_mean.tolist()),
            tuple(self.prior_sd.tolist()),
            precision,
            log_det,
        )

    def step(self) -> float:
        """One optimiser step on the S-sample reparameterised estimate of the objective (default: negative ELBO)."""
        if self.uses_sufficient_statistics:
            loss, gradients = self.loss_and_gradients()
            self.optimizer.apply(gradients)
            return self._in_data_units(float(loss))
        return self._in_data_units(self.optimizer.minimise(self.loss()))

    def _in_data_units(self, loss: float) -> float:
        """A centred fit's loss on the standardised data as the same loss on the original data (docs/MATH.md)."""
        if self.problem is None:
            return loss
        if self.config.objective == "mse":
            return loss * self.problem.y_scale**2
        return loss + self.problem.likelihood_offset(self.data.n)

    def posterior(self) -> Gaussian:
        """q = N(mu, diag(softplus(rho)^2)), with mu and rho averaged over steps when config.average_in_force.

        A centred fit's factorised q over z is reported over theta = (slope, intercept), a full covariance.
        """
        with torch.no_grad(), self.optimizer.averaged():
            q = Gaussian.diagonal(self.mu.cpu().numpy().copy(), F.softplus(self.rho).cpu().numpy().copy())
        return self.problem.to_theta(q) if self.problem else q

    def noise_posterior(self) -> tuple[float, float]:
        """Mean and sd of s under q (log-normal: exp(m + v/2), mean sqrt(exp(v) - 1)); (noise_sd, 0) when s is known."""
        if not self.config.learn_noise:
            return self.noise_sd, 0.0
        with torch.no_grad(), self.optimizer.averaged():
            log_mean = float(self.log_noise_mu)
            log_var = float(F.softplus(self.log_noise_rho)) ** 2
        mean = math.exp(log_mean + 0.5 * log_var)
        return mean, mean * math.sqrt(math.expm1(log_var))

    def set_posterior(self, q: Gaussian) -> None:
        """Put q's mean and diagonal sds into (mu, rho): for gradient studies at a chosen q (uncentred fits)."""
        if self.problem is not None:
            raise ConfigError("centre_x", "must be off to place q by hand")
        with torch.no_grad():
            self.mu.copy_(torch.as_tensor(np.array(q.mean), dtype=torch.float64))
            self.rho.copy_(inverse_softplus(torch.as_tensor(np.array(q.sd), dtype=torch.float64)))
