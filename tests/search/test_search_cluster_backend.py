"""The contract suite against a real OpenSearch node, plus what only a cluster does."""

from __future__ import annotations

import uuid

import pytest
from search_contract import BackendContract

from archive.config import Config
from search.base import get_backend
from search.cluster import ClusterBackend

pytestmark = pytest.mark.cluster


def cluster_config(config: Config, url: str) -> Config:
    return config.replace(
        search_backend="opensearch", search_url=url, search_index=f"test-{uuid.uuid4().hex[:12]}"
    )


@pytest.fixture
def cluster(config: Config, opensearch_url: str):
    backend = get_backend(cluster_config(config, opensearch_url))
    assert isinstance(backend, ClusterBackend)
    yield backend
    for name in backend._indices_of_alias():
        backend.request("DELETE", f"/{name}")
    backend.close()


class TestOpenSearchBackend(BackendContract):
    @pytest.fixture
    def backend(self, cluster):
        return cluster

    def test_flavour_and_kuromoji_are_detected(self, indexed):
        health = indexed.health()
        assert health["backend"] == "opensearch"
        assert health["version"].startswith("3.")
        assert health["kuromoji"] is True

    def test_rebuild_switches_the_alias_to_a_new_index(self, indexed):
        before = indexed._indices_of_alias()
        indexed.rebuild([], {})
        after = indexed._indices_of_alias()
        assert len(before) == len(after) == 1 and before != after
        assert indexed.count() == 0
