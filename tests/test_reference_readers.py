"""Reference readers against the real Staffordshire pack, plus small bad files written per test."""

import gzip

import geopandas
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Polygon

from asset_map.errors import InputError
from asset_map.reference.boundaries import read_areas, read_districts
from asset_map.reference.need import INDICATOR_LABELS, NeedTable, read_need
from asset_map.reference.postcodes import (
    normalise_postcode,
    normalise_postcodes,
    postcode_sector,
    read_postcodes,
    sectors,
)

DISTRICTS = {
    "E07000192": "Cannock Chase",
    "E07000193": "East Staffordshire",
    "E07000194": "Lichfield",
    "E07000195": "Newcastle-under-Lyme",
    "E07000196": "South Staffordshire",
    "E07000197": "Stafford",
    "E07000198": "Staffordshire Moorlands",
    "E07000199": "Tamworth",
    "E06000021": "Stoke-on-Trent",
}
DOMAINS = ["income", "employment", "education", "health", "crime", "barriers", "living_environment"]
IMD_INDICATORS = ["imd"] + [f"imd_{d}" for d in DOMAINS]
CODEPOINT_HEADER = (
    "Postcode,Positional_quality_indicator,Eastings,Northings,Country_code,NHS_regional_HA_code,NHS_HA_code,"
    "Admin_county_code,Admin_district_code,Admin_ward_code"
)
FILE_1 = "File_1_-_IMD2019_Index_of_Multiple_Deprivation.csv.gz"
FILE_2 = "File_2_-_IoD2019_Domains_of_Deprivation.csv.gz"
FILE_6 = "File_6_-_IoD2019_Population_Denominators.csv.gz"


def _assert_names(err, *parts):
    message = str(err.value)
    for part in parts:
        assert str(part) in message, f"{part!r} not in {message!r}"


# --- postcodes: normalisation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("st16 2dh", "ST16 2DH"),
        ("ST162DH", "ST16 2DH"),
        (" ST16  2DH ", "ST16 2DH"),
        ("B797AF", "B79 7AF"),
        ("B79 7AF", "B79 7AF"),
        ("ST161AA", "ST16 1AA"),
        ("ec1a1bb", "EC1A 1BB"),
        ("W1A 0AX", "W1A 0AX"),
        ("st16\u00a02dh", "ST16 2DH"),
        ("gir 0aa", "GIR 0AA"),
        ("", None),
        ("   ", None),
        (None, None),
        (float("nan"), None),
        (pd.NA, None),
        ("hello", None),
        ("ST16 2D", None),
        ("ST16-2DH", None),
        ("QT1 1AA", None),  # Q is never the first letter
        ("ST16 2CH", None),  # C is never an inward letter
        ("ST16 2DH X", None),
    ],
)
def test_normalise_postcode(raw, expected):
    assert normalise_postcode(raw) == expected
    vectorised = normalise_postcodes(pd.Series([raw], dtype=object)).iloc[0]
    assert (vectorised is pd.NA) if expected is None else vectorised == expected


def test_normalise_postcodes_keeps_index_and_gives_na():
    series = pd.Series(["st16 2dh", None, "bad", "B797AF", np.nan, "ST16 2DH"], index=list("abcdef"))
    result = normalise_postcodes(series)
    assert str(result.dtype) == "string"
    assert list(result.index) == list("abcdef")
    assert result.tolist() == ["ST16 2DH", pd.NA, pd.NA, "B79 7AF", pd.NA, "ST16 2DH"]


def test_sectors():
    assert postcode_sector("st162dh") == "ST16 2"
    assert postcode_sector("B797AF") == "B79 7"
    assert postcode_sector("nonsense") is None
    assert sectors(pd.Series(["ST16 2DH", "x", None])).tolist() == ["ST16 2", pd.NA, pd.NA]


