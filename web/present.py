"""How records look on the public site: rights badges, metadata rows, image URLs,
downloads and schema.org JSON-LD. Pure functions of records; no Flask."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from archive.citation import rights_label
from archive.records import FIELDS_BY_NAME, ImageRef, Institution, Record
from iiif.presentation import identifier

from .i18n import era_label

THUMB = "!400,400"


# --- Image API URLs (IIIF Image API 3.0 §2.1) -----------------------------------------------
# ``image_id`` here is the identifier to publish: ``identifier(image, cap)``, pinned to the
# version of the pixels, so browsers and a CDN may keep what these URLs answer for a year.
def image_url(base: str, image_id: str, size: str = "max", fmt: str = "jpg") -> str:
    return f"{base}/iiif/3/{image_id}/full/{size}/0/default.{fmt}"


def thumb_url(base: str, image_id: str) -> str:
    return image_url(base, image_id, THUMB)


def info_url(base: str, image_id: str) -> str:
    return f"{base}/iiif/3/{image_id}/info.json"


def fit(width: int, height: int, box: int) -> tuple[int, int]:
    """Size of a width x height image scaled to fit a box x box square (``!box,box``), never up."""
    if width <= 0 or height <= 0:
        return box, box
    scale = min(box / width, box / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


# --- Rights ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rights:
    uri: str
    code: str  # short badge text: "CC BY 4.0", "InC"
    tier: str  # open | conditions | restricted: the badge's colour and wording
    max_download: int | None  # longest side a visitor may download; None = the largest served

    def label(self, lang: str) -> str:
        return rights_label(self.uri, lang)


_CC_RE = re.compile(r"creativecommons\.org/licenses/([a-z-]+)/(\d\.\d)")
_RS_RE = re.compile(r"rightsstatements\.org/vocab/([A-Za-z-]+)/1\.0")
# RightsStatements.org: in copyright means viewing sizes only; undetermined means medium.
_RS_TIERS = {
    "InC": "restricted",
    "NoC": "conditions",
    "CNE": "conditions",
    "UND": "conditions",
    "NKC": "open",
}
_RS_CAPS = {"restricted": 800, "CNE": 1600, "UND": 1600}


def rights_info(uri: str) -> Rights:
    """Badge, tier and download limit for a rights URI (Creative Commons or RightsStatements)."""
    if "publicdomain/zero/1.0" in uri:
        return Rights(uri, "CC0", "open", None)
    if "publicdomain/mark/1.0" in uri:
        return Rights(uri, "PD", "open", None)
    if match := _CC_RE.search(uri):
        kind, version = match.groups()
        tier = "open" if kind in ("by", "by-sa") else "conditions"
        return Rights(uri, f"CC {kind.upper()} {version}", tier, None)
    if match := _RS_RE.search(uri):
        code = match.group(1)
        tier = _RS_TIERS.get(code.split("-")[0], "restricted")
        return Rights(uri, code, tier, _RS_CAPS.get(code, _RS_CAPS.get(tier)))
    return Rights(uri, "?", "restricted", 800)


# --- Metadata -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    name: str
    label: str
    value: str | list[str]
    lang: str  # language of value
    original: str | None = None  # the other-language original where it differs
    original_lang: str | None = None


_SHOWN = ("id", "creator", "date", "object_type", "material", "dimensions", "description")


def _other(lang: str) -> str:
    return "ja" if lang == "en" else "en"


def metadata_rows(record: Record, lang: str) -> list[Row]:
    """The metadata table in ``lang``: bilingual fields fall back to the other language,
    and the Japanese original is shown beside an English text that differs from it."""
    rows: list[Row] = []
    for name in _SHOWN:
        fdef = FIELDS_BY_NAME[name]
        label = fdef.label_en if lang == "en" else fdef.label_ja
        if name == "id":
            rows.append(Row(name, label, record.local_id, "ja"))
            continue
        ja, en = record.get(name), record.get(f"{name}_en")
        value = record.text(name, lang)
        if not value:
            continue
        if name in ("creator", "object_type", "material", "description"):
            value_lang = lang if (en if lang == "en" else ja) else _other(lang)
            original = ja if lang == "en" and en and ja and ja != en else None
            rows.append(Row(name, label, value, value_lang, original, "ja" if original else None))
        else:
            rows.append(Row(name, label, value, "ja"))
    return rows


def period(record: Record, lang: str) -> dict[str, str] | None:
    """Normalised era and years, for display beside the date as written."""
    if record.era is None and record.date_start is None:
        return None
    out: dict[str, str] = {}
    if record.era:
        out["era"] = era_label(record.era, lang)
    if record.date_start is not None:
        start, end = record.date_start, record.date_end
        out["years"] = str(start) if end in (None, start) else f"{start}–{end}"
    return out


# --- Downloads ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Download:
    key: str  # small | medium | large
    url: str
    width: int
    height: int


def downloads(base: str, image: ImageRef, record: Record, rights: Rights) -> list[Download]:
    """The sizes a visitor may download: small and medium always, the largest served size
    when the rights allow; each no bigger than the institution's cap."""
    cap = record.max_image_size or 0
    ident = identifier(image, cap)
    limit = rights.max_download
    longest = max(image.width, image.height)
    ceiling = min(x for x in (longest, cap or longest, limit or longest))
    out: list[Download] = []
    for key, box in (("small", 800), ("medium", 1600)):
        if box >= ceiling:
            break
        w, h = fit(image.width, image.height, box)
        out.append(Download(key, image_url(base, ident, f"!{box},{box}"), w, h))
    w, h = fit(image.width, image.height, ceiling)
    size = "max" if ceiling == longest and not cap else f"!{ceiling},{ceiling}"
    out.append(Download("large", image_url(base, ident, size), w, h))
    return out


