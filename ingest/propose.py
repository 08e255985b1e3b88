"""``archive init``: look at a curator's folder and propose its ``institution.toml``.

The proposal comes from a table of the column names that Japanese museum registers
(収蔵品台帳) and collection systems use, and English ones, plus the ways a column's
English twin or reading is named after it (``作品名（英）``, ``英文解説``, ``titleEn``,
``name_en``; ``件名よみ``, ``名称（ふりがな）``, ``titleYomi``), and names joined with
``・`` (``面打・作者``, ``員数・法量``) whose known parts agree. Nothing is guessed from
substrings: ``登録日`` or ``受入年`` are not dates of making, so unknown columns stay
unmapped and are kept as extra metadata, which costs nothing.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from archive.errors import CollectionError
from archive.records import FIELDS, INSTITUTION_ID_RE

from .collection import RECORD_SUFFIXES, TOML_NAME
from .readers import decode, read_records
from .workbook import WORKBOOK_SUFFIXES

# Column names (compared after NFKC, case folding, without spaces) -> field.
NAMES: dict[str, tuple[str, ...]] = {
    "id": (
        "資料番号", "登録番号", "整理番号", "所蔵品番号", "収蔵品番号", "収蔵番号", "作品番号",
        "文書番号", "資料id", "資料no", "管理番号", "受入番号", "番号", "no", "no.", "id",
        "catalogno", "catalognumber", "objectnumber", "objectid", "accessionnumber",
        "inventorynumber", "number",
    ),
    "title": (
        "名称", "資料名", "作品名", "品名", "件名", "名前", "題名", "標題", "表題", "資料名称",
        "作品名称", "タイトル", "title", "name", "objectname",
    ),
    "title_kana": (
        "よみ", "ふりがな", "フリガナ", "カナ", "読み", "よみがな", "ヨミ", "yomi", "kana",
        "reading",
    ),
    "creator": (
        "作者", "作家名", "制作者", "作者名", "作家", "作成者", "製作者", "著者", "筆者",
        "面打", "絵師", "制作", "author", "creator", "artist", "maker",
    ),
    "date": (
        "時代", "年代", "制作年", "年紀", "制作年代", "製作年", "製作年代", "作成年", "作成年代",
        "制作時期", "時代・年代", "date", "period", "dated",
    ),
    "object_type": (
        "分類", "分野", "種別", "資料種別", "種類", "ジャンル", "資料区分", "genre", "type",
        "category", "classification", "objecttype",
    ),
    "material": (
        "材質", "技法", "品質・形状", "品質", "形状", "形態", "素材", "medium", "material",
        "materials", "technique",
    ),
    "dimensions": (
        "法量", "寸法", "サイズ", "員数", "size", "dimensions", "measurements",
    ),
    "description": (
        "解説", "説明", "概要", "作品解説", "資料解説", "内容", "description", "note",
        "notes", "summary",
    ),
    "keywords": (
        "キーワード", "検索語", "索引語", "タグ", "件名標目", "keywords", "keyword", "tags",
        "subjects",
    ),
    "rights": (
        "権利", "権利表記", "著作権", "利用条件", "ライセンス", "rights", "license", "licence",
    ),
    "public": (
        "公開", "公開区分", "web公開", "ウェブ公開", "公開可否", "公開設定", "visibility",
        "public", "published",
    ),
    "max_image_size": ("公開画像サイズ", "画像公開サイズ", "maximagesize"),
    "behavior": ("表示形式", "閲覧形式", "装丁", "behavior", "behaviour", "layout"),
    "viewing_direction": (
        "閲覧方向", "表示方向", "綴じ方向", "direction", "viewingdirection", "readingdirection",
    ),
    "images": (
        "画像", "画像ファイル", "画像ファイル名", "ファイル名", "画像名", "画像パス", "images",
        "image", "files", "file", "filename", "imagefile", "imagefiles",
    ),
}  # fmt: skip
_BY_NAME = {name: f for f, names in NAMES.items() for name in names}
_BRACKETS = str.maketrans("（）［］【】", "()[][]")
# "<base>(英語)", "英文<base>", "<base>_en", "baseEn": the English twin of <base>
# (matched on the case-folded key, so "titleEn" is "titleen").
_ENGLISH = (
    re.compile(r"^(?P<base>.+?)[(\[](?:英|英語|英訳|英文|english|en)[)\]]$"),
    re.compile(r"^(?:英語|英文|英)(?P<base>.+)$"),
    re.compile(r"^(?P<base>.+?)[_\-.]?(?:en|english)$"),
)
# "<base>よみ", "<base>(ふりがな)", "titleYomi": the reading of a title.
_READING = re.compile(
    r"^(?P<base>.+?)[_\-.(\[]?(?:よみ|ヨミ|読み|ふりがな|フリガナ|よみがな|カナ|かな|yomi|kana|"
    r"reading)[)\]]?$"
)


def _key(name: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", name).casefold().translate(_BRACKETS))


def _plain(key: str) -> str | None:
    """A field for a name in the table, or for a name joined with ・ whose parts agree."""
    if key in _BY_NAME:
        return _BY_NAME[key]
    parts = [p for p in re.split(r"[・/／]", key) if p]
    if len(parts) > 1:
        found = {_BY_NAME[p] for p in parts if p in _BY_NAME}
        if len(found) == 1:
            return found.pop()
    return None


def field_for(column: str) -> str | None:
    """The canonical field a column name suggests, or None."""
    key = _key(column)
    if not key:
        return None
    if key in _BY_NAME:
        return _BY_NAME[key]
    for pattern in _ENGLISH:  # the key is case-folded: "titleEn" is "titleen" here
        m = pattern.match(key)
        if m and (base := _plain(m.group("base"))) and f"{base}_en" in _FIELD_NAMES:
            return f"{base}_en"
    m = _READING.match(key)
    if m and _plain(m.group("base")) == "title":
        return "title_kana"
    return _plain(key)


_FIELD_NAMES = {f.name for f in FIELDS}


@dataclass
class Proposal:
    records: Path
    columns: list[str]
    samples: dict[str, str]
    encoding: str  # what was detected: a codec, or "sheet 'NAME'" for a workbook
    fields: dict[str, str] = field(default_factory=dict)  # field -> column
    unmapped: list[str] = field(default_factory=list)
    others: list[Path] = field(default_factory=list)  # other records files seen
    sheet: str | None = None
    header_row: int | None = None


def find_records(folder: Path) -> list[Path]:
    """Records files at the top of the folder, most likely first (workbooks, then text)."""
    order = {s: i for i, s in enumerate((*WORKBOOK_SUFFIXES, ".csv", ".tsv", ".jsonl", ".json"))}
    found = [
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.suffix.lower() in RECORD_SUFFIXES
        and not p.name.startswith((".", "~$"))  # hidden files, Excel's lock files
    ]
    return sorted(found, key=lambda p: (order[p.suffix.lower()], -p.stat().st_size, p.name))


def propose(folder: Path, records: Path | None = None) -> Proposal:
    """Read the records file's header and propose the [fields] mapping."""
    candidates = find_records(folder)
    if records is None:
        if not candidates:
            raise CollectionError(
                "no records file here (.xlsx, .xlsm, .xls, .ods, .csv, .tsv, .json or .jsonl)",
                file=str(folder),
            )
        records = candidates[0]
    name = records.name
    header, codec, rows = read_records(records, name=name)
    columns = list(header or [])
    samples: dict[str, str] = {}
    for count, row in enumerate(rows):
        if row.error:
            continue
        for column, value in row.values.items():
            if header is None and column not in columns:
                columns.append(column)  # JSON: the keys, in the order first seen
            text = "; ".join(value) if isinstance(value, list) else str(value)
            if text.strip() and column not in samples:
                samples[column] = text.strip()
        if count >= 200:
            break
    proposal = Proposal(
        records, columns, samples, codec, others=[p for p in candidates if p != records]
    )
    if records.suffix.lower() in WORKBOOK_SUFFIXES:
        proposal.sheet = codec.removeprefix("sheet ").strip("'")
        proposal.header_row = getattr(header, "row", None)
    for column in columns:
        name_ = field_for(column)
        if name_ is not None and name_ not in proposal.fields:
            proposal.fields[name_] = column
        else:
            proposal.unmapped.append(column)
    return proposal


