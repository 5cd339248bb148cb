"""The report as printable HTML (Jinja2, autoescaped) and as PDF (WeasyPrint).

Every value from data goes through Jinja2's autoescape; only the SVG charts, which
matplotlib writes with their own text escaped, are inlined as markup. The page is styled
for A4 (print CSS), so the same HTML prints from a browser and converts to PDF.

WeasyPrint needs the system libraries pango and pangoft2 (Debian: libpango-1.0-0,
libpangoft2-1.0-0; scripts/chromium.sh installs them). It is imported only when a PDF is
asked for; where it cannot load, :class:`ReportUnavailable` names the packages (HTTP 503,
CLI exit 2), and HTML still works.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from markupsafe import Markup

from service.report import charts

TEMPLATES = Path(__file__).resolve().parent / "templates"
PDF_PACKAGES = "libpango-1.0-0 libpangoft2-1.0-0"


class ReportUnavailable(RuntimeError):
    """A PDF cannot be made on this machine (WeasyPrint or its libraries are missing)."""


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["num"] = number
    env.filters["value"] = value
    env.filters["change"] = change
    env.filters["pct"] = percent
    return env


def number(v: object) -> str:
    if v is None:
        return "—"
    f = float(v)  # type: ignore[arg-type]
    return f"{f:,.0f}" if f == int(f) else f"{f:,.2f}"


def percent(v: object, digits: int = 1) -> str:
    return "—" if v is None else f"{100 * float(v):.{digits}f}%"  # type: ignore[arg-type]


def value(v: object, kind: str) -> str:
    return percent(v) if kind == "rate" else number(v)


def change(v: object, kind: str) -> str:
    """A change on last year: +1,234 / −5 / +0.8 个百分点 / 持平."""
    if v is None:
        return "无上年数据"
    f = float(v)  # type: ignore[arg-type]
    if abs(f) < 1e-12:
        return "持平"
    sign = "+" if f > 0 else "−"
    if kind == "rate":
        return f"{sign}{abs(100 * f):.1f} 个百分点"
    return f"{sign}{number(abs(f))}"


_ENV = _environment()


def render_html(figures: dict, *, generated: str = "") -> str:
    """The report page; ``figures`` from :func:`layers.report.assemble`."""
    svg = {
        "categories": charts.category_levels(figures["category_problems"]),
        "children": charts.child_overdue(figures["child_problems"],
                                         figures["child_level_name"] or ""),
        "monthly": charts.monthly(figures["checks"]["by_month"],
                                  figures["hazards"]["found_by_month"],
                                  figures["hazards"]["closed_by_month"], figures["year"]),
    }
    return _ENV.get_template("report.html.j2").render(
        f=figures, title=title(figures), generated=generated,
        charts={k: Markup(v) if v else None for k, v in svg.items()})


def title(figures: dict) -> str:
    # the Shaanxi plan's yearly report (四（一）) gives the structure; the title stays neutral,
    # since the plan's 专项整治 is Shaanxi's, for 2020–2022
    return f"{figures['name']}{figures['year']}年度特种设备安全工作报告"


def filename(figures: dict, fmt: str) -> str:
    """The default file name: 报告_郑州市_2026.pdf."""
    return f"报告_{figures['name']}_{figures['year']}.{fmt}"


def render_pdf(html: str) -> bytes:
    """The HTML as a PDF (A4, by the page's print CSS)."""
    try:
        import weasyprint
    except (ImportError, OSError) as exc:
        raise ReportUnavailable(
            f"无法生成 PDF：WeasyPrint 或其系统库不可用，请安装 weasyprint 与 {PDF_PACKAGES}"
            f"（HTML 格式可用） / PDF unavailable: install weasyprint and the system packages "
            f"{PDF_PACKAGES} (format=html works): {exc}") from None
    return weasyprint.HTML(string=html, url_fetcher=_no_fetch).write_pdf()


def _no_fetch(url: str, *args: object, **kwargs: object) -> dict:
    """The page is self-contained: nothing is fetched while it is converted."""
    raise ValueError(f"the report fetches nothing ({url})")
