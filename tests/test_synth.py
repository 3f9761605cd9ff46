"""The synthetic county: deterministic, a clean tiling, plausible need and registers that exercise the importer."""

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from asset_map import synth

POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$")


@pytest.fixture(scope="module")
def county():
    return synth.generate(300, 4000, seed=3)


def _normalise(postcodes):
    compact = postcodes.str.upper().str.replace(r"\s+", "", regex=True)
    return compact.str[:-3] + " " + compact.str[-3:]


def test_same_seed_same_frames():
    a = synth.generate(60, 500, seed=11)
    b = synth.generate(60, 500, seed=11)
    assert_geodataframe_equal(a.districts, b.districts)
    assert_geodataframe_equal(a.areas, b.areas)
    assert_geodataframe_equal(a.postcodes, b.postcodes)
    pd.testing.assert_frame_equal(a.need, b.need)
    assert a.registers.keys() == b.registers.keys()
    for name in a.registers:
        pd.testing.assert_frame_equal(a.registers[name], b.registers[name])


def test_other_seed_other_frames():
    a = synth.generate(60, 500, seed=11)
    b = synth.generate(60, 500, seed=12)
    assert not a.areas.geometry.geom_equals(b.areas.geometry).all()
    assert not a.registers["synth-associations"].equals(b.registers["synth-associations"])


def test_geography_does_not_depend_on_asset_count():
    a = synth.generate(60, 100, seed=4)
    b = synth.generate(60, 900, seed=4)
    assert_geodataframe_equal(a.areas, b.areas)
    assert_geodataframe_equal(a.postcodes, b.postcodes)
    pd.testing.assert_frame_equal(a.need, b.need)


def test_default_district_count():
    assert synth.default_districts(700) == 9
    assert synth.default_districts(10) == 1
    assert synth.default_districts(33_755) == synth.MAX_DISTRICTS


@pytest.mark.parametrize("kwargs", [{"areas": 0}, {"assets": -1}, {"areas": 5, "districts": 6},
                                    {"areas": 5, "districts": 0}])
def test_bad_sizes_are_refused(kwargs):
    with pytest.raises(ValueError):
        synth.generate(**kwargs)


def test_districts_and_areas_frames(county):
    d, a = county.districts, county.areas
    assert list(d.columns) == ["code", "name", "geometry"]
    assert list(a.columns) == ["code", "name", "district_code", "vintage", "population", "geometry"]
    assert d.crs.to_epsg() == 4326 and a.crs.to_epsg() == 4326
    assert len(d) == synth.default_districts(300) and len(a) == 300
    assert d.code.str.fullmatch(r"E079\d{5}").all() and d.code.is_unique
    assert a.code.str.fullmatch(r"E019\d{5}").all() and a.code.is_unique
    assert (d.geom_type == "MultiPolygon").all()
    assert set(a.district_code) == set(d.code)
    names = dict(zip(d.code, d.name, strict=True))
    assert all(n.startswith(names[c] + " ") for n, c in zip(a.name, a.district_code, strict=True))
    assert a.name.str.fullmatch(r".+ \d{3}[A-E]").all() and a.name.is_unique
    assert (a.vintage == 2021).all()
    assert str(a.population.dtype) == "Int64" and a.population.between(1000, 3000).all()
    assert 1300 < a.population.mean() < 1800
    assert shapely.is_valid(np.asarray(a.geometry.array)).all()


def test_areas_tile_districts(county):
    d = county.districts.to_crs(27700)
    a = county.areas.to_crs(27700)
    # every district is one contiguous block
    assert (shapely.get_num_geometries(np.asarray(d.geometry.array)) == 1).all()
    # same total area, and no overlaps: the union is as big as the sum of the parts
    assert a.area.sum() == pytest.approx(d.area.sum(), rel=1e-3)
    assert a.union_all().area == pytest.approx(a.area.sum(), rel=1e-6)
    assert d.union_all().area == pytest.approx(d.area.sum(), rel=1e-6)
    by_district = a.groupby("district_code").apply(lambda g: g.area.sum(), include_groups=False)
    np.testing.assert_allclose(by_district.loc[d.code].to_numpy(), d.area.to_numpy(), rtol=1e-3)
    # areas are roughly 0.5-8 km², smaller in towns
    km2 = a.area / 1e6
    assert km2.min() > 0.1 and km2.max() < 12 and km2.quantile(0.05) < 2 < km2.median()


