"""Settings, declared once as data, and loaded in one fixed order.

Order: the defaults below, then ``<home>/archive.toml``, then environment
variables ``ARCHIVE_<NAME>`` (upper case), then explicit overrides (CLI flags).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("home", "archive-home", "Data folder: catalog, image pyramids, search index, reports."),
    Setting(
        "public_url",
        "",
        "Base URL the public sees (e.g. https://museum.example.jp); "
        "empty means taken from each request.",
    ),
    # Catalog
    Setting(
        "catalog_url",
        "",
        "Where the catalog lives: empty means <home>/catalog.sqlite (embedded); "
        "postgresql://user:password@host:port/dbname means that PostgreSQL database, "
        "shared by every node.",
    ),
    # Storage
    Setting(
        "storage_url",
        "",
        "Where pyramids and ingest reports are kept: empty means <home>/images; "
        "s3://bucket/prefix means S3-compatible object storage (endpoint, region and "
        "credentials from the standard AWS settings: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, or a profile).",
    ),
    Setting(
        "storage_timeout",
        5.0,
        "Seconds an object storage request may take (connect, then each read) before "
        "it is retried once and then answered with 503.",
    ),
    Setting(
        "storage_block_kb",
        64,
        "Object storage is read in aligned blocks of this many KiB (a read spanning "
        "several missing blocks is one GET), so the neighbouring tiles a viewer asks for "
        "next come with the same request. Larger suits stores with a long round trip.",
    ),
    Setting(
        "storage_read_cache_mb",
        32,
        "Memory per worker process for blocks recently read from object storage (least "
        "recently used dropped first); 0 reads exactly the bytes asked for, uncached.",
    ),
    # Search
    Setting(
        "search_backend",
        "sqlite",
        "Search backend: 'sqlite' (embedded) or 'elasticsearch' "
        "(Elasticsearch or OpenSearch, detected from the server).",
    ),
    Setting("search_url", "", "URL of the Elasticsearch/OpenSearch cluster."),
    Setting("search_index", "archive", "Index (alias) name on the cluster."),
    Setting("search_username", "", "Cluster user name."),
    Setting("search_password", "", "Cluster password."),
    Setting("search_api_key", "", "Cluster API key (instead of user name and password)."),
    Setting("search_ca_certs", "", "CA bundle to verify the cluster's TLS certificate."),
    Setting("search_verify_certs", True, "Verify the cluster's TLS certificate."),
    Setting("search_timeout", 10.0, "Seconds before a cluster request gives up."),
    Setting(
        "search_vectors",
        True,
        "Embed public records with the sentence model at ingest and reindex, for search by "
        "meaning and similar objects. Off: nothing is embedded (no model loaded; vectors "
        "already stored are kept), search matches text only and similar objects are empty; "
        "turned on again, `archive reindex` embeds what is missing.",
    ),
    # Ingest
    Setting(
        "workers",
        0,
        "Processes for tiling images, and for embedding records in an ingest or a reindex;"
        " 0 means one per CPU core.",
    ),
    Setting(
        "ingest_outage_wait",
        300.0,
        "Seconds an ingest waits for the catalog's database server or the object storage "
        "to come back when it goes away mid-run (a restart, a failover), then resumes by "
        "itself; 0 stops at once (run the same command again to resume).",
    ),
    Setting(
        "max_pixels",
        400_000_000,
        "Refuse source images with more pixels than this (decompression bombs).",
    ),
    Setting("tile_size", 256, "Tile size of the image pyramids, in pixels."),
    Setting(
        "jpeg_quality",
        85,
        "JPEG quality of the pyramid tiles. libvips codes tiles at 90 and "
        "above as RGB without chroma subsampling, about 4 times larger for phones to load.",
    ),
    # IIIF Image API
    Setting("iiif_max_width", 10000, "Largest width the Image API renders (maxWidth)."),
    Setting("iiif_max_height", 10000, "Largest height the Image API renders (maxHeight)."),
    Setting("iiif_max_area", 36_000_000, "Largest area the Image API renders (maxArea)."),
    Setting("cache_size_mb", 2048, "Disk cache of rendered derivatives; 0 disables it."),
    # Web
    Setting("site_name_ja", "まちのデジタルミュージアム", "Site name in Japanese."),
    Setting("site_name_en", "City Digital Museum", "Site name in English."),
    Setting(
        "admin_email",
        "",
        "Contact address harvesters see (OAI-PMH Identify); empty means webmaster@<host>.",
    ),
    # Operations: metrics and logs
    Setting(
        "metrics_listen",
        "",
        "host:port where `archive serve` answers /metrics (Prometheus) on a small server of "
        "its own, e.g. 127.0.0.1:9108; empty means none.",
    ),
    Setting(
        "metrics_token",
        "",
        "Bearer token that opens /metrics on the public port too; empty means /metrics is "
        "not served there (404).",
    ),
    Setting(
        "log_format",
        "text",
        "'text' (access log in the common log format) or 'json' (one JSON object per line, "
        "the access log and the application's messages, for log collectors).",
    ),
)
LOG_FORMATS = ("text", "json")

_BY_NAME = {s.name: s for s in SETTINGS}


def _coerce(setting: Setting, value: Any, source: str) -> Any:
    default = setting.default
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source}: setting {setting.name!r} must be {type(default).__name__}, got {value!r}"
        ) from None


class Config:
    """Resolved settings; attribute access (``config.search_backend``)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = dict(values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def replace(self, **changes: Any) -> Config:
        values = dict(self._values)
        for name, value in changes.items():
            if name not in _BY_NAME:
                raise ConfigError(f"unknown setting {name!r}")
            values[name] = _coerce(_BY_NAME[name], value, "override")
        return Config(values)

    @property
    def home_path(self) -> Path:
        return Path(self.home).resolve()

    @classmethod
    def load(
        cls,
        home: str | os.PathLike | None = None,
        overrides: dict[str, Any] | None = None,
        environ: dict[str, str] | None = None,
    ) -> Config:
        env = os.environ if environ is None else environ
        values = {s.name: s.default for s in SETTINGS}
        # The home decides where archive.toml lives, so resolve it first.
        home_value = home or env.get("ARCHIVE_HOME") or values["home"]
        values["home"] = str(Path(home_value).expanduser().resolve())
        toml_path = Path(values["home"]) / "archive.toml"
        if toml_path.is_file():
            try:
                data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{toml_path}: {exc}") from None
            for name, value in data.items():
                if name not in _BY_NAME or name == "home":
                    raise ConfigError(f"{toml_path}: unknown setting {name!r}")
                values[name] = _coerce(_BY_NAME[name], value, str(toml_path))
        for setting in SETTINGS:
            key = "ARCHIVE_" + setting.name.upper()
            if setting.name != "home" and key in env:
                values[setting.name] = _coerce(setting, env[key], key)
        for name, value in (overrides or {}).items():
            if value is None:
                continue
            if name not in _BY_NAME:
                raise ConfigError(f"unknown setting {name!r}")
            values[name] = _coerce(_BY_NAME[name], value, "command line")
        _check_operations(values)
        return cls(values)


def listen_address(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) as (host, port); ConfigError naming the setting."""
    host, sep, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"setting 'metrics_listen' must be host:port, got {value!r}")
    return host, int(port)


def _check_operations(values: dict[str, Any]) -> None:
    if values["log_format"] not in LOG_FORMATS:
        raise ConfigError(
            f"setting 'log_format' must be one of {', '.join(LOG_FORMATS)}, "
            f"got {values['log_format']!r}"
        )
    if values["metrics_listen"]:
        listen_address(values["metrics_listen"])
    if not 4 <= values["storage_block_kb"] <= 65536:
        raise ConfigError(
            f"setting 'storage_block_kb' must be 4 to 65536, got {values['storage_block_kb']}"
        )
    if values["storage_read_cache_mb"] < 0:
        raise ConfigError(
            "setting 'storage_read_cache_mb' must be 0 or more, "
            f"got {values['storage_read_cache_mb']}"
        )
