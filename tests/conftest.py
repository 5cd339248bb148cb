"""Shared fixtures: a real PostGIS, a fresh database per test, both stores, valid frames,
and the built demo behind the service tests.

``store`` is parametrised over the two implementations, so any test that takes it runs
against both (the PostGIS run is marked ``postgis``; ``-m "not postgis"`` skips it).
PostGIS comes from ``$RISKMAP_TEST_DATABASE_URL`` or else ``scripts/postgis.sh``; when it
cannot be had the PostGIS tests are skipped, except under ``CI=true`` where they fail.

Stores that take long to fill are filled once a session per kind and then only copied
(``StoreTemplates``: ``CREATE DATABASE … TEMPLATE``, or a copied store directory): a test
gets its own copy from ``filled_store``. So does the demo (``demo_api``, alias ``api``): a
module gets a copy of its own, so what it writes no other module sees; modules marked
``reads_demo`` write nothing and share one copy.
"""

from __future__ import annotations

import copy
import itertools
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely
from psycopg import sql
from sqlalchemy.engine import make_url

from geo.cells import enrich_cells
from service.store.base import Batch, Store
from service.store.conform import pandas_dtype
from service.store.tables import ALL_TABLES, LINKS, META, TABLES

ROOT = Path(__file__).resolve().parents[1]
DB_PREFIX = "riskmap_t"  # per-test databases: riskmap_t_<pid>_<n>; template riskmap_t_<pid>


# PostGIS ---------------------------------------------------------------------------------------

class PostGISServer:
    """The test server: make and drop databases on it (names come from the tests only)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def database_url(self, name: str) -> str:
        """SQLAlchemy URL of database ``name`` on this server, same credentials."""
        return make_url(self.url).set(drivername="postgresql+psycopg", database=name
                                      ).render_as_string(hide_password=False)

    @staticmethod
    def libpq(url: str) -> str:
        """psycopg wants a libpq URL, without SQLAlchemy's "+driver"."""
        return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.libpq(self.database_url("postgres")), autocommit=True)

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database (a copy of ``template`` if given); returns its URL."""
        with self.admin() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
            if template is None:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            else:
                # FILE_COPY (PostgreSQL 15+) copies the template's files instead of WAL-logging
                # every block: several times faster for a small database
                strategy = " STRATEGY FILE_COPY" if admin.info.server_version >= 150000 else ""
                admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}" + strategy).format(
                    sql.Identifier(name), sql.Identifier(template)))
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        with self.admin() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))

    def drop_stale_databases(self) -> None:
        """Databases left by test sessions that died (the pid in their name is gone)."""
        with self.admin() as admin:
            names = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                  (f"{DB_PREFIX}\\_%",)).fetchall()
        for (name,) in names:
            pid = name.split("_")[2]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                self.drop_database(name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _postgis_error(url: str) -> str | None:
    try:
        with psycopg.connect(PostGISServer.libpq(url), connect_timeout=5) as conn:
            conn.execute("SELECT postgis_lib_version()")
    except psycopg.Error as exc:
        return str(exc).strip()
    return None


@pytest.fixture(scope="session")
def postgis_url() -> str:
    """URL of a database with PostGIS: $RISKMAP_TEST_DATABASE_URL, else what
    scripts/postgis.sh starts. Skips when there is none (fails under CI=true)."""
    url = os.environ.get("RISKMAP_TEST_DATABASE_URL")
    detail = ""
    if not url:
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "postgis.sh")],
                              capture_output=True, text=True, timeout=900, check=False)
        lines = proc.stdout.strip().splitlines()
        url = lines[-1] if proc.returncode == 0 and lines else None
        detail = proc.stderr.strip()[-2000:]
    error = _postgis_error(url) if url else f"scripts/postgis.sh failed:\n{detail}"
    if error:
        message = f"PostGIS is not reachable ({url or 'no URL'}): {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def postgis_server(postgis_url: str) -> PostGISServer:
    return PostGISServer(postgis_url)


@pytest.fixture(scope="session")
def postgis_template(postgis_server: PostGISServer) -> Iterator[str]:
    """Name of a template database with PostGIS and the migrated schema (rebuilt every
    session), so a fresh database per test is one fast CREATE DATABASE … TEMPLATE."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from service.store.postgis import migrate

    postgis_server.drop_stale_databases()
    name = f"{DB_PREFIX}_{os.getpid()}"
    engine = create_engine(postgis_server.create_database(name), poolclass=NullPool)
    try:
        migrate(engine)
    finally:
        engine.dispose()  # no session may stay on a template
    yield name
    postgis_server.drop_database(name)


