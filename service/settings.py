"""Typed settings, one prefix: every knob is ``RISKMAP_<NAME>`` in the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.store.location import StoreLocation, store_location

DEFAULT_STORE = "./var/riskmap"
DEV_PEPPER = "riskmap-development-pepper"


class Settings(BaseSettings):
    """Settings shared by the CLI and the service.

    ``store`` selects the implementation: a path or ``file:`` URL is the embedded
    store (GeoParquet snapshots on disk), a ``postgresql+psycopg://`` URL is PostGIS.
    """

    model_config = SettingsConfigDict(env_prefix="RISKMAP_", env_file=None, extra="ignore")

    store: str = DEFAULT_STORE
    h3_resolution: int = Field(8, ge=7, le=12, description="H3 resolution of the stored cell")
    provinces: list[str] = Field(
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
    environment: Literal["development", "production"] = "development"
    trust_proxy: bool = Field(False, description="Believe X-Forwarded-Proto from a reverse "
                              "proxy in front (the login cookie is then Secure behind HTTPS)")
    token_pepper: SecretStr = Field(SecretStr(DEV_PEPPER),
                                    description="Key of the token hashes (HMAC-SHA256)")
    public_url: str | None = Field(
        None, max_length=200,
        description="Public base URL of the service (https://host[/prefix]) that a unit's QR "
        "code links to (/units/<credit code>); default: the base URL of the request")

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
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> Settings:
        if self.environment == "production" and (
                self.token_pepper.get_secret_value() in ("", DEV_PEPPER)):
            raise ValueError("RISKMAP_TOKEN_PEPPER must be set to a secret in production")
        return self

    @property
    def store_location(self) -> StoreLocation:
        """The store this names (:func:`service.store.location.store_location`)."""
        return store_location(self.store)
