"""双随机、一公开: draw units and inspectors (regulators), publish the draw (anyone)."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Annotated

import numpy as np
import orjson
from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from layers.registry import ALL
from service.auth import Caller, Forbidden, Role, require
from service.deps import StoreDep
from service.draws import METHOD, assign_inspectors, draw_units
from service.errors import NotFound
from service.scope import PREFIX, layer_scope
from service.store.base import Change
from service.store.query import Condition, LayerQuery

router = APIRouter(prefix="/api/random-draws", tags=["random draws"])


class DrawRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region: str = Field(pattern=r"^\d{6}$", description="抽取范围（行政区划代码）")
    size: int = Field(ge=1, le=5000, description="抽取单位数")
    seed: int | None = Field(None, ge=0, lt=2**63, description="随机种子；不填则随机生成并公开")
    inspectors: list[str] | None = Field(
        None, max_length=500, description="检查人员编号（默认该区域的网格员）")


def _prefix(adcode: str) -> str:
    if adcode.endswith("0000"):
        return adcode[:PREFIX["province"]]
    return adcode[:PREFIX["city"]] if adcode.endswith("00") else adcode


@router.post("", summary="随机抽取检查对象并随机派员（双随机）", status_code=201,
             dependencies=[require(Role.ADMIN, Role.REGULATOR)])
def create_draw(caller: Caller, store: StoreDep, body: DrawRequest) -> dict:
    region = _prefix(body.region)
    if caller.role == Role.REGULATOR and not region.startswith(_prefix(caller.scope or "")):
        raise Forbidden("抽取范围超出您的管辖区域")
    scope = layer_scope(caller, ALL["units"], store)
    units, _ = store.query_layer(LayerQuery("units", (*scope, Condition(
        "county_adcode", "prefix", (region,))), None, None, 0))
    units = units[units["in_use"].fillna(0).astype(int) > 0]
    seed = body.seed if body.seed is not None else secrets.randbits(63)
    rng = np.random.default_rng(seed)
    drawn = draw_units(units, body.size, rng)
    officers = store.read("officers", ["officer_id", "county_adcode"])
    pool = body.inspectors or sorted(officers.loc[officers["county_adcode"].fillna("")
                                                  .str.startswith(region), "officer_id"])
    cells = store.read("officer_cells", ["officer_id", "h3"])
    own = cells[cells["officer_id"].isin(pool)].groupby("officer_id")["h3"].agg(set).to_dict()
    inspectors = assign_inspectors(drawn, list(pool), own, rng)
    build = store.layer_build()
    result = [{"credit_code": r["credit_code"], "name": r["name"],
               "county_adcode": r["county_adcode"], "stratum": r["stratum"],
               "level": r["level"], "inspector": who,
               "conflict": bool(who and r["h3"] in own.get(who, set()))}
              for r, who in zip(drawn.to_dict("records"), inspectors, strict=True)]
    draw_id = f"SJ{datetime.now(UTC):%Y%m%d}{uuid.uuid4().hex[:8].upper()}"
    params = {"region": body.region, "size": body.size, "inspectors": pool,
              "candidates": len(units), "strata": int(drawn["stratum"].nunique()) if len(
                  drawn) else 0}
    store.apply_change(Change(
        "draws", draw_id, None, {
            "draw_id": draw_id, "created_at": datetime.now(UTC).replace(tzinfo=None),
            "actor": caller.user_id, "region": body.region, "seed": str(seed),
            "method": METHOD, "params": orjson.dumps(params).decode(),
            "build_id": build.build_id if build else None,
            "result": orjson.dumps(result).decode()},
        actor=caller.user_id, action="draw.create", county_adcode=body.region))
    return publish(store, draw_id)


@router.get("/{draw_id}", summary="公开抽取结果（无需登录）")
def publish(store: StoreDep, draw_id: Annotated[str, Path(pattern=r"^SJ\d{8}[0-9A-F]{8}$")]
            ) -> dict:
    row = store.row("draws", draw_id)
    if row is None:
        raise NotFound("没有该次抽取")

    def parsed(value: object) -> object:
        return orjson.loads(value) if isinstance(value, str) else value

    return {"draw_id": row["draw_id"], "created_at": row["created_at"].isoformat(),
            "region": row["region"], "seed": row["seed"], "method": row["method"],
            "build_id": row["build_id"], "params": parsed(row["params"]),
            "units": parsed(row["result"])}