_numbers = itertools.count(1)


@pytest.fixture
def postgis_db_url(postgis_server: PostGISServer, postgis_template: str) -> Iterator[str]:
    """URL of a fresh, migrated, empty database for one test; dropped afterwards."""
    name = f"{postgis_template}_{next(_numbers)}"
    yield postgis_server.create_database(name, template=postgis_template)
    postgis_server.drop_database(name)


# stores ----------------------------------------------------------------------------------------

StoreFactory = Callable[..., Store]


@pytest.fixture(params=["embedded", pytest.param("postgis", marks=pytest.mark.postgis)])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens stores of one kind on the same place (to reopen, or to try another
    resolution); all are closed after the test. ``store_factory.kind`` names the kind."""
    opened: list[Store] = []
    if request.param == "postgis":
        from service.store.postgis import PostGISStore

        url = request.getfixturevalue("postgis_db_url")

        def open_store(h3_resolution: int = 8) -> Store:
            store = PostGISStore(url, h3_resolution=h3_resolution)
            opened.append(store)
            return store
    else:
        from service.store.embedded import EmbeddedStore

        def open_store(h3_resolution: int = 8) -> Store:
            store = EmbeddedStore(tmp_path / "store", h3_resolution=h3_resolution)
            opened.append(store)
            return store

    open_store.kind = request.param  # type: ignore[attr-defined]
    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    """An empty store, embedded or PostGIS."""
    return store_factory()


# frames ----------------------------------------------------------------------------------------

NOT_HASHED = {c for c, _ in META} | {c for c, _ in LINKS}
H3_RESOLUTION = 8
DEFAULTS: dict[str, object] = {
    "category_code": "3000", "category": "电梯", "unit_name": "某某电梯使用单位",
    "address": "河南省郑州市金水区", "source_crs": "WGS84", "geocode_precision": "point",
    "province_adcode": "410000", "city_adcode": "410100", "county_adcode": "410105",
    "commissioned_on": date(2015, 6, 1), "last_inspected_on": date(2023, 5, 20),
    "next_inspection_due": date(2024, 5, 20), "inspection_conclusion": "合格",
    "status": "在用", "insured": True, "name": "名称", "industry": "C", "size": "小型",
    "five_have_score": 4, "blacklisted": False, "accidents_3y": 0, "kind": "工业园区",
    "daily_visitors": 5000, "level": "一般", "description": "安全阀未校验",
    "found_on": date(2024, 1, 5), "deadline": date(2024, 2, 5), "checked_on": date(2024, 3, 1),
    "result": "合格", "phone": "13800000000", "cell_count": 0, "source_file": "test.csv",
    "updated_at": datetime(2024, 6, 1, 12, 0, 0),
}


class Frames:
    """Valid frames for every stored table, built the way ingest builds them (canonical
    dtypes, H3 columns from the point, ``row_hash`` over the content columns)."""

    resolution = H3_RESOLUTION

    def table(self, table: str, rows: list[dict], batch_id: str = "b0") -> pd.DataFrame:
        """One frame from row dicts; unspecified columns take DEFAULTS (or null).
        Point tables take ``lon``/``lat``; polygon tables a ``geometry`` per row."""
        spec = ALL_TABLES[table]
        n = len(rows)
        data: dict[str, object] = {}
        for name, abstract in spec.columns:
            values = [r.get(name, DEFAULTS.get(name)) for r in rows]
            if name == "batch_id":
                values = [batch_id] * n
            if name == "source_row":
                values = list(range(2, n + 2))
            series = pd.Series(values, dtype="object")
            if abstract in ("date", "timestamp"):
                series = pd.to_datetime(series)
            data[name] = series.astype(pandas_dtype(abstract)) if n else pd.Series(
                dtype=pandas_dtype(abstract))
        frame = pd.DataFrame(data)
        if spec.geometry == "point":
            cells = enrich_cells(frame["lon"].to_numpy(), frame["lat"].to_numpy(),
                                 self.resolution)
            for column in cells.columns:
                frame[column] = cells[column].astype("string").array
            geometry = gpd.points_from_xy(frame["lon"], frame["lat"], crs=4326)
            frame = gpd.GeoDataFrame(frame, geometry=geometry, crs=4326)
        elif spec.geometry:
            frame = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(
                [r["geometry"] for r in rows], crs=4326), crs=4326)
        if "row_hash" in frame.columns:
            frame["row_hash"] = self.row_hash(table, frame)
        return frame

    @staticmethod
    def row_hash(table: str, frame: pd.DataFrame) -> pd.Series:
        spec = ALL_TABLES[table]
        content = pd.DataFrame({c: frame[c] for c in spec.column_names if c not in NOT_HASHED})
        if spec.geometry and spec.geometry != "point":
            content["__wkb"] = shapely.to_wkb(np.asarray(frame.geometry.values, dtype=object))
        hashed = pd.util.hash_pandas_object(content, index=False).to_numpy().view(np.int64)
        return pd.Series(pd.array(hashed, dtype="Int64"), index=frame.index)

    def equipment(self, points: list[tuple[str, float, float]], batch_id: str = "b0",
                  **columns: object) -> gpd.GeoDataFrame:
        """Equipment at (registration_code, lon, lat) points."""
        rows = [{"registration_code": code, "lon": lon, "lat": lat,
                 "unit_credit_code": "91410100MA0000000X", **columns}
                for code, lon, lat in points]
        return self.table("equipment", rows, batch_id)

    def units(self, points: list[tuple[str, float, float]], batch_id: str = "b0",
              **columns: object) -> gpd.GeoDataFrame:
        rows = [{"credit_code": code, "lon": lon, "lat": lat, **columns}
                for code, lon, lat in points]
        return self.table("units", rows, batch_id)

    def polygons(self, table: str, boxes: dict[str, tuple[float, float, float, float]],
                 batch_id: str = "b0") -> gpd.GeoDataFrame:
        """Parks or venues as boxes (minx, miny, maxx, maxy) by id."""
        key = TABLES[table].key
        rows = [{key: ident, "name": f"{table} {ident}", "geometry": shapely.box(*box),
                 "area_km2": 1.0} for ident, box in boxes.items()]
        return self.table(table, rows, batch_id)

    def batch(self, batch_id: str, frames: dict[str, pd.DataFrame] | None = None,
              officer_cells: pd.DataFrame | None = None,
              rejects: pd.DataFrame | None = None) -> Batch:
        """A batch whose rows carry ``batch_id`` (as ingest stamps them)."""
        stamped = {}
        for name, frame in (frames or {}).items():
            frame = frame.copy()
            frame["batch_id"] = pd.Series(batch_id, index=frame.index, dtype="string")
            stamped[name] = frame
        return Batch(batch_id, datetime(2024, 6, 1, 12, 0, 0), [f"{batch_id}.csv"], stamped,
                     officer_cells, rejects, {"batch_id": batch_id, "note": "测试"})

    @staticmethod
    def officer_cells(cells: dict[str, list[str]]) -> pd.DataFrame:
        rows = [(officer, cell) for officer, owned in cells.items() for cell in owned]
        return pd.DataFrame(rows, columns=["officer_id", "h3"]).astype("string")

    @staticmethod
    def rejects(rows: list[dict]) -> pd.DataFrame:
        columns = [c for c in ALL_TABLES["rejects"].column_names if c != "reject_id"]
        frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)
        return frame.astype({c: pandas_dtype(ALL_TABLES["rejects"].type_of(c))
                             for c in columns})


@pytest.fixture(scope="session")
def frames() -> Frames:
    return Frames()


# stores filled once, copied per test or module -------------------------------------------------

STORE_KINDS = ["embedded", pytest.param("postgis", marks=pytest.mark.postgis)]
Fill = Callable[[Store, Path], dict]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reads_demo: the module only reads the built demo "
                            "(``demo_api``), so it shares one copy with the other such modules")


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests.servers import close_browser

    close_browser()


@dataclass
class Filled:
    """A copy of a filled store: its URL (or directory), what ``fill`` returned, and a
    directory holding the input files ``fill`` wrote."""

    url: str
    facts: dict
    files: Path


class StoreTemplates:
    """Stores filled once a session, per store kind and ``fill(store, files_dir)``, then only
    copied: a template database (``CREATE DATABASE … TEMPLATE``, so ``fill``'s store is closed
    before any copy: no session may stay open on a template) or a copied store directory (a
    plain copy, so that no file is shared between copies)."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp = tmp_path_factory
        self.made: dict[tuple[str, Fill], tuple[str, dict, Path]] = {}
        self.databases: set[str] = set()
        self.server: PostGISServer | None = None

    def copy(self, kind: str, fill: Fill, request: pytest.FixtureRequest) -> Filled:
        template, facts, files = self._template(kind, fill, request)
        if kind == "postgis":
            url = self._database(request, template=make_url(template).database)
        else:
            url = str(self.tmp.mktemp("copy") / "store")
            shutil.copytree(template, url)
        return Filled(url, copy.deepcopy(facts), files)  # what a copy's user changes stays

    def drop(self, url: str) -> None:
        if url.startswith("postgresql"):
            assert self.server is not None
            name = make_url(url).database
            self.server.drop_database(name)
            self.databases.discard(name)
        else:
            shutil.rmtree(url, ignore_errors=True)

    def close(self) -> None:
        for name in sorted(self.databases):
            assert self.server is not None
            self.server.drop_database(name)

    def _template(self, kind: str, fill: Fill, request: pytest.FixtureRequest
                  ) -> tuple[str, dict, Path]:
        if (kind, fill) not in self.made:
            name = f"{fill.__module__.rpartition('.')[2]}{fill.__name__}_{kind}"
            files = self.tmp.mktemp(name)
            if kind == "postgis":
                from service.store.postgis import PostGISStore

                template = self._database(request)
                store: Store = PostGISStore(template)
            else:
                from service.store.embedded import EmbeddedStore

                template = str(self.tmp.mktemp(name) / "store")
                store = EmbeddedStore(template)
            try:
                facts = fill(store, files)
            finally:
                store.close()
            self.made[kind, fill] = template, facts, files
        return self.made[kind, fill]

    def _database(self, request: pytest.FixtureRequest, template: str | None = None) -> str:
        """A new database: a copy of ``template``, or else a fresh migrated one."""
        self.server = request.getfixturevalue("postgis_server")
        base = request.getfixturevalue("postgis_template")
        name = f"{base}_{next(_numbers)}"
        self.databases.add(name)
        return self.server.create_database(name, template=template or base)


