"""What only the embedded backend does, and the CLI commands around search."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from search_contract import INSTITUTIONS, corpus

from archive.cli import cli
from archive.config import Config
from archive.errors import BadRequest
from search import vectors
from search.base import SearchQuery
from search.sqlite_fts import SqliteBackend


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(q=st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_any_query_answers_or_names_q(config: Config, q: str):
    backend = SqliteBackend(config)  # the same home for every example: index once
    if backend.count() == 0:
        backend.index(corpus(), INSTITUTIONS)
    try:
        result = backend.search(SearchQuery(q=q))
        assert result.total >= 0
    except BadRequest as exc:
        assert exc.parameter == "q"
    finally:
        backend.close()


def test_index_is_in_the_archive_home(config: Config, home):
    backend = SqliteBackend(config)
    backend.index(corpus(), INSTITUTIONS)
    assert backend.path == home / "search.sqlite" and backend.path.is_file()
    assert backend.health()["documents"] == 8
    backend.close()


def _stored_vectors(backend: SqliteBackend) -> dict[str, tuple[str, np.ndarray]]:
    """Each document's passage text and stored vector (int8 row), by record id."""
    rows = backend.db.execute(
        "SELECT d.id, d.original, v.v FROM docs d JOIN vectors v ON v.rowid = d.rowid"
    ).fetchall()
    return {
        rid: (vectors.passage_text({"original": json.loads(original)}), vectors.from_bytes(v)[0])
        for rid, original, v in rows
    }


def test_an_ingests_vectors_are_written_after_its_batches_and_only_to_their_records(config):
    """Within bulk(), index() may return before its batch is embedded (an ingest goes on
    tiling); when bulk() ends every document has its own vector, a record replaced or
    deleted meanwhile keeps none of the old one, and no vector is left without a
    document."""
    records = corpus()
    renamed = dataclasses.replace(
        records[0], fields={**records[0].fields, "title": "赤楽茶碗", "object_type": "花入"}
    )
    backend = SqliteBackend(config)
    with backend.bulk(2):
        backend.index(records[:4], INSTITUTIONS)
        backend.index(records[4:], INSTITUTIONS)
        backend.index([renamed], INSTITUTIONS)  # replaces the first, perhaps before its vector
        backend.delete([records[1].id])
    stored = _stored_vectors(backend)
    count = backend.db.execute("SELECT count(*) FROM vectors").fetchone()[0]
    public = {r.id for r in records if r.public} - {records[1].id}
    assert set(stored) == public and count == len(public) == backend.count()
    texts = [text for text, _row in stored.values()]
    expected, _scales = vectors.embed_passages(texts)
    for (text, row), want in zip(stored.values(), expected, strict=True):
        assert np.array_equal(row, want), text
    assert "赤楽茶碗" in stored[records[0].id][0]
    backend.close()


def test_a_failed_bulk_lets_its_pending_vectors_go(config):
    backend = SqliteBackend(config)
    with pytest.raises(RuntimeError), backend.bulk(2):
        backend.index(corpus(), INSTITUTIONS)
        raise RuntimeError("the ingest stopped")
    assert backend._deferred == []
    assert backend.count() > 0  # the text is indexed; the caller marks the index behind
    backend.close()


def test_reindex_and_search_commands(runner, ingested_home):
    result = runner.invoke(cli, ["--home", str(ingested_home), "reindex"])
    assert result.exit_code == 0, result.output
    assert "Indexed" in result.output and "sqlite" in result.output
    result = runner.invoke(cli, ["--home", str(ingested_home), "search", "--facets", ""])
    assert result.exit_code == 0, result.output
    assert "found" in result.output and "institution:" in result.output
    result = runner.invoke(cli, ["--home", str(ingested_home), "search", "--json", "能"])
    assert result.exit_code == 0, result.output
    assert '"total"' in result.output


def test_search_command_rejects_bad_filters_cleanly(runner, home):
    result = runner.invoke(cli, ["--home", str(home), "search", "--filter", "colour"])
    assert result.exit_code == 2 and "FACET=VALUE" in result.output
    result = runner.invoke(cli, ["--home", str(home), "search", "--filter", "colour=red", "x"])
    assert result.exit_code == 1 and "unknown filter" in result.output
    assert "Traceback" not in result.output


def test_large_result_sets_rank_title_matches_first_and_page_cleanly(config, monkeypatch):
    """Beyond RANK_LIMIT matches, title matches come first; pages still partition."""
    import search.sqlite_fts as sqlite_fts

    backend = SqliteBackend(config)
    backend.index(corpus(), INSTITUTIONS)
    expected = {h.id for h in backend.search(SearchQuery(q="江戸時代", size=100)).hits}
    monkeypatch.setattr(sqlite_fts, "RANK_LIMIT", 1)
    pages = [
        [h.id for h in backend.search(SearchQuery(q="江戸時代", page=p, size=2)).hits]
        for p in (1, 2, 3)
    ]
    flat = [i for page in pages for i in page]
    assert set(flat) == expected and len(flat) == len(expected)
    # Records with the word in the title come before those with it elsewhere.
    assert flat[0] in {h.id for h in backend.search(SearchQuery(q="title:江戸時代")).hits} or (
        not backend.search(SearchQuery(q="title:江戸時代")).hits
    )
    monkeypatch.setattr(sqlite_fts, "RANK_LIMIT", 0)
    titled = [h.id for h in backend.search(SearchQuery(q="茶碗", size=10)).hits]
    assert titled[0] == "craft_C-1"
    backend.close()


def test_remembered_matches_follow_the_index(config: Config):
    """What FTS5 matched is remembered per index generation: a write is seen at once."""
    from search_contract import rec

    backend = SqliteBackend(config)
    backend.index(corpus(), INSTITUTIONS)
    query = SearchQuery(q="茶碗", semantic=False, size=100)
    before = {h.id for h in backend.search(query).hits}
    assert before and backend.search(query).total == len(before)  # the second, remembered
    backend.index([rec("craft", "C-99", title="白天目茶碗")], INSTITUTIONS)
    after = {h.id for h in backend.search(query).hits}
    assert after == before | {"craft_C-99"}
    backend.delete(["craft_C-99"])
    assert {h.id for h in backend.search(query).hits} == before
    backend.close()
