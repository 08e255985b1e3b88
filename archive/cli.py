"""The ``archive`` command: the one place that wires the packages together.

``archive`` itself imports none of ingest, iiif, search or web; each command
imports what it needs when it runs, so ``archive --help`` stays instant.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys

import click

from .catalog import SCHEMA_VERSION, SEARCH_BEHIND
from .config import Config
from .context import Archive
from .errors import ArchiveError

FORMAT_HELP = """\b
A collection folder, one per institution:
  <folder>/institution.toml
  <folder>/records.csv | .tsv | .json | .jsonl   (named in institution.toml)
  <folder>/images/...                            (any depth)

\b
institution.toml:
  id = "noh-museum"                 # [a-z0-9-]+, unique in the archive
  name = { ja = "金沢能楽美術館", en = "Kanazawa Noh Museum" }
  homepage = "https://example.org/" # optional
  logo = "logo.png"                 # optional, relative to the folder
  rights = "http://rightsstatements.org/vocab/InC/1.0/"
  max_image_size = 0                # >0 caps the longest side served
  [records]
  path = "records.csv"
  encoding = "auto"                 # UTF-8 (BOM or not), else CP932
  [fields]                          # canonical field = source column/key
  id = "資料番号"                    # required
  title = "名称"                     # required
  images = "画像ファイル"             # paths split on ; or |

\b
Other fields: title_en, title_kana, creator, creator_en, date, object_type,
object_type_en, material, material_en, dimensions, description,
description_en, keywords (split on ; ； 、 |), rights, public, max_image_size,
behavior (paged/continuous/individuals, or 冊子/巻子...), viewing_direction
(left-to-right, right-to-left or 右から左...). Unmapped columns are kept as extra
metadata.
Full reference: docs/collection-format.md
"""


class Context:
    def __init__(self, home: str | None) -> None:
        self.home = home
        self._archive: Archive | None = None

    def config(self, **overrides) -> Config:
        return Config.load(self.home, overrides)

    def archive(self, **overrides) -> Archive:
        if self._archive is None:
            self._archive = Archive(self.config(**overrides))
        return self._archive


def attach_search(archive: Archive) -> Archive:
    from search import get_backend

    if archive.search is None:
        archive.search = get_backend(archive.config)
    return archive


class ArchiveGroup(click.Group):
    """Turns every ArchiveError into a clean message and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ArchiveError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=ArchiveGroup, epilog=FORMAT_HELP)
@click.option(
    "--home",
    envvar="ARCHIVE_HOME",
    type=click.Path(file_okay=False),
    help="Archive data folder (default: ./archive-home, or $ARCHIVE_HOME).",
)
@click.version_option(package_name="city-digital-museum")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """The city's digital museum: ingest collections, serve IIIF and the public site."""
    ctx.obj = Context(home)


@cli.command()
@click.pass_obj
def status(obj: Context) -> None:
    """Show what the catalog holds per institution, the last ingest and the search index."""
    archive = obj.archive()
    rows = archive.catalog.stats()
    if not rows:
        click.echo(f"The archive at {archive.home.root} is empty.")
        return
    click.echo(f"Archive: {archive.home.root}")
    click.echo(f"Catalog: {archive.catalog.where} (schema version {SCHEMA_VERSION})")
    header = f"{'institution':<28} {'records':>8} {'public':>8} {'images':>8}  updated"
    click.echo(header)
    click.echo("-" * len(header))
    total = {"records": 0, "public": 0, "images": 0}
    for row in rows:
        click.echo(
            f"{row['institution']:<28} {row['records']:>8} {row['public']:>8} {row['images']:>8}"
            f"  {row['updated_at'] or '-'}"
        )
        for key in total:
            total[key] += row[key]
    click.echo("-" * len(header))
    click.echo(f"{'total':<28} {total['records']:>8} {total['public']:>8} {total['images']:>8}")
    click.echo("")
    for line in _ingest_state(archive) + _search_state(archive):
        click.echo(line)


