"""Tiling throughput: `archive ingest` against raw pyvips writing the same pyramids.

Issue 4's target: ingest tiles at >= 90% of the throughput of raw pyvips writing
the same pyramids (``ingest.tiling.write_pyramid``, same tile size and quality)
from the same 24-megapixel JPEGs with the same number of processes. The anchor
is exactly that and nothing more: open, write, next, in a process pool. The
measured figure is the whole `archive ingest` command (start-up, hashing, checks,
colour handling, atomic commit, catalog, search index), so the ratio is
everything ingest adds to the library's own cost. Anchor and ingest alternate
(``--repeat``) and the best of each is kept, because the machine is shared.
Also reported: MB/s of source JPEG, the projected time for 100,000 such images,
and the peak memory of the ingest's whole process tree (it must not grow with
image size: sources are streamed).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.common import Report, Row, Stopwatch, mib, parser, run, scratch

ARCHIVE = str(Path(sys.executable).parent / "archive")
TARGET_RATIO = 0.9
PROJECT_TO = 100_000


def _args(argv: list[str]):
    p = parser("ingest", __doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=48, help="source JPEGs per run")
    p.add_argument("--size", default="6000x4000", help="source size WxH (24 MP by default)")
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes, for ingest and for the anchor",
    )
    p.add_argument("--repeat", type=int, default=2, help="alternating runs of each; best kept")
    p.add_argument(
        "--big",
        default="12000x8000",
        help="one large image ingested alone, for peak memory (WxH; 'none' skips)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.images, args.size, args.repeat, args.big = 8, "3000x2000", 1, "6000x4000"
    args.width, args.height = (int(v) for v in args.size.lower().split("x"))
    return args


def _peak_one(work: Path, name: str, width: int, height: int) -> int:
    folder = work / name
    write_collection(folder, make_sources(folder / "images", 1, width, height))
    result = run(
        [ARCHIVE, "--home", str(work / f"home-{name}"), "ingest", "--workers", "1", str(folder)]
    )
    return result.peak_rss


def big_image_memory(work: Path, size: str) -> Row:
    """Peak memory of ingesting one large image against one 1-megapixel image: streamed
    through libvips in strips, memory must not grow with the pixels (ratio near 1)."""
    width, height = (int(v) for v in size.lower().split("x"))
    small = _peak_one(work, "small", 1000, 1000)
    big = _peak_one(work, "big", width, height)
    decoded = mib(width * height * 3)
    return Row(
        f"peak memory, one {width * height / 1e6:.0f} MP image",
        mib(big),
        "MiB",
        mib(small),
        "same for 1 MP",
        higher_is_better=False,
        note=f"whole process tree; its decoded pixels alone would be {decoded:.0f} MiB",
    )


def make_sources(folder: Path, count: int, width: int, height: int) -> list[Path]:
    """Camera-like JPEGs: a gradient with grain (so they compress like photographs).
    A handful of distinct ones, copied to ``count`` files (distinct paths, real reads)."""
    import pyvips

    folder.mkdir(parents=True, exist_ok=True)
    distinct = min(count, 4)
    paths = []
    for n in range(distinct):
        xyz = pyvips.Image.xyz(width, height)
        base = xyz[0] * (200 / width) + xyz[1] * (50 / height) + n * 10
        grain = pyvips.Image.gaussnoise(width, height, sigma=12, mean=0)
        channel = (base + grain).cast("uchar")
        image = channel.bandjoin([(channel * 0.8).cast("uchar"), (255 - channel).cast("uchar")])
        path = folder / f"{n:05d}.jpg"
        image.copy(interpretation="srgb").jpegsave(str(path), Q=92)
        paths.append(path)
    for n in range(distinct, count):
        path = folder / f"{n:05d}.jpg"
        shutil.copyfile(paths[n % distinct], path)
        paths.append(path)
    return paths


def _raw_one(args: tuple[str, str, int, int]) -> float:
    """Tile one file with nothing but pyvips; returns the CPU seconds it took."""
    import time

    import pyvips

    from ingest.tiling import write_pyramid

    start = time.process_time()
    source, dest, tile_size, quality = args
    image = pyvips.Image.new_from_file(source, access="sequential")
    write_pyramid(image, Path(dest), tile_size=tile_size, quality=quality)
    return time.process_time() - start


def _raw_init(concurrency: int) -> None:
    import pyvips

    pyvips.cache_set_max(0)
    pyvips.concurrency_set(concurrency)


def raw_pyvips(sources: list[Path], out: Path, workers: int) -> tuple[float, float]:
    """The anchor: the library alone, same pyramids, same process count.
    Returns (wall seconds, CPU seconds)."""
    from archive.config import SETTINGS

    defaults = {s.name: s.default for s in SETTINGS}
    out.mkdir(parents=True, exist_ok=True)
    jobs = [
        (str(s), str(out / f"{s.stem}.tif"), defaults["tile_size"], defaults["jpeg_quality"])
        for s in sources
    ]
    concurrency = max(1, (os.cpu_count() or 1) // workers)
    # forkserver, as ingest uses: forking a process that has used libvips can deadlock.
    context = multiprocessing.get_context("forkserver")
    with Stopwatch() as sw:  # starting the processes counts, as it does for ingest
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_raw_init, initargs=(concurrency,)
        ) as pool:
            cpu = sum(pool.map(_raw_one, jobs))
    shutil.rmtree(out)
    return sw.seconds, cpu


def write_collection(folder: Path, sources: list[Path]) -> None:
    rows = ["id,title,images"] + [f"B-{s.stem},Bench {s.stem},images/{s.name}" for s in sources]
    (folder / "records.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "institution.toml").write_text(
        'id = "bench-museum"\nname = { ja = "計測館", en = "Bench Museum" }\n'
        'rights = "http://rightsstatements.org/vocab/InC/1.0/"\n'
        '[records]\npath = "records.csv"\n[fields]\nid = "id"\ntitle = "title"\n'
        'images = "images"\n',
        encoding="utf-8",
    )


def main(argv: list[str]) -> int:
    args = _args(argv)
    report = Report("ingest", params=vars(args) | {"target_ratio": TARGET_RATIO})
    with scratch("ingest") as work:
        folder = work / "museum"
        print(f"writing {args.images} JPEGs of {args.width}x{args.height}...", flush=True)
        sources = make_sources(folder / "images", args.images, args.width, args.height)
        write_collection(folder, sources)
        megabytes = sum(p.stat().st_size for p in sources) / 1e6
        raw_best, ingest_best, inside_best, peak = float("inf"), float("inf"), float("inf"), 0
        raw_cpu_best, ingest_cpu_best = float("inf"), float("inf")
        for attempt in range(args.repeat):
            raw, raw_cpu = raw_pyvips(sources, work / "raw", args.workers)
            home = work / f"home{attempt}"
            result = run(
                [
                    ARCHIVE,
                    "--home",
                    str(home),
                    "ingest",
                    "--json",
                    "--workers",
                    str(args.workers),
                    str(folder),
                ]
            )
            done = json.loads(result.stdout)
            inside = done["seconds"]  # run_ingest's own clock
            raw_cpu_best = min(raw_cpu_best, raw_cpu)
            ingest_cpu_best = min(ingest_cpu_best, done["cpu_seconds"])
            shutil.rmtree(home)
            print(
                f"run {attempt + 1}: raw pyvips {raw:.1f} s, archive ingest "
                f"{result.seconds:.1f} s ({inside:.1f} s in run_ingest), "
                f"peak {mib(result.peak_rss):.0f} MiB",
                flush=True,
            )
            raw_best = min(raw_best, raw)
            ingest_best = min(ingest_best, result.seconds)
            inside_best = min(inside_best, inside)
            peak = max(peak, result.peak_rss)

        big = None if args.big == "none" else big_image_memory(work, args.big)

    n = len(sources)
    mp = args.width * args.height / 1e6
    report.add(
        Row(
            f"images/s ({mp:.0f} MP JPEG, {args.workers} proc)",
            n / ingest_best,
            "images/s",
            n / raw_best,
            "raw pyvips, same pyramids",
            target_ratio=TARGET_RATIO,
            note="the whole `archive ingest` command, Python start-up included",
        )
    )
    report.add(
        Row(
            "images/s without start-up",
            n / inside_best,
            "images/s",
            n / raw_best,
            "raw pyvips, same pyramids",
            target_ratio=TARGET_RATIO,
            note="run_ingest's own clock: process pool start, hashing, checks, "
            "catalog and search included, as the anchor's pool start is",
        )
    )
    report.add(
        Row(
            "images per CPU-second",
            n / ingest_cpu_best,
            "images/cpu-s",
            n / raw_cpu_best,
            "raw pyvips, same pyramids",
            target_ratio=TARGET_RATIO,
            note="CPU of the tiling processes (and ingest's main process): the ratio "
            "a busy shared machine does not blur",
        )
    )
    report.add(
        Row("source MB/s", megabytes / ingest_best, "MB/s", megabytes / raw_best, "raw pyvips")
    )
    report.add(
        Row(
            f"projected time for {PROJECT_TO:,}",
            PROJECT_TO * ingest_best / n / 3600,
            "hours",
            PROJECT_TO * raw_best / n / 3600,
            "raw pyvips",
            higher_is_better=False,
            note=f"linear from {n} images of {megabytes / n:.1f} MB each",
        )
    )
    report.add(
        Row(
            "peak memory, whole ingest process tree",
            mib(peak),
            "MiB",
            note="summed RSS of the ingest and its tiling processes",
        )
    )
    if big is not None:
        report.add(big)
    report.print("Tiling throughput: archive ingest vs raw pyvips")
    print("saved", report.save())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
