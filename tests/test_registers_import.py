"""Importing the pack's real library registers into a fresh database: placement, quarantine, re-import, withdrawal,
duplicates across registers and atomicity."""

import uuid

import pandas as pd
import pytest
from sqlalchemy import text

from asset_map.config import load_settings
from asset_map.reference.postcodes import normalise_postcodes
from asset_map.registers import importer
from asset_map.store.db import make_engine

LIBRARIES = ["libraries_staffordshire.csv", "libraries_stoke.csv", "libraries_2023.csv"]


@pytest.fixture(scope="module")
def imported(pg_server, reference_template, pack):
    """One database with the reference data and the three library registers imported; read-only for the tests."""
    name = f"am_reg_{uuid.uuid4().hex[:8]}"
    url = pg_server.create(name, template=reference_template)
    engine = make_engine(url, load_settings())
    reports = {f: importer.import_register(engine, pack / "registers" / f, register=f[:-4]) for f in LIBRARIES}
    yield engine, reports
    engine.dispose()
    pg_server.drop(name)


def _assets(engine, register):
    with engine.connect() as conn:
        return pd.read_sql(text("SELECT * FROM assets WHERE register = :r ORDER BY source_row"), conn,
                           params={"r": register})


@pytest.mark.parametrize("file", LIBRARIES)
def test_every_row_is_placed_or_quarantined_with_a_reason(imported, pack, file):
    engine, reports = imported
    report = reports[file]
    rows = len(pd.read_csv(pack / "registers" / file, dtype=str))
    assert report.rows_read == rows
    assert report.imported + report.quarantined == rows
    stored = _assets(engine, file[:-4])
    assert len(stored) == report.imported
    assert stored["district_code"].notna().all()
    assert stored["lsoa11_code"].notna().all() and stored["lsoa21_code"].notna().all()
    with engine.connect() as conn:
        quarantined = conn.execute(text("SELECT source_row, problems FROM quarantine WHERE register = :r"),
                                   {"r": file[:-4]}).all()
    assert len(quarantined) == report.quarantined
    for _row, problems in quarantined:
        assert any(p["severity"] == "error" and p["reason"] for p in problems)


@pytest.mark.parametrize("file", LIBRARIES)
def test_district_matches_code_point_for_the_postcode(imported, pack, file):
    engine, _ = imported
    codepoint = pd.read_csv(pack / "postcodes" / "codepoint_open_2014.csv", dtype=str)
    district_of = dict(zip(normalise_postcodes(codepoint["Postcode"]), codepoint["Admin_district_code"]))
    stored = _assets(engine, file[:-4])
    checked = 0
    for _, asset in stored.iterrows():
        expected = district_of.get(asset["postcode"])
        if expected is None:
            # Postcodes newer than the 2014 gazetteer are placed by their sector and flagged; see the next test.
            assert asset["geocode_method"] == "postcode_sector"
            continue
        assert asset["district_code"] == expected, (asset["name"], asset["postcode"])
        checked += 1
    assert checked >= len(stored) - 3


def test_lsoas_lie_in_the_assets_district(imported):
    engine, _ = imported
    with engine.connect() as conn:
        wrong = conn.execute(text("""
            SELECT a.name, a.district_code, l11.district_code, l21.district_code FROM assets a
            JOIN areas l11 ON l11.code = a.lsoa11_code AND l11.vintage = 2011
            JOIN areas l21 ON l21.code = a.lsoa21_code AND l21.vintage = 2021
            WHERE l11.district_code <> a.district_code OR l21.district_code <> a.district_code""")).all()
        total = conn.execute(text("SELECT count(*) FROM assets")).scalar()
        inside = conn.execute(text("""
            SELECT count(*) FROM assets a JOIN districts d ON d.code = a.district_code
            WHERE ST_Intersects(d.geom, a.geom) OR a.area_flag IS NOT NULL""")).scalar()
    assert wrong == []
    assert inside == total


