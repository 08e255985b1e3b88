"""Backup of a synthetic archive: `archive backup` against a plain `cp -a` of the same files.

Issue 12's benchmark. A synthetic archive (`archive generate`, tiny images) is ingested,
then, in the same run and on the same disk:

- the first `archive backup DEST` (catalog snapshot, every pyramid copied and
  checksummed, manifest) against `cp -a` of the catalog and pyramids: time and size;
- a second backup after a small ingest (one new institution of a few dozen records):
  target < 5% of the first backup's time;
- `archive backup --verify` of the same DEST, for reference;
- `archive restore` of it into an empty home (search index rebuilt), against `cp -a`.

Default 100,000 records; ``--quick`` uses 1,000 (a smoke run: the fixed costs weigh more
there, so its ratios are not the full-scale ones). ``--home DIR`` starts from an ingested
home instead of generating one (``bench check``'s, or a home left by an earlier run): it
is copied first and never changed; ``--keep DIR`` moves the home (with both ingests)
there at the end, for ``bench check -- --home DIR`` to check the same archive.

Every `archive` command runs with ``search_vectors = false`` (``--vectors`` turns it on):
embedding is the same work for a backup and its anchor (none: a backup copies the
catalog and pyramids, and the restore's search rebuild would embed every record, hours
at 100,000), so the figures are the backup's own.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

from bench.common import Report, Row, mib, parser, run, scratch

ARCHIVE = str(Path(sys.executable).parent / "archive")


def _args(argv: list[str]):
    p = parser("backup", __doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=100_000, help="records in the archive")
    p.add_argument("--institutions", type=int, default=20)
    p.add_argument("--extra", type=int, default=50, help="records of the small second ingest")
    p.add_argument("--home", type=Path, help="an ingested archive home to start from (copied)")
    p.add_argument("--keep", type=Path, help="move the archive home here at the end")
    p.add_argument(
        "--vectors", action="store_true", help="embed records (search_vectors on) throughout"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.records = min(args.records, 1000)
        args.institutions = min(args.institutions, 4)
    return args


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str]) -> int:
    args = _args(argv)
    report = Report("backup", params={k: str(v) for k, v in vars(args).items()})
    env = {"ARCHIVE_SEARCH_VECTORS": "true" if args.vectors else "false"}
    with scratch("backup") as tmp:
        data, extra, home = tmp / "collections", tmp / "extra", tmp / "home"
        gen = [ARCHIVE, "generate", "--image-size", "64x64", "--jobs", "0"]
        if args.home is None:
            run(
                [
                    *gen[:2],
                    str(data),
                    *gen[2:],
                    "--records",
                    str(args.records),
                    "--institutions",
                    str(args.institutions),
                ]
            )
        run(
            [
                *gen[:2],
                str(extra),
                *gen[2:],
                "--records",
                str(args.extra),
                "--institutions",
                "1",
                "--seed",
                "99",
            ]
        )
        toml = next(extra.glob("*/institution.toml"))
        toml.write_text(re.sub(r'(?m)^id = ".*"$', 'id = "bench-extra"', toml.read_text(), count=1))
        if args.home is None:
            folders = sorted(str(p.parent) for p in data.glob("*/institution.toml"))
            print(f"ingesting {args.records} records...", flush=True)
            ingest = run(
                [ARCHIVE, "--home", str(home), "ingest", *folders], env=env, timeout=6 * 3600
            )
            print(f"  ingested in {ingest.seconds:.0f} s", flush=True)
        else:
            print(f"copying {args.home}...", flush=True)
            run(["cp", "-a", str(args.home), str(home)], timeout=3600)
            (home / "ingest.lock").unlink(missing_ok=True)

        copy = tmp / "cp"
        copy.mkdir()
        cp = run(["cp", "-a", str(home / "catalog.sqlite"), str(home / "images"), str(copy)])
        dest = tmp / "backup"
        print("first backup...", flush=True)
        first = run([ARCHIVE, "--home", str(home), "backup", str(dest)], env=env, timeout=4 * 3600)
        manifest = json.loads((dest / "manifest.json").read_text())
        first_size, cp_size = _size(dest), _size(copy)

        run([ARCHIVE, "--home", str(home), "ingest", str(toml.parent)], env=env, timeout=3600)
        second = run([ARCHIVE, "--home", str(home), "backup", str(dest)], env=env, timeout=3600)
        print(second.stdout, flush=True)
        again = json.loads((dest / "manifest.json").read_text())["this_run"]
        verify = run([ARCHIVE, "--home", str(home), "backup", str(dest), "--verify"], env=env)
        restored = tmp / "restored"
        restore = run([ARCHIVE, "--home", str(restored), "restore", str(dest)], env=env)
        if args.keep is not None:
            shutil.move(str(home), str(args.keep))

    pyramids = len(manifest["pyramids"])
    label = f"{manifest['catalog']['records']:,} records, {pyramids:,} pyramids"
    report.add(
        Row(
            f"first backup ({label})",
            first.seconds,
            "s",
            anchor=cp.seconds,
            anchor_name="cp -a",
            higher_is_better=False,
            note="snapshot + copy + SHA-256 of every file",
        )
    )
    report.add(
        Row(
            "first backup size",
            mib(first_size),
            "MiB",
            anchor=mib(cp_size),
            anchor_name="cp -a",
            higher_is_better=False,
        )
    )
    report.add(
        Row(
            f"second backup after +{args.extra} records ({again['copied']} copied, "
            f"{again['reused']:,} kept)",
            second.seconds,
            "s",
            anchor=first.seconds,
            anchor_name="first backup",
            higher_is_better=False,
            target_ratio=0.05,
            note=(
                f"catalog: {again['catalog_snapshot']['kind']} snapshot "
                f"({again['catalog_snapshot']['rows']} rows written), "
                f"{again['catalog_chunks_written']} pieces written "
                f"({mib(again['catalog_bytes_written']):.2f} MiB), "
                f"{again['catalog_chunks_kept']} kept"
                + ("; --quick: fixed costs weigh more" if args.quick else "")
            ),
        )
    )
    report.add(
        Row(
            "backup --verify (re-reads everything)",
            verify.seconds,
            "s",
            anchor=first.seconds,
            anchor_name="first backup",
            higher_is_better=False,
        )
    )
    report.add(
        Row(
            "restore into an empty home (+ search rebuild)",
            restore.seconds,
            "s",
            anchor=cp.seconds,
            anchor_name="cp -a",
            higher_is_better=False,
        )
    )
    report.print(f"backup (search_vectors = {str(args.vectors).lower()} throughout)")
    report.save()
    return 0 if report.ok else 1
