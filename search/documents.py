"""The one place that decides what of a record is searched, filtered, faceted and sorted."""

from __future__ import annotations

from typing import Any

from archive.records import Institution, Record

from . import readings as readings_

# Text fields of a search document, in the order of the SQLite FTS columns, and the
# weight of a match in each (title matters most, the catch-all least).
TEXT_FIELDS: dict[str, float] = {
    "title": 10.0,
    "kana": 6.0,
    "creator": 5.0,
    "keywords": 4.0,
    "object_type": 3.0,
    "material": 3.0,
    "description": 1.0,
    "other": 0.5,
    "norm": 2.0,  # Sudachi's normalised forms of the fields above (search.readings)
}
# The romaji keys of every reading (search.readings.romaji_key), matched by whole-key
# prefix, never by the plain words of a query.
ROMAJI_FIELD = "romaji"
ROMAJI_WEIGHT = 5.0
# Fields whose original text is highlighted in hits (record field -> search field).
HIGHLIGHT_FIELDS: dict[str, str] = {
    "title": "title",
    "title_en": "title",
    "title_kana": "kana",
    "creator": "creator",
    "creator_en": "creator",
    "description": "description",
    "description_en": "description",
    "keywords": "keywords",
    "material": "material",
    "material_en": "material",
    "object_type": "object_type",
    "object_type_en": "object_type",
}


def century(year: int | None) -> str | None:
    """Century as a string, "19" for 1801-1900 (and 1895), "-1" for 100 BCE-1 BCE."""
    if year is None:
        return None
    return str((year - 1) // 100 + 1) if year > 0 else str(-((-year) // 100 + 1))


def _join(*values: Any) -> str:
    parts: list[str] = []
    for value in values:
        if isinstance(value, list | tuple):
            parts.extend(str(v) for v in value if v)
        elif value:
            parts.append(str(value))
    return "\n".join(parts)


def _readings(record: Record, keywords: list[str]) -> tuple[str, str, str]:
    """The reading column (curators' readings first, then Sudachi's for fields they did
    not read), the normalised forms, and the romaji keys of all the readings."""
    get = record.get
    kana: list[str] = []
    norm: list[str] = []
    keys: list[str] = []
    texts = {name: get(name) for name in readings_.READING_FIELDS}
    texts["keywords"] = keywords
    for name, curator_field in readings_.READING_FIELDS.items():
        value = texts[name]
        values = [str(v) for v in (value if isinstance(value, list | tuple) else [value]) if v]
        own = get(curator_field) if curator_field else None
        if own:
            kana.append(str(own))
            keys.extend(readings_.reading_keys(str(own), values))
        for text in values:
            if not own:  # the curator's reading wins over the analyser's
                reading = readings_.reading(text)
                if reading:
                    kana.append(reading)
                keys.extend(readings_.romaji_keys(text))
            normal = readings_.normalized(text)
            if normal:
                norm.append(normal)
    description = get("description")
    if description:
        normal = readings_.normalized(str(description))
        if normal:
            norm.append(normal)
    return "\n".join(kana), "\n".join(norm), " ".join(dict.fromkeys(keys))


def record_to_doc(record: Record, institution: Institution | None = None) -> dict[str, Any]:
    """The search document of a public record: text fields, facet values, sort keys.

    Facet values are as written (Japanese first): institution is the institution id,
    century comes from ``date_start``, rights is the effective rights URI.
    """
    get = record.get
    keywords = get("keywords") or []
    if isinstance(keywords, str):
        keywords = [keywords]
    kana, norm, romaji = _readings(record, keywords)
    return {
        "id": record.id,
        # Text (the keys of TEXT_FIELDS)
        "title": _join(get("title"), get("title_en")),
        "kana": kana,
        "creator": _join(get("creator"), get("creator_en")),
        "keywords": _join(keywords),
        "object_type": _join(get("object_type"), get("object_type_en")),
        "material": _join(get("material"), get("material_en")),
        "description": _join(get("description"), get("description_en")),
        "other": _join(
            record.local_id,
            get("date"),
            record.era,
            get("dimensions"),
            [value for _label, value in record.extra],
        ),
        "norm": norm,
        ROMAJI_FIELD: romaji,
        # Facets (search.base.FACETS)
        "facets": {
            "institution": record.institution,
            "object_type": get("object_type"),
            "material": get("material"),
            "era": record.era,
            "century": century(record.date_start),
            "creator": get("creator"),
            "rights": record.rights or (institution.rights if institution else None),
            "has_images": "true" if record.images else "false",
        },
        # Ranges and sorts
        "date_start": record.date_start,
        "date_end": record.date_end if record.date_end is not None else record.date_start,
        "added": record.created_at or record.updated_at or "",
        "title_sort": get("title_kana") or get("title") or record.local_id,
        # Suggestions: (text shown, language)
        "suggest": [
            (text, lang)
            for text, lang in (
                (get("title"), "ja"),
                (get("title_en"), "en"),
                (get("creator"), "ja"),
                (get("creator_en"), "en"),
                (get("object_type"), "ja"),
                (get("object_type_en"), "en"),
                *((kw, "ja") for kw in keywords),
            )
            if text
        ],
        "reading": get("title_kana"),  # suggests the title for a kana prefix
    }
