"""The page a unit's QR code opens (一企一档一码): its file as plain server-rendered HTML.

No script on it; every value from the store is escaped (``html.escape``); the only markup
not written here is the QR code's SVG, which segno draws from the unit's URL. Styles are
inline, as the page policy allows (service/security_headers.py)."""

from __future__ import annotations

import html
from collections.abc import Iterable

_STYLE = ("font:14px/1.6 sans-serif;max-width:1100px;margin:24px auto;padding:0 16px;"
          "color:#222")
_TABLE = "border-collapse:collapse;width:100%;margin:8px 0 20px"
_CELL = "border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top"
_LEVEL_COLOURS = {"red": "#d7191c", "orange": "#fd8d3c", "yellow": "#fed976", "blue": "#2c7bb6"}


def _e(value: object) -> str:
    """A value as escaped text ("—" for none; booleans 是/否)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return f"{value:g}"
    return html.escape(str(value))


def _table(headers: Iterable[str], rows: Iterable[Iterable[object]], raw: int = -1) -> str:
    """A table of escaped cells (column ``raw`` is already markup)."""
    head = "".join(f'<th style="{_CELL};background:#f3f3f3">{html.escape(h)}</th>'
                   for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_CELL}">{c if i == raw else _e(c)}</td>'
                         for i, c in enumerate(row)) + "</tr>"
        for row in rows)
    return f'<table style="{_TABLE}"><tr>{head}</tr>{body}</table>'


def _level(level: object, zh: object) -> str:
    colour = _LEVEL_COLOURS.get(str(level), "#999")
    return (f'<span style="white-space:nowrap"><span style="display:inline-block;width:10px;'
            f'height:10px;background:{colour};margin-right:4px"></span>{_e(zh)}</span>')


def _page(title: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="{_STYLE}">{body}</body></html>"""


def build_unit_problem_page(message: str) -> str:
    """A page saying why the file cannot be shown (not found, invalid code …)."""
    return _page("使用单位档案", f'<h1 style="font-size:20px">使用单位档案</h1>'
                 f'<p style="color:#b10026">{html.escape(message)}</p>'
                 '<p><a href="/map">返回风险地图</a></p>')


def build_unit_page(file: dict, qr_svg: str, viewer: str) -> str:
    """The unit's file (``service.unit_file.unit_file``) as a page; ``qr_svg`` is the
    inline SVG of its code."""
    unit = file["unit"]
    title = f"{unit.get('name') or unit['credit_code']} · 一企一档一码"
    facts = [
        ("统一社会信用代码", _e(unit.get("credit_code"))),
        ("行业", _e(unit.get("industry_name") or unit.get("industry"))),
        ("企业规模", _e(unit.get("size"))),
        ("地址", _e(unit.get("address"))),
        ("风险等级", _level(unit.get("level"), unit.get("level_zh"))),
        ("定级理由", _e(unit.get("level_reason"))),
        ("双重预防建成情况", _e(unit.get("build_status"))
         + f"（“五有”得分 {_e(unit.get('five_have_score'))}）"),
        ("小微企业简易模式", _e(unit.get("small_micro"))),
        ("设备", f"{_e(unit.get('equipment'))} 台（在用 {_e(unit.get('in_use'))} 台，"
               f"逾期未检 {_e(unit.get('overdue'))} 台）"),
        ("未销号隐患", f"{_e(unit.get('open_hazards'))} 项（重大 "
                  f"{_e(unit.get('open_major_hazards'))} 项）"),
    ]
    rows = "".join(f'<tr><th style="{_CELL};width:10em;background:#f3f3f3">{k}</th>'
                   f'<td style="{_CELL}">{v}</td></tr>' for k, v in facts)
    measures = file["measures"]
    items = "".join(
        f"<li>{_e(m.get('text'))}"
        + (f'<br><small style="color:#666">依据：{_e(m["basis"])}</small>'
           if m.get("basis") else "") + "</li>" for m in measures["items"])
    equipment = _table(
        ("设备注册代码", "种类", "状态", "风险等级", "L", "E", "C", "D", "定级依据",
         "下次检验", "逾期未检"),
        ((p["registration_code"], p.get("category_name") or p.get("category"), p.get("status"),
          _level(p.get("level"), p.get("level_zh")), p.get("L"), p.get("E"), p.get("C"),
          p.get("D"), "；".join(str(r) for r in (p.get("L_reason"), p.get("E_reason"),
                                                p.get("C_reason"), p.get("level_reason"))
                               if r),
          p.get("next_inspection_due"), p.get("overdue")) for p in file["equipment"]),
        raw=3)
    hazards = _table(
        ("隐患编号", "设备", "等级", "描述", "状态", "发现日期", "整改期限", "销号日期", "经过"),
        ((h["hazard_id"], h.get("registration_code"), h.get("level"), h.get("description"),
          h.get("status"), h.get("found_on"), h.get("deadline"), h.get("closed_on"),
          "；".join(f"{e.get('at')} {e.get('action_zh') or ''} {e.get('to') or ''}"
                   for e in h.get("history", []))) for h in file["hazards"]))
    checks = _table(("检查日期", "网格员", "检查结果"),
                    ((c.get("checked_on"), c.get("officer_id"), c.get("result"))
                     for c in file["checks"]))
    schedule = file.get("schedule") or {}
    plan = (f"<p>监督检查周期 {_e(schedule.get('interval_months'))} 个月，下次应检 "
            f"{_e(schedule.get('next_due'))}。{_e(schedule.get('reasons'))}</p>"
            if schedule else "")
    body = f"""<h1 style="font-size:20px">{_e(unit.get('name'))} · 一企一档一码</h1>
<p style="color:#666">统计日期 {_e(file.get('as_of'))} · 查看人 {_e(viewer)} ·
<a href="/map">风险地图</a></p>
<div style="display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start">
<table style="{_TABLE};flex:1;min-width:320px">{rows}</table>
<figure style="margin:8px 0;text-align:center">{qr_svg}
<figcaption style="font-size:12px;color:#666;word-break:break-all;max-width:220px">
{_e(file['code']['url'])}</figcaption></figure></div>
<h2 style="font-size:17px">{_e(measures['title'])}</h2><ol>{items or '<li>—</li>'}</ol>
<h2 style="font-size:17px">设备（{len(file['equipment'])} 台）</h2>{equipment}
<h2 style="font-size:17px">隐患排查治理（{len(file['hazards'])} 项）</h2>{hazards}
<h2 style="font-size:17px">监督检查（{len(file['checks'])} 次）</h2>{plan}{checks}"""
    return _page(title, body)
