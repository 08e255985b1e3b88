"""IIIF Presentation API 3.0: a Manifest per public record, Collections per institution.

Built with iiif-prezi3 (its pydantic models check every property as we set
it). Pure functions of catalog data and a base URL: no Flask here, so the
same documents can be written to files or served (see ``routes.py``).
Spec: https://iiif.io/api/presentation/3.0/ (section numbers cited below).
"""

from __future__ import annotations

import html
import math
import mimetypes
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from iiif_prezi3 import (
    Annotation,
    AnnotationPage,
    Canvas,
    Collection,
    CollectionRef,
    KeyValueString,
    Manifest,
    ManifestRef,
)

from archive.citation import iiif_rights, rights_label
from archive.records import (
    BEHAVIOR_TERMS,
    FIELDS_BY_NAME,
    VIEWING_DIRECTION_TERMS,
    ImageRef,
    Institution,
    Record,
    controlled_term,
)

from .info import presented_size, versioned_id

PRESENTATION_CONTEXT = "http://iiif.io/api/presentation/3/context.json"
# §6.1: the JSON-LD media type with the Presentation 3 context as profile.
CONTENT_TYPE = f'application/ld+json;profile="{PRESENTATION_CONTEXT}"'
IMAGE_PROFILE = "level2"
THUMBNAIL_SIZE = "!400,400"
# No collection document lists more than this many manifests; larger
# institutions get a collection of paged sub-collections.
COLLECTION_PAGE_SIZE = 1000

# Fields shown in `metadata`, in display order. The title is the label, the
# description the summary, rights are `rights`; technical fields are left out.
_METADATA_FIELDS = (
    "id",
    "title_kana",
    "creator",
    "date",
    "object_type",
    "material",
    "dimensions",
    "keywords",
)
_BILINGUAL_LABEL_FIX = {
    "creator": "Creator",
    "object_type": "Object type",
    "material": "Material and technique",
}


@dataclass(frozen=True)
class Links:
    """Every absolute URL we publish, from one base (``public_url`` or the request root)."""

    base: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", self.base.rstrip("/"))

    def manifest(self, record_id: str) -> str:
        return f"{self.base}/iiif/3/manifest/{record_id}"

    def collection(self, institution: str | None = None, page: int | None = None) -> str:
        if institution is None:
            return f"{self.base}/iiif/3/collection/top"
        url = f"{self.base}/iiif/3/collection/{institution}"
        return url if page is None else f"{url}/{page}"

    def image_service(self, image_id: str) -> str:
        return f"{self.base}/iiif/3/{image_id}"

    def image(self, image_id: str, size: str = "max") -> str:
        return f"{self.image_service(image_id)}/full/{size}/0/default.jpg"

    def thumbnail(self, image_id: str) -> str:
        return self.image(image_id, THUMBNAIL_SIZE)

    def record_json(self, record_id: str) -> str:
        return f"{self.base}/api/records/{record_id}"

    def object_page(self, record_id: str) -> str:
        return f"{self.base}/object/{record_id}"

    def institution_page(self, institution: str) -> str:
        return f"{self.base}/institution/{institution}"

    def logo(self, institution: str) -> str:
        return f"{self.base}/iiif/3/logo/{institution}"

    def activity(self) -> str:
        return f"{self.base}/iiif/3/activity/all-changes"

    def activity_page(self, n: int) -> str:
        return f"{self.base}/iiif/3/activity/page/{n}"


# --- small builders ---------------------------------------------------------------------------
def plain(text: str) -> str:
    """Curators' text as text, in every viewer.

    §4.4 makes a value that starts with '<' and ends with '>' HTML, and some viewers
    (Mirador) render every value as HTML; so any value with an angle bracket is sent as
    its escaped self inside a <span>, which both kinds of viewer show literally.
    """
    if "<" in text or ">" in text:
        return f"<span>{html.escape(text, quote=False)}</span>"
    return text


def lang_map(ja: str | None = None, en: str | None = None, none: str | None = None) -> dict:
    """A §4.4 language map with only the languages we really have."""
    out = {}
    if ja:
        out["ja"] = [plain(ja)]
    if en:
        out["en"] = [plain(en)]
    if none and not out:
        out["none"] = [plain(none)]
    return out