def test_normalise_postcodes_handles_a_million_messy_postcodes(pack):
    """Correctness at register scale; its speed is measured by the import benchmark, not asserted here."""
    known = pd.read_csv(pack / "postcodes" / "codepoint_open_2014.csv", usecols=["Postcode"])["Postcode"]
    rng = np.random.default_rng(0)
    picked = known.to_numpy()[rng.integers(0, len(known), 1_000_000)]
    # Registers write them every which way: lower case, no space, padded.
    messy = pd.Series(np.where(np.arange(len(picked)) % 3 == 0, np.char.lower(picked.astype(str)), picked))
    result = normalise_postcodes(messy)
    assert result.notna().all()
    assert (result.str.replace(" ", "") == pd.Series(picked).str.replace(" ", "").str.upper()).all()


# --- postcodes: gazetteers ----------------------------------------------------------------------------------


def test_codepoint_open(pack):
    gdf = read_postcodes(pack / "postcodes" / "codepoint_open_2014.csv")
    assert list(gdf.columns) == ["postcode", "district_code", "lsoa11_code", "source", "vintage", "geometry"]
    assert len(gdf) == 28_381
    assert gdf.crs.to_epsg() == 4326
    assert gdf.attrs["rejected"].empty
    assert set(gdf["district_code"]) == set(DISTRICTS)
    assert gdf["lsoa11_code"].isna().all()
    assert set(gdf["source"]) == {"codepoint-open"}
    assert set(gdf["vintage"]) == {"2014"}
    assert gdf["postcode"].is_unique
    # Created after 2014, so the gazetteer does not know them.
    assert not gdf["postcode"].isin(["ST16 2DH", "ST5 1BL"]).any()

    # ST161AA,10,391803,322843 in the file: the 7-character form, converted from EPSG:27700 by pyproj.
    row = gdf.loc[gdf["postcode"] == "ST16 1AA"].iloc[0]
    lon, lat = Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True).transform(391803, 322843)
    assert row["district_code"] == "E07000197"
    assert row.geometry.x == pytest.approx(lon, abs=1e-9)
    assert row.geometry.y == pytest.approx(lat, abs=1e-9)
    assert 52.7 < row.geometry.y < 52.9 and -2.2 < row.geometry.x < -2.0  # Stafford, not swapped


def test_codepoint_outside_area(pack):
    gdf = read_postcodes(pack / "postcodes" / "codepoint_open_2014_outside_area.csv", vintage="2014-08")
    assert len(gdf) == 5_398
    assert not gdf["district_code"].isin(list(DISTRICTS)).any()
    assert set(gdf["vintage"]) == {"2014-08"}


def test_codepoint_headerless_gz(pack, tmp_path):
    lines = (pack / "postcodes" / "codepoint_open_2014.csv").read_text().splitlines()
    path = tmp_path / "st.csv.gz"
    with gzip.open(path, "wt") as out:
        out.write("\n".join(lines[1:101]) + "\n")
    gdf = read_postcodes(path, source="codepoint-open", vintage="2014-08")
    assert len(gdf) == 100
    assert gdf["postcode"].iloc[0] == normalise_postcode(lines[1].split(",")[0])
    assert gdf["district_code"].iloc[0] == lines[1].split(",")[8]


def test_nspl(pack):
    gdf = read_postcodes(pack / "postcodes" / "nspl_nov2021_TF.csv")
    assert list(gdf.columns) == ["postcode", "district_code", "lsoa11_code", "source", "vintage", "geometry"]
    assert len(gdf) == 346 - 18  # 18 terminated postcodes left out
    assert gdf.attrs["terminated"] == 18
    assert gdf.attrs["rejected"].empty
    assert set(gdf["source"]) == {"nspl"}
    assert set(gdf["vintage"]) == {"2021-11"}
    assert set(gdf["district_code"]) <= set(DISTRICTS)
    assert gdf["lsoa11_code"].str.match(r"^E01\d{6}$").all()
    # TF108BF ... lat 52.787480, long -2.367136
    point = gdf.loc[gdf["postcode"] == "TF10 8BF"].geometry.iloc[0]
    assert (point.x, point.y) == pytest.approx((-2.367136, 52.787480))
    assert "TF10 8DZ" not in set(gdf["postcode"])  # terminated