@pytest.fixture(scope="session")
def store_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreTemplates]:
    templates = StoreTemplates(tmp_path_factory)
    yield templates
    templates.close()


@pytest.fixture(params=STORE_KINDS)
def filled_store(request: pytest.FixtureRequest, store_templates: StoreTemplates,
                 tmp_path: Path) -> Iterator[Callable[[Fill], Filled]]:
    """``filled_store(fill)``: this test's own copy of a store of each kind filled by
    ``fill(store, files_dir)`` (which runs once a session per kind), and the input files
    ``fill`` wrote copied into ``tmp_path``, as if the test had written them; the copy is
    dropped after the test. ``filled_store.kind`` names the kind."""
    made: list[str] = []

    def make(fill: Fill) -> Filled:
        filled = store_templates.copy(request.param, fill, request)
        made.append(filled.url)
        shutil.copytree(filled.files, tmp_path, dirs_exist_ok=True)
        return replace(filled, files=tmp_path)

    make.kind = request.param  # type: ignore[attr-defined]
    yield make
    for url in made:
        store_templates.drop(url)


# the demo behind the service ------------------------------------------------------------------

DEMO_PROVINCES = ["410000", "610000"]
DEMO_AS_OF = date(2026, 11, 1)


def _fill_demo(store: Store, files: Path) -> dict:
    """The seeded demo (6,000 equipment) ingested and built, and a user of every role and
    scope (tokens by key: admin, province, city, county, planner, officer, park)."""
    from data.demo import generate
    from service.auth import Role, create_user
    from service.build import run_build
    from service.ingest.pipeline import IngestOptions
    from service.ingest.pipeline import ingest as run_ingest
    from service.settings import Settings

    generate(province="河南省", equipment=6000, seed=5, out=files, as_of=DEMO_AS_OF)
    run_ingest(sorted(str(p) for p in files.iterdir() if p.name != "MANIFEST.json"), store,
               IngestOptions(provinces=DEMO_PROVINCES))
    run_build(store, DEMO_PROVINCES, as_of=DEMO_AS_OF)
    eq = store.read_layer("equipment")
    county = eq["county_adcode"].value_counts().index[0]  # the busiest county
    city = county[:4] + "00"
    cells = store.read("officer_cells")
    # the officer whose cells hold open hazards of both open states, most of the scarcer one
    # (so their worklist has work and the hazard loop has a 已登记 and a 整改中 to move)
    open_hazards = store.read_layer("hazards")[["h3", "status"]]
    held = cells.merge(open_hazards, on="h3")
    states = held.groupby(["officer_id", "status"]).size().unstack(fill_value=0)
    both = states.reindex(columns=["已登记", "整改中"], fill_value=0).min(axis=1)
    officer = (both.sort_values(ascending=False, kind="stable").index[0] if len(both)
               else cells["officer_id"].value_counts().index[0])
    park = eq["park_id"].dropna().value_counts().index[0]
    scopes = {"admin": (Role.ADMIN, None), "province": (Role.REGULATOR, "410000"),
              "city": (Role.REGULATOR, city), "county": (Role.REGULATOR, county),
              "planner": (Role.PLANNER, county), "officer": (Role.GRID_OFFICER, officer),
              "park": (Role.PARK_ADMIN, park)}
    pepper = Settings().token_pepper.get_secret_value()
    tokens = {}
    for key, (role, scope) in scopes.items():
        _user, tokens[key] = create_user(store, name=key, role=role, scope=scope,
                                         pepper=pepper, provinces=DEMO_PROVINCES)
    return {"tokens": tokens, "scopes": scopes, "county": county, "city": city,
            "officer": officer, "park": park,
            "officer_cells": set(cells.loc[cells["officer_id"] == officer, "h3"])}


