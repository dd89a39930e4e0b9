"""Keep a finished page run's messages when a fragment run starts before they reach the browser.

When a fragment run starts, Streamlit drops that fragment's unsent messages from the session's outgoing queue. If the
page run just before it finished but was not yet sent (a loaded server: the next run starts before the event loop
flushes), the page's fragment containers are dropped while its end-of-run message is kept. The browser then removes
the fragment containers as stale, the page's later blocks move up one place, and the fragment run's first update
descends into an element: "'setIn' cannot be called on an ElementNode", a blank page. Traced from the websocket
frames of three-session load runs (bench/load_test.py), which failed in 2 of 3 runs at a 0.15 s redraw before the fix
and in none of 41 runs at 0.1 to 0.2 s after it.

The fix keeps every message up to and including the last successfully finished page run, so the browser receives
that run whole, then the fragment run's updates; messages after it are cleared as Streamlit does.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

_LOGGER = logging.getLogger(__name__)
_PATCHED_MARK = "_bayesdemo_keeps_finished_page_runs"


def last_finished_page_run_end(queue: list[ForwardMsg]) -> int | None:
    """Index of the last message that ends a successfully finished page run, or None."""
    for index in range(len(queue) - 1, -1, -1):
        message = queue[index]
        if (
            message.WhichOneof("type") == "script_finished"
            and message.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY
        ):
            return index
    return None


def keep_finished_page_run(clear: Callable[..., None]) -> Callable[..., None]:
    """Wrap ForwardMsgQueue.clear: at a fragment run's start, a finished page run's messages are kept whole."""

    @functools.wraps(clear)
    def clear_keeping_finished_page_run(
        self: ForwardMsgQueue, retain_lifecycle_msgs: bool = False, fragment_ids_this_run: list[str] | None = None
    ) -> None:
        queue: list[ForwardMsg] = self._queue
        end = last_finished_page_run_end(queue) if retain_lifecycle_msgs and fragment_ids_this_run else None
        if end is None:
            clear(self, retain_lifecycle_msgs, fragment_ids_this_run)
            return
        finished_run, self._queue = queue[: end + 1], queue[end + 1 :]
        clear(self, retain_lifecycle_msgs, fragment_ids_this_run)
        self._queue = finished_run + self._queue  # the index for merging deltas stays empty: nothing merges into these

    setattr(clear_keeping_finished_page_run, _PATCHED_MARK, True)
    return clear_keeping_finished_page_run


def install() -> bool:
    """Patch Streamlit's outgoing queue once per process; False (logged) where its internals differ from 1.67's."""
    current: Any = ForwardMsgQueue.clear
    if getattr(current, _PATCHED_MARK, False):
        return True
    probe = ForwardMsgQueue()
    if not isinstance(getattr(probe, "_queue", None), list) or not hasattr(probe, "_delta_index_map"):
        _LOGGER.warning("Streamlit's message queue changed: the fragment-run fix is not installed")
        return False
    ForwardMsgQueue.clear = keep_finished_page_run(current)
    return True