def _ingest_state(archive: Archive) -> list[str]:
    """The last ingest run as its report says, and whether one is running now."""
    lines = []
    if holder := archive.catalog.lock_holder():
        lines.append(f"Ingest: running now ({holder})")
    reports = sorted(archive.home.reports.glob("ingest-*.json"))
    if not reports:
        return lines or ["Last ingest: none yet"]
    try:
        report = json.loads(reports[-1].read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [*lines, f"Last ingest: report {reports[-1]} unreadable ({exc})"]
    failed = sum(i.get("failed", 0) for i in report.get("institutions", []))
    if report.get("interrupted"):
        outcome = "interrupted: run the same command again to finish"
    elif report.get("ok"):
        outcome = "ok"
    else:
        outcome = f"{failed} record(s) failed" if failed else "not ok"
    lines.append(f"Last ingest: {report.get('finished_at') or '?'}, {outcome} ({reports[-1]})")
    return lines


def _search_state(archive: Archive) -> list[str]:
    state = attach_search(archive).search_state()
    name = state["backend"]
    if not state["reachable"]:
        return [f"Search index ({name}): unreachable: {state['error']}"]
    line = f"Search index ({name}): {state['documents']} documents"
    if "behind" in state:
        line += f"; behind since {state['behind']}: run `archive ingest` again or `archive reindex`"
    return [line]


def wsgi_app(home: str):
    """Build the whole site for one server worker: the target ``serve`` hands granian.

    The objects that live as long as the worker (modules, the app, templates) are then
    frozen out of the cyclic garbage collector, so an occasional full collection no
    longer walks those ~76,000 objects while the worker's threads wait (one such pass
    took about 50 ms on the development machine).
    """
    from web import create_app

    app = create_app(Config.load(home))
    _exit_with_parent()
    gc.collect()
    gc.freeze()
    return app


def _exit_with_parent(interval: float = 0.5) -> None:
    """End this worker when the server process that forked it is gone.

    granian restarts dead workers, but nothing ends the workers of a server killed with
    SIGKILL (or by the OOM killer): they would keep answering on the port, from a node
    that its operator, its supervisor and the load balancer believe stopped, and hold
    the catalog open. A daemon thread notices the new parent and exits at once.
    """
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


# Server messages go to stderr beside our own; the access log, when on, to stdout. Our
# packages' warnings and errors (a broken pyramid, say) reach the same stream.
SERVER_LOGGING = {
    "handlers": {
        "console": {
            "formatter": "generic",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
        },
        "access": {
            "formatter": "access",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
}
ACCESS_LOG_FORMAT = (
    '%(addr)s - - [%(time)s] "%(method)s %(path)s?%(query_string)s %(protocol)s" '
    "%(status)d %(dt_ms).1fms"
)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--workers",
    default=0,
    type=int,
    help="Worker processes (default: one per CPU core, at least 2).",
)
@click.option(
    "--threads",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Python threads per worker. Tiles take well under a millisecond of Python each, "
    "so few threads keep the GIL uncontended; a second one keeps a long render or export "
    "from holding up the tiles queued behind it.",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="Log every request to stdout (off when a reverse proxy logs them already).",
)
@click.pass_obj
def serve(
    obj: Context, host: str, port: int, workers: int, threads: int, access_log: bool = True
) -> None:
    """Serve the public site, the IIIF APIs and the JSON API with granian.

    \b
    granian (HTTP in Rust) parses requests and holds the connections; each worker
    process runs the site as a WSGI app on a few Python threads. A worker that dies is
    started again; SIGTERM or Ctrl-C stops the server after the requests in flight.
    """
    from granian import Granian
    from granian.constants import Interfaces

    if workers < 0:
        raise click.BadParameter("must be 0 (one per CPU core) or more", param_hint="--workers")
    config = obj.config()
    # Fail now, in the terminal, on a bad configuration, rather than in every worker.
    from web import create_app

    create_app(config).extensions["archive"].close()
    # Freeze what the workers inherit (modules, mostly) before they are forked: their
    # collections then never write to those objects, so the pages stay shared.
    gc.collect()
    gc.freeze()
    server = Granian(
        str(config.home),
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers or max(2, os.cpu_count() or 1),
        blocking_threads=threads,
        websockets=False,
        log_dictconfig=SERVER_LOGGING,
        log_access=access_log,
        log_access_format=ACCESS_LOG_FORMAT,
        respawn_failed_workers=True,
        workers_kill_timeout=30,
    )
    click.echo(f"Serving {config.home} on http://{host}:{port}/", err=True)
    if not config.public_url and host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            "Note: public_url is not set, so IIIF ids and links take each request's Host "
            "header; set it (archive.toml or ARCHIVE_PUBLIC_URL) to the address the public "
            "uses, e.g. https://museum.example.jp.",
            err=True,
        )
    server.serve(target_loader=wsgi_app)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--workers", type=int, default=None, help="Tiling processes (default: CPU cores).")
@click.option("--dry-run", is_flag=True, help="Validate and show what would change; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of text.")
@click.pass_obj
def ingest(
    obj: Context, paths: tuple[str, ...], workers: int | None, dry_run: bool, as_json: bool
) -> None:
    """Ingest institution folders: check, tile images, update the catalog and search index.

    Shows progress on stderr, then a report per institution (records added, updated,
    unchanged, removed, failed, each failure with its file, row and field); the same
    report is saved as JSON under the archive's reports/ folder. --dry-run writes
    nothing and lists what a real run would change. Only one ingest writes at a time.
    Exit status is 0 only when every record of every folder succeeded, 130 when the
    run was interrupted (Ctrl-C or SIGTERM: the images being tiled are finished, the
    rest is left for the next run, which resumes where this one stopped).
    """
    from ingest.pipeline import run_ingest

    archive = obj.archive(workers=workers)
    if not dry_run:
        attach_search(archive)
    # `kill PID`, systemd and cron stop a run the way Ctrl-C does: gracefully.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        report = run_ingest(
            archive, [os.fspath(p) for p in paths], dry_run=dry_run, workers=workers
        )
    except KeyboardInterrupt:  # while reading the folders, before any tiling began
        click.echo("\nInterrupted; nothing was lost. Run the same command again.", err=True)
        sys.exit(130)
    click.echo(_dump(report.to_dict()) if as_json else report.render())
    if report.interrupted:
        sys.exit(130)
    if not report.ok:
        sys.exit(1)


