"""The yearly report of a region (整体情况、主要措施、存在的问题、下一步工作安排), HTML or PDF."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from geo.regions import UnknownRegion, resolve_region
from layers.rules import load_rules
from service.auth import Caller
from service.deps import SettingsDep, StoreDep
from service.errors import BadParameter, bilingual, problem
from service.export import content_disposition
from service.report.data import figures
from service.report.render import (
    ReportUnavailable,
    filename,
    render_html,
    render_pdf,
)

router = APIRouter(prefix="/api", tags=["profiles"])

FORMATS = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}
YEARS = (2000, 2100)
# the report page runs nothing and loads nothing: its charts are inline SVG, its CSS inline
REPORT_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                 "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _year(text: str | None, default: int) -> int:
    if text is None:
        return default
    if not text.isdigit() or not YEARS[0] <= int(text) <= YEARS[1]:
        raise BadParameter(bilingual(
            f"年度（year）{text} 不合法：请填写 {YEARS[0]}–{YEARS[1]} 之间的四位年份，如 2026",
            f"year {text} is not a year from {YEARS[0]} to {YEARS[1]}, e.g. 2026"))
    return int(text)


@router.get("/regions/{adcode}/report", summary="行政区年度报告（HTML 或 PDF）",
            response_class=Response,
            responses={200: {"content": {"text/html": {}, "application/pdf": {}}},
                       503: {"description": "PDF 不可用（缺少 WeasyPrint 或 pango）"}})
async def region_report(
        caller: Caller, store: StoreDep, settings: SettingsDep,
        adcode: Annotated[str, Path(pattern=r"^\d{2}(\d{2}){0,2}$",
                                    description="行政区划代码，如 410100 或 4101")],
        year: Annotated[str | None, Query(description="年度，如 2026（默认为现行图层的统计年度）")
                        ] = None,
        format: Annotated[str, Query(description="html 或 pdf")] = "html") -> Response:
    if format not in FORMATS:
        raise BadParameter(bilingual(f"格式（format）{format} 不支持：可选 html、pdf",
                                     f"format {format} is not one of html, pdf"))
    try:
        region = resolve_region(adcode, settings.provinces)
    except UnknownRegion as exc:
        raise BadParameter(exc.named("行政区划代码", "adcode")) from None

    def make() -> tuple[bytes, str, int]:
        build = store.layer_build()
        chosen = _year(year, build.as_of.year if build else YEARS[1])
        facts = figures(store, caller, region, chosen, load_rules(settings.rules))
        html = render_html(facts)
        body = render_pdf(html) if format == "pdf" else html.encode()
        return body, filename(facts, format), chosen

    try:
        body, name, chosen = await run_in_threadpool(make)
    except ReportUnavailable as exc:
        return problem(503, "无法生成 PDF", str(exc))
    headers = {"Content-Disposition": content_disposition(
        name, f"report_{region.adcode}_{chosen}.{format}", inline=format == "html"),
        "Cache-Control": "private, no-store"}
    if format == "html":
        headers["Content-Security-Policy"] = REPORT_POLICY
    return Response(body, media_type=FORMATS[format], headers=headers)
