"""bayesdemo: Bayesian linear regression, exact and variational, for teaching."""

__version__ = "0.1.0"
