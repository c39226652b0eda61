"""What every edgepilot web page shares: an aiohttp app on a thread of its own, its files served from the package,
and the checks in front of every request (the token, then a cookie; the Host header; the Origin of WebSockets and
POSTs). The run's cockpit and the fleet's ground page are two subclasses."""

from __future__ import annotations

import asyncio
import threading
from importlib import resources

from aiohttp import web

from edgepilot.pilot.app.web.access import COOKIE, Bind, host_allowed, origin_allowed, page_urls, token_ok

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the first URL carries the token
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; connect-src 'self'; "
                               "frame-ancestors 'none'",
}


class PageServer:
    """Start with :meth:`start` (returns the URLs to print, token included), end with :meth:`stop`. Subclasses name
    their files (:attr:`STATIC`, the first one is the page at ``/``) and add their routes in :meth:`routes`."""

    STATIC: dict[str, str] = {}
    thread_name = "web"
    max_request_bytes = 16 * 1024

    def __init__(self, bind: Bind, token: str) -> None:
        self.bind = bind
        self.token = token
        self.port: int | None = None
        self._files = {name: (resources.files(__package__) / "static" / name).read_bytes() for name in self.STATIC}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # -- what subclasses add --------------------------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        """Add the page's own routes (``/``, ``/favicon.ico`` and ``/static/NAME`` are there already)."""

    async def started(self) -> None:
        """On the server's loop, once it listens."""

    async def closing(self) -> None:
        """On the server's loop, before it closes."""

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def start(self) -> list[str]:
        """Listen (raises OSError if the address is taken) and return the URLs to open, token included."""
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:  # noqa: BLE001 - handed to start()'s caller
                failure.append(exc)
                loop.close()
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._close())
            loop.close()

        self._thread = threading.Thread(target=serve, name=self.thread_name, daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]
        return page_urls(self.bind, self.port or self.bind.port, self.token)

    def stop(self) -> None:
        """Close every connection and the server (idempotent)."""
        if self._loop is None or self._thread is None:
            return
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5.0)
        self._loop = None

    async def _open(self) -> None:
        app = web.Application(middlewares=[self._guard], client_max_size=self.max_request_bytes)
        app.router.add_get("/", self._index)
        app.router.add_get("/favicon.ico", self._no_icon)
        app.router.add_get("/static/{name}", self._static)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind.host, self.bind.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        await self.started()

    async def _close(self) -> None:
        await self.closing()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- every request --------------------------------------------------------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        if not host_allowed(request.host):
            return refuse(403, "refused: the Host header does not name this computer")
        given = request.query.get("token") or request.cookies.get(COOKIE) or _bearer(request)
        if given is None:
            return refuse(401, "this page needs its token: open the URL edgepilot printed (…/?token=…)")
        if not token_ok(self.token, given):
            return refuse(403, "wrong token: open the URL edgepilot printed for this run")
        websocket = request.headers.get("Upgrade", "").lower() == "websocket"
        if (request.method == "POST" or websocket) and not origin_allowed(request.headers.get("Origin"),
                                                                          request.host):
            return refuse(403, "refused: a page from another origin may not control this vehicle")
        response = await handler(request)
        if not websocket:
            response.headers.update(HEADERS)
            if request.query.get("token") and request.cookies.get(COOKIE) != self.token:
                response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict", path="/")
        return response

    async def _index(self, request: web.Request) -> web.Response:
        return self._file(next(iter(self.STATIC)))

    async def _no_icon(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _static(self, request: web.Request) -> web.Response:
        return self._file(request.match_info["name"])

    def _file(self, name: str) -> web.Response:
        if name not in self.STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=self._files[name], content_type=self.STATIC[name])


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def refuse(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", headers={"Cache-Control": "no-store"})
