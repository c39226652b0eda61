"""``edgepilot ground --web [HOST:]PORT``: the fleet as tiles in a browser (video thumbnail, mode, battery, height,
link, telemetry age and rate, alive or lost), "all land" / "all stop", and each vehicle's own commands.

Secured exactly as the run's web cockpit (:mod:`edgepilot.pilot.app.web`): loopback unless told otherwise, the
printed token on every request (then a cookie), the Host and Origin checks; the checks are the cockpit's own
middleware. The page polls ``/api/fleet`` (the ground's :meth:`FleetView.summary`) twice a second and each tile's
thumbnail from ``/api/video/NAME``; commands are ``POST /api/command`` ``{"to": NAME or "all", "text": ...}``.
"""

from __future__ import annotations

import asyncio
import threading
from importlib import resources

from aiohttp import web

from edgepilot.pilot.app import bus
from edgepilot.pilot.app.fleet_view import FleetView
from edgepilot.pilot.app.web.access import Bind, page_urls
from edgepilot.pilot.app.web.server import Cockpit
from edgepilot.pilot.core.errors import EdgepilotError

STATIC = {"fleet.html": "text/html", "fleet.js": "text/javascript", "fleet.css": "text/css"}


class FleetPage:
    """The ground station's web page, served from its own thread."""

    #: The cockpit's token / Host / Origin checks, unchanged (they need only ``self.token``).
    _guard = Cockpit._guard

    def __init__(self, view: FleetView, bind: Bind, token: str) -> None:
        self.view = view
        self.bind = bind
        self.token = token
        self.port: int | None = None
        self._files = {name: (resources.files("edgepilot.pilot.app.web") / "static" / name).read_bytes()
                       for name in STATIC}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> list[str]:
        """Listen (OSError if the address is taken); the URLs to open, token included."""
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:  # noqa: BLE001 - handed to start()'s caller
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="ground-web", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]
        return page_urls(self.bind, self.port or self.bind.port, self.token)

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5.0)
        self._loop = None

    async def _open(self) -> None:
        app = web.Application(middlewares=[self._guard], client_max_size=4096)
        app.router.add_get("/", self._index)
        app.router.add_get("/favicon.ico", self._no_icon)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/api/fleet", self._fleet)
        app.router.add_get("/api/video/{name}", self._video)
        app.router.add_post("/api/command", self._command)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind.host, self.bind.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _index(self, request: web.Request) -> web.Response:
        return await self._file("fleet.html")

    async def _no_icon(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _static(self, request: web.Request) -> web.Response:
        return await self._file(request.match_info["name"])

    async def _file(self, name: str) -> web.Response:
        if name not in STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=self._files[name], content_type=STATIC[name])

    async def _fleet(self, request: web.Request) -> web.Response:
        return web.json_response(self.view.summary())

    async def _video(self, request: web.Request) -> web.Response:
        jpeg = self.view.get(request.match_info["name"]).video
        if jpeg is None:
            return web.Response(status=204)
        return web.Response(body=jpeg, content_type="image/jpeg")

    async def _command(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            to, text = str(data.get("to", "")), str(data.get("text", ""))
            if to != bus.ALL:
                bus.check_name(to)
            self.view.send(to, text)
        except EdgepilotError as exc:  # before ValueError: a refused command is one too
            return web.json_response({"error": str(exc)}, status=400)
        except (ValueError, AttributeError):
            return web.json_response({"error": 'send JSON {"to": NAME or "all", "text": COMMAND}'}, status=400)
        return web.json_response({"sent": {"to": to, "text": text}})
