"""Put point rows on the map: datum → swap check → range → geocode → county → H3.

Input: the parsed lon/lat/crs/address columns of equipment or units. Output: WGS84
lon/lat, the source datum, geocode precision, flags, adcodes and H3 cells. Everything
is array arithmetic over the whole table; the geocoder sees only distinct addresses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data.reasons import Flag, Reason
from data.schema import Kind
from geo import boundaries, cells
from geo.datum import Datum, to_wgs84
from geo.geocode import Geocoder
from service.ingest.read import RawTable
from service.ingest.rejects import RejectLog
from service.ingest.timing import StageTimer

# China's extent, used to recognise swapped coordinates (lat given as lon and back)
CHINA_LON = (73.0, 136.0)
CHINA_LAT = (3.0, 54.0)


@dataclass(frozen=True)
class LocateOptions:
    h3_resolution: int
    provinces: list[str]
    default_datum: Datum | None
    geocoder: Geocoder
    timer: StageTimer


def _between(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (a >= lo) & (a <= hi)


def locate_points(raw: RawTable, parsed: pd.DataFrame, log: RejectLog,
                  options: LocateOptions) -> pd.DataFrame:
    n = len(parsed)
    lon = parsed["lon"].to_numpy(dtype=float, na_value=np.nan).copy()
    lat = parsed["lat"].to_numpy(dtype=float, na_value=np.nan).copy()
    has_lon, has_lat = np.isfinite(lon), np.isfinite(lat)
    address = parsed["address"]
    has_address = address.notna().to_numpy()
    # one coordinate alone: placed by the address like a row without coordinates (and
    # flagged), rejected when there is no address
    half = has_lon ^ has_lat
    log.add(raw.path, raw.kind, raw.rows, has_lon & ~has_lat & ~has_address, "lat",
            Reason.HALF_COORDINATE)
    log.add(raw.path, raw.kind, raw.rows, has_lat & ~has_lon & ~has_address, "lon",
            Reason.HALF_COORDINATE)
    has_xy = has_lon & has_lat

    # which datum each row is in: its own column, else the command line, else the file
    fallback = options.default_datum or (Datum.CGCS2000 if raw.file_crs and "4490" in
                                         raw.file_crs else Datum.WGS84)
    datum = parsed["crs"].fillna(str(fallback)).to_numpy(dtype=object)

    swapped = (has_xy & _between(lon, *CHINA_LAT) & _between(lat, *CHINA_LON)
               & ~(_between(lon, *CHINA_LON) & _between(lat, *CHINA_LAT)))
    lon[swapped], lat[swapped] = lat[swapped], lon[swapped].copy()
    log.flag(raw.path, raw.kind, raw.rows, swapped, "lon", Flag.LONLAT_SWAPPED,
             parsed["lon"])

    in_range = _between(lon, -180, 180) & _between(lat, -90, 90)
    log.add(raw.path, raw.kind, raw.rows, has_xy & ~in_range, "lon", Reason.COORD_RANGE,
            _pairs(parsed, has_xy & ~in_range))
    ok_xy = has_xy & in_range
    wlon, wlat = np.full(n, np.nan), np.full(n, np.nan)
    with options.timer("datum"):
        wlon[ok_xy], wlat[ok_xy] = to_wgs84(lon[ok_xy], lat[ok_xy], datum[ok_xy])

    precision = np.where(ok_xy, "exact", None).astype(object)
    flags = np.where(swapped, str(Flag.LONLAT_SWAPPED), "").astype(object)

    # rows with an address and no coordinates (or one): offline geocoding to a county
    need = (~has_lon & ~has_lat) | (half & has_address)
    to_geocode = need & has_address
    if to_geocode.any():
        with options.timer("geocode"):
            found = options.geocoder.geocode(address[to_geocode])
        placed = found["lon"].notna().to_numpy()
        idx = np.flatnonzero(to_geocode)
        wlon[idx[placed]] = found["lon"].to_numpy()[placed]
        wlat[idx[placed]] = found["lat"].to_numpy()[placed]
        precision[idx[placed]] = found["precision"].to_numpy(dtype=object)[placed]
        flags[idx[placed]] = np.where(half[idx[placed]], str(Flag.HALF_COORDINATE_GEOCODED),
                                      str(Flag.GEOCODED_COUNTY))
        datum[idx] = str(Datum.WGS84)
        miss = np.zeros(n, dtype=bool)
        miss[idx[~placed]] = True
        detail = pd.Series(pd.NA, index=parsed.index, dtype="string")
        detail[idx[~placed]] = found["reason"].astype("string").to_numpy()[~placed]
        log.add(raw.path, raw.kind, raw.rows, miss, "address", Reason.UNGEOCODABLE, address,
                detail)
        # the lone coordinate of a row its address could not place is a reason too
        log.add(raw.path, raw.kind, raw.rows, miss & has_lon & ~has_lat, "lat",
                Reason.HALF_COORDINATE)
        log.add(raw.path, raw.kind, raw.rows, miss & has_lat & ~has_lon, "lon",
                Reason.HALF_COORDINATE)
    if raw.kind == Kind.EQUIPMENT:
        _reject_unplaced(raw, need & ~has_address, log)
    log.flag(raw.path, raw.kind, raw.rows, flags == str(Flag.GEOCODED_COUNTY), "address",
             Flag.GEOCODED_COUNTY, address)
    half_placed = flags == str(Flag.HALF_COORDINATE_GEOCODED)
    for name, alone in (("lon", has_lon), ("lat", has_lat)):
        log.flag(raw.path, raw.kind, raw.rows, half_placed & alone, name,
                 Flag.HALF_COORDINATE_GEOCODED, parsed[name])

    located = np.isfinite(wlon) & np.isfinite(wlat)
    with options.timer("join"):
        where = boundaries.locate(wlon, wlat, options.provinces)
    outside = located & where["county_adcode"].isna().to_numpy()
    log.add(raw.path, raw.kind, raw.rows, outside, "lon", Reason.OUTSIDE_REGION,
            _pairs(parsed, outside))

    out = pd.DataFrame({
        "lon": wlon, "lat": wlat,
        "source_crs": pd.Series(np.where(located | has_xy, datum, None), dtype="string"),
        "geocode_precision": pd.Series(precision, dtype="string"),
        "province_adcode": where["province_adcode"].astype("string").to_numpy(),
        "city_adcode": where["city_adcode"].astype("string").to_numpy(),
        "county_adcode": where["county_adcode"].astype("string").to_numpy(),
        "flags": pd.Series(flags, dtype="string").replace("", pd.NA),
    })
    with options.timer("h3"):
        h3_columns = cells.enrich_cells(wlon, wlat, options.h3_resolution)
    return pd.concat([out, h3_columns], axis=1)


def _reject_unplaced(raw: RawTable, mask: np.ndarray, log: RejectLog) -> None:
    """Equipment rows with neither coordinates nor an address. A file with no column for
    either (no address, and no longitude or no latitude) is told once, as the address
    column it lacks (``missing_column``); otherwise each row is ``no_location``, naming the
    header that may be an unrecognised address column."""
    if "address" in raw.absent and {"lon", "lat"} & set(raw.absent):
        log.add(raw.path, raw.kind, raw.rows, mask, "address", Reason.MISSING_COLUMN)
        return
    closest = raw.absent.get("address")
    hint = None if closest is None else (f"文件没有可识别的地址列（最接近的表头：{closest}）",
                                         f"no address column recognised (closest header: "
                                         f"{closest})")
    log.add(raw.path, raw.kind, raw.rows, mask, "lon", Reason.NO_LOCATION, detail=hint)


def _pairs(parsed: pd.DataFrame, mask: np.ndarray) -> pd.Series | None:
    """"lon,lat" as given, for the rows of ``mask`` only (the reported value of a rejected
    point); formatting every row's floats would cost seconds on a million rows."""
    if not mask.any():
        return None
    out = pd.Series(pd.NA, index=parsed.index, dtype="string")
    rows = parsed[["lon", "lat"]].iloc[np.flatnonzero(mask)].astype("string")
    out.iloc[np.flatnonzero(mask)] = (rows["lon"] + "," + rows["lat"]).to_numpy()
    return out
