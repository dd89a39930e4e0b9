"""One dashboard session over Streamlit's websocket protocol, as a browser drives it, without drawing anything.

The load test's browserless driver (bench/load_test.py --driver websocket): a page's messages (binary protobufs on
`/_stcore/stream`) are sent as the Streamlit frontend sends them: the first run with the link's query string, the
Run button's trigger, and each fragment's timed rerun (`auto_rerun`). What the server sends back is recorded as a
page would show it: the progress bar's state and step, the moments the slope-mean chart gets a new figure, error
elements, and the trajectory download's link. Widgets not named in a rerun keep their values on the server, so a
rerun sends only what changed, like the frontend's.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

STATES = ("Ready", "Queued", "Running", "Paused", "Finished", "Stopped")
CHART_NAME = '"name": "chart_mean_slope"'  # the slope-mean chart's figure (bayesdemo/live_chart.py sends its key)
DOWNLOAD_LABEL = "Download trajectory (CSV)"
STEP = re.compile(r"Step ([\d,]+) of")


@dataclass
class PageRecord:
    """What one session's messages would have shown, with their arrival times (time.monotonic)."""

    states: dict[str, float] = field(default_factory=dict)  # first time the progress bar said each state
    state: str = ""
    step: int = 0
    queue: list[int] = field(default_factory=list)  # queue positions shown
    updates: list[tuple[float, int]] = field(default_factory=list)  # (time, step shown) per new slope-mean figure
    errors: list[str] = field(default_factory=list)
    run_button_id: str = ""
    run_disabled: bool = False  # whether the last Run button drawn was disabled (a refused fit)
    alerts: list[tuple[str, str]] = field(default_factory=list)  # (error / warning / info / success, text) per box
    download_url: str = ""  # the trajectory download's link once enabled
    connections: int = 0


class ProtocolSession:
    """A session of `app.py` driven over the websocket protocol; `record` fills in as messages arrive."""

    def __init__(self, base_url: str, query: dict[str, str]):
        self.stream_url = base_url.replace("http://", "ws://", 1) + "/_stcore/stream"
        self.query_string = urlencode(query)
        self.record = PageRecord()
        self.page_script_hash = ""
        self.timers: dict[str, asyncio.Task] = {}
        self.socket = None
        self.first_run_done = asyncio.Event()
        self.headers: dict[str, str] = {}  # extra handshake headers: the cookies a browser would send through a proxy

    def rerun(self, fragment_id: str = "", widgets: list[WidgetState] | None = None) -> bytes:
        """A rerun request as the frontend sends it (an empty fragment id: the whole page)."""
        state = ClientState(
            query_string=self.query_string,
            page_script_hash=self.page_script_hash,
            fragment_id=fragment_id,
            is_auto_rerun=bool(fragment_id),
            widget_states=WidgetStates(widgets=widgets or []),
        )
        return BackMsg(rerun_script=state).SerializeToString()

    async def send(self, payload: bytes) -> None:
        """Send one message; a closed connection is recorded as the session's error."""
        try:
            await self.socket.send(payload)
        except websockets.ConnectionClosed as error:
            self.record.errors.append(f"connection closed: {error}")

    async def click_run(self) -> None:
        """Press Run: its button's trigger in a page rerun."""
        await self.send(self.rerun(widgets=[WidgetState(id=self.record.run_button_id, trigger_value=True)]))

    async def repeat(self, fragment_id: str, interval_s: float) -> None:
        """A fragment's timed reruns, as the frontend's timer sends them."""
        while True:
            await asyncio.sleep(interval_s)
            await self.send(self.rerun(fragment_id=fragment_id))

    def stop_timers(self) -> None:
        """Cancel every fragment timer (a page run registers the ones it still wants)."""
        for task in self.timers.values():
            task.cancel()
        self.timers.clear()

    def on_element(self, element) -> None:
        """Record what a new element shows."""
        kind = element.WhichOneof("type")
        now = time.monotonic()
        if kind == "button" and element.button.label == "Run":
            self.record.run_button_id = element.button.id
            self.record.run_disabled = element.button.disabled
        elif kind == "progress":
            text = element.progress.text
            for word in STATES:
                if f"**{word}**" in text or text.startswith(f"{word}:"):
                    self.record.state = word
                    self.record.states.setdefault(word, now)
            step = STEP.search(text)
            self.record.step = int(step.group(1).replace(",", "")) if step else 0
            queued = re.search(r"number (\d+) in the queue", text)
            if queued:
                self.record.queue.append(int(queued.group(1)))
        elif kind == "bidi_component" and CHART_NAME in element.bidi_component.json:
            self.record.updates.append((now, self.record.step))
        elif kind == "download_button" and element.download_button.label == DOWNLOAD_LABEL:
            button = element.download_button
            self.record.download_url = "" if button.disabled else button.url
        elif kind == "exception":
            self.record.errors.append(f"exception on page: {element.exception.message[:200]}")
        elif kind == "alert":
            self.record.alerts.append((element.alert.Format.Name(element.alert.format).lower(), element.alert.body))
            if element.alert.format == element.alert.ERROR:
                self.record.errors.append(f"error box: {element.alert.body[:200]}")

    def on_message(self, message: ForwardMsg) -> None:
        """Handle one message from the server as the frontend would."""
        kind = message.WhichOneof("type")
        if kind == "new_session":
            if message.new_session.page_script_hash:
                self.page_script_hash = message.new_session.page_script_hash
            if not message.metadata.run.fragment_ids:  # a page run: the frontend drops every fragment's timer
                self.stop_timers()
        elif kind == "auto_rerun":
            fragment_id, interval_s = message.auto_rerun.fragment_id, message.auto_rerun.interval
            if fragment_id in self.timers:
                self.timers[fragment_id].cancel()
            self.timers[fragment_id] = asyncio.get_running_loop().create_task(self.repeat(fragment_id, interval_s))
        elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
            self.on_element(message.delta.new_element)
        elif kind == "script_finished":
            self.first_run_done.set()

    async def receive(self) -> None:
        """Handle messages until the connection closes."""
        try:
            async for payload in self.socket:
                message = ForwardMsg()
                message.ParseFromString(payload)
                self.on_message(message)
        except websockets.ConnectionClosed as error:
            self.record.errors.append(f"connection closed: {error}")

    @contextlib.asynccontextmanager
    async def connected(self):
        """Open the session: connect, ask for the first page run, handle messages in the background."""
        self.socket = await websockets.connect(
            self.stream_url,
            subprotocols=["streamlit"],
            max_size=None,
            open_timeout=120,
            additional_headers=self.headers or None,
        )
        self.record.connections += 1
        receiver = asyncio.get_running_loop().create_task(self.receive())
        await self.send(self.rerun())
        try:
            yield self
        finally:
            self.stop_timers()
            await self.socket.close()
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