def test_new_postcodes_are_reported_and_placed_by_sector(imported):
    engine, reports = imported
    report = reports["libraries_staffordshire.csv"]
    sector = [p for p in report.problems if p["value"] in ("ST16 2DH", "ST5 1BL")]
    assert {p["value"] for p in sector} == {"ST16 2DH", "ST5 1BL"}
    assert all(p["severity"] == "warning" and "sector" in p["reason"] for p in sector)
    stored = _assets(engine, "libraries_staffordshire")
    stafford = stored[stored["postcode"] == "ST16 2DH"].iloc[0]
    assert stafford["district_code"] == "E07000197"
    assert stafford["geocode_quality"] < 0.8


def test_library_types_and_closures(imported, pack):
    engine, _ = imported
    source = pd.read_csv(pack / "registers" / "libraries_staffordshire.csv", dtype=str, keep_default_na=False)
    closed = sorted(normalise_postcodes(source.loc[source["Year closed"].str.strip() != "", "Postcode"]))
    staffs = _assets(engine, "libraries_staffordshire")
    audley = staffs[staffs["name"] == "Audley Library"].iloc[0]
    assert (audley["tier"], audley["category"]) == ("association", "community_run_library")
    biddulph = staffs[staffs["name"] == "Biddulph Library"].iloc[0]
    assert (biddulph["tier"], biddulph["category"]) == ("organisation", "library")
    assert len(closed) == 4
    assert sorted(staffs.loc[staffs["status"] == "closed", "postcode"]) == closed
    national = _assets(engine, "libraries_2023")
    assert national.loc[national["name"] == "Stoke-on-Trent Archives", "status"].item() == "temporarily closed"
    assert national.loc[national["name"] == "Stoke-on-Trent Archives", "category"].item() == "archive"
    assert (national["status"] == "closed").sum() == 14
    assert national.loc[national["name"] == "Brinsford YOI", "category"].item() == "prison_library"
    # Unmapped columns are kept, not lost.
    assert audley["properties"]["Monday staffed hours"] == "14:00-17:00"


def test_duplicates_across_registers_are_reported_not_merged(imported):
    engine, reports = imported
    dups = reports["libraries_2023.csv"].duplicates
    reasons = {(d["name"], d["other_register"]): d["reason"] for d in dups}
    assert reasons[("Audley Library", "libraries_staffordshire")] == "same UPRN"
    assert reasons[("Bentilee Library", "libraries_stoke")] == "same name within 50 m"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM assets WHERE name = 'Audley Library'")).scalar() == 2


@pytest.fixture
def ref_engine(ref_db):
    engine = make_engine(ref_db, load_settings())
    yield engine
    engine.dispose()


def _snapshot(engine):
    with engine.connect() as conn:
        return (conn.execute(text("SELECT id, match_key, updated_at, withdrawn_at FROM assets ORDER BY id")).all(),
                conn.execute(text("SELECT register, source_row, problems FROM quarantine ORDER BY id")).all(),
                conn.execute(text("SELECT name, version, report FROM registers ORDER BY name")).all())


def test_reimport_changes_nothing(ref_engine, pack):
    path = pack / "registers" / "libraries_staffordshire.csv"
    importer.import_register(ref_engine, path, register="libs")
    before = _snapshot(ref_engine)[0]
    report = importer.import_register(ref_engine, path, register="libs")
    assert _snapshot(ref_engine)[0] == before
    assert (report.inserted, report.updated, report.withdrawn) == (0, 0, 0)
    assert report.unchanged == len(before)


def test_missing_assets_are_withdrawn_and_come_back(ref_engine, pack, tmp_path):
    path = pack / "registers" / "libraries_stoke.csv"
    importer.import_register(ref_engine, path, register="stoke")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    shorter = tmp_path / "libraries_stoke.csv"
    frame[frame["Library name"] != "Bentilee Library"].to_csv(shorter, index=False)
    report = importer.import_register(ref_engine, shorter, register="stoke")
    assert report.withdrawn == 1
    with ref_engine.connect() as conn:
        row = conn.execute(text("SELECT id, withdrawn_at FROM assets WHERE name = 'Bentilee Library'")).one()
    assert row.withdrawn_at is not None
    report = importer.import_register(ref_engine, path, register="stoke")
    # Rows after it moved down one line, so their source_row changed too; nothing is inserted twice.
    assert report.inserted == 0 and report.updated >= 1 and report.withdrawn == 0
    with ref_engine.connect() as conn:
        again = conn.execute(text("SELECT id, withdrawn_at FROM assets WHERE name = 'Bentilee Library'")).one()
    assert again.id == row.id and again.withdrawn_at is None


