"""The relevance set bench/bench_search.py measures stays true to the sample collections."""

from __future__ import annotations

import json
from pathlib import Path

from archive.catalog import Catalog
from archive.config import Config
from search import SearchQuery, get_backend

RELEVANCE = Path(__file__).resolve().parents[2] / "bench" / "search_relevance.json"
RELEVANCE_JA = RELEVANCE.with_name("search_relevance_ja.json")


def test_relevance_set_names_public_sample_records(ingested_home):
    queries = json.loads(RELEVANCE.read_text(encoding="utf-8"))["queries"]
    assert len(queries) >= 50
    assert any(q["q"].isascii() for q in queries) and any(not q["q"].isascii() for q in queries)
    catalog = Catalog(ingested_home / "catalog.sqlite")
    public = set(catalog.record_ids(public_only=True))
    catalog.close()
    for item in queries:
        assert item["relevant"], item
        assert set(item["relevant"]) <= public, item["q"]


def test_japanese_only_set_names_public_sample_records_for_each_kind(ingested_home):
    queries = json.loads(RELEVANCE_JA.read_text(encoding="utf-8"))["queries"]
    kinds = {}
    for item in queries:
        kinds.setdefault(item["kind"], []).append(item["q"])
    assert set(kinds) == {"kana", "romaji", "english"}
    # enough English queries that one more found or missed moves recall by a few points
    assert len(kinds["english"]) >= 40
    assert all(len(set(qs)) == len(qs) for qs in kinds.values())
    catalog = Catalog(ingested_home / "catalog.sqlite")
    public = set(catalog.record_ids(public_only=True))
    catalog.close()
    for item in queries:
        assert item["relevant"] and set(item["relevant"]) <= public, item["q"]


def test_every_query_finds_at_least_one_relevant_record(ingested_home):
    """Not a relevance target (that is the benchmark's): a query that finds nothing it
    should is a broken query or a broken matcher."""
    backend = get_backend(Config.load(ingested_home, environ={}))
    queries = json.loads(RELEVANCE.read_text(encoding="utf-8"))["queries"]
    for item in queries:
        hits = {h.id for h in backend.search(SearchQuery(q=item["q"], size=10)).hits}
        assert hits & set(item["relevant"]), item["q"]
    backend.close()
