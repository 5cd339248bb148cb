"""The stores: one interface (:class:`service.store.base.Store`), two implementations.

:mod:`service.store.embedded` keeps GeoParquet snapshots on disk (nothing but pip);
:mod:`service.store.postgis` is the production store (PostGIS via GeoAlchemy2, Alembic
migrations). Open either with :func:`open_store`; nothing outside this package names a
store class or a connection.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from service.store.base import Store
from service.store.errors import StoreMissing
from service.store.location import StoreLocation, store_location

__all__ = ["Store", "StoreLocation", "StoreMissing", "open_store", "reopen_store",
           "shown_address", "store_location"]


def open_store(address: str | Path, *, create: bool = False, h3_resolution: int = 8) -> Store:
    """Open the store an address names (:func:`store_location`).

    Only a loader creates a store (``create=True``: ``riskmap ingest``, ``riskmap demo``): it
    makes the directory, or runs the migrations that create the tables. Without ``create``
    a store that is not there (no directory or no ``meta.json``; a database that cannot be
    reached or holds no riskmap tables) raises :class:`StoreMissing`, which names the store
    and the command that creates it, and nothing is created. A PostGIS store migrated by an
    older version is there, and opening it migrates it either way."""
    location = store_location(address)
    if location.kind == "postgis":
        from service.store.postgis import PostGISStore  # only when asked: SQLAlchemy, Alembic

        kind: type[Store] = PostGISStore
    else:
        from service.store.embedded import EmbeddedStore

        kind = EmbeddedStore
    if not create:
        reason = kind.why_missing(location)
        if reason is not None:
            raise StoreMissing(missing_message(location, reason))
    return kind(location, h3_resolution=h3_resolution)  # type: ignore[call-arg]


def reopen_store(address: str, h3_resolution: int) -> Store:
    """A store already opened elsewhere (:attr:`Store.address`), opened again by a worker of
    a Dask build: nothing is created or migrated (the driver did that; workers migrating
    at once would race)."""
    location = store_location(address)
    if location.kind == "postgis":
        from service.store.postgis import PostGISStore

        return PostGISStore(location, h3_resolution, migrate_schema=False)
    from service.store.embedded import EmbeddedStore

    return EmbeddedStore(location, h3_resolution)


def shown_address(location: StoreLocation) -> str:
    """The store as a message names it: the absolute directory, or the URL without its
    password."""
    if location.kind == "embedded":
        return os.path.abspath(location.target)
    return location.safe


def missing_message(location: StoreLocation, reason: str) -> str:
    """What :class:`StoreMissing` says: which store, why, and what to run."""
    where = shown_address(location)
    lines = [f"没有找到存储 no store at {where}", f"  {reason}",
             "  新建存储须先导入台账 a store is created by loading registry files:",
             f"    riskmap ingest FILES --store {shlex.quote(where)}"]
    if location.kind == "postgis":
        from service.store.postgis import PACKAGE_DIR

        hidden = " (the password in place of ***)" if "***" in where else ""
        lines += [f"  或只建表 or only create the tables{hidden}:",
                  f"    alembic -c {PACKAGE_DIR / 'alembic.ini'} -x url={shlex.quote(where)} "
                  "upgrade head"]
    return "\n".join(lines)