def test_every_area_in_exactly_one_district(county):
    d = county.districts.to_crs(27700)
    a = county.areas.to_crs(27700)
    points = gpd.GeoDataFrame({"code": a.code, "district_code": a.district_code},
                              geometry=a.representative_point(), crs=a.crs)
    hits = gpd.sjoin(points, d[["code", "geometry"]], predicate="within")
    assert len(hits) == len(a) and hits.index.is_unique
    assert (hits.district_code == hits.code_right).all()
    own = d.set_index("code").geometry.buffer(1.0).loc[a.district_code].to_numpy()
    assert shapely.within(np.asarray(a.geometry.array), np.asarray(own)).all()


def test_postcodes_lie_in_their_areas(county):
    p, a = county.postcodes, county.areas
    assert list(p.columns) == ["postcode", "district_code", "lsoa11_code", "source", "vintage", "geometry"]
    assert p.crs.to_epsg() == 4326
    assert p.postcode.is_unique and p.postcode.str.match(POSTCODE).all()
    assert p.postcode.str.startswith("Z").all()
    assert (p.source == "synthetic").all() and (p.vintage == "synthetic").all() and p.lsoa11_code.isna().all()
    hits = gpd.sjoin(p, a[["code", "district_code", "geometry"]], predicate="within")
    assert len(hits) == len(p) and hits.index.is_unique
    assert (hits.district_code_left == hits.district_code_right).all()
    per_area = hits.groupby("code").size()
    assert len(per_area) == len(a) and per_area.between(30, 40).all()


def test_need_indicators(county):
    need, n = county.need, len(county.areas)
    assert list(need.columns) == ["area_code", "indicator", "vintage", "score", "rank", "decile"]
    assert set(need.indicator) == set(synth.NEED_INDICATORS) and len(need) == 8 * n
    assert (need.vintage == 2025).all()
    for _, one in need.groupby("indicator"):
        assert set(one.area_code) == set(county.areas.code)
        assert sorted(one["rank"]) == list(range(1, n + 1))
        ordered = one.sort_values("rank")
        assert (np.diff(ordered.score.to_numpy()) <= 0).all()  # rank 1 = highest score = most deprived
        counts = one.decile.value_counts()
        assert sorted(counts.index) == list(range(1, 11))
        assert counts.max() - counts.min() <= 1
        assert ordered.decile.is_monotonic_increasing


def test_deprivation_is_spatially_clustered(county):
    a = county.areas.to_crs(27700)
    imd = county.need[county.need.indicator == "imd"].set_index("area_code").score
    a["score"] = imd.loc[a.code].to_numpy()
    pairs = gpd.sjoin(a, a, predicate="touches")
    neighbours = pairs.groupby(level=0).score_right.mean()
    assert np.corrcoef(a.score.loc[neighbours.index], neighbours)[0, 1] > 0.5
    imd_scores = county.need[county.need.indicator == "imd"].score
    assert imd_scores.min() >= 0 and imd_scores.max() > 3 * imd_scores.median()


def test_registers_shape(county):
    regs = county.registers
    assert list(regs) == ["synth-organisations", "synth-associations", "synth-individuals"]
    assert sum(len(r) for r in regs.values()) == 4000
    assert [len(r) for r in regs.values()] == [1600, 1600, 800]
    tiers = {"synth-organisations": "organisation", "synth-associations": "association",
             "synth-individuals": "individual"}
    for name, frame in regs.items():
        assert tuple(frame.columns) == synth.REGISTER_COLUMNS
        assert frame.source_key.is_unique
        assert (frame.tier == tiers[name]).all()
        assert set(frame.category) == set(synth.CATEGORIES[tiers[name]])
        assert not frame.isna().any().any()  # blanks are "", as in a spreadsheet
        tokens = frame.offers.str.split(";").explode().str.strip()
        assert set(tokens) <= set(synth.OFFERS) and (frame.offers != "").all()
        assert set(frame.status) == {"open", "closed", "temporarily closed"}
        assert (frame.status == "open").mean() > 0.8
        assert set(frame.visibility) == {"public", "restricted"}
        assert (frame.visibility == "public").mean() > 0.6
        assert (frame.uprn == "").mean() > 0.8
        dates = pd.to_datetime(frame.last_verified, format="%Y-%m-%d")
        stale = dates < pd.Timestamp(synth.REFERENCE_DATE) - pd.DateOffset(months=12)
        assert 0.05 < stale.mean() < 0.5
    individuals = regs["synth-individuals"]
    assert set(individuals.consent) == {"yes", "no"} and (individuals.consent == "yes").mean() > 0.85
    assert (individuals.address == "").all() and (individuals.url == "").all()


