"""The collection format: encodings, file shapes, institution.toml and the field mapping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ingest_helpers import CC_BY, INC, row, write_image, write_records, write_toml

from archive.errors import CollectionError
from ingest.collection import load_collection
from ingest.mapping import check_header, map_row
from ingest.readers import Row, decode, read_records

# Characters strict Shift_JIS cannot encode but CP932 (what Windows systems write) can.
CP932_ONLY = "髙橋 Ⅲ ㎝ ①"


# -- encodings and readers -------------------------------------------------------------------
def test_cp932_is_detected_where_shift_jis_fails() -> None:
    data = f"資料番号,名称\nA-1,{CP932_ONLY}\n".encode("cp932")
    with pytest.raises(UnicodeDecodeError):
        data.decode("shift_jis")
    text, codec = decode(data, "auto", "records.csv")
    assert codec == "cp932" and CP932_ONLY in text


def test_utf8_with_bom_has_a_clean_first_column(tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    path.write_bytes("資料番号,名称\nA-1,能面\n".encode("utf-8-sig"))
    header, codec, rows = read_records(path)
    assert header == ["資料番号", "名称"] and codec == "utf-8"
    assert [r.values for r in rows] == [{"資料番号": "A-1", "名称": "能面"}]


def test_undecodable_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    path.write_bytes(b"a,b\n1,2\n" + b"3,\xff\xfe\xfa\n")
    with pytest.raises(CollectionError) as err:
        read_records(path, name="records.csv")
    assert "records.csv" in str(err.value) and "line 3" in str(err.value)
    with pytest.raises(CollectionError, match="not valid utf-8 at line 3"):
        read_records(path, encoding="utf-8", name="records.csv")


def test_csv_rows_are_numbered_by_source_line_and_bad_rows_go_on(tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    path.write_text('id,title\nA,"two\nlines"\nB,too,many\n\nC,ok\n', encoding="utf-8")
    _, _, rows = read_records(path)
    rows = list(rows)
    assert [(r.number, r.error is None) for r in rows] == [(2, True), (4, False), (6, True)]
    assert rows[0].values["title"] == "two\nlines"
    assert "3 cells but the header has 2" in rows[1].error


def test_tsv(tmp_path: Path) -> None:
    path = tmp_path / "records.tsv"
    path.write_text("id\ttitle\nA\t能, 面\n", encoding="utf-8")
    _, _, rows = read_records(path)
    assert [r.values for r in rows] == [{"id": "A", "title": "能, 面"}]


def test_json_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text(
        '{"records": [{"id": "A", "kw": ["能", "面"], "n": 3, "x": null}, [1]]}', encoding="utf-8"
    )
    _, _, rows = read_records(tmp_path / "r.json")
    rows = list(rows)
    assert rows[0].values == {"id": "A", "kw": ["能", "面"], "n": "3", "x": ""}
    assert rows[1].number == 2 and "expected an object" in rows[1].error
    (tmp_path / "r.jsonl").write_text('{"id": "A"}\n\n{"id": \n{"id": "C"}\n', encoding="utf-8")
    _, _, rows = read_records(tmp_path / "r.jsonl")
    assert [(r.number, r.error is None) for r in rows] == [(1, True), (3, False), (4, True)]


def test_broken_json_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text('[{"id": "A"},', encoding="utf-8")
    with pytest.raises(CollectionError, match="not valid JSON"):
        list(read_records(tmp_path / "r.json")[2])


# -- institution.toml ------------------------------------------------------------------------
def _toml(folder: Path, text: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "records.csv").write_text("資料番号,名称\n", encoding="utf-8")
    (folder / "institution.toml").write_text(text, encoding="utf-8")


BASE = (
    f'id = "m"\nname = {{ ja = "館" }}\nrights = "{INC}"\n'
    '[records]\npath = "records.csv"\n[fields]\nid = "資料番号"\ntitle = "名称"\n'
)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (('id = "m"', 'id = "Bad ID"'), "id", "lower-case"),
        ((f'rights = "{INC}"', 'rights = "All rights reserved"'), "rights", "Creative Commons"),
        (("[records]", 'logo = "../logo.png"\n[records]'), "logo", "inside the folder"),
        (("[records]", 'logo = "missing.png"\n[records]'), "logo", "does not exist"),
        (("[records]", "max_image_size = -1\n[records]"), "max_image_size", ">= 0"),
        (('path = "records.csv"', 'path = "../records.csv"'), "records.path", "inside"),
        (('path = "records.csv"', 'path = "records.numbers"'), "records.path", "must end in"),
        (('title = "名称"', 'title = "名称"\ncolour = "色"'), "fields.colour", "unknown field"),
        (('title = "名称"\n', ""), "fields.title", "must map"),
        (("[records]", '[records]\nencoding = "klingon"'), "records.encoding", "unknown"),
    ],
)
def test_institution_toml_errors(tmp_path: Path, change, field: str, message: str) -> None:
    assert change[0] in BASE
    _toml(tmp_path / "m", BASE.replace(*change))
    with pytest.raises(CollectionError) as err:
        load_collection(tmp_path / "m")
    assert err.value.field == field and message in err.value.reason
    assert err.value.file.endswith("institution.toml")


def test_institution_toml_full(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    _toml(
        folder,
        BASE.replace(
            "[records]",
            (
                'homepage = "https://example.org/"\nlogo = "logo.png"\nmax_image_size = 1200\n'
                'credit = { ja = "所蔵：館", en = "Courtesy of the museum" }\n'
                'description = { ja = "説明", en = "About" }\n[records]'
            ),
        ),
    )
    write_image(folder / "logo.png")
    collection = load_collection(folder)
    inst = collection.institution
    assert inst.credit == {"ja": "所蔵：館", "en": "Courtesy of the museum"}
    assert inst.description["en"] == "About" and inst.max_image_size == 1200
    assert inst.logo == "logo.png" and inst.source == str(folder.resolve())


def test_not_a_collection(tmp_path: Path) -> None:
    with pytest.raises(CollectionError, match="no institution.toml in this folder; `archive init"):
        load_collection(tmp_path)


def test_missing_column_names_the_field(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    _toml(folder, BASE + 'creator = "作者"\n')
    collection = load_collection(folder)
    with pytest.raises(CollectionError) as err:
        check_header(collection, ["資料番号", "名称"])
    assert err.value.field == "fields.creator" and err.value.row == 1


# -- mapping ---------------------------------------------------------------------------------
@pytest.fixture
def collection(tmp_path: Path):
    folder = tmp_path / "museum"
    folder.mkdir()
    write_image(folder / "images" / "a.jpg")
    write_image(folder / "images" / "sub" / "b.png")
    write_toml(folder, write_records(folder, [row("A")], "csv"))
    return load_collection(folder)


def test_full_mapping(collection) -> None:
    source = {
        "資料番号": "N-12",
        "名称": "小面",
        "英語名称": "Ko-omote mask",
        "作者": "河内",
        "制作年代": "江戸時代前期",
        "キーワード": "能面；女面、小面|能",
        "権利": CC_BY,
        "公開": "公開",
        "公開画像サイズ": "１，２００",
        "表示形式": "individuals",
        "画像ファイル": "images/a.jpg; images/sub/b.png",
        "備考": "箱書あり",
        "空": "",
        "寄贈者": "某家",
    }
    draft = map_row(collection, Row(7, source))
    rec = draft.record
    assert rec.id == "test-museum_N-12" and rec.local_id == "N-12"
    assert rec.fields["title_en"] == "Ko-omote mask"
    assert rec.fields["keywords"] == ["能面", "女面", "小面", "能"]
    assert rec.fields["images"] == ["images/a.jpg", "images/sub/b.png"]
    assert rec.extra == [["備考", "箱書あり"], ["寄贈者", "某家"]]
    assert rec.public is True and rec.rights == CC_BY and rec.max_image_size == 1200
    assert (rec.date_start, rec.date_end, rec.era) == (1603, 1690, "江戸時代")
    assert [i.source for i in rec.images] == ["images/a.jpg", "images/sub/b.png"]
    assert rec.source.file == "records.csv" and rec.source.row == 7


def test_defaults_from_the_institution(collection) -> None:
    rec = map_row(collection, Row(2, row("Ｎ－１２"))).record
    assert rec.rights == INC and rec.public and rec.max_image_size == 0
    assert rec.id == "test-museum_N-12"  # NFKC: full-width digits make the same id
    assert rec.local_id == "Ｎ－１２"  # the original is kept for display


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"資料番号": ""}, "id", "no id"),
        ({"名称": ""}, "title", "no title"),
        ({"公開": "maybe"}, "public", "public must be"),
        ({"権利": "© the museum"}, "rights", "Creative Commons"),
        ({"公開画像サイズ": "large"}, "max_image_size", "whole number"),
        ({"表示形式": "sideways"}, "behavior", "paged, continuous, individuals"),
        ({"閲覧方向": "diagonal"}, "viewing_direction", "right-to-left"),
        ({"画像ファイル": "../secret.jpg"}, "images", "leaves the institution folder"),
        ({"画像ファイル": "/etc/passwd"}, "images", "leaves the institution folder"),
        ({"画像ファイル": "images/none.jpg"}, "images", "does not exist"),
        ({"画像ファイル": "images/a.jpg|images/a.jpg"}, "images", "listed twice"),
    ],
)
def test_bad_records(collection, values: dict, field: str, message: str) -> None:
    source = row("A", images="images/a.jpg") | values
    with pytest.raises(CollectionError) as err:
        map_row(collection, Row(5, source))
    assert err.value.field == field and message in err.value.reason
    assert err.value.row == 5 and err.value.file == "records.csv"


@pytest.mark.parametrize(
    ("column", "value", "field", "term"),
    [
        ("表示形式", "巻子", "behavior", "continuous"),
        ("表示形式", "Book", "behavior", "paged"),
        ("表示形式", "ｐａｇｅｄ", "behavior", "paged"),
        ("閲覧方向", "右から左", "viewing_direction", "right-to-left"),
        ("閲覧方向", "RTL", "viewing_direction", "right-to-left"),
        ("閲覧方向", "縦書き", "viewing_direction", "right-to-left"),
        ("閲覧方向", "Top-To-Bottom", "viewing_direction", "top-to-bottom"),
        ("閲覧方向", "左 → 右", "viewing_direction", "left-to-right"),
    ],
)
def test_controlled_values_in_english_or_japanese(collection, column, value, field, term):
    """Stored as the IIIF term, so manifests, exports and re-ingests agree."""
    rec = map_row(collection, Row(2, row("A", **{column: value}))).record
    assert rec.fields[field] == term


@pytest.mark.parametrize("value", ["false", "0", "no", "非公開", "FALSE", "×"])
def test_not_public(collection, value: str) -> None:
    assert map_row(collection, Row(2, row("A", 公開=value))).record.public is False


def test_symlink_out_of_the_folder_is_refused(collection, tmp_path: Path) -> None:
    outside = write_image(tmp_path / "outside.jpg")
    os.symlink(outside, collection.folder / "images" / "link.jpg")
    with pytest.raises(CollectionError, match="leaves the institution folder"):
        map_row(collection, Row(2, row("A", images="images/link.jpg")))
    inside = collection.folder / "images" / "a.jpg"
    os.symlink(inside, collection.folder / "images" / "ok.jpg")
    assert map_row(collection, Row(2, row("A", images="images/ok.jpg"))).image_paths == [inside]


def test_decomposed_file_names_are_found(collection) -> None:
    import unicodedata

    name = "images/が.jpg"
    write_image(collection.folder / unicodedata.normalize("NFD", name))
    draft = map_row(collection, Row(2, row("A", images=unicodedata.normalize("NFC", name))))
    assert draft.image_paths[0].name == unicodedata.normalize("NFD", "が.jpg")


def test_record_to_dict_is_asdict(collection) -> None:
    """Record.to_dict is hand-written for speed; it must stay exactly dataclasses.asdict."""
    from dataclasses import asdict

    source = row("N-1", images="images/a.jpg", キーワード="能;面", 制作年代="明治10年", 備考="x")
    rec = map_row(collection, Row(3, source)).record
    rec.images[0].width = 10
    assert rec.to_dict() == asdict(rec)
    copy = rec.to_dict()
    copy["fields"]["keywords"].append("変更")
    copy["extra"][0][1] = "変更"
    copy["images"][0]["width"] = 99
    assert rec.fields["keywords"] == ["能", "面"] and rec.extra == [["備考", "x"]]
    assert rec.images[0].width == 10  # a copy, as asdict gives


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl"])
def test_any_bytes_give_rows_or_a_located_error(tmp_path: Path, suffix: str) -> None:
    """Property: whatever a records file holds, reading it yields rows (each with values or
    an error) or raises CollectionError naming the file; nothing else escapes."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    path = tmp_path / f"records{suffix}"

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.one_of(
            st.binary(max_size=200),
            st.text(alphabet='a,\t"\n\r{}[]:髙①', max_size=80).map(str.encode),
        )
    )
    def check(data: bytes) -> None:
        path.write_bytes(data)
        try:
            _, _, rows = read_records(path, name=path.name)
            for r in rows:
                assert r.number >= 1 and (r.error is None or not r.values)
        except CollectionError as exc:
            assert exc.file == path.name

    check()
