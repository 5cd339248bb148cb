"""The OpenAPI 3.0 document of /ogc (OGC API – Features Part 1 "oas30"): /ogc/api rewrites
the app's own 3.1 /openapi.json into 3.0.3 that openapi-spec-validator accepts, holding every
/ogc path and nothing else; each 3.1 construct FastAPI (or a later route) may write has its
3.0 form; signed-in callers only, like the rest of /ogc."""

from __future__ import annotations

import copy

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from service.openapi30 import openapi30, schema30
from service.routes.ogc_api import OPENAPI30
from tests.servers import get

pytestmark = pytest.mark.reads_demo  # the demo tests only read

# the live document -----------------------------------------------------------------------------


@pytest.mark.slow
def test_ogc_api_is_a_valid_openapi_30_document_of_every_ogc_path(api):
    full = api["client"].get("/openapi.json").json()
    assert full["openapi"].startswith("3.1")
    r = get(api, "planner", "/ogc/api")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == OPENAPI30
    doc = r.json()
    assert doc["openapi"] == "3.0.3"
    validate(doc)  # raises on any violation of the 3.0 schema
    ogc = {p for p in full["paths"] if p == "/ogc" or p.startswith("/ogc/")}
    assert "/ogc/api" in ogc and "/ogc/collections/{collection_id}/items" in ogc
    # relative to the one server, /ogc, with OGC's path parameter names (as GDAL looks up)
    assert doc["servers"] == [{"url": "http://testserver/ogc"}]
    ogc_named = {(p[len("/ogc"):] or "/").replace("{collection_id}", "{collectionId}")
                 .replace("{feature_id}", "{featureId}") for p in ogc}
    assert set(doc["paths"]) == ogc_named
    assert {"/collections/{collectionId}/items", "/conformance", "/"} <= set(doc["paths"])
    items = doc["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]
    assert {"name": "collectionId", "in": "path"}.items() <= next(
        p for p in items if p["in"] == "path").items()
    lang = next(p for p in items if p["name"] == "filter-lang")
    assert "cql-text" in lang["schema"]["enum"]
    # the components left are exactly those referenced, and all of them resolve
    text = r.text
    for section, named in doc.get("components", {}).items():
        for name in named:
            assert f'"#/components/{section}/{name}"' in text
    for path in doc["paths"].values():
        for op in path.values():
            assert op["responses"]
    assert get(api, "planner", "/ogc/api", f="json").json() == doc


@pytest.mark.slow
def test_ogc_api_asks_for_a_token_and_sends_browsers_to_the_docs(api):
    assert get(api, None, "/ogc/api").status_code == 401
    forged = api["client"].get("/ogc/api", headers={"Authorization": "Bearer rmk_forged"})
    assert forged.status_code == 401
    client = api["client"]
    html = get(api, "county", "/ogc/api", f="html")
    assert html.status_code == 200 and "swagger-ui" in html.text  # followed to /docs
    r = client.get("/ogc/api", headers={
        "Authorization": f"Bearer {api['tokens']['county']}",
        "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/docs"
    r = client.get("/ogc/api", headers={
        "Authorization": f"Bearer {api['tokens']['county']}", "Accept": "*/*"})
    assert r.status_code == 200 and r.headers["content-type"] == OPENAPI30
    for params in ({"f": "xml"}, {"f": "<script>"}, {"limit": "1"}):
        bad = get(api, "county", "/ogc/api", **params)
        assert bad.status_code == 400, bad.text
        assert bad.headers["content-type"].startswith("application/")  # never HTML


def test_the_whole_app_converts_too_and_the_input_is_left_alone():
    from service.app import create_app
    from service.settings import Settings

    full = create_app(Settings()).openapi()
    before = copy.deepcopy(full)
    validate(openapi30(full, prefix="/"))
    assert full == before
    only = openapi30(full)
    assert all(p == "/ogc" or p.startswith("/ogc/") for p in only["paths"])


# each 3.1 construct -----------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "expected"), [
    ({"type": ["string", "null"]}, {"type": "string", "nullable": True}),
    ({"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}], "title": "N"},
     {"type": "integer", "minimum": 1, "title": "N", "nullable": True}),
    ({"anyOf": [{"$ref": "#/components/schemas/A"}, {"type": "null"}]},
     {"allOf": [{"$ref": "#/components/schemas/A"}], "nullable": True}),
    ({"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
     {"anyOf": [{"type": "string"}, {"type": "integer"}], "nullable": True}),
    ({"type": ["string", "integer"]}, {"anyOf": [{"type": "string"}, {"type": "integer"}]}),
    ({"type": "string", "examples": ["a", "b"]}, {"type": "string", "example": "a"}),
    ({"const": "x"}, {"enum": ["x"]}),
    ({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
     {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 10,
      "exclusiveMaximum": True}),
    ({"type": "string", "contentMediaType": "application/octet-stream"},
     {"type": "string", "format": "binary"}),
    ({"type": "string", "contentEncoding": "base64"}, {"type": "string", "format": "byte"}),
    ({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
      "$defs": {}, "properties": {"a": {"type": ["array", "null"]}}},
     {"type": "object", "properties": {"a": {"type": "array", "items": {}, "nullable": True}}}),
    ({"$ref": "#/components/schemas/A", "description": "d"},
     {"allOf": [{"$ref": "#/components/schemas/A"}], "description": "d"}),
    ({"type": "array", "prefixItems": [{"type": "number"}, {"const": 1}]},
     {"type": "array", "items": {"anyOf": [{"type": "number"}, {"enum": [1]}]}}),
])
def test_each_31_construct_has_its_30_form(given, expected):
    assert schema30(given) == expected


def test_a_document_full_of_31_constructs_becomes_valid_30():
    doc = {
        "openapi": "3.1.0", "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "$schema": "https://spec.openapis.org/oas/3.1/schema-base/2022-10-07",
        "info": {"title": "t", "version": "1", "summary": "s",
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "webhooks": {"hook": {"post": {"responses": {"200": {"description": "ok"}}}}},
        "paths": {
            "/ogc/x": {"get": {
                "parameters": [{"name": "n", "in": "query", "schema": {
                    "type": ["integer", "null"], "exclusiveMinimum": 0, "examples": [3]}}],
                "responses": {"200": {"description": "ok", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/A"}},
                    "image/png": {"schema": {"type": "string",
                                             "contentMediaType": "image/png"}}}}}}},
            "/api/y": {"get": {"responses": {"200": {"description": "ok", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Unused"}}}}}}},
        },
        "components": {"schemas": {
            "A": {"type": "object", "properties": {
                "b": {"anyOf": [{"$ref": "#/components/schemas/B"}, {"type": "null"}]},
                "kind": {"const": "a"}}},
            "B": {"type": "array", "items": {"type": ["number", "null"]}},
            "Unused": {"type": "string"}}},
    }
    before = copy.deepcopy(doc)
    out = openapi30(doc)
    assert doc == before
    validate(out)
    assert out["openapi"] == "3.0.3" and set(out["paths"]) == {"/ogc/x"}
    for gone in ("webhooks", "jsonSchemaDialect", "$schema"):
        assert gone not in out
    assert "summary" not in out["info"] and "identifier" not in out["info"]["license"]
    assert set(out["components"]["schemas"]) == {"A", "B"}  # B only through A
    with pytest.raises(OpenAPIValidationError):  # the validator does check 3.0 schemas
        validate({**out, "paths": {"/ogc/x": {"get": {"responses": {"200": {
            "description": "ok", "content": {"application/json": {"schema": {
                "type": ["string", "null"]}}}}}}}}})