def test_nspl_without_location_is_rejected(tmp_path):
    path = tmp_path / "nspl.csv"
    path.write_text(
        "pcd,pcds,doterm,oseast1m,osnrth1m,laua,lsoa11,lat,long\n"
        "ST161AA,ST16 1AA,,391803,322843,E07000197,E01029700,52.80,-2.12\n"
        "ST161AB,ST16 1AB,,,,E07000197,E01029700,99.999999,0.000000\n"
        "ST161AD,ST16 1AD,,391803,322843,E07000197,E01029700,,\n"
    )
    gdf = read_postcodes(path)
    assert gdf["postcode"].tolist() == ["ST16 1AA", "ST16 1AD"]  # the second from its grid reference
    assert gdf.geometry.iloc[1].y == pytest.approx(52.8, abs=0.01)
    rejected = gdf.attrs["rejected"]
    assert rejected.to_dict("records") == [{"row": 3, "field": "lat", "value": "99.999999", "reason": "no coordinates"}]


def test_postcode_rows_rejected_not_dropped(tmp_path):
    path = tmp_path / "codepoint_bad.csv"
    path.write_text(
        CODEPOINT_HEADER + "\n"
        "ST1 1AP,10,388248,347480,E92000001,E19000001,E18000005,,E06000021,E05008727\n"
        "NOTAPC,10,388372,347659,E92000001,E19000001,E18000005,,E06000021,E05008727\n"
        "ST1 1DA,90,0,0,E92000001,E19000001,E18000005,,E06000021,E05008727\n"
        "ST11AP,10,388248,347480,E92000001,E19000001,E18000005,,,E05008727\n"
        "ST1 1DB,10,388301,347610,E92000001,E19000001,E18000005,,,E05008727\n"
    )
    gdf = read_postcodes(path)
    assert gdf["postcode"].tolist() == ["ST1 1AP", "ST1 1DB"]
    assert gdf["district_code"].tolist() == ["E06000021", None]
    assert gdf["vintage"].tolist() == [None, None]
    rejected = gdf.attrs["rejected"]
    assert list(rejected.columns) == ["row", "field", "value", "reason"]
    assert rejected[["row", "field", "value"]].values.tolist() == [
        [3, "Postcode", "NOTAPC"],
        [4, "Eastings", "0"],
        [5, "Postcode", "ST11AP"],
    ]
    assert rejected["reason"].tolist() == [
        "not a valid UK postcode",
        "no coordinates",
        "repeats the postcode on row 2",
    ]


def test_postcode_table_layout(tmp_path):
    path = tmp_path / "postcodes.csv"
    path.write_text(
        "postcode,district_code,lon,lat,source,vintage\n"
        "st161aa,E07000197,-2.12,52.80,test-source,2024-01\n"
        "ST16 1AB,,-2.13,52.81,,\n"
        "ST16 1AD,E07000197,,,test-source,2024-01\n"
    )
    gdf = read_postcodes(path)
    assert gdf["postcode"].tolist() == ["ST16 1AA", "ST16 1AB"]
    assert gdf["district_code"].tolist() == ["E07000197", None]
    assert gdf["source"].tolist() == ["test-source", "postcodes"]  # a blank source falls back to the file's name
    assert gdf["vintage"].tolist() == ["2024-01", None]
    assert (gdf.geometry.x.iloc[0], gdf.geometry.y.iloc[0]) == pytest.approx((-2.12, 52.80))
    assert gdf.attrs["rejected"]["row"].tolist() == [4]
    overridden = read_postcodes(path, source="mine", vintage="2025-02")
    assert set(overridden["source"]) == {"mine"} and set(overridden["vintage"]) == {"2025-02"}


def test_unknown_postcode_layout(tmp_path):
    path = tmp_path / "whatever.csv"
    path.write_text("name,town\nLibrary,Stafford\n")
    with pytest.raises(InputError) as err:
        read_postcodes(path)
    _assert_names(err, "whatever.csv", "name", "town")


