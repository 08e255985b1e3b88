"""Every request body the cluster backend sends, built as plain data (and tested as such).

The analysis chain mirrors ``search.text``: a ``mapping`` char filter generated from
the same fold table (katakana to hiragana, half-width forms, old kanji forms, Latin
diacritics), the standard tokenizer, ``cjk_width`` and ``lowercase``, then
``cjk_bigram`` for the main field and single characters for the ``.uni`` subfield
(one-character queries), and Snowball English stemming. With the kuromoji plugin a
``.ja`` subfield adds morphological matches to the score (never to recall, so both
backends find the same records).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .base import FACETS, SearchQuery
from .documents import ROMAJI_FIELD, ROMAJI_WEIGHT, TEXT_FIELDS
from .query import Clause
from .text import FOLD_TABLE, fold
from .vectors import EMBEDDING_VERSION

FACET_LIMIT = 100
# Values counted per facet by a fused page's counting search: all of them, in practice
# (600 buckets in all at most on the 100,000-record set, 0.3 ms more of the node's time
# than 100 a facet), so the added neighbours' values are counted in exactly. 8 facets of
# 5,000 stay below the node's search.max_buckets (65,535).
FACET_COUNTED = 5000
# Fields that get a kuromoji subfield: the running text where morphology helps ranking.
# (Every field on all analysers made indexing twice as slow for no measurable gain.)
KUROMOJI_FIELDS = ("title", "description")
_SORTS: dict[str, list[Any]] = {
    "relevance": [{"_score": "desc"}, {"id": "asc"}],
    "date_asc": [{"date_start": {"order": "asc", "missing": "_last"}}, {"id": "asc"}],
    "date_desc": [{"date_end": {"order": "desc", "missing": "_last"}}, {"id": "desc"}],
    "added": [{"added": "desc"}, {"id": "desc"}],
}


def _escape_mapping(text: str) -> str:
    # The mapping char filter's rule syntax treats these as special (Lucene MappingCharFilter).
    return "".join("\\" + c if c in '\\"=>' else c for c in text)


def fold_mappings() -> list[str]:
    """``mapping`` char filter rules that do what ``search.text.fold`` does, beyond what
    the analysers' cjk_width/lowercase/asciifolding already do."""
    chars = {chr(code) for code in FOLD_TABLE}
    chars.update(chr(code) for code in range(0xFF61, 0xFFA0))  # half-width katakana
    rules: dict[str, str] = {}
    for char in sorted(chars):
        folded = fold(char)
        if folded != char and folded.strip():
            rules[char] = folded
    # Half-width kana with a separate voicing mark (ｶﾞ, ﾊﾟ) fold to one character.
    for code in range(0xFF61, 0xFFA0):
        for mark in ("\uff9e", "\uff9f"):
            pair = chr(code) + mark
            folded = fold(pair)
            if len(folded) == 1:
                rules[pair] = folded
    return [f"{_escape_mapping(k)} => {_escape_mapping(v)}" for k, v in sorted(rules.items())]


