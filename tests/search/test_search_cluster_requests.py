"""The cluster backend's requests, asserted as the exact bodies it builds, and the
Elasticsearch client path recorded on the wire; an unreachable cluster is a clean 503."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from search_contract import INSTITUTIONS, corpus

from archive.config import Config
from archive.errors import SearchUnavailable
from search.base import FACETS, SearchQuery
from search.cluster import ClusterBackend, detect_flavour, make_client
from search.cluster_requests import (
    SEARCH_FILTER_PATH,
    alias_switch,
    fold_mappings,
    index_body,
    search_body,
)
from search.documents import TEXT_FIELDS
from search.query import parse


def body(q: str = "", kuromoji: bool = False, **kw) -> dict:
    query = SearchQuery(q=q, **kw)
    return search_body(query, parse(query.q), kuromoji)


def test_empty_query_lists_everything_in_id_order_with_every_facet():
    built = body()
    assert built["query"] == {"match_all": {}}
    assert built["sort"] == [{"id": "asc"}]
    assert built["track_total_hits"] is True
    assert set(built["aggs"]) == set(FACETS)
    assert built["aggs"]["creator"]["terms"] == {
        "field": "facets.creator",
        "size": 100,
        "order": [{"_count": "desc"}, {"_key": "asc"}],
    }


def test_words_are_phrases_anded_over_weighted_fields():
    built = body("茶碗 lacquer")
    must = built["query"]["bool"]["must"]
    assert must[0]["multi_match"]["query"] == "茶碗"
    assert must[0]["multi_match"]["type"] == "phrase"
    assert must[0]["multi_match"]["fields"] == [f"{n}^{w:g}" for n, w in TEXT_FIELDS.items()]
    # A Latin word also matches as romaji: a prefix of a reading's key.
    plain, romaji = must[1]["bool"]["should"]
    assert must[1]["bool"]["minimum_should_match"] == 1
    assert plain["multi_match"]["query"] == "lacquer"
    assert romaji == {"prefix": {"romaji": {"value": "lacquer", "boost": 5.0}}}
    assert built["sort"] == [{"_score": "desc"}, {"id": "asc"}]


def test_quoted_and_field_words_are_never_widened():
    must = body('"kutani" title:yuzen 焼物')["query"]["bool"]["must"]
    assert [m["multi_match"]["query"] for m in must[:2]] == ["kutani", "yuzen"]
    plain, norm = must[2]["bool"]["should"]
    assert norm == {"match_phrase": {"norm": {"query": "焼き物", "boost": 2.0}}}


def test_one_character_queries_use_the_unigram_subfields():
    fields = body("刀")["query"]["bool"]["must"][0]["multi_match"]["fields"]
    assert fields[0] == "title.uni^10" and all(".uni^" in f for f in fields)


def test_query_text_is_folded_before_it_is_sent():
    assert body("ＫＡＲＡＯＲＩ 國寶")["query"]["bool"]["must"][1]["multi_match"]["query"] == "国宝"


def test_field_exclusion_filters_dates_and_pages():
    built = body(
        'title:"gold leaf" -刀',
        filters={"institution": ("noh", "craft")},
        year_from=1600,
        year_to=1700,
        sort="date_desc",
        page=3,
        size=10,
        facets=False,
    )
    query = built["query"]["bool"]
    assert query["must"][0]["multi_match"]["fields"] == ["title^10", "kana^6"]
    assert query["must_not"][0]["multi_match"]["query"] == "刀"
    assert query["filter"] == [
        {"terms": {"facets.institution": ["noh", "craft"]}},
        {"range": {"date_end": {"gte": 1600}}},
        {"range": {"date_start": {"lte": 1700}}},
    ]
    assert built["sort"] == [{"date_end": {"order": "desc", "missing": "_last"}}, {"id": "desc"}]
    assert (built["from"], built["size"]) == (20, 10)
    assert "aggs" not in built


def test_kuromoji_adds_score_never_recall():
    clause = body("茶碗", kuromoji=True)["query"]["bool"]["must"][0]["bool"]
    assert clause["must"][0]["multi_match"]["type"] == "phrase"
    assert clause["should"][0]["multi_match"]["fields"][0] == "title.ja^10"


def test_index_mapping_uses_stock_analysers_and_the_fold_table():
    built = index_body(kuromoji=False)
    analysis = built["settings"]["analysis"]
    assert analysis["filter"]["archive_bigram"] == {"type": "cjk_bigram", "output_unigrams": False}
    assert analysis["analyzer"]["archive_bigram"]["filter"][:2] == ["cjk_width", "lowercase"]
    assert "archive_ja" not in analysis["analyzer"]
    rules = set(analysis["char_filter"]["archive_fold"]["mappings"])
    assert {
        "國 => 国",
        "櫻 => 桜",
        "髙 => 高",
        "﨑 => 崎",
        "カ => か",
        "ｶ => か",
        "ｶﾞ => が",
    } <= rules
    title = built["mappings"]["properties"]["title"]
    assert title["fields"]["uni"]["analyzer"] == "archive_unigram"
    with_ja = index_body(kuromoji=True)
    assert with_ja["settings"]["analysis"]["analyzer"]["archive_ja"]["tokenizer"] == (
        "kuromoji_tokenizer"
    )
    assert "ja" in with_ja["mappings"]["properties"]["title"]["fields"]
    assert "ja" not in with_ja["mappings"]["properties"]["kana"]["fields"]


def test_fold_mappings_have_no_conflicting_rules():
    keys = [rule.split(" => ")[0] for rule in fold_mappings()]
    assert len(keys) == len(set(keys))


def test_alias_switch_is_one_atomic_request():
    assert alias_switch("archive", "archive-2", ["archive-1"]) == {
        "actions": [
            {"remove": {"index": "archive-1", "alias": "archive"}},
            {"add": {"index": "archive-2", "alias": "archive"}},
        ]
    }


@pytest.mark.parametrize(
    ("info", "flavour"),
    [
        ({"version": {"distribution": "opensearch", "number": "2.19.1"}}, "opensearch"),
        ({"version": {"number": "8.15.0", "build_flavor": "default"}}, "elasticsearch"),
        ({"version": {"number": "9.1.0", "build_flavor": "default"}}, "elasticsearch"),
    ],
)
def test_flavour_is_found_from_the_root_endpoint(info, flavour):
    assert detect_flavour(info) == flavour


# -- the wire ----------------------------------------------------------------------------------
class Recorder(BaseHTTPRequestHandler):
    """Records each request and answers 503: it records, it does not pretend to be a cluster."""

    seen: list[dict] = []

    def _record(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        Recorder.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": self.rfile.read(length).decode("utf-8"),
            }
        )
        self.send_response(503)
        self.send_header("content-type", "text/plain")
        self.end_headers()
        self.wfile.write(b"recorded")

    do_GET = do_POST = do_PUT = do_DELETE = _record

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder():
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def elasticsearch_backend(config: Config, url: str, **settings) -> ClusterBackend:
    cfg = config.replace(search_backend="elasticsearch", search_url=url, **settings)
    backend = ClusterBackend(cfg)
    backend.flavour = "elasticsearch"  # as if GET / had said so
    backend._client = make_client("elasticsearch", cfg)
    backend._kuromoji = False
    return backend


def test_elasticsearch_client_sends_the_built_search(config, recorder):
    backend = elasticsearch_backend(
        config, recorder, search_username="curator", search_password="s3cret", search_index="museum"
    )
    # Text only: a hybrid search would first ask the index's stats for its vectors.
    with pytest.raises(SearchUnavailable, match="503"):
        backend.search(SearchQuery(q="茶碗", filters={"era": ("江戸時代",)}, semantic=False))
    sent = Recorder.seen[0]
    path, _, params = sent["path"].partition("?")
    assert (sent["method"], path) == ("POST", "/museum/_search")
    # Only what the backend reads comes back.
    assert urllib.parse.parse_qs(params) == {"filter_path": [SEARCH_FILTER_PATH]}
    assert json.loads(sent["body"]) == body("茶碗", filters={"era": ("江戸時代",)})
    # Compatibility mode 8: what Elasticsearch 8 requires and Elasticsearch 9 accepts.
    compat = "application/vnd.elasticsearch+json; compatible-with=8"
    assert sent["headers"]["content-type"] == sent["headers"]["accept"] == compat
    assert (
        sent["headers"]["authorization"] == "Basic " + base64.b64encode(b"curator:s3cret").decode()
    )


def test_elasticsearch_client_sends_bulk_as_ndjson_with_api_key(config, recorder):
    backend = elasticsearch_backend(config, recorder, search_api_key="a2V5")
    with pytest.raises(SearchUnavailable):
        # known={}: no stored vectors to look up first (a rebuild's), so bulk is the first
        backend._write("archive", backend._docs(corpus()[:2], INSTITUTIONS, {}), "wait_for")
    sent = Recorder.seen[0]
    assert (sent["method"], sent["path"]) == ("POST", "/archive/_bulk?refresh=wait_for")
    assert sent["headers"]["content-type"] == (
        "application/vnd.elasticsearch+x-ndjson; compatible-with=8"
    )
    assert sent["headers"]["authorization"] == "ApiKey a2V5"
    lines = [json.loads(line) for line in sent["body"].splitlines()]
    assert lines[0] == {"index": {"_id": "craft_C-1"}}
    assert lines[1]["title"] == "黒楽茶碗\nBlack Raku tea bowl"
    assert lines[1]["facets"]["institution"] == "craft"
    assert lines[2] == {"index": {"_id": "craft_C-2"}}


def closed_port() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


@pytest.mark.parametrize("flavour", ["opensearch", "elasticsearch"])
def test_unreachable_cluster_raises_search_unavailable(config, flavour):
    cfg = config.replace(search_backend=flavour, search_url=closed_port(), search_timeout=2)
    backend = ClusterBackend(cfg)
    if flavour == "elasticsearch":
        backend = elasticsearch_backend(config, cfg.search_url, search_timeout=2)
    for call in (
        lambda: backend.search(SearchQuery(q="茶碗")),
        lambda: backend.suggest("茶"),
        lambda: backend.index(corpus(), INSTITUTIONS),
        lambda: backend.delete(["craft_C-1"]),
        backend.count,
    ):
        with pytest.raises(SearchUnavailable, match="unreachable"):
            call()


def test_cluster_backend_needs_a_url(config):
    from archive.errors import ConfigError
    from search.base import get_backend

    with pytest.raises(ConfigError, match="search_url"):
        get_backend(config.replace(search_backend="elasticsearch"))


def test_site_answers_503_for_search_and_keeps_serving_records_when_cluster_is_down(ingested_home):
    from web import create_app

    config = Config.load(ingested_home, environ={}).replace(
        search_backend="opensearch", search_url=closed_port(), search_timeout=2
    )
    app = create_app(config)
    client = app.test_client()
    try:
        response = client.get("/api/search?q=茶碗")
        assert response.status_code == 503
        assert "unreachable" in response.get_data(as_text=True)
        assert client.get("/api/records/craft-museum_K-0005").status_code == 200
        assert client.get("/iiif/3/manifest/craft-museum_K-0005").status_code == 200
    finally:
        app.extensions["archive"].close()
