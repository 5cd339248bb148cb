"""Geocoding registry addresses, offline, to county precision.

Registry exports often carry an address but no coordinates. :class:`CountyGeocoder` parses
the province, city and county out of a Chinese address with ``cpca`` and places it at the
representative point of the county (see :func:`geo.boundaries.representative_points`):
coarse, but offline, deterministic and honest about its precision. Anything finer needs an
online geocoder, which can be plugged in later behind the :class:`Geocoder` protocol.
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from geo.boundaries import load_boundaries, province_codes, representative_points

COLUMNS = ("lon", "lat", "adcode", "precision", "reason")

# Reasons (English, short; the UI translates them).
REASON_EMPTY = "empty address"
REASON_NOT_FOUND = "not found"
REASON_PROVINCE_ONLY = "province only"
REASON_CITY_ONLY = "city only"
REASON_OUTSIDE = "outside loaded provinces"
REASON_UNKNOWN_COUNTY = "county not in boundaries"

# County-level units renamed or merged since cpca's adcode table (~2021) that a name match
# cannot follow: old adcode -> current adcode in the boundaries. Renames that keep the stem
# (偃师市 -> 偃师区, 长垣县 -> 长垣市, ...) are caught by the name match instead.
SUCCESSOR_ADCODES = {
    "410211": "410202",  # 开封市金明区 merged into 龙亭区 (2014)
    "410306": "410308",  # 洛阳市吉利区 merged with 孟津县 into 孟津区 (2021)
    "411023": "411003",  # 许昌县 -> 许昌市建安区 (2016)
    "610125": "610118",  # 户县 -> 西安市鄠邑区 (2016)
    "610427": "610482",  # 彬县 -> 彬州市 (2018)
}

# Suffixes stripped to compare county names across renames (县 -> 区, 县 -> 市).
_COUNTY_SUFFIXES = ("自治县", "自治旗", "林区", "特区", "区", "县", "市", "旗")
# cpca's "city" for province-administered county-level cities such as 济源市.
_PROVINCE_ADMINISTERED = "省直辖县级行政区划"


@runtime_checkable
class Geocoder(Protocol):
    """Turns addresses into WGS84 points.

    ``geocode`` returns a frame index-aligned with ``addresses`` with columns ``lon``,
    ``lat`` (float, NaN when not placed), ``adcode`` (county adcode or NA), ``precision``
    (e.g. 'county', NA when not placed) and ``reason`` (NA when placed, else a short
    English reason such as 'city only', 'not found', 'outside loaded provinces').
    """

    def geocode(self, addresses: pd.Series) -> pd.DataFrame: ...


def county_stem(name: str) -> str:
    """County name without its administrative suffix (凤翔县 and 凤翔区 share 凤翔)."""
    for suffix in _COUNTY_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def empty_result(index: pd.Index) -> pd.DataFrame:
    """A result frame with nothing placed, the shape every Geocoder returns."""
    n = len(index)
    return pd.DataFrame({
        "lon": np.full(n, np.nan), "lat": np.full(n, np.nan),
        "adcode": pd.array([None] * n, dtype="string"),
        "precision": pd.array([None] * n, dtype="string"),
        "reason": pd.array([None] * n, dtype="string"),
    }, index=index)


class CountyGeocoder:
    """Offline geocoder: address -> representative point of its county (via ``cpca``).

    Only the distinct non-empty addresses are parsed. A county is found by cpca's adcode,
    else by a known successor adcode, else by name (province + city + county, comparing
    names without their 区/县/市 suffix), else, when cpca stopped at the city, by a county
    name at the start of the rest of the address (cpca does not know counties created after
    its table, e.g. 凤翔区). Addresses that resolve only to a city are not placed.
    """

    precision = "county"

    def __init__(self, provinces: list[str] | None = None) -> None:
        self.provinces = province_codes(provinces)
        counties = load_boundaries(list(self.provinces), level="county")
        cities = load_boundaries(list(self.provinces), level="city")
        provs = load_boundaries(list(self.provinces), level="province")
        points = representative_points("county", list(self.provinces)).set_index("adcode")

        self._lon = points.geometry.x.astype(float)
        self._lat = points.geometry.y.astype(float)
        self._province_names = dict(zip(provs["name"], provs["adcode"], strict=True))

        city_name = counties["city_adcode"].map(dict(zip(cities["adcode"], cities["name"],
                                                         strict=True)))
        prov_name = counties["province_adcode"].map(dict(zip(provs["adcode"], provs["name"],
                                                             strict=True)))
        stems = counties["name"].map(county_stem)
        table = pd.DataFrame({"adcode": counties["adcode"], "province": prov_name,
                              "city": city_name, "stem": stems})
        self._counties = table
        # (province, city, stem) -> adcode, and (province, stem) -> adcode where unique.
        self._by_city = table.drop_duplicates(["province", "city", "stem"], keep=False) \
            .set_index(["province", "city", "stem"])["adcode"]
        self._by_province = table.drop_duplicates(["province", "stem"], keep=False) \
            .set_index(["province", "stem"])["adcode"]
        # Per city, a regex matching a county name (with a suffix) at the start of a string.
        self._prefix_patterns = {
            (prov, city): re.compile("^(" + "|".join(
                re.escape(s) + "(?:" + "|".join(_COUNTY_SUFFIXES) + ")"
                for s in sorted(grp["stem"], key=len, reverse=True)) + ")")
            for (prov, city), grp in table.groupby(["province", "city"], sort=True)
        }
        self._prefix_codes = {key: dict(zip(grp["stem"], grp["adcode"], strict=True))
                              for key, grp in table.groupby(["province", "city"], sort=True)}
        self._umap = self._build_umap(table)

    @staticmethod
    def _build_umap(table: pd.DataFrame) -> dict[str, str]:
        """Bias cpca toward the loaded provinces for a bare, nationally ambiguous 区/县 name.

        Only names unique among the loaded counties and present in cpca's own table with
        the same adcode are passed (cpca cannot complete an adcode it does not know).
        """
        import cpca

        names = load_boundaries(None, level="county").set_index("adcode")["name"]
        names = names[names.index.isin(table["adcode"])]
        names = names[~names.duplicated(keep=False)]
        known = cpca.ad_2_addr_dict  # keyed by 12-digit adcodes
        return {name: code for code, name in names.items()
                if getattr(known.get(code + "000000"), "name", None) == name}

    def geocode(self, addresses: pd.Series) -> pd.DataFrame:
        """Place each address at its county's representative point (see the class doc)."""
        addresses = pd.Series(addresses)
        text = addresses.astype("string").str.strip().fillna("")
        out = empty_result(addresses.index)
        empty = (text == "").to_numpy()
        out.loc[empty, "reason"] = REASON_EMPTY
        distinct = pd.unique(text[~empty])
        if len(distinct) == 0:
            return out

        resolved = self._resolve(pd.Index(distinct))
        pos = pd.Index(distinct).get_indexer(text[~empty])
        adcode = resolved["adcode"].to_numpy(dtype=object, na_value=None)[pos]
        reason = resolved["reason"].to_numpy(dtype=object, na_value=None)[pos]
        rows = np.flatnonzero(~empty)
        placed = ~pd.isna(adcode)
        out.iloc[rows, out.columns.get_loc("reason")] = pd.array(reason, dtype="string")
        if placed.any():
            codes = pd.Index(adcode[placed].astype(str))
            out.iloc[rows[placed], out.columns.get_loc("lon")] = self._lon.reindex(codes).to_numpy()
            out.iloc[rows[placed], out.columns.get_loc("lat")] = self._lat.reindex(codes).to_numpy()
            out.iloc[rows[placed], out.columns.get_loc("adcode")] = pd.array(
                codes.to_numpy(dtype=object), dtype="string")
            out.iloc[rows[placed], out.columns.get_loc("precision")] = self.precision
        return out

    def _resolve(self, distinct: pd.Index) -> pd.DataFrame:
        """County adcode (or a reason) for each distinct, non-empty address."""
        import cpca

        parsed = cpca.transform(list(distinct), umap=self._umap)
        parsed.index = distinct
        prov = parsed["省"].astype("string")
        city = parsed["市"].astype("string")
        county = parsed["区"].astype("string")
        rest = parsed["地址"].astype("string").fillna("")
        code = parsed["adcode"].astype("string").str.slice(0, 6)

        prov_code = code.str.slice(0, 2) + "0000"
        prov_code = prov_code.fillna(prov.map(self._province_names).astype("string"))
        outside = prov.notna() & ~prov_code.isin(self.provinces).fillna(False)

        known = pd.Index(self._counties["adcode"])
        result = code.where(code.isin(known).fillna(False))
        successor = code.map(SUCCESSOR_ADCODES).astype("string")
        result = result.fillna(successor.where(successor.isin(known).fillna(False)))

        # Name match for county adcodes cpca has but the boundaries do not (renames).
        stem = county.map(county_stem, na_action="ignore").astype("string")
        need = result.isna() & county.notna() & ~outside
        if need.any():
            city_key = city.where(city != _PROVINCE_ADMINISTERED)
            by_city = pd.MultiIndex.from_arrays([prov[need], city_key[need], stem[need]])
            match = pd.Series(self._by_city.reindex(by_city).to_numpy(), index=stem[need].index)
            by_prov = pd.MultiIndex.from_arrays([prov[need], stem[need]])
            match = match.fillna(pd.Series(self._by_province.reindex(by_prov).to_numpy(),
                                           index=match.index))
            result = result.fillna(match.astype("string"))

        # cpca stopped at the city: look for a county name opening the rest of the address.
        need = result.isna() & county.isna() & city.notna() & ~outside
        for (p, c), pattern in self._prefix_patterns.items():
            sel = need & (prov == p).fillna(False) & (city == c).fillna(False)
            if not sel.any():
                continue
            found = rest[sel].str.extract(pattern, expand=False).dropna()
            if len(found):
                result.loc[found.index] = found.map(county_stem).map(self._prefix_codes[(p, c)])

        reason = pd.Series(pd.NA, index=distinct, dtype="string")
        reason[result.isna() & county.notna()] = REASON_UNKNOWN_COUNTY
        reason[result.isna() & county.isna() & city.notna()] = REASON_CITY_ONLY
        reason[result.isna() & county.isna() & city.isna() & prov.notna()] = REASON_PROVINCE_ONLY
        reason[result.isna() & prov.isna()] = REASON_NOT_FOUND
        reason[result.isna() & outside] = REASON_OUTSIDE
        return pd.DataFrame({"adcode": result, "reason": reason})
