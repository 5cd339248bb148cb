"""Every string a user reads names a plan as a regulator would: by number and title, with its
clause (data/plans.py), never by a file of ours or a "seed"."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import get_args

import pandas as pd
import pytest

from data.plans import HENAN, LEC, PLANS, SHAANXI, cite
from layers.campaigns import DEFAULT_CAMPAIGNS
from layers.labels import CODED_FIELDS, FIELD_LABELS, FIELD_MEANINGS, FIELD_UNITS
from layers.park_measures import DEFAULT_MEASURES
from layers.registry import ALL, LAYERS
from layers.rules import Rules
from service.draws import METHOD
from service.export import ExportFormat, field_descriptions, metadata
from service.geojson import OutputCrs
from service.worklist import CAMPAIGN_BASIS
from tests.servers import get

pytestmark = pytest.mark.reads_demo  # the demo test only reads the built demo

N = "一二三四五六七八九十"
CLAUSE = rf"[{N}]+（[{N}]+）"
# the two plans as data/plans.py names them, written out here rather than taken from it
HENAN_NAME = (r"豫市监办〔2021〕55号(?:《河南省2021年持续深化特种设备领域双重预防体系建设工作方案》"
              r"| )")
SHAANXI_NAME = r"陕西省《全省特种设备安全专项整治三年行动实施方案》"
CITATION = re.compile(rf"(?:{HENAN_NAME}|{SHAANXI_NAME})(?={CLAUSE})")
# a plan named in any other way
PLAN_WORDS = re.compile(r"豫市监办|专项整治三年行动|工作方案|实施方案|三年行动方案")
# our own names for the plans and their files
OURS = re.compile(r"seed|00[02]_[0-9a-f]|\.txt\b|domain\.md|\b00[02]\s*[一二三四]", re.IGNORECASE)
HALF_WIDTH_CLAUSE = re.compile(rf"[{N}]\([{N}]+\)")
BARE_CLAUSE = re.compile(CLAUSE)


def problems(text: str) -> list[str]:
    """What is wrong with how ``text`` cites a plan (nothing, for a string citing none)."""
    found = []
    if m := OURS.search(text):
        found.append(f"names our own file or seed ({m.group()!r})")
    if m := HALF_WIDTH_CLAUSE.search(text):
        found.append(f"a clause with half-width brackets ({m.group()!r})")
    if m := PLAN_WORDS.search(CITATION.sub("", text)):
        found.append(f"names a plan other than as data/plans.py cites it ({m.group()!r})")
    first = next(CITATION.finditer(text), None)
    if (m := BARE_CLAUSE.search(text)) and (first is None or m.start() < first.start()):
        found.append(f"a clause with no plan before it ({m.group()!r})")
    return found


def strings(value: object) -> Iterator[str]:
    """Every string in a (nested) value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, Iterable):
        for v in value:
            yield from strings(v)


def assert_cited_well(texts: Iterable[str], where: str) -> None:
    bad = {t: p for t in set(texts) if (p := problems(t))}
    assert not bad, f"{where}: " + "; ".join(f"{t!r}: {p}" for t, p in list(bad.items())[:5])


# the citation itself -----------------------------------------------------------------------

def test_cite_names_each_plan_by_number_or_title_and_clause():
    henan = "豫市监办〔2021〕55号《河南省2021年持续深化特种设备领域双重预防体系建设工作方案》"
    assert cite("henan", "二（四）") == henan + "二（四）"
    assert cite("henan", "二(四)", short=True) == "豫市监办〔2021〕55号 二（四）"
    assert cite("henan", "二（二）", "加大监督检查频次", short=True) == (
        "豫市监办〔2021〕55号 二（二）“加大监督检查频次”")
    shaanxi = "陕西省《全省特种设备安全专项整治三年行动实施方案》二（五）"
    assert cite("shaanxi", "二（五）") == cite("shaanxi", "二（五）", short=True) == shaanxi
    assert cite("shaanxi", "四（三）", "实施联合惩戒") == (
        "陕西省《全省特种设备安全专项整治三年行动实施方案》四（三）“实施联合惩戒”")
    for key in PLANS:
        for short in (False, True):
            text = cite(key, "三（二）", "x", short=short)
            assert CITATION.match(text) and not problems(text), text


def test_the_plans_scopes_and_full_names():
    assert (HENAN.province, HENAN.year_from, HENAN.year_to) == ("410000", 2021, None)
    assert (SHAANXI.province, SHAANXI.year_from, SHAANXI.year_to) == ("610000", 2020, 2022)
    assert HENAN.reference == ("河南省市场监督管理局《河南省2021年持续深化特种设备领域双重预防体系"
                               "建设工作方案》（豫市监办〔2021〕55号）")
    assert SHAANXI.reference == "陕西省《全省特种设备安全专项整治三年行动实施方案》（附件14）"
    assert HENAN.short == "豫市监办〔2021〕55号" and SHAANXI.number is None
    assert LEC == "作业条件危险性分析法（LEC）"


