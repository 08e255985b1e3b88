"""A public record as researchers get it: the record JSON and the bulk exports.

One function, ``record_json``, decides what ``/api/records/{id}``, each line of
``/api/export.jsonl`` and ``archive export`` say about a record, so the three
never disagree. The CSV flattens the same data, one row per record, in UTF-8
with a BOM so spreadsheet programs read Japanese correctly.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from archive.catalog import Catalog
from archive.citation import bibtex, citation, rights_label
from archive.records import Institution, Record
from iiif.info import presented_size
from iiif.presentation import Links, identifier
from search.readings import record_readings

BOM = "\ufeff"
CSV_COLUMNS = (
    "id",
    "local_id",
    "institution",
    "institution_name_ja",
    "institution_name_en",
    "title",
    "title_en",
    "title_kana",
    "creator",
    "creator_en",
    "date",
    "date_start",
    "date_end",
    "era",
    "century",
    "object_type",
    "object_type_en",
    "material",
    "material_en",
    "dimensions",
    "description",
    "description_en",
    "keywords",
    "rights",
    "rights_label",
    "images",
    "image_ids",
    "thumbnail",
    "manifest",
    "url",
    "extra",
    "created_at",
    "updated_at",
)
# Spreadsheets run a cell starting with these as a formula (CSV injection); such
# cells get a leading apostrophe, which spreadsheets hide.
_FORMULA_START = ("=", "+", "@", "\t", "\r")


def century(year: int | None) -> int | None:
    """1801-1900 is the 19th; 100 BCE-1 BCE is -1 (as the search facet counts them)."""
    if year is None:
        return None
    return (year - 1) // 100 + 1 if year > 0 else -((-year) // 100 + 1)


def _lang_pair(record: Record, name: str) -> dict[str, str | None]:
    return {"ja": record.get(name), "en": record.get(f"{name}_en")}


def record_json(record: Record, inst: Institution, links: Links) -> dict[str, Any]:
    """Everything public about a record: original fields, normalised values, images, rights."""
    url = links.object_page(record.id)
    images = []
    for position, image in enumerate(record.images, 1):
        width, height = presented_size(image.width, image.height, record.max_image_size)
        ident = identifier(image, record.max_image_size)  # pinned: cacheable for a year
        images.append(
            {
                "id": image.id,
                "position": position,
                "width": width,
                "height": height,
                "service": links.image_service(ident),
                "info": f"{links.image_service(ident)}/info.json",
                "full": links.image(ident),
                "thumbnail": links.thumbnail(ident),
            }
        )

    keywords = record.get("keywords") or []
    return {
        "id": record.id,
        "local_id": record.local_id,
        "institution": {
            "id": inst.id,
            "name": {"ja": inst.name.get("ja"), "en": inst.name.get("en")},
            "homepage": inst.homepage,
            "url": links.institution_page(inst.id),
            "collection": links.collection(inst.id),
        },
        "title": {"ja": record.label("ja"), "en": record.label("en")},
        "fields": dict(record.fields),
        "extra": [{"label": label, "value": value} for label, value in record.extra],
        "normalised": {
            "title": _lang_pair(record, "title"),
            "creator": _lang_pair(record, "creator"),
            "object_type": _lang_pair(record, "object_type"),
            "material": _lang_pair(record, "material"),
            "description": _lang_pair(record, "description"),
            "keywords": list(keywords) if isinstance(keywords, list) else [keywords],
            "date_start": record.date_start,
            "date_end": record.date_end,
            "era": record.era,
            "century": century(record.date_start),
            "has_images": bool(record.images),
        },
        "rights": {
            "uri": record.rights or None,
            "label": {
                "ja": rights_label(record.rights, "ja"),
                "en": rights_label(record.rights, "en"),
            }
            if record.rights
            else None,
        },
        "images": images,
        "thumbnail": images[0]["thumbnail"] if images else None,
        "manifest": links.manifest(record.id),
        "url": url,
        "citation": {
            "ja": citation(record, inst, url, "ja"),
            "en": citation(record, inst, url, "en"),
            "bibtex": bibtex(record, inst, url),
        },
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        # What kana and romaji search match, and where each reading came from.
        "readings": record_readings(record),
    }


def public_records(catalog: Catalog) -> Iterator[tuple[Record, Institution]]:
    """Every public record with its institution, in id order, read in batches.

    The institutions are read at once, before the response starts: a catalog that is
    away is then a 503, not a 200 cut short."""
    institutions = {inst.id: inst for inst in catalog.institutions()}

    def rows() -> Iterator[tuple[Record, Institution]]:
        for record in catalog.records(public_only=True):
            inst = institutions.get(record.institution)
            if inst is not None:
                yield record, inst

    return rows()


def jsonl_lines(rows: Iterable[tuple[Record, Institution]], links: Links) -> Iterator[str]:
    """JSON Lines: one ``record_json`` per line."""
    for record, inst in rows:
        yield json.dumps(record_json(record, inst, links), ensure_ascii=False) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_row(record: Record, inst: Institution, links: Links) -> list[str]:
    """One CSV row in the order of ``CSV_COLUMNS``."""
    doc = record_json(record, inst, links)
    fields = record.fields
    keywords = doc["normalised"]["keywords"]
    values = {
        "id": record.id,
        "local_id": record.local_id,
        "institution": inst.id,
        "institution_name_ja": inst.name.get("ja"),
        "institution_name_en": inst.name.get("en"),
        "date_start": record.date_start,
        "date_end": record.date_end,
        "era": record.era,
        "century": doc["normalised"]["century"],
        "keywords": "; ".join(keywords),
        "rights": record.rights,
        "rights_label": rights_label(record.rights, "en") if record.rights else "",
        "images": len(record.images),
        "image_ids": " ".join(i["id"] for i in doc["images"]),
        "thumbnail": doc["thumbnail"],
        "manifest": doc["manifest"],
        "url": doc["url"],
        "extra": json.dumps(doc["extra"], ensure_ascii=False) if record.extra else "",
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        # What kana and romaji search match, and where each reading came from.
        "readings": record_readings(record),
    }
    return [_cell(values[c] if c in values else fields.get(c)) for c in CSV_COLUMNS]


def csv_chunks(
    rows: Iterable[tuple[Record, Institution]], links: Links, batch: int = 200
) -> Iterator[str]:
    """CSV text in chunks: a BOM and the header first, then ``batch`` rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow(CSV_COLUMNS)
    for n, (record, inst) in enumerate(rows, 1):
        writer.writerow(csv_row(record, inst, links))
        if n % batch == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
