"""A whole teaching scenario (data, prior, fit, pacing) in one frozen config, and the presets a teacher picks."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bayesdemo.core.config import METHOD_LABELS, OBJECTIVE_SHORT, FitConfig
from bayesdemo.core.data import DataConfig
from bayesdemo.core.priors import GaussianPrior, Model
from bayesdemo.core.validation import ConfigError, check_int, check_range

MAX_SPEED = 100_000.0  # largest steps-per-second cap a class can be shown
MAX_SNAPSHOT_EVERY = 10**6  # largest number of steps between recorded snapshots
# The default pace: a default fit (2,000 to 3,000 steps) takes 6.7 to 10 s, slow enough for a class to watch.
DEFAULT_SPEED = 300.0
# The fits of "compare all": (method, guide) run together on the same data and seed.
COMPARED_FITS = (("noise", "normal"), ("bbb", "normal"), ("svi", "normal"), ("svi", "mvn"))


def is_noise_label(label: str) -> bool:
    """Whether a fit label (FitConfig.label, or the method name) names noise injection, whose loss is an MSE."""
    return label == "noise" or METHOD_LABELS["noise"] in label


def has_mse_loss(label: str) -> bool:
    """Whether a fit label names a loss that is an MSE, not a negative ELBO: noise injection or BBB's MSE notch."""
    return is_noise_label(label) or OBJECTIVE_SHORT["mse"] in label


def has_likelihood_loss(label: str) -> bool:
    """Whether a fit label names BBB's likelihood-only notch, whose loss is -log-likelihood without the KL."""
    return OBJECTIVE_SHORT["likelihood"] in label


@dataclass(frozen=True)
class Scenario:
    """Everything one demonstration needs: data to simulate, prior, how to fit, and how fast to show it."""

    data: DataConfig = DataConfig()  # synthetic data; its noise_sd is also the model's known noise sd
    prior: GaussianPrior = GaussianPrior()  # prior on (slope, intercept)
    fit: FitConfig = FitConfig()  # the fit (or the shared seed/steps/samples/batch/centre x of all, compare_all)
    compare_all: bool = False  # run noise, bbb, svi-normal and svi-mvn together on the same data and seed
    speed: float = DEFAULT_SPEED  # most steps per second shown to a class; 0 means as fast as possible
    snapshot_every: int = 10  # steps between recorded snapshots

    def __post_init__(self) -> None:
        for name, kind in (("data", DataConfig), ("prior", GaussianPrior), ("fit", FitConfig)):
            value = getattr(self, name)
            if not isinstance(value, kind):
                raise ConfigError(name, f"must be a {kind.__name__}, got {value!r}")
        if not isinstance(self.compare_all, bool):
            raise ConfigError("compare_all", f"must be True or False, got {self.compare_all!r}")
        object.__setattr__(self, "speed", check_range("speed", self.speed, 0.0, MAX_SPEED))
        snapshot_every = check_int("snapshot_every", self.snapshot_every, 1, MAX_SNAPSHOT_EVERY)
        object.__setattr__(self, "snapshot_every", snapshot_every)

    @property
    def model(self) -> Model:
        """The model the fits and the exact reference share: this prior and the data's noise sd as known noise."""
        return Model(self.prior, self.data.noise_sd)

    def fit_configs(self) -> tuple[FitConfig, ...]:
        """The one fit, or for compare_all the four fits with each method's own default lr, optimiser and decay."""
        if not self.compare_all:
            return (self.fit,)
        return tuple(
            dataclasses.replace(self.fit, method=method, guide=guide, lr=None, optimizer=None, lr_decay=None)
            for method, guide in COMPARED_FITS
        )


@dataclass(frozen=True)
class Preset:
    """A named scenario with a sentence or two telling students what to watch for."""

    name: str = "Default"  # what the teacher picks from the list
    description: str = ""  # one or two sentences for students
    scenario: Scenario = Scenario()  # the settings it loads

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError("name", f"must not be blank, got {self.name!r}")


TUTORIAL_DATA = DataConfig(n=100, slope=3.0, intercept=1.0, noise_sd=0.1, x_min=0.0, x_max=1.0)

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "Pyro tutorial",
            "The Pyro tutorial's setting: 100 points on a line with slope 3 and intercept 1, a wide N(0, 10²) prior "
            "and a mean-field guide. Watch the sds settle on the mean-field optimum, below the exact sds.",
            Scenario(data=TUTORIAL_DATA, fit=FitConfig(method="svi", guide="normal", steps=2000)),
        ),
        Preset(
            "Forum noise injection",
            "The forum poster's noise injection: an MSE loss with plain SGD at lr 0.0001. The sds look right for a "
            "while, pass the exact sd after about 43,000 steps and keep shrinking towards 0: it was never inference.",
            Scenario(
                data=TUTORIAL_DATA,
                fit=FitConfig(method="noise", optimizer="sgd", lr=1e-4, lr_decay=1.0, steps=60_000),
                snapshot_every=100,
            ),
        ),
        Preset(
            "Strong wrong prior",
            "A confident prior that says the slope is about -1 (sd 0.1). The data say 3, and the posterior ends up "
            "in between: a strong prior pulls the answer away from what the data alone would give.",
            Scenario(
                data=TUTORIAL_DATA,
                prior=GaussianPrior(slope_mean=-1.0, slope_sd=0.1, intercept_mean=0.0, intercept_sd=10.0),
                fit=FitConfig(method="bbb", steps=2000),
            ),
        ),
        Preset(
            "Tiny data",
            "Only 5 data points: the posterior stays wide and many lines fit the data almost equally well.",
            Scenario(data=dataclasses.replace(TUTORIAL_DATA, n=5), fit=FitConfig(method="bbb", steps=2000)),
        ),
        Preset(
            "Centred x",
            "x runs from -0.5 to 0.5, so slope and intercept are almost uncorrelated a posteriori and the mean-field "
            "guide can match the exact posterior.",
            Scenario(
                data=dataclasses.replace(TUTORIAL_DATA, x_min=-0.5, x_max=0.5),
                fit=FitConfig(method="svi", guide="normal", steps=2000),
            ),
        ),
        Preset(
            "All methods side by side",
            "Noise injection, Bayes by Backprop and two Pyro guides on the same data with the same seed: compare "
            "where each one settles against the exact posterior.",
            Scenario(data=TUTORIAL_DATA, fit=FitConfig(), compare_all=True),
        ),
        Preset(
            "x far from 0",
            "x runs from 10 to 12, far from 0: slope and intercept are almost perfectly correlated and Bayes by "
            'Backprop ends far from its target at the default steps. Tick "Centre x" and run again: it arrives.',
            Scenario(data=dataclasses.replace(TUTORIAL_DATA, x_min=10.0, x_max=12.0), fit=FitConfig(method="bbb")),
        ),
    )
}