@pytest.mark.parametrize("clause", ["", "2(4)", "二（4）", "seed 002 二(四)", "二（四）x"])
def test_cite_refuses_what_is_not_a_clause_or_a_plan(clause: str):
    with pytest.raises(ValueError):
        cite("henan", clause)
    with pytest.raises(KeyError):
        cite("002", "二（四）")


@pytest.mark.parametrize("text", [
    "seed 002 二(四)", "002 二（四）", "豫市监办〔2021〕55号二（四）", "二（四）“一园一策”",
    "特种设备安全专项整治三年行动实施方案 二（五）", "见 domain.md LEC",
    "豫市监办〔2021〕55号 二(四)",
    "《河南省2021年持续深化特种设备领域双重预防体系建设工作方案》二（四）",
])
def test_the_check_catches_the_old_ways(text: str):
    assert problems(text)


# what the code says ------------------------------------------------------------------------

def test_layer_catalogue_titles_sources_and_fields_cite_plans():
    texts = []
    for spec in ALL.values():
        texts += [spec.title, spec.short_title, spec.description, spec.source,
                  *spec.field_labels.values(), *spec.field_meanings.values()]
    texts += [*strings(FIELD_LABELS), *strings(FIELD_MEANINGS), *strings(FIELD_UNITS),
              *strings(CODED_FIELDS)]
    assert_cited_well(texts, "layer registry and labels")
    for spec in LAYERS.values():  # every map layer says where its rule comes from
        assert CITATION.search(spec.source), spec.id
    assert ALL["equipment"].source.startswith(LEC)


def test_every_rule_and_its_basis_cites_plans():
    rules = Rules()
    assert_cited_well(strings(rules.model_dump(mode="json")), "rules")
    bases = [m.basis for m in rules.parks.measures]
    assert bases == [m.basis for m in DEFAULT_MEASURES]
    for basis in bases:
        assert CITATION.match(basis), basis


def test_export_field_descriptions_and_metadata_cite_plans():
    class NoBuild:  # metadata asks the store only for its build
        def layer_build(self) -> None:
            return None

    texts = []
    for spec in ALL.values():
        for crs in get_args(OutputCrs):
            meta = metadata(NoBuild(), spec, crs, (), 0, "gpkg")  # type: ignore[arg-type]
            texts += strings(meta)
            for fmt in get_args(ExportFormat):
                texts += strings(field_descriptions(spec, crs, fmt))
    assert_cited_well(texts, "export metadata")
    meta = metadata(NoBuild(), ALL["units"], "EPSG:4490", ())  # type: ignore[arg-type]
    assert meta["source"].startswith("riskmap 图层（豫市监办〔2021〕55号《河南省2021年持续深化"
                                     "特种设备领域双重预防体系建设工作方案》二（四）")


def test_worklist_and_draw_texts_cite_plans():
    assert_cited_well([*(c.text for c in DEFAULT_CAMPAIGNS), CAMPAIGN_BASIS, METHOD],
                      "worklist and draws")
    assert CITATION.match(CAMPAIGN_BASIS) and "二（一）" in CAMPAIGN_BASIS
    assert "豫市监办〔2021〕55号 三（二）" in METHOD


# what the built demo says ------------------------------------------------------------------

@pytest.mark.slow
def test_the_built_demo_layers_catalogue_and_worklist_cite_plans(api):
    from service.store import open_store

    with open_store(api["url"]) as store:
        for spec in ALL.values():
            frame = store.read_layer(spec.id)
            texts = []
            for column in frame.columns:
                if column != "geometry" and (frame[column].dtype == object
                                             or pd.api.types.is_string_dtype(frame[column])):
                    texts += [v for v in frame[column].dropna().unique() if isinstance(v, str)]
            assert_cited_well(texts, f"layer {spec.id}")
            assert_cited_well(strings(metadata(store, spec, "EPSG:4326", ())),
                              f"export metadata of {spec.id}")
    catalogue = get(api, "admin", "/api/layers")
    assert catalogue.status_code == 200
    assert_cited_well(strings(catalogue.json()), "layer catalogue")
    sources = {layer["id"]: layer["source"] for layer in catalogue.json()["layers"]}
    assert CITATION.search(sources["insurance"]) and CITATION.search(sources["frequency"])
    worklist = get(api, "admin", "/api/worklist", today="2026-09-15")  # an 应急演练月
    assert worklist.status_code == 200
    items = worklist.json()["items"]
    assert_cited_well([i["reason"] for i in items if i["reason"]], "worklist")
    # the calendar is Shaanxi's, 2020–2022: the Henan demo gets no campaign task
    assert not [i for i in items if i["kind"] == "campaign"]
    assert all(c.basis == CAMPAIGN_BASIS for c in DEFAULT_CAMPAIGNS)
