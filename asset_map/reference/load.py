"""Load reference data (districts, areas, need indicators, postcodes) into the store.

Every load reads and checks the whole file first, then writes in one transaction: a bad file raises an
``InputError`` naming file, row, field and value and leaves the database as it was. Loads are idempotent: the same
codes loaded again are updated, never duplicated; ``replace=True`` first clears what the load stands for (all
districts, the areas of a vintage, an indicator's vintage, a postcode source).
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import text

from asset_map.reference.boundaries import read_areas, read_districts
from asset_map.reference.need import read_need
from asset_map.reference.postcodes import read_postcodes
from asset_map.store import writes

log = logging.getLogger(__name__)


@dataclass
class LoadResult:
    kind: str
    source: str
    rows: int
    vintage: str | None = None
    skipped: int = 0
    rejected: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list = field(default_factory=list)

    def summary(self):
        parts = [f"{self.kind}: {self.rows:,} rows from {self.source}"]
        if self.vintage:
            parts.append(f"vintage {self.vintage}")
        if self.skipped:
            parts.append(f"{self.skipped:,} skipped")
        if len(self.rejected):
            parts.append(f"{len(self.rejected):,} rejected")
        return ", ".join(parts) + "".join(f"\n  {n}" for n in self.notes)


def _record(conn, result, indicator=None):
    conn.execute(text("INSERT INTO reference_loads (kind, vintage, indicator, source, rows) "
                      "VALUES (:k, :v, :i, :s, :r)"),
                 {"k": result.kind, "v": result.vintage, "i": indicator, "s": result.source, "r": result.rows})


def _sources(paths):
    return ", ".join(Path(p).name for p in paths)


def load_districts(engine, path, *, code_field=None, name_field=None, replace=False):
    gdf = read_districts(path, code_field=code_field, name_field=name_field)
    with engine.begin() as conn:
        if replace:
            conn.execute(text("DELETE FROM districts"))
        rows = writes.upsert(conn, gdf[["code", "name", "geometry"]], "districts", keys=["code"],
                             columns=["code", "name"], geometry_sql="ST_Multi(geometry)")
        result = LoadResult("districts", Path(path).name, rows)
        _record(conn, result)
    return result


def load_areas(engine, paths, *, vintage, code_field=None, name_field=None, district_field=None, replace=False):
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    gdf = read_areas(paths, vintage=vintage, code_field=code_field, name_field=name_field,
                     district_field=district_field)
    with engine.begin() as conn:
        if replace:
            conn.execute(text("DELETE FROM areas WHERE vintage = :v"), {"v": vintage})
        cols = ["code", "vintage", "name", "district_code", "population"]
        rows = writes.upsert(conn, gdf[cols + ["geometry"]], "areas", keys=["code", "vintage"], columns=cols,
                             geometry_sql="ST_Multi(geometry)")
        result = LoadResult("areas", _sources(paths), rows, vintage=str(vintage))
        _record(conn, result)
    return result


def load_need(engine, path, *, indicator="imd", vintage, replace=False):
    """Need rows for areas not loaded are skipped (an England file loads for the county's areas only); a total
    population column in the file fills the areas' population where the boundaries carried none."""
    table = read_need(path, indicator=indicator, vintage=vintage)
    need = table.need
    with engine.begin() as conn:
        known = {r[0] for r in conn.execute(text("SELECT code FROM areas"))}
        skipped = 0
        if known:
            keep = need["area_code"].isin(known)
            skipped = int(need.loc[~keep, "area_code"].nunique())
            need = need[keep]
        if replace:
            conn.execute(text("DELETE FROM need_indicators WHERE vintage = :v AND (indicator = :i OR "
                              "indicator LIKE :p)"), {"v": vintage, "i": indicator, "p": f"{indicator}\\_%"})
        cols = ["area_code", "indicator", "vintage", "score", "rank", "decile"]
        rows = writes.upsert(conn, need[cols], "need_indicators", keys=["area_code", "indicator", "vintage"],
                             columns=cols)
        result = LoadResult("need", Path(path).name, rows, vintage=str(vintage), skipped=skipped)
        if skipped:
            result.notes.append(f"{skipped:,} areas in the file are not loaded here and were skipped")
        if len(table.population):
            staged = writes.stage(conn, table.population[["area_code", "population"]])
            filled = conn.execute(text(
                f'UPDATE areas a SET population = s.population FROM "{staged}" s '
                f'WHERE a.code = s.area_code AND a.population IS NULL')).rowcount
            writes.drop(conn, staged)
            if filled:
                result.notes.append(f"population filled for {filled:,} areas from this file")
        _record(conn, result, indicator=indicator)
    return result


def load_postcodes(engine, path, *, source=None, vintage=None, replace=False):
    gdf = read_postcodes(path, source=source, vintage=vintage)
    rejected = gdf.attrs.get("rejected", pd.DataFrame())
    gdf = gdf.copy()
    gdf.attrs = {}
    with engine.begin() as conn:
        if replace:
            conn.execute(text("DELETE FROM postcodes WHERE source = :s"), {"s": gdf["source"].iloc[0]})
        cols = ["postcode", "district_code", "lsoa11_code", "source", "vintage"]
        rows = writes.upsert(conn, gdf[cols + ["geometry"]], "postcodes", keys=["postcode"], columns=cols,
                             geometry_sql="geometry")
        result = LoadResult("postcodes", Path(path).name, rows,
                            vintage=str(gdf["vintage"].iloc[0]) if len(gdf) else None, rejected=rejected)
        _record(conn, result)
    return result
