"""Frames in the stores' canonical shape: both stores write and return exactly these
columns and dtypes, so they hash-compare, store and answer alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers.registry import fingerprint as registry_fingerprint
from service.store.errors import StaleLayers, StoreError
from service.store.tables import ALL_TABLES, LAYER_SPECS, LAYER_TABLES, TABLES, Table

if TYPE_CHECKING:  # the records live with the interface, which uses these helpers
    from service.store.base import LayerBuild

_PANDAS_DTYPES = {
    "text": "string", "float": "float64", "int": "Int64", "bool": "boolean",
    "date": "datetime64[s]", "timestamp": "datetime64[us]", "json": "string",
}


def pandas_dtype(abstract: str) -> str:
    return _PANDAS_DTYPES[abstract]


def conform_frame(table: str, frame: pd.DataFrame, batch_id: str | None = None) -> pd.DataFrame:
    """``frame`` with exactly the table's columns, in order, in the canonical dtypes, one row
    per key (the last wins) and geometry in EPSG:4326 (polygons promoted to multipolygons).

    Both stores write through this so that they store, hash-compare and return the same
    values whatever dtypes a caller built. ``batch_id`` stamps the rows: a stored row's
    ``batch_id`` always names the batch that last wrote it (relinking relies on it).
    """
    spec = ALL_TABLES[table]
    missing = [c for c in spec.column_names if c not in frame.columns]
    if missing:
        raise StoreError(f"{table}: missing columns {missing}")
    ingested = table in TABLES  # bookkeeping tables have no key duties here
    if ingested and frame[spec.key].isna().any():
        raise StoreError(f"{table}: {int(frame[spec.key].isna().sum())} rows without "
                         f"{spec.key}")
    columns = {c: _as_dtype(frame[c], t) for c, t in spec.columns}
    out = pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))
    if batch_id is not None and "batch_id" in out.columns:
        out["batch_id"] = pd.Series(batch_id, index=out.index, dtype="string")
    if spec.geometry:
        out = gpd.GeoDataFrame(out, geometry=_geometry_of(frame, spec.geometry), crs=4326)
    if ingested:
        dup = out[spec.key].duplicated(keep="last").to_numpy()
        if dup.any():
            out = out.loc[~dup].reset_index(drop=True)
    return out


def _as_dtype(col: pd.Series, abstract: str) -> pd.Series:
    target = _PANDAS_DTYPES[abstract]
    col = col.reset_index(drop=True)
    if str(col.dtype) == target:
        return col
    if abstract == "float":
        return pd.Series(pd.to_numeric(col).to_numpy(dtype="float64", na_value=np.nan))
    if abstract in ("date", "timestamp"):
        values = pd.to_datetime(col)
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        if abstract == "date":
            values = values.dt.normalize()
        return values.astype(target)
    return col.astype(target)


def _geometry_of(frame: pd.DataFrame, kind: str) -> gpd.GeoSeries:
    """The frame's geometry in EPSG:4326; points fall back to lon/lat."""
    if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame.columns:
        geo = frame.geometry
    elif "geometry" in frame.columns:
        geo = gpd.GeoSeries(frame["geometry"], crs=4326)
    elif kind == "point":
        geo = gpd.GeoSeries(gpd.points_from_xy(frame["lon"], frame["lat"]), crs=4326)
    else:
        raise StoreError("polygon table without a geometry column")
    if geo.crs is None:
        geo = geo.set_crs(4326)
    elif geo.crs.to_epsg() != 4326:
        geo = geo.to_crs(4326)
    values = np.asarray(geo.values, dtype=object)
    if kind == "multipolygon":
        single = shapely.get_type_id(values) == shapely.GeometryType.POLYGON
        if single.any():
            values = values.copy()
            values[single] = shapely.multipolygons(values[single],
                                                   indices=np.arange(int(single.sum())))
    elif kind == "point":
        values = values.copy()
        # points_from_xy turns missing lon/lat into POINT (NaN NaN); empty and NaN points
        # have NaN bounds: store them all as null
        if len(values):
            values[np.isnan(shapely.bounds(values)[:, 0])] = None
    return gpd.GeoSeries(values, index=pd.RangeIndex(len(values)), crs=4326)


def empty_table(table: str) -> pd.DataFrame:
    """A stored table with no rows, its columns in their canonical dtypes."""
    return _empty(ALL_TABLES[table])


def _empty(spec: Table) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=_PANDAS_DTYPES[t]) for c, t in spec.columns})
    if spec.geometry:
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=4326))
    return frame


def checked_columns(spec: Table, columns: list[str] | None, what: str) -> list[str]:
    """All of ``spec``'s columns (geometry last) when ``columns`` is None, else
    ``columns`` once each is known to be one (ValueError naming ``what`` if not)."""
    allowed = [*spec.column_names, *(["geometry"] if spec.geometry else [])]
    if columns is None:
        return allowed
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise ValueError(f"{what} has no columns {unknown}")
    return list(columns)


def check_layers_current(build: LayerBuild | None) -> None:
    """StoreError when the build in force was made by another version of the layer
    registry (its tables lack or misname fields): rebuilding is the way out."""
    if build is not None and build.report.get("registry") != registry_fingerprint():
        raise StaleLayers("图层由其他版本生成，字段不一致：请重新运行 riskmap build")


def layer_table(layer: str) -> Table:
    """The store table of a layer id (ValueError for unknown ids)."""
    try:
        return LAYER_TABLES[layer]
    except KeyError:
        raise ValueError(f"unknown layer {layer!r}") from None


def layer_columns(layer: str, columns: list[str] | None) -> list[str]:
    """Columns ``read_layer`` returns: all (``fid`` first, geometry last) or those named."""
    return checked_columns(layer_table(layer), columns, f"layer {layer}")


def empty_layer(layer: str) -> pd.DataFrame:
    """A layer with no rows, its columns in their canonical dtypes."""
    return _empty(layer_table(layer))


def conform_layer(layer: str, frame: pd.DataFrame) -> pd.DataFrame:
    """A built layer with exactly its registry fields in canonical dtypes, a ``fid`` made of
    its key columns (joined by ":"), and geometry in EPSG:4326. Missing fields or duplicate
    keys are a bug in the builder and raise :class:`StoreError`."""
    spec = LAYER_SPECS[layer]
    table = layer_table(layer)
    missing = [c for c in spec.field_names if c not in frame.columns]
    if missing:
        raise StoreError(f"layer {layer}: missing columns {missing}")
    parts = [frame[k].astype("string").fillna("").reset_index(drop=True) for k in spec.key]
    fid = parts[0]
    for part in parts[1:]:
        fid = fid + ":" + part
    out = pd.DataFrame({"fid": fid.astype("string"),
                        **{c: _as_dtype(frame[c], t) for c, t in spec.fields}},
                       index=pd.RangeIndex(len(frame)))
    dup = out["fid"].duplicated()
    if dup.any():
        raise StoreError(f"layer {layer}: duplicate keys {out['fid'][dup].head(3).tolist()}")
    if table.geometry:
        out = gpd.GeoDataFrame(out, geometry=_geometry_of(frame, table.geometry), crs=4326)
    return out
