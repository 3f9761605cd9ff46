"""The gap analysis on a layout small enough to work out by hand.

Six 1 km squares in a row (EPSG:27700), centroids at x = 500, 1500, ..., 5500 (+400,000) and y = 500 (+300,000):

    area      A     B     C     D     E     F
    people  1000  2000  1000   500  1500  1000
    decile     1     2     4     1     1     1

Libraries L1 (800, 500) in A and L2 (2500, 900) in C; a school S1 (200, 500) in A. Catchment 1,200 m.
"""

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from asset_map.analysis import gap
from asset_map.analysis.gap import GapParams, analyse
from asset_map.errors import InputError

X0, Y0 = 400_000, 300_000
CODES = list("ABCDEF")
POP = [1000, 2000, 1000, 500, 1500, 1000]
DECILE = [1, 2, 4, 1, 1, 1]
SCORE = [60.0, 45.0, 25.0, 55.0, 58.0, 52.0]


def layout():
    areas = gpd.GeoDataFrame({
        "code": CODES, "name": [f"Area {c}" for c in CODES], "district_code": ["E07000001"] * 4 + ["E07000002"] * 2,
        "population": POP, "need_score": SCORE, "need_rank": [1, 6, 9, 3, 2, 4], "need_decile": DECILE,
    }, geometry=[box(X0 + 1000 * i, Y0, X0 + 1000 * (i + 1), Y0 + 1000) for i in range(6)], crs=27700)
    assets = gpd.GeoDataFrame({
        "id": [11, 12, 21], "category": ["library", "library", "school"],
    }, geometry=[Point(X0 + 800, Y0 + 500), Point(X0 + 2500, Y0 + 900), Point(X0 + 200, Y0 + 500)], crs=27700)
    assets["group_library"] = assets["category"].eq("library")
    assets["group_school"] = assets["category"].eq("school")
    return areas, assets


PARAMS = GapParams(catchment_m=1200, groups=("library", "school"))


@pytest.fixture(scope="module")
def result():
    areas, assets = layout()
    return analyse(areas, assets, PARAMS).set_index("code")


