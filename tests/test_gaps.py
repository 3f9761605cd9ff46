"""Gap reports on the real pack: the app's numbers against an independent calculation, the Stoke-on-Trent priority
gaps, the Tamworth report from the CLI (offline, reproducible) and from the web, and the privacy rule."""

import json
import re
import uuid

import numpy as np
import pyogrio
import pytest
from click.testing import CliRunner

from asset_map import gaps
from asset_map.cli import cli
from asset_map.config import load_settings
from asset_map.errors import InputError
from asset_map.store.db import make_engine
from asset_map.web.vendored import external_urls
from tests.conftest import make_app
from tests.gap_libraries import read_libraries, store_libraries

STOKE, TAMWORTH = "E06000021", "E07000199"


@pytest.fixture(scope="module")
def libraries_db(pg_server, template_db, pack):
    """The pack plus its open libraries, in a database of this module's own (the shared pack DB is read-only)."""
    from asset_map.reference.pack import load_pack

    name = f"am_gaps_{uuid.uuid4().hex[:8]}"
    url = pg_server.create(name, template=template_db)
    eng = make_engine(url, load_settings())
    load_pack(eng, pack)
    libraries = read_libraries(pack, eng)
    store_libraries(eng, libraries)
    eng.dispose()
    yield url, libraries
    from asset_map.store.db import dispose_engines

    dispose_engines()
    pg_server.drop(name)


@pytest.fixture
def lib_engine(libraries_db):
    eng = make_engine(libraries_db[0], load_settings())
    yield eng
    eng.dispose()


def _independent(pack, libraries, district):
    """Straight from the pack file, with shapely and numpy only: per area of the district, the nearest library
    (brute force over every library), libraries inside, and dense 2SFCA over every area of the file."""
    areas = pyogrio.read_dataframe(pack / "boundaries" / "lsoa2021_imd2025.geojson").to_crs(27700)
    libs = libraries.to_crs(27700)
    lx, ly = libs.geometry.x.to_numpy(), libs.geometry.y.to_numpy()
    c = areas.geometry.centroid
    d = np.hypot(c.x.to_numpy()[:, None] - lx[None, :], c.y.to_numpy()[:, None] - ly[None, :])
    pop = areas["population_2022"].astype(float).to_numpy()
    within = d <= 1600
    demand = (within * pop[:, None]).sum(axis=0)
    ratio = np.divide(1.0, demand, out=np.zeros_like(demand), where=demand > 0)
    areas["nearest"] = d.min(axis=1)
    areas["access"] = 1000 * (within * ratio[None, :]).sum(axis=1)
    areas["inside"] = [int(sum(g.covers(p) for p in libs.geometry)) for g in areas.geometry]
    return areas[areas["lad24cd"] == district].set_index("lsoa21cd")


@pytest.fixture(scope="module")
def stoke(libraries_db, pack):
    url, libraries = libraries_db
    eng = make_engine(url, load_settings())
    result = gaps.run(eng, gaps.GapRequest.from_args({"district": STOKE, "category": "library"}))
    eng.dispose()
    return result, _independent(pack, libraries, STOKE)


def test_numbers_match_an_independent_calculation(stoke):
    result, expected = stoke
    got = result.frame.set_index("code")
    assert sorted(got.index) == sorted(expected.index)
    got = got.loc[expected.index]
    assert got["need_decile"].astype(int).tolist() == expected["imd_decile"].astype(int).tolist()
    # Boundaries went through the store (EPSG:4326) and back: centroids agree to well under a metre.
    assert np.abs(got["nearest_library_m"].to_numpy() - expected["nearest"].to_numpy()).max() < 0.5
    assert got["assets_inside"].tolist() == expected["inside"].tolist()
    assert got["access_per_1000"].to_numpy() == pytest.approx(expected["access"].to_numpy(), rel=1e-3, abs=1e-6)
    per_1000 = expected["inside"] / expected["population_2022"] * 1000
    assert got["assets_per_1000"].to_numpy() == pytest.approx(per_1000.to_numpy())
    assert result.inputs["assets_used"] == 49


def test_stoke_top_priority_gaps_are_decile_1_areas_farthest_from_a_library(stoke):
    result, expected = stoke
    # Independently: decile 1 areas with no library within the catchment, farthest first.
    far = expected[(expected["imd_decile"] == 1) & (expected["nearest"] > 1600)]
    far = far.sort_values("nearest", ascending=False)
    assert len(far) >= 5
    ranked = result.frame[result.frame["priority"]].sort_values("priority_rank")
    assert ranked["code"].head(len(far)).tolist() == far.index.tolist()
    top = ranked.iloc[0]
    assert top["need_decile"] == 1 and top["access_per_1000"] == 0 and top["lacks"] == "library"
    assert top["nearest_library_name"]
    # Every priority gap is high need and low supply, and every high-need area without a library in reach is one.
    assert set(ranked["need_class"]) == {"high"} and set(ranked["supply_class"]) == {"low"}
    no_reach = result.frame[(result.frame["need_class"] == "high") & (result.frame["access_per_1000"] == 0)]
    assert set(no_reach["code"]) <= set(ranked["code"])


