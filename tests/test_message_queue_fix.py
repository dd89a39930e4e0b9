"""The outgoing-queue fix: a fragment run starting right after a page run keeps that run's messages whole."""

from __future__ import annotations

import logging

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

from bayesdemo.page import message_queue_fix

FRAGMENT = "live-fragment"


def delta(path: list[int], text: str, fragment_id: str = "") -> ForwardMsg:
    """A markdown delta at `path`, in `fragment_id` ("" outside any fragment)."""
    message = ForwardMsg()
    message.metadata.delta_path[:] = path
    message.delta.new_element.markdown.body = text
    message.delta.fragment_id = fragment_id
    return message


def finished(status: int) -> ForwardMsg:
    """A run's end-of-run message."""
    message = ForwardMsg()
    message.script_finished = status
    return message


def page_run_then(queue: ForwardMsgQueue, *later: ForwardMsg) -> None:
    """Enqueue a finished page run (one plain delta, two in the fragment), then `later`."""
    queue.enqueue(delta([0, 0], "header"))
    queue.enqueue(delta([0, 4], "fragment container", FRAGMENT))
    queue.enqueue(delta([0, 4, 0], "fragment chart", FRAGMENT))
    queue.enqueue(finished(ForwardMsg.FINISHED_SUCCESSFULLY))
    for message in later:
        queue.enqueue(message)


def bodies(queue: ForwardMsgQueue) -> list[str]:
    """What the queue still holds: markdown bodies, and script_finished statuses as 'finished:N'."""
    return [
        message.delta.new_element.markdown.body
        if message.WhichOneof("type") == "delta"
        else f"finished:{message.script_finished}"
        for message in queue._queue
    ]


def original_clear():
    """Streamlit's own clear, whether or not the fix is installed."""
    return getattr(ForwardMsgQueue.clear, "__wrapped__", ForwardMsgQueue.clear)


def test_streamlit_alone_drops_a_finished_page_runs_fragment_messages():
    # The failure the fix exists for: the page run's end is kept, its fragment container is not.
    queue = ForwardMsgQueue()
    page_run_then(queue)
    original_clear()(queue, retain_lifecycle_msgs=True, fragment_ids_this_run=[FRAGMENT])
    assert bodies(queue) == ["header", f"finished:{ForwardMsg.FINISHED_SUCCESSFULLY}"]


def test_fragment_run_start_keeps_the_finished_page_run_whole():
    queue = ForwardMsgQueue()
    page_run_then(queue)
    message_queue_fix.keep_finished_page_run(original_clear())(queue, True, [FRAGMENT])
    assert bodies(queue) == [
        "header",
        "fragment container",
        "fragment chart",
        f"finished:{ForwardMsg.FINISHED_SUCCESSFULLY}",
    ]


def test_messages_after_the_finished_page_run_are_cleared_as_streamlit_does():
    # An interrupted fragment run after the page run: its deltas go, its end is kept (marked early for rerun).
    interrupted = [
        delta([0, 4, 1], "stale fragment chart", FRAGMENT),
        finished(ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY),
    ]
    fixed, plain = ForwardMsgQueue(), ForwardMsgQueue()
    page_run_then(fixed, *interrupted)
    for message in interrupted:
        plain.enqueue(message)
    message_queue_fix.keep_finished_page_run(original_clear())(fixed, True, [FRAGMENT])
    original_clear()(plain, True, [FRAGMENT])
    assert bodies(fixed)[:4] == [
        "header",
        "fragment container",
        "fragment chart",
        f"finished:{ForwardMsg.FINISHED_SUCCESSFULLY}",
    ]
    assert bodies(fixed)[4:] == bodies(plain)
    assert "stale fragment chart" not in bodies(fixed)


