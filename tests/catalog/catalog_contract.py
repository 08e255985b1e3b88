"""The catalog contract, one suite every backend subclass runs (as tests/search does).

A subclass provides ``open_catalog``: a fixture returning a function that opens the
same (initially empty) catalog once more each time it is called, as another process
or node would. Everything here must hold, with the same values, on every backend.
"""

from __future__ import annotations

import re
import threading
import time

import pytest

from archive.catalog import SCHEMA_VERSION, Catalog, Change
from archive.errors import LockedError, NotFound
from archive.records import ImageRef, Institution, Record, image_id, record_id

INC = "http://rightsstatements.org/vocab/InC/1.0/"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def inst(inst_id: str = "craft", name: str = "工芸館") -> Institution:
    return Institution(id=inst_id, name={"ja": name, "en": "Craft"}, rights=INC)


def rec(
    local: str = "A-1",
    *,
    institution: str = "craft",
    public: bool = True,
    title: str = "茶碗",
    images: int = 1,
    cap: int = 0,
    **fields,
) -> Record:
    rid = record_id(institution, local)
    return Record(
        id=rid,
        institution=institution,
        local_id=local,
        fields={"id": local, "title": title, **fields},
        public=public,
        rights=INC,
        max_image_size=cap,
        images=[
            ImageRef(
                id=image_id(rid, f"{i}.jpg"),
                source=f"{i}.jpg",
                width=100 + i,
                height=200 + i,
                version=f"v{i}",
            )
            for i in range(images)
        ],
    )


