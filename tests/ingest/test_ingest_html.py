"""The HTML report in real headless Chromium (Debian's), offline: it opens from the
disk with no server and no network, shows every error with its sheet, row, column and
value, escapes what curators' files contain, and previews images at their size cap."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from ingest_helpers import INC, write_image

from archive.cli import cli

pytestmark = [pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
SHEET = "台帳<i>"
HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">&amp;\u202e'
CAP = 50


@pytest.fixture(scope="module")
def chromium():
    from playwright import sync_api  # in the [test] extra: missing is a failure, not a skip

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser`")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def hostile_register(folder: Path) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = SHEET
    ws["A1"] = "収蔵品台帳"
    ws.append([])
    ws.append(["番号", "名称", "公開", "画像", "メモ<b>"])
    ws.append(["A-1", "小面", "公開", "A-1.jpg", HOSTILE])
    ws.append(["A-2", "唐織", HOSTILE, None, None])  # public: not understood
    ws.append(['"><svg onload="window.pwned=3">', "x", None, "../outside.jpg", None])
    ws.append(["A-4", None, None, None, None])  # no title
    book.save(folder / "register.xlsx")
    write_image(folder / "A-1.jpg", width=96, height=64)
    write_image(folder / "photos" / "A-3_1.jpg", seed=2)  # named after no record
    (folder / "institution.toml").write_text(
        f'id = "hall"\nname = "記念館"\nrights = "{INC}"\nmax_image_size = {CAP}\n'
        '[records]\npath = "register.xlsx"\n'
        '[fields]\nid = "番号"\ntitle = "名称"\npublic = "公開"\nimages = "画像"\n',
        encoding="utf-8",
    )


def test_html_report_offline_in_chromium(tmp_path: Path, runner, home, chromium) -> None:
    folder = tmp_path / "hall"
    folder.mkdir()
    hostile_register(folder)
    out = tmp_path / "report.html"
    result = runner.invoke(
        cli, ["--home", str(home), "ingest", "--dry-run", "--html", str(out), str(folder)]
    )
    assert result.exit_code == 1, result.output  # three rows fail
    assert out.is_file() and "<script>window" not in out.read_text(encoding="utf-8")

    context = chromium.new_context(offline=True)
    requests: list[str] = []
    console: list[str] = []
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    try:
        page.goto(out.as_uri())
        page.wait_for_load_state("load")
        assert page.title() == "Dry run: nothing was written"
        rows = page.eval_on_selector_all(
            "table.errors tr:not(:first-child)",
            "rows => rows.map(r => [...r.cells].map(c => c.textContent))",
        )
        by_where = {r[0]: r for r in rows}
        assert len(rows) == 3, rows
        assert by_where[f"'{SHEET}'!C5"][2:5] == ["public", "公開", HOSTILE]
        assert by_where[f"'{SHEET}'!D6"][2:5] == ["images", "画像", "../outside.jpg"]
        assert by_where[f"'{SHEET}'!B7"][1:3] == ["A-4", "title"]
        assert by_where[f"'{SHEET}'!D6"][1] == '"><svg onload="window.pwned=3">'
        assert page.evaluate("() => window.pwned") is None  # nothing from the file ran
        injected = page.eval_on_selector_all("script, svg, img:not(.thumbs img)", "e => e.length")
        assert injected == 0
        body = page.inner_text("body")
        assert "photos/A-3_1.jpg" in body  # the image named after no record
        thumbs = page.eval_on_selector_all(
            ".thumbs img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        assert thumbs == [[True, CAP, 33]]  # 96 × 64 shown as published: capped at 50 px
        assert f"published {CAP} × 33 px (capped at {CAP} px; the file is 96 × 64)" in body
        assert all(u.startswith(("file:", "data:")) for u in requests), requests
        assert not [m for m in console if "Content Security Policy" in m or "error" in m]
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    finally:
        context.close()


def test_html_into_a_missing_folder_fails_before_the_run(tmp_path: Path, runner, home) -> None:
    folder = tmp_path / "hall"
    folder.mkdir()
    hostile_register(folder)
    target = tmp_path / "no" / "report.html"
    result = runner.invoke(cli, ["--home", str(home), "ingest", "--html", str(target), str(folder)])
    assert result.exit_code == 1 and "its folder does not exist" in result.output
    assert "Ingest report" not in result.output  # nothing was run


def test_csv_errors_name_file_row_column_and_value(tmp_path: Path, archive, make_collection):
    from ingest_helpers import row

    from ingest.html_report import render_html
    from ingest.pipeline import run_ingest

    folder = make_collection([row("A-1", "壺"), row("A-2", "皿", 公開="<b>maybe</b>")])
    report = run_ingest(archive, [str(folder)], dry_run=True, workers=1, progress=None)
    page = render_html(report)
    assert "<td>records.csv, row 3</td><td>A-2</td><td>public</td><td>公開</td>" in page
    assert '<td class="value">&lt;b&gt;maybe&lt;/b&gt;</td>' in page and "<b>maybe" not in page
