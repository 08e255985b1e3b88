"""The core: settings order, ids, rights, the catalog's change log, the image store."""

from __future__ import annotations

import pytest

from archive.catalog import Catalog
from archive.config import Config
from archive.errors import ConfigError, NotFound
from archive.records import (
    IMAGE_ID_RE,
    RECORD_ID_RE,
    ImageRef,
    Record,
    image_id,
    is_valid_rights,
    record_id,
)
from archive.storage import ImageStore


def test_settings_load_in_order(home):
    (home / "archive.toml").write_text('search_index = "from-toml"\nworkers = 3\n')
    config = Config.load(home, overrides={"workers": 5}, environ={"ARCHIVE_SEARCH_INDEX": "env"})
    assert config.search_index == "env"
    assert config.workers == 5
    assert Config.load(home, environ={}).search_index == "from-toml"


@pytest.mark.parametrize(
    ("toml", "message"),
    [('workers = "many"', "workers"), ("no_such = 1", "no_such"), ("workers = ", "archive.toml")],
)
def test_bad_settings_name_the_culprit(home, toml, message):
    (home / "archive.toml").write_text(toml)
    with pytest.raises(ConfigError, match=message):
        Config.load(home, environ={})


def test_bad_environment_value_names_the_variable(home):
    with pytest.raises(ConfigError, match="ARCHIVE_SEARCH_VERIFY_CERTS"):
        Config.load(home, environ={"ARCHIVE_SEARCH_VERIFY_CERTS": "perhaps"})


@pytest.mark.parametrize(
    ("local", "expected"),
    [("N-0012", "noh-museum_N-0012"), ("能-12", None), ("a/b", None), ("x_y", None)],
)
def test_record_ids_are_stable_and_url_safe(local, expected):
    rid = record_id("noh-museum", local)
    assert rid == record_id("noh-museum", local)
    assert RECORD_ID_RE.match(rid)
    if expected:
        assert rid == expected
    else:
        assert rid.startswith("noh-museum__")
    iid = image_id(rid, "images/a.jpg")
    assert IMAGE_ID_RE.match(iid)
    assert iid != image_id(rid, "images/a.jpg", page=1)


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("http://rightsstatements.org/vocab/InC/1.0/", True),
        ("https://creativecommons.org/licenses/by/4.0/", True),
        ("http://creativecommons.org/publicdomain/zero/1.0/", True),
        ("https://creativecommons.org/licenses/by-nc-sa/2.1/jp/", True),
        ("https://example.org/licence", False),
        ("http://rightsstatements.org/page/InC/1.0/", False),
        ("", False),
    ],
)
def test_rights_uris(uri, ok):
    assert is_valid_rights(uri) is ok


def make_record(local="A-1", public=True, title="茶碗") -> Record:
    rid = record_id("craft", local)
    return Record(
        id=rid,
        institution="craft",
        local_id=local,
        fields={"id": local, "title": title},
        public=public,
        rights="http://rightsstatements.org/vocab/InC/1.0/",
        images=[
            ImageRef(id=image_id(rid, "a.jpg"), source="a.jpg", width=10, height=20, version="v1")
        ],
    )


def test_catalog_logs_what_the_public_sees(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    record = make_record()
    assert catalog.put_record(record) == "Create"
    assert catalog.put_record(make_record()) is None  # unchanged: nothing happens
    assert catalog.put_record(make_record(title="茶碗 銘「月」")) == "Update"
    assert catalog.put_record(make_record(public=False)) == "Delete"
    with pytest.raises(NotFound):
        catalog.get_record(record.id)
    assert catalog.get_record(record.id, public_only=False).public is False
    assert catalog.get_image(record.images[0].id).public is False
    assert catalog.put_record(make_record()) == "Create"
    assert catalog.delete_record(record.id) is not None
    kinds = [c.kind for c in catalog.changes()]
    assert kinds == ["Create", "Update", "Delete", "Create", "Delete"]
    with pytest.raises(NotFound):
        catalog.get_image(record.images[0].id)


def test_english_names_take_the_most_common_and_ignore_what_is_hidden(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    given = [
        ("A-1", True, {"material": "紙本著色", "material_en": "Colour on paper"}),
        ("A-2", True, {"material": "紙本著色", "material_en": "Colour on paper"}),
        ("A-3", True, {"material": "紙本著色", "material_en": "Painted paper"}),
        ("A-4", True, {"material": "紙本著色"}),  # exports no English: not counted
        ("A-5", False, {"material": "絹本著色", "material_en": "Colour on silk"}),  # hidden
        ("A-6", True, {"creator": "不詳", "creator_en": "Unknown"}),
    ]
    for local, public, fields in given:
        rec = make_record(local, public=public)
        rec.fields.update(fields)
        catalog.put_record(rec)
    names = catalog.english_names(("material", "creator"))
    assert names == {"material": {"紙本著色": "Colour on paper"}, "creator": {"不詳": "Unknown"}}
    with pytest.raises(ValueError):
        catalog.english_names(("dimensions",))  # no English twin
    catalog.close()


def test_catalog_keeps_created_at_across_updates(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.put_record(make_record())
    created = catalog.get_record(make_record().id).created_at
    catalog.put_record(make_record(title="別名"))
    assert catalog.get_record(make_record().id).created_at == created


def test_image_store_refuses_ids_that_could_escape(tmp_path):
    store = ImageStore(tmp_path / "images")
    for bad in ("../etc/passwd", "a~0123456789/../../x", "", "craft_A-1~zz"):
        with pytest.raises(NotFound):
            store.path(bad, "v1")
    with pytest.raises(NotFound):
        store.path("craft_A-1~0123456789", "../v")


def test_image_store_commit_and_sweep(tmp_path):
    store = ImageStore(tmp_path / "images")
    tmp = store.temp_path()
    tmp.write_bytes(b"pyramid")
    final = store.commit(tmp, "craft_A-1~0123456789", "v1")
    assert final.read_bytes() == b"pyramid" and not tmp.exists()
    assert store.sweep({("craft_A-1~0123456789", "v1")}) == 0
    assert store.sweep(set()) == 1
    assert not final.exists()


def test_sqlite_connections_are_per_thread_and_renewed_after_fork(tmp_path):
    import os
    import threading

    from archive.sqlite import Connections

    conns = Connections(tmp_path / "x.sqlite", ("foreign_keys=ON",), rows=True)
    main = conns.get()
    assert conns.get() is main
    assert main.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert main.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    other = []
    thread = threading.Thread(target=lambda: other.append(conns.get()))
    thread.start()
    thread.join()
    assert other[0] is not main
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child must not reuse the parent's connection
        os.write(write, b"1" if conns.get() is not main else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    conns.close()
    assert conns.get() is not main


def test_sqlite_transactions_commit_roll_back_and_nest(tmp_path):
    from archive.sqlite import Connections

    conns = Connections(tmp_path / "x.sqlite")
    conns.get().execute("CREATE TABLE t (v INTEGER)")
    with conns.transaction() as db:
        db.execute("INSERT INTO t VALUES (1)")
        with conns.transaction() as inner:  # joins the outer transaction
            inner.execute("INSERT INTO t VALUES (2)")
    with pytest.raises(RuntimeError), conns.transaction() as db:
        db.execute("INSERT INTO t VALUES (3)")
        raise RuntimeError("abandon")
    assert [r[0] for r in conns.get().execute("SELECT v FROM t ORDER BY v")] == [1, 2]
    assert not conns.get().in_transaction
