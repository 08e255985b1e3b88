"""The archive's data model: institutions, records and their images.

A ``Record`` keeps both what the curator wrote (``fields``, verbatim after
trimming, and ``extra`` for unmapped columns) and what we derived from it
(``date_start``/``date_end``/``era``, the effective ``rights`` and image cap).
Ids are derived from the source ids, so re-ingesting never changes them.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any

INSTITUTION_ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# A local id this simple is used as it is in the archive-wide id; others are hashed.
_SIMPLE_LOCAL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
# What record and image ids look like; anything else from a URL is not looked up.
RECORD_ID_RE = re.compile(r"^[a-z0-9-]{1,64}_{1,2}[A-Za-z0-9-]{1,64}$")
IMAGE_ID_RE = re.compile(r"^[a-z0-9-]{1,64}_{1,2}[A-Za-z0-9-]{1,64}~[0-9a-f]{10}$")


@dataclass(frozen=True)
class FieldDef:
    name: str
    label_ja: str
    label_en: str
    multi: bool = False
    required: bool = False


# Canonical fields a curator's [fields] table may map. Order is display order.
FIELDS: tuple[FieldDef, ...] = (
    FieldDef("id", "資料番号", "Object number", required=True),
    FieldDef("title", "名称", "Title", required=True),
    FieldDef("title_en", "英語名称", "Title (English)"),
    FieldDef("title_kana", "名称よみ", "Title (reading)"),
    FieldDef("creator", "作者", "Creator"),
    FieldDef("creator_en", "作者（英語）", "Creator (English)"),
    FieldDef("date", "制作年代", "Date"),
    FieldDef("object_type", "分類", "Object type"),
    FieldDef("object_type_en", "分類（英語）", "Object type (English)"),
    FieldDef("material", "材質・技法", "Material and technique"),
    FieldDef("material_en", "材質・技法（英語）", "Material and technique (English)"),
    FieldDef("dimensions", "寸法", "Dimensions"),
    FieldDef("description", "解説", "Description"),
    FieldDef("description_en", "解説（英語）", "Description (English)"),
    FieldDef("keywords", "キーワード", "Keywords", multi=True),
    FieldDef("rights", "権利", "Rights"),
    FieldDef("public", "公開", "Public"),
    FieldDef("max_image_size", "公開画像サイズ", "Maximum image size"),
    FieldDef("behavior", "表示形式", "Viewing behavior"),
    FieldDef("viewing_direction", "閲覧方向", "Viewing direction"),
    FieldDef("images", "画像ファイル", "Image files", multi=True),
)
FIELDS_BY_NAME = {f.name: f for f in FIELDS}
# Fields whose English twin is `<name>_en`.
BILINGUAL = ("title", "creator", "object_type", "material", "description")

# Controlled values a curator may write, in English or Japanese, and the IIIF
# Presentation 3.0 term each stands for (§3.3.1 behavior, §3.2 viewingDirection).
BEHAVIOR_TERMS = {
    "paged": "paged",
    "book": "paged",
    "album": "paged",
    "冊子": "paged",
    "画帖": "paged",
    "帖": "paged",
    "本": "paged",
    "折本": "paged",
    "continuous": "continuous",
    "scroll": "continuous",
    "巻子": "continuous",
    "巻物": "continuous",
    "絵巻": "continuous",
    "巻": "continuous",
    "individuals": "individuals",
    "individual": "individuals",
    "一枚物": "individuals",
}
# Japanese books bound in the traditional way and handscrolls are read right to left.
VIEWING_DIRECTION_TERMS = {
    "left-to-right": "left-to-right",
    "right-to-left": "right-to-left",
    "top-to-bottom": "top-to-bottom",
    "bottom-to-top": "bottom-to-top",
    "ltr": "left-to-right",
    "rtl": "right-to-left",
    "左から右": "left-to-right",
    "右から左": "right-to-left",
    "上から下": "top-to-bottom",
    "下から上": "bottom-to-top",
    "左→右": "left-to-right",
    "右→左": "right-to-left",
    "上→下": "top-to-bottom",
    "下→上": "bottom-to-top",
    "横書き": "left-to-right",  # horizontal Japanese: pages turn left to right
    "縦書き": "right-to-left",  # vertical Japanese: pages turn right to left
}


def controlled_term(value: object, terms: dict[str, str]) -> str | None:
    """The term ``value`` stands for (width, case and spaces ignored), or None."""
    key = unicodedata.normalize("NFKC", str(value or "")).strip().casefold().replace(" ", "")
    return terms.get(key)


_KEYWORD_SPLIT_RE = re.compile(r"[;；、|｜]")
_IMAGE_SPLIT_RE = re.compile(r"[;|]")

_RIGHTS_RE = re.compile(
    r"^(?:https?://creativecommons\.org/(?:licenses/[a-z-]+/\d\.\d(?:/[a-z]{2})?"
    r"|publicdomain/(?:zero/1\.0|mark/1\.0))/"
    r"|https?://rightsstatements\.org/vocab/[A-Za-z-]+/1\.0/)$"
)


def split_keywords(value: str) -> list[str]:
    return [part.strip() for part in _KEYWORD_SPLIT_RE.split(value) if part.strip()]


def split_images(value: str) -> list[str]:
    return [part.strip() for part in _IMAGE_SPLIT_RE.split(value) if part.strip()]


def is_valid_rights(uri: str) -> bool:
    """IIIF Presentation 3.0 `rights`: a Creative Commons or RightsStatements.org URI."""
    return bool(_RIGHTS_RE.match(uri.strip()))


def search_key(text: str) -> str:
    """NFKC and case folding: the form used to compare and search, never to display."""
    return unicodedata.normalize("NFKC", text).casefold()


def record_id(institution: str, local_id: str) -> str:
    """Archive-wide, URL-safe, stable id for a record.

    ``noh-museum_N-12`` when the local id is simple ASCII; otherwise
    ``noh-museum__<16 hex>`` from a hash of the local id (a double underscore
    cannot arise from a simple id, so the two forms never collide).
    """
    if _SIMPLE_LOCAL_ID_RE.match(local_id):
        return f"{institution}_{local_id}"
    digest = hashlib.sha1(local_id.encode("utf-8")).hexdigest()[:16]
    return f"{institution}__{digest}"


def image_id(rec_id: str, source_path: str, page: int = 0) -> str:
    """Stable id of one image of a record: from its source path (and page), not its position."""
    key = source_path if page == 0 else f"{source_path}#{page}"
    return f"{rec_id}~{hashlib.sha1(key.encode('utf-8')).hexdigest()[:10]}"


@dataclass
class Institution:
    id: str
    name: dict[str, str]  # {"ja": ..., "en": ...}
    rights: str
    homepage: str | None = None
    logo: str | None = None  # path relative to the source folder, as given
    max_image_size: int = 0
    credit: dict[str, str] = field(default_factory=dict)  # requiredStatement; defaults to name
    description: dict[str, str] = field(default_factory=dict)
    source: str | None = None  # absolute path of the folder last ingested from

    def label(self, lang: str) -> str:
        return pick_lang(self.name, lang)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Institution:
        return cls(**json.loads(text))


@dataclass
class ImageRef:
    id: str
    source: str  # path relative to the institution folder, as the curator wrote it
    page: int = 0  # page of a multi-page source (TIFF), 0-based
    checksum: str = ""  # sha256 of the source file
    width: int = 0  # full size of the pyramid
    height: int = 0
    version: str = ""  # changes whenever the pixels change; part of the pyramid's file name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SourceRef:
    file: str
    row: int  # 1-based data row (CSV: line of the record, header is row 1) or JSON index + 1


@dataclass
class Record:
    id: str
    institution: str
    local_id: str
    fields: dict[str, Any]  # canonical name -> str (or list[str] for multi fields), as written
    extra: list[list[str]] = field(default_factory=list)  # [label, value] for unmapped columns
    public: bool = True
    rights: str = ""
    max_image_size: int = 0  # effective cap (record override or institution default); 0 = none
    date_start: int | None = None
    date_end: int | None = None
    era: str | None = None  # normalised period, e.g. "江戸時代" or "19世紀"
    images: list[ImageRef] = field(default_factory=list)
    source: SourceRef | None = None
    created_at: str | None = None  # set by the catalog
    updated_at: str | None = None

    def get(self, name: str, default: Any = None) -> Any:
        value = self.fields.get(name)
        return default if value in (None, "", []) else value

    def text(self, name: str, lang: str = "ja") -> str | None:
        """A bilingual field in ``lang``, falling back to the other language."""
        if name in BILINGUAL:
            en = self.get(f"{name}_en")
            ja = self.get(name)
            return (en or ja) if lang == "en" else (ja or en)
        return self.get(name)

    def label(self, lang: str = "ja") -> str:
        return self.text("title", lang) or self.local_id

    def content_checksum(self) -> str:
        """Hash of everything derived from the source; equal checksums mean nothing changed."""
        payload = self.to_dict()
        for volatile in ("created_at", "updated_at", "source"):
            payload.pop(volatile, None)
        blob = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """Same as ``dataclasses.asdict`` (a test keeps it so), five times faster: ingest
        computes it for every record of every run to see whether anything changed."""
        data = {f: getattr(self, f) for f in _RECORD_FIELDS}
        data["fields"] = {k: list(v) if isinstance(v, list) else v for k, v in self.fields.items()}
        data["extra"] = [list(pair) for pair in self.extra]
        data["images"] = [dict(vars(img)) for img in self.images]
        data["source"] = dict(vars(self.source)) if self.source is not None else None
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        data = dict(data)
        data["images"] = [ImageRef(**i) for i in data.get("images") or []]
        if data.get("source"):
            data["source"] = SourceRef(**data["source"])
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> Record:
        return cls.from_dict(json.loads(text))


_RECORD_FIELDS = tuple(f.name for f in dataclass_fields(Record))


def pick_lang(values: dict[str, str], lang: str) -> str:
    """The value in ``lang``, else Japanese, else English, else any."""
    for key in (lang, "ja", "en"):
        if values.get(key):
            return values[key]
    return next((v for v in values.values() if v), "")
