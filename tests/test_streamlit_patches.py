"""The page's Streamlit patches: installed only when their checks pass, and one logged line says which are in."""

from __future__ import annotations

import logging

import streamlit
from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

from bayesdemo.page import message_queue_fix, runner_handover_fix, streamlit_patches

BOTH = {message_queue_fix.NAME: True, runner_handover_fix.NAME: True}


def test_the_summary_names_the_version_and_each_patch_in_or_out():
    assert streamlit_patches.summary("1.67.0", BOTH) == (
        "Streamlit 1.67.0: patched with the fragment-run message fix and the runner handover fix."
    )
    one_out = {message_queue_fix.NAME: False, runner_handover_fix.NAME: True}
    assert streamlit_patches.summary("1.70.1", one_out) == (
        "Streamlit 1.70.1, not 1.67 as tested: patched with the runner handover fix; "
        "not installed (Streamlit left as it is there): the fragment-run message fix."
    )


def test_install_logs_one_warning_per_process_naming_what_it_installed(monkeypatch, caplog):
    monkeypatch.setattr(streamlit_patches, "_reported", False)
    with caplog.at_level(logging.WARNING, logger=streamlit_patches.__name__):
        assert streamlit_patches.install() == BOTH
        assert streamlit_patches.install() == BOTH  # the page's script runs again on every rerun
    (record,) = [r for r in caplog.records if r.name == streamlit_patches.__name__]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == streamlit_patches.summary(streamlit.__version__, BOTH)


def test_a_patch_refused_on_an_untested_version_is_named_and_the_other_still_installed(monkeypatch, caplog):
    def clear(self, *, retain_lifecycle_msgs=False, fragment_ids_this_run=None):
        """A later ForwardMsgQueue.clear with keyword-only options."""
        self._queue = []

    monkeypatch.setattr(ForwardMsgQueue, "clear", clear)
    monkeypatch.setattr(streamlit, "__version__", "1.70.1")
    monkeypatch.setattr(streamlit_patches, "_reported", False)
    with caplog.at_level(logging.WARNING):
        installed = streamlit_patches.install()
    assert installed == {message_queue_fix.NAME: False, runner_handover_fix.NAME: True}
    assert ForwardMsgQueue.clear is clear
    summaries = [r.getMessage() for r in caplog.records if r.name == streamlit_patches.__name__]
    assert summaries == [streamlit_patches.summary("1.70.1", installed)]
