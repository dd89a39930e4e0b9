"""Keep a finished page run's messages when a fragment run starts before they reach the browser.

When a fragment run starts, Streamlit drops that fragment's unsent messages from the session's outgoing queue. If the
page run just before it finished but was not yet sent (a loaded server: the next run starts before the event loop
flushes), the page's fragment containers are dropped while its end-of-run message is kept. The browser then removes
the fragment containers as stale, the page's later blocks move up one place, and the fragment run's first update
descends into an element: "'setIn' cannot be called on an ElementNode", a blank page. Traced from the websocket
frames of three-session load runs (bench/load_test.py), which failed in 2 of 3 runs at a 0.15 s redraw before the fix
and in none of 41 runs at 0.1 to 0.2 s after it.

The fix keeps every message up to and including the last successfully finished page run, so the browser receives
that run whole, then the fragment run's updates; messages after it are cleared as Streamlit does. It is installed
only after the wrapped method has passed `check` on a throwaway queue (built on Streamlit 1.67).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

_LOGGER = logging.getLogger(__name__)
_PATCHED_MARK = "_bayesdemo_keeps_finished_page_runs"
NAME = "the fragment-run message fix"  # how logs name this patch
CLEAR_PARAMETERS = ("self", "retain_lifecycle_msgs", "fragment_ids_this_run")  # ForwardMsgQueue.clear in 1.67
_PROBE_FRAGMENT = "bayesdemo-probe-fragment"


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


_PROBE_PATHS = {
    "page": [0, 0],
    "fragment container": [0, 1],
    "fragment chart": [0, 1, 0],
    "new fragment chart": [0, 1, 0],
}


def _probe_message(kind: str, fragment_id: str = "") -> ForwardMsg:
    """A markdown delta (in `fragment_id`, "" for none) or, for kind "finished", a successful page run's end.

    The new chart goes where the kept one is: it must follow it, not replace it (nothing merges into a kept run).
    """
    message = ForwardMsg()
    if kind == "finished":
        message.script_finished = ForwardMsg.FINISHED_SUCCESSFULLY
        return message
    message.metadata.delta_path[:] = _PROBE_PATHS[kind]
    message.delta.new_element.markdown.body = kind
    message.delta.fragment_id = fragment_id
    return message


def check(clear: Callable[..., None]) -> str | None:
    """Why the fix cannot wrap `clear` (Streamlit's ForwardMsgQueue.clear), or None when it can.

    The signature must be 1.67's, and the wrapped method must, on a throwaway queue, keep a finished page run whole at
    a fragment run's start, take new messages after it, and empty the queue at a page run's start.
    """
    try:
        parameters = inspect.signature(clear).parameters.values()
    except (TypeError, ValueError):
        return "its signature cannot be read"
    if tuple(p.name for p in parameters) != CLEAR_PARAMETERS or any(
        p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters
    ):
        return f"clear{inspect.signature(clear)} is not clear(self, retain_lifecycle_msgs, fragment_ids_this_run)"
    wrapped = keep_finished_page_run(clear)
    try:
        queue = ForwardMsgQueue()
        page_run = ["page", "fragment container", "fragment chart", "finished"]
        for kind in page_run:
            queue.enqueue(_probe_message(kind, _PROBE_FRAGMENT if kind.startswith("fragment") else ""))
        wrapped(queue, True, [_PROBE_FRAGMENT])
        if not isinstance(queue._queue, list):
            return "its queue is no longer a list"
        queue.enqueue(_probe_message("new fragment chart", _PROBE_FRAGMENT))
        kept = [
            "finished" if message.WhichOneof("type") == "script_finished" else message.delta.new_element.markdown.body
            for message in queue._queue
        ]
        if kept != [*page_run, "new fragment chart"]:
            return f"a test queue held {kept} after a fragment run's start, not the page run whole and the new message"
        wrapped(queue)
        if queue._queue:
            return "clear() left messages in a test queue"
    except Exception as error:  # any failure of the wrapped method on the test queue means: do not install
        return f"the wrapped clear() failed on a test queue: {error!r}"
    return None


def install() -> bool:
    """Patch Streamlit's outgoing queue once per process, after `check`; False (warning logged) when it fails."""
    current: Any = ForwardMsgQueue.clear
    if getattr(current, _PATCHED_MARK, False):
        return True
    problem = check(current)
    if problem is not None:
        _LOGGER.warning("%s is not installed, Streamlit is left as it is: %s", NAME, problem)
        return False
    # Installing the patch is replacing the method on the class, which mypy forbids by default.
    ForwardMsgQueue.clear = keep_finished_page_run(current)  # type: ignore[method-assign]
    return True
