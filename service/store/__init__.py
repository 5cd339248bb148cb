"""The stores: one interface (:class:`service.store.base.Store`), two implementations.

:mod:`service.store.embedded` keeps GeoParquet snapshots on disk (nothing but pip);
:mod:`service.store.postgis` is the production store (PostGIS via GeoAlchemy2, Alembic
migrations). Open either with :func:`open_store`; nothing outside this package names a
store class or a connection.
"""

from __future__ import annotations

from pathlib import Path

from service.store.base import Store
from service.store.location import StoreLocation, store_location

__all__ = ["Store", "StoreLocation", "open_store", "store_location"]


def open_store(address: str | Path, *, h3_resolution: int = 8) -> Store:
    """Open the store an address names (:func:`store_location`)."""
    location = store_location(address)
    if location.kind == "postgis":
        from service.store.postgis import PostGISStore  # only when asked: SQLAlchemy, Alembic

        return PostGISStore(location, h3_resolution=h3_resolution)
    from service.store.embedded import EmbeddedStore

    return EmbeddedStore(location, h3_resolution=h3_resolution)
