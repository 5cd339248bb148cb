"""No script from data runs in any page, and pages send a strict Content-Security-Policy.

Payloads are planted in every text field a page can show (unit names, hazard descriptions,
park names, warning messages, user names; officer names too, which no page shows today);
the map must show them as text, run none of them and report no CSP violation.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from data.demo import FILES, generate
from geo.boundaries import load_boundaries
from service.app import create_app
from service.auth import Role, create_user
from service.build import run_build
from service.ingest.pipeline import IngestOptions, ingest
from service.security_headers import page_policy, redoc_policy
from service.settings import Settings
from service.store import open_store
from service.store.tables import LAYER_TABLES
from tests import ingest_files as f
from tests.servers import browser_page, serving
from web.map import build_map, build_risk_map, escape_text, with_nonce

PROVINCES = ["410000", "610000"]
AS_OF = date(2026, 11, 1)
NONCE = "n0nce-For-The-Unit-Tests_1"
PAYLOADS = (
    '<img src=x onerror="window.__pwned=1">',
    "</script><script>window.__pwned=2</script>",
    '"><svg onload=window.__pwned=3>',
)
UNESCAPED = ("<img src=x", "</script><script>", "<svg onload")
ADMIN_NAME = "管理员" + PAYLOADS[0]
COUNTY_NAME = "区县监管" + PAYLOADS[2]


def _planted(tag: str, n: int) -> list[str]:
    """``n`` distinct values ``{tag}{i}-{payload}``, the payloads in turn."""
    return [f"{tag}{i}-{PAYLOADS[i % len(PAYLOADS)]}" for i in range(n)]


def _script_tags(page: str) -> list[str]:
    return re.findall(r"<script\b[^>]*>", page, flags=re.IGNORECASE)


def _inlined(value: str) -> str:
    """How a value reaches the page's GeoJSON: HTML-escaped, then JSON (ASCII) inlined by
    folium's ``tojson``, which writes ``& < > '`` as \\u escapes."""
    text = json.dumps(html.escape(value))[1:-1]
    for char in "&<>'":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def _assert_safe(page: str, nonce: str) -> None:
    """No payload unescaped; every script tag carries the nonce."""
    for raw in UNESCAPED:
        assert raw not in page, raw
    tags = _script_tags(page)
    assert tags and all(f'nonce="{nonce}"' in tag for tag in tags), tags
    assert len(re.findall(r"<script", page, flags=re.IGNORECASE)) == len(tags)


# --------------------------------------------------------------------- without a browser

def test_escape_text_escapes_every_text_column_and_nothing_else():
    frame = gpd.GeoDataFrame({
        "plain": pd.Series([PAYLOADS[0], "a & b"], dtype=object),
        "string": pd.Series([PAYLOADS[1], pd.NA], dtype="string"),
        "category": pd.Series([PAYLOADS[2], "'q'"], dtype="category"),
        "mixed": pd.Series([None, date(2026, 1, 2)], dtype=object),
        "count": [1, 2], "share": [0.5, float("nan")], "flag": [True, False],
        "maybe": pd.Series([True, pd.NA], dtype="boolean"),
    }, geometry=[shapely.Point(113, 34), shapely.Point(114, 35)], crs=4326)
    out = escape_text(frame)
    assert out["plain"].tolist() == ['&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;',
                                     "a &amp; b"]
    assert out["string"][0] == "&lt;/script&gt;&lt;script&gt;window.__pwned=2&lt;/script&gt;"
    assert pd.isna(out["string"][1])
    assert out["category"].tolist() == ["&quot;&gt;&lt;svg onload=window.__pwned=3&gt;",
                                        "&#x27;q&#x27;"]
    assert out["mixed"][0] is None and out["mixed"][1] == "2026-01-02"
    for column in ("count", "share", "flag", "maybe", "geometry"):
        pd.testing.assert_series_equal(out[column], frame[column])
    assert frame["plain"][0] == PAYLOADS[0]  # the input is left alone
    assert "<" not in escape_text(frame).to_json()


def test_with_nonce_stamps_every_script_and_fails_closed():
    page = '<SCRIPT src="/a.js"></SCRIPT><script>1</script><script\ntype="module">2</script>'
    stamped = with_nonce(page, NONCE)
    assert stamped.count(f'<script nonce="{NONCE}"') == 3
    with pytest.raises(ValueError):
        with_nonce(page, "short")
    with pytest.raises(ValueError):
        with_nonce(page, 'x" onload="alert(1)')
    with pytest.raises(ValueError):  # already stamped
        with_nonce('<script nonce="other">1</script>', NONCE)
    with pytest.raises(ValueError):  # a <script the stamp does not recognise
        with_nonce("<script>1</script><scriptx>", NONCE)


def _square(x: float, y: float, d: float = 0.05) -> shapely.Polygon:
    return shapely.box(x, y, x + d, y + d)


def _planted_layers() -> dict[str, gpd.GeoDataFrame]:
    """Every layer the risk map draws, two features each, payloads in every text field."""
    def gdf(columns: dict, tag: str) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame(columns, geometry=[_square(113.6, 34.7), _square(113.8, 34.9)],
                                crs=4326).assign(h3=_planted(f"{tag}h3", 2))
    ints = {"equipment": [3, 4], "open_hazards": [1, 0], "open_major_hazards": [1, 0],
            "overdue": [0, 1]}
    cells = gdf({"level": ["red", "blue"], "level_share": [0.33, 1.0],
                 "max_level": ["red", "blue"], "n_red": [1, 0], "n_orange": [0, 0],
                 "n_yellow": [0, 0], "n_blue": [2, 4],
                 "dominant_category_name": _planted("种类", 2), **ints}, "cell")
    hotspots = gdf({"serious_hazards": [3, 2], "equipment": [5, 6], "q_value": [0.01, 0.02],
                    "regional": [True, False], "unit_count": [2, 1]}, "hot")
    parks = gdf({"name": _planted("园区", 2), "rank": [1, 2], "units": [3, 4], **ints}, "park")
    warnings = gdf({"name": _planted("区县", 2), "grade_zh": _planted("等级", 2),
                    "grade_rank": [1, 3], "message": _planted("预警", 2)}, "warn")
    hazards = gpd.GeoDataFrame({
        "hazard_id": _planted("编号", 2), "unit_name": _planted("单位", 2),
        "description": _planted("隐患", 2), "listed": [True, True],
        "deadline": [pd.Timestamp("2026-10-01"), pd.NaT],
        "past_deadline": pd.array([True, pd.NA], dtype="boolean"),
    }, geometry=[shapely.Point(113.62, 34.72), shapely.Point(113.82, 34.92)], crs=4326)
    counties = load_boundaries(["410000"], level="county").head(3)
    counties = counties.assign(name=_planted("县", len(counties)))
    provinces = load_boundaries(["410000"], level="province").assign(name=_planted("省", 1))
    return {"cells": cells, "hotspots": hotspots, "hazards": hazards, "parks": parks,
            "warnings": warnings, "counties": counties, "provinces": provinces}


def test_risk_map_html_holds_no_unescaped_payload_and_every_script_has_the_nonce():
    """The risk map holds no data (its layers are tiles, popups ask the API); the one value
    from data on it, the caller's name in the build note, is escaped in the legend and
    in map.js's JSON configuration alike."""
    page = build_risk_map(bounds=[[34.5, 113.5], [34.9, 113.9]],
                          build_note=ADMIN_NAME + "（admin，范围 全部）" + PAYLOADS[1],
                          nonce=NONCE)
    _assert_safe(page, NONCE)
    assert "管理员&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;" in page  # legend
    config = re.search(r'id="riskmap-config">(.*?)</script>', page, re.S).group(1)
    assert "<" not in config and ">" not in config
    assert json.loads(config)["note"].startswith(ADMIN_NAME)


