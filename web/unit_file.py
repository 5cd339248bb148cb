"""The page a unit's QR code opens (一企一档一码): its file (``service.unit_file.unit_file``,
the same function the JSON endpoint uses) in the pages' layout (web/templates/unit.html.j2).

No script on it; Jinja2 escapes every value from the store. The QR code is an image of the
service's own ``/api/units/{code}/qr.svg``. Print CSS keeps the file on paper (web/static/
css/region.css)."""

from __future__ import annotations

from urllib.parse import quote

from web.pages import PageUser, message_page, render

TITLE = "使用单位档案（一企一档一码）"


class _Record(dict):
    """A row whose missing fields read as None (the template's StrictUndefined would refuse
    them; a file from an older build may lack a field)."""

    def __missing__(self, key: str) -> None:
        return None


def _records(rows: object) -> list[_Record]:
    return [_Record(r) for r in rows or []]  # type: ignore[attr-defined]


def _reasons(piece: dict) -> list[str]:
    """Why a piece has its level: L (and what else raised it), E, C, the band."""
    out = []
    for key, label in (("L_reason", "L"), ("L_also", "另有"), ("E_reason", "E"),
                       ("C_reason", "C"), ("level_reason", "定级")):
        value = piece.get(key)
        if value:
            out.append(f"{label}：{value}")
    return out


def build_unit_page(file: dict, *, user: PageUser | None, nonce: str) -> str:
    """The unit's file as a page for ``user``."""
    unit = _Record(file["unit"])
    code = str(unit.get("credit_code") or "")
    equipment = [_Record({**p, "reasons": _reasons(p)}) for p in file.get("equipment") or []]
    hazards = [_Record({**h, "history": _records(h.get("history"))})
               for h in file.get("hazards") or []]
    measures = _Record(file.get("measures") or {"mode": "full", "title": "", "items": []})
    measures["items"] = _records(measures["items"])
    schedule = file.get("schedule")
    return render(
        "unit.html.j2", user=user, nonce=nonce, current="",
        title=f"{unit.get('name') or code} · 一企一档一码", unit=unit, file=_Record(file),
        equipment=equipment, hazards=hazards, checks=_records(file.get("checks")),
        schedule=_Record(schedule) if schedule else None, measures=measures,
        qr=f"/api/units/{quote(code, safe='')}/qr.svg",
        qr_png=f"/api/units/{quote(code, safe='')}/qr.png",
        link=(file.get("code") or {}).get("url") or "")


def build_unit_problem_page(message: str, *, user: PageUser | None = None,
                            nonce: str = "") -> str:
    """A page saying why the file cannot be shown (not found, invalid code …)."""
    return message_page(TITLE, message, user=user, nonce=nonce)
