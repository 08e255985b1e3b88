"""Readings, normalised forms and romaji keys (search.readings), on the real analyser."""

from __future__ import annotations

import pytest

from archive.records import Record
from search.readings import (
    hepburn,
    normalized,
    reading,
    record_readings,
    romaji_key,
    romaji_keys,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("九谷焼", "クタニヤキ"),
        ("泉鏡花", "イズミキョウカ"),
        ("大樋", "オオヒ"),
        ("訪問着", "ホウモンギ"),
    ],
)
def test_readings_from_the_dictionary(text, expected):
    assert reading(text) == expected


def test_no_reading_for_text_without_japanese():
    assert reading("Tea bowl") == "" and reading("") == "" and romaji_keys("Tea bowl") == []


@pytest.mark.parametrize(
    ("variants", "form"),
    [(("やきもの", "焼物", "焼き物", "焼きもの"), "焼き物"), (("附属", "付属", "附屬"), "付属")],
)
def test_spelling_variants_share_one_normalised_form(variants, form):
    assert {normalized(v) for v in variants} == {form}


@pytest.mark.parametrize(
    ("kana", "romaji"),
    [
        ("キョウカ", "kyouka"),
        ("マッチャ", "matcha"),
        ("シンブン", "shinbun"),
        ("ラーメン", "raamen"),
        ("ちゃわん", "chawan"),
        ("じゅう", "juu"),
        ("ザッシ", "zasshi"),
    ],
)
def test_hepburn(kana, romaji):
    assert hepburn(kana) == romaji


@pytest.mark.parametrize(
    "spellings",
    [
        ("kyoka", "kyouka", "kyooka", "Kyōka", "kyôka", "KYOHKA"),
        ("shinbun", "shimbun", "sinbun"),
        ("chawan", "tyawan", "CHAWAN"),
        ("tsuzumi", "tuzumi"),
        ("fuji", "huzi", "Fuji"),
        ("matcha", "mattya"),
        ("yuzen", "yuuzen", "Yūzen"),
        ("ohi", "oohi", "Ōhi"),
        ("noh", "no", "nou", "nō"),
    ],
)
def test_romaji_spellings_share_one_key(spellings):
    assert len({romaji_key(s) for s in spellings}) == 1, [romaji_key(s) for s in spellings]


def test_romaji_keys_of_words_parts_and_runs():
    assert romaji_keys("泉鏡花") == ["izumikyoka", "izumi", "kyoka"]
    assert "ohiyaki" in romaji_keys("大樋焼") and "ohi" in romaji_keys("大樋焼")
    assert romaji_keys("焼き物の陶片") == ["yakimono", "tohen"]  # の has no key


def test_record_readings_say_where_each_came_from():
    record = Record(
        id="x_1",
        institution="x",
        local_id="1",
        fields={
            "title": "黒楽茶碗",
            "title_kana": "くろらくちゃわん",
            "creator": "長次郎",
            "material": "陶器",
            "keywords": ["茶道具", "楽焼"],
            "object_type": "Tea bowl",
        },
    )
    assert record_readings(record) == {
        "title": {"reading": "くろらくちゃわん", "source": "curator"},
        "creator": {"reading": "チョウジロウ", "source": "sudachi"},
        "keywords": {"reading": "チャドウグ　ラクヤキ", "source": "sudachi"},
        "material": {"reading": "トウキ", "source": "sudachi"},
    }
