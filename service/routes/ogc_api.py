"""``/ogc/api``: the OpenAPI 3.0 document of ``/ogc`` (OGC API – Features Part 1 ``oas30``).

FastAPI publishes OpenAPI 3.1 at ``/openapi.json``; this is the same description of the
``/ogc`` paths rewritten as 3.0.3 (:mod:`service.openapi30`), for clients that look for
3.0. Signed-in callers only, like the rest of ``/ogc`` (a GIS client sends its token to
every ``/ogc`` URL). ``f=html`` (or a browser's ``Accept``) goes to the API docs page.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from service.auth import Caller
from service.errors import BadParameter, bilingual
from service.openapi30 import openapi30
from service.params import check_known
from web.ogc_html import HTML_FORMATS, JSON_FORMATS, wants_html

router = APIRouter(prefix="/ogc", tags=["ogc"])

OPENAPI30 = "application/vnd.oai.openapi+json;version=3.0"
DOCS = "/docs"
VARY = {"Vary": "Accept"}  # the answer depends on Accept (a browser is sent to the docs)


@router.get("/api", summary="OpenAPI 3.0 接口定义（/ogc 部分）", name="ogc_api",
            response_class=Response, responses={200: {"content": {OPENAPI30: {}}},
                                                303: {"description": "f=html：转到接口文档页"}})
def api(request: Request, _caller: Caller,
        f: Annotated[str | None, Query(description="响应格式：json（默认）或 html")] = None,
        ) -> Response:
    check_known(request, {"f"})
    if f is not None and f.strip().lower() not in HTML_FORMATS | JSON_FORMATS:
        raise BadParameter(bilingual(f"响应格式（f）须为 json 或 html，不支持 {f[:32]}",
                                     f"f must be json or html, not {f[:32]}"))
    if wants_html(request.headers.get("accept"), f):
        root = request.scope.get("root_path", "").rstrip("/")
        return RedirectResponse(root + DOCS, status_code=303, headers=VARY)
    # relative to the /ogc landing page, with OGC's path parameter names: how GDAL's OAPIF
    # driver finds the items' query parameters (and so sends a -where to the server)
    root = str(request.base_url).rstrip("/")
    return Response(orjson.dumps(openapi30(request.app.openapi(), prefix="/ogc",
                                           server=f"{root}/ogc")),
                    media_type=OPENAPI30, headers=VARY)