@cli.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default=None,
    help="jsonl or csv (default: from the output file's extension, else jsonl).",
)
@click.option(
    "--output",
    "-o",
    default="-",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="File to write; '-' (the default) writes to standard output.",
)
@click.option(
    "--base-url",
    default=None,
    help="Base of the URLs in the export (default: the public_url setting, "
    "else http://127.0.0.1:8000).",
)
@click.pass_obj
def export(obj: Context, fmt: str | None, output: str, base_url: str | None) -> None:
    """Export every public record, with its licence, as JSON Lines or CSV (UTF-8 with BOM).

    The same data as /api/export.jsonl and /api/export.csv. A file is written
    whole or not at all.
    """
    from iiif.presentation import Links
    from web.export import csv_chunks, jsonl_lines, public_records

    archive = obj.archive()
    fmt = fmt or ("csv" if output.lower().endswith(".csv") else "jsonl")
    links = Links(base_url or archive.config.public_url or "http://127.0.0.1:8000")
    rows = public_records(archive.catalog)
    chunks = csv_chunks(rows, links) if fmt == "csv" else jsonl_lines(rows, links)
    if output == "-":
        out = click.get_text_stream("stdout", encoding="utf-8")
        for chunk in chunks:
            out.write(chunk)
        out.flush()
        return
    target = os.path.abspath(output)
    temp = f"{target}.{os.getpid()}.part"
    try:
        with open(temp, "w", encoding="utf-8", newline="") as fh:
            for chunk in chunks:
                fh.write(chunk)
        os.replace(temp, target)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    click.echo(f"Exported {archive.catalog.count()} public records to {output}", err=True)


@cli.command()
@click.pass_obj
def reindex(obj: Context) -> None:
    """Rebuild the search index from the catalog (the source of truth).

    On a cluster this builds a new index and switches the alias, so search keeps
    answering throughout; on SQLite readers see the old index until the new one is done.
    """
    archive = attach_search(obj.archive())
    institutions = {inst.id: inst for inst in archive.catalog.institutions()}
    count = archive.search.rebuild(archive.catalog.records(public_only=True), institutions)
    archive.catalog.set_meta(SEARCH_BEHIND, None)
    click.echo(f"Indexed {count} public records with the {archive.search.name} backend.")


