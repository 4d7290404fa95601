"""``make bench``: measured ratios, not timed tests. ``python -m benchmarks.run`` prints a table and writes
``logs/bench/bench_<timestamp>.json``."""
