"""IIIF Change Discovery API 1.0: what changed, as Activity Streams, oldest first.

https://iiif.io/api/discovery/1.0/ — an OrderedCollection (§2.3) whose pages
(§2.4) hold Create, Update and Delete activities (§2.5) on manifests, taken
from the catalog's change log, which ingest writes as it changes what the
public sees. Page ``n`` (0-based) holds the changes with sequence numbers
``n*PAGE_SIZE+1 .. (n+1)*PAGE_SIZE``, so a full page never changes and a
harvester that read yesterday's last page only needs that page and later ones.
"""

from __future__ import annotations

from typing import Any

from archive.catalog import Catalog, Change

from .presentation import Links

DISCOVERY_CONTEXT = "http://iiif.io/api/discovery/1/context.json"
# §2.1: the Activity Streams media type with the discovery context as profile.
CONTENT_TYPE = 'application/ld+json;profile="https://www.w3.org/ns/activitystreams"'
PAGE_SIZE = 100


def last_page(total: int) -> int:
    """Index of the last page: the one holding change number ``total`` (page 0 if none)."""
    return max(0, (total - 1) // PAGE_SIZE)


def ordered_collection(catalog: Catalog, links: Links) -> dict[str, Any]:
    """The entry point (§2.3): totalItems and links to the first and last pages."""
    total = catalog.change_count()
    return {
        "@context": DISCOVERY_CONTEXT,
        "id": links.activity(),
        "type": "OrderedCollection",
        "totalItems": total,
        "first": {"id": links.activity_page(0), "type": "OrderedCollectionPage"},
        "last": {"id": links.activity_page(last_page(total)), "type": "OrderedCollectionPage"},
    }


def activity(change: Change, links: Links) -> dict[str, Any]:
    """One activity (§2.5): its type, the manifest it affects and when (endTime)."""
    return {
        "id": f"{links.activity()}/{change.seq}",
        "type": change.kind,
        "object": {"id": links.manifest(change.record_id), "type": "Manifest"},
        "endTime": change.at,
    }


_MAX_SEQ = 2**63 - 1


def ordered_collection_page(catalog: Catalog, links: Links, page: int) -> dict[str, Any] | None:
    """Page ``page`` (§2.4), or None when it lies beyond the last page."""
    # Sequence numbers are SQLite integers: a page starting past the largest one cannot exist.
    if page < 0 or (page + 1) * PAGE_SIZE > _MAX_SEQ:
        return None
    start = page * PAGE_SIZE
    changes = catalog.changes(after=start, limit=PAGE_SIZE)
    if page > 0 and not changes:
        return None
    doc: dict[str, Any] = {
        "@context": DISCOVERY_CONTEXT,
        "id": links.activity_page(page),
        "type": "OrderedCollectionPage",
        "startIndex": start,
        "partOf": {"id": links.activity(), "type": "OrderedCollection"},
    }
    if page > 0:
        doc["prev"] = {"id": links.activity_page(page - 1), "type": "OrderedCollectionPage"}
    if catalog.changes(after=start + PAGE_SIZE, limit=1):
        doc["next"] = {"id": links.activity_page(page + 1), "type": "OrderedCollectionPage"}
    doc["orderedItems"] = [activity(c, links) for c in changes if c.seq <= start + PAGE_SIZE]
    return doc


def page_is_full(catalog: Catalog, page: int) -> bool:
    """A full page never changes again, so it may be cached for long."""
    return bool(catalog.changes(after=(page + 1) * PAGE_SIZE - 1, limit=1))
