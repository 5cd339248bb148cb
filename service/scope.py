"""What each caller may see of each layer, as query conditions (enforced in the query).

- admin: everything.
- regulator / planner (an adcode): rows in their region. A province or city scope matches
  by code prefix (41…, 4101…) on the layer's finest admin column, a county scope by its
  code; region layers match the region itself and the regions inside it. A layer that
  holds no admin code finer than the scope (e.g. per-city demonstration for a county) or
  none at all is refused, never shown whole.
- grid_officer (an officer id): rows in their H3 cells (res-8 ``h3``; ``Principal.cells``,
  resolved per request), and their own rows of ``grid-cells``.
- park_admin (a park id): rows whose ``park_id`` is their park.
Anything else is 403.
"""

from __future__ import annotations

from layers.registry import LayerSpec
from service.auth import ADCODE_ROLES, ROLE_ZH, Principal, Role
from service.errors import Forbidden, bilingual
from service.store.query import Condition

REGION_LAYERS = frozenset({"regions", "industries", "insurance", "warnings", "workload",
                           "campaign-completion"})
# admin columns from finest to coarsest, and how many leading digits a scope level keeps
ADMIN_COLUMNS = ("county_adcode", "city_adcode", "province_adcode")
PREFIX = {"province": 2, "city": 4, "county": 6}
FINEST = {"county_adcode": "county", "city_adcode": "city", "province_adcode": "province"}


def layer_scope(caller: Principal, spec: LayerSpec) -> tuple[Condition, ...]:
    """The conditions that restrict ``spec`` to ``caller``; Forbidden if none can."""
    if caller.role == Role.ADMIN:
        return ()
    fields = set(spec.field_names)
    if caller.role in ADCODE_ROLES:
        return _adcode_scope(caller, spec, fields)
    if caller.role == Role.GRID_OFFICER:
        if spec.id == "grid-cells":
            return (Condition("officer_id", "eq", (caller.scope or "",)),)
        if "h3" in fields and not spec.cells:
            return (Condition("h3", "in", caller.cells),)
    if caller.role == Role.PARK_ADMIN and "park_id" in fields:
        return (Condition("park_id", "eq", (caller.scope or "",)),)
    raise Forbidden(bilingual(
        f"{ROLE_ZH[caller.role]}（{caller.role.value}）无权查看图层 {spec.id}（{spec.title}）："
        "您可查看的图层见 /api/layers",
        f"a {caller.role.value} may not view layer {spec.id}: see /api/layers for the layers "
        "you may view"))


def _adcode_scope(caller: Principal, spec: LayerSpec, fields: set[str]
                  ) -> tuple[Condition, ...]:
    code = caller.scope or ""
    where = region_conditions(spec, code, caller.admin_level or "county")
    if where is None:
        raise Forbidden(bilingual(
            f"图层 {spec.id}（{spec.title}）不能按行政区划限定到 {code}，"
            f"{ROLE_ZH[caller.role]}（{caller.role.value}）无权查看：您可查看的图层见 /api/layers",
            f"layer {spec.id} cannot be restricted to region {code}, so a "
            f"{caller.role.value} may not view it: see /api/layers for the layers you may view"))
    return where


def region_conditions(spec: LayerSpec, adcode: str, level: str
                      ) -> tuple[Condition, ...] | None:
    """The conditions that keep the rows of ``spec`` inside the region ``adcode`` (a
    6-digit code of ``level``), or None when the layer holds no admin code as fine as the
    region (restricting it would show others' data or nothing). The one rule for a
    caller's scope and for an ``adcode`` filter."""
    if spec.id in REGION_LAYERS:
        if level == "county":  # the county itself
            return (Condition("adcode", "eq", (adcode,)),
                    Condition("admin_level", "eq", ("county",)))
        return (Condition(f"{level}_adcode", "eq", (adcode,)),)
    fields = set(spec.field_names)
    for column in ADMIN_COLUMNS:
        if column in fields:
            if PREFIX[FINEST[column]] < PREFIX[level]:
                return None  # the layer is coarser than the region
            if level == "city" and adcode == "419001":  # 济源: a city that is a county
                return (Condition(column, "prefix", (adcode,)),)
            return (Condition(column, "prefix", (adcode[:PREFIX[level]],)),)
    return None
