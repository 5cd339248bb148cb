"""Region codes as people write them: the standard 6-digit adcode (GB/T 2260) of a province
(410000), a city (410100) or a county (410105), or its prefix form (41, 4101), all naming
the same region. A code that names no region in the loaded boundaries is an error naming
it, never a filter that quietly matches nothing.

济源市 (419001) is a city directly under the province that has no counties: it is both a
city and a county in the boundaries, and is taken as the city here (its one county is
itself), as its prefix form 4190 is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from geo.boundaries import _all_boundaries, province_codes

LEVEL_ZH = {"province": "省", "city": "市", "county": "区县"}
# how many leading digits of a 6-digit adcode a region of each level keeps
PREFIX_DIGITS = {"province": 2, "city": 4, "county": 6}
_FORM = re.compile(r"\d{2}|\d{4}|\d{6}")
FORMS = "2、4 或 6 位数字（如 41、4101、410100、410105）"
FORMS_EN = "2, 4 or 6 digits (e.g. 41, 4101, 410100, 410105)"


class UnknownRegion(ValueError):
    """A region code that is malformed or names no loaded region. The message is Chinese,
    then " / " and English, and names the code and the accepted form; :meth:`named` says
    it of a parameter."""

    def __init__(self, code: str, zh: str, en: str) -> None:
        self.code, self.zh, self.en = code, zh, en  # what is wrong with the code
        super().__init__(f"行政区划代码 {code} {zh} / region code {code} {en}")

    def named(self, zh_name: str, api_name: str) -> str:
        """The message said of a parameter: 抽取范围（region）4199 不是… / region 4199 …"""
        return f"{zh_name}（{api_name}）{self.code} {self.zh} / {api_name} {self.code} {self.en}"


@dataclass(frozen=True)
class Region:
    adcode: str            # the 6-digit code
    name: str
    level: str             # province / city / county
    province_adcode: str
    city_adcode: str | None

    @property
    def prefix(self) -> str:
        """The leading digits every code inside the region shares (济源: all six)."""
        if self.adcode == "419001":
            return self.adcode
        return self.adcode[:PREFIX_DIGITS[self.level]]

    @property
    def label(self) -> str:
        return f"{self.name}（{self.adcode}）"


@lru_cache(maxsize=8)
def _regions(codes: tuple[str, ...]) -> dict[str, Region]:
    """Every region of the provinces ``codes`` by adcode; a code that is both a city and a
    county (济源) is the city."""
    rows = _all_boundaries()
    rows = rows[rows["province_adcode"].isin(codes).to_numpy()]
    out: dict[str, Region] = {}
    for level in ("county", "city", "province"):  # coarser levels overwrite
        sel = rows[(rows["level"] == level).to_numpy()]
        for adcode, name, prov, city in zip(sel["adcode"], sel["name"], sel["province_adcode"],
                                            sel["city_adcode"], strict=True):
            out[str(adcode)] = Region(str(adcode), str(name), level, str(prov),
                                      None if level == "province" or city is None
                                      or str(city) == "<NA>" else str(city))
    return out


def resolve_region(code: str, provinces: list[str] | tuple[str, ...] | None = None) -> Region:
    """The region a code names, in the boundaries of ``provinces`` (all by default).

    Raises :class:`UnknownRegion` for a code that is not 2, 4 or 6 digits or names no
    loaded region."""
    text = str(code).strip()
    if not _FORM.fullmatch(text):
        raise UnknownRegion(repr(code), f"格式无效，应为{FORMS}", f"is malformed: use {FORMS_EN}")
    loaded = province_codes(list(provinces) if provinces is not None else None)
    regions = _regions(loaded)
    found = regions.get(text.ljust(6, "0"))
    if found is None and len(text) == 4:  # a city whose code does not end in 00 (济源 4190)
        cities = [r for c, r in regions.items() if r.level == "city" and c.startswith(text)]
        found = cities[0] if len(cities) == 1 else None
    if found is None:
        shown = [c for c in loaded if c in regions]
        names = "、".join(f"{regions[c].name} {c}" for c in shown)
        raise UnknownRegion(text, f"不是已加载的行政区：应为 {names} 内的行政区划代码，{FORMS}",
                            f"names no loaded region: give {FORMS_EN} within the loaded "
                            f"provinces ({', '.join(shown)})")
    return found
