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


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
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