def test_failed_import_leaves_the_database_unchanged(ref_engine, pack, monkeypatch):
    importer.import_register(ref_engine, pack / "registers" / "libraries_stoke.csv", register="stoke")
    before = _snapshot(ref_engine)

    def crash(*args, **kwargs):
        raise RuntimeError("killed half way")

    # The store step has written assets and quarantine rows by the time the report is saved: a crash there must
    # roll everything back.
    monkeypatch.setattr(importer, "_save", crash)
    with pytest.raises(RuntimeError):
        importer.import_register(ref_engine, pack / "registers" / "libraries_staffordshire.csv", register="stoke")
    assert _snapshot(ref_engine) == before


def test_quarantine_and_retry_after_loading_uprns(ref_engine, tmp_path):
    path = tmp_path / "halls.csv"
    path.write_text("name,category,postcode,uprn,lon,lat\n"
                    "Audley Hall,community centre,ST7 8DB,,,\n"
                    "Mystery Hall,community centre,,100032284551,,\n"
                    "Nowhere Hall,spaceport,ST7 8DB,,,\n"
                    "Far Hall,community centre,,,-0.1276,51.5072\n", encoding="utf-8")
    report = importer.import_register(ref_engine, path, register="halls")
    assert report.imported == 1 and report.quarantined == 3
    reasons = {p["row"]: p["reason"] for p in report.errors}
    assert "no usable coordinates" in reasons[3]
    assert "unknown category" in reasons[4]
    assert "outside every loaded district" in reasons[5]
    with ref_engine.begin() as conn:
        conn.execute(text("INSERT INTO uprns (uprn, geom) VALUES (100032284551, "
                          "ST_SetSRID(ST_MakePoint(-2.3020, 53.0495), 4326))"))
    report = importer.retry(ref_engine, "halls")
    assert report.imported == 1 and report.quarantined == 2
    with ref_engine.connect() as conn:
        placed = conn.execute(text("SELECT geocode_method, district_code FROM assets WHERE name = 'Mystery Hall'")).one()
        left = conn.execute(text("SELECT count(*) FROM quarantine WHERE register = 'halls'")).scalar()
    assert tuple(placed) == ("uprn", "E07000195")
    assert left == 2


def test_point_just_outside_the_boundary_takes_the_nearest_district(ref_engine, tmp_path):
    import geopandas as gpd

    districts = gpd.read_postgis("SELECT code, geom FROM districts", ref_engine, geom_col="geom").to_crs(27700)
    tamworth = districts[districts["code"] == "E07000199"].geometry.iloc[0]
    county = districts.union_all()
    # A point 80 m outside the county, beside Tamworth: measured in EPSG:27700.
    ring = county.buffer(80).exterior
    point = min((ring.interpolate(f, normalized=True) for f in [i / 2000 for i in range(2000)]),
                key=lambda p: p.distance(tamworth))
    lonlat = gpd.GeoSeries([point], crs=27700).to_crs(4326).iloc[0]
    path = tmp_path / "edge.csv"
    path.write_text(f"name,category,lon,lat\nEdge Club,sports club,{lonlat.x:.7f},{lonlat.y:.7f}\n")
    report = importer.import_register(ref_engine, path, register="edge")
    assert report.imported == 1
    with ref_engine.connect() as conn:
        asset = conn.execute(text("SELECT district_code, area_flag, lsoa21_code FROM assets")).one()
    assert asset.district_code == "E07000199"
    assert asset.area_flag.startswith("nearest district")
    assert asset.lsoa21_code is not None
    assert any("just outside" in p["reason"] for p in report.warnings)


