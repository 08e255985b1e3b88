"""Folding, tokens and the query language: the rules both backends share."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archive.errors import BadRequest
from search.highlight import highlight
from search.query import parse
from search.text import fold, fold_with_map, load_variants, query_tokens, tokens


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("ｶﾀｶﾅ", "かたかな"),
        ("ｶﾞｯｺｳ", "がっこう"),
        ("ＡＢＣ", "abc"),
        ("カタカナ", "かたかな"),
        ("國學", "国学"),
        ("櫻", "桜"),
        ("藝術", "芸術"),
        ("圖", "図"),
        ("髙", "高"),
        ("﨑", "崎"),
        ("Tōkyō", "tokyo"),
        ("LACQUER", "lacquer"),
        ("が", "が"),
        ("ヴ", "ゔ"),
    ],
)
def test_fold(text, folded):
    assert fold(text) == folded


def test_every_variant_folds_to_its_new_form_and_no_new_form_moves_again():
    variants = load_variants()
    assert len(variants) >= 350
    for old, new in variants.items():
        assert fold(old) == fold(new) == new


def test_fold_with_map_points_back_into_the_original():
    folded, where = fold_with_map("ｶﾞ國Ａ")
    assert folded == "が国a"
    assert where == [0, 2, 3]


def test_tokens_are_bigrams_with_a_closing_unigram_and_stems():
    assert tokens(fold("金箔押 Lacquered boxes")) == ["金箔", "箔押", "押", "lacquer", "box"]
    assert tokens("刀") == ["刀"]


def test_query_tokens():
    assert query_tokens("金箔") == (["金箔"], False)
    assert query_tokens("刀") == (["刀"], True)
    assert query_tokens("金箔押") == (["金箔", "箔押"], False)


def test_parse_quotes_fields_and_exclusions():
    clauses = parse("「金箔 押」 creator:正宗 -刀 ＴＩＴＬＥ：茶碗 https://x.jp")
    assert [(c.text, c.phrase, c.negate, c.fields) for c in clauses] == [
        ("金箔 押", True, False, ()),
        ("正宗", False, False, ("creator",)),
        ("刀", False, True, ()),
        ("茶碗", False, False, ("title", "kana")),
        ("https://x.jp", False, False, ()),
    ]


def test_highlight_marks_original_characters():
    assert highlight("國寶 <b>", parse("国宝"), "title") == "<mark>國寶</mark> &lt;b&gt;"
    assert highlight("no match", parse("茶碗"), "title") is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_parse_either_parses_or_names_q(q):
    try:
        parse(q)
    except BadRequest as exc:
        assert exc.parameter == "q"
