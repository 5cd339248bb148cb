"""Typed settings, one prefix: every knob is ``RISKMAP_<NAME>`` in the environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.store.location import StoreLocation, store_location
from web.basemaps import CHOICES as BASEMAP_CHOICES
from web.basemaps import page_config

DEFAULT_STORE = "./var/riskmap"
DEV_PEPPER = "riskmap-development-pepper"


def _comma_list(value: object) -> object:
    """A list setting from the environment: ``a,b`` (or a JSON list ``["a", "b"]``)."""
    if isinstance(value, str):
        if value.strip().startswith("["):
            return json.loads(value)
        return [p.strip() for p in value.split(",") if p.strip()]
    return value


class Settings(BaseSettings):
    """Settings shared by the CLI and the service.

    ``store`` selects the implementation: a path or ``file:`` URL is the embedded
    store (GeoParquet snapshots on disk), a ``postgresql+psycopg://`` URL is PostGIS.
    """

    model_config = SettingsConfigDict(env_prefix="RISKMAP_", env_file=None, extra="ignore")

    store: str = DEFAULT_STORE
    h3_resolution: int = Field(8, ge=7, le=12, description="H3 resolution of the stored cell")
    # comma-separated in the environment (NoDecode: not parsed as JSON first)
    provinces: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["410000", "610000"],
        description="Province adcodes whose boundaries bound valid points",
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_upload_mb: int = Field(200, ge=1)
    max_evidence_mb: int = Field(10, ge=1, le=200, description="Largest evidence photo or "
                                 "file attached to a hazard (POST /api/hazards/{id}/evidence)")
    workers: int = Field(1, ge=1, le=64, description="Server processes (`riskmap serve`)")
    access_log: bool = Field(False, description="Log every request (a reverse proxy usually "
                             "does; ~10% of a small request's time)")
    tile_cache_mb: int = Field(256, ge=0, description="Memory per process for rendered tiles "
                               "and the whole-scope H3 counts behind low-zoom tiles")
    map_resolution: int = Field(6, ge=5, le=9, description="H3 resolution of the first map")
    rules: Path | None = Field(None, description="Rule file for builds (default data/rules.toml)")
    engine: Literal["local", "dask"] = Field(
        "local", description="Where `riskmap ingest` runs its per-file stages and `riskmap "
        "build` its grading and per-unit layers: in this process, or on Dask")
    dask_scheduler: str | None = Field(
        None, max_length=200, pattern=r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$",
        description="Address of an existing Dask scheduler (tcp://host:8786) for "
        "engine=dask; none: a LocalCluster of 2 workers is started")
    environment: Literal["development", "production"] = "development"
    trust_proxy: bool = Field(False, description="Believe X-Forwarded-Proto from a reverse "
                              "proxy in front (the login cookie is then Secure behind HTTPS)")
    token_pepper: SecretStr = Field(SecretStr(DEV_PEPPER),
                                    description="Key of the token hashes (HMAC-SHA256)")
    public_url: str | None = Field(
        None, max_length=200,
        description="Public base URL of the service (https://host[/prefix]) that a unit's QR "
        "code links to (/units/<credit code>); default: the base URL of the request")

    basemaps: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["tianditu", "amap", "osm"],
        description="Online basemaps the maps offer beside the offline one, in order: "
        "tianditu (needs RISKMAP_TIANDITU_KEY), amap (GCJ-02: our data is shifted while it "
        "is on), osm; empty for none (an intranet with no internet)")
    basemap: Literal["offline", "tianditu", "tianditu-img", "amap", "osm"] = Field(
        "offline", description="The basemap a map opens on (one offered; else offline)")
    tianditu_key: str | None = Field(
        None, pattern=r"^[A-Za-z0-9]{16,64}$",
        description="天地图 browser key (tk); its tiles are CGCS2000, drawn with no shift")

    @field_validator("basemaps", mode="before")
    @classmethod
    def _split_basemaps(cls, value: object) -> object:
        value = _comma_list(value)
        return [str(v).lower() for v in value] if isinstance(value, list) else value

    @field_validator("basemaps")
    @classmethod
    def _known_basemaps(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in BASEMAP_CHOICES]
        if unknown:
            raise ValueError(f"RISKMAP_BASEMAPS: unknown {', '.join(unknown)}; "
                             f"choose from {', '.join(BASEMAP_CHOICES)}")
        return list(dict.fromkeys(value))

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")) or any(c in value for c in "?# "):
            raise ValueError("RISKMAP_PUBLIC_URL must be an http(s) base URL without query, "
                             "e.g. https://riskmap.example.gov.cn")
        return value

    @field_validator("provinces", mode="before")
    @classmethod
    def _split_provinces(cls, value: object) -> object:
        return _comma_list(value)

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> Settings:
        if self.environment == "production" and (
                self.token_pepper.get_secret_value() in ("", DEV_PEPPER)):
            raise ValueError("RISKMAP_TOKEN_PEPPER must be set to a secret in production")
        return self

    @property
    def basemap_config(self) -> dict:
        """The basemaps the map pages offer (:func:`web.basemaps.page_config`)."""
        return page_config(self.basemaps, self.basemap, self.tianditu_key)

    @property
    def store_location(self) -> StoreLocation:
        """The store this names (:func:`service.store.location.store_location`)."""
        return store_location(self.store)
