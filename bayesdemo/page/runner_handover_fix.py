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
pending callbacks, which already hold all of the stopped runner's events, so that run reaches the browser whole. It is
installed only after `check` finds AppSession and ScriptRunner as the fix uses them (built on Streamlit 1.67).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from streamlit.runtime.app_session import AppSession, AppSessionState

_LOGGER = logging.getLogger(__name__)
_PATCHED_MARK = "_bayesdemo_creates_runner_after_stopped_runner_events"
NAME = "the runner handover fix"  # how logs name this patch
CREATE_PARAMETERS = ("self", "initial_rerun_data")  # AppSession._create_scriptrunner in 1.67
SESSION_ATTRIBUTES = ("self._scriptrunner", "self._event_loop", "self._state")  # set by AppSession.__init__, read here


def create_after_stopped_runner_events(create: Callable[..., None]) -> Callable[..., None]:
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


def _parameter_names(function: Any) -> tuple[str, ...] | None:
    """The names of `function`'s parameters when all are plain positional-or-keyword ones, else None."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters):
        return None
    return tuple(p.name for p in parameters)


def check(create: Any) -> str | None:
    """Why the fix cannot wrap `create` (Streamlit's AppSession._create_scriptrunner), or None when it can.

    The signatures the fix calls must be 1.67's, AppSession must still keep its runner, event loop and state where the
    fix reads them, and the wrapped method, run on a stand-in session with a stopped runner, must call `create` once,
    with arguments `create`'s signature accepts, after the events already waiting on the loop.
    """
    if create is None:
        return "AppSession has no _create_scriptrunner"
    if _parameter_names(create) != CREATE_PARAMETERS:
        return f"_create_scriptrunner{inspect.signature(create)} is not _create_scriptrunner(self, initial_rerun_data)"
    try:
        from streamlit.runtime.scriptrunner import ScriptRunner

        source = inspect.getsource(AppSession.__init__)
    except (ImportError, OSError, TypeError) as error:
        return f"Streamlit's session code cannot be read: {error!r}"
    if _parameter_names(getattr(ScriptRunner, "request_rerun", None)) != ("self", "rerun_data"):
        return "ScriptRunner.request_rerun is not request_rerun(self, rerun_data)"
    missing = [name for name in SESSION_ATTRIBUTES if name not in source]
    if missing or not hasattr(AppSessionState, "SHUTDOWN_REQUESTED"):
        return f"AppSession no longer keeps {', '.join(missing) or 'AppSessionState.SHUTDOWN_REQUESTED'}"
    order: list[str] = []

    def stand_in_create(session: Any, rerun_data: Any) -> None:
        inspect.signature(create).bind(session, rerun_data)  # TypeError if the wrapper's call no longer fits
        order.append("created")

    # A stand-in event loop that only queues callbacks: install may run on a thread whose own loop is running.
    pending: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
    loop = SimpleNamespace(call_soon=lambda callback, *args: pending.append((callback, args)))
    try:
        stopped = SimpleNamespace(request_rerun=lambda rerun_data: False)
        session = SimpleNamespace(_scriptrunner=stopped, _event_loop=loop, _state=AppSessionState.APP_NOT_RUNNING)
        loop.call_soon(order.append, "stopped runner's last event")
        create_after_stopped_runner_events(stand_in_create)(session, "rerun")
        for callback, args in pending:
            callback(*args)
    except Exception as error:  # any failure of the wrapped method on the stand-in means: do not install
        return f"the wrapped _create_scriptrunner failed on a stand-in session: {error!r}"
    if order != ["stopped runner's last event", "created"]:
        return f"on a stand-in session the new runner came as {order}, not after the stopped runner's last event"
    return None


def install() -> bool:
    """Patch AppSession once per process, after `check`; False (warning logged) when it fails."""
    current: Any = getattr(AppSession, "_create_scriptrunner", None)
    if getattr(current, _PATCHED_MARK, False):
        return True
    problem = check(current)
    if problem is not None:
        _LOGGER.warning("%s is not installed, Streamlit is left as it is: %s", NAME, problem)
        return False
    # Installing the patch is replacing the method on the class, which mypy forbids by default.
    AppSession._create_scriptrunner = create_after_stopped_runner_events(current)  # type: ignore[method-assign]
    return True
