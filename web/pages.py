"""Server-rendered pages: one Jinja2 environment over ``web/templates`` (autoescape on, so
every value from data is escaped), a layout with the navigation of the caller's role, and
where each role lands after signing in.

A page's routes (service/routes/) fetch the caller's data through the same scoped selection
as the API and render a template; the page's scripts (``web/static/js``) draw from the
service's endpoints and tiles, never from the whole dataset inlined. Every library is
vendored under ``web/static/vendor`` (Leaflet, Leaflet.VectorGrid, ECharts), so a page works
on an intranet with no internet; only a basemap is external, and optional.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import jinja2

from web.basemaps import OFFLINE, page_config

TEMPLATES = Path(__file__).parent / "templates"
LEAFLET = "/static/vendor/leaflet-1.9.4"
VECTORGRID = "/static/vendor/leaflet.vectorgrid-1.3.0"
ECHARTS = "/static/vendor/echarts-5.6.0/echarts.common.min.js"
APP_NAME = "特种设备区域风险地图"
OFFLINE_ONLY = page_config((), OFFLINE, None)  # the basemaps of a page not told otherwise


@dataclass(frozen=True)
class PageUser:
    """Who a page is for (the service's caller, as the page shows it)."""

    name: str
    role: str          # admin, regulator, planner, grid_officer, park_admin
    role_zh: str
    scope: str | None


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str


def _path(*parts: str) -> str:
    """A path whose variable parts are URL-quoted (ids come from data)."""
    return "/" + "/".join(quote(p, safe="") for p in parts)


def landing(role: str, scope: str | None) -> str:
    """The page a role lands on after signing in."""
    if role == "grid_officer":
        return "/grid"
    if role == "park_admin" and scope:
        return _path("parks", scope)
    return "/map"


def navigation(user: PageUser) -> list[NavItem]:
    """Only what the role may open."""
    if user.role == "grid_officer":
        return [NavItem("/grid", "我的网格")]
    if user.role == "park_admin":
        return [NavItem(landing(user.role, user.scope), "园区画像")]
    items = [NavItem("/map", "风险地图")]
    if user.scope:
        items.append(NavItem(_path("regions", user.scope), "辖区概况"))
    return items


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.globals.update(LEAFLET=LEAFLET, VECTORGRID=VECTORGRID, ECHARTS=ECHARTS,
                       APP_NAME=APP_NAME)
    return env


ENV = _environment()


def render(template: str, *, user: PageUser | None, nonce: str, current: str = "",
           **context: object) -> str:
    """``template`` in the layout: the user's name, role and navigation (``current`` is
    the active entry's href), the request's CSP ``nonce`` for the page's scripts."""
    nav = navigation(user) if user else []
    who = f"{user.name}（{user.role_zh}）" if user else ""
    context.setdefault("basemaps", OFFLINE_ONLY)  # a map page offers only the offline one
    return ENV.get_template(template).render(nav=nav, current=current, who=who, nonce=nonce,
                                             **context)


def message_page(title: str, message: str, *, user: PageUser | None, nonce: str) -> str:
    """A page saying why a page cannot be shown (403 outside the role or region, 404)."""
    home = landing(user.role, user.scope) if user else "/login"
    return render("message.html.j2", user=user, nonce=nonce, title=title, message=message,
                  home=home)
