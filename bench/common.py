"""Helpers every benchmark uses: timing, percentiles, peak memory of a process tree,
and a table that shows each figure beside its anchor measured in the same run.

A figure alone says little on a shared 2-core machine; the same figure divided by
an anchor measured minutes earlier on the same machine (raw pyvips for tiling,
plain SQLite for indexing, a static file for the web server) is a ratio that
survives a noisy neighbour. So every ``Row`` carries both, and optionally the
target the issue sets (a ratio, or an absolute limit), which the table checks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"  # git-ignored

# -- timing ---------------------------------------------------------------------------------


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds`` (monotonic wall clock)."""

    def __init__(self) -> None:
        self.start = 0.0
        self.seconds = 0.0

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def timed(fn: Callable[[], Any], *, repeat: int = 5, warmup: int = 1) -> list[float]:
    """Seconds taken by each of ``repeat`` calls of ``fn``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (the same definition as numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Stats:
    n: int
    mean: float
    p50: float
    p90: float
    p99: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        return cls(
            n=len(values),
            mean=statistics.fmean(values),
            p50=percentile(values, 50),
            p90=percentile(values, 90),
            p99=percentile(values, 99),
            min=min(values),
            max=max(values),
        )


# -- memory ---------------------------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                kids.extend(int(k) for k in fh.read().split())
    except OSError:
        pass
    return kids


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(_children(current))
    return out


def rss(pid: int) -> int:
    """Resident set size of one process in bytes; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def pss(pid: int) -> int:
    """Proportional set size of one process in bytes (each shared page divided among
    the processes sharing it, so forked workers are not counted twice); 0 if gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_ticks(pid: int) -> int:
    """User + system CPU of one process itself (not its children), in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14 and 15)
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss(pid: int) -> int:
    """Summed RSS of a process and its descendants (shared pages counted in each)."""
    return sum(rss(p) for p in tree(pid))


class PeakRSS:
    """Samples the summed RSS of a process tree in a thread; ``peak`` is the maximum seen.

    With ``proportional=True`` it also samples the summed PSS (``peak_pss``), the fair
    figure for servers whose workers are forked from one parent and share its pages.

    ``with PeakRSS(proc.pid) as mem: proc.wait()`` then ``mem.peak`` (bytes). Sampling
    every 50 ms misses spikes shorter than that; for the bounded-memory claims that
    matter (ingest, tiling) the peaks last seconds. ``cpu_seconds`` is the CPU the
    tree's processes were last seen to have used (a lower bound: a process's last
    50 ms before it exits are missed).
    """

    def __init__(
        self, pid: int | None = None, interval: float = 0.05, *, proportional: bool = False
    ) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.interval = interval
        self.proportional = proportional
        self.peak = 0
        self.peak_pss = 0
        self._ticks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        pids = tree(self.pid)
        self.peak = max(self.peak, sum(rss(p) for p in pids))
        if self.proportional:
            self.peak_pss = max(self.peak_pss, sum(pss(p) for p in pids))
        for p in pids:
            self._ticks[p] = max(self._ticks.get(p, 0), cpu_ticks(p))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    @property
    def cpu_seconds(self) -> float:
        return sum(self._ticks.values()) / _TICK

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


@dataclass
class RunResult:
    returncode: int
    seconds: float
    peak_rss: int  # bytes, whole process tree
    stdout: str
    stderr: str
    cpu_seconds: float = 0.0  # user + system of the whole tree; see ``run``


def run(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> RunResult:
    """Run a command, timing it and sampling the peak RSS of its whole process tree.

    CPU seconds: the larger of two lower bounds, the rusage of waited-for descendants
    and the /proc samples (which also see processes nobody waits for, e.g. a
    forkserver's). On a shared machine CPU seconds, unlike wall time, do not grow
    with the neighbours' load, so ratios of them are the steadier figures.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with Stopwatch() as sw:
        proc = subprocess.Popen(
            list(cmd),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        with PeakRSS(proc.pid) as mem:
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                raise
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    waited = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = max(waited, mem.cpu_seconds)
    result = RunResult(proc.returncode, sw.seconds, mem.peak, out, err, cpu)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{err[-3000:]}")
    return result


# -- servers -------------------------------------------------------------------------------------
ARCHIVE = str(Path(sys.executable).parent / "archive")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    """Poll ``url`` until it answers; fail at once if ``proc`` dies first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}) before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                resp.read()
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"no answer from {url} within {seconds:.0f} s")


def stop(proc: subprocess.Popen, seconds: float = 30) -> None:
    """SIGTERM, then SIGKILL if it does not end in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve_archive(
    home: Path,
    *,
    probe: str = "/api/search?size=1",
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
    workers: int = 2,
    seconds: float = 120,
) -> tuple[subprocess.Popen, str]:
    """A real ``archive serve`` on a free port, answering ``probe``: (process, base URL)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            ARCHIVE,
            "--home",
            str(home),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + probe, proc, seconds)
    except Exception:
        stop(proc)
        raise
    return proc, base


