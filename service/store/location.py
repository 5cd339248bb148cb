"""Where a store lives: the one parser of a store's address, for settings, CLI and stores.

A ``postgresql://``, ``postgresql+psycopg://`` or ``postgres://`` URL names the PostGIS
store (normalised to SQLAlchemy's psycopg 3 driver); anything else, a path or a ``file:``
URL, the embedded store's directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import make_url

POSTGIS_PREFIXES = ("postgresql", "postgres://")
StoreKind = Literal["embedded", "postgis"]


@dataclass(frozen=True)
class StoreLocation:
    """A parsed store address: ``kind`` and ``target`` (the SQLAlchemy URL, password
    included, or the directory)."""

    kind: StoreKind
    target: str

    @property
    def path(self) -> Path:
        """The embedded store's directory (ValueError for a PostGIS URL)."""
        if self.kind != "embedded":
            raise ValueError("store is a PostGIS URL, not a path")
        return Path(self.target)

    @property
    def safe(self) -> str:
        """The address to show or log: a URL without its password, or the directory."""
        if self.kind == "postgis":
            return make_url(self.target).render_as_string(hide_password=True)
        return self.target


def store_location(address: str | Path) -> StoreLocation:
    """Parse a store address (see the module docstring)."""
    text = str(address)
    if text.startswith(POSTGIS_PREFIXES):
        if text.startswith("postgres://"):
            text = "postgresql://" + text.removeprefix("postgres://")
        if text.startswith("postgresql://"):
            text = "postgresql+psycopg://" + text.removeprefix("postgresql://")
        return StoreLocation("postgis", text)
    path = Path(text.removeprefix("file://").removeprefix("file:")).expanduser()
    return StoreLocation("embedded", str(path))