def test_tamworth_report_from_the_cli_is_offline_and_reproducible(libraries_db, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_MAP_DATABASE_URL", libraries_db[0])
    monkeypatch.setenv("ASSET_MAP_TILES", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
    files = []
    for run in ("a", "b"):
        out = [tmp_path / f"{run}.html", tmp_path / f"{run}.csv", tmp_path / f"{run}.geojson"]
        done = CliRunner().invoke(cli, ["gap-report", "--district", TAMWORTH, "--category", "library",
                                        "-o", str(out[0]), "--csv", str(out[1]), "--geojson", str(out[2])])
        assert done.exit_code == 0, done.output
        assert "51 areas" in done.output
        files.append([p.read_bytes() for p in out])
    assert files[0][1] == files[1][1] and files[0][2] == files[1][2]
    page = files[0][0].decode()
    # One file: no scripts or styles fetched, only the optional tile template (and anchors, which are not fetched).
    # Leaflet's licence comment names its home page: a comment is not a reference, so comments are left out.
    assert external_urls(re.sub(r"/\*.*?\*/", "", page, flags=re.S)) == []
    assert "tile.openstreetmap.org/{z}/{x}/{y}.png" in page
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)
    assert "Leaflet 1.9.3" in page and "L.map(" in page  # the library itself, and the map that uses it
    assert "Glascote Library" in page and "E01029820" in page  # assets and areas embedded
    assert "Contains OS data" in page and "libraries_staffordshire" in page
    csv_rows = files[0][1].decode().splitlines()
    assert len(csv_rows) == 52 and csv_rows[0].startswith("code,name,district_code,population")
    doc = json.loads(files[0][2])
    assert len(doc["features"]) == 51
    assert doc["asset_map"]["registers"][0]["imported_at"].startswith("2026-11-20")
    assert doc["asset_map"]["parameters"]["catchment_m"] == 1600
    assert {"version", "commit"} <= set(doc["asset_map"]["code"])


def test_the_web_report_and_its_downloads(libraries_db, tmp_path):
    app = make_app(libraries_db[0], tmp_path)
    client = app.test_client()
    form = client.get("/gaps")
    assert form.status_code == 200
    assert b"Tamworth" in form.data and b"library" in form.data
    page = client.get(f"/gaps?district={TAMWORTH}&category=library&run=1")
    assert page.status_code == 200
    text = page.data.decode()
    assert "Priority gaps" in text and "How this was worked out" in text and "Glascote Library" in text
    assert "/static/vendor/leaflet/dist/leaflet.js" in text
    csv_a = client.get(f"/gaps/report.csv?district={TAMWORTH}&category=library")
    csv_b = client.get(f"/gaps/report.csv?district={TAMWORTH}&category=library&catchment=1600")
    assert csv_a.status_code == 200 and csv_a.data == csv_b.data
    assert csv_a.headers["Content-Disposition"] == 'attachment; filename="gap-report-E07000199.csv"'
    geo = client.get(f"/gaps/report.geojson?district={TAMWORTH}&category=library")
    assert len(geo.get_json()["features"]) == 51
    bad = client.get("/gaps?district=E07000199&catchment=far&run=1")
    assert bad.status_code == 400 and b"catchment" in bad.data
    assert client.get("/gaps/report.xls").status_code == 404


def test_errors_name_the_problem(lib_engine):
    with pytest.raises(InputError, match="E07999999 has no areas"):
        gaps.run(lib_engine, gaps.GapRequest.from_args({"district": "E07999999"}))
    with pytest.raises(InputError, match="imd:2031 is not loaded"):
        gaps.run(lib_engine, gaps.GapRequest.from_args({"need": "imd:2031"}))
    with pytest.raises(InputError, match="decay"):
        gaps.GapRequest.from_args({"decay": "cubic"})
    done = CliRunner().invoke(cli, ["gap-report", "--district", TAMWORTH])
    assert done.exit_code != 0 and "-o FILE.html" in done.output


def test_public_report_never_shows_individuals(engine, tmp_path):
    from tests.factories import load_synthetic

    load_synthetic(engine, tmp_path, areas=60, assets_n=400, seed=3)
    request = gaps.GapRequest.from_args({"tier": "individual", "need": "imd:2025"})
    public = gaps.run(engine, request)
    officer = gaps.run(engine, request, role="officer")
    assert public.inputs["assets_used"] == 0 and public.frame["assets_inside"].sum() == 0
    # Issue 12: a gap report is shareable, so an officer's carries no individual as a point either, and the same
    # protected counts as the public's.
    assert officer.inputs["assets_used"] == 0
    assert list(officer.frame["individuals"]) == list(public.frame["individuals"])
    # Individuals appear to the public only as counts per area, small numbers suppressed.
    labels = set(public.frame["individuals"])
    assert "fewer than 5" in labels
    assert all(v in ("0", "fewer than 5") or int(v) >= 5 for v in labels)
    # Supply is open assets only unless asked: temporarily closed ones join when the status says so.
    from sqlalchemy import text

    with engine.connect() as conn:
        n_open = conn.execute(text("SELECT count(*) FROM assets WHERE status = 'open' AND tier <> 'individual' "
                                   "AND visibility = 'public'")).scalar()
    open_only = gaps.run(engine, gaps.GapRequest.from_args({"need": "imd:2025"}))
    both = gaps.run(engine, gaps.GapRequest.from_args({"need": "imd:2025", "status": "open,temporarily closed"}))
    assert open_only.inputs["assets_used"] == n_open < both.inputs["assets_used"]
    assert open_only.inputs["filter"]["status"] == "open"
    html = gaps.standalone_html(public, load_settings({"TILES": "none"}))
    assert "individual" not in set(public.map_assets.get("category", []))
    assert "synth-individuals" not in html


@pytest.mark.browser
def test_standalone_file_draws_offline_in_a_browser(libraries_db, tmp_path, monkeypatch, artifacts):
    from tests.browser import open_page, require_browser

    require_browser()
    monkeypatch.setenv("ASSET_MAP_DATABASE_URL", libraries_db[0])
    monkeypatch.setenv("ASSET_MAP_TILES", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
    out = tmp_path / "tamworth.html"
    done = CliRunner().invoke(cli, ["gap-report", "--district", TAMWORTH, "--category", "library", "-o", str(out)])
    assert done.exit_code == 0, done.output
    # Opened from disk, as from an email attachment; every off-machine request is blocked and recorded.
    with open_page(out.as_uri(), height=1400) as view:
        view.page.wait_for_selector("path.leaflet-interactive")
        areas = view.page.eval_on_selector_all("path.leaflet-interactive", "els => els.length")
        legend = view.page.inner_text(".asset-map-legend")
        view.screenshot(artifacts / "gap_report_tamworth_offline.png")
        # Offline, only the optional base-map tiles fail; the report itself needs nothing from the network.
        assert [e for e in view.console_errors if "tile.openstreetmap.org" not in e] == []
        assert all("tile.openstreetmap.org" in url for url in view.external_requests)
    # 51 areas and the libraries within reach of them, drawn as circle markers (SVG paths too).
    assert areas > 51
    assert "high need / low supply" in legend


@pytest.mark.browser
def test_web_report_draws_in_a_browser(libraries_db, tmp_path, live_server, artifacts):
    from tests.browser import open_page, require_browser

    require_browser()
    url = live_server(make_app(libraries_db[0], tmp_path))
    with open_page(f"{url}/gaps?district={STOKE}&category=library&run=1", height=1400) as view:
        view.page.wait_for_selector("path.leaflet-interactive")
        rows = view.page.eval_on_selector_all("#gap-prio-h ~ div table tbody tr", "els => els.length")
        view.screenshot(artifacts / "gap_report_stoke_web.png")
        assert view.console_errors == []
        assert view.external_requests == []
    assert rows > 5


def test_cli_population_points_give_population_weighted_origins(libraries_db, tmp_path, monkeypatch, pack):
    import geopandas as gpd
    from shapely.geometry import Point

    monkeypatch.setenv("ASSET_MAP_DATABASE_URL", libraries_db[0])
    areas = pyogrio.read_dataframe(pack / "boundaries" / "lsoa2021_imd2025.geojson")
    area = areas[areas["lsoa21cd"] == "E01029820"].to_crs(27700).geometry.iloc[0]
    inside = area.representative_point()
    people = gpd.GeoDataFrame({"population": [120]}, geometry=[Point(inside.x, inside.y)], crs=27700).to_crs(4326)
    people.to_file(tmp_path / "people.geojson", driver="GeoJSON", engine="pyogrio")
    out = tmp_path / "gaps.csv"
    done = CliRunner().invoke(cli, ["gap-report", "--district", TAMWORTH, "--category", "library", "--csv", str(out),
                                    "--population-points", str(tmp_path / "people.geojson")])
    assert done.exit_code == 0, done.output
    rows = {r.split(",")[0]: r for r in out.read_text().splitlines()[1:]}
    assert ",population-weighted," in rows["E01029820"]
    assert f",{inside.x:.1f},{inside.y:.1f}," in rows["E01029820"]
    assert ",geometric," in rows["E01029821"]
