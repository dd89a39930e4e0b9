"""The page's Streamlit patches (message_queue_fix, runner_handover_fix): each checked before it is installed, and one
logged warning per process saying which are in, on which Streamlit version."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

import streamlit

from bayesdemo.page import message_queue_fix, runner_handover_fix

TESTED_VERSIONS = ("1.67",)  # Streamlit major.minor versions the patches were traced and tested on
_LOGGER = logging.getLogger(__name__)
_REPORT_LOCK = threading.Lock()
_reported = False  # the page's script runs again on every rerun: the summary is logged once per process


def _joined(names: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def summary(version: str, installed: Mapping[str, bool]) -> str:
    """One line: the Streamlit version (and whether the patches were tested on it), the patches in and those not."""
    tested = ".".join(version.split(".")[:2]) in TESTED_VERSIONS
    where = f"Streamlit {version}" + ("" if tested else f", not {' or '.join(TESTED_VERSIONS)} as tested")
    patched = [name for name, done in installed.items() if done]
    left = [name for name, done in installed.items() if not done]
    text = f"{where}: patched with {_joined(patched)}" if patched else f"{where}: no patch installed"
    if left:
        text += f"; not installed (Streamlit left as it is there): {_joined(left)}"
    return text + "."


def install() -> dict[str, bool]:
    """Install each patch that passes its check (once per process); the first call logs which are in."""
    global _reported
    installed = {
        message_queue_fix.NAME: message_queue_fix.install(),
        runner_handover_fix.NAME: runner_handover_fix.install(),
    }
    with _REPORT_LOCK:
        if not _reported:
            _reported = True
            _LOGGER.warning(summary(streamlit.__version__, installed))
    return installed
