"""Every setting a user can set, in one table: its place in the Scenario, its label on screen, its link key, its
command-line flag, its kind, range and help. The form, the shared link and the command line are derived from it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from bayesdemo.core.config import (
    GUIDES,
    KL_ESTIMATORS,
    MAX_BATCH_SIZE,
    MAX_LR,
    MAX_SAMPLES,
    MAX_SEED,
    MAX_STEPS,
    METHODS,
    MIN_LR_DECAY,
    OBJECTIVES,
    OPTIMIZERS,
    SVI_ELBOS,
    FitConfig,
)
from bayesdemo.core.data import MAX_POINTS, DataConfig
from bayesdemo.core.priors import GaussianPrior
from bayesdemo.core.scenario import MAX_SNAPSHOT_EVERY, MAX_SPEED, Scenario
from bayesdemo.core.validation import MIN_SCALE, ConfigError, check_choice

KINDS = ("float", "int", "choice", "bool")
PARTS: dict[str, type] = {"data": DataConfig, "prior": GaussianPrior, "fit": FitConfig, "": Scenario}
MAX_ABS_SETTING = 1e6  # largest |slope|, |intercept|, |x|, prior mean or sd DataConfig and GaussianPrior accept
# FitConfig fields no form, link or flag sets: the explore views and benchmarks set them in code.
ENGINE_ONLY = {"fit": ("learn_noise", "average", "device", "antithetic", "adam_beta2")}


@dataclass(frozen=True)
class Setting:
    """One setting a user can set: where it lives in the Scenario and its names on screen, in a link and as a flag."""

    part: str  # "data", "prior", "fit", or "" for a field of Scenario itself
    name: str  # the field of that part: DataConfig.n, FitConfig.lr, Scenario.speed
    label: str  # the form's label: what messages on the page name
    link_key: str | None  # query-string key (stable: links in the wild depend on it); None: no link carries it
    flag: str | None  # command-line flag; None: none. Settings sharing a flag get one value (see bayesdemo.cli)
    kind: str  # one of KINDS
    low: float | None = None  # smallest accepted value (numbers), as the config checks it
    high: float | None = None  # largest accepted value (numbers)
    low_open: bool = False  # `low` itself is refused: the value must be greater than it
    choices: tuple[str, ...] = ()  # the accepted words (kind "choice")
    optional: bool = False  # None is accepted: the method's default is then in force (property `in_force`)
    on_form: bool = True  # the sidebar has a widget of its own for it (compare all is a choice of the Method list)
    help: str = ""  # one sentence in the words on screen

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, KINDS)
        check_choice("part", self.part, tuple(PARTS))
        check_choice("name", self.name, tuple(field.name for field in dataclasses.fields(PARTS[self.part])))
        if self.optional and not hasattr(PARTS[self.part], f"{self.name}_in_force"):
            raise ConfigError("optional", f"needs a property {self.name}_in_force with the value in force")

    @property
    def widget_key(self) -> str:
        """The form's session-state key: "data_n", "fit_lr", "speed"."""
        return f"{self.part}_{self.name}" if self.part else self.name

    @property
    def in_force(self) -> str | None:
        """The property with the value in force of an optional setting ("lr_in_force"); None for the others."""
        return f"{self.name}_in_force" if self.optional else None

    @property
    def default(self) -> Any:
        """The value of a default Scenario."""
        owner = getattr(Scenario(), self.part) if self.part else Scenario()
        return getattr(owner, self.name)

    def value_of(self, scenario: Scenario) -> Any:
        """This setting's value in `scenario`."""
        return getattr(getattr(scenario, self.part) if self.part else scenario, self.name)

    @property
    def range_text(self) -> str:
        """The accepted values in words: "2 to 1,000,000", "greater than 0, at most 10", "noise, bbb or svi"."""
        if self.kind == "choice":
            return f"{', '.join(self.choices[:-1])} or {self.choices[-1]}"
        if self.kind == "bool" or self.low is None or self.high is None:
            return "on or off" if self.kind == "bool" else ""
        if self.low_open:
            return f"greater than {_number_text(self.low)}, at most {_number_text(self.high)}"
        return f"{_number_text(self.low)} to {_number_text(self.high)}"


