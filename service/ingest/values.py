"""Vectorised parsing of cell values from registry exports: text, dates, booleans, numbers
and choices.

Inputs are pandas Series either of strings (CSV read with ``dtype=str``; empty cells are ''
or missing) or, from XLSX, of already-typed values (datetime, float, int, bool) mixed in an
object Series. Every ``parse_*`` function returns the parsed values and a numpy boolean
mask ``bad`` that is True where a non-empty input could not be parsed. Empty or null input
is not bad, only missing.

Everything works on whole columns with pandas string methods and numpy; the only Python
loops run over a handful of formats or distinct value types, never over rows.

Decisions on ambiguous values (also in the docstrings below):

* Text: full-width ASCII becomes half-width (so ``，`` becomes ``,`` and ``（`` ``(``);
  meant for structured values, it also applies to free text passed through it.
  Null markers (``nan``, ``None``, ``NULL``, ``-``, ``—``, ``/``, ``无``, ``#N/A``...) become
  missing everywhere, including in yes/no fields.
* Dates: year first only (2021-03-05, 2021/3/5, 2021.3.5, 2021年3月5日, 20210305, ISO
  with time, Excel serials); a time of day or a UTC offset is dropped and the written local
  date kept, never shifted. Day-first or month-first orders, two-digit years, year-month
  without a day and years outside 1950..2100 are bad.
* Booleans: ``有`` is bad, since its opposite ``无`` is a null marker: a 有/无 column would
  otherwise turn every "no" into missing without a word. ``已投保``/``未投保`` and
  ``已参保``/``未参保`` are accepted; a bare ``x``/``X`` is bad (both tick and cross).
* Numbers: a trailing degree sign on a decimal number is accepted for floats
  (``113.65°``), not for integers; degree-minute-second values are bad. Thousands
  separators must group by three (``1,234``; ``1,23`` is bad). Integers above 2**53 in
  magnitude are bad (they do not survive float64).
* Coordinates (``parse_coordinates``): decimal degrees as numbers, and also degrees,
  minutes and seconds (``113°37'30"``, ``113°37′30″``, ``113度37分30秒``) or degrees and
  decimal minutes (``113°37.5'``), with a hemisphere letter before or after (``E113°37'30"``,
  ``34°45'N``, ``东经``/``北纬``); S and W are negative. A minute or second of 60 or more is
  bad, as is a fraction followed by a smaller unit (``113.5°30'``).
* Choices: see ``CHOICE_ALIASES``; ambiguous words are deliberately left out so they are bad.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "CHOICE_ALIASES",
    "NULL_MARKERS",
    "as_text",
    "normalise_text",
    "parse_bools",
    "parse_choices",
    "parse_coordinates",
    "parse_dates",
    "parse_floats",
    "parse_ints",
]

# ---------------------------------------------------------------------------- text

# Full-width ASCII (U+FF01..U+FF5E) to half-width; odd spaces to a space; invisible
# characters (zero-width space, joiners, BOM) removed.
_SPACES = "\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
_WIDTH_TABLE: dict[int, str | None] = {cp: chr(cp - 0xFEE0) for cp in range(0xFF01, 0xFF5F)}
_WIDTH_TABLE.update({ord(c): " " for c in _SPACES})
_WIDTH_TABLE.update({ord(c): None for c in _INVISIBLE})
_NEEDS_TRANSLATE = "[\uff01-\uff5e" + _SPACES + _INVISIBLE + "]"

#: Values that mean "no value", compared case-insensitively after width folding and strip.
NULL_MARKERS: frozenset[str] = frozenset({
    "nan", "none", "null", "nat", "<na>", "n/a", "#n/a",
    "-", "--", "—", "——", "–", "/", "无",
})

_INT64_LIMIT = 2.0**63
_EXACT_INT_LIMIT = 2.0**53


def _render_floats(x: np.ndarray) -> np.ndarray:
    """Floats as shortest round-trip text; integral ones without '.0' (3110.0 -> '3110')."""
    out = x.astype(str).astype(object)
    with np.errstate(invalid="ignore"):
        integral = np.isfinite(x) & (np.trunc(x) == x) & (np.abs(x) < _INT64_LIMIT)
    out[integral] = x[integral].astype(np.int64).astype(str)
    return out


def as_text(s: pd.Series) -> pd.Series:
    """Cell values as text, as the file holds them (no cleaning): strings kept, floats in
    shortest form (integral ones without '.0'), other values str()'d, missing <NA>."""
    return _as_text(s)