def text_value(text: str) -> dict:
    """A value whose language we only know from its script: Japanese if not plain ASCII."""
    return {"ja": [plain(text)]} if not text.isascii() else {"none": [plain(text)]}


def _kv(label_ja: str, label_en: str, value: dict) -> KeyValueString:
    return KeyValueString(label=lang_map(label_ja, label_en), value=value)


def behavior_of(record: Record) -> list[str] | None:
    """§3.3.1 behavior: paged books and albums, continuous scrolls, as the curator wrote;
    ``individuals`` for other multi-image objects; none for a single image left unsaid."""
    known = controlled_term(record.get("behavior"), BEHAVIOR_TERMS)
    if known:
        return [known]
    return ["individuals"] if len(record.images) > 1 else None


def viewing_direction_of(record: Record) -> str | None:
    """§3.2 viewingDirection, only when the curator said (left-to-right is the default)."""
    return controlled_term(record.get("viewing_direction"), VIEWING_DIRECTION_TERMS)


def nav_date(record: Record) -> str | None:
    """§3.3.3 navDate from the normalised start year (xsd:dateTime cannot hold year 0 or BCE)."""
    year = record.date_start
    if year is None or not 1 <= year <= 9999:
        return None
    return f"{year:04d}-01-01T00:00:00Z"


def year_range(record: Record) -> str | None:
    """The normalised years as text: "1336–1573", "1895", "-300–-100" (negative is BCE)."""
    start, end = record.date_start, record.date_end
    if start is None:
        return None
    return str(start) if end in (None, start) else f"{start}–{end}"


def canvas_size(image: ImageRef, cap: int) -> tuple[int, int]:
    """The size the public sees: the image's presented size under the record's cap."""
    return presented_size(image.width, image.height, cap)


def identifier(image: ImageRef, cap: int) -> str:
    """The Image API identifier we publish: pinned to this version of the pixels, so its
    tiles are immutable (``info.versioned_id``; the image server checks the same tag)."""
    return versioned_id(image.id, image.version, image.width, image.height, cap)


def image_service(links: Links, image_id: str) -> list[dict]:
    """The Image API 3.0 service block (§3.2 `service`, Image API §5.1)."""
    return [
        {"id": links.image_service(image_id), "type": "ImageService3", "profile": IMAGE_PROFILE}
    ]


def thumbnail(links: Links, image_id: str) -> list[dict]:
    return [
        {
            "id": links.thumbnail(image_id),
            "type": "Image",
            "format": "image/jpeg",
            "service": image_service(links, image_id),
        }
    ]


def _format_of(path: str | None) -> str:
    kind = mimetypes.guess_type(path or "")[0]
    return kind if kind and kind.startswith("image/") else "image/png"


def provider(links: Links, inst: Institution) -> list[dict]:
    """§3.2.2 provider: the institution as an Agent with its homepage(s) and logo."""
    name = lang_map(inst.name.get("ja"), inst.name.get("en"), inst.id)
    homepages = [
        {
            "id": links.institution_page(inst.id),
            "type": "Text",
            "label": name,
            "format": "text/html",
            "language": ["ja", "en"],
        }
    ]
    if inst.homepage:
        homepages.append(
            {"id": inst.homepage, "type": "Text", "label": name, "format": "text/html"}
        )
    agent: dict[str, Any] = {
        "id": links.institution_page(inst.id),
        "type": "Agent",
        "label": name,
        "homepage": homepages,
    }
    if inst.logo:
        agent["logo"] = [
            {"id": links.logo(inst.id), "type": "Image", "format": _format_of(inst.logo)}
        ]
    return [agent]


def required_statement(inst: Institution) -> KeyValueString:
    """§3.3.2 requiredStatement: the institution's credit line (its name by default)."""
    credit = inst.credit or inst.name
    return _kv("クレジット", "Attribution", lang_map(credit.get("ja"), credit.get("en"), inst.id))