def test_counts_and_rates(result):
    assert result["assets_inside"].tolist() == [2, 0, 1, 0, 0, 0]
    assert result["assets_per_1000"].tolist() == [2.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    assert (result["origin_method"] == "geometric").all()
    assert result["origin_x"].tolist() == [X0 + 500 + 1000 * i for i in range(6)]


def test_nearest_distances_cross_borders(result):
    d12 = math.hypot(1000, 400)  # L2 from B and from D
    assert result["nearest_library_m"].tolist() == pytest.approx(
        [300, 700, 400, d12, math.hypot(2000, 400), math.hypot(3000, 400)])
    # E and F are in the other district; their nearest library is L2 over the border.
    assert result.loc[["D", "E", "F"], "nearest_library_id"].tolist() == [12, 12, 12]
    assert result["nearest_school_m"].tolist() == pytest.approx([300, 1300, 2300, 3300, 4300, 5300])
    assert result.loc["D", "nearest_mean_m"] == pytest.approx((d12 + 3300) / 2)
    assert result["lacks"].tolist() == ["", "school", "school", "school", "library;school", "library;school"]


def test_two_step_fca_by_hand(result):
    # Step 1: L1 reaches A (300 m) and B (700 m): 1 / 3000. L2 reaches B, C, D (1077, 400, 1077 m): 1 / 3500.
    # S1 reaches A only (B is 1,300 m away): 1 / 1000. Step 2 sums the ratios each area reaches, per 1,000 people.
    r1, r2, r3 = 1 / 3000, 1 / 3500, 1 / 1000
    expected = [r1 + r3, r1 + r2, r2, r2, 0, 0]
    assert result["access_per_1000"].tolist() == pytest.approx([1000 * v for v in expected])


def test_two_step_fca_with_linear_decay():
    areas, assets = layout()
    out = analyse(areas, assets, GapParams(catchment_m=1200, decay="linear", groups=("library", "school")))
    w = lambda d: 1 - d / 1200  # noqa: E731
    d12 = math.hypot(1000, 400)
    r1 = 1 / (1000 * w(300) + 2000 * w(700))
    r2 = 1 / (2000 * w(d12) + 1000 * w(400) + 500 * w(d12))
    r3 = 1 / (1000 * w(300))
    expected = [w(300) * r1 + w(300) * r3, w(700) * r1 + w(d12) * r2, w(400) * r2, w(d12) * r2, 0, 0]
    assert out["access_per_1000"].tolist() == pytest.approx([1000 * v for v in expected])


def test_gaussian_decay_is_one_at_zero_and_zero_at_the_catchment():
    assert gap.decay_weight([0, 1600], 1600, "gaussian").tolist() == pytest.approx([1.0, 0.0])
    assert gap.decay_weight([800], 1600, "linear").tolist() == [0.5]


def test_classes_and_priority_ranking(result):
    assert result["need_class"].tolist() == ["high", "high", "medium", "high", "high", "high"]
    # Supply terciles of 2SFCA: E, F have none (low); C, D share 0.286 (min rank 3 of 6 = 0.5: medium); A, B high.
    assert result["supply_class"].tolist() == ["high", "high", "medium", "medium", "low", "low"]
    assert result.loc["E", "bivariate"] == "high need / low supply"
    assert result["priority"].tolist() == [False, False, False, False, True, True]
    # Same decile, same (no) supply: the one farther from its nearest assets comes first.
    assert result.loc["F", "priority_rank"] == 1 and result.loc["E", "priority_rank"] == 2
    assert result.loc[["A", "B", "C", "D"], "priority_rank"].isna().all()


def test_quantile_need_classes_and_other_supply_measures():
    areas, assets = layout()
    out = analyse(areas, assets, GapParams(catchment_m=1200, need_method="quantiles", supply_measure="per_1000",
                                           groups=("library",))).set_index("code")
    # Scores 60, 45, 25, 55, 58, 52: the top third (A 60, E 58) is high need, the bottom third (B 45, C 25) low.
    assert out["need_class"].tolist() == ["high", "low", "low", "medium", "high", "medium"]
    assert out["supply_class"].tolist() == ["high", "low", "high", "low", "low", "low"]
    assert out.index[out["priority"]].tolist() == ["E"]
    far = analyse(areas, assets, GapParams(catchment_m=1200, supply_measure="distance", groups=("library",)))
    # Nearest library 300, 700, 400, 1077, 2040, 3027 m: the nearest third is high supply, the farthest low.
    assert far.set_index("code")["supply_class"].tolist() == ["high", "medium", "high", "medium", "low", "low"]


def test_population_weighted_origin():
    areas, assets = layout()
    people = gpd.GeoDataFrame({"population": [300, 100]},
                              geometry=[Point(X0 + 100, Y0 + 500), Point(X0 + 900, Y0 + 500)], crs=27700)
    out = analyse(areas, assets, PARAMS, population_points=people).set_index("code")
    assert out.loc["A", "origin_method"] == "population-weighted"
    assert out.loc["A", "origin_x"] == pytest.approx(X0 + (300 * 100 + 100 * 900) / 400)
    assert out.loc["B", "origin_method"] == "geometric"


def test_report_subset_uses_all_areas_as_demand():
    areas, assets = layout()
    out = analyse(areas, assets, PARAMS, report=areas["district_code"].eq("E07000001").to_numpy())
    assert out["code"].tolist() == ["A", "B", "C", "D"]
    # B's 2SFCA still shares L2 with D; the demand does not shrink to the reported areas.
    assert out.set_index("code").loc["B", "access_per_1000"] == pytest.approx(1000 * (1 / 3000 + 1 / 3500))


def test_pysal_access_matches_a_dense_calculation_on_random_points():
    rng = np.random.default_rng(7)
    origins = rng.uniform(0, 10_000, (200, 2))
    pop = rng.integers(500, 3000, 200).astype(float)
    sites = rng.uniform(0, 10_000, (60, 2))
    got = gap.two_step_fca(origins, pop, sites, 1600, "gaussian")
    d = np.hypot(origins[:, None, 0] - sites[None, :, 0], origins[:, None, 1] - sites[None, :, 1])
    w = np.where(d <= 1600, gap.decay_weight(d, 1600, "gaussian"), 0)
    demand = (w * pop[:, None]).sum(axis=0)
    ratio = np.divide(1.0, demand, out=np.zeros_like(demand), where=demand > 0)
    assert got == pytest.approx(1000 * (w * ratio[None, :]).sum(axis=1))


def test_bad_parameters_are_input_errors():
    areas, assets = layout()
    with pytest.raises(InputError, match="Catchment"):
        analyse(areas, assets, GapParams(catchment_m=0))
    with pytest.raises(InputError, match="decay"):
        analyse(areas, assets, GapParams(decay="cubic"))
    with pytest.raises(InputError, match="Need breaks"):
        analyse(areas, assets, GapParams(need_breaks=(5, 2)))
    with pytest.raises(InputError, match="no column 'need_decile'"):
        analyse(areas.drop(columns="need_decile"), assets, PARAMS)


def test_no_assets_at_all():
    areas, assets = layout()
    out = analyse(areas, assets.iloc[0:0], GapParams(catchment_m=1200, groups=("any",)))
    assert out["assets_inside"].sum() == 0
    assert out["nearest_any_m"].isna().all()
    assert (out["access_per_1000"] == 0).all()
    assert out["lacks"].eq("any").all()
    assert isinstance(out, pd.DataFrame)


def test_files_are_sorted_fixed_and_identical_whatever_the_row_order():
    from asset_map.reports import gap_files

    areas, assets = layout()
    out = analyse(areas, assets, PARAMS).to_crs(4326)
    shuffled = out.sample(frac=1, random_state=3)
    inputs = {"parameters": PARAMS.as_dict()}
    assert gap_files.to_csv(out, PARAMS.groups) == gap_files.to_csv(shuffled, PARAMS.groups)
    assert gap_files.to_geojson(out, PARAMS.groups, inputs) == gap_files.to_geojson(shuffled, PARAMS.groups, inputs)
    lines = gap_files.to_csv(out, PARAMS.groups).splitlines()
    header = lines[0].split(",")
    f = dict(zip(header, lines[6].split(",")))  # area F
    assert f["code"] == "F" and f["nearest_library_m"] == "3026.5" and f["access_per_1000"] == "0.0000"
    assert f["priority"] == "true" and f["priority_rank"] == "1" and f["lacks"] == "library;school"
    doc = __import__("json").loads(gap_files.to_geojson(out, PARAMS.groups, inputs))
    props = doc["features"][5]["properties"]
    assert props["nearest_library_m"] == 3026.5 and props["priority_rank"] == 1 and props["priority"] is True
    assert doc["features"][0]["properties"]["priority_rank"] is None
    assert doc["asset_map"]["parameters"]["catchment_m"] == 1200.0
    ring = doc["features"][0]["geometry"]["coordinates"][0]
    assert all(len(str(v).split(".")[-1]) <= 6 for pt in ring for v in pt)