def _as_text(s: pd.Series) -> pd.Series:
    """Any Series as 'string' dtype before cleaning: str() of non-strings, except floats."""
    dtype = s.dtype
    if isinstance(dtype, pd.StringDtype):
        return s.astype("string")
    if pd.api.types.is_float_dtype(dtype):
        x = s.to_numpy(dtype="float64", na_value=np.nan)
        out = _render_floats(x)
        out[np.isnan(x)] = None
        return pd.Series(out, index=s.index, dtype="string")
    if not pd.api.types.is_object_dtype(dtype):  # ints, bools, datetimes, categoricals
        return s.astype("string")
    values = s.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return s.astype("string")
    # Mixed XLSX cells: split by value type (a C-level map), then render each group at once.
    missing = pd.isna(values)
    types = pd.Series(values).map(type)
    float_types = [t for t in types.unique() if issubclass(t, float)]  # incl. numpy.float64
    floats = types.isin(float_types).to_numpy(dtype=bool) & ~missing
    others = ~missing & ~floats
    out = np.full(len(values), None, dtype=object)
    out[floats] = _render_floats(values[floats].astype("float64"))
    out[others] = pd.Series(values[others], dtype=object).astype(str).to_numpy(dtype=object)
    return pd.Series(out, index=s.index, dtype="string")


def normalise_text(s: pd.Series) -> pd.Series:
    """Clean cell text: full-width ASCII to half-width, whitespace (incl. U+3000 and NBSP)
    stripped, integral floats without '.0', other non-strings str()'d; '' and null markers
    (see ``NULL_MARKERS``) become <NA>. Returns 'string' dtype with the same index."""
    t = _as_text(s)
    odd = t.str.contains(_NEEDS_TRANSLATE, regex=True).to_numpy(dtype=bool, na_value=False)
    if odd.any():
        t = t.copy()
        t[odd] = t[odd].str.translate(_WIDTH_TABLE)
    t = t.str.strip()
    null = (t.eq("") | t.str.lower().isin(NULL_MARKERS)).to_numpy(dtype=bool, na_value=False)
    return t.mask(null)


def _present(t: pd.Series) -> np.ndarray:
    return t.notna().to_numpy(dtype=bool)


def _matches(t: pd.Series, pattern: str) -> np.ndarray:
    """Full-match mask of a regex over normalised text (missing -> False)."""
    return t.str.fullmatch(pattern).to_numpy(dtype=bool, na_value=False)


# ---------------------------------------------------------------------------- dates

MIN_YEAR = 1950
MAX_YEAR = 2100
#: Excel's day 0 for serials after 1900-02-28 (absorbs the 1900 leap-year bug).
EXCEL_EPOCH = np.datetime64("1899-12-30", "D")

_TIME = (
    r"(?:(?:T|[ \t]+)(?:[01]?[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]+)?)?"
    r"(?:[ \t]*(?:Z|[+-][0-9]{2}:?[0-9]{2}))?)?"
)
# Year-month-day with one separator used consistently, or the Chinese 年月日 form.
_SEPARATED = (
    r"(?:[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"|[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}"
    r"|[0-9]{4}\.[0-9]{1,2}\.[0-9]{1,2}"
    r"|[0-9]{4} *年 *[0-9]{1,2} *月 *[0-9]{1,2} *[日号]?)" + _TIME
)
_SEPARATED_GROUPS = r"^([0-9]{4})[^0-9]+([0-9]{1,2})[^0-9]+([0-9]{1,2}).*$"
_COMPACT = r"[0-9]{8}"
_COMPACT_GROUPS = r"^([0-9]{4})([0-9]{2})([0-9]{2})$"
_SERIAL = r"[0-9]{5}(?:\.[0-9]+)?"  # 18264 (1950-01-01) .. 73415 (2100-12-31)


def _in_range(days: np.ndarray) -> np.ndarray:
    years = days.astype("datetime64[Y]").astype(np.int64) + 1970
    return ~np.isnat(days) & (years >= MIN_YEAR) & (years <= MAX_YEAR)


def _finish_dates(
    days: np.ndarray, present: np.ndarray, index: pd.Index
) -> tuple[pd.Series, np.ndarray]:
    """Range-check day numbers and wrap them as datetime64[s] with the bad mask."""
    ok = _in_range(days)
    days = np.where(ok, days, np.datetime64("NaT", "D"))
    return pd.Series(days.astype("datetime64[s]"), index=index), present & ~ok


