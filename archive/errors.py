"""One error hierarchy for the whole archive.

The core raises these; the edges translate them once: the CLI into a
``click.ClickException``, the web into an HTTP response with ``http_status``.
"""

from __future__ import annotations


class ArchiveError(Exception):
    """Base of every error the archive raises on purpose."""

    http_status = 500
    retry_after: int | None = None  # seconds, for a 503's Retry-After header

    def public_message(self) -> str:
        """What a web client is told (operators get ``str(self)`` in the log)."""
        return str(self)


class ConfigError(ArchiveError):
    """The archive's configuration is wrong (unknown backend, bad value...)."""


class CollectionError(ArchiveError):
    """A curator's collection folder has a problem, located as precisely as we can."""

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        row: int | None = None,
        field: str | None = None,
        record: str | None = None,
        cell: str | None = None,
        column: str | None = None,
        value: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.file = file
        self.row = row
        self.field = field
        self.record = record
        self.cell = cell  # a workbook's sheet and cell as Excel shows them: 収蔵品台帳!D12
        self.column = column  # the source column (header name or JSON key)
        self.value = value  # the offending cell's text, when there is one

    def where(self) -> str:
        parts = []
        if self.file and self.cell:
            parts.append(f"{self.file} {self.cell}")
        elif self.file:
            parts.append(self.file if self.row is None else f"{self.file}:{self.row}")
        if self.record:
            parts.append(f"record {self.record}")
        if self.field:
            parts.append(f"field {self.field!r}")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "row": self.row,
            "field": self.field,
            "record": self.record,
            "cell": self.cell,
            "column": self.column,
            "value": self.value,
            "reason": self.reason,
        }

    def __str__(self) -> str:
        where = self.where()
        return f"{where}: {self.reason}" if where else self.reason


class BadRequest(ArchiveError):
    """A client sent something malformed; ``parameter`` names what."""

    http_status = 400

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class NotFound(ArchiveError):
    """No such (public) thing. Non-public records are NotFound too, on purpose."""

    http_status = 404


class NotImplementedFeature(ArchiveError):
    """A valid request for a feature we really lack (IIIF 501)."""

    http_status = 501


class StorageFull(ArchiveError):
    """The archive's disk (or a quota, or a file-size limit) refused a write: a run stops
    cleanly, keeping what it committed, and the next one resumes."""

    http_status = 503


class CatalogFull(StorageFull):
    """The catalog's database server is out of disk space (SQLSTATE 53100 disk_full, or a
    file it may not grow): the transaction was rolled back whole; 503 on the web."""

    retry_after = 60

    def public_message(self) -> str:  # the server's address is for the log, not the public
        return "the catalog cannot be written at the moment; try again later"


class LockedError(ArchiveError):
    """Another process holds the archive's write lock."""


class LockLost(LockedError):
    """The ingest's lock went away with its database session (a server restart, a
    terminated backend, the network) and could not be taken again safely: the run stops
    before writing anything more."""


class SearchUnavailable(ArchiveError):
    """The search backend cannot be reached; search pages answer 503."""

    http_status = 503
    retry_after = 30


class CatalogUnavailable(ArchiveError):
    """The catalog's database server cannot be reached (or refused us): catalog-backed
    pages and APIs answer 503 with Retry-After; the next use reconnects by itself."""

    http_status = 503
    retry_after = 10

    def public_message(self) -> str:  # the server's address is for the log, not the public
        return "the catalog is unavailable at the moment; try again shortly"


class CatalogVersionError(ArchiveError):
    """The catalog was written by a newer release than this one: it is left untouched."""


class StorageUnavailable(ArchiveError):
    """The pyramid store (object storage) cannot be reached or answers with errors;
    image requests answer 503 with Retry-After, and are served again once it is back."""

    http_status = 503
    retry_after = 10
