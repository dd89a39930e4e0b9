"""Inference methods, one protocol (base.Method): noise injection, Bayes by Backprop, Pyro SVI; the registry that
names them and the factory that builds one.

Each method's module is imported when a method of its kind is first built, so choosing a config imports neither torch
nor Pyro.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bayesdemo.core.config import GUIDES, METHODS, FitConfig
from bayesdemo.methods.base import Method

if TYPE_CHECKING:
    from bayesdemo.core.data import Dataset
    from bayesdemo.core.priors import Model

MethodClass = Callable[["Dataset", "Model", FitConfig], Method]  # a method's constructor


def _noise_injection() -> MethodClass:
    from bayesdemo.methods.noise import NoiseInjection

    return NoiseInjection


def _bayes_by_backprop() -> MethodClass:
    from bayesdemo.methods.bbb import BayesByBackprop

    return BayesByBackprop


def _pyro_svi() -> MethodClass:
    from bayesdemo.methods.pyro_svi import PyroSVI

    return PyroSVI


# One entry per name in METHODS (tests/test_layers.py): the loader of the method's class, imported on first use.
REGISTRY: dict[str, Callable[[], MethodClass]] = {
    "noise": _noise_injection,
    "bbb": _bayes_by_backprop,
    "svi": _pyro_svi,
}


def make_method(dataset: Dataset, model: Model, config: FitConfig) -> Method:
    """Build the method named by `config.method` on `dataset` under `model`."""
    return REGISTRY[config.method]()(dataset, model, config)


__all__ = ["GUIDES", "METHODS", "REGISTRY", "FitConfig", "Method", "make_method"]