# --- schema.org -----------------------------------------------------------------------------
def json_ld(
    record: Record, inst: Institution, *, url: str, base: str, manifest: str, lang: str
) -> dict[str, Any]:
    """schema.org CreativeWork for search engines; rendered with ``tojson`` (escaped)."""
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "CreativeWork",
        "@id": url,
        "url": url,
        "name": record.label(lang),
        "identifier": record.local_id,
        "inLanguage": lang,
        "license": record.rights or inst.rights,
        "isPartOf": {"@type": "Collection", "name": inst.label(lang)},
        "provider": {
            "@type": "Organization",
            "name": inst.label(lang),
            **({"url": inst.homepage} if _is_http(inst.homepage) else {}),
        },
        "subjectOf": {
            "@type": "DigitalDocument",
            "url": manifest,
            "encodingFormat": "application/ld+json",
        },
    }
    alt = record.text("title", _other(lang))
    if alt and alt != data["name"]:
        data["alternateName"] = alt
    if record.text("description", lang):
        data["description"] = record.text("description", lang)
    if record.text("creator", lang):
        data["creator"] = {"@type": "Person", "name": record.text("creator", lang)}
    if record.get("date"):
        data["dateCreated"] = record.get("date")
    if record.date_start is not None:
        end = record.date_end if record.date_end is not None else record.date_start
        data["temporalCoverage"] = f"{record.date_start}/{end}"
    if record.text("material", lang):
        data["material"] = record.text("material", lang)
    if record.text("object_type", lang):
        data["genre"] = record.text("object_type", lang)
    if record.get("keywords"):
        data["keywords"] = list(record.get("keywords"))
    if record.images:
        idents = [identifier(i, record.max_image_size) for i in record.images[:5]]
        data["image"] = [image_url(base, i, "!1200,1200") for i in idents]
        data["thumbnailUrl"] = thumb_url(base, idents[0])
    return data


def _is_http(url: str | None) -> bool:
    return bool(url) and url.lower().startswith(("https://", "http://"))


def safe_link(url: str | None) -> str | None:
    """Only http(s) URLs become links; a ``javascript:`` homepage stays text or nothing."""
    return url if _is_http(url) else None
