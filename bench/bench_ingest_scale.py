"""Ingest at museum scale: 100,000 records with tiny images from 20 institutions.

Issue 4's targets: ingested and searchable in under 10 minutes on this 2-core
machine; a no-change re-run in under 1 minute; peak memory reported. Each figure
is set beside an anchor measured in the same run:

- full ingest vs the *floor*: the same images hashed and written as pyramids by
  raw pyvips (``ingest.tiling.write_pyramid``, same tile size and quality) in the
  same number of processes, plus every records file parsed and inserted into a
  plain SQLite FTS5 table. The image part is timed on a sample and extrapolated
  (said so in the table); the ratio is the pipeline's overhead factor.
- no-change re-run vs reading and hashing every source file once in one process:
  what any content-checksum incremental check has to do.

With fewer records than 100,000 (``--records``, ``--quick``), times are also
projected linearly to 100,000 and the targets are checked on the projection.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.common import REPO, Report, Row, Stopwatch, mib, parser, run, scratch

ARCHIVE = str(Path(sys.executable).parent / "archive")
TARGET_RECORDS = 100_000
TARGET_INGEST_S = 600.0
TARGET_RERUN_S = 60.0


def _args(argv: list[str]):
    p = parser("ingest_scale", __doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=TARGET_RECORDS, help="records in total")
    p.add_argument("--institutions", type=int, default=20)
    p.add_argument("--image-size", default="64x64", help="size of every generated image (WxH)")
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="ingest processes (and the anchor's)",
    )
    p.add_argument(
        "--sample",
        type=int,
        default=2000,
        help="images the raw-pyvips anchor tiles (then extrapolated)",
    )
    p.add_argument("--data", type=Path, help="reuse a folder `archive generate` wrote")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if args.quick:
        args.records = min(args.records, 3000)
        args.sample = min(args.sample, 500)
    return args


# -- anchors ------------------------------------------------------------------------------------


def _raw_pyramid(job: tuple[str, str]) -> float:
    """Hash a file, then write its pyramid with plain pyvips: the floor of ingest's image work.

    Returns the CPU seconds it took (all threads of the worker process)."""
    import pyvips

    from ingest.tiling import write_pyramid

    start = time.process_time()
    source, dest = job
    with open(source, "rb") as fh:
        hashlib.sha256(fh.read()).hexdigest()
    image = pyvips.Image.new_from_file(source, access="sequential")
    write_pyramid(image.colourspace("srgb"), Path(dest))
    os.unlink(dest)
    return time.process_time() - start


def _quiet_vips() -> None:
    import pyvips

    pyvips.cache_set_max(0)


def raw_tiling(images: list[Path], workers: int) -> tuple[float, float]:
    """(wall, CPU) seconds for raw pyvips to hash and tile ``images`` in ``workers`` processes."""
    with tempfile.TemporaryDirectory(prefix="bench-raw-") as tmp:
        jobs = [(str(p), f"{tmp}/{i}.tif") for i, p in enumerate(images)]
        with ProcessPoolExecutor(workers, initializer=_quiet_vips) as pool:
            list(pool.map(_raw_pyramid, jobs[: workers * 2]))  # warm the workers up
            with Stopwatch() as sw:
                cpu = sum(pool.map(_raw_pyramid, jobs, chunksize=16))
    return sw.seconds, cpu


def _records_of(folder: Path) -> list[dict]:
    import tomllib

    meta = tomllib.loads((folder / "institution.toml").read_text(encoding="utf-8"))
    path = folder / meta["records"]["path"]
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp932")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if path.suffix == ".json":
        loaded = json.loads(text)
        return loaded["records"] if isinstance(loaded, dict) else loaded
    sep = "\t" if path.suffix == ".tsv" else ","
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=sep))


def raw_index(folders: list[Path]) -> tuple[float, float, int]:
    """Parse every records file and insert every record into a plain FTS5 table.

    Returns (wall, CPU) seconds and the number of records."""
    cpu = time.process_time()
    with tempfile.TemporaryDirectory(prefix="bench-fts-") as tmp, Stopwatch() as sw:
        db = sqlite3.connect(f"{tmp}/raw.db")
        db.execute("CREATE VIRTUAL TABLE t USING fts5(id, body)")
        count = 0
        for folder in folders:
            rows = _records_of(folder)
            db.executemany(
                "INSERT INTO t VALUES (?, ?)",
                ((str(i), json.dumps(r, ensure_ascii=False)) for i, r in enumerate(rows)),
            )
            count += len(rows)
        db.commit()
        db.close()
    return sw.seconds, time.process_time() - cpu, count


def hash_all(images: list[Path]) -> tuple[float, float]:
    """(wall, CPU) seconds to read and sha256 every file once, in this one process."""
    cpu = time.process_time()
    with Stopwatch() as sw:
        for path in images:
            with open(path, "rb") as fh:
                hashlib.sha256(fh.read()).hexdigest()
    return sw.seconds, time.process_time() - cpu


# -- the run ------------------------------------------------------------------------------------


def _status_totals(home: Path) -> tuple[int, int]:
    out = run([ARCHIVE, "--home", str(home), "status"]).stdout
    m = re.search(r"^total\s+(\d+)\s+(\d+)\s+(\d+)", out, re.M)
    if not m:
        raise RuntimeError(f"cannot read `archive status`:\n{out}")
    return int(m.group(1)), int(m.group(2))


def _search_total(home: Path, query: str = "") -> tuple[int, float]:
    result = run([ARCHIVE, "--home", str(home), "search", "--json", "--size", "1", query])
    return json.loads(result.stdout)["total"], result.seconds


def main(argv: list[str]) -> int:
    args = _args(argv)
    report = Report("ingest_scale", params={k: str(v) for k, v in vars(args).items()})
    with scratch("ingest-scale") as tmp:
        data = args.data
        if data is None:
            data = tmp / "collections"
            gen = run(
                [
                    ARCHIVE,
                    "generate",
                    str(data),
                    "--institutions",
                    str(args.institutions),
                    "--records",
                    str(args.records),
                    "--image-size",
                    args.image_size,
                    "--seed",
                    str(args.seed),
                ]
            )
            print(gen.stdout.strip(), flush=True)
            report.add(
                Row(
                    "generate (synthetic archive)",
                    gen.seconds,
                    "s",
                    note="archive generate; not part of any target",
                )
            )
        folders = sorted(p.parent for p in data.glob("*/institution.toml"))
        images = sorted(data.glob("*/images/**/*.jpg"))
        print(f"{len(folders)} institutions, {len(images)} images; anchors...", flush=True)

        # Anchors, measured before ingest on the same files and processes.
        sample = images[:: max(1, len(images) // args.sample)][: args.sample]
        tile_wall, tile_cpu = raw_tiling(sample, args.workers)
        extrapolate = len(images) / len(sample)
        index_wall, index_cpu, record_count = raw_index(folders)
        hash_wall, hash_cpu = hash_all(images)
        floor = tile_wall * extrapolate + index_wall
        floor_cpu = tile_cpu * extrapolate + index_cpu

        home = tmp / "home"
        base = [ARCHIVE, "--home", str(home), "ingest", "--workers", str(args.workers)]
        print(f"ingesting {record_count} records...", flush=True)
        first = run([*base, *map(str, folders)], check=False, timeout=4 * 3600)
        if first.returncode != 0:
            print(first.stdout[-3000:], first.stderr[-3000:], sep="\n")
            raise RuntimeError(f"ingest failed with status {first.returncode}")
        records, public = _status_totals(home)
        searchable, search_s = _search_total(home)
        if records != record_count or searchable != public:
            raise RuntimeError(
                f"catalog holds {records} of {record_count} records; search finds "
                f"{searchable} of {public} public ones"
            )

        print("re-running on unchanged input...", flush=True)
        second = run([*base, *map(str, folders)], check=False, timeout=3600)
        if second.returncode != 0:
            raise RuntimeError(
                f"re-run failed with status {second.returncode}:\n{second.stderr[-3000:]}"
            )
        unchanged = second.stdout.count(" 0 added, 0 updated,")

    scale = TARGET_RECORDS / record_count
    cores = args.workers
    sampled = f"raw pyvips timed on {len(sample)} of {len(images)} images, extrapolated"

    def timing(name, value, unit, anchor, anchor_name, target=None, note=""):
        report.add(
            Row(
                name,
                value,
                unit,
                anchor=anchor,
                anchor_name=anchor_name,
                higher_is_better=False,
                target=target,
                note=note,
            )
        )

    timing(
        f"ingest {record_count:,} records, {len(images):,} images",
        first.seconds,
        "s",
        floor,
        "raw pyvips + FTS5 floor",
        note=f"anchor: {sampled}, plus plain FTS5 insert",
    )
    report.add(
        Row(
            "  records per second",
            record_count / first.seconds,
            "rec/s",
            anchor=record_count / floor,
            anchor_name="floor",
        )
    )
    timing(
        f"  projected to {TARGET_RECORDS:,} records",
        first.seconds * scale,
        "s",
        floor * scale,
        "floor",
        TARGET_INGEST_S,
    )
    timing(
        "  CPU seconds, whole process tree",
        first.cpu_seconds,
        "cpu-s",
        floor_cpu,
        "floor CPU",
        note="unlike wall time, not inflated by the neighbours' load",
    )
    timing(
        f"  idle-machine estimate, {TARGET_RECORDS:,}",
        first.cpu_seconds * scale / cores,
        "s",
        floor_cpu * scale / cores,
        "floor CPU / cores",
        TARGET_INGEST_S,
        note=f"CPU seconds / {cores} cores: a lower bound of the wall time, no neighbours",
    )
    timing(
        "no-change re-run",
        second.seconds,
        "s",
        hash_wall,
        "read+sha256 every image",
        note=f"{unchanged} of {len(folders)} institutions reported no change",
    )
    timing(
        f"  projected to {TARGET_RECORDS:,} records",
        second.seconds * scale,
        "s",
        hash_wall * scale,
        "read+sha256",
        TARGET_RERUN_S,
    )
    timing(
        "  CPU seconds, whole process tree",
        second.cpu_seconds,
        "cpu-s",
        hash_cpu,
        "read+sha256 CPU",
    )
    timing(
        f"  idle-machine estimate, {TARGET_RECORDS:,}",
        second.cpu_seconds * scale,
        "s",
        hash_cpu * scale,
        "read+sha256 CPU",
        TARGET_RERUN_S,
        note="CPU seconds, not divided by cores: a re-run is mostly the serial main process",
    )
    report.add(Row("peak RSS, ingest (process tree)", mib(first.peak_rss), "MiB"))
    report.add(Row("peak RSS, re-run (process tree)", mib(second.peak_rss), "MiB"))
    report.add(
        Row(
            "search all (archive search CLI)",
            search_s,
            "s",
            higher_is_better=False,
            note=f"{searchable:,} public records found; includes process start-up",
        )
    )
    report.print(
        f"ingest at scale: {record_count:,} records, {len(folders)} institutions, "
        f"{args.image_size} images, {cores} workers"
    )
    print(f"saved {report.save().relative_to(REPO)}")
    ok = report.ok and unchanged == len(folders)
    return 0 if ok else 1