def test_count_map_html_holds_no_unescaped_payload_and_every_script_has_the_nonce():
    layers = _planted_layers()
    cells = layers["cells"][["h3", "geometry"]].assign(count=[3, 9])
    page = build_map(cells, layers["counties"], layers["provinces"], resolution=6,
                     resolutions=[5, 6, 7], nonce=NONCE)
    _assert_safe(page, NONCE)
    for tag in ("县", "省", "cellh3"):
        assert _inlined(_planted(tag, 1)[0]) in page, tag


def test_login_page_escapes_its_inputs():
    from web.login import build_login_page

    page = build_login_page("/map" + PAYLOADS[2], PAYLOADS[1], PAYLOADS[0])
    for raw in UNESCAPED:
        assert raw not in page
    assert "<script" not in page


def _assert_headers(headers, policy=page_policy) -> str:
    """The security headers every response has; returns the nonce of its policy (``policy``:
    the page policy, or ReDoc's)."""
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    sent = headers["content-security-policy"]
    nonce = re.search(r"'nonce-([A-Za-z0-9_-]+)'", sent).group(1)
    assert len(nonce) >= 22 and sent == policy(nonce)
    assert "unsafe-eval" not in sent and "script-src 'self' 'nonce-" in sent
    return nonce


def test_every_response_gets_the_headers_and_pages_their_own_nonce(tmp_path):
    root = tmp_path / "store"
    with open_store(str(root), create=True) as store:  # ingest creates it
        ingest([str(f.write_equipment_csv(tmp_path / "eq.csv"))], store, IngestOptions())
        _user, token = create_user(store, name=ADMIN_NAME, role=Role.ADMIN, scope=None,
                                   pepper=Settings().token_pepper.get_secret_value(),
                                   provinces=PROVINCES)
    with TestClient(create_app(Settings(store=str(root)))) as client:
        nonces = {_assert_headers(client.get("/login").headers),
                  _assert_headers(client.get("/login").headers),
                  _assert_headers(client.get("/healthz").headers),
                  _assert_headers(client.get("/api/layers").headers),  # 401 without a token
                  _assert_headers(client.get("/map", follow_redirects=False).headers),
                  _assert_headers(client.get("/static/vendor/leaflet-1.9.4/leaflet.js").headers),
                  _assert_headers(client.get("/no-such-page").headers)}
        assert len(nonces) == 7  # fresh per response
        _assert_headers(client.get("/docs").headers)  # the API docs: tests/test_docs_pages.py
        _assert_headers(client.get("/redoc").headers, redoc_policy)
        _assert_headers(client.get("/openapi.json").headers)
        # no icon: a 204, not a 404 in every browser console
        assert client.get("/favicon.ico").status_code == 204
        # the count map (before any build): its scripts carry its own response's nonce
        page = client.get("/map", headers={"Authorization": f"Bearer {token}"})
        assert page.status_code == 200
        _assert_safe(page.text, _assert_headers(page.headers))