def test_page_run_starts_and_queues_without_a_finished_page_run_behave_as_streamlit():
    fixed_clear = message_queue_fix.keep_finished_page_run(original_clear())
    for fragment_ids in (None, [FRAGMENT]):
        for with_page_run in (True, False):
            fixed, plain = ForwardMsgQueue(), ForwardMsgQueue()
            for queue in (fixed, plain):
                if with_page_run and fragment_ids is None:
                    page_run_then(queue)
                queue.enqueue(delta([0, 4, 0], "fragment chart", FRAGMENT))
                queue.enqueue(finished(ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY))
            fixed_clear(fixed, True, fragment_ids)
            original_clear()(plain, True, fragment_ids)
            assert bodies(fixed) == bodies(plain)


def test_new_messages_do_not_merge_into_the_kept_page_run():
    queue = ForwardMsgQueue()
    page_run_then(queue)
    message_queue_fix.keep_finished_page_run(original_clear())(queue, True, [FRAGMENT])
    queue.enqueue(delta([0, 4, 0], "new fragment chart", FRAGMENT))
    assert bodies(queue)[-2:] == [f"finished:{ForwardMsg.FINISHED_SUCCESSFULLY}", "new fragment chart"]
    assert "fragment chart" in bodies(queue)


def test_install_patches_once_and_the_app_installs_it():
    assert message_queue_fix.install()
    patched = ForwardMsgQueue.clear
    assert message_queue_fix.install()
    assert ForwardMsgQueue.clear is patched  # not wrapped twice
    assert getattr(patched, "_bayesdemo_keeps_finished_page_runs", False)
    queue = ForwardMsgQueue()
    page_run_then(queue)
    queue.clear(retain_lifecycle_msgs=True, fragment_ids_this_run=[FRAGMENT])
    assert "fragment container" in bodies(queue)


def keyword_only(clear):
    """`clear` as a later Streamlit might declare it: the same options, keyword-only."""

    def clear_keywords_only(self, *, retain_lifecycle_msgs=False, fragment_ids_this_run=None):
        clear(self, retain_lifecycle_msgs, fragment_ids_this_run)

    return clear_keywords_only


def storing_a_tuple(clear):
    """`clear` with the same signature whose queue is left as a tuple: the fix's list arithmetic fails on it."""

    def clear_to_tuple(self, retain_lifecycle_msgs=False, fragment_ids_this_run=None):
        clear(self, retain_lifecycle_msgs, fragment_ids_this_run)
        self._queue = tuple(self._queue)

    return clear_to_tuple


def test_streamlit_167s_clear_passes_the_check():
    assert message_queue_fix.check(original_clear()) is None


def test_a_changed_clear_signature_is_refused_and_streamlits_own_clear_keeps_working(monkeypatch, caplog):
    changed = keyword_only(original_clear())
    monkeypatch.setattr(ForwardMsgQueue, "clear", changed)
    with caplog.at_level(logging.WARNING, logger=message_queue_fix.__name__):
        assert not message_queue_fix.install()
    assert ForwardMsgQueue.clear is changed, "Streamlit is left unpatched"
    assert "not installed" in caplog.text and "retain_lifecycle_msgs" in caplog.text
    # Streamlit calls it with keywords, as it declares them: that still works, as without the fix.
    queue = ForwardMsgQueue()
    page_run_then(queue)
    queue.clear(retain_lifecycle_msgs=True, fragment_ids_this_run=[FRAGMENT])
    assert bodies(queue) == ["header", f"finished:{ForwardMsg.FINISHED_SUCCESSFULLY}"]


def test_a_changed_clear_behaviour_is_found_on_a_test_queue_and_refused(monkeypatch):
    changed = storing_a_tuple(original_clear())
    monkeypatch.setattr(ForwardMsgQueue, "clear", changed)
    assert "failed on a test queue" in message_queue_fix.check(changed)
    assert not message_queue_fix.install()
    assert ForwardMsgQueue.clear is changed
    queue = ForwardMsgQueue()
    page_run_then(queue)
    queue.clear()
    assert bodies(queue) == []
