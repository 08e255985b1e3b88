"""Japanese museum dates to year ranges: a table, as curators write them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.dates import ERA_SPANS, kanji_number, normalise_date

CASES = [
    # Western years, decades, centuries, ranges
    ("1895", 1895, 1895, "明治時代"),
    ("1895年", 1895, 1895, "明治時代"),
    ("１８９５年", 1895, 1895, "明治時代"),
    ("1895年3月12日", 1895, 1895, "明治時代"),
    ("1895-03-12", 1895, 1895, "明治時代"),
    ("1895/3/12", 1895, 1895, "明治時代"),
    ("1900年頃", 1900, 1900, "明治時代"),
    ("c. 1900", 1900, 1900, "明治時代"),
    ("1850?", 1850, 1850, "江戸時代"),
    ("1890年代", 1890, 1899, "明治時代"),
    ("1960s", 1960, 1969, "昭和時代"),
    ("19世紀", 1801, 1900, "江戸時代"),
    ("十九世紀", 1801, 1900, "江戸時代"),
    ("19世紀後半", 1851, 1900, "明治時代"),
    ("18世紀末〜19世紀初頭", 1781, 1820, "江戸時代"),
    ("紀元前3世紀", -300, -201, "弥生時代"),
    ("1895-1900", 1895, 1900, "明治時代"),
    ("1820～30年", 1820, 1830, "江戸時代"),
    ("1890～1910年代", 1890, 1919, "明治時代"),
    # Era names with years, Arabic and kanji numerals, the first year, months and days
    ("明治10年", 1877, 1877, "明治時代"),
    ("明治１０年", 1877, 1877, "明治時代"),
    ("寛政三年", 1791, 1791, "江戸時代"),
    ("天保十二年", 1841, 1841, "江戸時代"),
    ("令和元年", 2019, 2019, "令和時代"),
    ("平成31年", 2019, 2019, "平成時代"),
    ("永仁元年十月三日", 1293, 1293, "鎌倉時代"),
    ("大正12年9月1日", 1923, 1923, "大正時代"),
    ("天正十八年", 1590, 1590, "安土桃山時代"),
    ("天平勝宝四年", 752, 752, "奈良時代"),
    ("明治10年（1877）", 1877, 1877, "明治時代"),
    ("嘉永7年（安政元年）", 1854, 1854, "江戸時代"),
    ("慶応4年/明治元年", 1868, 1868, "明治時代"),
    ("明治10～20年", 1877, 1887, "明治時代"),
    ("明治10年～20年", 1877, 1887, "明治時代"),
    ("昭和30年代", 1955, 1964, "昭和時代"),
    ("昭和20年代後半", 1950, 1954, "昭和時代"),
    ("昭和初期", 1926, 1946, "昭和時代"),
    ("明治", 1868, 1912, "明治時代"),
    ("天保年間", 1830, 1844, "江戸時代"),
    ("元禄年間頃", 1688, 1704, "江戸時代"),
    ("文化・文政期", 1804, 1830, "江戸時代"),
    # Historical periods, with and without 時代, with a part
    ("江戸時代", 1603, 1867, "江戸時代"),
    ("江戸時代後期", 1779, 1867, "江戸時代"),
    ("江戸後期", 1779, 1867, "江戸時代"),
    ("江戸時代中期〜後期", 1691, 1867, "江戸時代"),
    ("桃山時代", 1573, 1615, "安土桃山時代"),
    ("室町時代", 1336, 1573, "室町時代"),
    ("鎌倉～室町時代", 1185, 1573, "鎌倉時代"),
    ("平安時代末期", 1106, 1184, "平安時代"),
    ("縄文時代", -14000, -301, "縄文時代"),
    ("弥生時代後期", 66, 249, "弥生時代"),
    ("古墳時代", 250, 591, "古墳時代"),
]

NOT_DATES = ["", "   ", "不明", "年代不詳", "明治50年", "江戸時代?後期?不明", "abc", "30世紀"]


@pytest.mark.parametrize(("text", "start", "end", "era"), CASES, ids=[c[0] for c in CASES])
def test_date_table(text: str, start: int, end: int, era: str) -> None:
    result = normalise_date(text)
    assert result is not None, text
    assert (result.start, result.end, result.era) == (start, end, era)


def test_table_is_big_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("text", NOT_DATES)
def test_not_understood_gives_none(text: str) -> None:
    assert normalise_date(text) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("元", 1),
        ("三", 3),
        ("十", 10),
        ("二十五", 25),
        ("千八百九十五", 1895),
        ("一八九五", 1895),
        ("12", 12),
    ],
)
def test_kanji_numbers(text: str, value: int) -> None:
    assert kanji_number(text) == value


def test_every_era_first_year() -> None:
    for era, (start, end) in ERA_SPANS.items():
        result = normalise_date(f"{era}元年")
        assert result is not None and result.start == start, era
        assert end is None or start <= end, era


@given(st.text(max_size=30))
def test_never_raises(text: str) -> None:
    result = normalise_date(text)
    assert result is None or result.start <= result.end
