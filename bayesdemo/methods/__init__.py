"""Inference methods, one protocol (base.Method): noise injection, Bayes by Backprop, Pyro SVI."""

from bayesdemo.methods.base import GUIDES, METHODS, FitConfig, Method, make_method

__all__ = ["GUIDES", "METHODS", "FitConfig", "Method", "make_method"]
