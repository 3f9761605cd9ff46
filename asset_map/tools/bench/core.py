"""What every benchmark module shares: the scales, the context it runs in, and the Figure it reports."""

from dataclasses import asdict, dataclass, field
from pathlib import Path

# Sizes per scale; a module reads the ones it needs. `small` must keep the whole `make bench` under 5 minutes.
SCALES = {
    "small": {"areas": 700, "assets": 10_000, "import_rows": [100_000], "map_assets": [700, 50_000],
              "export_assets": 100_000, "gap": [(700, 10_000)], "load_seconds": 10, "load_clients": [20]},
    "county": {"areas": 700, "assets": 100_000, "import_rows": [100_000, 1_000_000], "map_assets": [700, 50_000],
               "export_assets": 100_000, "gap": [(700, 10_000)], "load_seconds": 30, "load_clients": [20, 100]},
    "england": {"areas": 33_755, "assets": 1_000_000, "import_rows": [100_000, 1_000_000],
                "map_assets": [700, 50_000], "export_assets": 100_000, "gap": [(700, 10_000), (33_755, 1_000_000)],
                "load_seconds": 30, "load_clients": [20, 100]},
}


@dataclass
class Figure:
    area: str                     # import, map, export, ogc, gap, load
    name: str                     # what was measured, with its size: "whole import, 100,000 rows"
    value: float
    unit: str                     # "s", "rows/s", "MB", "MB/s", "req/s", "ms"
    reference: str | None = None  # the reference measured in the same run
    reference_value: float | None = None
    target: str | None = None     # the target in words: ">= 25x reference", "< 1 MB"
    met: bool | None = None
    notes: str = ""

    def as_dict(self):
        return asdict(self)


@dataclass
class BenchContext:
    scale: str
    sizes: dict
    database_url: str             # an empty, migrated database of a throwaway cluster
    workdir: Path                 # scratch space for files
    notes: list = field(default_factory=list)
