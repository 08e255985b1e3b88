"""Progress: a bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import io

from ingest.progress import Progress


def test_bar_on_a_terminal() -> None:
    out = io.StringIO()
    progress = Progress(4, out, tty=True)
    progress.advance(4, "N-12")
    progress.close()
    text = out.getvalue()
    assert text.startswith("\r[##############################] 4/4 images (100%)")
    assert "images/s" in text and "ETA" in text and "N-12" in text and text.endswith("\n")


def test_log_lines_otherwise() -> None:
    out = io.StringIO()
    progress = Progress(3, out, tty=False, log_every=0)
    for _ in range(3):
        progress.advance()
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("ingest: 1/3 images (33%)") and "ETA" in lines[0]
    assert lines[-1].startswith("ingest: 3/3 images (100%)") and "\r" not in out.getvalue()


def test_log_lines_are_throttled() -> None:
    out = io.StringIO()
    progress = Progress(1000, out, tty=False, log_every=3600)
    for _ in range(999):
        progress.advance()
    assert len(out.getvalue().splitlines()) <= 1
    progress.advance()
    assert out.getvalue().splitlines()[-1].startswith("ingest: 1000/1000")


def test_silent_without_a_stream() -> None:
    progress = Progress(2, None)
    progress.advance(2)
    progress.close()
    assert progress.done == 2