# --- boundaries ---------------------------------------------------------------------------------------------


def test_districts(pack):
    gdf = read_districts(pack / "boundaries" / "districts.geojson")
    assert list(gdf.columns) == ["code", "name", "geometry"]
    assert dict(zip(gdf["code"], gdf["name"])) == DISTRICTS
    assert gdf.crs.to_epsg() == 4326
    # Seven of the nine polygons in the file are invalid as published; all come back repaired.
    assert gdf.is_valid.all()
    assert set(gdf.geom_type) == {"MultiPolygon"}
    stafford = gdf.loc[gdf["code"] == "E07000197"].geometry.iloc[0]
    assert stafford.contains(shapely.Point(-2.1169, 52.8066))  # Stafford town centre (lon, lat)


def test_districts_england(pack):
    gdf = read_districts(pack / "boundaries" / "districts_england_generalised.geojson")
    assert len(gdf) == 309
    assert set(DISTRICTS) <= set(gdf["code"])


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_districts_bng_without_crs(pack, tmp_path):
    bng = read_districts(pack / "boundaries" / "districts.geojson").to_crs("EPSG:27700")
    path = tmp_path / "districts_bng.gpkg"
    bng.set_crs(None, allow_override=True).rename(columns={"code": "LAD24CD", "name": "LAD24NM"}).to_file(path)
    gdf = read_districts(path)
    assert gdf.crs.to_epsg() == 4326
    assert dict(zip(gdf["code"], gdf["name"])) == DISTRICTS
    assert -2.5 < gdf.total_bounds[0] < -1.5 and 52.3 < gdf.total_bounds[1] < 53.3


def test_district_invalid_geometry_is_repaired(tmp_path):
    bowtie = Polygon([(-2.0, 52.0), (-1.0, 53.0), (-1.0, 52.0), (-2.0, 53.0)])
    path = tmp_path / "bowtie.geojson"
    geopandas.GeoDataFrame({"code": ["E07000001"], "name": ["Bow"]}, geometry=[bowtie], crs="EPSG:4326").to_file(path)
    gdf = read_districts(path)
    assert gdf.is_valid.all()
    assert gdf.geometry.iloc[0].geom_type == "MultiPolygon"
    assert len(gdf.geometry.iloc[0].geoms) == 2


@pytest.mark.parametrize(
    ("codes", "row", "value"),
    [(["E07000001", "E07000001"], 2, "E07000001"), (["E07000001", " "], 2, " ")],
)
def test_district_bad_codes(tmp_path, codes, row, value):
    square = Polygon([(-2, 52), (-1, 52), (-1, 53), (-2, 53)])
    path = tmp_path / "bad_districts.geojson"
    geopandas.GeoDataFrame(
        {"lad_code": codes, "lad_name": ["A", "B"]}, geometry=[square, square], crs="EPSG:4326"
    ).to_file(path)
    with pytest.raises(InputError) as err:
        read_districts(path)
    _assert_names(err, "bad_districts.geojson", f"feature {row}", "lad_code", repr(value))


def test_districts_without_code_field(tmp_path):
    path = tmp_path / "nocode.geojson"
    geopandas.GeoDataFrame({"label": ["x"]}, geometry=[shapely.box(-2, 52, -1, 53)], crs="EPSG:4326").to_file(path)
    with pytest.raises(InputError) as err:
        read_districts(path)
    _assert_names(err, "nocode.geojson", "label")


