"""The benchmark helpers: percentiles, tables with anchors, peak memory of a process tree,
and the runner. (The benchmarks themselves run with `make bench`, never in tests.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench import __main__ as runner
from bench.common import REPO, PeakRSS, Row, Stats, percentile, run, table


def test_percentile_matches_the_linear_definition():
    values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert percentile(values, 0) == 1 and percentile(values, 100) == 10
    assert percentile(values, 50) == 5.5
    assert percentile(values, 90) == pytest.approx(9.1)
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    stats = Stats.of([3, 1, 2])
    assert (stats.n, stats.min, stats.max, stats.p50, stats.mean) == (3, 1, 3, 2, 2)


def test_rows_compare_with_their_anchor_and_target():
    fast = Row("tiles/s", 95, "img/s", anchor=100, anchor_name="raw pyvips", target_ratio=0.9)
    slow = Row("tiles/s", 80, "img/s", anchor=100, anchor_name="raw pyvips", target_ratio=0.9)
    assert fast.ratio == pytest.approx(0.95) and fast.ok is True
    assert slow.ok is False
    limit = Row("ingest", 420, "s", target=600, higher_is_better=False)
    assert limit.ratio is None and limit.ok is True
    assert Row("ingest", 700, "s", target=600, higher_is_better=False).ok is False
    assert Row("info", 1.0, "s").ok is None


def test_table_shows_value_anchor_ratio_and_verdict(capsys):
    text = table(
        "tiling",
        [
            Row(
                "throughput",
                95.0,
                "img/s",
                anchor=100.0,
                anchor_name="raw pyvips",
                target_ratio=0.9,
            ),
            Row("peak memory", 512.0, "MiB", note="whole process tree"),
        ],
    )
    assert text == capsys.readouterr().out.rstrip("\n")
    line = next(x for x in text.splitlines() if x.startswith("throughput"))
    assert "95.0" in line and "raw pyvips" in line and "0.95" in line and line.endswith("ok")
    assert "whole process tree" in text


def test_peak_rss_counts_child_processes():
    hog = "b = bytearray(150 * 1024 * 1024); import time; time.sleep(1.0)"
    result = run(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {hog!r}])",
        ]
    )
    assert result.returncode == 0
    assert result.peak_rss > 150 * 1024 * 1024, "the grandchild's memory is counted"
    with PeakRSS() as mem:
        pass
    assert mem.peak > 0


def test_run_reports_a_failing_command():
    with pytest.raises(RuntimeError, match="exited 3"):
        run([sys.executable, "-c", "import sys; sys.exit(3)"])


def test_runner_lists_and_rejects_unknown_names(capsys):
    assert runner.main(["--help"]) == 0
    assert "python -m bench" in capsys.readouterr().out
    assert runner.main(["no-such-benchmark"]) == 2
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--help"], capture_output=True, text=True, cwd=REPO
    )
    assert proc.returncode == 0


def test_run_counts_the_cpu_of_the_whole_tree():
    spin = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {spin!r}])"
    result = run([sys.executable, "-c", parent])
    assert result.cpu_seconds >= 0.6, "the grandchild's CPU is counted"
    assert result.cpu_seconds < 0.6 + 2.0
