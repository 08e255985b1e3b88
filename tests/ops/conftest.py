"""Fixtures for the operations tests: small curator folders, ingested through the real
`archive` command in a process of its own (as operators run it)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import pyvips

BIN = Path(sys.executable).parent
RIGHTS = "http://rightsstatements.org/vocab/InC/1.0/"


def noise(width: int, height: int, seed: int = 0) -> pyvips.Image:
    """Photo-like detail, so pyramids have a realistic size."""
    band = pyvips.Image.gaussnoise(width, height, sigma=50, mean=128, seed=seed).cast("uchar")
    return band.bandjoin([band.flip("horizontal"), band.flip("vertical")]).copy(
        interpretation="srgb"
    )


def make_folder(root: Path, images: dict[str, tuple[int, int]], inst_id: str = "ops-museum"):
    """A curator folder: one record per image, ``{local id: (width, height)}``."""
    folder = root / inst_id
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for n, (local, (width, height)) in enumerate(images.items()):
        noise(width, height, seed=n + 1).write_to_file(str(folder / "images" / f"{local}.png"))
        rows.append({"id": local, "title": f"資料 {local} 茶碗", "images": f"images/{local}.png"})
    with open(folder / "records.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, ["id", "title", "images"])
        writer.writeheader()
        writer.writerows(rows)
    (folder / "institution.toml").write_text(
        f'id = "{inst_id}"\n'
        'name = { ja = "運用試験館", en = "Operations Test Museum" }\n'
        f'rights = "{RIGHTS}"\n'
        '[records]\npath = "records.csv"\n'
        '[fields]\nid = "id"\ntitle = "title"\nimages = "images"\n',
        encoding="utf-8",
    )
    return folder


def archive_cmd(
    home: Path, *args: str, preexec_fn: Callable | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`archive --home HOME ARGS...` in a process of its own."""
    return subprocess.run(
        [str(BIN / "archive"), "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=preexec_fn,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(name="make_folder")
def make_folder_fixture() -> Callable[..., Path]:
    return make_folder


@pytest.fixture(name="archive_cmd")
def archive_cmd_fixture() -> Callable[..., subprocess.CompletedProcess]:
    return archive_cmd
