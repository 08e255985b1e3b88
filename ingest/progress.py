"""Progress of the tiling: a bar on a terminal, plain log lines otherwise (cron, CI, logs)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """Images done out of ``total``, images/s and ETA; silent when ``stream`` is None."""

    def __init__(
        self,
        total: int,
        stream: TextIO | None = sys.stderr,
        *,
        tty: bool | None = None,
        log_every: float = 10.0,
    ) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.tty = stream is not None and (stream.isatty() if tty is None else tty)
        self.log_every = log_every
        self.start = time.monotonic()
        self._last = 0.0

    def advance(self, n: int = 1, label: str = "") -> None:
        self.done += n
        now = time.monotonic()
        if self.stream is None or n == 0:
            return
        interval = 0.2 if self.tty else self.log_every
        if now - self._last < interval and self.done < self.total:
            return
        self._last = now
        self.stream.write(self.line(now, label))
        self.stream.flush()

    def line(self, now: float, label: str = "") -> str:
        elapsed = max(now - self.start, 1e-6)
        rate = self.done / elapsed
        left = self.total - self.done
        eta = _duration(left / rate) if rate > 0 and left > 0 else "--"
        pct = 100 * self.done / self.total if self.total else 100.0
        text = f"{self.done}/{self.total} images ({pct:.0f}%)  {rate:.1f} images/s  ETA {eta}"
        if self.tty:
            width = 30
            filled = int(width * self.done / self.total) if self.total else width
            bar = "#" * filled + "-" * (width - filled)
            return f"\r[{bar}] {text} {label[:30]:<30}"
        return f"ingest: {text}\n"

    def close(self) -> None:
        """End the progress line (once: a second call does nothing)."""
        if self.stream is not None and self.tty:
            self.stream.write("\n")
            self.stream.flush()
        self.tty = False