def metadata(record: Record, inst: Institution) -> list[KeyValueString]:
    """§3.3.1 metadata: every mapped field and every extra column, with bilingual labels."""
    entries = [
        _kv(
            "所蔵",
            "Holding institution",
            lang_map(inst.name.get("ja"), inst.name.get("en"), inst.id),
        )
    ]
    for name in _METADATA_FIELDS:
        field = FIELDS_BY_NAME[name]
        label_en = _BILINGUAL_LABEL_FIX.get(name, field.label_en)
        if name in ("creator", "object_type", "material"):
            value = lang_map(record.get(name), record.get(f"{name}_en"))
        elif name == "keywords":
            words = record.get(name) or []
            value = lang_map("、".join(words)) if words else {}
        else:
            raw = record.get(name)
            value = text_value(str(raw)) if raw else {}
        if value:
            entries.append(_kv(field.label_ja, label_en, value))
    if record.era:
        entries.append(_kv("時代", "Period", text_value(record.era)))
    if years := year_range(record):
        entries.append(_kv("年代（西暦）", "Years (normalised)", {"none": [years]}))
    if record.rights:
        entries.append(
            _kv(
                "権利",
                "Rights",
                lang_map(rights_label(record.rights, "ja"), rights_label(record.rights, "en")),
            )
        )
    for label, value in record.extra:
        if str(label).strip() and str(value).strip():
            entries.append(
                KeyValueString(label=text_value(str(label)), value=text_value(str(value)))
            )
    return entries


def _canvas(links: Links, record: Record, image: ImageRef, index: int) -> Canvas:
    """One Canvas per image (§5.4), painted by one Image annotation (§3.4, §5.5)."""
    width, height = canvas_size(image, record.max_image_size)
    canvas_id = f"{links.manifest(record.id)}/canvas/{index}"
    ident = identifier(image, record.max_image_size)
    body = {
        "id": links.image(ident),
        "type": "Image",
        "format": "image/jpeg",
        "width": width,
        "height": height,
        "service": image_service(links, ident),
    }
    anno = Annotation(
        id=f"{canvas_id}/annotation/1", motivation="painting", target=canvas_id, body=body
    )
    page = AnnotationPage(id=f"{canvas_id}/page/1", items=[anno])
    label = lang_map(
        f"{index}コマ目" if len(record.images) > 1 else None,
        f"Image {index}" if len(record.images) > 1 else None,
        str(index),
    )
    if len(record.images) == 1:
        label = {"none": ["1"]}
    return Canvas(
        id=canvas_id,
        label=label,
        width=width,
        height=height,
        items=[page],
        thumbnail=thumbnail(links, ident),
    )


def build_manifest(record: Record, inst: Institution, links: Links) -> Manifest:
    """The Manifest of one public record (§5.3)."""
    kwargs: dict[str, Any] = {
        "id": links.manifest(record.id),
        "label": lang_map(record.get("title"), record.get("title_en"), record.local_id),
        "metadata": metadata(record, inst),
        "requiredStatement": required_statement(inst),
        "provider": provider(links, inst),
        "homepage": [
            {
                "id": links.object_page(record.id),
                "type": "Text",
                "label": lang_map(record.get("title"), record.get("title_en"), record.local_id),
                "format": "text/html",
                "language": ["ja", "en"],
            }
        ],
        "seeAlso": [
            {
                "id": links.record_json(record.id),
                "type": "Dataset",
                "format": "application/json",
                "label": lang_map("資料データ（JSON）", "Record data (JSON)"),
            }
        ],
        "partOf": [
            {
                "id": links.collection(inst.id),
                "type": "Collection",
                "label": lang_map(inst.name.get("ja"), inst.name.get("en"), inst.id),
            }
        ],
        "items": [_canvas(links, record, img, i) for i, img in enumerate(record.images, 1)],
    }
    summary = lang_map(record.get("description"), record.get("description_en"))
    if summary:
        kwargs["summary"] = summary
    if record.rights:
        kwargs["rights"] = iiif_rights(record.rights)
    if record.images:
        kwargs["thumbnail"] = thumbnail(links, identifier(record.images[0], record.max_image_size))
    if date := nav_date(record):
        kwargs["navDate"] = date
    if behavior := behavior_of(record):
        kwargs["behavior"] = behavior
    if direction := viewing_direction_of(record):
        kwargs["viewingDirection"] = direction
    return Manifest(**kwargs)


def manifest_ref(record: Record, links: Links) -> ManifestRef:
    """A Manifest as a Collection lists it: id, label and a thumbnail (§5.2 items)."""
    extra: dict[str, Any] = {}
    if record.images:
        extra["thumbnail"] = thumbnail(links, identifier(record.images[0], record.max_image_size))
    return ManifestRef(
        id=links.manifest(record.id),
        type="Manifest",
        label=lang_map(record.get("title"), record.get("title_en"), record.local_id),
        **extra,
    )


