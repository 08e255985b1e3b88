"""The ``archive`` command: the one place that wires the packages together.

``archive`` itself imports none of ingest, iiif, search or web; each command
imports what it needs when it runs, so ``archive --help`` stays instant.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time

import click

from .catalog import SCHEMA_VERSION
from .config import Config
from .context import Archive
from .errors import ArchiveError, CatalogUnavailable, ConfigError, StorageUnavailable
from .storage import Home, ImageStore, open_store

FORMAT_HELP = """\b
A collection folder, one per institution (`archive init FOLDER` proposes the toml):
  <folder>/institution.toml
  <folder>/records.csv | .tsv | .json | .jsonl | .xlsx | .xlsm | .xls | .ods
  <folder>/images/...     (any depth; or named after the record numbers:
                           F-1.jpg, F-1_2.jpg, F-1-2.tif, F-1 (2).JPG)

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
  # sheet = "収蔵品台帳"              # workbooks: the sheet (default: first)
  # header_row = 3                  # workbooks: found by itself
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
metadata. Rows without images (or no images column): files named after the
record's number are used ([images] names, folder, match change that).
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
        archive.attach_search(get_backend(archive.config))
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
    store = archive.images
    try:
        kept = [(name, store) for name in store.reports()]
    except StorageUnavailable as exc:
        kept, lines = [], [*lines, f"Reports in storage: unreachable ({exc})"]
    if not store.local:  # an ingest that could not reach the bucket kept its report here
        fallback = ImageStore(archive.home.images, archive.home.reports)
        kept += [(name, fallback) for name in fallback.reports()]
    if not kept:
        return lines or ["Last ingest: none yet"]
    name, holder_store = max(kept, key=lambda item: item[0])
    where = holder_store.report_location(name)
    try:
        report = json.loads(holder_store.get_report(name).decode("utf-8"))
    except (OSError, ValueError, StorageUnavailable) as exc:
        return [*lines, f"Last ingest: report {where} unreadable ({exc})"]
    failed = sum(i.get("failed", 0) for i in report.get("institutions", []))
    if report.get("interrupted"):
        outcome = "interrupted: run the same command again to finish"
    elif report.get("ok"):
        outcome = "ok"
    else:
        outcome = f"{failed} record(s) failed" if failed else "not ok"
    lines.append(f"Last ingest: {report.get('finished_at') or '?'}, {outcome} ({where})")
    return lines


