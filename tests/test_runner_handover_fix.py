"""The runner handover fix: a stopped runner's last events are handled before a new runner takes over."""

from __future__ import annotations

import asyncio
import logging

from streamlit.runtime.app_session import AppSession, AppSessionState
from streamlit.runtime.scriptrunner import ScriptRunner

from bayesdemo.page import runner_handover_fix


class Runner:
    """A script runner that has stopped (refuses reruns) or is running (takes them)."""

    def __init__(self, name: str, running: bool):
        self.name = name
        self.running = running
        self.reruns: list[str] = []

    def request_rerun(self, rerun_data: str) -> bool:
        if self.running:
            self.reruns.append(rerun_data)
        return self.running


class Session:
    """What the wrapped method uses of an AppSession: its event loop, current runner and state."""

    def __init__(self, loop: asyncio.AbstractEventLoop, runner: Runner | None):
        self._event_loop = loop
        self._scriptrunner = runner
        self._state = AppSessionState.APP_NOT_RUNNING
        self.log: list[tuple[str, str]] = []


def create(session: Session, rerun_data: str) -> None:
    """Streamlit's _create_scriptrunner, reduced to what matters here: the new runner becomes current."""
    session._scriptrunner = Runner(f"new for {rerun_data}", running=True)
    session.log.append(("created", rerun_data))


def last_event_of_stopped_runner(session: Session) -> None:
    """The stopped runner's run end, already waiting on the event loop: handled only if that runner is current."""
    current = session._scriptrunner.name if session._scriptrunner else "none"
    session.log.append(("run end handled" if current == "stopped" else "run end ignored", current))


def run_pending(loop: asyncio.AbstractEventLoop) -> None:
    """Handle every callback waiting on `loop`."""
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_streamlit_alone_ignores_the_stopped_runners_run_end_when_a_rerun_arrives_first():
    # The failure the fix exists for: the new runner is current before the old one's last event is handled.
    loop = asyncio.new_event_loop()
    session = Session(loop, Runner("stopped", running=False))
    loop.call_soon(last_event_of_stopped_runner, session)
    create(session, "fragment rerun")
    run_pending(loop)
    assert session.log == [("created", "fragment rerun"), ("run end ignored", "new for fragment rerun")]
    loop.close()


def test_with_the_fix_the_stopped_runners_run_end_is_handled_before_the_new_runner_starts():
    loop = asyncio.new_event_loop()
    session = Session(loop, Runner("stopped", running=False))
    loop.call_soon(last_event_of_stopped_runner, session)
    runner_handover_fix.create_after_stopped_runner_events(create)(session, "fragment rerun")
    assert session.log == [], "nothing is created before the waiting events are handled"
    run_pending(loop)
    assert session.log == [("run end handled", "stopped"), ("created", "fragment rerun")]
    loop.close()


def test_without_a_current_runner_the_new_one_is_created_at_once_as_streamlit_does():
    loop = asyncio.new_event_loop()
    session = Session(loop, None)
    runner_handover_fix.create_after_stopped_runner_events(create)(session, "page run")
    assert session.log == [("created", "page run")]
    loop.close()


def test_two_requests_meeting_the_stopped_runner_start_one_runner_that_takes_both():
    loop = asyncio.new_event_loop()
    session = Session(loop, Runner("stopped", running=False))
    fixed = runner_handover_fix.create_after_stopped_runner_events(create)
    fixed(session, "first")
    fixed(session, "second")
    run_pending(loop)
    assert session.log == [("created", "first")]
    assert session._scriptrunner.reruns == ["second"]
    loop.close()


def test_a_session_closed_while_waiting_starts_no_runner():
    loop = asyncio.new_event_loop()
    session = Session(loop, Runner("stopped", running=False))
    runner_handover_fix.create_after_stopped_runner_events(create)(session, "fragment rerun")
    session._state = AppSessionState.SHUTDOWN_REQUESTED
    run_pending(loop)
    assert session.log == []
    loop.close()


def test_install_patches_streamlits_app_session_once():
    assert runner_handover_fix.install()
    patched = AppSession._create_scriptrunner
    assert runner_handover_fix.install()
    assert AppSession._create_scriptrunner is patched
    assert getattr(patched, "__wrapped__", None) is not None


def original_create():
    """Streamlit's own _create_scriptrunner, whether or not the fix is installed."""
    return getattr(AppSession._create_scriptrunner, "__wrapped__", AppSession._create_scriptrunner)


def test_streamlit_167s_app_session_passes_the_check():
    assert runner_handover_fix.check(original_create()) is None


def test_a_changed_create_signature_is_refused_and_streamlits_own_method_keeps_working(monkeypatch, caplog):
    def create_with_fragment(self, initial_rerun_data, fragment_id=None):
        """A later _create_scriptrunner taking one more argument: the fix's two-argument wrapper would drop it."""
        create(self, f"{initial_rerun_data} in {fragment_id}")

    monkeypatch.setattr(AppSession, "_create_scriptrunner", create_with_fragment)
    with caplog.at_level(logging.WARNING, logger=runner_handover_fix.__name__):
        assert not runner_handover_fix.install()
    assert AppSession._create_scriptrunner is create_with_fragment, "Streamlit is left unpatched"
    assert "not installed" in caplog.text and "initial_rerun_data, fragment_id" in caplog.text
    session = Session(asyncio.new_event_loop(), Runner("stopped", running=False))
    AppSession._create_scriptrunner(session, "rerun", "live")  # as Streamlit would call it: unchanged
    assert session.log == [("created", "rerun in live")]
    session._event_loop.close()


def test_a_script_runner_whose_rerun_request_changed_is_refused(monkeypatch):
    def request_rerun(self, rerun_data, priority):
        return False

    unpatched = original_create()
    monkeypatch.setattr(ScriptRunner, "request_rerun", request_rerun)
    monkeypatch.setattr(AppSession, "_create_scriptrunner", unpatched)  # as before any install in this process
    assert "request_rerun" in runner_handover_fix.check(unpatched)
    assert not runner_handover_fix.install()
    assert AppSession._create_scriptrunner is unpatched


def test_an_app_session_that_no_longer_keeps_its_event_loop_is_refused(monkeypatch):
    def session_init(self, *args, **kwargs):
        self._scriptrunner = None  # a later AppSession: no loop of its own, so the fix has nowhere to defer to
        self._state = AppSessionState.APP_NOT_RUNNING

    monkeypatch.setattr(AppSession, "__init__", session_init)
    assert "self._event_loop" in runner_handover_fix.check(original_create())
