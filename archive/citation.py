"""How to cite a record, and what its rights URI means, in words people read.

Shared by the record JSON (``/api/records/{id}``), the manifests and the item
page, so a citation reads the same everywhere. Pure functions of a record, its
institution and the record's stable public URL.
"""

from __future__ import annotations

import re

from .records import Institution, Record, pick_lang

# RightsStatements.org statements (https://rightsstatements.org/page/1.0/).
_RIGHTS_STATEMENTS = {
    "InC": ("著作権あり", "In Copyright"),
    "InC-OW-EU": ("著作権あり（EU孤児著作物）", "In Copyright - EU Orphan Work"),
    "InC-EDU": ("著作権あり（教育目的の利用可）", "In Copyright - Educational Use Permitted"),
    "InC-NC": ("著作権あり（非営利目的の利用可）", "In Copyright - Non-Commercial Use Permitted"),
    "InC-RUU": (
        "著作権あり（権利者不明）",
        "In Copyright - Rights-holder(s) Unlocatable or Unidentifiable",
    ),
    "NoC-CR": ("著作権なし（契約による制限あり）", "No Copyright - Contractual Restrictions"),
    "NoC-NC": ("著作権なし（非営利目的のみ）", "No Copyright - Non-Commercial Use Only"),
    "NoC-OKLR": (
        "著作権なし（その他の法的制限あり）",
        "No Copyright - Other Known Legal Restrictions",
    ),
    "NoC-US": ("著作権なし（米国）", "No Copyright - United States"),
    "CNE": ("著作権未評価", "Copyright Not Evaluated"),
    "UND": ("著作権不明", "Copyright Undetermined"),
    "NKC": ("既知の著作権なし", "No Known Copyright"),
}
_RS_RE = re.compile(r"^https?://rightsstatements\.org/vocab/([A-Za-z-]+)/1\.0/$")
_CC_RE = re.compile(r"^https?://creativecommons\.org/licenses/([a-z-]+)/(\d\.\d)(?:/([a-z]{2}))?/$")


def rights_label(uri: str, lang: str = "ja") -> str:
    """A short human label for a rights URI ("CC BY 4.0", "著作権あり"); the URI if unknown."""
    uri = uri.strip()
    if match := _RS_RE.match(uri):
        names = _RIGHTS_STATEMENTS.get(match.group(1))
        if names:
            return names[1] if lang == "en" else names[0]
    if match := _CC_RE.match(uri):
        code, version, port = match.groups()
        label = f"CC {code.upper()} {version}"
        return f"{label} ({port.upper()})" if port else label
    if "creativecommons.org/publicdomain/zero/" in uri:
        return "CC0 1.0"
    if "creativecommons.org/publicdomain/mark/" in uri:
        return "パブリック・ドメイン・マーク 1.0" if lang != "en" else "Public Domain Mark 1.0"
    return uri


def iiif_rights(uri: str) -> str:
    """The rights URI as IIIF Presentation 3.0 §3.3.2 wants it: ``http://``, never https."""
    uri = uri.strip()
    for host in ("creativecommons.org/", "rightsstatements.org/"):
        if uri.startswith("https://" + host):
            return "http://" + uri[len("https://") :]
    return uri


def citation(record: Record, institution: Institution, url: str, lang: str = "ja") -> str:
    """A "cite this" line: who, what, when, where it is held, and the stable URL."""
    title = record.label(lang)
    creator = record.text("creator", lang)
    date = record.get("date")
    holder = institution.label(lang)
    if lang == "en":
        parts = [
            f"{creator}." if creator else None,
            f"\u201c{title}.\u201d",
            f"{date}." if date else None,
            f"{holder}, {record.local_id}.",
            url,
        ]
        return " ".join(p for p in parts if p)
    parts = [creator, f"「{title}」", date, f"{holder}所蔵（{record.local_id}）", url]
    return "、".join(p for p in parts if p)


_BIBTEX_SPECIAL = re.compile(r"([\\{}%&$#_^~])")


def _bib(value: str) -> str:
    def esc(match: re.Match) -> str:
        char = match.group(1)
        if char == "\\":
            return r"\textbackslash{}"
        if char in "^~":
            return rf"\{char}{{}}"
        return "\\" + char

    return _BIBTEX_SPECIAL.sub(esc, value)


def bibtex(record: Record, institution: Institution, url: str) -> str:
    """A BibTeX ``@misc`` entry; the key is the record id (stable, URL-safe)."""
    key = re.sub(r"[^A-Za-z0-9-]", "_", record.id)
    title_ja = record.get("title") or record.local_id
    title_en = record.get("title_en")
    title = f"{title_ja} ({title_en})" if title_en else title_ja
    fields: list[tuple[str, str]] = [("title", title)]
    creator = record.get("creator")
    if creator:
        fields.append(("author", creator))
    if record.date_start is not None:
        fields.append(("year", str(record.date_start)))
    if record.get("date"):
        fields.append(("note", f"{record.get('date')}; {record.local_id}"))
    else:
        fields.append(("note", record.local_id))
    fields.append(("organization", pick_lang(institution.name, "en") or institution.id))
    fields.append(("howpublished", f"\\url{{{url}}}"))
    fields.append(("url", url))
    if record.rights:
        fields.append(("copyright", rights_label(record.rights, "en")))
    lines = [f"@misc{{{key},"]
    for name, value in fields:
        text = value if name in ("howpublished", "url") else _bib(value)
        lines.append(f"  {name} = {{{text}}},")
    lines.append("}")
    return "\n".join(lines)
