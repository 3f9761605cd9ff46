"""Benchmarks: `make bench` (python -m asset_map.tools.bench --scale small|county|england).

Each area of the product has a module here with ``run(ctx) -> list[Figure]``; every figure is measured against a
reference in the same run (a ratio), because these machines are noisy. The harness (``__main__``) runs the modules
named in MODULES, prints each figure with its reference and writes BENCHMARKS.md and a JSON file.
"""

# One module a line, so that adding one merges cleanly.
MODULES = [
    "imports",
    "mappage",
    "exports",
    "gaps",
    "network",
    "security",
    "standards",
    "load",
    "registers",
    "geographies",
    "community",
    "privacy",
    "national",
]
