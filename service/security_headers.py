"""Security headers on every response, and the pages' Content-Security-Policy.

A pure ASGI middleware: before the route runs it draws a fresh nonce for the request and
puts it on ``request.state`` (:func:`csp_nonce` reads it back), so a page builder stamps
the same nonce onto its script tags that the policy names. Every response then gets the
policy (API responses too: a JSON body a browser is tricked into rendering still runs
nothing), ``nosniff``, ``X-Frame-Options`` and ``Referrer-Policy``. A header the route has
already set is left as the route set it.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.basemaps import image_hosts

NONCE_STATE = "csp_nonce"

# The images of the online basemaps offered (web/basemaps.py: image_hosts), by default
# those with no key (AMap, OpenStreetMap); our own tiles and data are 'self'.
DEFAULT_IMAGE_HOSTS = image_hosts(("tianditu", "amap", "osm"), None)

# The API docs (service/app.py: Swagger UI and ReDoc, vendored) run under the strict policy:
# Swagger UI's inline start script carries the nonce. ReDoc builds its search index in a Web
# Worker made from a blob: URL of its own code, which script-src would refuse; /redoc alone
# allows blob: workers. Only a script the policy already admits can make one, and a
# service worker cannot come from a blob: URL.
REDOC_PATH = "/redoc"


def page_policy(nonce: str, image_hosts: tuple[str, ...] = DEFAULT_IMAGE_HOSTS) -> str:
    """The strict policy: only our own scripts, and inline ones only with ``nonce``;
    images from here and from the offered basemaps' ``image_hosts``."""
    return "; ".join((
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        # Leaflet and folium position and size the map with inline style attributes and
        # folium writes <style> blocks; style cannot run script. With a nonce in
        # style-src, 'unsafe-inline' would be ignored, so styles carry none.
        "style-src 'self' 'unsafe-inline'",
        " ".join(("img-src 'self' data:", *image_hosts)),
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ))


def redoc_policy(nonce: str, image_hosts: tuple[str, ...] = DEFAULT_IMAGE_HOSTS) -> str:
    """The strict policy, and ReDoc's search worker (see :data:`REDOC_PATH`)."""
    return f"{page_policy(nonce, image_hosts)}; worker-src blob:"


_FIXED = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),  # frame-ancestors for browsers without CSP level 2
    ("Referrer-Policy", "same-origin"),
)


class SecurityHeaders:
    """Adds the security headers to every HTTP response (see the module docstring)."""

    def __init__(self, app: ASGIApp,
                 image_hosts: tuple[str, ...] = DEFAULT_IMAGE_HOSTS) -> None:
        self.app = app
        self.image_hosts = image_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})[NONCE_STATE] = nonce
        policy = (redoc_policy if scope["path"] == REDOC_PATH else page_policy)(
            nonce, self.image_hosts)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in (("Content-Security-Policy", policy), *_FIXED):
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def csp_nonce(request: Request) -> str:
    """The nonce of this request's policy, for the page's script tags. Raises if the
    middleware is missing, so that a page is never served without its policy."""
    nonce = getattr(request.state, NONCE_STATE, None)
    if not nonce:
        raise RuntimeError("SecurityHeaders middleware is not installed (service/app.py)")
    return nonce