def index_body(kuromoji: bool, bulk_load: bool = False) -> dict[str, Any]:
    """Settings and mappings of a new index (``bulk_load``: no refreshes until filled)."""
    base_filters = ["cjk_width", "lowercase", "asciifolding"]
    analyzers: dict[str, Any] = {
        "archive_bigram": {
            "type": "custom",
            "char_filter": ["archive_fold"],
            "tokenizer": "standard",
            "filter": [*base_filters, "archive_bigram", "archive_stem"],
        },
        "archive_unigram": {
            "type": "custom",
            "char_filter": ["archive_fold"],
            "tokenizer": "standard",
            "filter": [*base_filters, "archive_stem"],
        },
    }
    if kuromoji:
        analyzers["archive_ja"] = {
            "type": "custom",
            "char_filter": ["archive_fold"],
            "tokenizer": "kuromoji_tokenizer",
            "filter": ["kuromoji_baseform", "cjk_width", "lowercase", "archive_stem"],
        }
    properties: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        subfields: dict[str, Any] = {"uni": {"type": "text", "analyzer": "archive_unigram"}}
        if kuromoji and name in KUROMOJI_FIELDS:
            subfields["ja"] = {"type": "text", "analyzer": "archive_ja"}
        properties[name] = {"type": "text", "analyzer": "archive_bigram", "fields": subfields}
    # Romaji keys, already made by search.readings: split on spaces, nothing else.
    properties[ROMAJI_FIELD] = {"type": "text", "analyzer": "whitespace", "norms": False}
    properties.update(
        {
            "id": {"type": "keyword"},
            "facets": {"properties": {name: {"type": "keyword"} for name in FACETS}},
            "date_start": {"type": "integer"},
            "date_end": {"type": "integer"},
            "added": {"type": "keyword"},
            "title_sort": {"type": "keyword"},
            "suggest": {"type": "keyword"},
            "original": {"type": "object", "enabled": False},
            # int8 embedding and scale (search.vectors.to_bytes), base64; the backend
            # scores it itself: no k-NN plugin is served for this node version.
            "vector": {"type": "binary"},
        }
    )
    return {
        "settings": {
            "index": {
                "number_of_shards": 1,
                "number_of_replicas": 0,
                "max_result_window": 100_000,
                "refresh_interval": "-1" if bulk_load else "1s",
            },
            "analysis": {
                "char_filter": {"archive_fold": {"type": "mapping", "mappings": fold_mappings()}},
                "filter": {
                    "archive_bigram": {"type": "cjk_bigram", "output_unigrams": False},
                    "archive_stem": {"type": "snowball", "language": "English"},
                },
                "analyzer": analyzers,
            },
        },
        # _meta: what made the vectors (search.vectors.EMBEDDING_VERSION): a rebuild reuses
        # the vectors of an index whose records' passage text has not changed.
        "mappings": {
            "dynamic": "strict",
            "_meta": {"embedding": EMBEDDING_VERSION},
            "properties": properties,
        },
    }


def doc_source(doc: dict[str, Any]) -> dict[str, Any]:
    """The _source of a search document from ``record_to_doc`` (plus ``original``)."""
    keys = []
    for text, _lang in doc["suggest"]:
        keys.append(fold(text))
    if doc["reading"]:
        keys.append(fold(doc["reading"]))
    return {
        "id": doc["id"],
        **{name: doc[name] for name in TEXT_FIELDS},
        ROMAJI_FIELD: doc[ROMAJI_FIELD],
        "facets": {name: doc["facets"][name] for name in FACETS if doc["facets"][name]},
        "date_start": doc["date_start"],
        "date_end": doc["date_end"],
        "added": doc["added"],
        "title_sort": fold(doc["title_sort"]),
        "suggest": keys,
        "original": {**doc["original"], "_suggest": doc["suggest"], "_reading": doc["reading"]},
        **({"vector": doc["vector"]} if doc.get("vector") else {}),
    }


def _clause_query(clause: Clause, kuromoji: bool) -> dict[str, Any]:
    fields = clause.fields or tuple(TEXT_FIELDS)
    # A clause ending in a lone CJK character matches characters (.uni); else bigrams.
    suffix = ".uni" if clause.prefix else ""
    query: dict[str, Any] = {
        "multi_match": {
            "query": clause.text,
            "type": "phrase",
            "fields": [f"{name}{suffix}^{TEXT_FIELDS[name]:g}" for name in fields],
        }
    }
    if clause.widened:
        alternatives = [query]
        if clause.norm_tokens:
            suffix = ".uni" if clause.norm_prefix else ""
            alternatives.append(
                {
                    "match_phrase": {
                        f"norm{suffix}": {"query": clause.norm, "boost": TEXT_FIELDS["norm"]}
                    }
                }
            )
        if clause.romaji:
            kind = "prefix" if clause.romaji_prefix else "term"
            alternatives.append(
                {kind: {ROMAJI_FIELD: {"value": clause.romaji, "boost": ROMAJI_WEIGHT}}}
            )
        query = {"bool": {"should": alternatives, "minimum_should_match": 1}}
    ja_fields = [name for name in fields if name in KUROMOJI_FIELDS]
    if kuromoji and ja_fields and not clause.negate:
        return {
            "bool": {
                "must": [query],
                "should": [
                    {
                        "multi_match": {
                            "query": clause.text,
                            "type": "best_fields",
                            "operator": "and",
                            "fields": [f"{name}.ja^{TEXT_FIELDS[name]:g}" for name in ja_fields],
                        }
                    }
                ],
            }
        }
    return query


