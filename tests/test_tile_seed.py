"""Seeded tiles (issue 16 §3): ``riskmap seed`` renders the province-wide default tiles of
a build ahead, and the service answers their first request from the store.

On the seeded demo, both stores: a seeded tile's bytes are exactly what drawing it gives;
the service answers a seeded address without drawing and an unseeded one by drawing; a
caller of a narrower scope never gets the province's seeds; a new build's tiles never
come from an old build's seeds; seeding for a build no longer in force is refused; the CLI
seeds and reports, and refuses a store without layers.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from layers.registry import ALL
from service import tiles
from service.auth import Principal, Role
from service.build import run_build
from service.caches import TileCache
from service.cli import app as cli
from service.mvt import Tile
from service.store import open_store
from service.store.errors import SeedSuperseded
from service.tile_seed import same_tiles, seed, seed_callers, tile_addresses
from tests.conftest import DEMO_AS_OF, DEMO_PROVINCES

ZOOMS = (8, 9, 10, 11, 12)
ADMIN = Principal("u-admin", "admin", Role.ADMIN, None)


@pytest.fixture(scope="module")
def seeded(api: dict) -> dict:
    """The module's copy of the demo, seeded once (z8–z12, both layers)."""
    with open_store(api["url"]) as store:
        report = seed(store, DEMO_PROVINCES, zooms=ZOOMS)
        build_id = store.layer_build().build_id
    return {**api, "report": report, "build_id": build_id}


def _tag(store, caller: Principal, layer: str, tile: Tile) -> tuple[tiles.Plan, str]:
    plan = tiles.plan_tile(caller, ALL[layer], store, tile)
    return plan, tiles.etag(plan, tile, store.layer_build().build_id, store.h3_resolution)


def _tile_get(api: dict, who: str, layer: str, tile: Tile):
    return api["client"].get(f"/tiles/{layer}/{tile.z}/{tile.x}/{tile.y}.mvt",
                             headers={"Authorization": f"Bearer {api['tokens'][who]}"})


def test_seeding_covers_each_province_wide_caller_and_layer(seeded):
    report = seeded["report"]
    assert report.build_id == seeded["build_id"]
    assert report.by_layer["equipment"] > 0 and report.by_layer["risk-cells"] > 0
    with open_store(seeded["url"]) as store:
        # the demo is in 河南: the admin's and 河南's regulator's tiles, none for 陕西
        admin = tile_addresses(store, seed_callers(DEMO_PROVINCES)[0], ZOOMS)
        henan = tile_addresses(store, seed_callers(DEMO_PROVINCES)[1], ZOOMS)
        shaanxi = tile_addresses(store, seed_callers(DEMO_PROVINCES)[2], ZOOMS)
    assert admin and henan == admin and shaanxi == []
    assert {t.z for t in admin} == set(ZOOMS)
    assert report.tiles + report.empty == 2 * 2 * len(admin)
    # in a store of one province, its regulator's equipment tiles are the administrator's
    # rows: drawn once, kept under both ETags; re-aggregated risk cells are drawn apart
    with open_store(seeded["url"]) as store:
        callers = seed_callers(DEMO_PROVINCES)
        groups = same_tiles(store, ALL["equipment"], callers)
        assert [[c.scope for c in g] for g in groups] == [[None, "410000"], ["610000"]]
        groups = same_tiles(store, ALL["risk-cells"], callers)
        assert [[c.scope for c in g] for g in groups] == [[None], ["410000"], ["610000"]]


def test_seeded_bytes_are_the_drawn_bytes(seeded):
    with open_store(seeded["url"]) as store:
        for caller in seed_callers(DEMO_PROVINCES)[:2]:
            for layer in ("equipment", "risk-cells"):
                for tile in tile_addresses(store, caller, (8, 10, 12))[::7]:
                    plan, tag = _tag(store, caller, layer, tile)
                    drawn = tiles.draw(store, plan, tile, seeded["build_id"], TileCache())
                    assert store.seeded_tile(tag) == (drawn or None), (caller.scope, layer,
                                                                       tile)


def test_the_service_answers_seeded_tiles_without_drawing(seeded, monkeypatch):
    drawn: list[Tile] = []
    real = tiles.draw

    def counting(store, plan, tile, build_id, cache):
        drawn.append(tile)
        return real(store, plan, tile, build_id, cache)

    monkeypatch.setattr(tiles, "draw", counting)
    with open_store(seeded["url"]) as store:
        seeded_tiles = tile_addresses(store, seed_callers(DEMO_PROVINCES)[1], (10, 12))[:6]
        expected = {}
        for tile in seeded_tiles:
            _, tag = _tag(store, Principal("p", "p", Role.REGULATOR, "410000"), "equipment",
                          tile)
            expected[tile] = store.seeded_tile(tag)
    for tile in seeded_tiles:
        response = _tile_get(seeded, "province", "equipment", tile)
        assert response.status_code == 200
        assert response.content == expected[tile]
    assert drawn == []
    # an address that was not seeded (z13) is drawn, and a narrower scope never gets the
    # province's seeds: the city regulator's tiles are drawn for the city
    z13 = Tile(13, seeded_tiles[-1].x * 2, seeded_tiles[-1].y * 2)
    assert _tile_get(seeded, "province", "equipment", z13).status_code == 200
    assert drawn == [z13]
    city_tiles = 0
    with open_store(seeded["url"]) as store:
        city = Principal("c", "c", Role.REGULATOR, seeded["city"])
        for tile in tile_addresses(store, city, (10,)):
            response = _tile_get(seeded, "city", "equipment", tile)
            assert response.status_code == 200
            plan, _ = _tag(store, city, "equipment", tile)
            assert response.content == real(store, plan, tile, seeded["build_id"], TileCache())
            city_tiles += 1
    assert city_tiles and len(drawn) == 1 + city_tiles


