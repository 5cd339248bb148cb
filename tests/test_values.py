"""Tests for service.ingest.values: vectorised parsing of registry cell values."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.kernels import date_columns
from data import schema
from service.ingest.values import (
    CHOICE_ALIASES,
    normalise_text,
    parse_bools,
    parse_choices,
    parse_coordinates,
    parse_dates,
    parse_floats,
    parse_ints,
)

EMPTY = ["", "   ", "\u3000", "\u00a0", None, np.nan, pd.NA, "nan", "NaN", "None", "NULL", "null",
         "-", "—", "/", "无", "－", "／"]
FULL = str.maketrans("0123456789", "０１２３４５６７８９")


def obj(*values: object) -> pd.Series:
    """An object Series as read from XLSX (mixed typed values)."""
    return pd.Series(list(values), dtype=object)


def text(*values: object) -> pd.Series:
    """A 'str' Series as read from CSV with dtype=str."""
    return pd.Series(list(values), dtype=str)


def day(y: int, m: int, d: int) -> np.datetime64:
    return np.datetime64(dt.date(y, m, d), "s")


# ---------------------------------------------------------------------------- normalise_text


def test_normalise_full_width_and_whitespace() -> None:
    s = text("ＡＢＣ１２３", "ａｂｃ", "　x\u00a0", " 1２．５ ", "１２－３４／５６：７８，９",
             "a\u200bb")
    out = normalise_text(s)
    assert out.tolist() == ["ABC123", "abc", "x", "12.5", "12-34/56:78,9", "ab"]
    assert isinstance(out.dtype, pd.StringDtype)


def test_normalise_empty_and_null_markers() -> None:
    out = normalise_text(obj(*EMPTY))
    assert out.isna().all()


def test_normalise_typed_values() -> None:
    s = obj(3110.0, 2.5, -0.0, 7, True, dt.date(2021, 3, 5), dt.datetime(2021, 3, 5, 10, 30),
            "x", np.nan, None, 1e15, 1e20)
    out = normalise_text(s)
    assert out.tolist()[:8] == ["3110", "2.5", "0", "7", "True", "2021-03-05",
                                "2021-03-05 10:30:00", "x"]
    assert out.isna().tolist()[8:10] == [True, True]
    assert out.tolist()[10:] == ["1000000000000000", "1e+20"]


def test_normalise_float_column_and_index() -> None:
    s = pd.Series([3110.0, 113.65, np.nan], index=[10, 20, 30])
    out = normalise_text(s)
    assert out.index.tolist() == [10, 20, 30]
    assert out.tolist()[:2] == ["3110", "113.65"]
    assert pd.isna(out.iloc[2])


def test_normalise_keeps_inner_text() -> None:
    out = normalise_text(text("无锡市", "a - b", "N/A"))
    assert out.tolist()[:2] == ["无锡市", "a - b"]
    assert pd.isna(out.iloc[2])


# ---------------------------------------------------------------------------- parse_dates

GOOD_DATES = [
    "2021-03-05", "2021/3/5", "2021/03/05", "2021.3.5", "2021年3月5日", "2021年03月05号",
    "2021 年 3 月 5 日", "2021年3月5", "20210305", "2021-03-05 00:00:00", "2021-3-5 8:05",
    "2021-03-05T14:30:00", "2021-03-05T14:30:00.123456", "2021-03-05T23:59:59Z",
    "2021-03-05T23:59:59+08:00", "2021-03-05 23:59:59 +0800", "44260", "44260.0", "44260.75",
    "２０２１年３月５日", "２０２１－０３－０５", "４４２６０", " 2021-03-05\u3000",
]


@pytest.mark.parametrize("value", GOOD_DATES)
def test_dates_string_formats(value: str) -> None:
    for s in (text(value), obj(value)):
        out, bad = parse_dates(s)
        assert out.dtype == "datetime64[s]"
        assert out.iloc[0] == day(2021, 3, 5), value
        assert not bad[0]


@pytest.mark.parametrize("value", [
    44260, 44260.0, 44260.5, np.int64(44260), np.float64(44260.0), 20210305,
    dt.date(2021, 3, 5), dt.datetime(2021, 3, 5), dt.datetime(2021, 3, 5, 17, 45, 1),
    pd.Timestamp("2021-03-05 10:00"), pd.Timestamp("2021-03-05 23:00", tz="Asia/Shanghai"),
    np.datetime64("2021-03-05"),
])
def test_dates_typed_xlsx_values(value: object) -> None:
    out, bad = parse_dates(obj(value, "x", None))
    assert out.iloc[0] == day(2021, 3, 5)
    assert bad.tolist() == [False, True, False]


def test_dates_typed_columns() -> None:
    for s in (pd.Series([44260, 44261]), pd.Series([44260.0, np.nan]),
              pd.Series(pd.to_datetime(["2021-03-05 10:00", None])),
              pd.Series(pd.to_datetime(["2021-03-05 23:30", None])).dt.tz_localize("UTC")):
        out, bad = parse_dates(s)
        assert out.iloc[0] == day(2021, 3, 5)
        assert not bad.any()


def test_dates_excel_serial_range() -> None:
    out, bad = parse_dates(obj(18264, 73415, 18263, 73416, 1000, 100000, "10000", -44260))
    assert out.iloc[0] == day(1950, 1, 1)
    assert out.iloc[1] == day(2100, 12, 31)
    assert bad.tolist() == [False, False, True, True, True, True, True, True]


@pytest.mark.parametrize("value", [
    "2021-02-30", "2021-02-29", "2021-13-01", "2021-00-10", "2021-04-31", "2021年2月30日",
    "20210230", "20211301", "1949-12-31", "2101-01-01", "1900-01-01", "21-3-5", "21/3/5",
    "05/03/2021", "5.3.2021", "2021-03", "2021年3月", "2021", "202103", "2021-3/5",
    "2021-03-05 25:00", "2021-03-05 10:60", "2021-03-05T", "garbage", "明天", "44260x",
    "2021-03-05 junk", True, dt.date(1900, 1, 1), dt.datetime(2200, 1, 1),
])
def test_dates_bad(value: object) -> None:
    out, bad = parse_dates(obj(value))
    assert pd.isna(out.iloc[0])
    assert bad[0]


def test_dates_leap_day() -> None:
    out, bad = parse_dates(text("2020-02-29", "2000-02-29", "2100-02-29", "1900-02-29"))
    assert out.iloc[0] == day(2020, 2, 29)
    assert out.iloc[1] == day(2000, 2, 29)
    assert bad.tolist() == [False, False, True, True]


def test_dates_empty_not_bad() -> None:
    out, bad = parse_dates(obj(*EMPTY, pd.NaT))
    assert out.isna().all()
    assert not bad.any()
    out, bad = parse_dates(text("", "", ""))
    assert out.isna().all() and not bad.any()


def test_dates_mixed_column_keeps_index() -> None:
    s = pd.Series(["2021-03-05", 44260, dt.datetime(2021, 3, 5), "bad", None],
                  index=list("abcde"), dtype=object)
    out, bad = parse_dates(s)
    assert out.index.tolist() == list("abcde")
    assert (out.iloc[:3] == day(2021, 3, 5)).all()
    assert bad.tolist() == [False, False, False, True, False]
    assert isinstance(bad, np.ndarray) and bad.dtype == bool


def test_dates_empty_series() -> None:
    out, bad = parse_dates(text())
    assert len(out) == 0 and len(bad) == 0


def test_dates_many_rows() -> None:
    """The benchmark's ISO and mixed columns, small (its speed at 1M rows:
    ``python -m benchmarks.kernels``)."""
    n = 7_000
    days, iso, mixed = date_columns(n)
    out, bad = parse_dates(mixed)
    assert not parse_dates(iso)[1].any()
    assert (parse_dates(iso)[0].to_numpy() == days.astype("datetime64[s]")).all()
    assert bad.sum() == len(range(3, n, 7))
    assert out.iloc[0] == day(2021, 3, 5) and out.iloc[1] == day(2021, 3, 5)


def _serial(d: dt.date) -> int:
    return (d - dt.date(1899, 12, 30)).days


FORMATTERS = {
    "iso": lambda d: d.isoformat(),
    "slash": lambda d: f"{d.year}/{d.month}/{d.day}",
    "slash_padded": lambda d: d.strftime("%Y/%m/%d"),
    "dot": lambda d: f"{d.year}.{d.month}.{d.day}",
    "zh": lambda d: f"{d.year}年{d.month}月{d.day}日",
    "zh_hao": lambda d: d.strftime("%Y年%m月%d号"),
    "compact": lambda d: d.strftime("%Y%m%d"),
    "midnight": lambda d: f"{d.isoformat()} 00:00:00",
    "iso_time": lambda d: f"{d.isoformat()}T23:59:59.5+08:00",
    "serial_int": _serial,
    "serial_float": lambda d: _serial(d) + 0.75,
    "serial_str": lambda d: str(_serial(d)),
    "full_width": lambda d: f"{d.year}年{d.month}月{d.day}日".translate(FULL),
    "full_width_iso": lambda d: d.isoformat().translate(FULL).replace("-", "－"),
    "date": lambda d: d,
    "datetime": lambda d: dt.datetime.combine(d, dt.time(13, 5)),
    "timestamp": lambda d: pd.Timestamp(d),
}

DATES_IN_RANGE = st.dates(min_value=dt.date(1950, 1, 1), max_value=dt.date(2100, 12, 31))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(DATES_IN_RANGE, st.sampled_from(sorted(FORMATTERS))), min_size=1,
                max_size=30))
def test_dates_roundtrip_property(pairs: list[tuple[dt.date, str]]) -> None:
    values = [FORMATTERS[fmt](d) for d, fmt in pairs]
    expected = np.array([np.datetime64(d, "s") for d, _ in pairs])
    for s in (obj(*values), obj(*values).astype(str)):
        out, bad = parse_dates(s)
        assert not bad.any(), list(zip(values, bad, strict=True))
        assert (out.to_numpy() == expected).all(), list(zip(values, out, strict=True))


@settings(max_examples=100, deadline=None)
@given(DATES_IN_RANGE, st.sampled_from(sorted(FORMATTERS)))
def test_dates_roundtrip_each_format(d: dt.date, fmt: str) -> None:
    out, bad = parse_dates(obj(FORMATTERS[fmt](d)))
    assert not bad[0]
    assert out.iloc[0] == np.datetime64(d, "s")


# ---------------------------------------------------------------------------- parse_bools


def test_bools_words() -> None:
    trues = ["是", "Y", "y", "yes", "YES", "true", "TRUE", "True", "1", "√", "✓", "已投保",
             "已参保", "Ｙ", "１", True, 1, 1.0, np.True_]
    falses = ["否", "N", "n", "no", "No", "false", "FALSE", "0", "×", "✗", "未投保", "未参保",
              "Ｎ", False, 0, 0.0, np.False_]
    out, bad = parse_bools(obj(*trues, *falses))
    assert out.dtype == "boolean"
    assert out.tolist() == [True] * len(trues) + [False] * len(falses)
    assert not bad.any()


def test_bools_bad_and_empty() -> None:
    out, bad = parse_bools(obj("有", "x", "X", "2", 2, "maybe", "是否", *EMPTY))
    assert out.isna().all()
    assert bad.tolist() == [True] * 7 + [False] * len(EMPTY)


def test_bools_typed_column() -> None:
    out, bad = parse_bools(pd.Series([True, False, None], dtype="boolean"))
    assert out.tolist()[:2] == [True, False] and pd.isna(out.iloc[2])
    assert not bad.any()


# ---------------------------------------------------------------------------- numbers


def test_floats_formats() -> None:
    s = obj("113.65", "１１３．６５", "113.65°", " -1.5 ", "+2", "1,234", "1,234,567.25",
            "１，２３４", ".5", "3.", "1e3", "-2.5E-2", 113.65, 7, np.float32(0.5), "3110.0")
    out, bad = parse_floats(s)
    assert out.dtype == "float64"
    assert out.tolist() == [113.65, 113.65, 113.65, -1.5, 2.0, 1234.0, 1234567.25, 1234.0,
                            0.5, 3.0, 1000.0, -0.025, 113.65, 7.0, 0.5, 3110.0]
    assert not bad.any()


def test_floats_bad_and_empty() -> None:
    s = obj("abc", "1,23", "12,3456", "1.2.3", "113°39′", "113°", "°", "1 234", "10%", "inf",
            "1e999", True, "3米", *EMPTY)
    out, bad = parse_floats(s)
    assert bad.tolist() == [True] * 5 + [False] + [True] * 7 + [False] * len(EMPTY)
    assert out.iloc[5] == 113.0  # a bare trailing degree sign is fine
    assert out.drop(index=5).isna().all()


def test_floats_typed_columns() -> None:
    out, bad = parse_floats(pd.Series([1.5, np.nan, np.inf], index=[5, 6, 7]))
    assert out.index.tolist() == [5, 6, 7]
    assert out.iloc[0] == 1.5 and out.iloc[1:].isna().all()
    assert bad.tolist() == [False, False, True]
    out, bad = parse_floats(pd.Series([1, 2], dtype="Int64"))
    assert out.tolist() == [1.0, 2.0] and not bad.any()


def test_ints() -> None:
    good = obj(3, "3", "3.0", "３", "+4", "-5", "1,234", 7.0, np.int64(8), "0", 2**53)
    out, bad = parse_ints(good)
    assert out.dtype == "Int64"
    assert out.tolist() == [3, 3, 3, 3, 4, -5, 1234, 7, 8, 0, 2**53]
    assert not bad.any()
    out, bad = parse_ints(obj("3.5", 3.5, "3°", "abc", True, 2**60, "1e30", *EMPTY))
    assert out.isna().all()
    assert bad.tolist() == [True] * 7 + [False] * len(EMPTY)


def test_ints_typed_column() -> None:
    out, bad = parse_ints(pd.Series([1.0, np.nan, 2.5]))
    assert out.iloc[0] == 1 and out.iloc[1:].isna().all()
    assert bad.tolist() == [False, False, True]


# ---------------------------------------------------------------------------- coordinates


@pytest.mark.parametrize(("value", "expected"), [
    ("113°37'30\"", 113.625), ("113°37′30″", 113.625), ("113度37分30秒", 113.625),
    ("E113°37'30\"", 113.625), ("113°37'30\"E", 113.625), ("东经113°37'30\"", 113.625),
    ("W113°37'30\"", -113.625), ("113°37'30\" W", -113.625), ("34°45'N", 34.75),
    ("34°45'S", -34.75), ("北纬34°45′", 34.75), ("南纬34°45′", -34.75),
    ("113°37.5'", 113.625), ("113°37'30", 113.625), ("113°37'30''", 113.625),
    ("113°37’30”", 113.625), ("１１３°３７′３０″", 113.625), ("34.75N", 34.75),
    ("-113°37'30\"", -113.625), ("113°37'30.36\"", 113.6251), ("113.625", 113.625),
    ("113.65°", 113.65), (113.625, 113.625), ("113°", 113.0),
])
def test_coordinates_decimal_and_dms(value: object, expected: float) -> None:
    out, bad, sixty = parse_coordinates(obj(value))
    assert out.iloc[0] == pytest.approx(expected)
    assert not bad.any() and not sixty.any()


def test_coordinates_bad_and_empty() -> None:
    values = ("113°60'", "113°37'60\"", "113°61'10\"",            # minutes or seconds >= 60
              "113.5°30'", "113°37.5'30\"", "N34°45'S", "-113°37'W", "113°37", "113 37",
              "°", "abc", "E", "34.75NN")
    out, bad, sixty = parse_coordinates(obj(*values, *EMPTY))
    assert out.isna().all()
    assert bad.tolist() == [True] * len(values) + [False] * len(EMPTY)
    assert sixty.tolist() == [True] * 3 + [False] * (len(values) - 3 + len(EMPTY))


def test_coordinates_keep_the_index_and_typed_columns() -> None:
    out, bad, _ = parse_coordinates(pd.Series(["113°37'30\"", None, "x"], index=[7, 8, 9]))
    assert out.index.tolist() == [7, 8, 9] and out.iloc[0] == 113.625
    assert bad.tolist() == [False, False, True]
    out, bad, _ = parse_coordinates(pd.Series([113.625, np.nan]))
    assert out.iloc[0] == 113.625 and not bad.any()


def test_coordinates_many_rows() -> None:
    n = 200_000
    s = pd.Series(np.where(np.arange(n) % 2 == 0, "113°37'30\"", "34.75"), dtype=object)
    out, bad, _ = parse_coordinates(s)
    assert not bad.any()
    assert out.iloc[0] == 113.625 and out.iloc[1] == 34.75


# ---------------------------------------------------------------------------- choices


def test_choices_exact_and_aliases() -> None:
    out, bad = parse_choices(obj("重大", " 一般 ", "重大隐患", "一般事故隐患", "较大", "", None),
                             schema.HAZARD_LEVELS, CHOICE_ALIASES["level"])
    assert isinstance(out.dtype, pd.StringDtype)
    assert out.tolist()[:4] == ["重大", "一般", "重大", "一般"]
    assert bad.tolist() == [False] * 4 + [True, False, False]


@pytest.mark.parametrize(("field", "choices", "good", "bad_values"), [
    ("status", schema.HAZARD_STATUS,
     {"已登记": "已登记", "待整改": "已登记", "整改中": "整改中", "正在整改": "整改中",
      "已销号": "已销号", "销号": "已销号", "已闭环": "已销号"},
     ["已整改", "已完成", "整改完成", "未整改", "关闭", "在用", "注销"]),
    ("status", schema.EQUIPMENT_STATUS,
     {"在用": "在用", "使用中": "在用", "停用": "停用", "停止使用": "停用", "报废": "报废",
      "注销": "报废", "已注销": "报废"},
     ["闲置", "待检", "已登记", "销号"]),
    ("inspection_conclusion", schema.CONCLUSIONS,
     {"合格": "合格", "符合要求": "合格", "基本合格": "基本合格", "基本符合要求": "基本合格",
      "复检合格": "复检合格", "不合格": "不合格", "不符合要求": "不合格"},
     ["良好", "待定"]),
    ("industry", schema.INDUSTRIES,
     {"C": "C", "c": "C", "Ｃ": "C", "ｔ": "T", "制造业": "C", "C制造业": "C",
      "Ｃ 制造业": "C", "卫生和社会工作": "Q"},
     ["U", "CC", "C38", "工业"]),
    ("size", schema.UNIT_SIZES,
     {"大型": "大型", "大": "大型", "中": "中型", "小": "小型", "微": "微型", "微型企业": "微型"},
     ["小微", "特大型", "中小"]),
])
def test_choice_fields(field: str, choices: tuple[str, ...], good: dict[str, str],
                       bad_values: list[str]) -> None:
    out, bad = parse_choices(obj(*good, *bad_values, ""), choices, CHOICE_ALIASES[field])
    assert out.tolist()[:len(good)] == list(good.values())
    assert bad.tolist() == [False] * len(good) + [True] * len(bad_values) + [False]


def test_choices_without_aliases_and_typed() -> None:
    out, bad = parse_choices(obj("A", "a", 1, None), schema.INDUSTRIES)
    assert out.tolist()[0] == "A"
    assert bad.tolist() == [False, True, True, False]


def test_choice_aliases_match_schema() -> None:
    """Every alias table is keyed by a schema field name and targets that field's choices."""
    choices: dict[str, set[str]] = {}
    for fields in schema.SCHEMAS.values():
        for f in fields:
            if f.type == schema.FieldType.ENUM:
                choices.setdefault(f.name, set()).update(f.choices)
    assert set(CHOICE_ALIASES) <= set(choices)
    assert {"level", "status", "inspection_conclusion", "industry", "size"} <= set(CHOICE_ALIASES)
    for name, aliases in CHOICE_ALIASES.items():
        assert set(aliases.values()) <= choices[name], name
        assert not set(aliases) & choices[name], name


def test_choices_ignore_alias_outside_choices() -> None:
    out, bad = parse_choices(obj("x", "y"), ("a", "b"), {"x": "c", "y": "a"})
    assert pd.isna(out.iloc[0]) and out.iloc[1] == "a"
    assert bad.tolist() == [True, False]