def _search_state(archive: Archive) -> list[str]:
    state = attach_search(archive).search_state()
    name = state["backend"]
    if not state["reachable"]:
        return [f"Search index ({name}): unreachable: {state['error']}"]
    line = f"Search index ({name}): {state['documents']} documents"
    with_vectors = state.get("with_vectors")
    if state["vectors"] == "off":
        line += "; vectors off (search_vectors = false): text-only search, no similar objects"
    elif with_vectors is not None and with_vectors < (state["documents"] or 0):
        line += (
            f"; {state['documents'] - with_vectors} without a vector: run `archive reindex` "
            "to embed them"
        )
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

    app = create_app(Config.load(home), access_log=os.environ.get(JSON_ACCESS_ENV) == "1")
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
# log_format = "json": every message one JSON object per line; the access log is then
# written by the application (web.metrics.Observer), which knows the bytes it sent.
JSON_ACCESS_ENV = "_ARCHIVE_JSON_ACCESS_LOG"  # set by serve for its workers
JSON_LOGGING = {
    "formatters": {
        "generic": {"()": "archive.logs.JsonFormatter"},
        "access": {"()": "archive.logs.JsonFormatter"},
    },
    "handlers": SERVER_LOGGING["handlers"],
    "root": SERVER_LOGGING["root"],
    "loggers": {
        "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        "archive.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
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
    if workers < 0:
        raise click.BadParameter("must be 0 (one per CPU core) or more", param_hint="--workers")
    config = obj.config()
    json_logs = config.log_format == "json"
    os.environ[JSON_ACCESS_ENV] = "1" if json_logs and access_log else "0"
    metrics_dir = None
    if config.metrics_listen or config.metrics_token:
        # Each run counts afresh, in files every worker writes and any scrape reads.
        import tempfile

        metrics_dir = tempfile.mkdtemp(prefix="archive-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        _serve(config, host, port, workers, threads, access_log, json_logs)
    finally:
        if metrics_dir is not None:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(config: Config, host, port, workers, threads, access_log, json_logs) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    # Fail now, in the terminal, on a bad configuration, rather than in every worker.
    open_store(config, Home(config.home)).check()
    from web import create_app

    create_app(config).extensions["archive"].close()
    metrics_server = _start_metrics_server(config) if config.metrics_listen else None
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
        log_dictconfig=JSON_LOGGING if json_logs else SERVER_LOGGING,
        log_access=access_log and not json_logs,
        log_access_format=ACCESS_LOG_FORMAT,
        respawn_failed_workers=True,
        workers_kill_timeout=30,
    )
    say = _json_note if json_logs else lambda message: click.echo(message, err=True)
    say(f"Serving {config.home} on http://{host}:{port}/")
    if not config.public_url and host not in ("127.0.0.1", "localhost", "::1"):
        say(
            "Note: public_url is not set, so IIIF ids and links take each request's Host "
            "header; set it (archive.toml or ARCHIVE_PUBLIC_URL) to the address the public "
            "uses, e.g. https://museum.example.jp."
        )
    if metrics_server is not None:
        say(f"Metrics on http://{config.metrics_listen}/metrics")
    try:
        server.serve(target_loader=wsgi_app)
    finally:
        if metrics_server is not None:
            metrics_server.terminate()
            try:
                metrics_server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                metrics_server.kill()
                metrics_server.wait()


def _json_note(message: str) -> None:
    import logging

    from .logs import JsonFormatter

    record = logging.makeLogRecord({"msg": message, "levelname": "INFO", "name": "archive.serve"})
    click.echo(JsonFormatter().format(record), err=True)


def _start_metrics_server(config: Config) -> subprocess.Popen:
    """/metrics on ``metrics_listen``: a small process of its own beside the workers. The
    socket is bound here, so a bad or busy address is a start-up error in the terminal,
    and handed over, so no server worker ever holds it."""
    import socket

    from .config import listen_address

    host, port = listen_address(config.metrics_listen)
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
        sock.listen(16)
    except OSError as exc:
        raise ConfigError(
            f"setting 'metrics_listen' {config.metrics_listen!r}: {exc.strerror or exc}"
        ) from None
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "web.metrics", str(config.home), str(sock.fileno())],
            pass_fds=(sock.fileno(),),
            preexec_fn=_die_with_parent,
        )
    finally:
        sock.close()


def _die_with_parent() -> None:
    """In the metrics process: SIGTERM when `archive serve` goes, however it goes (Linux)."""
    import ctypes

    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@cli.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--id",
    "inst_id",
    default=None,
    help="The institution's id ([a-z0-9-], never changed once published); "
    "default: made from the folder's name.",
)
@click.option(
    "--records",
    default=None,
    help="The records file or workbook in FOLDER, when it holds several "
    "(default: the first workbook, else CSV, TSV, JSON Lines, JSON).",
)
@click.option("--force", is_flag=True, help="Replace an existing institution.toml.")
def init(folder: str, inst_id: str | None, records: str | None, force: bool) -> None:
    """Propose FOLDER/institution.toml from the records file or workbook it holds.

    Finds the records file (.xlsx, .xlsm, .xls, .ods, .csv, .tsv, .json, .jsonl), detects
    its encoding (UTF-8 or CP932) or, in a workbook, the header row below any title
    rows, and maps its columns to the archive's fields from the names Japanese and
    English registers use (資料番号/登録番号 -> id, 名称/作品名 -> title, よみ -> title_kana,
    作者 -> creator, 時代/年代 -> date, 法量/寸法 -> dimensions, 公開 -> public,
    画像/ファイル名 -> images, and their English twins such as 名称（英語）). Each mapped
    line carries a value from the file as a comment; columns it does not recognise are
    listed and kept as extra metadata. Without an images column, images are found by
    the record's number (F-1.jpg, F-1_2.jpg, F-1-2.tif, F-1 (2).JPG, in any folder).

    Asks for the file and the institution's names only when standard input is a
    terminal; never replaces an existing institution.toml without --force. Check the
    file as the output says, then run `archive ingest --dry-run --html report.html FOLDER`.
    """
    from pathlib import Path

    from ingest.propose import run_init

    interactive = sys.stdin is not None and sys.stdin.isatty()
    complete = run_init(
        Path(folder),
        inst_id=inst_id,
        records=records,
        force=force,
        echo=click.echo,
        prompt=(lambda text, default: click.prompt(text, default=default)) if interactive else None,
    )
    if not complete:
        sys.exit(1)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--workers", type=int, default=None, help="Tiling processes (default: CPU cores).")