def test_city_and_county_regulators_get_their_own_seeds(seeded, monkeypatch):
    """Seeded with ``scopes`` province, city and county: every city's and county's
    regulator of the configured provinces is a caller; a city's and a county's regulator
    get their own map's tiles from the seeds, the bytes drawing gives, nothing drawn."""
    callers = seed_callers(DEMO_PROVINCES, ("province", "city", "county"))
    scopes = [c.scope for c in callers]
    assert scopes[:3] == [None, "410000", "610000"]
    assert seeded["city"] in scopes and seeded["county"] in scopes
    assert "411700" in scopes and "610100" in scopes and len(scopes) == len(set(scopes))
    with open_store(seeded["url"]) as store:
        report = seed(store, DEMO_PROVINCES, zooms=(10, 12), scopes=("province", "city",
                                                                      "county"))
        province_only = sum(1 for _ in tile_addresses(store, ADMIN, (10, 12)))
        assert report.tiles + report.empty > 3 * 2 * province_only  # + cities + counties
        expected = {}
        for who in ("city", "county"):
            caller = Principal(who, who, Role.REGULATOR, seeded[who])
            for layer in ("equipment", "risk-cells"):
                for tile in tile_addresses(store, caller, (10, 12))[:4]:
                    plan, tag = _tag(store, caller, layer, tile)
                    kept = store.seeded_tile(tag)
                    drawn = tiles.draw(store, plan, tile, seeded["build_id"], TileCache())
                    assert kept == (drawn or None), (who, layer, tile)
                    expected[(who, layer, tile)] = drawn
    assert expected
    drawn_now: list[Tile] = []
    real = tiles.draw
    monkeypatch.setattr(tiles, "draw", lambda *a: drawn_now.append(a[2]) or real(*a))
    for (who, layer, tile), data in expected.items():
        response = _tile_get(seeded, who, layer, tile)
        assert response.status_code == 200 and response.content == data
    assert drawn_now == []


def test_the_cli_seeds_the_scopes_asked_and_refuses_others(seeded):
    result = CliRunner().invoke(cli, ["seed", "--store", seeded["url"], "--max-zoom", "8",
                                      "--scopes", "province,town"])
    assert result.exit_code == 2 and "--scopes" in result.output
    with pytest.raises(ValueError):
        seed_callers(DEMO_PROVINCES, ("village",))


def test_a_new_build_drops_the_seeds_and_old_seeds_are_refused(seeded):
    with open_store(seeded["url"]) as store:
        tile = tile_addresses(store, ADMIN, (10,))[0]
        _, old_tag = _tag(store, ADMIN, "equipment", tile)
        assert store.seeded_tile(old_tag) is not None
        old_build = store.layer_build().build_id
        run_build(store, DEMO_PROVINCES, as_of=DEMO_AS_OF)
        assert store.layer_build().build_id != old_build
        _, new_tag = _tag(store, ADMIN, "equipment", tile)
        assert new_tag != old_tag
        assert store.seeded_tile(old_tag) is None and store.seeded_tile(new_tag) is None
        with pytest.raises(SeedSuperseded):
            store.add_seeded_tiles(old_build, [(old_tag, b"\x1a\x00")])
        assert store.seeded_tile(old_tag) is None
        # the CLI seeds the build now in force
        result = CliRunner().invoke(cli, ["seed", "--store", seeded["url"], "--max-zoom", "10"])
        assert result.exit_code == 0, result.output
        assert "已预生成瓦片" in result.output
        assert store.seeded_tile(new_tag) is not None
    # forgotten seeds: the tile is drawn again; seeding again brings them back
    with open_store(seeded["url"]) as store:
        store.drop_seeded_tiles()
        assert store.seeded_tile(new_tag) is None
        again = seed(store, DEMO_PROVINCES, zooms=(10,), layers=("equipment",))
        assert again.tiles > 0 and store.seeded_tile(new_tag) is not None


def test_the_cli_refuses_bad_zooms_and_a_store_without_layers(seeded, tmp_path):
    result = CliRunner().invoke(cli, ["seed", "--store", seeded["url"], "--max-zoom", "15"])
    assert result.exit_code == 2
    empty = tmp_path / "empty-store"
    open_store(str(empty), create=True).close()
    result = CliRunner().invoke(cli, ["seed", "--store", str(empty)])
    assert result.exit_code == 2
    assert "riskmap ingest" in result.output
    with open_store(seeded["url"]) as store, pytest.raises(ValueError):
        seed(store, DEMO_PROVINCES, zooms=(15,))
    with open_store(seeded["url"]) as store, pytest.raises(ValueError):
        seed(store, DEMO_PROVINCES, layers=("regions-table-that-is-not",))
