import shutil
from pathlib import Path

import folium
import folium.plugins
import pytest

from asset_map.errors import ConfigError
from asset_map.tools import vendor
from asset_map.web import vendored as web_vendored

try:
    from tests.browser import ARTIFACTS, open_page, serve_directory
except ImportError:  # pytest's default "prepend" import mode puts tests/ itself on sys.path
    from browser import ARTIFACTS, open_page, serve_directory

STATIC_DIR = web_vendored.DEFAULT_DIR.parent


def static_url(relpath):
    return "/static/" + relpath


@pytest.fixture(scope="module")
def vendored():
    """The real vendor dir, as `make` leaves it (a no-op when already installed)."""
    return vendor.install()


@pytest.fixture
def local_assets(vendored):
    web_vendored.use_local_assets(static_url)


def small_map():
    """EPSG:4326 lon/lat in GeoJSON, lat/lon for folium markers."""
    fmap = folium.Map(location=[51.507, -0.1], zoom_start=13, tiles=None, **{"maxZoom": 19})
    area = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"name": "Ward A"},
             "geometry": {"type": "Polygon", "coordinates": [[
                 [-0.13, 51.50], [-0.11, 51.50], [-0.11, 51.515], [-0.13, 51.515], [-0.13, 51.50]]]}},
            {"type": "Feature", "properties": {"name": "Ward B"},
             "geometry": {"type": "Polygon", "coordinates": [[
                 [-0.10, 51.50], [-0.08, 51.50], [-0.08, 51.515], [-0.10, 51.515], [-0.10, 51.50]]]}},
        ],
    }
    folium.GeoJson(area, name="Wards", style_function=lambda _: {"color": "#1d70b8", "weight": 2}).add_to(fmap)
    cluster = folium.plugins.MarkerCluster(name="Assets").add_to(fmap)
    for lat, lon in [(51.5071, -0.1001), (51.5072, -0.1003), (51.5070, -0.1002)]:  # close: one cluster
        folium.Marker([lat, lon], icon=folium.Icon(prefix="fa", icon="home", color="green")).add_to(cluster)
    folium.Marker([51.512, -0.125], tooltip="Library",  # alone: drawn as an awesome marker
                  icon=folium.Icon(prefix="fa", icon="book", color="blue")).add_to(cluster)
    return fmap


def test_install_copies_every_file(vendored):
    assert len(vendored) == len(vendor.FILES)
    for path in vendored:
        if path.is_dir():
            assert any(p.is_file() and p.stat().st_size > 0 for p in path.rglob("*")), path
        else:
            assert path.is_file() and path.stat().st_size > 0, path
    installed = (web_vendored.DEFAULT_DIR / vendor.STAMP_NAME).read_text(encoding="utf-8")
    for name, version, _ in vendor.PACKAGES:
        assert f'"{name}": "{version}"' in installed


def test_every_cdn_url_has_a_file(vendored):
    for relpath in web_vendored.CDN_URLS.values():
        assert (STATIC_DIR / relpath).is_file(), relpath


def test_font_awesome_keeps_its_relative_layout(vendored):
    css = web_vendored.DEFAULT_DIR / "fontawesome-free" / "css" / "all.min.css"
    assert "../webfonts/fa-solid-900.woff2" in css.read_text(encoding="utf-8")
    assert (css.parent.parent / "webfonts" / "fa-solid-900.woff2").is_file()


def test_install_without_npm_names_the_command(tmp_path):
    with pytest.raises(ConfigError, match=r"npm pack leaflet@1\.9\.3"):
        vendor.install(tmp_path, npm=str(tmp_path / "no-such-npm"))


def test_tarball_paths_cannot_escape():
    assert vendor._inner_path("package/dist/leaflet.js") == "dist/leaflet.js"
    assert vendor._inner_path("package/../../etc/passwd") is None
    assert vendor._inner_path("/etc/passwd") is None
    with pytest.raises(ConfigError):
        vendor._safe_join(Path("/tmp/vendor"), "../outside.js")


def test_rendered_map_loads_nothing_from_elsewhere(local_assets):
    html = small_map().get_root().render()
    assert web_vendored.external_urls(html) == []
    web_vendored.check_offline(html)
    assert static_url("vendor/leaflet/dist/leaflet.js") in html
    assert "glyphicons" not in html


def test_use_local_assets_is_idempotent(local_assets):
    first = (list(folium.Map.default_js), list(folium.Map.default_css))
    web_vendored.use_local_assets(static_url)
    assert (folium.Map.default_js, folium.Map.default_css) == first
    web_vendored.use_local_assets(lambda p: "/assets/" + p)
    assert dict(folium.Map.default_js)["leaflet"] == "/assets/vendor/leaflet/dist/leaflet.js"
    web_vendored.use_local_assets(static_url)


def test_plugins_we_use_are_local(local_assets):
    for plugin in ["MarkerCluster", "FastMarkerCluster", "Fullscreen", "FeatureGroupSubGroup", "Search",
                   "MousePosition", "LocateControl", "GroupedLayerControl", "MiniMap"]:
        cls = getattr(folium.plugins, plugin)
        for _, url in [*cls.default_js, *cls.default_css]:
            assert url.startswith("/static/"), (plugin, url)


def test_external_urls_reports_an_unvendored_plugin(local_assets):
    fmap = small_map()
    folium.plugins.Draw().add_to(fmap)  # leaflet.draw is not vendored
    html = fmap.get_root().render()
    assert any("leaflet.draw" in url for url in web_vendored.external_urls(html))
    with pytest.raises(ConfigError, match="leaflet.draw"):
        web_vendored.check_offline(html)


def test_external_urls_ignores_tiles_and_attribution_links():
    html = folium.Map(tiles="OpenStreetMap").get_root().render()
    assert not any("openstreetmap" in url for url in web_vendored.external_urls(html))


@pytest.mark.browser
def test_map_renders_offline_in_a_browser(local_assets, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(web_vendored.DEFAULT_DIR, site / "static" / "vendor")
    shutil.copytree(STATIC_DIR / "css", site / "static" / "css")
    small_map().save(str(site / "map.html"))

    with serve_directory(site) as base, open_page(base + "/map.html") as session:
        page = session.page
        page.wait_for_selector("path.leaflet-interactive")
        page.wait_for_selector(".marker-cluster")
        page.wait_for_selector(".awesome-marker i.fa-book")
        fonts = page.evaluate("""async () => {
            await document.fonts.ready;
            return [...document.fonts].filter(f => f.status === 'loaded').map(f => f.family);
        }""")
        icon_font = page.eval_on_selector(".awesome-marker i.fa-book", "el => getComputedStyle(el).fontFamily")
        counts = page.evaluate("""() => ({
            paths: document.querySelectorAll('path.leaflet-interactive').length,
            clusters: document.querySelectorAll('.marker-cluster').length,
            markers: document.querySelectorAll('.awesome-marker').length,
        })""")
        session.screenshot(ARTIFACTS / "vendor_map.png")

    assert session.console_errors == []
    assert session.external_requests == []
    assert session.failed_requests == []
    assert counts["paths"] == 2
    assert counts["clusters"] >= 1 and counts["markers"] >= 1
    assert "Font Awesome" in icon_font
    assert any("Font Awesome" in family for family in fonts), fonts
