"""Log lines for collectors: one JSON object per line (``log_format = "json"``).

``JsonFormatter`` turns any ``logging`` record into ``{"time", "level", "logger",
"message", ...}``; the access log's records carry their request fields in ``extra``
(``http``), which become top-level keys. A traceback, when there is one, is a string
field of the same object, so one event stays one line.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else was passed in ``extra``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        http = getattr(record, "http", None)
        if isinstance(http, dict):
            entry.update(http)
        else:
            try:
                entry["message"] = record.getMessage()
            except (TypeError, ValueError):  # a library's bad format arguments: keep the text
                entry["message"] = str(record.msg)
        for key, value in vars(record).items():
            if key not in _STANDARD and key != "http":
                entry[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
