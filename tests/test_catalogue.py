"""The shipped 特种设备目录 table and resolution of registry category values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data.catalogue import (
    ALIASES,
    TOP_CATEGORIES,
    category_name,
    load_catalogue,
    resolve_categories,
    top_codes,
)

# 种类 as published with 质检总局公告2014年第114号.
PUBLISHED_TOP = {
    "1000": "锅炉",
    "2000": "压力容器",
    "3000": "电梯",
    "4000": "起重机械",
    "5000": "场（厂）内专用机动车辆",
    "6000": "大型游乐设施",
    "7000": "压力管道元件",
    "8000": "压力管道",
    "9000": "客运索道",
    "F000": "安全附件",
}

# Sample 类别/品种: (code, published name, top-level code).
SAMPLES = [
    ("1310", "有机热载体气相炉", "1000"),
    ("2100", "固定式压力容器", "2000"),
    ("2250", "管束式集装箱", "2000"),
    ("2300", "气瓶", "2000"),
    ("2310", "无缝气瓶", "2000"),
    ("2320", "焊接气瓶", "2000"),
    ("23T0", "特种气瓶（内装填料气瓶、纤维缠绕气瓶、低温绝热气瓶）", "2000"),
    ("2410", "医用氧舱", "2000"),
    ("3100", "曳引与强制驱动电梯", "3000"),
    ("3110", "曳引驱动乘客电梯", "3000"),
    ("3310", "自动扶梯", "3000"),
    ("3430", "杂物电梯", "3000"),
    ("4860", "施工升降机", "4000"),
    ("4D00", "机械式停车设备", "4000"),
    ("5110", "叉车", "5000"),
    ("5200", "非公路用旅游观光车辆", "5000"),
    ("6E60", "系留式观光气球系列", "6000"),
    ("71F0", "非金属材料管", "7000"),
    ("8210", "燃气管道", "8000"),
    ("9100", "客运架空索道", "9000"),
    ("9110", "往复式客运架空索道", "9000"),
    ("7310", "安全阀", "F000"),
    ("F220", "爆破片装置", "F000"),
]


def resolve(*values: object) -> pd.DataFrame:
    return resolve_categories(pd.Series(list(values), dtype=object))


def assert_resolves(value: object, code: str, top: str) -> None:
    row = resolve(value).iloc[0]
    assert (row["category_code"], row["category"]) == (code, top), value


# --- the table ------------------------------------------------------------------------


def test_table_shape_and_columns() -> None:
    cat = load_catalogue()
    assert list(cat.columns) == ["code", "name", "level", "parent_code", "top_code", "source"]
    assert len(cat) == 154
    assert cat["code"].is_unique
    assert cat["name"].is_unique
    assert set(cat["level"]) == {"种类", "类别", "品种"}
    assert cat["source"].str.contains("2014年第114号").all()


def test_load_returns_a_copy() -> None:
    cat = load_catalogue()
    cat.loc[0, "name"] = "改坏"
    assert load_catalogue().loc[0, "name"] == "锅炉"


def test_top_categories_are_the_published_ones() -> None:
    cat = load_catalogue()
    top = cat[cat["level"] == "种类"]
    assert dict(zip(top["code"], top["name"], strict=True)) == PUBLISHED_TOP
    assert TOP_CATEGORIES == PUBLISHED_TOP
    assert list(TOP_CATEGORIES) == list(PUBLISHED_TOP)


def test_parents_exist_and_levels_nest() -> None:
    cat = load_catalogue().set_index("code")
    for code, row in cat.iterrows():
        if row["level"] == "种类":
            assert pd.isna(row["parent_code"]) and row["top_code"] == code
            continue
        parent = cat.loc[row["parent_code"]]
        if row["level"] == "类别":
            assert parent["level"] == "种类", code
        else:  # 品种 sit under a 类别, except the 安全附件 ones which hang off F000 itself
            assert parent["level"] == ("种类" if row["top_code"] == "F000" else "类别"), code


def test_top_code_follows_the_parent_chain() -> None:
    cat = load_catalogue().set_index("code")
    for code, row in cat.iterrows():
        top = code
        while pd.notna(cat.loc[top, "parent_code"]):
            top = cat.loc[top, "parent_code"]
        assert row["top_code"] == top, code
        assert row["top_code"] in TOP_CATEGORIES


def test_codes_share_their_top_prefix_except_safety_valve() -> None:
    cat = load_catalogue()
    odd = cat[cat["code"].str[0] != cat["top_code"].str[0]]
    assert odd["code"].tolist() == ["7310"]  # 安全阀 keeps its 7xxx code under F000


def test_aliases_point_into_the_catalogue_and_shadow_nothing() -> None:
    cat = load_catalogue()
    assert set(ALIASES.values()) <= set(cat["code"])
    assert not set(ALIASES) & set(cat["name"])


# --- resolution -----------------------------------------------------------------------


@pytest.mark.parametrize(("code", "name"), PUBLISHED_TOP.items())
def test_top_level_by_code_and_name(code: str, name: str) -> None:
    assert_resolves(code, code, code)
    assert_resolves(name, code, code)
    assert category_name(code) == name


@pytest.mark.parametrize(("code", "name", "top"), SAMPLES)
def test_classes_and_varieties_by_code_and_name(code: str, name: str, top: str) -> None:
    assert_resolves(code, code, top)
    assert_resolves(name, code, top)
    assert category_name(code) == name


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (" 3110 ", "3110"),
        ("3110.0", "3110"),
        ("３１１０", "3110"),
        ("\u30003110\u3000", "3110"),
        (3110, "3110"),
        (3110.0, "3110"),
        (np.int64(3110), "3110"),
        ("f000", "F000"),
        ("23t0", "23T0"),
        ("６ｄ１０", "6D10"),
        ("  电梯 ", "3000"),
        ("场(厂)内专用机动车辆", "5000"),
        ("场（厂）内专用机动车辆", "5000"),
        ("特种气瓶(内装填料气瓶、纤维缠绕气瓶、低温绝热气瓶)", "23T0"),
    ],
)
def test_format_variants(value: object, code: str) -> None:
    assert resolve(value)["category_code"].iloc[0] == code


@pytest.mark.parametrize(
    ("value", "code", "top"),
    [
        ("叉车", "5110", "5000"),
        ("扶梯", "3310", "3000"),
        ("游乐设施", "6000", "6000"),
        ("索道", "9000", "9000"),
        ("气瓶", "2300", "2000"),
        ("压力管道", "8000", "8000"),
        ("场车", "5000", "5000"),
        ("观光车", "5200", "5000"),
        ("立体车库", "4D00", "4000"),
    ],
)
def test_aliases_and_short_names(value: str, code: str, top: str) -> None:
    assert_resolves(value, code, top)


@pytest.mark.parametrize(
    "value", ["9999", "电梯X", "", "   ", None, np.nan, pd.NA, "3111", "3110.5", "nan", "31"]
)
def test_unknown_and_empty_give_na(value: object) -> None:
    row = resolve(value).iloc[0]
    assert pd.isna(row["category_code"]) and pd.isna(row["category"])


def test_output_is_index_aligned_string_columns() -> None:
    values = pd.Series(["电梯", None, "4110", "x"], index=[10, 3, 7, 5])
    out = resolve_categories(values)
    assert out.index.equals(values.index)
    assert list(out.columns) == ["category_code", "category"]
    assert (out.dtypes == "string").all()
    assert out["category_code"].tolist() == ["3000", pd.NA, "4110", pd.NA]
    assert out["category"].tolist() == ["3000", pd.NA, "4000", pd.NA]


def test_string_categorical_and_empty_inputs() -> None:
    as_string = resolve_categories(pd.Series(["3110", pd.NA], dtype="string"))
    assert as_string["category"].tolist() == ["3000", pd.NA]
    as_category = resolve_categories(pd.Series(["锅炉", "锅炉", "f000"], dtype="category"))
    assert as_category["category"].tolist() == ["1000", "1000", "F000"]
    empty = resolve_categories(pd.Series([], dtype=object))
    assert empty.empty and list(empty.columns) == ["category_code", "category"]


def test_category_name_unknown() -> None:
    assert category_name("电梯") == "电梯"
    assert category_name("扶梯") == "自动扶梯"
    assert category_name("9999", default="未知") == "未知"
    with pytest.raises(KeyError):
        category_name("9999")


def test_many_rows_resolve_as_their_distinct_values() -> None:
    """A column resolves as each of its values does (its speed at 100k rows:
    ``python -m benchmarks.kernels``)."""
    rng = np.random.default_rng(0)
    pool = np.array(
        [*load_catalogue()["code"], *load_catalogue()["name"], " 3110 ", "3110.0", "扶梯",
         "未知设备", "", None, *[f"{i:04d}" for i in range(1000)]],
        dtype=object,
    )
    picks = rng.integers(0, len(pool), 5_000)
    values = pd.Series(pool[picks])
    per_value = resolve_categories(pd.Series(pool))
    out = resolve_categories(values)
    expected = per_value["category_code"].to_numpy()[picks]
    assert out["category_code"].equals(pd.Series(expected, dtype="string"))


def test_the_top_category_is_the_catalogues_not_the_first_character():
    """7310 安全阀 belongs to F000 安全附件 in the catalogue, whatever its first digit says;
    a code the catalogue lacks has no top category."""
    codes = pd.Series(["3110", "7310", "7320", "F220", "4D00", None, "7999"], dtype="string")
    top = top_codes(codes)
    assert top[:5].tolist() == ["3000", "F000", "7000", "F000", "4000"]
    assert top[5:].isna().all()
    catalogue = load_catalogue()
    every = top_codes(catalogue["code"])
    assert every.tolist() == catalogue["top_code"].tolist()
