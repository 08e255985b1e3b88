"""Small curator folders for the catalog tests that run `archive ingest` for real."""

from __future__ import annotations

import csv
from pathlib import Path

import pyvips


def make_folder(root: Path, inst_id: str, records: int = 2, size: int = 700) -> Path:
    folder = root / inst_id
    (folder / "images").mkdir(parents=True)
    rows = []
    for n in range(records):
        band = pyvips.Image.gaussnoise(size, size, sigma=50, mean=128, seed=n + 1).cast("uchar")
        band.bandjoin([band, band]).copy(interpretation="srgb").write_to_file(
            str(folder / "images" / f"R-{n}.png")
        )
        rows.append({"id": f"R-{n}", "title": f"資料 {n}", "images": f"images/R-{n}.png"})
    with open(folder / "records.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, ["id", "title", "images"])
        writer.writeheader()
        writer.writerows(rows)
    (folder / "institution.toml").write_text(
        f'id = "{inst_id}"\nname = {{ ja = "館 {inst_id}", en = "Museum {inst_id}" }}\n'
        'rights = "http://rightsstatements.org/vocab/InC/1.0/"\n'
        '[records]\npath = "records.csv"\n'
        '[fields]\nid = "id"\ntitle = "title"\nimages = "images"\n',
        encoding="utf-8",
    )
    return folder
