"""One dashboard session over Streamlit's websocket protocol, as a browser drives it, without drawing anything.

The load test's browserless driver (bench/load_test.py --driver websocket): a page's messages (binary protobufs on
`/_stcore/stream`) are sent as the Streamlit frontend sends them: the first run with the link's query string, the
Run button's trigger, and each fragment's timed rerun (`auto_rerun`). What the server sends back is recorded as a
page would show it: the progress bar's state and step, the moments the slope-mean chart gets a new figure, error
elements, and the trajectory download's link. Widgets not named in a rerun keep their values on the server, so a
rerun sends only what changed, like the frontend's. Any keyed widget can be set or pressed by its key, an explore tab
opened by its label, and a file put in the uploader (the frontend's file-URL request, an HTTP PUT, then the uploader's
widget state); `settle` waits until a page run ends with no computation showing "Computing…".
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.Common_pb2 import FileUploaderState, FileURLs, FileURLsRequest, UploadedFileInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

STATES = ("Ready", "Queued", "Running", "Paused", "Finished", "Stopped")
CHART_NAME = '"name": "chart_mean_slope"'  # the slope-mean chart's figure (bayesdemo/page/live_chart.py sends its key)
DOWNLOAD_LABEL = "Download trajectory (CSV)"
STEP = re.compile(r"Step ([\d,]+) of")
COMPUTING = "Computing…"  # an explore view's line while its computation waits or runs
XSRF_COOKIE = "_streamlit_xsrf"  # Streamlit's XSRF cookie; an upload sends its value back as a header


def chart_data(component) -> str:
    """A live chart component's data as text: its JSON, or the bytes of its JSON (bayesdemo/page/live_chart.py)."""
    return component.json or component.bytes.decode()


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
    widgets: dict[str, str] = field(default_factory=dict)  # widget key -> its id, for every keyed widget drawn
    disabled: dict[str, bool] = field(default_factory=dict)  # widget key -> whether it was last drawn disabled
    tabs_id: str = ""  # the explore tabs' widget id
    run_texts: list[str] = field(default_factory=list)  # what the page run in progress has shown (text of each element)
    last_texts: list[str] = field(default_factory=list)  # what the last whole-page run that finished showed
    page_runs: int = 0  # whole-page runs finished


