"""Fixtures for the ingest tests: curator folders built in tmp_path, archives to ingest into."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from ingest_helpers import write_image, write_records, write_toml

from archive.config import Config
from archive.context import Archive


@pytest.fixture
def make_collection(tmp_path: Path) -> Callable[..., Path]:
    """make_collection(rows, fmt="csv", encoding="utf-8", images={"images/a.jpg": seed})."""

    def make(
        rows: list[dict],
        *,
        fmt: str = "csv",
        encoding: str = "utf-8",
        images: dict[str, int] | None = None,
        name: str = "museum",
        **toml,
    ) -> Path:
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        for relative, seed in (images or {}).items():
            write_image(folder / relative, seed=seed)
        records = write_records(folder, rows, fmt, encoding)
        write_toml(folder, records, **toml)
        return folder

    return make


@pytest.fixture
def archive(config: Config):
    """An archive on the test home with no search backend."""
    arc = Archive(config)
    yield arc
    arc.close()


@pytest.fixture
def searchable(config: Config):
    """An archive with the real embedded (SQLite FTS5) search backend attached."""
    from search import get_backend

    arc = Archive(config)
    arc.search = get_backend(config)
    yield arc
    arc.close()