# ------------------------------------------------------------------------- in a browser

def _edit_csv(path: Path, encoding: str, edit) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
    edit(frame)
    frame.to_csv(path, index=False, encoding=encoding)


def _plant_demo(out: Path) -> None:
    """Payloads in the demo's files: unit names (units and equipment), equipment addresses,
    hazard descriptions, park names and grid officers' names."""
    def hazards(frame: pd.DataFrame) -> None:
        frame["隐患描述"] = _planted("隐患", len(frame))

    def equipment(frame: pd.DataFrame) -> None:
        frame["使用单位名称"] = _planted("设备单位", len(frame))
        frame["使用地址"] = frame["使用地址"] + pd.Series(_planted("地址", len(frame)))

    _edit_csv(out / FILES["hazards"], "utf-8", hazards)
    _edit_csv(out / FILES["equipment"], "utf-8-sig", equipment)
    _edit_csv(out / FILES["units"], "utf-8",
              lambda frame: frame.__setitem__("单位名称", _planted("单位", len(frame))))
    _edit_csv(out / FILES["officers"], "utf-8",
              lambda frame: frame.__setitem__("姓名", _planted("网格员", len(frame))))
    parks = json.loads((out / FILES["parks"]).read_text("utf-8"))
    names = _planted("园区", len(parks["features"]))
    for feature, name in zip(parks["features"], names, strict=True):
        feature["properties"]["园区名称"] = name
    (out / FILES["parks"]).write_text(json.dumps(parks, ensure_ascii=False), "utf-8")


def _plant_warnings(store) -> None:
    """Rewrite the built warnings' messages with payloads (same build, every layer)."""
    frames = {lid: store.read_layer(lid) for lid in LAYER_TABLES}
    warnings = frames["warnings"]
    frames["warnings"] = warnings.assign(message=pd.array(_planted("预警", len(warnings)),
                                                          dtype="string"))
    store.write_layers(frames, store.layer_build())


