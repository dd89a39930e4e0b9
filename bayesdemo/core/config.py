"""How to fit: the methods, guides and objectives on offer, their labels and defaults, and FitConfig."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesdemo.core.validation import ConfigError, check_choice, check_int, check_range

METHODS = ("noise", "bbb", "svi")  # noise injection (the forum recipe), Bayes by Backprop, Pyro SVI
GUIDES = ("normal", "mvn", "tutorial")  # Pyro guides: AutoNormal, AutoMultivariateNormal, the Pyro tutorial's
OPTIMIZERS = ("sgd", "adam")
METHOD_LABELS = {
    "noise": "Noise injection (MSE + SGD)",
    "bbb": "Bayes by Backprop",
    "svi": "Pyro SVI",
}
GUIDE_LABELS = {
    "normal": "mean-field (AutoNormal)",
    "mvn": "full covariance (AutoMultivariateNormal)",
    "tutorial": "the tutorial's softplus guide",
}
# Defaults per method (and guide), measured on the Pyro tutorial data (see README, "Defaults"). Noise injection keeps
# the forum question's SGD on the MSE at a larger lr, so a default run shows its sds shrinking to 0 and its means
# reaching least squares (at the forum's FORUM_NOISE_LR its sds shrink by an eighth in 2,000 steps). 16 vectorised
# samples per step cost little wall time and let fits settle at a constant lr; the full-covariance guide's correlation
# builds slowly, so it gets a larger lr decaying to a quarter over the run.
FORUM_NOISE_LR = 1e-4  # the learning rate of the forum question "Bayesian regression using noise injection?"
DEFAULT_LR = {"noise": 0.02, "bbb": 0.05, "svi": 0.05, "svi/mvn": 0.2}
DEFAULT_LR_DECAY = {"noise": 1.0, "bbb": 1.0, "svi": 1.0, "svi/mvn": 0.25}  # final lr / first lr
DEFAULT_SAMPLES = {"noise": 1, "bbb": 16, "svi": 16}
DEFAULT_OPTIMIZER = {"noise": "sgd", "bbb": "adam", "svi": "adam"}
DEFAULT_AVERAGE = {"noise": False, "bbb": True, "svi": True}  # iterate averaging, applied to minibatch fits only
# Antithetic draws (eps, -eps) cancel the minibatch noise that multiplies eps in the reparameterised sd gradient.
# Pyro SVI draws them in its written-out Trace_ELBO (known noise sd only; Trace_ELBO itself cannot pair draws).
# Minibatch fits only, with an even sample count: on the full data they remove the gradient noise that damps Adam's
# constant-lr steps near the optimum, and the means then keep oscillating (measured, bench/README.md).
DEFAULT_ANTITHETIC = {"noise": False, "bbb": True, "svi": True}
# Steps of a default run, per method (and guide): long enough to reach the method's target on the Pyro tutorial data
# (README, "Defaults"); noise injection's run is long enough to show its sds shrinking towards 0.
DEFAULT_STEPS = {"noise": 3000, "bbb": 3000, "svi": 2000, "svi/mvn": 3000}
# "Run until at target" without a step count caps the run at this many times the default, with room for an
# ill-conditioned problem (docs/methods.md).
UNTIL_TARGET_CAP_FACTOR = 25
# Adam's beta2 on minibatch fits: torch's 0.999 remembers the early gradients (10^4 times the final ones at n = 1e5)
# for thousands of steps and shrinks every later step; 0.99 forgets them in hundreds (measured, bench/README.md).
MINIBATCH_ADAM_BETA2 = 0.99
KL_ESTIMATORS = ("closed", "monte_carlo")  # closed form (Gaussian prior only) or log q - log prior at the sample
SVI_ELBOS = ("direct", "trace")  # Pyro SVI: Trace_ELBO's estimate written out term by term, or Trace_ELBO itself
OBJECTIVES = ("mse", "likelihood", "elbo")  # the objective dial of Bayes by Backprop (docs/MATH.md, noise injection)
OBJECTIVE_LABELS = {
    "mse": "MSE of sampled predictions, no KL (sds collapse)",
    "likelihood": "Gaussian log-likelihood with 1/(2 s^2), no KL (sds collapse, means to least squares)",
    "elbo": "log-likelihood plus KL to the prior (Bayes by Backprop)",
}
OBJECTIVE_SHORT = {"mse": "MSE, no KL", "likelihood": "likelihood, no KL"}  # in the label of a BBB fit without KL
MAX_STEPS = 1_000_000
MAX_SAMPLES = 1024
MAX_LR = 10.0  # largest learning rate accepted (the smallest is anything above 0)
MIN_LR_DECAY = 1e-6  # smallest final lr / first lr accepted (the largest is 1: no growth)
MAX_BATCH_SIZE = 10**7  # largest minibatch accepted (a batch larger than the data is refused where n is known)
MAX_SEED = 2**32 - 1  # largest seed accepted: numpy's and torch's seeds are 32-bit
ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults (beta2 on full-data fits)


def check_device(device: str) -> str:
    """`device` must be "cpu", or "cuda" / "cuda:K" on a machine where torch sees CUDA."""
    if not isinstance(device, str) or not (device == "cpu" or device == "cuda" or device.startswith("cuda:")):
        raise ConfigError("device", f"must be 'cpu' or 'cuda', got {device!r}")
    if device.startswith("cuda"):
        import torch  # only here: choosing a config needs no torch unless it names a CUDA device

        if not torch.cuda.is_available():
            raise ConfigError("device", f"must be 'cpu' on this machine (torch sees no CUDA), got {device!r}")
    return device


@dataclass(frozen=True)
class FitConfig:
    """How to fit: which method (and guide), optimiser, learning rate, samples per step, minibatch, seed, steps.

    A field left None takes the method's default. The value in force is always the property named after the field
    with "_in_force" (`lr` -> `lr_in_force`, `steps` -> `steps_in_force`): one rule, so a reader finds it from the
    field's name, and the settings table (bayesdemo.core.fields) needs no list of property names.
    """

    method: str = "bbb"  # one of METHODS
    guide: str = "normal"  # Pyro SVI guide, one of GUIDES (ignored by other methods)
    optimizer: str | None = None  # "sgd" or "adam"; None: the method's default (DEFAULT_OPTIMIZER)
    lr: float | None = None  # learning rate; None: the method's default (DEFAULT_LR)
    lr_decay: float | None = None  # final lr / first lr (exponential decay over `steps`); None: method default
    samples: int | None = None  # Monte-Carlo samples of theta per step (SVI particles); None: method default
    batch_size: int = 0  # data points per step; 0 means the full data
    seed: int = 0  # seed of the fit's own random stream (initialisation, samples, minibatches)
    steps: int | None = None  # optimisation steps (the cap with until_target); None: the method's (DEFAULT_STEPS)
    learn_noise: bool = False  # also infer the noise sd s (prior Model.noise_prior) instead of using Model.noise_sd
    kl: str = "closed"  # KL_ESTIMATORS: "closed" (falls back to Monte Carlo for non-Gaussian priors) or "monte_carlo"
    local_reparam: bool = False  # Bayes by Backprop: sample each prediction phi^T theta, not theta (Kingma et al.)
    objective: str = "elbo"  # Bayes by Backprop's objective, one of OBJECTIVES (ignored by other methods)
    average: bool | None = None  # posterior() reports q's parameters averaged over steps; None: method default
    device: str = "cpu"  # torch device of the data and q's parameters: "cpu", or "cuda" where available
    antithetic: bool | None = None  # draw eps in pairs (eps, -eps), even samples only; None: method default
    adam_beta2: float | None = None  # Adam's second-moment decay; None: 0.999, or MINIBATCH_ADAM_BETA2 on minibatches
    svi_elbo: str = "direct"  # SVI_ELBOS: "trace" runs pyro.infer.Trace_ELBO itself (same estimate, slower)
    centre_x: bool = False  # train on (slope, intercept at mean x), reported in (slope, intercept) (docs/MATH.md)
    until_target: bool = False  # stop once the convergence rule holds; `steps` is then the cap

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        check_choice("guide", self.guide, GUIDES)
        if self.optimizer is not None:
            check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.lr is not None:
            check_range("lr", self.lr, 0.0, MAX_LR, low_open=True)
        if self.lr_decay is not None:
            check_range("lr_decay", self.lr_decay, MIN_LR_DECAY, 1.0)
        if self.samples is not None:
            object.__setattr__(self, "samples", check_int("samples", self.samples, 1, MAX_SAMPLES))
        object.__setattr__(self, "batch_size", check_int("batch_size", self.batch_size, 0, MAX_BATCH_SIZE))
        object.__setattr__(self, "seed", check_int("seed", self.seed, 0, MAX_SEED))
        if self.steps is not None:
            object.__setattr__(self, "steps", check_int("steps", self.steps, 1, MAX_STEPS))
        for name in ("learn_noise", "local_reparam", "centre_x", "until_target"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, f"must be True or False, got {getattr(self, name)!r}")
        for name in ("average", "antithetic"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), bool):
                raise ConfigError(name, f"must be True, False or None, got {getattr(self, name)!r}")
        if self.antithetic and self.samples_in_force % 2:
            raise ConfigError("antithetic", f"needs an even number of samples, got samples={self.samples_in_force}")
        if self.antithetic and self.method == "noise":
            raise ConfigError("antithetic", "does not apply to noise injection (the forum recipe draws independently)")
        check_choice("svi_elbo", self.svi_elbo, SVI_ELBOS)
        if self.antithetic and self.method == "svi" and (self.learn_noise or self.svi_elbo == "trace"):
            raise ConfigError(
                "antithetic", "needs Pyro SVI's direct ELBO with the noise sd known (Trace_ELBO draws independently)"
            )
        check_device(self.device)
        if self.adam_beta2 is not None:
            check_range("adam_beta2", self.adam_beta2, 0.0, 0.999999)
        if self.method == "svi" and self.device != "cpu":
            raise ConfigError("device", f"must be 'cpu' for Pyro SVI (its model lives on the CPU), got {self.device!r}")
        check_choice("kl", self.kl, KL_ESTIMATORS)
        check_choice("objective", self.objective, OBJECTIVES)
        if self.centre_x and self.learn_noise:
            raise ConfigError("centre_x", "cannot be combined with learning the noise sd: choose one of the two")

    @property
    def _default_key(self) -> str:
        """Key of this method's (and guide's) defaults."""
        return "svi/mvn" if self.targets_full_covariance else self.method

    @property
    def steps_in_force(self) -> int:
        """Steps in force: `steps`, or the method's default (DEFAULT_STEPS); with until_target the cap, by default
        UNTIL_TARGET_CAP_FACTOR times the method's default steps."""
        if self.steps is not None:
            return self.steps
        return DEFAULT_STEPS[self._default_key] * (UNTIL_TARGET_CAP_FACTOR if self.until_target else 1)

    @property
    def lr_in_force(self) -> float:
        """The learning rate in force: `lr`, or the method's default."""
        return DEFAULT_LR[self._default_key] if self.lr is None else float(self.lr)

    @property
    def lr_decay_in_force(self) -> float:
        """The decay in force: `lr_decay`, or the method's default."""
        return DEFAULT_LR_DECAY[self._default_key] if self.lr_decay is None else float(self.lr_decay)

    @property
    def samples_in_force(self) -> int:
        """Samples per step in force: `samples`, or the method's default."""
        return DEFAULT_SAMPLES[self.method] if self.samples is None else self.samples

    @property
    def average_in_force(self) -> bool:
        """Averaging in force: `average`, or the method's default (on for minibatches, DEFAULT_AVERAGE)."""
        if self.average is not None:
            return self.average
        return DEFAULT_AVERAGE[self.method] and self.batch_size > 0

    @property
    def antithetic_in_force(self) -> bool:
        """Antithetic draws in force: `antithetic`, or the method's default on minibatches with an even sample count."""
        if self.antithetic is not None:
            return self.antithetic
        if self.method == "svi" and self.svi_elbo_in_force != "direct":
            return False
        return DEFAULT_ANTITHETIC[self.method] and self.batch_size > 0 and self.samples_in_force % 2 == 0

    @property
    def svi_elbo_in_force(self) -> str:
        """Pyro SVI's ELBO in force: `svi_elbo`, except "trace" (Trace_ELBO itself) with a learned noise sd."""
        return "trace" if self.learn_noise else self.svi_elbo

    @property
    def adam_beta2_in_force(self) -> float:
        """Adam's beta2 in force: `adam_beta2`, or 0.999 (torch's) on the full data and 0.99 on minibatches."""
        if self.adam_beta2 is not None:
            return float(self.adam_beta2)
        return MINIBATCH_ADAM_BETA2 if self.batch_size > 0 else ADAM_BETAS[1]

    @property
    def optimizer_in_force(self) -> str:
        """The optimiser in force: `optimizer`, or the method's default."""
        return DEFAULT_OPTIMIZER[self.method] if self.optimizer is None else self.optimizer

    @property
    def label(self) -> str:
        """Human-readable name of the method (and guide)."""
        if self.method == "svi":
            return f"{METHOD_LABELS['svi']}, {GUIDE_LABELS[self.guide]}"
        if self.method == "bbb" and self.objective in OBJECTIVE_SHORT:
            return f"{METHOD_LABELS['bbb']} ({OBJECTIVE_SHORT[self.objective]})"
        return METHOD_LABELS[self.method]

    @property
    def targets_full_covariance(self) -> bool:
        """True when the method's optimum is the exact posterior (full covariance), not the mean-field one."""
        return self.method == "svi" and self.guide == "mvn"


def centring_matrix(x_mean: float) -> np.ndarray:
    """A (2, 2) with theta = A theta_c: theta_c = (slope, intercept at mean x), intercept = b_c - mean x slope.

    (docs/MATH.md, Centred parameterisation); det A = 1, so densities carry over without a Jacobian.
    """
    return np.array([[1.0, 0.0], [-float(x_mean), 1.0]])
