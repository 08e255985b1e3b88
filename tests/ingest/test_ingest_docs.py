"""The complete example in docs/collection-format.md ingests as the page says it does."""

from __future__ import annotations

import re
from pathlib import Path

from ingest_helpers import rgb

from ingest.pipeline import run_ingest

DOC = Path(__file__).resolve().parents[2] / "docs" / "collection-format.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_documented_example_ingests(tmp_path: Path, archive) -> None:
    folder = tmp_path / "noh-museum"
    folder.mkdir()
    (folder / "institution.toml").write_text(blocks("toml")[0], encoding="utf-8")
    (folder / "records.csv").write_bytes(blocks("csv")[0].encode("cp932"))
    rgb(40, 30).write_to_file(str(folder / "logo.png"))
    for path in re.findall(r"images/[\w/-]+\.(?:jpg|tif)", blocks("csv")[0]):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        rgb(80, 60).write_to_file(str(folder / path))
    report = run_ingest(archive, [str(folder)], workers=1, progress=None)
    assert report.ok, report.render()
    catalog = archive.catalog
    mask = catalog.get_record("noh-museum_N-12")
    assert mask.extra == [["旧蔵者", "加賀藩前田家"]] and mask.era == "江戸時代"
    assert mask.fields["keywords"] == ["能面", "女面"]
    robe = catalog.get_record("noh-museum_N-13")
    assert robe.max_image_size == 2000 and len(robe.images) == 2
    assert robe.rights.startswith("https://creativecommons.org/")
    assert catalog.get_record("noh-museum_N-14", public_only=False).public is False
    inst = catalog.get_institution("noh-museum")
    assert inst.credit["en"] == "Kanazawa Noh Museum" and inst.logo == "logo.png"
