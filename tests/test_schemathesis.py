"""Schemathesis against the app's OpenAPI schema on the seeded demo (issue 5 §7): no request
the schema allows, nor one it does not, gets a 5xx — as admin and as scoped callers.

The schema is the one the app publishes at /openapi.json; every case is sent in-process to
the app of the ``demo_api`` TestClient (the demo store behind it, both stores) with a
caller's Bearer token, and checked with ``not_a_server_error`` only (the app's 4xx answers
are its own business here). Random strings seldom name a real layer, park or hazard, so a
hook swaps about half of the generated ids and filter values for real ones of the demo: the
fuzzing then reaches the code behind the 404s. Every operation is fuzzed, POST /api/ingest
included (an upload that happens to parse goes into this module's own demo store only).

Bounded and reproducible for CI: ``EXAMPLES`` per operation and caller in the fuzzing phase
(plus schemathesis' examples and coverage phases), derandomized, no example database.
"""

from __future__ import annotations

import zlib
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from data.catalogue import TOP_CATEGORIES
from layers.frames import LEVELS
from layers.registry import ALL
from service.app import create_app
from service.ogc import CRS_LIST

pytestmark = pytest.mark.slow

# admin reaches every branch of every endpoint; a county regulator and a grid officer take
# the scoped paths (adcode prefixes, their cells) and the refusals of the others; a province
# regulator takes the scoped writes (uploads, draws, checks), a park admin the park's paths
WHO = ["admin", "province", "county", "officer", "park"]
EXAMPLES = 15


class DemoApp:
    """The ASGI app schemathesis calls. It forwards requests to the demo's app, whose
    lifespan (the store) the demo's TestClient runs, and answers lifespan events itself, so
    schemathesis opens no second store. Until a demo is up it is an app without a store:
    enough to serve /openapi.json."""

    def __init__(self) -> None:
        self.app: Any = create_app()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.app(scope, receive, send)


APP = DemoApp()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)

# real values by parameter (or body field) name; the ``served`` fixture adds the demo's ids
REAL: dict[str, list] = {
    "layer": list(ALL), "collection_id": list(ALL), "level": list(LEVELS),
    "category": list(TOP_CATEGORIES), "industry": ["C", "G", "未知"], "resolution": [5, 7, 8, 9],
    "crs": [*CRS_LIST, "EPSG:4490", "GCJ02"], "bbox": ["112,33,115,36", "34,113,35,114"],
    "format": ["json", "csv", "xlsx", "geojson", "gpkg"],
}
# where one name means something else
REAL_AT: dict[tuple[str, str], list] = {
    ("/api/regions/{adcode}/summary", "level"): ["province", "city", "county"],
}


def _swap(path: str, key: str, values: object) -> None:
    """Swap, in place, some of ``values`` for real ones of the same name. The choice is a
    pure function of the case (a Hypothesis replay must get the same case back)."""
    if not isinstance(values, dict):
        return
    for name in list(values):
        real = REAL_AT.get((path, name)) or REAL.get(name)
        pick = zlib.crc32(f"{name}|{key}".encode())
        if real and pick % 2:
            values[name] = real[(pick // 2) % len(real)]


@schema.hook
def map_case(_ctx, case):
    """Runs in every phase (examples, coverage, fuzzing), unlike the per-part hooks."""
    parts = (case.path_parameters, case.query, case.body)
    key = repr(parts)
    for part in parts:
        _swap(case.operation.path, key, part)
    return case


def _ids(client, token: str, layer: str, n: int) -> list[str]:
    r = client.get(f"/api/layers/{layer}", params={"limit": n},
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return [f["id"] for f in r.json()["features"]]


@pytest.fixture(scope="module")
def served(demo_api):
    """Point the schemathesis app at the demo, and learn the demo's real ids."""
    client, admin = demo_api["client"], demo_api["tokens"]["admin"]
    county, city, officer = demo_api["county"], demo_api["city"], demo_api["officer"]
    cells = sorted(demo_api["officer_cells"])[:2]
    hazards = _ids(client, admin, "hazards", 4)
    draw = client.post("/api/random-draws", json={"region": county, "size": 3, "seed": 1},
                       headers={"Authorization": f"Bearer {admin}"})
    assert draw.status_code == 201, draw.text
    demo = {
        "park_id": [demo_api["park"], *_ids(client, admin, "parks", 2)],
        "park": [demo_api["park"]], "adcode": [county, city, city[:4], "410000", "41"],
        "city": [city], "region": [county, city], "cell": [*cells, "8831aa5a5dfffff"],
        "hazard_id": hazards, "entity_id": hazards,
        "credit_code": _ids(client, admin, "units", 3), "officer_id": [officer],
        "officer": [officer],
        "inspectors": [[officer]], "draw_id": [draw.json()["draw_id"]],
        "token": [demo_api["tokens"]["county"]],
        "feature_id": [*_ids(client, admin, "equipment", 2), *hazards[:1], *cells[:1],
                       f"county:{county}"],
    }
    REAL.update(demo)
    REAL_AT[("/api/regions/{adcode}/summary", "adcode")] = [county, city, "410000"]
    before, APP.app = APP.app, client.app
    yield demo_api
    APP.app = before
    for name in demo:
        REAL.pop(name)
    REAL_AT.pop(("/api/regions/{adcode}/summary", "adcode"))


@pytest.fixture(params=WHO)
def who(request) -> str:
    return request.param


# the operations without a token: fuzzed once, as a stranger (a caller changes nothing there)
PUBLIC = ["/healthz", "/login", "/api/random-draws/{draw_id}"]
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                suppress_health_check=list(HealthCheck))


def _check(case, headers: dict[str, str] | None = None) -> None:
    # a redirect (login → map) is the response under test; its target is fuzzed on its own
    case.call_and_validate(headers=headers, checks=[not_a_server_error],
                           allow_redirects=False)


@FUZZ
@schema.exclude(path=PUBLIC).parametrize()
def test_no_server_errors(case, served, who):
    _check(case, {"Authorization": f"Bearer {served['tokens'][who]}"})


@FUZZ
@schema.include(path=PUBLIC).parametrize()
def test_no_server_errors_without_a_token(case, served):
    _check(case)


# edges the generated cases seldom reach, found by probing beside the fuzzing ---------------

@pytest.mark.parametrize("name", ["设备台账" * 40 + ".csv", "a\x00b.csv", "\x01"])
def test_an_upload_named_beyond_what_a_file_system_takes_is_not_a_server_error(served, name):
    """A file name of 480 bytes, or with a NUL, once became a temporary file and a 500."""
    body = (b'--B\r\nContent-Disposition: form-data; name="files"; filename="'
            + name.encode() + b'"\r\nContent-Type: text/csv\r\n\r\na,b\r\n1,2\r\n--B--\r\n')
    r = served["client"].post("/api/ingest", content=body, headers={
        "Content-Type": "multipart/form-data; boundary=B",
        "Authorization": f"Bearer {served['tokens']['admin']}"})
    assert r.status_code == 200, r.text
    if name.isprintable():
        assert name in r.text  # the report names the file as uploaded