def _number_text(value: float) -> str:
    """A limit as a reader writes it: 1,000,000, 0.5, 1e-09."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


# fmt: off
SETTINGS: tuple[Setting, ...] = (
    Setting("data", "n", "Data points n", "n", "--n", "int", 2, MAX_POINTS, help="Number of simulated data points."),
    Setting("data", "slope", "True slope", "w", "--slope", "float", -MAX_ABS_SETTING, MAX_ABS_SETTING,
            help="Slope of the line the data are simulated from."),
    Setting("data", "intercept", "True intercept", "b", "--intercept", "float", -MAX_ABS_SETTING, MAX_ABS_SETTING,
            help="Intercept of the line the data are simulated from."),
    Setting("data", "noise_sd", "Noise sd", "s", "--noise-sd", "float", MIN_SCALE, MAX_ABS_SETTING,
            help="Sd of the simulated noise; also the model's known noise sd."),
    Setting("data", "x_min", "x from", "x0", "--x-min", "float", -MAX_ABS_SETTING, MAX_ABS_SETTING,
            help="Lower end of the uniform range x is drawn from."),
    Setting("data", "x_max", "x to", "x1", "--x-max", "float", -MAX_ABS_SETTING, MAX_ABS_SETTING,
            help="Upper end of the uniform range x is drawn from; greater than x from."),
    Setting("data", "seed", "Seed", "ds", "--seed", "int", 0, MAX_SEED, help="Seed of the simulated data."),
    Setting("prior", "slope_mean", "Prior mean of the slope", "pw", "--prior-mean", "float", -MAX_ABS_SETTING,
            MAX_ABS_SETTING, help="Mean of the Gaussian prior on the slope."),
    Setting("prior", "slope_sd", "Prior sd of the slope", "pws", "--prior-sd", "float", MIN_SCALE, MAX_ABS_SETTING,
            help="Sd of the Gaussian prior on the slope."),
    Setting("prior", "intercept_mean", "Prior mean of the intercept", "pb", "--prior-mean", "float",
            -MAX_ABS_SETTING, MAX_ABS_SETTING, help="Mean of the Gaussian prior on the intercept."),
    Setting("prior", "intercept_sd", "Prior sd of the intercept", "pbs", "--prior-sd", "float", MIN_SCALE,
            MAX_ABS_SETTING, help="Sd of the Gaussian prior on the intercept."),
    Setting("fit", "method", "Method", "m", "--method", "choice", choices=METHODS,
            help="Noise injection minimises the MSE of sampled predictions; Bayes by Backprop and Pyro SVI fit q by "
                 "maximising the ELBO. Each is judged against the exact posterior."),
    Setting("fit", "guide", "Guide (Pyro SVI)", "g", "--guide", "choice", choices=GUIDES,
            help="The family of q that Pyro SVI fits."),
    Setting("fit", "optimizer", "Optimizer", "o", "--optimizer", "choice", choices=OPTIMIZERS,
            optional=True, help="SGD or Adam; by default SGD for noise injection, Adam for the others."),
    Setting("fit", "lr", "Learning rate", "lr", "--lr", "float", 0.0, MAX_LR, low_open=True, optional=True,
            help="The optimizer's first step size."),
    Setting("fit", "lr_decay", "Final lr / first lr", "ld", "--lr-decay", "float", MIN_LR_DECAY, 1.0,
            optional=True, help="Exponential learning-rate decay over the run; 1 keeps it constant."),
    Setting("fit", "samples", "Samples per step", "k", "--samples", "int", 1, MAX_SAMPLES, optional=True,
            help="Monte-Carlo draws of the parameters per step."),
    Setting("fit", "batch_size", "Batch size", "bs", "--batch-size", "int", 0, MAX_BATCH_SIZE,
            help="Data points per step; 0 means all of them."),
    Setting("fit", "seed", "Fit seed", "fs", "--seed", "int", 0, MAX_SEED,
            help="Seed of the fit's own random draws: start, samples and minibatches."),
    Setting("fit", "steps", "Steps", "t", "--steps", "int", 1, MAX_STEPS, optional=True,
            help="Optimisation steps; with Run until at target, the most the fit may take."),
    Setting("fit", "objective", "Objective", "obj", None, "choice", choices=OBJECTIVES,
            help="The dial from noise injection to Bayes by Backprop: without the KL to the prior the sds collapse."),
    Setting("fit", "kl", "KL estimator", "kl", None, "choice", choices=KL_ESTIMATORS,
            help="Both are unbiased; the Monte-Carlo KL adds gradient noise."),
    Setting("fit", "local_reparam", "Local reparameterisation", "lrp", None, "bool",
            help="Sample each prediction instead of the weights (Kingma et al. 2015): lower gradient variance."),
    Setting("fit", "centre_x", "Centre x", "cx", "--centre-x", "bool",
            help="Fits the slope and the intercept at mean x, then maps back; the prior is unchanged."),
    Setting("fit", "until_target", "Run until at target", "ut", "--until-target", "bool",
            help="Stops once the fit is at its target; Steps is then the cap."),
    Setting("fit", "svi_elbo", "Pyro SVI's ELBO", None, "--svi-elbo", "choice", choices=SVI_ELBOS, on_form=False,
            help="Pyro SVI: Trace_ELBO's estimate written out (direct, faster) or Trace_ELBO itself (trace)."),
    Setting("", "compare_all", "Compare all methods", "all", None, "bool", on_form=False,
            help="Noise injection, Bayes by Backprop and two Pyro guides on the same data and seed."),
    Setting("", "speed", "Speed (steps per second)", "v", None, "float", 0.0, MAX_SPEED,
            help="Most steps per second shown; 0 means as fast as possible."),
    Setting("", "snapshot_every", "Snapshot every (steps)", "se", "--snapshot-every", "int", 1, MAX_SNAPSHOT_EVERY,
            help="Steps between recorded snapshots."),
)
# fmt: on
BY_WIDGET_KEY = {setting.widget_key: setting for setting in SETTINGS}  # "data_n" -> the n setting
LINKED = tuple(setting for setting in SETTINGS if setting.link_key is not None)  # the settings a link carries
ON_FORM = tuple(setting for setting in SETTINGS if setting.on_form)  # the settings with a widget of their own


def setting_of(part: str, name: str) -> Setting | None:
    """The setting of field `name` of `part` ("data", "prior", "fit", "" for Scenario); None for an engine-only one."""
    return BY_WIDGET_KEY.get(f"{part}_{name}" if part else name)


def label_of(part: str, name: str) -> str:
    """The label on screen of field `name` of `part`, or the field's name where no form shows it."""
    setting = setting_of(part, name)
    return name if setting is None else setting.label
