"""Reading register files of every format, and hostile ones: each is a clear InputError or a correct import."""

import os

import geopandas as gpd
import openpyxl
import pytest
from shapely.geometry import Point

from asset_map.errors import InputError
from asset_map.registers.readers import ROW, read_register

HEADER = "name,category,postcode\n"


def test_csv_utf8_with_and_without_bom_and_cp1252(tmp_path):
    text = HEADER + "Café Olé,business,ST16 2DH\n"
    for name, data in (("plain.csv", text.encode("utf-8")), ("bom.csv", b"\xef\xbb\xbf" + text.encode("utf-8")),
                       ("excel.csv", text.encode("cp1252"))):
        path = tmp_path / name
        path.write_bytes(data)
        frame = read_register(path)
        assert list(frame.columns) == ["name", "category", "postcode", ROW], name
        assert frame.loc[0, "name"] == "Café Olé", name


def test_semicolon_csv_and_row_numbers_with_blank_lines_and_quoted_newlines(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text('name;category;postcode\n"Hall\nannexe";community centre;ST16 2DH\n\nClub;sports club;ST5 1BL\n')
    frame = read_register(path)
    assert frame["name"].tolist() == ["Hall\nannexe", "Club"]
    assert frame[ROW].tolist() == [2, 4]


def test_mixed_line_endings_import_correctly(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"name,category,postcode\r\nA,park,ST16 2DH\nB,park,ST5 1BL\rC,park,WS11 1AA\r\n")
    frame = read_register(path)
    assert frame["name"].tolist() == ["A", "B", "C"]
    assert frame["postcode"].tolist() == ["ST16 2DH", "ST5 1BL", "WS11 1AA"]
    assert frame[ROW].tolist() == [2, 3, 4]


def test_cells_starting_with_equals_stay_text(tmp_path):
    path = tmp_path / "formula.csv"
    path.write_text(HEADER + '"=HYPERLINK(""http://evil"")",park,ST16 2DH\n=1+2,park,ST5 1BL\n')
    frame = read_register(path)
    assert frame["name"].tolist() == ['=HYPERLINK("http://evil")', "=1+2"]


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"\n\n  \n", "empty"),
    (b"\x00\x01\x02PK\xff\xfe binary junk" * 100, "not a text CSV"),
    (b"name,category\n", "no rows"),
])
def test_hostile_small_files(tmp_path, content, message):
    path = tmp_path / "junk.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_register(path)
    assert message in err.value.user_message and "junk.csv" in err.value.user_message


def test_fifty_megabytes_of_garbage(tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_bytes(os.urandom(50 * 1024 * 1024))
    with pytest.raises(InputError, match="not a text CSV"):
        read_register(path)


def test_ten_thousand_columns_are_refused(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(10_000)) + "\n" + ",".join("x" * 10_000) + "\n")
    with pytest.raises(InputError, match="10,000 columns"):
        read_register(path)


def test_ragged_csv_names_the_line(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text(HEADER + "A,park,ST16 2DH\nB,park,ST5 1BL,extra,more\n")
    with pytest.raises(InputError, match="ragged.csv: not a readable CSV file .*line 3"):
        read_register(path)


def test_xlsx_values_not_formulas(tmp_path):
    path = tmp_path / "sheet.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["name", "category", "postcode", "year"])
    ws.append(["Leek Library", "library", "ST13 6DW", 2019])
    ws.append(['=CONCATENATE("Stone"," Library")', "library", "ST15 8AT", 2020.0])
    wb.save(path)
    frame = read_register(path)
    assert frame["name"].tolist()[0] == "Leek Library"
    assert frame["year"].tolist() == ["2019", "2020"]
    assert frame[ROW].tolist() == [2, 3]
    # openpyxl saves no calculated value for the formula: it is reported, never evaluated or dropped.
    assert frame.attrs["uncalculated"] == [(3, "name", '=CONCATENATE("Stone"," Library")')]


def test_xlsx_named_csv_and_broken_xlsx(tmp_path):
    fake = tmp_path / "fake.xlsx"
    fake.write_text("name\nA\n")
    with pytest.raises(InputError, match="not an Excel"):
        read_register(fake)


def test_geojson_and_geopackage(tmp_path):
    gdf = gpd.GeoDataFrame({"name": ["Park A", "Hall B"], "category": ["park", "community centre"],
                            "capacity": [10, None]},
                           geometry=[Point(-2.1, 52.8), Point(400000, 320000).buffer(10)], crs=4326)
    gdf = gdf.set_geometry([Point(-2.1, 52.8), Point(-2.0, 52.7).buffer(0.001)])
    for name, driver in (("a.geojson", "GeoJSON"), ("a.gpkg", "GPKG")):
        path = tmp_path / name
        gdf.to_file(path, driver=driver)
        frame = read_register(path)
        assert frame["name"].tolist() == ["Park A", "Hall B"]
        assert frame["lon"].tolist()[0] == "-2.1" and frame["lat"].tolist()[0] == "52.8"
        assert abs(float(frame["lon"].iloc[1]) + 2.0) < 0.002
        assert frame["capacity"].tolist() == ["10", ""]
        assert frame[ROW].tolist() == [1, 2]


def test_unsupported_type_and_missing_file(tmp_path):
    path = tmp_path / "a.pdf"
    path.write_bytes(b"%PDF")
    with pytest.raises(InputError, match="unsupported file type"):
        read_register(path)
    with pytest.raises(InputError, match="not found"):
        read_register(tmp_path / "nope.csv")
