"""The search contract, as one suite every backend subclass runs (Wagtail's BackendTests).

A subclass provides a ``backend`` fixture: an empty backend of its kind. The corpus
below is small and made for the contract: each record exists to prove one behaviour.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archive.errors import BadRequest
from archive.records import ImageRef, Institution, Record
from search.base import FACETS, SearchBackend, SearchQuery

INC = "http://rightsstatements.org/vocab/InC/1.0/"
CC0 = "https://creativecommons.org/publicdomain/zero/1.0/"

INSTITUTIONS = {
    "craft": Institution(id="craft", name={"ja": "工芸館", "en": "Craft Museum"}, rights=INC),
    "noh": Institution(id="noh", name={"ja": "能楽美術館", "en": "Noh Museum"}, rights=CC0),
    "kaga": Institution(id="kaga", name={"ja": "加賀郷土館", "en": "Kaga Folk Museum"}, rights=CC0),
}


def rec(
    inst: str,
    local: str,
    *,
    public: bool = True,
    images: int = 1,
    era: str | None = None,
    start: int | None = None,
    end: int | None = None,
    rights: str = "",
    created: str = "2025-01-01T00:00:00Z",
    extra: list | None = None,
    **fields,
) -> Record:
    record_id = f"{inst}_{local}"
    return Record(
        id=record_id,
        institution=inst,
        local_id=local,
        fields=fields,
        public=public,
        rights=rights or INSTITUTIONS[inst].rights,
        date_start=start,
        date_end=end,
        era=era,
        images=[
            ImageRef(id=f"{record_id}~{i:010x}", source=f"{local}-{i}.jpg") for i in range(images)
        ],
        created_at=created,
        updated_at=created,
        extra=extra or [],
    )


def corpus() -> list[Record]:
    return [
        rec(
            "craft",
            "C-1",
            title="黒楽茶碗",
            title_kana="くろらくちゃわん",
            title_en="Black Raku tea bowl",
            creator="長次郎",
            object_type="茶碗",
            material="陶器",
            description="利休好みの黒楽茶碗。",
            era="桃山時代",
            start=1580,
            end=1590,
            created="2025-01-03T00:00:00Z",
        ),
        rec(
            "craft",
            "C-2",
            title="金箔押蒔絵硯箱",
            title_kana="きんぱくおしまきえすずりばこ",
            title_en="Writing box with gold leaf",
            object_type="硯箱",
            material="漆・金箔",
            description="Lacquered wood box decorated with gold leaf.",
            era="江戸時代",
            start=1700,
            end=1750,
            keywords=["蒔絵", "金箔"],
            created="2025-01-05T00:00:00Z",
        ),
        rec(
            "craft",
            "C-3",
            title="漆塗盆",
            title_en="Lacquer trays",
            material="漆",
            object_type="盆",
            description="Two lacquers trays, red and black.",
            era="明治時代",
            start=1880,
            end=1895,
            images=0,
            created="2025-01-02T00:00:00Z",
        ),
        rec(
            "craft",
            "C-4",
            title="國寶 太刀",
            title_en="Long sword (National Treasure)",
            creator="正宗",
            object_type="刀剣",
            material="鋼",
            era="鎌倉時代",
            start=1300,
            end=1330,
            keywords=["刀", "國寶"],
            created="2025-01-04T00:00:00Z",
        ),
        rec(
            "craft",
            "C-5",
            title="櫻圖屏風",
            title_kana="さくらずびょうぶ",
            title_en="Cherry blossom screens",
            object_type="屏風",
            material="紙本金地著色",
            creator="髙橋 﨑之助",
            era="江戸時代",
            start=1650,
            end=1680,
            description="<b>桜</b> & 金雲",
            created="2025-01-01T00:00:00Z",
        ),
        rec("craft", "C-6", title="秘密の茶碗", public=False, object_type="茶碗"),
        rec(
            "noh",
            "N-1",
            title="能面 小面",
            title_kana="のうめん こおもて",
            title_en="Noh mask Ko-omote",
            object_type="能面",
            material="木造彩色",
            creator="出目満照",
            era="江戸時代",
            start=1600,
            end=1650,
            rights=CC0,
            created="2025-02-01T00:00:00Z",
            extra=[["旧蔵", "加賀藩前田家"]],
        ),
        rec(
            "noh",
            "N-2",
            title="唐織 紅地花文様",
            title_kana="からおり べにじはなもんよう",
            title_en="Karaori costume",
            object_type="能装束",
            material="絹",
            era="江戸時代",
            start=1750,
            end=1800,
            description="カタカナ表記のテスト: ｶﾗｵﾘ 装束",
            rights=CC0,
            created="2025-02-02T00:00:00Z",
        ),
        rec(
            "noh",
            "N-3",
            title="謡本 羽衣",
            title_kana="うたいぼん はごろも",
            title_en="Noh chant book",
            object_type="謡本",
            material="紙",
            era="明治時代",
            start=1890,
            end=1890,
            description="學藝の資料。ＡＢＣ全角",
            rights=CC0,
            created="2025-02-03T00:00:00Z",
        ),
    ]


def japanese_only() -> list[Record]:
    """Records as many institutions export them: Japanese only, no readings, no English."""
    return [
        rec("kaga", "K-1", title="九谷焼 色絵花鳥文大皿", object_type="皿", material="磁器"),
        rec("kaga", "K-2", title="加賀友禅 訪問着", object_type="染織", material="絹"),
        rec("kaga", "K-3", title="草稿", creator="泉鏡花", object_type="原稿", material="紙"),
        rec("kaga", "K-4", title="大樋焼 飴釉茶碗", object_type="茶碗", material="陶器"),
        rec("kaga", "K-5", title="象嵌 香炉", object_type="香炉", material="銅"),
        rec("kaga", "K-6", title="焼き物の陶片", object_type="陶片"),
        rec("kaga", "K-7", title="付属品 一式", object_type="附属品"),
    ]


PUBLIC_IDS = {r.id for r in corpus() if r.public}


def ids(result) -> list[str]:
    return [hit.id for hit in result.hits]


class BackendContract:
    """Subclass with a ``backend`` fixture returning an empty backend; ``indexed`` fills it."""

    @pytest.fixture
    def indexed(self, backend: SearchBackend) -> SearchBackend:
        backend.index(corpus(), INSTITUTIONS)
        return backend

    def find(self, backend: SearchBackend, q: str, semantic: bool = False, **kw) -> set[str]:
        """What the text matches (``semantic``: plus what the hybrid ranking adds)."""
        return set(ids(backend.search(SearchQuery(q=q, size=100, semantic=semantic, **kw))))

    # -- basics --------------------------------------------------------------------------
    def test_empty_query_lists_every_public_record(self, indexed):
        result = indexed.search(SearchQuery(q="", size=100))
        assert result.total == len(PUBLIC_IDS)
        assert set(ids(result)) == PUBLIC_IDS
        assert indexed.count() == len(PUBLIC_IDS)

    def test_non_public_records_are_never_found(self, indexed):
        assert self.find(indexed, "秘密") == set()
        assert "craft_C-6" not in self.find(indexed, "茶碗")

    def test_words_are_anded(self, indexed):
        assert self.find(indexed, "茶碗 長次郎") == {"craft_C-1"}
        assert self.find(indexed, "茶碗 正宗") == set()

    def test_exclusion(self, indexed):
        assert self.find(indexed, "江戸時代 -屏風") == {"craft_C-2", "noh_N-1", "noh_N-2"}

    def test_quoted_phrase(self, indexed):
        assert self.find(indexed, '"gold leaf"') == {"craft_C-2"}
        assert self.find(indexed, '"leaf gold"') == set()

    def test_field_filter_in_query(self, indexed):
        assert self.find(indexed, "creator:正宗") == {"craft_C-4"}
        assert self.find(indexed, "title:金箔") == {"craft_C-2"}
        assert self.find(indexed, "material:金箔") == {"craft_C-2"}
        assert self.find(indexed, "description:茶碗") == {"craft_C-1"}

    # -- Japanese ------------------------------------------------------------------------
    def test_one_character_query(self, indexed):
        assert self.find(indexed, "刀") == {"craft_C-4"}
        assert self.find(indexed, "漆") == {"craft_C-2", "craft_C-3"}

    def test_two_character_queries(self, indexed):
        assert self.find(indexed, "茶碗") == {"craft_C-1"}
        assert self.find(indexed, "屏風") == {"craft_C-5"}
        assert self.find(indexed, "金箔") == {"craft_C-2"}

    def test_bigrams_do_not_match_across_characters_apart(self, indexed):
        # 金 and 地 both occur in 紙本金地著色 and 金雲, but only C-5 has them adjacent.
        assert self.find(indexed, "金地") == {"craft_C-5"}
        assert self.find(indexed, "箔蒔") == set()

    def test_width_folding(self, indexed):
        assert self.find(indexed, "ｶﾗｵﾘ") == {"noh_N-2"}
        assert self.find(indexed, "abc全角") == {"noh_N-3"}
        assert self.find(indexed, "ＫＡＲＡＯＲＩ") == {"noh_N-2"}

    def test_hiragana_and_katakana_find_each_other(self, indexed):
        assert self.find(indexed, "かたかな") == {"noh_N-2"}
        assert self.find(indexed, "カラオリ") == {"noh_N-2"}

    def test_kana_query_finds_the_reading(self, indexed):
        assert self.find(indexed, "ちゃわん") == {"craft_C-1"}
        assert self.find(indexed, "チャワン") == {"craft_C-1"}
        assert self.find(indexed, "はごろも") == {"noh_N-3"}

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("国宝", "craft_C-4"),
            ("國寶", "craft_C-4"),
            ("桜図", "craft_C-5"),
            ("学芸", "noh_N-3"),
            ("學藝", "noh_N-3"),
            ("高橋", "craft_C-5"),
            ("崎之助", "craft_C-5"),
        ],
    )
    def test_old_and_new_kanji_forms(self, indexed, query, expected):
        assert expected in self.find(indexed, query)

    # -- readings, romaji and spelling variants (no reading or English in the records) -----
    @pytest.fixture
    def japanese(self, backend: SearchBackend) -> SearchBackend:
        backend.index(corpus() + japanese_only(), INSTITUTIONS)
        return backend

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("くたにやき", "kaga_K-1"),
            ("クタニヤキ", "kaga_K-1"),
            ("ｸﾀﾆﾔｷ", "kaga_K-1"),
            ("くたに", "kaga_K-1"),
            ("いずみきょうか", "kaga_K-3"),
            ("ゆうぜん", "kaga_K-2"),
            ("おおひ", "kaga_K-4"),
            ("ぞうがん", "kaga_K-5"),
        ],
    )
    def test_kana_finds_the_analysers_reading(self, japanese, query, expected):
        assert expected in self.find(japanese, query)

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("kutani", "kaga_K-1"),
            ("Kutani-yaki", "kaga_K-1"),
            ("KUTANI", "kaga_K-1"),
            ("yuzen", "kaga_K-2"),
            ("yuuzen", "kaga_K-2"),
            ("Yūzen", "kaga_K-2"),
            ("izumi kyoka", "kaga_K-3"),
            ("Izumi Kyōka", "kaga_K-3"),
            ("izumi kyouka", "kaga_K-3"),
            ("izumi kyooka", "kaga_K-3"),
            ("zogan", "kaga_K-5"),
            ("zougan", "kaga_K-5"),
            ("Ōhi", "kaga_K-4"),
            ("ohi", "kaga_K-4"),
            ("oohi", "kaga_K-4"),
            ("ohiyaki", "kaga_K-4"),
            ("chawan", "kaga_K-4"),
            ("tyawan", "kaga_K-4"),
            ("homongi", "kaga_K-2"),  # 訪問着
        ],
    )
    def test_romaji_finds_the_reading_in_any_spelling(self, japanese, query, expected):
        assert expected in self.find(japanese, query)

    def test_romaji_is_a_word_prefix_not_any_substring(self, japanese):
        assert "kaga_K-1" not in self.find(japanese, "tani")
        assert "kaga_K-3" not in self.find(japanese, "zumi")

    def test_curators_reading_wins_over_the_analysers(self, japanese):
        # Sudachi reads 黒楽 as コクラク; the curator wrote くろらくちゃわん.
        assert "craft_C-1" in self.find(japanese, "kuroraku")
        assert "craft_C-1" in self.find(japanese, "くろらく")
        assert "craft_C-1" not in self.find(japanese, "kokuraku")
        assert "craft_C-1" not in self.find(japanese, "こくらく")

    @pytest.mark.parametrize("query", ["焼物", "やきもの", "焼き物", "焼きもの"])
    def test_spelling_variants_fold_to_one_form(self, japanese, query):
        assert "kaga_K-6" in self.find(japanese, query)

    @pytest.mark.parametrize("query", ["附属", "付属"])
    def test_old_and_new_spellings_of_a_word(self, japanese, query):
        assert self.find(japanese, query) >= {"kaga_K-7"}

    def test_quoted_phrases_are_not_widened(self, japanese):
        assert "kaga_K-6" not in self.find(japanese, '"焼物"')
        assert "kaga_K-1" not in self.find(japanese, '"kutani"')
        assert "kaga_K-1" not in self.find(japanese, "title:kutani")

    # -- meaning across languages (hybrid ranking) -------------------------------------
    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("tea bowl", "kaga_K-4"),
            ("folding screen", "craft_C-5"),
            ("着物", "kaga_K-2"),
        ],
    )
    def test_meaning_finds_records_the_words_miss(self, japanese, query, expected):
        assert expected not in self.find(japanese, query)
        assert expected in self.find(japanese, query, semantic=True)

    def test_hybrid_is_the_default_and_keeps_text_matches_first(self, japanese):
        result = japanese.search(SearchQuery(q="tea bowl", size=100))
        assert ids(result)[0] == "craft_C-1"  # the record that says "tea bowl"
        assert result.total == len(ids(result)) > 1

    def test_meaning_never_widens_phrases_fields_or_filters(self, japanese):
        assert self.find(japanese, '"tea bowl"', semantic=True) == {"craft_C-1"}
        assert self.find(japanese, "title:bowl", semantic=True) == {"craft_C-1"}
        found = self.find(japanese, "tea bowl", semantic=True, filters={"institution": ("noh",)})
        assert found <= {"noh_N-1", "noh_N-2", "noh_N-3"}
        assert "kaga_K-4" not in self.find(japanese, "tea bowl -大樋焼", semantic=True)

    @pytest.mark.parametrize(("limit", "counted"), [(1, 1), (1, 5000), (100, 5000)])
    @pytest.mark.parametrize("q", ["tea bowl", "茶碗", "江戸"])
    def test_added_neighbours_count_in_the_total_and_facets(
        self, japanese, monkeypatch, q, limit, counted
    ):
        # Both backends cut each facet to FACET_LIMIT values; the cluster counts up to
        # FACET_COUNTED values of the text matches, then the neighbours'. At 1, their values
        # are mostly beyond the text matches' first bucket (茶碗: the text finds one kaga
        # and one craft record, craft comes first, and the neighbours are kaga).
        monkeypatch.setattr("search.sqlite_fts.FACET_LIMIT", limit)
        monkeypatch.setattr("search.cluster_requests.FACET_LIMIT", limit)
        monkeypatch.setattr("search.cluster_requests.FACET_COUNTED", counted)
        text_only = japanese.search(SearchQuery(q=q, size=100, semantic=False))
        result = japanese.search(SearchQuery(q=q, size=100))
        assert result.total == len(ids(result)) > text_only.total
        records = {r.id: r for r in corpus() + japanese_only()}
        for name, value_of in (
            ("institution", lambda r: r.institution),
            ("object_type", lambda r: r.get("object_type")),
        ):
            counts = Counter(value_of(records[i]) for i in ids(result))
            counts.pop(None, None)
            expected = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
            assert result.facets[name] == expected, name

    def test_meaning_never_finds_non_public_records(self, japanese):
        assert "craft_C-6" not in self.find(japanese, "秘密の茶碗", semantic=True)

    def test_similar_objects_are_public_and_nearest_first(self, japanese):
        near = japanese.similar("kaga_K-4", limit=5)  # 大樋焼 飴釉茶碗
        assert len(near) == 5 and "kaga_K-4" not in near
        assert "craft_C-6" not in japanese.similar("craft_C-1", limit=50)
        assert set(japanese.similar("craft_C-1", limit=50)) == (
            {r.id for r in corpus() + japanese_only() if r.public} - {"craft_C-1"}
        )
        assert japanese.similar("craft_C-6") == [] and japanese.similar("no_such") == []

    def test_similar_objects_follow_meaning(self, japanese):
        assert japanese.similar("noh_N-1", limit=1) != []
        assert japanese.similar("kaga_K-4", limit=3)[0] in {"craft_C-1", "kaga_K-6", "kaga_K-1"}

    # -- English -------------------------------------------------------------------------
    @pytest.mark.parametrize("query", ["lacquer", "Lacquered", "LACQUERS"])
    def test_english_case_and_stemming(self, indexed, query):
        assert self.find(indexed, query) == {"craft_C-2", "craft_C-3"}

    def test_english_title(self, indexed):
        assert self.find(indexed, "screen") == {"craft_C-5"}

    # -- filters, dates, facets ----------------------------------------------------------
    def test_institution_filter(self, indexed):
        result = indexed.search(SearchQuery(q="", filters={"institution": ("noh",)}, size=100))
        assert set(ids(result)) == {"noh_N-1", "noh_N-2", "noh_N-3"}

    def test_filters_or_within_and_across(self, indexed):
        found = self.find(
            indexed, "", filters={"era": ("江戸時代", "明治時代"), "institution": ("craft",)}
        )
        assert found == {"craft_C-2", "craft_C-3", "craft_C-5"}

    def test_has_images_and_century_filters(self, indexed):
        assert self.find(indexed, "", filters={"has_images": ("false",)}) == {"craft_C-3"}
        assert self.find(indexed, "", filters={"century": ("19",)}) == {"craft_C-3", "noh_N-3"}

    def test_date_range_overlaps(self, indexed):
        found = self.find(indexed, "", year_from=1590, year_to=1650)
        assert found == {"craft_C-1", "craft_C-5", "noh_N-1"}

    def test_facets_have_counts_most_frequent_first(self, indexed):
        result = indexed.search(SearchQuery(q=""))
        assert set(result.facets) == set(FACETS)
        assert result.facets["institution"] == [("craft", 5), ("noh", 3)]
        assert result.facets["era"][0] == ("江戸時代", 4)
        assert ("true", 7) in result.facets["has_images"]
        assert dict(result.facets["rights"]) == {INC: 5, CC0: 3}
        assert dict(result.facets["century"])["19"] == 2
        assert dict(result.facets["creator"])["正宗"] == 1
        for values in result.facets.values():
            counts = [n for _v, n in values]
            assert counts == sorted(counts, reverse=True)

    def test_facets_follow_the_query(self, indexed):
        """The text's matches' facets; with the records near in meaning added (the
        default), the facets count what the results hold, those records included."""
        text = indexed.search(SearchQuery(q="漆", semantic=False))
        assert text.facets["institution"] == [("craft", 2)]
        assert dict(text.facets["object_type"]) == {"硯箱": 1, "盆": 1}
        result = indexed.search(SearchQuery(q="漆", size=100))
        assert set(ids(text)) <= set(ids(result)) and result.total == len(ids(result))
        records = {r.id: r for r in corpus()}
        institutions = Counter(records[i].institution for i in ids(result))
        assert dict(result.facets["institution"]) == dict(institutions)
        types = Counter(records[i].get("object_type") for i in ids(result))
        assert dict(result.facets["object_type"]) == {k: n for k, n in types.items() if k}

    # -- order and pages -----------------------------------------------------------------
    def test_sort_by_date_both_directions(self, indexed):
        up = ids(indexed.search(SearchQuery(q="", sort="date_asc", size=100)))
        assert up[:3] == ["craft_C-4", "craft_C-1", "noh_N-1"]
        down = ids(indexed.search(SearchQuery(q="", sort="date_desc", size=100)))
        assert down[:2] == ["craft_C-3", "noh_N-3"]

    def test_sort_recently_added(self, indexed):
        assert ids(indexed.search(SearchQuery(q="", sort="added", size=2))) == [
            "noh_N-3",
            "noh_N-2",
        ]

    def test_relevance_prefers_title_matches(self, indexed):
        assert ids(indexed.search(SearchQuery(q="茶碗")))[0] == "craft_C-1"
        assert ids(indexed.search(SearchQuery(q="金箔")))[0] == "craft_C-2"

    def test_pages_partition_the_results(self, indexed):
        pages = [
            ids(indexed.search(SearchQuery(q="", sort="date_asc", page=p, size=3)))
            for p in (1, 2, 3, 4)
        ]
        assert [len(p) for p in pages] == [3, 3, 2, 0]
        flat = [i for page in pages for i in page]
        assert len(set(flat)) == len(PUBLIC_IDS) == len(flat)
        result = indexed.search(SearchQuery(q="", page=4, size=3))
        assert result.total == len(PUBLIC_IDS) and result.page == 4

    # -- highlights and suggestions ------------------------------------------------------
    def test_highlights_mark_the_original_text(self, indexed):
        hit = indexed.search(SearchQuery(q="国宝")).hits[0]
        assert hit.highlights["title"] == "<mark>國寶</mark> 太刀"
        hit = indexed.search(SearchQuery(q="lacquers")).hits
        marked = {h.id: h.highlights for h in hit}
        assert "<mark>Lacquered</mark>" in marked["craft_C-2"]["description"]

    def test_highlights_are_html_escaped(self, indexed):
        hit = indexed.search(SearchQuery(q="桜")).hits
        description = {h.id: h.highlights for h in hit}["craft_C-5"]["description"]
        assert description == "&lt;b&gt;<mark>桜</mark>&lt;/b&gt; &amp; 金雲"

    def test_suggest_by_prefix_and_reading(self, indexed):
        assert "黒楽茶碗" in indexed.suggest("黒楽")
        assert "黒楽茶碗" in indexed.suggest("くろらく")
        assert "Noh mask Ko-omote" in indexed.suggest("noh m", lang="en")
        assert indexed.suggest("秘密") == []
        assert len(indexed.suggest("", limit=5)) == 0

    # -- writing -------------------------------------------------------------------------
    def test_index_replaces_and_hides(self, indexed):
        changed = corpus()[0]
        changed.fields["title"] = "白楽茶碗"
        indexed.index([changed], INSTITUTIONS)
        assert self.find(indexed, "白楽") == {"craft_C-1"}
        assert self.find(indexed, "title:黒楽") == set()
        changed.public = False
        indexed.index([changed], INSTITUTIONS)
        assert self.find(indexed, "白楽") == set()
        assert indexed.count() == len(PUBLIC_IDS) - 1

    def test_delete(self, indexed):
        indexed.delete(["craft_C-1", "no_such-record"])
        assert self.find(indexed, "茶碗") == set()
        assert indexed.count() == len(PUBLIC_IDS) - 1

    def test_document_ids_are_every_indexed_record(self, indexed):
        """What `archive check` compares with the catalog."""
        assert indexed.document_ids() == set(PUBLIC_IDS)
        indexed.delete(["craft_C-1"])
        assert indexed.document_ids() == set(PUBLIC_IDS) - {"craft_C-1"}

    def test_unchanged_passages_are_not_embedded_again(self, indexed):
        """A rebuild, or an update that leaves a record's passage text alone, reuses the
        vectors the index holds: only a changed passage goes to the model again."""
        from search import vectors

        before = {rid: indexed.similar(rid, 3) for rid in sorted(PUBLIC_IDS)}
        vectors._passages.clear()  # what this process remembers does not count
        start = vectors.embedded
        indexed.rebuild(corpus(), INSTITUTIONS)
        assert vectors.embedded == start
        assert {rid: indexed.similar(rid, 3) for rid in sorted(PUBLIC_IDS)} == before
        vectors._passages.clear()
        dated = rec("craft", "C-3", title="漆塗盆", title_en="Lacquer trays", material="漆",
                    object_type="盆", description="Two lacquers trays, red and black.",
                    era="大正時代", start=1915, end=1920, images=0)  # fmt: skip
        renamed = rec("craft", "C-4", title="太刀 銘正宗", object_type="刀剣", material="鋼")
        indexed.index([dated, renamed], INSTITUTIONS)
        assert vectors.embedded == start + 1  # the new title only
        assert "craft_C-4" in ids(indexed.search(SearchQuery(q="銘正宗")))

    def test_vectors_off_embeds_nothing_and_search_is_text_only(self, backend):
        """``search_vectors = false``: an index and a rebuild embed nothing, the search
        matches text only (asking for meaning too is no error), similar objects are
        empty; on again, a rebuild embeds exactly the records without a vector, and a
        rebuild with them off keeps the vectors stored."""
        from search import vectors

        records = corpus() + japanese_only()
        public = {r.id for r in records if r.public}
        off = type(backend)(backend.config.replace(search_vectors=False))
        try:
            assert off.vectors_on is False and backend.vectors_on is True
            vectors._passages.clear()  # what this process remembers does not count
            start = vectors.embedded
            off.index(records, INSTITUTIONS)
            with off.bulk():
                off.rebuild(records, INSTITUTIONS)
            assert vectors.embedded == start
            assert "kaga_K-4" not in self.find(off, "tea bowl", semantic=True)
            for q in ("tea bowl", "茶碗", "folding screen"):
                assert self.find(off, q, semantic=True) == self.find(off, q)
            assert off.similar("craft_C-1") == [] and off.similar("no_such") == []
            assert backend.similar("craft_C-1") == []  # nothing was stored for it
            assert "kaga_K-4" not in self.find(backend, "tea bowl", semantic=True)

            backend.rebuild(records, INSTITUTIONS)  # on again: embeds what is missing
            assert vectors.embedded == start + len(public)
            assert "kaga_K-4" in self.find(backend, "tea bowl", semantic=True)
            near = backend.similar("kaga_K-4", 3)
            assert len(near) == 3
            assert "kaga_K-4" not in self.find(off, "tea bowl", semantic=True)
            assert off.similar("kaga_K-4") == []

            vectors._passages.clear()
            off.rebuild(records, INSTITUTIONS)  # off keeps the vectors already stored
            changed = rec("craft", "C-4", title="太刀 銘正宗", object_type="刀剣", material="鋼")
            off.index([changed], INSTITUTIONS)  # a new passage, not embedded while off
            assert vectors.embedded == start + len(public)
            assert backend.similar("kaga_K-4", 3) == near
            fresh = type(backend)(backend.config)  # a cluster node sees others' writes late
            try:
                assert "craft_C-4" not in fresh.similar("kaga_K-4", 50)
                assert "craft_C-1" in fresh.similar("kaga_K-4", 50)
            finally:
                fresh.close()
            backend.rebuild([*(r for r in records if r.id != "craft_C-4"), changed], INSTITUTIONS)
            assert vectors.embedded == start + len(public) + 1  # only the one missing
        finally:
            off.close()

    def test_rebuild_replaces_everything(self, indexed):
        kept = [r for r in corpus() if r.institution == "noh"]
        assert indexed.rebuild(kept, INSTITUTIONS) == 3
        assert indexed.count() == 3
        assert self.find(indexed, "") == {"noh_N-1", "noh_N-2", "noh_N-3"}

    # -- bad input -----------------------------------------------------------------------
    @pytest.mark.parametrize(
        ("query", "parameter"),
        [
            (SearchQuery(sort="random"), "sort"),
            (SearchQuery(page=0), "page"),
            (SearchQuery(size=0), "size"),
            (SearchQuery(size=101), "size"),
            (SearchQuery(filters={"colour": ("red",)}), "colour"),
            (SearchQuery(year_from=1900, year_to=1800), "year_from"),
            (SearchQuery(q="x" * 501), "q"),
        ],
    )
    def test_bad_queries_name_the_parameter(self, indexed, query, parameter):
        with pytest.raises(BadRequest) as info:
            indexed.search(query)
        assert info.value.parameter == parameter

    @pytest.mark.parametrize(
        "q",
        [
            '"',
            '""',
            "-",
            "*",
            "AND",
            "OR NOT",
            "title:",
            "(",
            ")",
            "{x}",
            "^",
            "a:b:c",
            "NEAR(a b)",
            '"unclosed',
            "ー",
            "・",
            "\x00",
            "茶碗*",
            '-"a b"',
            "：：",
            "-刀",
        ],
    )
    def test_odd_queries_never_fail(self, indexed, q):
        result = indexed.search(SearchQuery(q=q))
        assert result.total >= 0

    @pytest.mark.parametrize(
        "q", ["!!!", "。、・「」", "？！…", "---", '"" ()', "\u3000\u3000", "・・・", "〜♪★"]
    )
    def test_punctuation_only_lists_in_browse_order(self, indexed, q):
        browse = indexed.search(SearchQuery(q="", size=100))
        result = indexed.search(SearchQuery(q=q, size=100))
        assert ids(result) == ids(browse) and result.total == browse.total

    @pytest.mark.parametrize(
        "q",
        [
            "\u0301",
            "\u3099\u309a",
            "a\u0301\u0301\u0301",
            "🍵",
            "🍵 茶碗",
            "👨‍👩‍👧",
            "茶碗🍵tea",
            "ｶﾞｷﾞｸﾞ",
            "𠮷野家",
            "\ufeff茶碗",
            "\u200b",
            "漢" * 500,
            "a " * 250,
            "title:" * 80,
            "كتاب шкатулка κουτί",
            "\ud800 茶碗",  # a lone surrogate (only through the Python API)
        ],
    )
    def test_any_script_or_mark_gets_an_answer_or_a_400(self, indexed, q):
        try:
            result = indexed.search(SearchQuery(q=q))
        except BadRequest as exc:
            assert exc.parameter == "q"
        else:
            assert result.total >= 0

    # Property-based: whatever a visitor types, the answer is results or a BadRequest
    # about q, never another exception (Loris fuzzes its IIIF parser the same way).
    @settings(
        max_examples=40,
        deadline=None,
        # One test function, run by each backend's subclass: the executors differ on
        # purpose, and each subclass's examples run against its own backend.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        q=st.text(
            alphabet=st.characters(codec="utf-8"),
            max_size=60,
        )
        | st.lists(
            st.sampled_from(
                ["茶碗", "kutani", '"', "-", "title:", "ｶﾞ", "\u0301", "🍵", "*", "(", "金", " "]
            ),
            max_size=12,
        ).map("".join),
        semantic=st.booleans(),
    )
    def test_query_path_never_fails(self, indexed, q, semantic):
        try:
            result = indexed.search(SearchQuery(q=q, semantic=semantic, size=5))
        except BadRequest as exc:
            assert exc.parameter == "q"
        else:
            assert 0 <= len(result.hits) <= 5 and result.total >= len(result.hits)