def test_lsoa2011_areas(pack):
    files = sorted((pack / "boundaries" / "lsoa2011").glob("*.geojson"))
    assert len(files) == 9
    gdf = read_areas(files, vintage=2011)
    assert list(gdf.columns) == ["code", "name", "district_code", "vintage", "population", "geometry"]
    assert len(gdf) == 687
    assert gdf["code"].is_unique and gdf["code"].str.match(r"^E01\d{6}$").all()
    assert set(gdf["vintage"]) == {2011}
    assert str(gdf["population"].dtype) == "Int64" and gdf["population"].isna().all()
    assert gdf.crs.to_epsg() == 4326 and gdf.is_valid.all() and set(gdf.geom_type) == {"MultiPolygon"}
    for path in files:
        codes = set(geopandas.read_file(path, engine="pyogrio")["LSOA11CD"])
        assert set(gdf.loc[gdf["code"].isin(codes), "district_code"]) == {path.stem}
    assert gdf.loc[gdf["code"] == "E01029820", "name"].item() == "Tamworth 003A"
    # A folder stands for its files.
    assert len(read_areas([pack / "boundaries" / "lsoa2011"], vintage=2011)) == 687


def test_lsoa2021_areas(pack):
    gdf = read_areas([pack / "boundaries" / "lsoa2021_imd2025.geojson"], vintage=2021)
    assert len(gdf) == 697
    assert set(gdf["district_code"]) == set(DISTRICTS)
    assert set(gdf["vintage"]) == {2021}
    assert gdf["population"].notna().all()
    assert gdf.loc[gdf["code"] == "E01014210", "population"].item() == 1562


def test_area_vintage_errors(pack):
    with pytest.raises(InputError) as err:
        read_areas([pack / "boundaries" / "lsoa2011"], vintage=2015)
    _assert_names(err, "2015")
    with pytest.raises(InputError) as err:
        read_areas([pack / "boundaries" / "lsoa2021_imd2025.geojson"], vintage=2011)
    _assert_names(err, "lsoa2021_imd2025.geojson", "lsoa21cd")


def test_duplicate_area_across_files(pack, tmp_path):
    original = pack / "boundaries" / "lsoa2011" / "E07000199.geojson"
    copy = tmp_path / "E07000199_copy.geojson"
    copy.write_bytes(original.read_bytes())
    with pytest.raises(InputError) as err:
        read_areas([original, copy], vintage=2011)
    _assert_names(err, "E07000199.geojson", "E07000199_copy.geojson", "E01029820")


# --- need ---------------------------------------------------------------------------------------------------


def test_imd2019_lsoa11(pack):
    table = read_need(pack / "deprivation" / "imd2019_lsoa11.csv", vintage=2019)
    assert isinstance(table, NeedTable)
    need = table.need
    assert list(need.columns) == ["area_code", "indicator", "vintage", "score", "rank", "decile"]
    assert need["area_code"].nunique() == 687
    assert len(need) == 687 * 8
    assert sorted(need["indicator"].unique()) == sorted(IMD_INDICATORS)
    assert set(need["decile"]) == set(range(1, 11))
    assert need["score"].isna().all()  # this file has ranks and deciles only
    assert str(need["rank"].dtype) == "Int64" and str(need["decile"].dtype) == "Int64"
    assert set(need["vintage"]) == {2019}
    # E01014210: IMD rank 2167 decile 1, Income rank 2692, Barriers decile 8; population 1433
    by = need.set_index(["area_code", "indicator"])
    assert by.loc[("E01014210", "imd"), "rank"] == 2167
    assert by.loc[("E01014210", "imd"), "decile"] == 1
    assert by.loc[("E01014210", "imd_income"), "rank"] == 2692
    assert by.loc[("E01014210", "imd_barriers"), "decile"] == 8
    population = table.population
    assert list(population.columns) == ["area_code", "population"]
    assert len(population) == 687
    assert population.set_index("area_code").loc["E01014210", "population"] == 1433
    assert all(key in INDICATOR_LABELS for key in IMD_INDICATORS)


def test_file_1_thousands_separators(pack):
    table = read_need(pack / "deprivation" / FILE_1, vintage=2019)
    need = table.need
    assert len(need) == 32_844
    assert set(need["indicator"]) == {"imd"}
    first = need.loc[need["area_code"] == "E01000001"].iloc[0]
    assert first["rank"] == 29199  # written "29,199"
    assert first["decile"] == 9
    assert table.population.empty and list(table.population.columns) == ["area_code", "population"]


