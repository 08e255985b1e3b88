"""run_ingest end to end: real folders, catalog, pyramids and the real search index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pyvips
from ingest_helpers import CC_BY, row, write_image, write_records

from archive.errors import LockedError
from archive.records import image_id
from ingest.lock import write_lock
from ingest.pipeline import SEARCH_BEHIND, run_ingest
from search.base import SearchQuery

IMAGES = {"images/a.jpg": 1, "images/b.png": 2, "images/c/d.tif": 3}


def rows_abc() -> list[dict]:
    return [
        row(
            "A-1",
            "小面",
            "images/a.jpg",
            制作年代="江戸時代",
            キーワード="能面;女面",
            備考="箱あり",
        ),
        row("A-2", "唐織", "images/b.png|images/c/d.tif", 公開="非公開"),
        row("A-3", "謡本", "", 権利=CC_BY, 英語名称="Noh chant book"),
    ]


def search_ids(archive, q: str = "", public_only: bool = True) -> list[str]:
    result = archive.search.search(SearchQuery(q=q, size=100, public_only=public_only))
    return sorted(h.id for h in result.hits)


def ingest(archive, folder: Path, **kw):
    return run_ingest(archive, [str(folder)], workers=kw.pop("workers", 2), progress=None, **kw)


def test_first_ingest(make_collection, searchable) -> None:
    folder = make_collection(rows_abc(), images=IMAGES)
    report = ingest(searchable, folder)
    assert report.ok, report.render()
    inst = report.institutions[0]
    assert (inst.id, inst.added, inst.failed, inst.encoding) == ("test-museum", 3, 0, "utf-8")
    assert report.images_tiled == 3 and report.search == "ok"

    catalog = searchable.catalog
    rec = catalog.get_record("test-museum_A-1")
    assert rec.fields["keywords"] == ["能面", "女面"] and rec.extra == [["備考", "箱あり"]]
    assert (rec.date_start, rec.date_end, rec.era) == (1603, 1867, "江戸時代")
    img = rec.images[0]
    assert img.id == image_id(rec.id, "images/a.jpg") and (img.width, img.height) == (96, 64)
    assert len(img.checksum) == 64 and searchable.images.exists(img.id, img.version)
    assert catalog.get_image(img.id).version == img.version

    hidden = catalog.get_record("test-museum_A-2", public_only=False)
    assert not hidden.public and [i.source for i in hidden.images] == [
        "images/b.png",
        "images/c/d.tif",
    ]
    assert catalog.get_record("test-museum_A-3").rights == CC_BY
    assert catalog.get_institution("test-museum").source == str(folder.resolve())

    assert search_ids(searchable) == ["test-museum_A-1", "test-museum_A-3"]
    assert search_ids(searchable, "Noh chant") == ["test-museum_A-3"]
    assert catalog.get_meta(SEARCH_BEHIND) is None

    saved = json.loads(Path(report.path).read_text(encoding="utf-8"))
    assert saved["ok"] and saved["institutions"][0]["added"] == 3
    assert not list((searchable.home.images / "tmp").glob("*"))


def test_rerun_unchanged_changes_nothing(make_collection, searchable) -> None:
    folder = make_collection(rows_abc(), images=IMAGES)
    ingest(searchable, folder)
    files = {p: p.stat().st_mtime_ns for p in searchable.home.images.glob("??/*.tif")}
    changes = searchable.catalog.change_count()
    (folder / "images" / "a.jpg").touch()  # a new mtime alone is not a change
    report = ingest(searchable, folder)
    inst = report.institutions[0]
    assert (inst.added, inst.updated, inst.unchanged, inst.removed) == (0, 0, 3, 0)
    assert report.images_tiled == 0 and report.images_reused == 3
    assert {p: p.stat().st_mtime_ns for p in searchable.home.images.glob("??/*.tif")} == files
    assert searchable.catalog.change_count() == changes


def test_changed_pixels_get_a_new_version_and_the_old_pyramid_goes(
    make_collection, searchable
) -> None:
    folder = make_collection(rows_abc(), images=IMAGES)
    ingest(searchable, folder)
    old = searchable.catalog.get_record("test-museum_A-1").images[0]
    write_image(folder / "images" / "a.jpg", width=120, height=80, seed=9)
    report = ingest(searchable, folder)
    assert report.institutions[0].updated == 1 and report.images_tiled == 1
    new = searchable.catalog.get_record("test-museum_A-1").images[0]
    assert new.id == old.id and new.version != old.version and new.width == 120
    assert searchable.images.exists(new.id, new.version)
    assert not searchable.images.exists(old.id, old.version)


def test_changed_and_removed_records(make_collection, searchable) -> None:
    folder = make_collection(rows_abc(), images=IMAGES)
    ingest(searchable, folder)
    removed_images = searchable.catalog.get_record("test-museum_A-2", public_only=False).images
    rows = rows_abc()
    rows[0]["名称"] = "小面（改）"
    rows[0]["公開"] = "非公開"
    del rows[1]
    rows.append(row("A-4", "新収蔵品"))
    write_records(folder, rows, "csv")

    dry = ingest(searchable, folder, dry_run=True)
    inst = dry.institutions[0]
    assert (inst.added, inst.updated, inst.unchanged, inst.removed) == (1, 1, 1, 1)
    assert {(c.kind, c.record, tuple(c.fields)) for c in inst.changes} == {
        ("add", "A-4", ()),
        ("update", "A-1", ("public", "title")),
        ("remove", "A-2", ()),
    }
    assert searchable.catalog.count(public_only=False) == 3  # the dry run wrote nothing
    assert "would be 1 added" in dry.render()

    report = ingest(searchable, folder)
    assert report.ok and report.institutions[0].removed == 1
    assert {(c.kind, c.record) for c in report.institutions[0].changes} == {
        ("add", "A-4"),
        ("update", "A-1"),
        ("remove", "A-2"),
    }
    assert "remove  A-2" in report.render() and "add     A-4" not in report.render()
    catalog = searchable.catalog
    assert catalog.record_ids(public_only=False) == [
        "test-museum_A-1",
        "test-museum_A-3",
        "test-museum_A-4",
    ]
    assert catalog.get_record("test-museum_A-1", public_only=False).fields["title"] == "小面（改）"
    for img in removed_images:
        assert not searchable.images.exists(img.id, img.version)
    assert search_ids(searchable) == ["test-museum_A-3", "test-museum_A-4"]
    kinds = [(c.record_id, c.kind) for c in catalog.changes()][-3:]
    assert ("test-museum_A-1", "Delete") in kinds and ("test-museum_A-4", "Create") in kinds


def test_bad_rows_are_reported_and_the_rest_ingested(make_collection, archive) -> None:
    rows = rows_abc() + [
        row("A-5", 名称=""),  # no title
        row("A-6", "壊れた画像", "images/broken.jpg"),
        row("A-7", "外の画像", "../outside.jpg"),
        row("A-1", "重複", ""),  # duplicate id
        row("A-8", "権利不明", "", 権利="all rights reserved"),
    ]
    folder = make_collection(rows, images=IMAGES, fmt="csv", encoding="cp932")
    (folder / "images" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    report = ingest(archive, folder)
    inst = report.institutions[0]
    assert not report.ok and inst.encoding == "cp932"
    assert inst.added == 3 and inst.failed == 5
    where = {(f.record, f.row, f.field) for f in inst.failures}
    assert where == {
        ("A-5", 5, "title"),
        ("A-6", 6, "images"),
        ("A-7", 7, "images"),
        ("A-1", 8, "id"),
        ("A-8", 9, "rights"),
    }
    dup = next(f for f in inst.failures if f.field == "id")
    assert "already used on row 2" in dup.reason
    broken = next(f for f in inst.failures if f.record == "A-6")
    assert "images/broken.jpg" in broken.reason and broken.file == "records.csv"
    assert archive.catalog.count(public_only=False) == 3
    text = report.render()
    assert "records.csv:6, record A-6, field 'images'" in text


def test_a_failed_record_keeps_its_published_version(make_collection, archive) -> None:
    folder = make_collection(rows_abc(), images=IMAGES)
    ingest(archive, folder)
    (folder / "images" / "a.jpg").write_bytes(b"garbage")
    report = ingest(archive, folder)
    assert report.institutions[0].failed == 1 and report.institutions[0].removed == 0
    rec = archive.catalog.get_record("test-museum_A-1")
    assert archive.images.exists(rec.images[0].id, rec.images[0].version)


def test_unreadable_rows_postpone_removals(make_collection, archive) -> None:
    folder = make_collection(rows_abc(), images=IMAGES)
    ingest(archive, folder)
    text = (folder / "records.csv").read_text(encoding="utf-8").splitlines()
    text[2] += ",one,cell,too,many"
    (folder / "records.csv").write_text("\n".join(text) + "\n", encoding="utf-8")
    report = ingest(archive, folder)
    inst = report.institutions[0]
    assert inst.failed == 1 and inst.removed == 0 and "not removed" in inst.note
    assert archive.catalog.count(public_only=False) == 3


@pytest.mark.parametrize("fmt", ["tsv", "json", "jsonl"])
def test_other_formats(make_collection, archive, fmt: str) -> None:
    folder = make_collection(rows_abc(), images=IMAGES, fmt=fmt)
    report = ingest(archive, folder, workers=1)
    assert report.ok, report.render()
    assert archive.catalog.count(public_only=False) == 3


def test_json_lists_for_multi_fields(make_collection, archive) -> None:
    rows = [
        {
            "資料番号": "J-1",
            "名称": "巻物",
            "画像ファイル": ["images/a.jpg", "images/b.png"],
            "キーワード": ["絵巻", "物語"],
            "表示形式": "continuous",
        }
    ]
    folder = make_collection(rows, images=IMAGES, fmt="jsonl")
    assert ingest(archive, folder).ok
    rec = archive.catalog.get_record("test-museum_J-1")
    assert rec.fields["keywords"] == ["絵巻", "物語"] and len(rec.images) == 2
    assert rec.fields["behavior"] == "continuous"


def test_multi_page_tiff_is_one_record_with_canvases(make_collection, archive) -> None:
    folder = make_collection([row("T-1", "冊子", "images/book.tif")])
    pages = [pyvips.Image.black(50, 40) + seed * 40 for seed in range(3)]
    book = pyvips.Image.arrayjoin(pages, across=1).cast("uchar").copy()
    book.set_type(pyvips.GValue.gint_type, "page-height", 40)
    (folder / "images").mkdir(exist_ok=True)
    book.tiffsave(str(folder / "images" / "book.tif"))
    assert ingest(archive, folder).ok
    images = archive.catalog.get_record("test-museum_T-1").images
    assert [(i.page, i.source, i.width) for i in images] == [
        (0, "images/book.tif", 50),
        (1, "images/book.tif", 50),
        (2, "images/book.tif", 50),
    ]
    assert len({i.id for i in images}) == 3


def test_bad_folder_does_not_stop_the_others(make_collection, archive, tmp_path) -> None:
    good = make_collection(rows_abc(), images=IMAGES)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "institution.toml").write_text("id = 'x'\n[[[", encoding="utf-8")
    twin = make_collection(rows_abc(), images=IMAGES, name="twin")
    report = run_ingest(archive, [str(good), str(bad), str(twin)], workers=1, progress=None)
    assert not report.ok
    assert report.institutions[0].ok
    assert "not valid TOML" in report.institutions[1].error
    assert "also used by" in report.institutions[2].error


def test_missing_column_fails_the_folder(make_collection, archive) -> None:
    folder = make_collection([{"資料番号": "A", "名称": "x"}])
    report = ingest(archive, folder)
    error = report.institutions[0].error
    assert "column '英語名称' (mapped to title_en) is not in the header" in error
    assert "records.csv:1" in error


def test_only_one_writer(make_collection, archive) -> None:
    folder = make_collection(rows_abc(), images=IMAGES)
    with write_lock(archive.home.lock):
        with pytest.raises(LockedError, match="another ingest is writing"):
            ingest(archive, folder)
        assert ingest(archive, folder, dry_run=True).ok  # a dry run does not need the lock
    assert ingest(archive, folder).ok


def test_search_catches_up_after_a_run_left_it_behind(make_collection, searchable) -> None:
    folder = make_collection(rows_abc(), images=IMAGES)
    search = searchable.search
    searchable.search = None  # a run without search (as `archive ingest` never does)
    ingest(searchable, folder)
    searchable.catalog.set_meta(SEARCH_BEHIND, "2026-01-01T00:00:00Z: connection refused")
    searchable.search = search
    assert search_ids(searchable) == []
    report = ingest(searchable, folder)
    assert report.search.startswith("rebuilt") and report.ok
    assert search_ids(searchable) == ["test-museum_A-1", "test-museum_A-3"]
    assert searchable.catalog.get_meta(SEARCH_BEHIND) is None


def test_search_down_loses_nothing(make_collection, config, runner) -> None:
    """A real cluster client against a port nothing listens on: the catalog and pyramids are
    written, the run fails with a clear message, and the catalog remembers the index is behind."""
    import socket

    from archive.cli import cli
    from archive.context import Archive
    from search import get_backend

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the ingest connects
    down = config.replace(
        search_backend="opensearch", search_url=f"http://127.0.0.1:{port}", search_timeout=2.0
    )
    archive = Archive(down)
    archive.search = get_backend(down)
    folder = make_collection(rows_abc(), images=IMAGES)
    report = ingest(archive, folder)
    assert not report.ok and report.search.startswith("behind: ")
    assert "unreachable" in report.search and "archive reindex" in report.search
    assert archive.catalog.count(public_only=False) == 3
    assert "unreachable" in archive.catalog.get_meta(SEARCH_BEHIND)
    archive.close()

    env = {
        "ARCHIVE_SEARCH_BACKEND": "opensearch",
        "ARCHIVE_SEARCH_URL": f"http://127.0.0.1:{port}",
        "ARCHIVE_SEARCH_TIMEOUT": "2",
    }
    write_image(folder / "images" / "a.jpg", seed=5)
    result = runner.invoke(cli, ["--home", str(config.home), "ingest", str(folder)], env=env)
    assert result.exit_code == 1 and "Search index: behind:" in result.output
    assert "Traceback" not in result.output
