"""analysis.overlay: an area's need from the LSOAs it overlaps, weighted by the residents estimated inside."""

import geopandas as gpd
import pandas as pd
import shapely

from asset_map.analysis import overlay

# Two 1 km squares side by side in British National Grid; the area covers all of A and a quarter of B.
A = shapely.box(400_000, 300_000, 401_000, 301_000)
B = shapely.box(401_000, 300_000, 402_000, 301_000)
AREA = shapely.box(400_000, 300_000, 401_250, 301_000)


def _lsoas(population_b=1000):
    return gpd.GeoDataFrame({"code": ["A", "B"], "population": [2000, population_b]}, geometry=[A, B], crs=27700)


NEED = pd.DataFrame({"code": ["A", "B"], "need_score": [40.0, 10.0], "need_decile": [1, 8]})


def test_shares_and_residents_inside():
    out = overlay.shares(_lsoas(), AREA)
    assert list(out["code"]) == ["A", "B"]
    assert out["share"].round(6).tolist() == [1.0, 0.25]
    assert out["population_inside"].round(6).tolist() == [2000.0, 250.0]


def test_need_weighted_by_residents_inside():
    summary = overlay.weighted_need(overlay.shares(_lsoas(), AREA), NEED)
    assert summary["weighted_by"] == "residents" and summary["population_inside"] == 2250
    assert abs(summary["score"] - (40 * 2000 + 10 * 250) / 2250) < 1e-9
    assert summary["deciles"] == {1: 2000 / 2250, 8: 250 / 2250}


def test_no_population_falls_back_to_area_and_says_so():
    summary = overlay.weighted_need(overlay.shares(_lsoas(population_b=None), AREA), NEED)
    assert summary["weighted_by"] == "area" and summary["missing_population"] == ["B"]
    assert summary["population_inside"] is None
    assert abs(summary["score"] - (40 * 100 + 10 * 25) / 125) < 1e-9  # hectares inside
    assert "B) have no population loaded" in summary["method"]


def test_slivers_are_ignored():
    assert list(overlay.shares(_lsoas(), shapely.box(400_000, 300_000, 401_000.5, 301_000))["code"]) == ["A"]