def _filters(query: SearchQuery) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    for name, values in query.filters.items():
        if values:
            filters.append({"terms": {f"facets.{name}": list(values)}})
    if query.year_from is not None:
        filters.append({"range": {"date_end": {"gte": query.year_from}}})
    if query.year_to is not None:
        filters.append({"range": {"date_start": {"lte": query.year_to}}})
    return filters


def search_body(
    query: SearchQuery,
    clauses: list[Clause],
    kuromoji: bool,
    near: list[str] | None = None,
    window: int | None = None,
    source: bool = True,
) -> dict[str, Any]:
    """The _search body for a query: phrases ANDed in ``must``, exclusions in ``must_not``,
    facet and date filters in ``filter`` (unscored), one terms aggregation per facet.

    ``near``: ids of records nearest in meaning, added to the matches with a score of 0
    (so they count in the total and the facets, and the text ranking is kept); ``window``:
    the first ``window`` hits instead of the query's page, to fuse the rankings;
    ``source``: whether hits bring their original text (a window to fuse needs only ids
    and scores: the page's text is fetched once the page is known, ``page_sources``)."""
    must = [_clause_query(c, kuromoji) for c in clauses if not c.negate]
    must_not = [_clause_query(c, False) for c in clauses if c.negate]
    filters = _filters(query)
    bool_query: dict[str, Any] = {}
    if must and near:
        bool_query["should"] = [
            {"bool": {"must": must}},
            {"constant_score": {"filter": {"ids": {"values": near}}, "boost": 0.0}},
        ]
        bool_query["minimum_should_match"] = 1
    elif must:
        bool_query["must"] = must
    if must_not:
        bool_query["must_not"] = must_not
    if filters:
        bool_query["filter"] = filters
    sort_name = query.sort if (must or query.sort != "relevance") else None
    body: dict[str, Any] = {
        "query": {"bool": bool_query} if bool_query else {"match_all": {}},
        "from": 0 if window else (query.page - 1) * query.size,
        "size": window or query.size,
        "track_total_hits": True,
        "sort": _SORTS[sort_name] if sort_name else [{"id": "asc"}],
        "_source": ["original"] if source else False,
    }
    if query.facets:
        body["aggs"] = {
            name: {
                "terms": {
                    "field": f"facets.{name}",
                    "size": FACET_LIMIT,
                    "order": [{"_count": "desc"}, {"_key": "asc"}],
                }
            }
            for name in FACETS
        }
    return body


def fused_bodies(
    query: SearchQuery, clauses: list[Clause], kuromoji: bool, window: int
) -> list[dict[str, Any]]:
    """The text half of a page by relevance, as two searches sent at once (``_msearch``):
    one counts (the total and every value of every facet: ``size`` 0, so the node's
    request cache keeps it until the index is next refreshed, and a repeated search
    counts nothing again),
    the other ranks the first ``window`` ids and scores, without a total, so the node may
    skip the blocks of documents that cannot reach them. The nearest records in meaning
    are added afterwards (``neighbours_body``, ``facet_counts_body``)."""
    body = search_body(query, clauses, kuromoji, window=window, source=False)
    aggs = body.pop("aggs", None)
    counting: dict[str, Any] = {"query": body["query"], "size": 0, "track_total_hits": True}
    if aggs:
        for agg in aggs.values():
            agg["terms"]["size"] = FACET_COUNTED
        counting["aggs"] = aggs
    return [counting, {**body, "track_total_hits": False}]