def test_file_2_domains(pack):
    need = read_need(pack / "deprivation" / FILE_2, vintage=2019).need
    assert len(need) == 32_844 * 8
    assert sorted(need["indicator"].unique()) == sorted(IMD_INDICATORS)
    assert need["rank"].between(1, 32_844).all()


def test_file_6_population(pack):
    table = read_need(pack / "deprivation" / FILE_6, vintage=2019)
    assert table.need.empty
    assert len(table.population) == 32_844
    by = table.population.set_index("area_code")["population"]
    assert by["E01000001"] == 1296  # written "1,296"
    assert by["E01014210"] == 1433


def test_imd2025(pack):
    need = read_need(pack / "deprivation" / "imd2025_england_lsoa21.csv.gz", vintage=2025).need
    assert need["area_code"].nunique() == 33_755
    assert len(need) == 33_755 * 8
    assert sorted(need["indicator"].unique()) == sorted(IMD_INDICATORS)
    assert need["score"].notna().all()
    row = need.set_index(["area_code", "indicator"]).loc[("E01014210", "imd")]
    assert (row["score"], row["rank"], row["decile"]) == (44.1, 3572, 2)
    barriers = need.set_index(["area_code", "indicator"]).loc[("E01014210", "imd_barriers")]
    assert barriers["score"] == pytest.approx(18.03)  # Housing_and_Services_score


def test_generic_need_file(tmp_path):
    path = tmp_path / "loneliness.csv"
    path.write_text("lsoa,score,rank,decile\nE01014210,3.5,10,1\nE01014211,,20,2\n")
    need = read_need(path, indicator="loneliness", vintage=2023).need
    assert need["indicator"].tolist() == ["loneliness", "loneliness"]
    assert need["area_code"].tolist() == ["E01014210", "E01014211"]
    assert need["score"].iloc[0] == 3.5 and np.isnan(need["score"].iloc[1])
    assert need["rank"].tolist() == [10, 20]


def test_long_need_table(tmp_path):
    path = tmp_path / "need_long.csv"
    path.write_text(
        "area_code,indicator,vintage,score,rank,decile\n"
        "E01014210,imd,2025,44.1,3572,2\n"
        "E01014210,imd_income,2025,0.454,3657,2\n"
        "E01014211,imd,2025,57.416,1278,1\n"
    )
    need = read_need(path, vintage=2025).need
    assert need[["area_code", "indicator"]].values.tolist() == [
        ["E01014210", "imd"],
        ["E01014210", "imd_income"],
        ["E01014211", "imd"],
    ]
    assert need["rank"].tolist() == [3572, 3657, 1278]
    with pytest.raises(InputError) as err:
        read_need(path, vintage=2019)
    _assert_names(err, "need_long.csv", "row 2", "'vintage'", "'2025'")


@pytest.mark.parametrize(
    ("content", "row", "field", "value"),
    [
        ("area_code,rank,decile\nE01014210,10,1\nE01014211,abc,2\n", 3, "rank", "abc"),
        ("area_code,rank,decile\nE01014210,10,11\n", 2, "decile", "11"),
        ("area_code,rank,decile\nE01014210,10,1\nE01014210,11,2\n", 3, "area_code", "E01014210"),
    ],
)
def test_bad_need_values(tmp_path, content, row, field, value):
    path = tmp_path / "bad_need.csv"
    path.write_text(content)
    with pytest.raises(InputError) as err:
        read_need(path, indicator="loneliness", vintage=2023)
    _assert_names(err, "bad_need.csv", f"row {row}", repr(field), repr(value))


def test_need_without_area_column(tmp_path):
    path = tmp_path / "no_area.csv"
    path.write_text("place,score\nStafford,1.5\n")
    with pytest.raises(InputError) as err:
        read_need(path, vintage=2023)
    _assert_names(err, "no_area.csv", "place", "score")
