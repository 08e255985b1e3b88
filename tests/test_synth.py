"""`archive generate`: synthetic institution folders that the real ingest accepts whole,
deterministic for a seed, and careful with folders it did not write."""

from __future__ import annotations

import hashlib
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from archive.cli import _load_synth, cli

synth = _load_synth()


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _generate(runner, out: Path, *args: str):
    return runner.invoke(cli, ["generate", str(out), *args], catch_exceptions=False)


def test_generate_writes_institutions_in_every_export_shape(runner, tmp_path):
    out = tmp_path / "synth"
    result = _generate(
        runner, out, "--institutions", "5", "--records", "60", "--image-size", "24x16"
    )
    assert result.exit_code == 0, result.output
    assert "Wrote 5 institutions, 60 records" in result.output
    folders = sorted(p.parent for p in out.glob("*/institution.toml"))
    assert len(folders) == 5
    suffixes = sorted(next(f.glob("records.*")).suffix for f in folders)
    assert suffixes == [".csv", ".csv", ".json", ".jsonl", ".tsv"]
    cp932 = [
        f
        for f in folders
        if f.joinpath("records.csv").is_file()
        and not _is_utf8(f.joinpath("records.csv").read_bytes())
    ]
    assert len(cp932) == 1, "one CSV is written in CP932"
    cp932[0].joinpath("records.csv").read_bytes().decode("cp932")
    images = list(out.rglob("images/*/*.jpg"))
    assert len(images) >= 60
    from PIL import Image

    with Image.open(images[0]) as img:
        assert img.size == (24, 16)
    assert len({hashlib.sha256(p.read_bytes()).digest() for p in images}) == len(images)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_same_seed_same_bytes_other_seed_other_bytes(runner, tmp_path):
    args = ("--institutions", "3", "--records", "20", "--image-size", "8x8")
    runs = (("a", "7", "1"), ("b", "7", "2"), ("c", "8", "2"))
    for name, seed, jobs in runs:
        result = _generate(runner, tmp_path / name, *args, "--seed", seed, "--jobs", jobs)
        assert result.exit_code == 0, result.output
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b"), "parallel writes the same bytes"
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_image_pool_hard_links_files(runner, tmp_path):
    out = tmp_path / "pool"
    args = ("--institutions", "1", "--records", "40", "--image-size", "8x8", "--image-pool", "4")
    assert _generate(runner, out, *args).exit_code == 0
    images = list(out.rglob("images/*/*.jpg"))
    assert len(images) >= 40
    assert len({p.stat().st_ino for p in images}) == 4


def test_generate_refuses_foreign_folders_and_replaces_its_own(runner, tmp_path):
    out = tmp_path / "out"
    args = ("--institutions", "2", "--records", "4", "--image-size", "8x8")
    assert _generate(runner, out, *args).exit_code == 0
    again = _generate(runner, out, *args)
    assert (
        again.exit_code == 1 and "--overwrite" not in again.output and "not empty" in again.output
    )
    assert _generate(runner, out, *args, "--overwrite", "--seed", "2").exit_code == 0
    (out / "precious").mkdir()
    refused = _generate(runner, out, *args, "--overwrite")
    assert refused.exit_code == 1 and "precious" in refused.output
    assert (out / "precious").is_dir()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--image-size", "big"), "--image-size"),
        (("--image-size", "0x10"), "out of range"),
        (("--institutions", "5", "--records", "3"), "at least 5 records"),
        (("--records", "0"), "--records"),
    ],
)
def test_bad_arguments_are_named(runner, tmp_path, args, message):
    result = _generate(runner, tmp_path / "x", *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_real_ingest_accepts_every_generated_record(runner, tmp_path):
    out = tmp_path / "synth"
    args = ("--institutions", "5", "--records", "40", "--image-size", "32x24")
    assert _generate(runner, out, *args).exit_code == 0
    home = tmp_path / "home"
    folders = [str(p.parent) for p in sorted(out.glob("*/institution.toml"))]
    archive = [str(Path(sys.executable).parent / "archive"), "--home", str(home)]
    ingest = subprocess.run(
        [*archive, "ingest", "--workers", "1", *folders],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    status = subprocess.run([*archive, "status"], capture_output=True, text=True, timeout=60)
    total = re.search(r"^total\s+(\d+)\s+(\d+)\s+(\d+)", status.stdout, re.M)
    assert total and int(total.group(1)) == 40, status.stdout + status.stderr


def test_dates_are_written_as_museums_write_them_and_parse():
    from ingest.dates import normalise_date

    rng = random.Random(5)
    shapes = set()
    for earliest in (-10000, 1600, 1850):
        for _ in range(400):
            ja, en = synth.make_date(rng, earliest)
            parsed = normalise_date(ja)
            assert parsed is not None, ja
            assert parsed.end >= min(earliest, 1600) or earliest < 1600, ja
            if m := re.match(r"^(\d{4}) \(", en):  # era years: the English gives the year
                assert parsed.start == int(m.group(1)), (ja, en)
            shapes.add(re.sub(r"[0-9〇一二三四五六七八九十]+", "N", ja))
    for shape in ("明治N年", "寛政N年", "江戸時代後期", "N世紀後半", "N年代", "N", "縄文時代"):
        assert shape in shapes, shape
    assert any(s.endswith("元年") for s in shapes)


def test_records_are_split_unevenly_but_exactly():
    counts = synth.split_records(100_000, 20, random.Random(1))
    assert sum(counts) == 100_000 and min(counts) >= 1
    assert max(counts) > 3 * min(counts), "a few large institutions, many small"
    assert synth.split_records(3, 3, random.Random(1)) == [1, 1, 1]
    with pytest.raises(ValueError):
        synth.split_records(2, 3, random.Random(1))


def test_institution_ids_are_unique_for_many_institutions():
    plans = synth.plan(60, 600, seed=1)
    assert len({p.id for p in plans}) == 60


def test_photo_detail_is_deterministic_and_has_camera_like_entropy():
    flat = synth.render_image(11, (320, 240))
    photo = synth.render_image(11, (320, 240), "photo")
    assert photo == synth.render_image(11, (320, 240), "photo")
    assert photo != synth.render_image(12, (320, 240), "photo")
    assert len(photo) > 4 * len(flat), "noise makes the JPEG as hard to code as a photograph"
