"""`archive check` on the 100,000-record synthetic archive: normal and --deep.

The archive is the one bench ingest_scale builds (``archive generate`` with 64x64
images, then ``archive ingest``), or an ingested home given with ``--home``. Each
figure beside an anchor measured in the same run, on the same files:

- ``archive check`` vs the floor of what any such check must do: every record read
  from the catalog, every pyramid opened and its first 16 KiB (the TIFF header and
  directories of a small pyramid) read, in one plain Python loop;
- ``archive check --deep`` vs reading every pyramid file whole, once (``cat``'s work).

CPU seconds beside wall time: on the shared machine the CPU figure is the steadier.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path

from bench.common import Report, Row, parser, run, scratch

ARCHIVE = str(Path(sys.executable).parent / "archive")


def _args(argv: list[str]):
    p = parser("check", __doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=100_000, help="records in total")
    p.add_argument("--home", type=Path, help="an ingested archive home to check instead")
    args = p.parse_args(argv)
    if args.quick:
        args.records = min(args.records, 3000)
    return args


def _pyramids(home: Path) -> list[Path]:
    return sorted((home / "images").glob("??/*.tif"))


def floor_normal(home: Path) -> tuple[float, float]:
    """(wall, CPU) to read every record of the catalog and the head of every pyramid."""
    cpu, wall = time.process_time(), time.perf_counter()
    db = sqlite3.connect(home / "catalog.sqlite")
    for (data,) in db.execute("SELECT data FROM records"):
        json.loads(data)
    db.close()
    for path in _pyramids(home):
        with open(path, "rb") as fh:
            fh.read(16384)
    return time.perf_counter() - wall, time.process_time() - cpu


def floor_deep(home: Path) -> tuple[float, float]:
    """(wall, CPU) to read every pyramid whole."""
    cpu, wall = time.process_time(), time.perf_counter()
    for path in _pyramids(home):
        with open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str]) -> int:
    args = _args(argv)
    report = Report("check", params={"records": args.records, "home": str(args.home or "")})
    with scratch("check") as tmp:
        home = args.home
        if home is None:
            data, home = tmp / "data", tmp / "home"
            print(f"generating and ingesting {args.records:,} records...", flush=True)
            run([ARCHIVE, "generate", str(data), "--records", str(args.records)], timeout=3600)
            folders = sorted(str(p.parent) for p in data.glob("*/institution.toml"))
            ingest = run([ARCHIVE, "--home", str(home), "ingest", *folders], timeout=4 * 3600)
            print(f"  ingested in {ingest.seconds:.0f} s", flush=True)
        files = len(_pyramids(home))
        print(f"{files:,} pyramid files", flush=True)
        floor_normal(home)  # the page cache warm for both sides alike
        results = {}
        for name, extra, floor in (
            ("check", [], floor_normal),
            ("check --deep", ["--deep"], floor_deep),
        ):
            ours = run([ARCHIVE, "--home", str(home), "check", "--json", *extra], check=False)
            doc = json.loads(ours.stdout)
            anchor_wall, anchor_cpu = floor(home)
            print(
                f"  {name}: {ours.seconds:.1f} s ({ours.cpu_seconds:.1f} CPU s), "
                f"healthy={doc['healthy']}, anchor {anchor_wall:.1f} s",
                flush=True,
            )
            results[name] = (ours, doc, anchor_wall, anchor_cpu)
    for name, (ours, doc, anchor_wall, anchor_cpu) in results.items():
        what = "read every pyramid whole" if "deep" in name else "read the catalog, pyramid heads"
        report.add(
            Row(
                f"archive {name}, wall",
                ours.seconds,
                "s",
                anchor_wall,
                f"plain loop: {what}",
                higher_is_better=False,
                note=f"{doc['records']:,} records, {doc['pyramids']:,} pyramid files"
                + (f", {doc['tiles']:,} tiles" if doc["deep"] else "")
                + ("" if doc["healthy"] else f"; NOT healthy: {len(doc['problems'])} problems"),
            )
        )
        report.add(
            Row(
                f"archive {name}, CPU",
                ours.cpu_seconds,
                "CPU s",
                anchor_cpu,
                "the same loop's CPU",
                higher_is_better=False,
            )
        )
    report.print(f"archive check on {args.records:,} records")
    report.save()
    healthy = all(doc["healthy"] for _, doc, _, _ in results.values())
    return 0 if report.ok and healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