def test_register_locations(county):
    rows = pd.concat(county.registers.values(), ignore_index=True)
    gazetteer = set(county.postcodes.postcode)
    has_xy = rows.lon != ""
    assert (has_xy == (rows.lat != "")).all()
    assert 0.45 < has_xy.mean() < 0.55
    # rows with coordinates: points inside the county, in the area of their postcode
    xy = rows[has_xy]
    points = gpd.GeoDataFrame(xy[["postcode"]], geometry=gpd.points_from_xy(xy.lon.astype(float),
                                                                           xy.lat.astype(float)), crs=4326)
    hits = gpd.sjoin(points, county.areas[["code", "geometry"]], predicate="within")
    assert len(hits) == len(points)
    area_of_postcode = gpd.sjoin(county.postcodes, county.areas[["code", "geometry"]],
                                 predicate="within").set_index("postcode").code
    assert (area_of_postcode.loc[hits.postcode].to_numpy() == hits.code.to_numpy()).all()
    # postcode-only rows: mostly canonical, some messy (fixable), a few invented (to quarantine)
    only = rows.loc[~has_xy, "postcode"]
    exact = only.isin(gazetteer)
    fixable = ~exact & _normalise(only).isin(gazetteer)
    invented = ~exact & ~fixable
    assert 0.005 < fixable.mean() < 0.04
    assert 0.002 < invented.mean() < 0.025
    assert only[invented].str.match(POSTCODE).all()
    assert rows.loc[has_xy, "postcode"].isin(gazetteer).all()


def test_write_reads_back(county, tmp_path):
    out = county.write(tmp_path / "pack")
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == ["areas_2021.geojson", "districts.geojson", "need_imd2025.csv", "postcodes.csv",
                     "registers/synth-associations.csv", "registers/synth-individuals.csv",
                     "registers/synth-organisations.csv"]
    areas = pyogrio.read_dataframe(out / "areas_2021.geojson")
    assert list(areas.columns) == ["code", "name", "district_code", "vintage", "population", "geometry"]
    assert len(areas) == len(county.areas) and areas.crs.to_epsg() == 4326
    districts = pyogrio.read_dataframe(out / "districts.geojson")
    assert list(districts.code) == list(county.districts.code)
    need = pd.read_csv(out / "need_imd2025.csv")
    assert list(need.columns) == ["area_code", "indicator", "vintage", "score", "rank", "decile"]
    assert len(need) == len(county.need)
    postcodes = pd.read_csv(out / "postcodes.csv")
    assert list(postcodes.columns) == ["postcode", "district_code", "lon", "lat", "source", "vintage"]
    assert len(postcodes) == len(county.postcodes)
    orgs = pd.read_csv(out / "registers" / "synth-organisations.csv", dtype=str, keep_default_na=False)
    assert (orgs == county.registers["synth-organisations"]).all().all()


@pytest.mark.slow
def test_england_scale():
    england = synth.generate(33_755, 1_000_000, seed=1)
    assert len(england.areas) == 33_755
    assert len(england.districts) == synth.MAX_DISTRICTS
    assert sum(len(r) for r in england.registers.values()) == 1_000_000
    assert len(england.need) == 8 * 33_755
    assert england.postcodes.postcode.is_unique
    assert shapely.is_valid(np.asarray(england.areas.geometry.array)).all()
    bng = england.areas.to_crs(27700)
    assert bng.total_bounds[0] > 0 and bng.total_bounds[1] > 0  # still on the British National Grid