def institution_id(folder: Path, given: str | None) -> str:
    """``--id``, or the folder's name made into an id. Raises CollectionError."""
    if given is not None:
        if not INSTITUTION_ID_RE.match(given):
            raise CollectionError(
                f"--id must be lower-case letters, digits and '-' (got {given!r})"
            )
        return given
    made = re.sub(r"[^a-z0-9-]+", "-", unicodedata.normalize("NFKC", folder.name).lower())
    made = re.sub(r"-{2,}", "-", made).strip("-")
    if not made or not INSTITUTION_ID_RE.match(made):
        raise CollectionError(
            f"the folder name {folder.name!r} does not make an id; give one with --id "
            "(lower-case letters, digits and '-', e.g. --id memorial-hall)",
            file=str(folder),
        )
    return made


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string


def _comment(text: str, width: int = 40) -> str:
    """One line of at most ``width`` printable characters: safe in a TOML comment and on a
    terminal (a cell's escape sequences or line breaks never reach either)."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def render_toml(
    proposal: Proposal, inst_id: str, name_ja: str, name_en: str | None, folder: Path
) -> str:
    """The proposed institution.toml, commented for the curator who will check it."""
    out = [
        f"# Proposed by `archive init` from {proposal.records.name}: check every line, then",
        f"# run `archive ingest --dry-run --html report.html {folder.name}/`.",
        f"id = {_toml_string(inst_id)}                  # never change it once published",
    ]
    names = f"ja = {_toml_string(name_ja)}"
    if name_en:
        names += f", en = {_toml_string(name_en)}"
    out.append(f"name = {{ {names} }}   # the institution's name as the public sees it")
    out += [
        "# rights: the default for every record (a record's own column overrides it).",
        "# In copyright: http://rightsstatements.org/vocab/InC/1.0/",
        "# Free to reuse with credit: https://creativecommons.org/licenses/by/4.0/",
        "# Public domain: https://creativecommons.org/publicdomain/mark/1.0/",
        'rights = "http://rightsstatements.org/vocab/InC/1.0/"',
        "# max_image_size = 1200          # cap the longest side served to the public",
        "",
        "[records]",
        f"path = {_toml_string(proposal.records.name)}",
    ]
    if proposal.sheet is not None:
        out.append(f"sheet = {_toml_string(proposal.sheet)}")
        row = proposal.header_row
        out.append(f"# header_row = {row:<16} # the header was found on row {row}; set it if wrong")
    else:
        out.append(f'encoding = "auto"              # detected: {proposal.encoding}')
    out += ["", "[fields]                         # field = column, with a value from the file"]
    order = [f.name for f in FIELDS]
    for name in sorted(proposal.fields, key=order.index):
        column = proposal.fields[name]
        sample = proposal.samples.get(column, "")
        line = f"{name} = {_toml_string(column)}"
        out.append(f"{line:<32} # {_comment(sample)}" if sample else line)
    for missing in ("id", "title"):
        if missing not in proposal.fields:
            out.append(f'# {missing} = "?"   REQUIRED: name the column that holds it')
    if proposal.unmapped:
        out.append("# Not mapped, kept as extra metadata (map one by adding a line above):")
        for column in proposal.unmapped:
            sample = proposal.samples.get(column, "")
            out.append(f"#   {_comment(column)}" + (f": {_comment(sample)}" if sample else ""))
    if "images" not in proposal.fields:
        out += [
            "",
            "# No column lists images: files named after the record's number are used",
            "# (F-1.jpg, F-1_2.jpg, F-1-2.tif, F-1 (2).JPG, in any folder). To change that:",
            "# [images]",
            '# names = ["{id}", "{id}_{n}", "{id}-{n}", "{id} ({n})"]',
            '# folder = "images"',
        ]
    return "\n".join(out) + "\n"


def write_proposal(folder: Path, text: str, *, force: bool) -> Path:
    path = folder / TOML_NAME
    if path.exists() and not force:
        raise CollectionError(
            f"{TOML_NAME} already exists; use --force to replace it", file=str(path)
        )
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def detected_encoding(path: Path) -> str:
    """The codec ``auto`` finds for a text records file (for the output)."""
    return decode(path.read_bytes(), "auto", path.name)[1]


def run_init(
    folder: Path,
    *,
    inst_id: str | None,
    records: str | None,
    force: bool,
    echo,
    prompt=None,
) -> bool:
    """``archive init``: write the proposal and tell the curator what to check. ``prompt``
    (ask a question, with a default) is given only when standard input is a terminal.
    Returns False when the proposal misses a required field. Raises CollectionError."""
    folder = folder.resolve()
    target = folder / TOML_NAME
    if target.exists() and not force:
        raise CollectionError(
            f"{TOML_NAME} already exists; use --force to replace it", file=str(target)
        )
    identifier = institution_id(folder, inst_id)
    chosen: Path | None = None
    if records is not None:
        chosen = (folder / records).resolve()
        if chosen.parent != folder or not chosen.is_file():
            raise CollectionError("--records must name a file in the folder", file=records)
        if chosen.suffix.lower() not in RECORD_SUFFIXES:
            raise CollectionError(
                f"records file must end in one of {', '.join(RECORD_SUFFIXES)}", file=records
            )
    elif prompt is not None:
        found = find_records(folder)
        if len(found) > 1:
            for number, path in enumerate(found, start=1):
                echo(f"  {number}. {path.name}")
            pick = prompt("Which file holds the records?", default="1")
            if not str(pick).isdigit() or not 1 <= int(pick) <= len(found):
                raise CollectionError(f"no file number {pick!r}", file=str(folder))
            chosen = found[int(pick) - 1]
    proposal = propose(folder, chosen)
    name_ja, name_en = folder.name, None
    if prompt is not None:
        name_ja = prompt("The institution's name in Japanese", default=folder.name)
        name_en = prompt("Its name in English (empty: none)", default="") or None
    path = write_proposal(
        folder, render_toml(proposal, identifier, name_ja, name_en, folder), force=force
    )

    echo(f"Wrote {path}")
    where = (
        f"sheet {proposal.sheet!r}" if proposal.sheet is not None else f"{proposal.encoding} text"
    )
    echo(f"Records: {proposal.records.name} ({where}), {len(proposal.columns)} columns")
    if proposal.others:
        echo("  also here, not used: " + ", ".join(_comment(p.name, 80) for p in proposal.others))
    echo("Proposed mapping (field = column: a value from the file):")
    order = [f.name for f in FIELDS]
    for name in sorted(proposal.fields, key=order.index):
        column = proposal.fields[name]
        sample = _comment(proposal.samples.get(column, ""))
        echo(f"  {name:<18} = {_comment(column, 60)}: {sample}")
    if proposal.unmapped:
        echo(
            "Not mapped (kept as extra metadata): "
            + ", ".join(_comment(c, 60) for c in proposal.unmapped)
        )
    complete = all(f in proposal.fields for f in ("id", "title"))
    if complete and "images" not in proposal.fields:
        from .collection import load_collection
        from .matching import build_matcher

        try:
            matcher = build_matcher(load_collection(folder))
        except CollectionError as exc:
            echo(f"Check: {exc}")
        else:
            if matcher is not None:
                count = sum(len(m) for m in matcher.by_record.values())
                echo(
                    f"Images: no column lists them; {count} file(s) found by number for "
                    f"{len(matcher.by_record)} record(s), {len(matcher.unmatched)} named "
                    "after no record."
                )
    echo("")
    echo("Before the first ingest, check in institution.toml:")
    for missing in ("id", "title"):
        if missing not in proposal.fields:
            echo(f"  - REQUIRED: no column was recognised as {missing!r}; name it in [fields]")
    echo("  - name and rights (rights is the default licence of every record: In copyright")
    echo("    is proposed; change it if your records may be reused)")
    echo("  - each line of [fields]: the value beside it must be what the field means")
    echo("  - the unmapped columns: map any that the public should see as a field")
    echo(f"Then: archive ingest --dry-run --html report.html {folder}")
    return complete