@dataclass
class Served:
    url: str
    tokens: dict[str, str]
    county: str
    piece: tuple[float, float]  # lon, lat of a planted piece of equipment
    # (overlay title in the layer control, lon, lat, zoom) of a planted hazard, park and
    # warning in the county: a click there opens its popup
    spots: dict[str, tuple[str, float, float, int]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def planted_map(tmp_path_factory) -> Iterator[Served]:
    """The small demo with payloads planted, ingested, built and served with an admin and
    a regulator of a county that holds planted listed hazards, parks and warnings."""
    out = tmp_path_factory.mktemp("planted_demo")
    generate(province="河南省", equipment=3000, seed=3, out=out, as_of=AS_OF)
    _plant_demo(out)
    root = tmp_path_factory.mktemp("planted_store") / "store"
    pepper = Settings().token_pepper.get_secret_value()
    with open_store(str(root), create=True) as store:  # ingest creates it
        ingest(sorted(str(p) for p in out.iterdir() if p.name != "MANIFEST.json"), store,
               IngestOptions())
        run_build(store, PROVINCES, as_of=AS_OF)
        _plant_warnings(store)
        hazards = store.read_layer("hazards")
        listed = hazards[hazards["listed"].fillna(False).astype(bool)
                         & hazards.geometry.notna()
                         & hazards["unit_name"].str.startswith("设备单位").fillna(False)]
        parks = set(store.read_layer("parks", ["county_adcode"])["county_adcode"].dropna())
        warned = store.read_layer("warnings", ["adcode", "admin_level"])
        warned = set(warned.loc[warned["admin_level"] == "county", "adcode"])
        counts = listed["county_adcode"].value_counts()
        county = next(c for c in counts.index if c in parks and c in warned)
        hazard = listed[listed["county_adcode"] == county].geometry.iloc[0]
        park = store.read_layer("parks")
        park = park[park["county_adcode"] == county].geometry.iloc[0].representative_point()
        warning = store.read_layer("warnings")
        warning = warning[(warning["admin_level"] == "county") & (warning["adcode"] == county)
                          & (warning["grade_rank"] > 0)].geometry.iloc[0].representative_point()
        spots = {"隐患": ("未销号隐患", hazard.x, hazard.y, 15),
                 "园区": ("园区", park.x, park.y, 14),
                 "预警": ("风险提示", warning.x, warning.y, 10)}
        equipment = store.read_layer("equipment", ["unit_name", "geometry"])
        piece = equipment[equipment["unit_name"].str.startswith("设备单位").fillna(False)
                          & equipment.geometry.notna()].geometry.iloc[0]
        tokens = {}
        for key, name, role, scope in (("admin", ADMIN_NAME, Role.ADMIN, None),
                                       ("county", COUNTY_NAME, Role.REGULATOR, county)):
            _user, tokens[key] = create_user(store, name=name, role=role, scope=scope,
                                             pepper=pepper, provinces=PROVINCES)
    with serving(create_app(Settings(store=str(root)))) as (url, _port):
        yield Served(url, tokens, county, (piece.x, piece.y), spots)


# Runs before any page script (CDP, not subject to the page's CSP): records violations.
_WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push([e.violatedDirective, e.blockedURI, e.sourceFile, e.lineNumber].join(" "));
});
"""

# Only the overlay titled ``title`` on (a click answers for the topmost layer that has
# something there); returns whether it was found.
_ONLY = """(title) => {
  let found = false;
  document.querySelectorAll(".leaflet-control-layers-overlays label").forEach(label => {
    const box = label.querySelector("input[type=checkbox]");
    const want = label.innerText.includes(title);
    found = found || want;
    if (box.checked !== want) box.click();
  });
  return found;
}"""


def _click(page, name: str, title: str, lon: float, lat: float, zoom: int) -> str:
    """The text of the popup a click at (lon, lat) opens at ``zoom`` with only the overlay
    titled ``title`` on (after zooming: the control disables layers out of their zooms)."""
    page.evaluate(f"() => {{ window['{name}'].closePopup(); "
                  f"window['{name}'].setView([{lat}, {lon}], {zoom}, {{animate: false}}); }}")
    assert page.evaluate(_ONLY, title), title
    page.wait_for_timeout(500)
    box = page.locator(".leaflet-container").bounding_box()
    point = page.evaluate(f"window['{name}'].latLngToContainerPoint([{lat}, {lon}])")
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=10_000)
    return popup.inner_text()


@dataclass
class Visit:
    """What a signed-in user's browser saw of the map."""

    popups: list[str] = field(default_factory=list)
    legend: str = ""
    popup: str = ""
    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    pwned: str = ""


