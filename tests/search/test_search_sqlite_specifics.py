"""What only the embedded backend does, and the CLI commands around search."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from search_contract import INSTITUTIONS, corpus

from archive.cli import cli
from archive.config import Config
from archive.errors import BadRequest
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
