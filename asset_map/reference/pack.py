"""A reference pack is a folder of reference files in a known layout; loading it runs the single loaders in order.

The layouts are data: the real Staffordshire pack and the synthetic county that ``asset-map demo synth`` writes.
A pack only needs the files it has; an unknown folder is an error that lists what was expected.
"""

from pathlib import Path

from asset_map.errors import InputError
from asset_map.reference import load

# (kind, glob relative to the pack, loader keyword arguments), loaded in this order: areas before need, since need
# rows are kept for loaded areas only.
PACK_LAYOUT = [
    ("districts", "boundaries/districts.geojson", {}),
    ("districts", "districts.geojson", {}),
    ("areas", "boundaries/lsoa2011/*.geojson", {"vintage": 2011}),
    ("areas", "boundaries/lsoa2021_imd2025.geojson", {"vintage": 2021}),
    ("areas", "areas_2021.geojson", {"vintage": 2021}),
    ("need", "deprivation/imd2019_lsoa11.csv", {"indicator": "imd", "vintage": 2019}),
    ("need", "deprivation/imd2025_england_lsoa21.csv.gz", {"indicator": "imd", "vintage": 2025}),
    ("need", "need_imd2025.csv", {"indicator": "imd", "vintage": 2025}),
    ("postcodes", "postcodes/codepoint_open_2014.csv", {}),
    ("postcodes", "postcodes/codepoint_open_2014_outside_area.csv", {}),
    ("postcodes", "postcodes/nspl_nov2021_TF.csv", {}),
    ("postcodes", "postcodes.csv", {}),
]

_LOADERS = {
    "districts": load.load_districts,
    "areas": load.load_areas,
    "need": load.load_need,
    "postcodes": load.load_postcodes,
}


def pack_files(directory):
    """[(kind, [paths], kwargs)] found in ``directory``, in load order."""
    directory = Path(directory)
    if not directory.is_dir():
        msg = f"Reference pack {directory} is not a folder."
        raise InputError(msg)
    found = []
    for kind, pattern, kwargs in PACK_LAYOUT:
        paths = sorted(directory.glob(pattern))
        if paths:
            found.append((kind, paths, kwargs))
    if not found:
        expected = ", ".join(p for _, p, _ in PACK_LAYOUT)
        msg = f"No reference files found in {directory}. Expected some of: {expected}."
        raise InputError(msg)
    return found


def registers_in(directory):
    folder = Path(directory) / "registers"
    return sorted(folder.glob("*.csv")) if folder.is_dir() else []


def load_pack(engine, directory, *, progress=None):
    """Load every reference file of the pack; returns the LoadResults. Each file is its own transaction, so a
    failure names the file and keeps the files loaded before it."""
    results = []
    for kind, paths, kwargs in pack_files(directory):
        if kind == "areas":
            batches = [paths]
        else:
            batches = [[p] for p in paths]
        for batch in batches:
            target = batch if kind == "areas" else batch[0]
            result = _LOADERS[kind](engine, target, **kwargs)
            results.append(result)
            if progress:
                progress(result)
    return results