def parse_dates(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Parse dates to datetime64[s] at midnight (NaT where missing or bad).

    Accepted: 2021-03-05, 2021/3/5, 2021.3.5, 2021年3月5日 / 2021年03月05号, 20210305,
    '2021-03-05 00:00:00' and ISO with time (time and offset dropped), Excel serials as
    int, float or numeric string (5 digits, fraction = time of day), full-width digits,
    and datetime/date/Timestamp/numpy datetime64 values. Impossible dates, years outside
    1950..2100 and anything else (two-digit years, day-first orders) are bad.
    """
    index = s.index
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_localize(None)  # keep the local wall-clock date
        days = s.to_numpy().astype("datetime64[D]")
        return _finish_dates(days, ~np.isnat(days), index)

    t = normalise_text(s).reset_index(drop=True)
    present = _present(t)
    days = np.full(len(t), np.datetime64("NaT"), dtype="datetime64[D]")

    canonical = pd.Series(pd.NA, index=t.index, dtype="string")
    for pattern, groups in ((_SEPARATED, _SEPARATED_GROUPS), (_COMPACT, _COMPACT_GROUPS)):
        rows = _matches(t, pattern)
        if rows.any():
            canonical[rows] = t[rows].str.replace(groups, r"\1-\2-\3", regex=True)
    if canonical.notna().any():
        parsed = pd.to_datetime(canonical, format="%Y-%m-%d", errors="coerce")
        ymd = parsed.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
        days = np.where(np.isnat(ymd), days, ymd)

    serial = _matches(t, _SERIAL)
    if serial.any():
        n = np.floor(t[serial].astype("float64").to_numpy()).astype(np.int64)
        days[serial] = EXCEL_EPOCH + n.astype("timedelta64[D]")

    return _finish_dates(days, present, index)


# ---------------------------------------------------------------------------- booleans

_TRUE = frozenset({"是", "y", "yes", "true", "t", "1", "1.0", "√", "✓", "✔", "已投保", "已参保"})
_FALSE = frozenset({
    "否", "n", "no", "false", "f", "0", "0.0", "×", "✕", "✗", "✘", "未投保", "未参保",
})


def parse_bools(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Parse yes/no values to the 'boolean' dtype.

    True: 是, Y, yes, true (any case, incl. Excel TRUE and Python True), 1, √ ✓ ✔, 已投保,
    已参保. False: 否, N, no, false, 0, × ✕ ✗ ✘, 未投保, 未参保. '无' is a null marker, so
    it is missing, and '有' is therefore bad rather than silently half-understood.
    """
    if pd.api.types.is_bool_dtype(s.dtype):
        out = s.astype("boolean")
        return out, np.zeros(len(s), dtype=bool)
    t = normalise_text(s)
    low = t.str.lower()
    yes = low.isin(_TRUE).to_numpy(dtype=bool)
    no = low.isin(_FALSE).to_numpy(dtype=bool)
    present = _present(t)
    ok = yes | no
    out = pd.Series(pd.arrays.BooleanArray(yes, ~ok), index=s.index)
    return out, present & ~ok


# ---------------------------------------------------------------------------- numbers

_DIGITS = r"(?:[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?|[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_NUMBER = r"[+-]?" + _DIGITS + r"(?:[eE][+-]?[0-9]+)?"


def _parse_number(s: pd.Series, degree: bool, text: pd.Series | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float64 values with NaN, present mask, parsed mask) for any Series (``text``: its
    ``normalise_text``, when the caller has it already)."""
    dtype = s.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        x = s.to_numpy(dtype="float64", na_value=np.nan)
        present = ~np.isnan(x)
        return x, present, np.isfinite(x)
    t = normalise_text(s) if text is None else text
    present = _present(t)
    ok = _matches(t, _NUMBER + ("°?" if degree else ""))
    x = np.full(len(t), np.nan)
    if ok.any():
        clean = t[ok].str.replace(r"[,°+]", "", regex=True)
        x[ok] = clean.astype("float64").to_numpy()
    ok &= np.isfinite(x)
    return x, present, ok


def parse_floats(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Parse decimal numbers to float64 (NaN where missing or bad).

    Accepts '113.65', '-1.5e3', full-width digits, thousands separators grouped by three
    ('1,234.5'), a trailing degree sign ('113.65°') and Python/numpy numbers. Infinite
    values, booleans, degree-minute-second values and units are bad.
    """
    x, present, ok = _parse_number(s, degree=True)
    return pd.Series(np.where(ok, x, np.nan), index=s.index, dtype="float64"), present & ~ok


def parse_ints(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Parse whole numbers to Int64 (<NA> where missing or bad).

    Accepts 3, 3.0, '3', '3.0', '1,234', full-width digits. Fractions ('3.5'), booleans
    and magnitudes above 2**53 are bad.
    """
    x, present, ok = _parse_number(s, degree=False)
    with np.errstate(invalid="ignore"):
        ok &= (np.trunc(x) == x) & (np.abs(x) <= _EXACT_INT_LIMIT)
    values = np.where(ok, x, 0).astype(np.int64)
    return pd.Series(pd.arrays.IntegerArray(values, ~ok), index=s.index), present & ~ok


# ---------------------------------------------------------------------------- coordinates

_HEMISPHERE = r"(?:东经|西经|南纬|北纬|[东西南北NSEWnsew])"
_DEC = r"[0-9]+(?:\.[0-9]+)?"
# One pattern for every written form: hemisphere, degrees (with a mark, or bare when a
# hemisphere follows), minutes and seconds, hemisphere. Checked further in parse_coordinates.
_DMS = (
    r"^(?P<pre>" + _HEMISPHERE + r")?\s*"
    r"(?P<sign>[+-])?(?P<deg>" + _DEC + r")\s*"
    r"(?:(?P<dmark>[°º˚度])\s*"
    r"(?:(?P<min>" + _DEC + r")\s*['′’分]\s*"
    r"(?:(?P<sec>" + _DEC + r")\s*(?:\"|″|”|''|′′|’’|秒)?\s*)?)?)?"
    r"(?P<post>" + _HEMISPHERE + r")?$"
)
_NEGATIVE = ("S", "W", "s", "w", "南", "西", "南纬", "西经")


def parse_coordinates(s: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Parse longitudes or latitudes to float64 degrees (NaN where missing or bad).

    Decimal degrees as ``parse_floats`` reads them, and degree-minute-second forms (see the
    module docstring), all matched by one regex (Arrow's RE2, in C++: ~6x pandas'
    ``str.extract``) over the rows that are not plain numbers.
    Returns (values, bad, bad_minutes): ``bad_minutes`` marks the bad values that are
    degree-minute-second with a minute or second of 60 or more.
    """
    numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
    t = None if numeric else normalise_text(s).reset_index(drop=True)
    x, present, ok = _parse_number(s, degree=True, text=t)
    rest = present & ~ok
    bad_minutes = np.zeros(len(x), dtype=bool)
    if t is not None and rest.any():
        parts = pc.extract_regex(pa.array(t[rest], type=pa.string(), from_pandas=True), _DMS)
        matched = parts.is_valid().to_numpy(zero_copy_only=False)

        def text_of(name: str) -> pa.Array:  # an unmatched group is "": make it null
            got = parts.field(name)
            return pc.if_else(pc.equal(got, ""), pa.scalar(None, pa.string()), got)

        def given(name: str) -> np.ndarray:
            return pc.fill_null(pc.not_equal(parts.field(name), ""), False).to_numpy(
                zero_copy_only=False) & matched

        def number(name: str) -> np.ndarray:
            return pc.cast(text_of(name), pa.float64()).to_numpy(zero_copy_only=False)

        deg, minute, second = number("deg"), number("min"), number("sec")
        has_min, has_sec = given("min"), given("sec")
        pre, post, signed = given("pre"), given("post"), given("sign")
        fraction_deg = pc.fill_null(pc.match_substring(parts.field("deg"), "."), False)
        fraction_min = pc.fill_null(pc.match_substring(parts.field("min"), "."), False)
        form = (matched & ~(pre & post) & ~(signed & (pre | post))
                & (given("dmark") | pre | post)
                & ~(fraction_deg.to_numpy(zero_copy_only=False) & has_min)
                & ~(fraction_min.to_numpy(zero_copy_only=False) & has_sec))
        with np.errstate(invalid="ignore"):
            sixty = (has_min & (minute >= 60)) | (has_sec & (second >= 60))
        value = deg + np.where(has_min, minute, 0) / 60 + np.where(has_sec, second, 0) / 3600
        hemisphere = pc.coalesce(text_of("pre"), text_of("post"))
        negative = (pc.fill_null(pc.is_in(hemisphere, pa.array(_NEGATIVE)), False)
                    .to_numpy(zero_copy_only=False)
                    | pc.fill_null(pc.equal(parts.field("sign"), "-"), False)
                    .to_numpy(zero_copy_only=False))
        value = np.where(negative, -value, value)
        good = form & ~sixty & np.isfinite(value)
        idx = np.flatnonzero(rest)
        x[idx[good]] = value[good]
        ok[idx[good]] = True
        bad_minutes[idx[form & sixty]] = True
    values = pd.Series(np.where(ok, x, np.nan), index=s.index, dtype="float64")
    return values, present & ~ok, bad_minutes


# ---------------------------------------------------------------------------- choices

# GB/T 4754-2017 sections (门类).
_INDUSTRY_NAMES = {
    "A": "农、林、牧、渔业", "B": "采矿业", "C": "制造业",
    "D": "电力、热力、燃气及水生产和供应业", "E": "建筑业", "F": "批发和零售业",
    "G": "交通运输、仓储和邮政业", "H": "住宿和餐饮业", "I": "信息传输、软件和信息技术服务业",
    "J": "金融业", "K": "房地产业", "L": "租赁和商务服务业", "M": "科学研究和技术服务业",
    "N": "水利、环境和公共设施管理业", "O": "居民服务、修理和其他服务业", "P": "教育",
    "Q": "卫生和社会工作", "R": "文化、体育和娱乐业", "S": "公共管理、社会保障和社会组织",
    "T": "国际组织",
}

# Status words: hazards (已登记/整改中/已销号) and equipment (在用/停用/报废) share the
# field name ``status``; the two sets do not overlap and parse_choices keeps only the
# aliases whose target is among the field's choices.
_HAZARD_STATUS_ALIASES = {
    "登记": "已登记", "待整改": "已登记",
    "正在整改": "整改中", "整改进行中": "整改中",
    "销号": "已销号", "已闭环": "已销号", "闭环": "已销号",
}
_EQUIPMENT_STATUS_ALIASES = {
    "使用中": "在用", "正常使用": "在用", "使用": "在用",
    "停止使用": "停用", "暂停使用": "停用", "停用中": "停用",
    "已报废": "报废",
    # Deregistered equipment is out of the register for good: treated as scrapped.
    "注销": "报废", "已注销": "报废",
}

#: Accepted synonyms keyed by schema field name, mapped onto the canonical choice. Values
#: not listed are bad. Deliberately absent because ambiguous: level '较大'/'较大隐患' (a
#: third level in some provinces); hazard status '已整改', '已完成', '整改完成' (rectified
#: but not necessarily verified and closed out, so neither '整改中' nor '已销号' is safe)
#: and '未整改' (registered or in progress); equipment status '闲置'; size '小微' (small
#: or micro).
CHOICE_ALIASES: dict[str, dict[str, str]] = {
    "level": {
        "一般隐患": "一般", "一般事故隐患": "一般",
        "重大隐患": "重大", "重大事故隐患": "重大",
    },
    "status": {**_HAZARD_STATUS_ALIASES, **_EQUIPMENT_STATUS_ALIASES},
    "inspection_conclusion": {
        # TSG wording for boilers and pressure vessels, and common spellings.
        "符合要求": "合格", "检验合格": "合格",
        "基本符合要求": "基本合格",
        "复检符合要求": "复检合格",
        "不符合要求": "不合格", "检验不合格": "不合格", "复检不合格": "不合格",
    },
    "industry": {
        **{letter.lower(): letter for letter in _INDUSTRY_NAMES},
        **{name: letter for letter, name in _INDUSTRY_NAMES.items()},
        **{letter + name: letter for letter, name in _INDUSTRY_NAMES.items()},
        **{f"{letter} {name}": letter for letter, name in _INDUSTRY_NAMES.items()},
    },
    "size": {
        "大": "大型", "中": "中型", "小": "小型", "微": "微型",
        "大型企业": "大型", "中型企业": "中型", "小型企业": "小型", "微型企业": "微型",
    },
}


def parse_choices(
    s: pd.Series, choices: tuple[str, ...], aliases: dict[str, str] | None = None
) -> tuple[pd.Series, np.ndarray]:
    """Map values onto ``choices`` (exact match after ``normalise_text``, then ``aliases``).

    Returns a 'string' Series of canonical choices (<NA> where missing or bad). Aliases
    whose target is not one of ``choices`` are ignored, so one alias table serves fields
    of the same name in different kinds (``status``).
    """
    lookup = {c: c for c in choices}
    if aliases:
        keys = normalise_text(pd.Series(list(aliases), dtype=object))
        for key, target in zip(keys, aliases.values(), strict=True):
            if target in choices and not pd.isna(key):
                lookup.setdefault(key, target)
    t = normalise_text(s)
    out = t.map(lookup).astype("string")
    return out, _present(t) & out.isna().to_numpy(dtype=bool)
