"""Bulk export of everything public: JSON Lines and CSV (UTF-8 with BOM), streamed, each
record with its licence; `archive export` writes the same files."""

from __future__ import annotations

import csv
import io
import json

import pytest

from archive.catalog import Catalog
from archive.citation import bibtex, citation
from archive.cli import cli
from archive.records import Institution, Record
from archive.storage import Home
from web.export import CSV_COLUMNS

BASE = "http://localhost"


@pytest.fixture(scope="module")
def catalog(ingested_home):
    cat = Catalog(Home(ingested_home).catalog)
    yield cat
    cat.close()


def test_jsonl_is_streamed_one_record_json_per_public_record(client, catalog):
    resp = client.get("/api/export.jsonl")
    assert resp.status_code == 200 and resp.is_streamed
    assert resp.mimetype == "application/x-ndjson"
    assert "attachment" in resp.headers["Content-Disposition"]
    lines = resp.get_data(as_text=True).splitlines()
    docs = [json.loads(line) for line in lines]
    assert [d["id"] for d in docs] == catalog.record_ids()
    assert docs[0] == client.get(f"/api/records/{docs[0]['id']}").get_json()
    assert all(d["rights"]["uri"] for d in docs)


def test_csv_has_a_bom_a_header_and_every_public_record_with_its_licence(client, catalog):
    resp = client.get("/api/export.csv")
    assert resp.status_code == 200 and resp.is_streamed
    assert resp.mimetype == "text/csv"
    data = resp.get_data()
    assert data.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["id"] for r in rows] == catalog.record_ids()
    by_id = {r["id"]: r for r in rows}
    n4 = by_id["noh-museum_N-4"]
    record = catalog.get_record("noh-museum_N-4")
    assert n4["title"] == record.get("title") and n4["title_en"] == record.get("title_en")
    assert n4["rights"] == record.rights and n4["rights_label"] == "In Copyright"
    assert n4["manifest"] == f"{BASE}/iiif/3/manifest/noh-museum_N-4"
    assert n4["keywords"] == "; ".join(record.get("keywords"))
    assert json.loads(n4["extra"]) == [{"label": k, "value": v} for k, v in record.extra]


def test_hidden_records_are_not_exported(client, catalog):
    hidden = set(catalog.record_ids(public_only=False)) - set(catalog.record_ids())
    assert hidden
    text = client.get("/api/export.jsonl").get_data(as_text=True)
    text += client.get("/api/export.csv").get_data(as_text=True)
    for rec_id in hidden:
        assert rec_id not in text


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_archive_export_writes_what_the_api_serves(runner, ingested_home, client, tmp_path, fmt):
    out = tmp_path / f"export.{fmt}"
    result = runner.invoke(
        cli, ["--home", str(ingested_home), "export", "-o", str(out), "--base-url", BASE]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == client.get(f"/api/export.{fmt}").get_data()
    assert not list(tmp_path.glob("*.part"))


def test_archive_export_to_stdout_and_a_clear_error_for_a_bad_path(runner, ingested_home, tmp_path):
    result = runner.invoke(cli, ["--home", str(ingested_home), "export", "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[0])["manifest"].startswith(
        "http://127.0.0.1:8000/iiif/3/manifest/"
    )
    bad = runner.invoke(
        cli, ["--home", str(ingested_home), "export", "-o", str(tmp_path / "no-such-dir" / "x.csv")]
    )
    assert bad.exit_code != 0
    assert "cannot write" in bad.output and "Traceback" not in bad.output


def test_csv_cells_that_spreadsheets_would_run_are_neutralised(tmp_path):
    from iiif.presentation import Links
    from web.export import csv_row

    inst = Institution("a-museum", {"ja": "館"}, "http://rightsstatements.org/vocab/InC/1.0/")
    rec = Record(
        id="a-museum_1",
        institution="a-museum",
        local_id="1",
        fields={"title": '=HYPERLINK("http://evil")', "creator": "+1+1", "date": "-300"},
        rights=inst.rights,
    )
    row = dict(zip(CSV_COLUMNS, csv_row(rec, inst, Links(BASE)), strict=True))
    assert row["title"] == '\'=HYPERLINK("http://evil")'
    assert row["creator"] == "'+1+1"
    assert row["date"] == "-300"  # a BCE year stays a number


def test_bibtex_escapes_what_latex_would_misread():
    inst = Institution("a-museum", {"ja": "館", "en": "A & B Museum"}, "")
    rec = Record(
        id="a-museum_1",
        institution="a-museum",
        local_id="1",
        fields={"title": "50% {draft} #1_a", "creator": "A\\B"},
        rights="",
    )
    bib = bibtex(rec, inst, f"{BASE}/object/a-museum_1")
    assert r"50\% \{draft\} \#1\_a" in bib
    assert r"A\textbackslash{}B" in bib and r"A \& B Museum" in bib
    assert citation(rec, inst, "u", "en").endswith("u")
