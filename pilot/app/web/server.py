"""The live web cockpit: an aiohttp server on its own thread, in the run's process.

Pages get one WebSocket each, carrying the run's state as JSON (10 Hz, only when it changed), the annotated video as
binary JPEG messages (latest frame only: the next frame goes once the page acknowledged the previous one, so a slow
viewer skips frames and nothing queues), and the page's commands. Commands enter the pilot's queue like voice and
keys (source ``web``), below the safety supervisor. Several pages may watch; one holds control at a time (any page may
press STOP). Teleop is dead-man: each velocity lasts :data:`TELEOP_PULSE_S` unless renewed, and when the controlling
page closes or its connection drops the vehicle is told to stop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from edgepilot.pilot.app.keys import SPEED_CM_S, YAW_DEG_S
from edgepilot.pilot.app.status import RunStatus
from edgepilot.pilot.app.web.access import Bind
from edgepilot.pilot.app.web.base import PageServer
from edgepilot.pilot.app.web.video import FrameEncoder, Jpeg
from edgepilot.pilot.core.errors import CommandRejected
from edgepilot.pilot.core.grammar import parse_command
from edgepilot.pilot.core.messages import HOVER, Command, Velocity

if TYPE_CHECKING:
    from edgepilot.pilot.core.runner import Pilot

log = logging.getLogger(__name__)

#: A teleop velocity lasts this long unless the page renews it (it sends every 0.1 s while a key is held).
TELEOP_PULSE_S = 0.4
STATE_PERIOD_S = 0.1
#: Commands any viewer may give, whoever holds control.
ANYONE = ("stop",)


class Viewer:
    def __init__(self, number: int, ws: web.WebSocketResponse, address: str) -> None:
        self.number = number
        self.ws = ws
        self.address = address
        self.wake = asyncio.Event()
        self.sent_seq = 0
        self.sent_ready_s = 0.0
        self.acked_seq = 0


class Cockpit(PageServer):
    """Start with :meth:`start` (returns the URLs to print), connect a run with :meth:`attach`, end with
    :meth:`stop`. ``stay_alive`` is false once a page pressed "end run"."""

    STATIC = {"index.html": "text/html", "cockpit.js": "text/javascript", "cockpit.css": "text/css"}

    def __init__(self, bind: Bind, token: str, status: RunStatus | None = None, out_dir: Path | None = None) -> None:
        super().__init__(bind, token)
        self.out_dir = out_dir or Path("out")
        self.status = status or RunStatus()
        self.end_requested = threading.Event()
        #: Why the page may not command anything (a replay), or None.
        self.read_only: str | None = None
        self.latency_s: list[float] = []  # frame ready (perception done) -> its bytes handed to the socket
        self.shown_s: list[float] = []  # frame ready -> the page's ack after showing it (includes the ack's trip)
        self._pilot: Pilot | None = None
        self._viewers: dict[int, Viewer] = {}
        self._next_number = 1
        self._controller: int | None = None
        self._jpeg: Jpeg | None = None
        self._state_json = ""
        self._broadcaster: asyncio.Task | None = None
        self._encoder = FrameEncoder(self.status, self._jpeg_ready, lambda: bool(self._viewers))

    # -- the run's side -------------------------------------------------------------------------------------------
    def attach(self, pilot: Pilot) -> None:
        """Show ``pilot``'s run and let the page command it (call before the run, or on its first tick)."""
        self._pilot = pilot
        self.status.attach(pilot)

    def stay_alive(self) -> bool:
        return not self.end_requested.is_set()

    def start(self) -> list[str]:
        """Listen (raises OSError if the address is taken) and return the URLs to open, token included."""
        urls = super().start()
        self._encoder.start()
        return urls

    def stop(self) -> None:
        """Tell the pages the run ended, close every connection and the server (idempotent)."""
        self._encoder.stop()
        super().stop()

    # -- server ---------------------------------------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/history", self._history)
        app.router.add_post("/api/command", self._post_command)
        app.router.add_post("/api/end", self._post_end)
        app.router.add_get("/ws", self._websocket)

    async def started(self) -> None:
        self._broadcaster = asyncio.get_running_loop().create_task(self._broadcast_state())

    async def closing(self) -> None:
        if self._broadcaster is not None:
            self._broadcaster.cancel()
        self._publish_state()
        for viewer in list(self._viewers.values()):
            viewer.wake.set()
        await asyncio.sleep(0.05)  # let the senders push the final state
        for viewer in list(self._viewers.values()):
            await viewer.ws.close()

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self.status.snapshot())

    async def _history(self, request: web.Request) -> web.Response:
        return web.json_response({"points": self.status.history()})

    async def _post_command(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": 'send JSON: {"command": "takeoff"}'}, status=400)
        text = body.get("command") if isinstance(body, dict) else None
        if not isinstance(text, str):
            return web.json_response({"error": 'send JSON: {"command": "takeoff"}'}, status=400)
        if self.read_only is not None:
            return web.json_response({"error": self.read_only}, status=409)
        if self._controller is not None and not (isinstance(text, str) and text.strip().lower() in ANYONE):
            return web.json_response({"error": f"viewer #{self._controller} holds control"}, status=409)
        error = self._command(text)
        return web.json_response({"error": error} if error else {"queued": text}, status=400 if error else 202)

    async def _post_end(self, request: web.Request) -> web.Response:
        self._end("end run (HTTP)")
        return web.json_response({"ending": True}, status=202)

    # -- pages ----------------------------------------------------------------------------------------------------
    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        # No per-message compression: JPEGs do not shrink, and deflating them would cost CPU on the vehicle's computer.
        ws = web.WebSocketResponse(heartbeat=2.0, max_msg_size=4096, compress=False)
        await ws.prepare(request)
        viewer = Viewer(self._next_number, ws, request.remote or "?")
        self._next_number += 1
        await ws.send_str(json.dumps({"type": "hello", "you": viewer.number, "kind": self.status.kind,
                                      "speed_cm_s": SPEED_CM_S, "yaw_deg_s": YAW_DEG_S,
                                      "history": self.status.history()}))
        self._viewers[viewer.number] = viewer
        self._publish_viewers()
        sender = asyncio.get_running_loop().create_task(self._send(viewer))  # from now on its only writer
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(message.data)
                except ValueError:
                    continue
                if isinstance(data, dict):
                    await self._receive(viewer, data)
        finally:
            sender.cancel()
            del self._viewers[viewer.number]
            if self._controller == viewer.number:
                self._controller = None
                self._stop_vehicle(f"viewer #{viewer.number} (in control) left")
            self._publish_viewers()
        return ws

    async def _receive(self, viewer: Viewer, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "ack":
            viewer.acked_seq = int(data.get("seq") or 0)
            if viewer.acked_seq == viewer.sent_seq and len(self.shown_s) < 100_000:
                self.shown_s.append(time.perf_counter() - viewer.sent_ready_s)
            viewer.wake.set()
            return
        if self.read_only is not None and kind != "release":
            await self._reply(viewer, self.read_only)
            return
        if kind == "release":
            if self._controller == viewer.number:
                self._controller = None
                self._publish_viewers()
            return
        if kind == "command" and str(data.get("text", "")).strip().lower() in ANYONE:
            await self._reply(viewer, self._command(data.get("text")))
            return
        if not self._take_control(viewer):
            await self._reply(viewer, f"viewer #{self._controller} holds control; press 'take control' when they "
                                      "release it")
            return
        if kind == "control":
            return
        if kind == "command":
            await self._reply(viewer, self._command(data.get("text")))
        elif kind == "teleop":
            self._teleop(viewer, data)
        elif kind == "record":
            await self._reply(viewer, self._toggle_clip())
        elif kind == "end":
            self._end(f"end run (viewer #{viewer.number})")

    def _take_control(self, viewer: Viewer) -> bool:
        if self._controller is None:
            self._controller = viewer.number
            self._publish_viewers()
        return self._controller == viewer.number

    async def _reply(self, viewer: Viewer, error: str | None) -> None:
        if error:
            await viewer.ws.send_str(json.dumps({"type": "error", "text": error}))

    def _command(self, text: object) -> str | None:
        """Queue a command from the page; None when queued, else why not."""
        if self._pilot is None:
            return "the run has not started yet"
        if not isinstance(text, str):
            return "a command must be text"
        try:
            command = parse_command(text, source="web")
        except CommandRejected as exc:
            return str(exc)
        if command.verb == "wait":
            return "wait is for scripts"
        self._pilot.submit(command)
        return None

    def _toggle_clip(self) -> str | None:
        """Start or stop writing the annotated video into ``out_dir``; None when done, else why not."""
        if self._encoder.recording is not None:
            self._encoder.record(None)
        else:
            path = self.out_dir / f"cockpit-{time.strftime('%Y%m%d-%H%M%S')}.mp4"
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._encoder.record(path)
            except Exception as exc:  # noqa: BLE001 - the page shows why; the run goes on
                return f"cannot record {path}: {exc}"
        self.status.set(clip=None if self._encoder.recording is None else str(self._encoder.recording))
        self._publish_state()
        return None

    def _teleop(self, viewer: Viewer, data: dict[str, Any]) -> None:
        if self._pilot is None:
            return
        axes = []
        for key in ("x", "y", "z", "yaw"):
            value = data.get(key, 0.0)
            axes.append(max(-1.0, min(1.0, float(value))) if isinstance(value, int | float) else 0.0)
        velocity = Velocity(axes[0] * SPEED_CM_S, axes[1] * SPEED_CM_S, axes[2] * SPEED_CM_S, axes[3] * YAW_DEG_S)
        self._pilot.manual_velocity(HOVER if velocity.is_zero else velocity, TELEOP_PULSE_S)

    def _stop_vehicle(self, why: str) -> None:
        if self._pilot is None or self.status.ended:
            return
        log.info("%s: stopping the vehicle", why)
        self._pilot.manual_velocity(HOVER, TELEOP_PULSE_S)
        self._pilot.submit(Command("stop", None, "web"))

    def _end(self, why: str) -> None:
        log.info("%s", why)
        self.end_requested.set()

    # -- fan-out --------------------------------------------------------------------------------------------------
    def _jpeg_ready(self, jpeg: Jpeg) -> None:
        """On the encoder's thread: hand the newest JPEG to the server's loop."""
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(self._publish_jpeg, jpeg)

    def _publish_jpeg(self, jpeg: Jpeg) -> None:
        self._jpeg = jpeg
        for viewer in self._viewers.values():
            viewer.wake.set()

    def _publish_viewers(self) -> None:
        self.status.set(viewers=len(self._viewers), controller=self._controller)
        self._publish_state()

    def _publish_state(self) -> None:
        self._state_json = json.dumps({"type": "state", **self.status.snapshot()})
        for viewer in self._viewers.values():
            viewer.wake.set()

    async def _broadcast_state(self) -> None:
        last_ticks = -1
        while True:
            await asyncio.sleep(STATE_PERIOD_S)
            if not self._viewers:
                continue
            snapshot = self.status.snapshot()
            if snapshot["ticks"] != last_ticks or snapshot["ended"]:
                last_ticks = snapshot["ticks"]
                self._state_json = json.dumps({"type": "state", **snapshot})
                for viewer in self._viewers.values():
                    viewer.wake.set()

    async def _send(self, viewer: Viewer) -> None:
        """The viewer's only writer: the newest state when it changed, the newest frame once the last is acked."""
        sent_state = ""
        try:
            while not viewer.ws.closed:
                await viewer.wake.wait()
                viewer.wake.clear()
                if self._state_json is not sent_state:
                    sent_state = self._state_json
                    await viewer.ws.send_str(sent_state)
                jpeg = self._jpeg
                if jpeg is not None and jpeg.seq != viewer.sent_seq and viewer.acked_seq >= viewer.sent_seq:
                    viewer.sent_seq = jpeg.seq
                    viewer.sent_ready_s = jpeg.frame_ready_s
                    await viewer.ws.send_bytes(struct.pack(">I", jpeg.seq) + jpeg.data)
                    if len(self.latency_s) < 100_000:
                        self.latency_s.append(time.perf_counter() - jpeg.frame_ready_s)
        except (ConnectionError, RuntimeError):
            pass  # the page went away: the reader ends the connection
