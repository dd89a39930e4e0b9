"""Keep the end of a page run whose script runner stopped just before the next rerun request arrived.

Streamlit 1.67 runs a session's script in a ScriptRunner thread that hands its events (each message, the run's end)
to the server's event loop. When a run ends and no rerun is waiting, the runner stops. A rerun request that the event
loop handles after the runner stopped, but before the loop has handled that runner's last events, starts a new runner
at once; the loop then ignores the old runner's remaining events as coming from a runner no longer current. Those
events are the end of the page run: the browser gets its first part, never its end, and nothing after. Under load
(bench/load_test.py: 20 Chromium pages and the server on 2 cores, the event loop seconds behind) this hit 2 to 9 of
20 pages per run at the page run that follows a fit's end: the page kept showing the fit as finished with its
downloads disabled. Traced from the websocket frames (the page run's messages stop mid-page, with no end) and from
the server, which logged the run as complete and a new runner created while the old one was still current.

The fix: when a rerun request finds the current runner stopped, the new runner is created after the event loop's
pending callbacks, which already hold all of the stopped runner's events, so that run reaches the browser whole.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from streamlit.runtime.app_session import AppSession, AppSessionState

_LOGGER = logging.getLogger(__name__)
_PATCHED_MARK = "_bayesdemo_creates_runner_after_stopped_runner_events"


def create_after_stopped_runner_events(create: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """Wrap AppSession._create_scriptrunner: a stopped runner still current gets its events handled first."""

    @functools.wraps(create)
    def create_scriptrunner(self: Any, initial_rerun_data: Any) -> None:
        stopped = self._scriptrunner
        if stopped is None:  # no runner, or one stopped on purpose (a full rerun replacing it): as Streamlit does
            create(self, initial_rerun_data)
            return

        def create_now() -> None:
            if self._state == AppSessionState.SHUTDOWN_REQUESTED:
                return  # the session closed meanwhile: no new run, as Streamlit's request_rerun does
            current = self._scriptrunner
            if current is not None and current is not stopped and current.request_rerun(initial_rerun_data):
                return  # a runner created meanwhile for an earlier request takes this rerun too
            create(self, initial_rerun_data)

        # The stopped runner sent every event of its run before it stopped, so they wait ahead of this callback.
        self._event_loop.call_soon(create_now)

    setattr(create_scriptrunner, _PATCHED_MARK, True)
    return create_scriptrunner


def install() -> bool:
    """Patch AppSession once per process; False (logged) where its internals differ from Streamlit 1.67's."""
    current: Any = getattr(AppSession, "_create_scriptrunner", None)
    if current is None:
        _LOGGER.warning("Streamlit's AppSession changed: the runner handover fix is not installed")
        return False
    if getattr(current, _PATCHED_MARK, False):
        return True
    AppSession._create_scriptrunner = create_after_stopped_runner_events(current)
    return True
