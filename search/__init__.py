"""Search backends behind one contract: embedded SQLite FTS5 by default, a cluster when needed.

``get_backend(config)`` picks one by name from ``BACKENDS``; an unknown name is a
configuration error at start-up.
"""

from .base import BACKENDS, SearchBackend, SearchQuery, SearchResult, get_backend

__all__ = ["BACKENDS", "SearchBackend", "SearchQuery", "SearchResult", "get_backend"]