def test_spreadsheet_formulas_and_equals_cells(ref_engine, tmp_path):
    import openpyxl

    book = tmp_path / "clubs.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["name", "category", "postcode"])
    wb.active.append(["Stone Bowls Club", "sports club", "ST15 8AT"])
    wb.active.append(['=CONCATENATE("Leek"," Club")', "sports club", "ST13 6DW"])
    wb.save(book)
    report = importer.import_register(ref_engine, book, register="clubs")
    assert (report.imported, report.quarantined) == (1, 1)
    assert "formula with no saved value" in report.errors[0]["reason"] and report.errors[0]["row"] == 3
    equals = tmp_path / "equals.csv"
    equals.write_text('name,category,postcode\n"=HYPERLINK(""http://x"")",park,ST15 8AT\n')
    report = importer.import_register(ref_engine, equals, register="equals")
    assert report.imported == 1
    with ref_engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM assets WHERE register = 'equals'")).scalar() == \
            '=HYPERLINK("http://x")'


def test_hostile_file_leaves_the_database_unchanged(ref_engine, pack, tmp_path):
    from asset_map.errors import InputError

    importer.import_register(ref_engine, pack / "registers" / "libraries_stoke.csv", register="stoke")
    before = _snapshot(ref_engine)
    junk = tmp_path / "libraries_stoke.csv"
    junk.write_bytes(b"\x00garbage\xff" * 5000)
    with pytest.raises(InputError):
        importer.import_register(ref_engine, junk, register="stoke")
    assert _snapshot(ref_engine) == before


def test_synthetic_registers_import_without_a_mapping(engine, tmp_path):
    from asset_map import synth
    from asset_map.reference.pack import load_pack

    county = synth.generate(areas=60, assets=400, seed=3)
    folder = county.write(tmp_path / "synth")
    load_pack(engine, folder)
    for name, frame in county.registers.items():
        report = importer.import_register(engine, folder / "registers" / f"{name}.csv", register=name)
        assert report.imported + report.quarantined == len(frame)
        # Individuals who said no to being recorded are quarantined, never stored.
        refused = int(((frame["tier"] == "individual") & (frame["consent"] == "no")).sum())
        assert sum("did not consent" in p["reason"] for p in report.errors) == refused
        assert report.imported >= 0.95 * (len(frame) - refused)
        assert all("gazetteer" in p["reason"] or "consent" in p["reason"] for p in report.errors)
    with engine.connect() as conn:
        tiers = dict(conn.execute(text("SELECT tier, count(*) FROM assets GROUP BY tier")).all())
        unplaced = conn.execute(text("SELECT count(*) FROM assets WHERE lsoa21_code IS NULL")).scalar()
    assert set(tiers) == {"individual", "association", "organisation"}
    assert unplaced == 0


def test_a_report_counts_every_duplicate_and_keeps_the_first():
    from asset_map.registers.import_report import ImportReport, format_text

    pairs = [{"source_row": r, "name": f"Hall {r}", "other_register": "halls", "other_row": r, "other_name": f"Hall {r}",
              "reason": "same source key" if r % 3 else "same name within 50 m"} for r in range(2, 12)]
    report = ImportReport(register="village", source="village.csv")
    report.add_duplicates(pairs, keep=4)
    assert report.duplicates == pairs[:4]
    assert (report.duplicates_total, report.duplicates_more) == (10, 6)
    assert report.duplicates_by_reason == {"same name within 50 m": 3, "same source key": 7}
    assert "... and 6 more (asset-map duplicates village)" in format_text(report)
    saved = ImportReport.from_dict(report.as_dict())
    assert (saved.duplicates_total, saved.duplicates_by_reason) == (10, report.duplicates_by_reason)
    # A report saved before the count was kept listed every pair.
    assert ImportReport.from_dict({"register": "old", "source": "old.csv", "duplicates": pairs}).duplicates_total == 10
