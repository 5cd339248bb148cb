"""The grid officer's field page ``/grid`` (我的网格): their cells on a map beside their
worklist, most urgent first; a check recorded, a hazard moved 已登记 → 整改中 → 已销号, the list
downloaded as Excel. The page is a shell: its script (web/static/js/grid.js) draws everything
from the scoped API the officer's session may call (``/api/layers/grid-cells``,
``/api/worklist``, ``/api/cells/{h3}/worklist``, ``/api/units/{code}/file``, ``/api/checks``,
``/api/hazards/{id}/transitions``), so nothing outside their cells reaches the page.

The page is for grid officers; anyone else signed in gets a 403 page that says so (their own
pages are in their navigation), and a visitor not signed in is sent to sign in first.
"""

from __future__ import annotations

from datetime import date

import shapely
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from geo.boundaries import load_boundaries
from layers.registry import ALL
from service.auth import ROLE_ZH, Caller, Role, current_caller, require
from service.deps import CachesDep, SettingsDep, StoreDep
from service.errors import Unauthorized
from service.page_user import page_user
from service.security_headers import csp_nonce
from service.selection import Selection, select_visible
from web.pages import message_page, render

router = APIRouter(tags=["pages"])
PATH = "/grid"
GEOJSON = "application/geo+json"


@router.get(PATH, summary="网格员工作页（我的网格）", response_class=HTMLResponse)
def grid_page(request: Request, store: StoreDep, settings: SettingsDep, caches: CachesDep
              ) -> Response:
    try:
        caller = current_caller(request, store, settings, caches)
    except Unauthorized:
        return RedirectResponse(f"/login?next={PATH}", status_code=303)
    nonce = csp_nonce(request)
    user = page_user(caller)
    if caller.role != Role.GRID_OFFICER:
        return HTMLResponse(message_page(
            "此页面仅供网格员使用",
            f"“我的网格”是网格员的工作页，显示本人负责的网格和工作清单；"
            f"{ROLE_ZH[caller.role]}请从导航进入您的页面。",
            user=user, nonce=nonce), status_code=403)
    return HTMLResponse(render(
        "grid.html.j2", user=user, nonce=nonce, current=PATH, title="我的网格",
        officer_id=caller.scope or "", cell_count=len(caller.cells),
        today=date.today().isoformat()))


@router.get("/api/grid/outline", summary="网格员网格所在区县的边界（GeoJSON）",
            response_class=Response, dependencies=[require(Role.GRID_OFFICER)],
            responses={200: {"content": {GEOJSON: {}}}})
def outline(caller: Caller, store: StoreDep, settings: SettingsDep) -> Response:
    """The outline of the counties the officer's cells touch, for the page's map: a few
    polygons rather than every county of the service's provinces (``/api/boundaries``).
    Found by geometry (the built layer's ``county_adcode`` may be empty)."""
    cells = select_visible(store, caller, Selection(ALL["grid-cells"]))
    counties = load_boundaries(settings.provinces, level="county")
    area = shapely.union_all(cells.geometry.dropna().to_numpy()) if len(cells) else None
    touched = (counties.geometry.intersects(area) if area is not None and not area.is_empty
               else counties.geometry.isna() & False)
    shown = counties.loc[touched.to_numpy(dtype=bool), ["adcode", "name", "geometry"]]
    return Response(shown.to_json(drop_id=True, ensure_ascii=False), media_type=GEOJSON)