def _visit(served: Served, who: str, click_piece: bool = False) -> Visit:
    """Sign in as ``who`` through the login form, switch on every overlay, hover every
    feature; optionally click a planted piece of equipment from zoom 18."""
    seen = Visit()
    with browser_page() as page:
        page.add_init_script(_WATCH_CSP)
        page.on("dialog", lambda d: (seen.dialogs.append(d.message), d.dismiss()))
        page.on("console", lambda m: seen.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: seen.errors.append(str(e)))

        login = page.goto(f"{served.url}/map", wait_until="domcontentloaded")
        assert "/login" in page.url
        _assert_headers(login.headers)
        page.fill("input[name=token]", served.tokens[who])
        with page.expect_response(lambda r: r.url.startswith(f"{served.url}/map")
                                  and r.request.method == "GET") as answer:
            page.click("button[type=submit]")
        page.wait_for_selector(".leaflet-container", timeout=20_000)
        nonce = _assert_headers(answer.value.headers)
        scripts = page.evaluate("[...document.scripts].map(s => s.nonce)")
        assert scripts and set(scripts) == {nonce}, scripts
        api = page.request.get(f"{served.url}/api/layers")
        assert api.ok
        _assert_headers(api.headers)

        page.wait_for_selector(".riskmap-label span", timeout=15_000)  # names drawn
        seen.legend = page.locator("#riskmap-legend").inner_text()
        name = page.evaluate("Object.keys(window).find(k => k.startsWith('map_'))")
        for title, lon, lat, zoom in served.spots.values():
            seen.popups.append(_click(page, name, title, lon, lat, zoom))
        if click_piece:
            seen.popup = _click(page, name, "设备", *served.piece, 18)
        page.wait_for_timeout(300)
        seen.violations = page.evaluate("window.__csp")
        seen.pwned = page.evaluate("typeof window.__pwned")
    return seen


def _shown(texts: list[str], tag: str) -> bool:
    """A planted value ``{tag}{i}-{payload}`` is shown, as text, in one of ``texts``."""
    pattern = re.compile(re.escape(tag) + r"\d+-(" + "|".join(map(re.escape, PAYLOADS)) + ")")
    return any(pattern.search(text) for text in texts)


def _assert_nothing_ran(seen: Visit) -> None:
    assert seen.pwned == "undefined"
    assert not seen.dialogs, seen.dialogs
    assert not seen.errors, seen.errors
    assert not seen.violations, seen.violations
    csp = [m for m in seen.console if "Content Security Policy" in m or "Refused to" in m]
    assert not csp, csp


@pytest.mark.browser
def test_admin_map_shows_planted_values_as_text_and_runs_none(planted_map):
    seen = _visit(planted_map, "admin", click_piece=True)
    _assert_nothing_ran(seen)
    for tag in ("隐患", "设备单位", "园区", "预警"):
        assert _shown(seen.popups, tag), (tag, seen.popups)
    assert ADMIN_NAME in seen.legend
    # the equipment popup (textContent, from the layer API): name and address as text
    assert _shown([seen.popup], "设备单位") and _shown([seen.popup], "地址"), seen.popup
    # officers' names are on no page: planted only to show that nothing ran
    assert not _shown([*seen.popups, seen.legend, seen.popup], "网格员")


@pytest.mark.browser
def test_county_regulator_map_shows_planted_values_as_text_and_runs_none(planted_map):
    seen = _visit(planted_map, "county")
    _assert_nothing_ran(seen)
    for tag in ("隐患", "设备单位", "园区", "预警"):
        assert _shown(seen.popups, tag), (tag, planted_map.county, seen.popups)
    assert COUNTY_NAME in seen.legend and planted_map.county in seen.legend