def _inst_label(inst: Institution) -> dict:
    return lang_map(inst.name.get("ja"), inst.name.get("en"), inst.id)


def page_count(total: int) -> int:
    return max(1, math.ceil(total / COLLECTION_PAGE_SIZE))


def build_top_collection(
    institutions: Iterable[tuple[Institution, int]], links: Links, site_name: dict[str, str]
) -> Collection:
    """The root Collection: one Collection per institution that has public objects.

    It links the Change Discovery stream (Change Discovery 1.0 §2) with
    `service`, where harvesters look for it.
    """
    items = [
        CollectionRef(id=links.collection(inst.id), type="Collection", label=_inst_label(inst))
        for inst, count in institutions
        if count > 0
    ]
    return Collection(
        id=links.collection(),
        label=lang_map(site_name.get("ja"), site_name.get("en"), "collections"),
        summary=lang_map(
            "参加館ごとのコレクション", "Collections of the participating institutions"
        ),
        homepage=[
            {
                "id": f"{links.base}/",
                "type": "Text",
                "label": lang_map(site_name.get("ja"), site_name.get("en"), "home"),
                "format": "text/html",
                "language": ["ja", "en"],
            }
        ],
        service=[
            {
                "id": links.activity(),
                "type": "OrderedCollection",
                "profile": "http://iiif.io/api/discovery/1/context.json",
                "label": lang_map("更新情報", "Change Discovery"),
            }
        ],
        items=items,
    )


def build_institution_collection(
    inst: Institution, total: int, links: Links, records: Iterable[Record] | None
) -> Collection:
    """An institution's Collection: its manifests, or its pages when it has more than
    ``COLLECTION_PAGE_SIZE`` (so no document is huge). ``records`` is read only when
    the collection lists manifests itself."""
    kwargs = _collection_common(inst, links)
    kwargs["partOf"] = [{"id": links.collection(), "type": "Collection"}]
    if total > COLLECTION_PAGE_SIZE:
        kwargs["items"] = [
            CollectionRef(
                id=links.collection(inst.id, n),
                type="Collection",
                label=_page_label(inst, n, total),
            )
            for n in range(1, page_count(total) + 1)
        ]
    else:
        kwargs["items"] = [manifest_ref(r, links) for r in records or ()]
    return Collection(id=links.collection(inst.id), label=_inst_label(inst), **kwargs)


def build_page_collection(
    inst: Institution, page: int, total: int, links: Links, records: Iterable[Record]
) -> Collection:
    """Page ``page`` (1-based) of a large institution: up to ``COLLECTION_PAGE_SIZE`` manifests."""
    kwargs = _collection_common(inst, links)
    kwargs["partOf"] = [
        {"id": links.collection(inst.id), "type": "Collection", "label": _inst_label(inst)}
    ]
    kwargs["items"] = [manifest_ref(r, links) for r in records]
    return Collection(
        id=links.collection(inst.id, page), label=_page_label(inst, page, total), **kwargs
    )


def _page_label(inst: Institution, page: int, total: int) -> dict:
    first = (page - 1) * COLLECTION_PAGE_SIZE + 1
    last = min(total, page * COLLECTION_PAGE_SIZE)
    ja = inst.name.get("ja") or inst.id
    en = inst.name.get("en") or inst.id
    return lang_map(f"{ja}（{first}〜{last}件目）", f"{en} (objects {first}–{last})")


def _collection_common(inst: Institution, links: Links) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "requiredStatement": required_statement(inst),
        "provider": provider(links, inst),
        "homepage": [
            {
                "id": links.institution_page(inst.id),
                "type": "Text",
                "label": _inst_label(inst),
                "format": "text/html",
                "language": ["ja", "en"],
            }
        ],
    }
    summary = lang_map(inst.description.get("ja"), inst.description.get("en"))
    if summary:
        kwargs["summary"] = summary
    return kwargs


def to_json(resource: Manifest | Collection) -> str:
    """Serialise with the Presentation 3 @context (§4.6)."""
    return resource.jsonld()
