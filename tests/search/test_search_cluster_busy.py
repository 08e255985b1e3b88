"""A cluster too busy to take a bulk write (429) is asked again, on a real node: its
in-flight request breaker, set so low that a bulk body of records is refused while
small requests pass, and put back a moment later, as a node under load recovers."""

from __future__ import annotations

import threading
import time

import pytest
from search_contract import INSTITUTIONS, corpus
from test_search_cluster_backend import cluster  # noqa: F401 - the fixture

import search.cluster as cluster_module
from archive.errors import SearchUnavailable

pytestmark = pytest.mark.cluster
BREAKER = "network.breaker.inflight_requests.limit"


def breaker(backend, limit: str | None) -> None:
    backend.request("PUT", "/_cluster/settings", {"transient": {BREAKER: limit}})


def test_bulk_writes_turned_away_as_too_busy_are_sent_again(cluster):  # noqa: F811
    records = corpus()
    cluster.index(records[:1], INSTITUTIONS)  # the index exists before the breaker drops
    breaker(cluster, "2kb")
    try:
        reset = threading.Timer(2.0, breaker, (cluster, None))
        reset.start()
        started = time.monotonic()
        cluster.index(records, INSTITUTIONS)
        assert time.monotonic() - started >= 1.5  # it was turned away, and waited
        reset.join()
    finally:
        breaker(cluster, None)
    assert cluster.count() == sum(r.public for r in records)


def test_a_cluster_too_busy_for_longer_than_the_patience_gives_search_unavailable(
    cluster,  # noqa: F811
    monkeypatch,
):
    records = corpus()
    cluster.index(records[:1], INSTITUTIONS)
    monkeypatch.setattr(cluster_module, "BULK_PATIENCE", 1.0)
    breaker(cluster, "2kb")
    try:
        with pytest.raises(SearchUnavailable, match="429"):
            cluster.index(records, INSTITUTIONS)
    finally:
        breaker(cluster, None)
