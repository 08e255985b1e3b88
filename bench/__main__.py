"""Run the benchmarks: ``python -m bench [names...] [--quick] [-- extra args]``.

With no names, every ``bench/bench_*.py`` runs in name order. Options after the
names (``--quick``, or anything after ``--``) are passed to each module's
``main(args)``. Exit status is 1 if any benchmark failed or missed a target.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

from bench.common import machine

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    if "-h" in argv or "--help" in argv:
        print(__doc__)
        print("benchmarks:", ", ".join(available()) or "(none)")
        return 0
    names = [a for a in argv if not a.startswith("-")]
    options = [a for a in argv if a.startswith("-")] + passthrough
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}",
            file=sys.stderr,
        )
        return 2
    print("machine:", ", ".join(f"{k}={v}" for k, v in machine().items()), flush=True)
    failed = []
    for name in names or available():
        print(f"\n### bench {name} {' '.join(options)}".rstrip(), flush=True)
        start = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.bench_{name}")
            status = module.main(options) or 0
        except SystemExit as exc:  # argparse errors and explicit exits
            status = exc.code if isinstance(exc.code, int) else 1
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others
            traceback.print_exc()
            status = 1
        print(
            f"### bench {name}: {'ok' if status == 0 else 'FAILED'} "
            f"in {time.perf_counter() - start:.1f} s",
            flush=True,
        )
        if status:
            failed.append(name)
    if failed:
        print(f"\nfailed or missed a target: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
