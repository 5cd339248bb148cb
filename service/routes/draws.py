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

from geo.regions import UnknownRegion, resolve_region
from layers.registry import ALL
from service.auth import ADCODE_ROLES, Caller, Principal, Role, require
from service.deps import SettingsDep, StoreDep
from service.draws import METHOD, assign_inspectors, draw_units
from service.errors import BadParameter, Forbidden, NotFound, bilingual, invalid
from service.ingest.write_scope import WriteScope
from service.officers import known_officers, officers_in_region
from service.scope import layer_scope
from service.store.base import Change, Store
from service.store.query import Condition, LayerQuery

router = APIRouter(prefix="/api/random-draws", tags=["random draws"])


class DrawRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region: str = Field(pattern=r"^\d{2}(\d{2}){0,2}$",
                        description="抽取范围：行政区划代码，如 410100 或 4101（同一地区）")
    size: int = Field(ge=1, le=5000, description="抽取单位数")
    seed: int | None = Field(None, ge=0, lt=2**63, description="随机种子；不填则随机生成并公开")
    inspectors: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]] | None = Field(
        None, max_length=500, description="检查人员：网格员编号或监管人员的用户编号，须在抽取"
                                          "者辖区内（默认该区域的网格员）")


@router.post("", summary="随机抽取检查对象并随机派员（双随机）", status_code=201,
             dependencies=[require(Role.ADMIN, Role.REGULATOR)])
def create_draw(caller: Caller, store: StoreDep, settings: SettingsDep, body: DrawRequest
                ) -> dict:
    try:
        found = resolve_region(body.region, settings.provinces)
    except UnknownRegion as exc:
        raise BadParameter(exc.named("抽取范围", "region")) from None
    region = found.prefix
    if caller.role == Role.REGULATOR and not region.startswith(
            WriteScope(caller.scope or "").prefix):
        raise Forbidden(bilingual(
            f"抽取范围 {body.region} 超出您的管辖区域：请填写 {caller.scope} 或其下级行政区划代码",
            f"region {body.region} is outside your region: give {caller.scope} or a code "
            "within it"))
    scope = layer_scope(caller, ALL["units"])
    units, _ = store.query_layer(LayerQuery("units", (*scope, Condition(
        "county_adcode", "prefix", (region,))), None, None, 0))
    units = units[units["in_use"].fillna(0).astype(int) > 0]
    seed = body.seed if body.seed is not None else secrets.randbits(63)
    rng = np.random.default_rng(seed)
    drawn = draw_units(units, body.size, rng)
    officers = store.read("officers", ["officer_id", "county_adcode"])
    pool = (_inspectors(store, caller, body.inspectors, settings.provinces)
            if body.inspectors else sorted(officers.loc[officers["county_adcode"].fillna("")
                                                        .str.startswith(region), "officer_id"]))
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
    params = {"region": found.adcode, "size": body.size, "inspectors": pool,
              "candidates": len(units), "strata": int(drawn["stratum"].nunique()) if len(
                  drawn) else 0}
    store.apply_change(Change(
        "draws", draw_id, None, {
            "draw_id": draw_id, "created_at": datetime.now(UTC).replace(tzinfo=None),
            "actor": caller.user_id, "region": found.adcode, "seed": str(seed),
            "method": METHOD, "params": orjson.dumps(params).decode(),
            "build_id": build.build_id if build else None,
            "result": orjson.dumps(result).decode()},
        actor=caller.user_id, action="draw.create", county_adcode=found.adcode))
    return publish(store, draw_id)


def _inspectors(store: Store, caller: Principal, named: list[str], provinces: list[str]
                ) -> list[str]:
    """The named inspectors, each a known officer or enabled user who works within the
    drawer's region (any known one for an administrator); else a 422 naming the others."""
    wanted = list(dict.fromkeys(named))
    users = {u.user_id: u for u in store.users() if not u.disabled}
    officers = set(known_officers(store, [w.upper() for w in wanted])["officer_id"])
    region = WriteScope(caller.scope or "") if caller.role == Role.REGULATOR else None
    working = (officers_in_region(store, sorted(officers), region, provinces)
               if region else officers)
    pool, refused = [], []
    for who in wanted:
        user = users.get(who)
        if who.upper() in working:
            pool.append(who.upper())
        elif user is not None and (region is None or (
                Role(user.role) in ADCODE_ROLES and region.contains([user.scope])[0])):
            pool.append(who)
        else:
            refused.append(who)
    if refused:
        raise invalid("inspectors",
                      f"不是您辖区内的网格员或监管人员：{'、'.join(refused[:20])}；"
                      "请填写辖区内网格员编号或监管人员的用户编号",
                      f"not a grid officer or regulator of your region: "
                      f"{', '.join(refused[:20])}; give officer ids or regulators' user ids")
    return pool


@router.get("/{draw_id}", summary="公开抽取结果（无需登录）")
def publish(store: StoreDep, draw_id: Annotated[str, Path(pattern=r"^SJ\d{8}[0-9A-F]{8}$")]
            ) -> dict:
    row = store.row("draws", draw_id)
    if row is None:
        raise NotFound(bilingual(f"抽取 {draw_id} 不存在：请核对抽取编号",
                                 f"random draw {draw_id} not found: check the draw id"))

    def parsed(value: object) -> object:
        return orjson.loads(value) if isinstance(value, str) else value

    return {"draw_id": row["draw_id"], "created_at": row["created_at"].isoformat(),
            "region": row["region"], "seed": row["seed"], "method": row["method"],
            "build_id": row["build_id"], "params": parsed(row["params"]),
            "units": parsed(row["result"])}