def facet_counts_body(
    query: SearchQuery, clauses: list[Clause], kuromoji: bool, values: dict[str, list[str]]
) -> dict[str, Any]:
    """How many text matches have each of these facet values (the values of added
    neighbours beyond the FACET_COUNTED buckets of the counting search: a facet of more
    values than that among the matches)."""
    body = search_body(replace(query, facets=False), clauses, kuromoji, window=1, source=False)
    aggs = {
        name: {
            "filters": {"filters": {value: {"term": {f"facets.{name}": value}} for value in wanted}}
        }
        for name, wanted in values.items()
    }
    return {"query": body["query"], "size": 0, "track_total_hits": False, "aggs": aggs}


def neighbours_body(
    query: SearchQuery, clauses: list[Clause], kuromoji: bool, pool: list[str]
) -> dict[str, Any]:
    """Which of ``pool`` (ids nearest a query) pass its filters and exclusions and are not
    text matches already: the records the meaning may add, with their facet values read
    from doc values, not from the stored source (their text comes with the page's,
    ``page_sources``)."""
    must_not = [_clause_query(c, False) for c in clauses if c.negate]
    must = [_clause_query(c, kuromoji) for c in clauses if not c.negate]
    if must:
        must_not.append({"bool": {"must": must}})
    bool_query: dict[str, Any] = {"filter": [{"ids": {"values": pool}}, *_filters(query)]}
    if must_not:
        bool_query["must_not"] = must_not
    return {
        "query": {"bool": bool_query},
        "size": len(pool),
        "_source": False,
        "docvalue_fields": [f"facets.{name}" for name in FACETS],
    }


# Only what the backend reads of a search's answer (less JSON to build, send and parse).
_SEARCH_PATHS = (
    "hits.total",
    "hits.hits._id",
    "hits.hits._score",
    "hits.hits._source",
    "aggregations.*.buckets.key",
    "aggregations.*.buckets.doc_count",
)
SEARCH_FILTER_PATH = ",".join(_SEARCH_PATHS)
NEIGHBOURS_FILTER_PATH = "hits.hits._id,hits.hits.fields"
# ... of each answer of an _msearch (a failed one brings its error and status instead;
# the buckets of a ``filters`` aggregation are keyed by value: ``*.doc_count``).
MSEARCH_FILTER_PATH = ",".join(
    (
        *(f"responses.{path}" for path in _SEARCH_PATHS),
        "responses.aggregations.*.buckets.*.doc_count",
        "responses.hits.hits.fields",
        "responses.error.type",
        "responses.error.reason",
        "responses.status",
    )
)


def page_sources(ids: list[str]) -> dict[str, Any]:
    """The _mget body of the original text of a page's hits."""
    return {"ids": ids}


def vectors_body(size: int, after: str | None, with_original: bool = False) -> dict[str, Any]:
    """One page of every document's vector, in id order (``after``: the last id seen);
    ``with_original``: the original text too, which says what the vector was made of."""
    body: dict[str, Any] = {
        "query": {"match_all": {}},
        "size": size,
        "sort": [{"id": "asc"}],
        "_source": ["vector", "original"] if with_original else ["vector"],
        "track_total_hits": False,
    }
    if after is not None:
        body["search_after"] = [after]
    return body


def suggest_body(prefix: str) -> dict[str, Any]:
    """Documents with a suggestion key starting with the folded prefix; the backend
    counts the matching keys' display texts."""
    return {
        "query": {"prefix": {"suggest": fold(prefix).strip()}},
        "size": 200,
        "_source": ["original._suggest", "original._reading"],
    }


def alias_switch(alias: str, new_index: str, old_indices: list[str]) -> dict[str, Any]:
    """One atomic _aliases request: the alias leaves the old indices and joins the new."""
    actions: list[dict[str, Any]] = [
        {"remove": {"index": old, "alias": alias}} for old in old_indices
    ]
    actions.append({"add": {"index": new_index, "alias": alias}})
    return {"actions": actions}