@pytest.fixture(scope="session")
def shared_demos() -> dict[str, Filled]:
    """The one copy of the demo (by store kind) that the modules marked ``reads_demo``
    share; dropped with the templates."""
    return {}


@pytest.fixture(scope="module", params=STORE_KINDS)
def demo_api(request: pytest.FixtureRequest, store_templates: StoreTemplates,
             shared_demos: dict[str, Filled]) -> Iterator[dict]:
    """The seeded demo (see ``_fill_demo``; built once a session per store kind) and a
    TestClient of the app on it: a copy of this module's own, or, in a module marked
    ``reads_demo``, the copy all such modules share."""
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    kind = request.param
    shared = request.node.get_closest_marker("reads_demo") is not None
    demo = shared_demos.get(kind) if shared else None
    if demo is None:
        demo = store_templates.copy(kind, _fill_demo, request)
        if shared:
            shared_demos[kind] = demo
    facts = copy.deepcopy(demo.facts)  # the module's own tokens etc., whatever it changes
    try:
        with TestClient(create_app(Settings(store=demo.url))) as client:
            yield {"client": client, "url": demo.url, "kind": kind, **facts}
    finally:
        if not shared:
            store_templates.drop(demo.url)


@pytest.fixture(scope="module")
def demo_postgis_store(demo_api: dict) -> Iterator[Store]:
    """The PostGIS store behind a module's ``demo_api`` (parametrized to ``"postgis"``),
    opened without migrating (the template is migrated)."""
    from service.store.postgis import PostGISStore

    opened = PostGISStore(demo_api["url"], migrate_schema=False)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module")
def api(demo_api: dict) -> dict:
    """``demo_api`` by its short name."""
    return demo_api


@pytest.fixture(scope="module")
def api_store(api: dict) -> Iterator[Store]:
    """The store behind this module's ``api``, opened once for the module."""
    from service.store import open_store

    opened = open_store(api["url"])
    yield opened
    opened.close()