class ProtocolSession:
    """A session of `app.py` driven over the websocket protocol; `record` fills in as messages arrive."""

    def __init__(self, base_url: str, query: dict[str, str]):
        self.stream_url = base_url.replace("http://", "ws://", 1) + "/_stcore/stream"
        self.query_string = urlencode(query)
        self.record = PageRecord()
        self.page_script_hash = ""
        self.timers: dict[str, asyncio.Task] = {}
        self.socket: Any = None  # the open websocket connection (websockets.ClientConnection)
        self.first_run_done = asyncio.Event()
        self.session_id = ""  # the server's id of this session (upload URLs name it)
        self.file_urls: dict[str, asyncio.Future] = {}  # file-URL request id -> its response's FileURLs
        self.full_run = True  # whether the page run in progress is a whole-page run (not a fragment's)
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

    async def set_widget(self, key: str, **value: Any) -> None:
        """Give the widget `key` a value (`double_value=...`, `string_value=...`, `bool_value=...`, ...): a page
        rerun with its new state, as the frontend sends when a value is typed or picked."""
        await self.send(self.rerun(widgets=[WidgetState(id=self.record.widgets[key], **value)]))

    async def press(self, key: str) -> None:
        """Press the button `key`: its trigger in a page rerun."""
        await self.set_widget(key, trigger_value=True)

    async def open_tab(self, label: str) -> None:
        """Open the explore tab `label`, as a click on it does."""
        await self.send(self.rerun(widgets=[WidgetState(id=self.record.tabs_id, string_value=label)]))

    async def upload(self, key: str, name: str, content: bytes, timeout_s: float = 120.0) -> int:
        """Put `content` as file `name` into the uploader `key` as the frontend does: ask the server for an upload
        URL, PUT the file there (with the XSRF cookie and header), then set the uploader's state. The PUT's status."""
        request_id = f"upload-{len(self.file_urls)}"
        future = asyncio.get_running_loop().create_future()
        self.file_urls[request_id] = future
        request = FileURLsRequest(request_id=request_id, file_names=[name], session_id=self.session_id)
        await self.send(BackMsg(file_urls_request=request).SerializeToString())
        urls: FileURLs = await asyncio.wait_for(future, timeout_s)
        http_url = self.stream_url.replace("ws://", "http://", 1).removesuffix("/_stcore/stream")

        def put() -> int:
            with requests.Session() as http:
                http.headers.update(self.headers)  # through a proxy: its affinity cookie, as a browser sends it
                http.get(http_url + "/_stcore/health", timeout=timeout_s)
                token = http.cookies.get(XSRF_COOKIE) or ""
                response = http.put(
                    http_url + urls.upload_url,
                    files={"file": (name, content, "text/csv")},
                    headers={"X-Xsrftoken": token},
                    timeout=timeout_s,
                )
                return response.status_code

        status = await asyncio.to_thread(put)
        if status == 204 or status == 200:
            info = UploadedFileInfo(name=name, size=len(content), file_id=urls.file_id, file_urls=urls)
            state = FileUploaderState(uploaded_file_info=[info])
            await self.set_widget(key, file_uploader_state_value=state)
        return status

    async def settle(self, timeout_s: float, after: int = 0) -> bool:
        """Wait until more than `after` whole-page runs have finished (`record.page_runs` before an action) and the
        last one shows no computation running; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.record.page_runs > after and not any(COMPUTING in text for text in self.record.last_texts):
                return True
            await asyncio.sleep(0.1)
        return False

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
        self.record_widget(element, kind)
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
        elif kind == "bidi_component" and CHART_NAME in chart_data(element.bidi_component):
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

    def record_widget(self, element, kind: str | None) -> None:
        """Remember a keyed widget's id (Streamlit ends a keyed widget's id with "-" and its key) and state, and the
        text the element shows."""
        proto = getattr(element, kind) if kind else None
        widget_id = getattr(proto, "id", "")
        if isinstance(widget_id, str) and widget_id.startswith("$$ID-") and widget_id.count("-") >= 2:
            key = widget_id.split("-", 2)[2]
            self.record.widgets[key] = widget_id
            self.record.disabled[key] = bool(getattr(proto, "disabled", False))
        for name in ("body", "text", "message", "label"):
            text = getattr(proto, name, None)
            if isinstance(text, str) and text:
                self.record.run_texts.append(text)
                break

    def on_message(self, message: ForwardMsg) -> None:
        """Handle one message from the server as the frontend would."""
        kind = message.WhichOneof("type")
        if kind == "new_session":
            if message.new_session.page_script_hash:
                self.page_script_hash = message.new_session.page_script_hash
            if message.new_session.initialize.session_id:
                self.session_id = message.new_session.initialize.session_id
            self.full_run = not message.metadata.run.fragment_ids
            if self.full_run:  # a page run: the frontend drops every fragment's timer
                self.stop_timers()
                self.record.run_texts = []
        elif kind == "auto_rerun":
            fragment_id, interval_s = message.auto_rerun.fragment_id, message.auto_rerun.interval
            if fragment_id in self.timers:
                self.timers[fragment_id].cancel()
            self.timers[fragment_id] = asyncio.get_running_loop().create_task(self.repeat(fragment_id, interval_s))
        elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
            self.on_element(message.delta.new_element)
        elif kind == "delta" and message.delta.WhichOneof("type") == "add_block":
            block = message.delta.add_block
            if block.WhichOneof("type") == "tab_container" and block.tab_container.id:
                self.record.tabs_id = block.tab_container.id
        elif kind == "file_urls_response":
            future = self.file_urls.get(message.file_urls_response.response_id)
            if future is not None and not future.done():
                response = message.file_urls_response
                if response.file_urls:
                    future.set_result(response.file_urls[0])
                else:
                    future.set_exception(RuntimeError(f"no upload URL: {response.error_msg}"))
        elif kind == "script_finished":
            self.first_run_done.set()
            if self.full_run and message.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                self.record.last_texts = list(self.record.run_texts)
                self.record.page_runs += 1

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