@cli.command("search")
@click.argument("query", nargs=-1)
@click.option("--institution", multiple=True, help="Only this institution (repeatable).")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="FACET=VALUE",
    help="Facet filter, e.g. era=江戸時代 or has_images=true (repeatable).",
)
@click.option("--from", "year_from", type=int, help="Earliest year (overlapping dates match).")
@click.option("--to", "year_to", type=int, help="Latest year.")
@click.option(
    "--sort",
    default="relevance",
    show_default=True,
    type=click.Choice(["relevance", "date_asc", "date_desc", "added"]),
    help="Result order.",
)
@click.option("--page", default=1, show_default=True, type=int, help="Page of results, from 1.")
@click.option("--size", default=10, show_default=True, type=int, help="Results per page.")
@click.option(
    "--lang",
    default="ja",
    show_default=True,
    type=click.Choice(["ja", "en"]),
    help="Language of titles shown.",
)
@click.option("--facets", "show_facets", is_flag=True, help="Also print facet counts.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def search_command(
    obj: Context,
    query: tuple[str, ...],
    institution: tuple[str, ...],
    filters: tuple[str, ...],
    year_from: int | None,
    year_to: int | None,
    sort: str,
    page: int,
    size: int,
    lang: str,
    show_facets: bool,
    as_json: bool,
) -> None:
    """Search the index as the site does: words ANDed, "quoted phrases", field:word, -word."""
    from search import SearchQuery

    archive = attach_search(obj.archive())
    chosen: dict[str, list[str]] = {}
    if institution:
        chosen["institution"] = list(institution)
    for item in filters:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not FACET=VALUE", param_hint="--filter")
        chosen.setdefault(name.strip(), []).append(value.strip())
    result = archive.search.search(
        SearchQuery(
            q=" ".join(query),
            filters={k: tuple(v) for k, v in chosen.items()},
            year_from=year_from,
            year_to=year_to,
            sort=sort,
            page=page,
            size=size,
            lang=lang,
            facets=show_facets or as_json,
        )
    )
    records = {r.id: r for r in archive.catalog.get_records([h.id for h in result.hits])}
    if as_json:
        click.echo(
            _dump(
                {
                    "total": result.total,
                    "items": [
                        {
                            "id": h.id,
                            "score": h.score,
                            "title": records[h.id].label(lang),
                            "highlights": h.highlights,
                        }
                        for h in result.hits
                        if h.id in records
                    ],
                    "facets": {k: [list(v) for v in vs] for k, vs in result.facets.items()},
                }
            )
        )
        return
    first = (page - 1) * size + 1
    shown = f"; {first}-{first + len(result.hits) - 1}:" if result.hits else "."
    click.echo(f"{result.total} found{shown}")
    for hit in result.hits:
        record = records.get(hit.id)
        if record is not None:
            click.echo(f"  {hit.id:<36} {record.label(lang)}  {record.get('date') or ''}")
    if show_facets:
        for name, values in result.facets.items():
            counts = ", ".join(f"{v} ({n})" for v, n in values[:8])
            click.echo(f"{name}: {counts or '-'}")


@cli.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option(
    "--institutions",
    default=20,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Institution folders to write.",
)
@click.option(
    "--records",
    default=1000,
    show_default=True,
    type=click.IntRange(1),
    help="Records in total, spread unevenly over the institutions.",
)
@click.option(
    "--image-size",
    default="64x64",
    show_default=True,
    metavar="WxH",
    help="Size of every generated image, in pixels.",
)
@click.option(
    "--image-pool",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Draw only this many distinct images per institution and hard-link the rest "
    "(0: every image distinct).",
)
@click.option(
    "--image-detail",
    default="flat",
    show_default=True,
    type=click.Choice(["flat", "photo"]),
    help="flat: simple drawings; photo: with camera-like noise (for tiling benchmarks).",
)
@click.option(
    "--seed",
    default=1,
    show_default=True,
    type=int,
    help="Random seed; the same seed writes the same bytes.",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace folders a previous `archive generate` wrote in OUT."
)
@click.option(
    "--jobs",
    default=0,
    type=click.IntRange(0),
    help="Processes writing institutions in parallel (default: one per CPU core).",
)
def generate(
    out: str,
    institutions: int,
    records: int,
    image_size: str,
    image_pool: int,
    image_detail: str,
    seed: int,
    overwrite: bool,
    jobs: int,
) -> None:
    """Write a synthetic archive to OUT: institution folders in the collection format.

    Realistic bilingual metadata in every export shape (CSV in UTF-8 and CP932,
    TSV, JSON, JSON Lines), for scale tests and benchmarks; then run
    `archive ingest OUT/*/`. 20 institutions and 100,000 records take about a minute.
    """
    synth = _load_synth()
    try:
        size = synth.parse_size(image_size)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--image-size") from None

    def progress(info: dict) -> None:
        click.echo(
            f"{info['id']:<32} {info['format']:<18} {info['records']:>8} records"
            f" {info['images']:>8} images",
            err=True,
        )

    try:
        summary = synth.generate(
            out,
            institutions=institutions,
            records=records,
            image_size=size,
            seed=seed,
            image_pool=image_pool,
            image_detail=image_detail,
            overwrite=overwrite,
            jobs=jobs or os.cpu_count() or 1,
            progress=progress,
        )
    except (ValueError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"Wrote {len(summary.institutions)} institutions, {summary.records} records, "
        f"{summary.images} images to {out}"
    )


def _load_synth():
    """collections_data/synth.py lives beside the packages in the repository, not in them."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "collections_data" / "synth.py"
    if not path.is_file():
        raise click.ClickException(f"{path} not found: `archive generate` runs from a checkout")
    spec = importlib.util.spec_from_file_location("collections_data_synth", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module while the class is built
    spec.loader.exec_module(module)
    return module


def main() -> None:
    cli(prog_name="archive")


def _dump(data) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)
