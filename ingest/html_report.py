"""The ingest report as one HTML page a curator can open: no server, no network.

``archive ingest --dry-run --html FILE`` (or a real run with ``--html``) writes it.
Everything is inside the file: the CSS inline, each image's thumbnail a ``data:`` URI,
converted as the public will get it (sRGB, orientation applied) and no larger than the
record's size cap, beside the size the public is served. A Content-Security-Policy lets
the page load nothing from anywhere. Every text that came from a curator's file (cell
values, column names, file names) is escaped.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from .report import Change, InstitutionReport, Report

THUMBNAIL = 240  # longest side of a thumbnail, in pixels
MAX_THUMBNAILS = 400  # per report: a large first ingest still gives a page a browser opens
_KIND = {"add": "added", "update": "changed", "remove": "removed"}
_CSS = """
body{font:15px/1.5 system-ui,"Noto Sans CJK JP","Hiragino Sans",sans-serif;margin:2rem;
color:#1d1d1f;background:#fff}
h1{font-size:1.5rem}h2{font-size:1.25rem;margin-top:2.5rem;border-bottom:2px solid #ccc}
h3{font-size:1.05rem;margin-top:1.5rem}
table{border-collapse:collapse;margin:.5rem 0;max-width:100%}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.value{font-family:ui-monospace,monospace;white-space:pre-wrap;
word-break:break-all;max-width:24rem}
.summary span{display:inline-block;margin-right:1rem}
.bad{color:#b00020;font-weight:bold}.ok{color:#1b7f3b;font-weight:bold}
.thumbs{display:flex;flex-wrap:wrap;gap:1rem;list-style:none;padding:0}
.thumbs li{width:250px}.thumbs img{max-width:240px;max-height:240px;border:1px solid #ddd}
.thumbs small{display:block;color:#555;word-break:break-all}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _thumbnail(path: Path, page: int, cap: int) -> str:
    """A data: URI of the image as published, at most THUMBNAIL (and the cap) pixels."""
    import pyvips

    from .images import TileParams, _is_jp2, open_page, to_srgb8

    size = min(THUMBNAIL, cap) if cap else THUMBNAIL
    if _is_jp2(str(path)):
        image = open_page(str(path), page, TileParams()).thumbnail_image(size, height=size)
    else:
        source = f"{path}[page={page}]" if page else str(path)
        image = to_srgb8(pyvips.Image.thumbnail(source, size, height=size))
    data = image.write_to_buffer(".jpg[Q=80,strip]")
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def _published(width: int, height: int, cap: int) -> tuple[int, int]:
    longest = max(width, height)
    if not cap or longest <= cap:
        return width, height
    scale = cap / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


class _Budget:
    def __init__(self, count: int) -> None:
        self.left = count
        self.skipped = 0


def _images(inst: InstitutionReport, change: Change, budget: _Budget) -> str:
    items = []
    folder = Path(inst.folder)
    for image in change.images:
        source, page = image.get("source", ""), int(image.get("page") or 0)
        width, height = int(image.get("width") or 0), int(image.get("height") or 0)
        label = source + (f" (page {page + 1})" if page else "")
        if width and height:
            pw, ph = _published(width, height, change.cap)
            size = f"published {pw} × {ph} px"
            if (pw, ph) != (width, height):
                size += f" (capped at {change.cap} px; the file is {width} × {height})"
        else:
            size = ""
        if budget.left <= 0:
            budget.skipped += 1
            continue
        budget.left -= 1
        try:
            uri = _thumbnail(folder / source, page, change.cap)
            picture = f'<img src="{uri}" alt="{_e(label)}">'
        except Exception as exc:  # noqa: BLE001 - a preview never fails the report
            picture = f'<span class="bad">no preview: {_e(str(exc).splitlines()[0])}</span>'
        items.append(f"<li>{picture}<small>{_e(label)}</small><small>{_e(size)}</small></li>")
    return f'<ul class="thumbs">{"".join(items)}</ul>' if items else ""


def _institution(inst: InstitutionReport, dry_run: bool, budget: _Budget) -> str:
    out = [f"<section><h2>{_e(inst.id or inst.folder)}</h2>"]
    if inst.error:
        out.append(f'<p class="bad">This folder could not be ingested: {_e(inst.error)}</p>')
        return "".join(out) + "</section>"
    verb = "would be " if dry_run else ""
    out.append(
        f"<p>{_e(inst.records_file)} ({_e(inst.encoding)}), folder {_e(inst.folder)}</p>"
        '<p class="summary">'
        f"<span>{inst.added} {verb}added</span><span>{inst.updated} {verb}changed</span>"
        f"<span>{inst.unchanged} unchanged</span><span>{inst.removed} {verb}removed</span>"
        f'<span class="{"bad" if inst.failed else "ok"}">{inst.failed} failed</span></p>'
    )
    if inst.note:
        out.append(f"<p><strong>Note:</strong> {_e(inst.note)}</p>")
    if inst.failures:
        out.append(
            f'<h3 class="bad">Errors ({len(inst.failures)})</h3><table class="errors">'
            "<tr><th>where</th><th>record</th><th>field</th><th>column</th><th>value</th>"
            "<th>problem</th></tr>"
        )
        for f in inst.failures:
            where = f.cell or (f"{f.file}, row {f.row}" if f.row is not None else f.file)
            out.append(
                f"<tr><td>{_e(where)}</td><td>{_e(f.record)}</td><td>{_e(f.field)}</td>"
                f'<td>{_e(f.column)}</td><td class="value">{_e(f.value)}</td>'
                f"<td>{_e(f.reason)}</td></tr>"
            )
        out.append("</table>")
    for title, items in (
        ("Public records without an image", inst.without_images),
        ("Images named after no record", inst.unmatched_images),
        (
            "Image names to check (two records could claim them, or two files share a place)",
            inst.ambiguous_images,
        ),
    ):
        if items:
            rows = "".join(f"<li>{_e(item)}</li>" for item in items)
            out.append(f"<h3>{_e(title)} ({len(items)})</h3><ul>{rows}</ul>")
    for kind in ("add", "update", "remove"):
        changes = [c for c in inst.changes if c.kind == kind]
        if not changes:
            continue
        out.append(f"<h3>{_e(_KIND[kind].capitalize())} ({len(changes)})</h3>")
        for change in changes:
            detail = f": {', '.join(change.fields)}" if change.fields else ""
            out.append(f"<h4>{_e(change.record)}{_e(detail)}</h4>")
            out.append(_images(inst, change, budget))
    return "".join(out) + "</section>"


def render_html(report: Report) -> str:
    """The whole report as one self-contained HTML document."""
    title = "Dry run: nothing was written" if report.dry_run else "Ingest report"
    budget = _Budget(MAX_THUMBNAILS)
    sections = "".join(_institution(i, report.dry_run, budget) for i in report.institutions)
    status = (
        '<p class="ok">Every record succeeded.</p>'
        if report.ok
        else '<p class="bad">Some records failed or the run did not finish: see the errors.</p>'
    )
    skipped = (
        f"<p>{budget.skipped} more image(s) not previewed (the page shows at most "
        f"{MAX_THUMBNAILS}).</p>"
        if budget.skipped
        else ""
    )
    extra = f"<p>Search index: {_e(report.search)}</p>" if report.search != "ok" else ""
    return (
        '<!doctype html><html lang="ja"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1><p>{_e(report.started_at)}</p>{status}{extra}"
        f"{sections}{skipped}</body></html>\n"
    )


def write_html(report: Report, path: str | Path) -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_html(report), encoding="utf-8")
    tmp.replace(path)
    return path