@click.option("--dry-run", is_flag=True, help="Validate and show what would change; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of text.")
@click.option(
    "--html",
    "html_path",
    default=None,
    type=click.Path(dir_okay=False, writable=True),
    help="Also write the report as one HTML page to open in a browser, offline: "
    "changes, every error with its sheet, row, column and value, and a thumbnail "
    "of each added or changed image as it will be published.",
)
@click.pass_obj
def ingest(
    obj: Context,
    paths: tuple[str, ...],
    workers: int | None,
    dry_run: bool,
    as_json: bool,
    html_path: str | None,
) -> None:
    """Ingest institution folders: check, tile images, update the catalog and search index.

    Shows progress on stderr, then a report per institution (records added, updated,
    unchanged, removed, failed, each failure with its file, row and field); the same
    report is saved as JSON under the archive's reports/ folder. --dry-run writes
    nothing and lists what a real run would change, the images named after no record
    and the public records without images. --html FILE writes the same report as one
    page to open in a browser, offline, with thumbnails. Only one ingest writes at a time.
    Exit status is 0 only when every record of every folder succeeded, 130 when the
    run was interrupted (Ctrl-C or SIGTERM: the images being tiled are finished, the
    rest is left for the next run, which resumes where this one stopped).
    """
    from ingest.pipeline import run_ingest

    if html_path is not None and not os.path.isdir(os.path.dirname(os.path.abspath(html_path))):
        raise click.ClickException(f"--html {html_path}: its folder does not exist")
    archive = obj.archive(workers=workers)
    archive.images.check()  # a wrong storage_url, bucket or credentials: one line, now
    if not dry_run:
        attach_search(archive)
    # `kill PID`, systemd and cron stop a run the way Ctrl-C does: gracefully.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    wait = max(0.0, float(archive.config.ingest_outage_wait))
    since = None  # when the catalog server or the storage went away
    while True:
        attempt = time.monotonic()
        try:
            report = run_ingest(
                archive, [os.fspath(p) for p in paths], dry_run=dry_run, workers=workers
            )
            break
        except KeyboardInterrupt:  # while reading the folders, before any tiling began
            click.echo("\nInterrupted; nothing was lost. Run the same command again.", err=True)
            sys.exit(130)
        except (CatalogUnavailable, StorageUnavailable) as exc:  # went away mid-run
            # A run resumes where it stopped (committed records and finished pyramids are
            # kept, the rest is redone), so riding through an outage is running it again.
            now = time.monotonic()
            if since is None or now - attempt > 30:  # a new outage, not the same one
                since = now
                if wait > 0:
                    click.echo(
                        f"{exc}; what was committed is kept: waiting up to {wait:.0f} s "
                        "(ingest_outage_wait) for it to come back, then resuming",
                        err=True,
                    )
            if now - since >= wait:
                raise click.ClickException(
                    f"{exc}; what was committed before is kept and nothing half-written is:"
                    " run the same command again when it is back (it resumes, reusing the"
                    " pyramids tiled)"
                    + (f" (waited {now - since:.0f} s, ingest_outage_wait)" if wait else "")
                ) from None
            time.sleep(min(2.0, max(0.0, since + wait - now)))
    if since is not None:
        click.echo(
            f"Resumed after an outage of about {time.monotonic() - since:.0f} s; the report"
            " counts what was committed before it as unchanged.",
            err=True,
        )
    click.echo(_dump(report.to_dict()) if as_json else report.render())
    if html_path is not None:
        from ingest.html_report import write_html

        try:
            written = write_html(report, html_path)
        except OSError as exc:
            raise click.ClickException(
                f"{html_path}: cannot write the HTML report: {exc.strerror or exc}"
            ) from None
        click.echo(f"HTML report: {written}", err=True)
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
@click.argument("folders", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option("--deep", is_flag=True, help="Also read every stored tile of every pyramid.")
@click.option(
    "--repair",
    is_flag=True,
    help="Re-index the search index, sweep orphaned files, and re-tile missing or damaged "
    "pyramids from the institution FOLDERS given.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_obj
def check(obj: Context, folders: tuple[str, ...], deep: bool, repair: bool, as_json: bool) -> None:
    """Check that the catalog, the pyramids and the search index agree.

    \b
    Finds pyramids missing, truncated or unreadable (or of the wrong size), files no
    image of the catalog names, public records missing from the search index and
    documents left in it; --deep also reads every stored tile. Each problem names its
    record and image. Exit status 0: healthy; 1: problems (after --repair: those left).
    --repair re-indexes, sweeps orphans and re-tiles what is damaged from the
    institution FOLDERS given (the curators' folders, as for `archive ingest`).
    """
    from archive.check import check_archive
    from iiif.image_tiff import read_pyramid, verify_tiles

    def read_size(name: str, fh) -> tuple[int, int]:
        pyramid = read_pyramid(name, fh)
        return pyramid.width, pyramid.height

    archive = attach_search(obj.archive())

    def run():
        return check_archive(
            archive,
            read_size=read_size,
            read_tiles=verify_tiles if deep else None,
            ingest_running=archive.catalog.lock_holder() is not None,
        )

    report = run()
    if repair and not report.healthy:
        click.echo(report.render(), err=True)
        _repair(archive, report, folders)
        report = run()
    click.echo(_dump(report.to_dict()) if as_json else report.render())
    if not report.healthy:
        sys.exit(1)


def _repair(archive: Archive, report, folders: tuple[str, ...]) -> None:
    """What ``check --repair`` does, each step said on stderr."""
    from archive.check import remove_damaged, repair_index

    with archive.catalog.write_lock():  # no ingest writes meanwhile
        if report.of("missing-from-index", "left-in-index", "search"):
            count = repair_index(archive)
            click.echo(f"Repair: re-indexed {count} public records.", err=True)
        if report.of("orphaned-file"):
            removed = archive.images.sweep(archive.catalog.image_versions())
            click.echo(
                f"Repair: swept {removed} orphaned pyramid(s) and temporary files.", err=True
            )
        damaged = remove_damaged(archive, report)
    broken = damaged + report.of("missing-pyramid")
    if not broken:
        return
    if not folders:
        click.echo(
            f"Repair: {len(broken)} pyramid(s) need re-tiling: give the institution folders "
            "to re-tile them from (archive check --repair FOLDER...).",
            err=True,
        )
        return
    from ingest.pipeline import run_ingest

    click.echo(
        f"Repair: re-tiling {len(broken)} pyramid(s) from {len(folders)} folder(s).", err=True
    )
    result = run_ingest(archive, [os.fspath(f) for f in folders])
    click.echo(
        f"Repair: {result.images_tiled} image(s) tiled"
        + ("" if result.ok else f"; the ingest reported problems ({result.path})"),
        err=True,
    )


@cli.command()
@click.pass_obj
def reindex(obj: Context) -> None:
    """Rebuild the search index from the catalog (the source of truth).

    On a cluster this builds a new index and switches the alias, so search keeps
    answering throughout; on SQLite readers see the old index until the new one is done.
    """
    archive = attach_search(obj.archive())
    count = archive.rebuild_search()
    click.echo(f"Indexed {count} public records with the {archive.search.name} backend.")


@cli.command()
@click.argument("dest")
@click.option("--verify", is_flag=True, help="Re-read everything written and check its SHA-256.")
@click.pass_obj
def backup(obj: Context, dest: str, verify: bool) -> None:
    """Back the archive up into DEST, a folder or s3://bucket/prefix, while it serves.

    A consistent catalog snapshot (SQLite's online backup API; PostgreSQL read in one
    REPEATABLE READ transaction), stored in pieces by SHA-256 so that only changed
    pieces are written; then the pyramids it refers to, only those not in DEST already.
    Settings, ingest reports and manifest.json (counts, sizes, SHA-256) go beside them.
    The search index is rebuilt by `archive restore`.
    """
    from .backup import backup as run_backup

    archive = obj.archive()
    result = run_backup(
        archive.catalog,
        archive.images,
        archive.home,
        dest,
        verify=verify,
        progress=lambda line: click.echo(line, err=True),
        timeout=max(30.0, float(archive.config.storage_timeout)),
    )
    manifest = result.manifest
    click.echo(
        f"Backed up {manifest['catalog']['records']} records and "
        f"{len(manifest['pyramids'])} pyramids ({manifest['pyramid_bytes']} bytes) to {result.url}"
    )
    click.echo(
        f"Pyramids copied: {result.copied} ({result.copied_bytes} bytes); already there: "
        f"{result.reused}; removed: {result.removed}"
    )
    click.echo(
        f"Catalog snapshot: {manifest['catalog']['size']} bytes in "
        f"{len(manifest['catalog']['chunks'])} pieces, {result.chunks_written} written "
        f"({result.chunks_bytes} bytes), {result.chunks_kept} already there; "
        f"sha256 {manifest['catalog']['sha256']}"
    )
    for name in result.swept:
        click.echo(
            f"Swept during the backup: {name} (replaced by an ingest; the snapshot taken "
            "after it refers to the new version)",
            err=True,
        )
    if verify:
        for problem in result.problems:
            click.echo(f"problem: {problem}", err=True)
        if result.problems:
            raise click.ClickException(f"verify: {len(result.problems)} problems in {result.url}")
        click.echo("Verified: every file read back matches its SHA-256 in the manifest.")


@cli.command()
@click.argument("src")
@click.option(
    "--force",
    is_flag=True,
    help="Replace what a non-empty catalog holds with the backup's contents.",
)
@click.pass_obj
def restore(obj: Context, src: str, force: bool) -> None:
    """Restore the backup at SRC (a folder or s3://bucket/prefix) into this archive.

    Fills an empty catalog (refused otherwise unless --force) and the configured
    storage; every file is checked against the manifest's SHA-256 first. Then the
    search index is rebuilt from the restored catalog.
    """
    from .backup import restore as run_restore

    archive = attach_search(obj.archive())
    result = run_restore(
        archive.catalog,
        archive.images,
        archive.home,
        src,
        force=force,
        progress=lambda line: click.echo(line, err=True),
        timeout=max(30.0, float(archive.config.storage_timeout)),
    )
    manifest = result.manifest
    count = archive.rebuild_search()
    click.echo(
        f"Restored {manifest['catalog']['records']} records and {len(manifest['pyramids'])}"
        f" pyramids from {src} (backup of {manifest['created']})"
    )
    click.echo(f"Pyramids copied: {result.copied}; already in storage: {result.present}")
    click.echo(f"Indexed {count} public records with the {archive.search.name} backend.")
    if result.settings:
        click.echo(f"The backup's settings: {result.settings}")


@cli.command()
@click.option(
    "--to-catalog",
    "to_catalog",
    default="",
    help="Catalog to copy into: postgresql://..., or empty for TO-HOME/catalog.sqlite.",
)
@click.option(
    "--to-storage",
    "to_storage",
    default="",
    help="Storage to copy pyramids into: s3://bucket/prefix, a folder, or empty for "
    "TO-HOME/images.",
)
@click.option(
    "--to-home",
    "to_home",
    type=click.Path(file_okay=False),
    default=None,
    help="Home of the target (its folders, reports, the embedded catalog); default: this home.",
)
@click.pass_obj
def migrate(obj: Context, to_catalog: str, to_storage: str, to_home: str | None) -> None:
    """Copy this archive's catalog and pyramids to another catalog and storage.

    SQLite and local pyramids into PostgreSQL and S3, or back, without re-tiling. Run
    it again after an interruption: it continues. Prints counts and checksums of both
    sides; then point catalog_url and storage_url at the target.
    """
    from .backup import migrate as run_migrate
    from .backup import open_target, summary_lines

    archive = obj.archive()
    target_home = Home(to_home) if to_home else archive.home
    target_catalog, target_store = open_target(
        target_home, to_catalog, to_storage, float(archive.config.storage_timeout)
    )
    same_catalog = getattr(target_catalog, "where", None) == archive.catalog.where
    if same_catalog and target_store.url == archive.images.url:
        raise click.ClickException("migrate: the target is this archive's own catalog and storage")
    try:
        result = run_migrate(
            archive.catalog,
            archive.images,
            target_catalog,
            target_store,
            progress=lambda line: click.echo(line, err=True),
        )
    finally:
        target_catalog.close()
    click.echo(
        f"Pyramids: {result.copied} copied, {result.present} already there, "
        f"{result.pyramid_bytes} bytes, into {target_store.url}"
    )
    click.echo(f"  sha256 of all pyramids: source {result.pyramids_sha256}")
    click.echo(f"                          target {result.target_pyramids_sha256}")
    click.echo(f"Catalog {archive.catalog.where}:")
    for line in summary_lines(result.source):
        click.echo(line)
    click.echo(
        f"Catalog {target_catalog.where}"
        f"{' (copied now)' if result.catalog_copied else ' (copied before)'}:"
    )
    for line in summary_lines(result.target):
        click.echo(line)
    if not result.same:
        raise click.ClickException("migrate: source and target differ (see above)")
    click.echo(
        "Source and target hold the same rows and pyramids. Now set catalog_url and "
        "storage_url to the target, and run `archive reindex`."
    )


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