def mib(nbytes: float) -> float:
    return nbytes / (1024 * 1024)


# -- tables ---------------------------------------------------------------------------------


@dataclass
class Row:
    """One measured figure beside its anchor.

    ``ratio`` is measured / anchor. ``target`` is checked by ``ok``: with
    ``higher_is_better`` the ratio must be >= ``target_ratio`` and the figure >=
    ``target``; otherwise <=. Either target may be None.
    """

    name: str
    measured: float
    unit: str
    anchor: float | None = None
    anchor_name: str = ""
    higher_is_better: bool = True
    target: float | None = None  # absolute, in ``unit``
    target_ratio: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.anchor in (None, 0):
            return None
        return self.measured / self.anchor

    @property
    def ok(self) -> bool | None:
        checks = []
        better = (lambda a, b: a >= b) if self.higher_is_better else (lambda a, b: a <= b)
        if self.target is not None:
            checks.append(better(self.measured, self.target))
        if self.target_ratio is not None and self.ratio is not None:
            checks.append(better(self.ratio, self.target_ratio))
        return all(checks) if checks else None

    def target_text(self) -> str:
        sign = ">=" if self.higher_is_better else "<="
        parts = []
        if self.target is not None:
            parts.append(f"{sign} {fmt(self.target)} {self.unit}")
        if self.target_ratio is not None:
            parts.append(f"ratio {sign} {self.target_ratio:g}")
        return ", ".join(parts)


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def table(title: str, rows: Sequence[Row], *, file=None) -> str:
    """Render (and print) rows as a fixed-width table: figure, anchor, ratio, target, verdict."""
    header = ("measure", "value", "unit", "anchor", "anchor value", "ratio", "target", "")
    lines = [header]
    for r in rows:
        verdict = {True: "ok", False: "MISS", None: ""}[r.ok]
        lines.append(
            (
                r.name,
                fmt(r.measured),
                r.unit,
                r.anchor_name or "-",
                fmt(r.anchor),
                "-" if r.ratio is None else f"{r.ratio:.2f}",
                r.target_text() or "-",
                verdict,
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    numeric = {1, 4, 5}

    def render(line: tuple) -> str:
        cells = [
            str(c).rjust(w) if i in numeric else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    out = [f"\n== {title} ==", render(header), "  ".join("-" * w for w in widths)]
    out += [render(line) for line in lines[1:]]
    notes = [f"  {r.name.strip()}: {r.note}" for r in rows if r.note]
    if notes:
        out += ["notes:", *notes]
    text = "\n".join(out)
    print(text, file=file or sys.stdout, flush=True)
    return text


# -- context and results --------------------------------------------------------------------


# Instruction sets the int8 encoder (ONNX Runtime) and libvips's vector paths use when the
# core has them. The same encoder took 7.8 ms a record on one day's 2 cores here and 2.8 on
# another's (an EPYC with AVX-512 VNNI): figures compare only on the same kind of core.
_SIMD = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def _cpu() -> dict[str, str]:
    """The CPU's model name and which of ``_SIMD`` it has, from /proc/cpuinfo (Linux)."""
    try:
        with open("/proc/cpuinfo") as fh:
            text = fh.read()
    except OSError:
        return {}
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    have = set(flags.group(1).split()) if flags else set()
    return {
        "cpu": model.group(1).strip() if model else platform.machine(),
        "simd": " ".join(f for f in _SIMD if f in have) or "-",
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on; printed at the top of every run."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    info.update(_cpu())
    try:
        with open("/proc/meminfo") as fh:
            info["mem_total_mib"] = int(fh.readline().split()[1]) // 1024
        with open("/proc/loadavg") as fh:
            info["loadavg"] = fh.read().split()[0]
    except OSError:
        pass
    try:
        import pyvips

        info["libvips"] = ".".join(str(pyvips.version(i)) for i in range(3))
    except Exception:  # noqa: BLE001 - pyvips is optional for reporting
        pass
    return info


@dataclass
class Report:
    """Rows of one benchmark, printed as a table and kept in bench/results/."""

    name: str
    rows: list[Row] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def print(self, title: str | None = None) -> str:
        return table(title or self.name, self.rows)

    def save(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS / f"{self.name}-{stamp}.json"
        data = {
            "name": self.name,
            "at": stamp,
            "machine": machine(),
            "params": self.params,
            "rows": [{**asdict(r), "ratio": r.ratio, "ok": r.ok} for r in self.rows],
        }
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        return path

    @property
    def ok(self) -> bool:
        return all(r.ok is not False for r in self.rows)


def parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes."""
    p = argparse.ArgumentParser(prog=f"python -m bench {name}", description=doc)
    p.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke run, minutes not hours"
    )
    return p


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary folder on the same disk as the repo's results (not tmpfs), removed after."""
    import shutil
    import tempfile

    base = os.environ.get("BENCH_TMP") or None
    path = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
