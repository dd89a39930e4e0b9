"""Pyro's process-wide state, tamed: one lock around every Pyro call, and each fit's own torch RNG stream.

Pyro keeps a global handler stack and draws from torch's global RNG, so two threads inside Pyro at once corrupt each
other, and a fit's draws would depend on what else ran. The rule (docs/architecture.md): every Pyro call holds
PYRO_LOCK, and runs on its owner's RNG state swapped in for the call, so the same seed gives the same trajectory.
"""

from __future__ import annotations

import threading
from typing import Protocol

import torch

PYRO_LOCK = threading.RLock()  # held around every Pyro call in the process


class HasRNGState(Protocol):
    """Anything that keeps its own torch RNG state between Pyro calls."""

    rng_state: torch.Tensor


class OwnTorchRNG:
    """Hold PYRO_LOCK and run on `owner.rng_state`; on exit save it back and restore the caller's RNG state."""

    def __init__(self, owner: HasRNGState):
        self.owner = owner

    def __enter__(self) -> None:
        PYRO_LOCK.acquire()
        self.saved_state = torch.get_rng_state()
        torch.set_rng_state(self.owner.rng_state)

    def __exit__(self, *exc_info: object) -> None:
        self.owner.rng_state = torch.get_rng_state()
        torch.set_rng_state(self.saved_state)
        PYRO_LOCK.release()