class CatalogContract:
    @pytest.fixture
    def catalog(self, open_catalog) -> Catalog:
        catalog = open_catalog()
        yield catalog
        catalog.close()

    # -- institutions -------------------------------------------------------------------------
    def test_institutions_round_trip_in_id_order(self, catalog):
        for inst_id in ("noh", "craft", "b-museum"):
            catalog.put_institution(inst(inst_id))
        assert [i.id for i in catalog.institutions()] == ["b-museum", "craft", "noh"]
        assert catalog.get_institution("noh") == inst("noh")
        with pytest.raises(NotFound):
            catalog.get_institution("none")
        stamp = catalog.institution_updated_at("noh")
        assert STAMP.match(stamp) and catalog.institution_updated_at() >= stamp
        assert catalog.institution_updated_at("none") is None

    def test_an_unchanged_institution_keeps_its_time(self, catalog):
        catalog.put_institution(inst())
        before = catalog.institution_updated_at("craft")
        time.sleep(1.1)
        catalog.put_institution(inst())
        assert catalog.institution_updated_at("craft") == before
        catalog.put_institution(inst(name="新しい名前"))
        assert catalog.institution_updated_at("craft") > before

    # -- records and the change log -----------------------------------------------------------
    def test_the_change_log_says_what_the_public_sees(self, catalog):
        record = rec()
        assert catalog.put_record(record) == "Create"
        assert STAMP.match(record.created_at) and record.updated_at == record.created_at
        assert catalog.put_record(rec()) is None
        assert catalog.put_record(rec(title="茶碗 銘「月」")) == "Update"
        assert catalog.put_record(rec(public=False)) == "Delete"
        assert catalog.put_record(rec(public=False, title="x")) is None  # hidden stays hidden
        with pytest.raises(NotFound):
            catalog.get_record(record.id)
        assert catalog.get_record(record.id, public_only=False).public is False
        assert catalog.get_image(record.images[0].id).public is False
        assert catalog.put_record(rec()) == "Create"
        assert catalog.delete_record(record.id).id == record.id
        assert catalog.delete_record(record.id) is None
        changes = catalog.changes()
        assert [c.kind for c in changes] == ["Create", "Update", "Delete", "Create", "Delete"]
        assert [c.seq for c in changes] == [1, 2, 3, 4, 5]
        assert all(isinstance(c, Change) and STAMP.match(c.at) for c in changes)
        assert catalog.changes(after=3, limit=1) == changes[3:4]
        assert catalog.change_count() == 5
        assert catalog.earliest_change() == changes[0].at
        assert catalog.last_modified() == changes[-1].at
        with pytest.raises(NotFound):
            catalog.get_image(record.images[0].id)

    def test_an_empty_catalog(self, catalog):
        assert catalog.count() == 0 and catalog.changes() == []
        assert catalog.earliest_change() is None and catalog.last_modified() is None
        assert catalog.stats() == [] and catalog.latest_changes() == []
        assert list(catalog.records()) == [] and catalog.record_ids() == []
        assert catalog.english_names(("title",)) == {"title": {}}
        assert catalog.image_versions() == set() and catalog.public_images() == []

    def test_a_record_comes_back_whole(self, catalog):
        record = rec(images=3, cap=800, creator="不詳", keywords=["能", "面"])
        catalog.put_record(record)
        back = catalog.get_record(record.id)
        assert back.to_json() == record.to_json()
        assert back.created_at == record.created_at
        image = catalog.get_image(record.images[2].id)
        assert (image.position, image.width, image.height, image.version) == (2, 102, 202, "v2")
        assert image.max_image_size == 800 and image.public
        assert image.record_id == record.id and image.institution == "craft"
        assert image.updated_at == record.updated_at

    def test_created_at_survives_updates(self, catalog):
        catalog.put_record(rec())
        created = catalog.get_record(rec().id).created_at
        time.sleep(1.1)
        catalog.put_record(rec(title="別名"))
        again = catalog.get_record(rec().id)
        assert again.created_at == created and again.updated_at > created

    def test_ids_sort_in_byte_order(self, catalog):
        # SQLite compares text as bytes: upper case before lower, '-' before '_', ASCII
        # before kana. The PostgreSQL catalog must page and sort exactly alike.
        locals_ = ["b", "B", "a-1", "a_1", "a1", "Z", "z", "能", "0", "a.1", "A~"]
        for local in locals_:
            catalog.put_record(rec(local, images=0))
        ids = [record_id("craft", x) for x in locals_]
        expected = sorted(ids, key=lambda s: s.encode())
        assert catalog.record_ids() == expected
        assert [r.id for r in catalog.records(batch=3)] == expected
        assert [r.id for r in catalog.records("craft", batch=2)] == expected

    def test_filters_by_institution_and_visibility(self, catalog):
        catalog.put_institution(inst("craft"))
        catalog.put_institution(inst("noh"))
        catalog.put_record(rec("1"))
        catalog.put_record(rec("2", public=False, images=2))
        catalog.put_record(rec("3", institution="noh"))
        assert catalog.count() == 2 and catalog.count(public_only=False) == 3
        assert catalog.count("craft") == 1 and catalog.count("craft", public_only=False) == 2
        assert catalog.record_ids("noh") == [record_id("noh", "3")]
        hidden = record_id("craft", "2")
        assert catalog.record_ids(public_only=False)[1] == hidden
        assert [r.id for r in catalog.records(public_only=False)][1] == hidden
        assert catalog.get_records(
            [record_id("noh", "3"), hidden, "x", record_id("craft", "1")]
        ) == [
            catalog.get_record(record_id("noh", "3")),
            catalog.get_record(record_id("craft", "1")),
        ]
        assert len(catalog.get_records([hidden], public_only=False)) == 1
        assert catalog.get_records([]) == []
        assert set(catalog.checksums("craft")) == {"1", "2"}
        sizes = catalog.image_sizes("craft")
        assert len(sizes) == 3 and sorted(sizes.values())[0] == ("v0", 100, 200)
        assert len(catalog.image_versions()) == 4
        assert catalog.public_images() == sorted(
            [
                (rec("1").images[0].id, rec("1").id),
                (rec("3", institution="noh").images[0].id, rec("3", institution="noh").id),
            ],
            key=lambda pair: pair[0].encode(),
        )
        stats = catalog.stats()
        assert [(s["institution"], s["records"], s["public"], s["images"]) for s in stats] == [
            ("craft", 2, 1, 3),
            ("noh", 1, 1, 1),
        ]
        assert all(STAMP.match(s["updated_at"]) for s in stats)

    def test_latest_changes_is_what_a_harvester_lists(self, catalog):
        catalog.put_record(rec("1"))
        catalog.put_record(rec("2"))
        catalog.put_record(rec("3", institution="noh"))
        catalog.put_record(rec("1", title="改題"))
        catalog.delete_record(record_id("craft", "2"))
        latest = catalog.latest_changes()
        assert [(c.record_id.rsplit("_", 1)[1], c.kind, c.seq) for c in latest] == [
            ("3", "Create", 3),
            ("1", "Update", 4),
            ("2", "Delete", 5),
        ]
        assert catalog.latest_changes(after=3, limit=1) == latest[1:2]
        assert catalog.latest_changes(institution="noh") == latest[:1]
        assert catalog.latest_changes(record_id=record_id("craft", "1")) == latest[1:2]
        at = latest[0].at
        assert catalog.latest_changes(since=at, until=at) == [c for c in latest if c.at == at]
        assert catalog.latest_changes(since="9999-01-01T00:00:00Z") == []

    def test_english_names_take_the_most_common(self, catalog):
        given = [
            ("A-1", True, {"material": "紙本著色", "material_en": "Colour on paper"}),
            ("A-2", True, {"material": "紙本著色", "material_en": "Colour on paper"}),
            ("A-3", True, {"material": "紙本著色", "material_en": "Painted paper"}),
            ("A-4", True, {"material": "紙本著色"}),
            ("A-5", False, {"material": "絹本著色", "material_en": "Colour on silk"}),
            ("A-6", True, {"creator": "不詳", "creator_en": "Unknown"}),
            ("A-7", True, {"creator": "甲", "creator_en": "B"}),
            ("A-8", True, {"creator": "甲", "creator_en": "A"}),  # a tie: the smaller wins
        ]
        for local, public, fields in given:
            catalog.put_record(rec(local, public=public, **fields))
        names = catalog.english_names(("material", "creator", "title"))
        assert names == {
            "material": {"紙本著色": "Colour on paper"},
            "creator": {"不詳": "Unknown", "甲": "A"},
            "title": {},
        }
        with pytest.raises(ValueError):
            catalog.english_names(("dimensions",))

    # -- meta, transactions, versions ----------------------------------------------------------
    def test_meta_values(self, catalog):
        assert catalog.get_meta("search_behind") is None
        catalog.set_meta("search_behind", "2025-01-01T00:00:00Z: 検索が落ちた")
        assert catalog.get_meta("search_behind") == "2025-01-01T00:00:00Z: 検索が落ちた"
        catalog.set_meta("search_behind", "again")
        assert catalog.get_meta("search_behind") == "again"
        catalog.set_meta("search_behind", None)
        assert catalog.get_meta("search_behind") is None
        assert catalog.schema_version() == SCHEMA_VERSION

    def test_a_transaction_commits_as_one_or_not_at_all(self, catalog, open_catalog):
        other = open_catalog()
        with catalog.transaction():
            catalog.put_record(rec("1"))
            with catalog.transaction():  # joins the outer one
                catalog.put_record(rec("2"))
        assert other.count() == 2
        with pytest.raises(RuntimeError), catalog.transaction():
            catalog.put_record(rec("3"))
            catalog.set_meta("k", "v")
            raise RuntimeError("abandon")
        assert other.count() == 2 and other.get_meta("k") is None
        assert [c.seq for c in other.changes()] == [1, 2]
        catalog.put_record(rec("4"))
        assert [c.seq for c in other.changes()] == [1, 2, 3]  # no gap where the rollback was
        other.close()

    def test_a_second_opening_sees_the_same_catalog(self, catalog, open_catalog):
        catalog.put_institution(inst())
        catalog.put_record(rec())
        again = open_catalog()
        assert again.get_record(rec().id).to_json() == catalog.get_record(rec().id).to_json()
        assert again.schema_version() == SCHEMA_VERSION
        again.close()

    def test_threads_read_and_write(self, catalog):
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(10):
                    catalog.put_record(rec(f"{n}-{i}", images=0))
                    catalog.count()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert catalog.count() == 40 and [c.seq for c in catalog.changes()] == list(range(1, 41))

    # -- across processes and nodes ------------------------------------------------------------
    def test_generation_moves_when_another_writer_commits(self, catalog, open_catalog):
        reader = open_catalog()
        before = reader.generation()
        assert reader.generation() == before  # nothing happened
        catalog.put_record(rec())
        deadline = time.monotonic() + 5
        while reader.generation() == before:
            assert time.monotonic() < deadline, "a commit never showed in generation()"
            time.sleep(0.05)
        mine = catalog.generation()
        catalog.set_meta("k", "v")
        assert catalog.generation() != mine  # one's own commit shows at once
        reader.close()

    def test_one_writer_holds_the_lock_and_others_are_told_who(self, catalog, open_catalog):
        other = open_catalog()
        assert catalog.lock_holder() is None
        with catalog.write_lock():
            holder = other.lock_holder()
            assert holder and "pid " in holder and "started " in holder
            with pytest.raises(LockedError, match="another ingest is writing"), other.write_lock():
                pass
            catalog.put_record(rec())  # holding the lock does not stop the holder writing
        assert other.lock_holder() is None
        with other.write_lock():
            pass
        other.close()
