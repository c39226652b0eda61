"""``edgepilot ground --web [HOST:]PORT``: the fleet as tiles in a browser (video thumbnail, mode, battery, height,
link, telemetry age and rate, alive or lost), "all land" / "all stop", and each vehicle's own commands.

Secured exactly as the run's web cockpit (:mod:`edgepilot.pilot.app.web`): loopback unless told otherwise, the
printed token on every request (then a cookie), the Host and Origin checks: both pages are a
:class:`~edgepilot.pilot.app.web.base.PageServer`. The page polls ``/api/fleet`` (the ground's
:meth:`FleetView.summary`) twice a second and each tile's thumbnail from ``/api/video/NAME``; commands are ``POST /api/command`` ``{"to": NAME or "all", "text": ...}``.
"""

from __future__ import annotations

from aiohttp import web

from edgepilot.pilot.app import bus
from edgepilot.pilot.app.fleet_view import FleetView
from edgepilot.pilot.app.web.access import Bind
from edgepilot.pilot.app.web.base import PageServer
from edgepilot.pilot.core.errors import EdgepilotError


class FleetPage(PageServer):
    """The ground station's web page, served from its own thread."""

    STATIC = {"fleet.html": "text/html", "fleet.js": "text/javascript", "fleet.css": "text/css"}
    thread_name = "ground-web"
    max_request_bytes = 4096

    def __init__(self, view: FleetView, bind: Bind, token: str) -> None:
        super().__init__(bind, token)
        self.view = view

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/fleet", self._fleet)
        app.router.add_get("/api/video/{name}", self._video)
        app.router.add_post("/api/command", self._command)

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
