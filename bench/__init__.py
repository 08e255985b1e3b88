"""Benchmarks: ``python -m bench [names...] [--quick]`` (``make bench``).

Each ``bench/bench_<name>.py`` module has ``main(args: list[str]) -> int`` and
prints tables made with ``bench.common``: every figure beside an anchor measured
in the same run, and the ratio. Speed targets live here, never in tests.
"""
