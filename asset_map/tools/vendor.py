"""The vendoring script (a build tool, run by ``make install``; the running app never imports it): third-party
JavaScript, CSS and fonts fetched from the npm registry and copied into ``asset_map/web/static/vendor/``.

folium loads Leaflet, jQuery, Bootstrap, Font Awesome and its plugins from CDNs, which the map's users (and our CI
machines) cannot always reach. ``install()`` fetches pinned npm packages with ``npm pack`` and copies the files we
need into ``static/vendor/`` (gitignored; ``python -m asset_map.tools.vendor`` is what the Makefile runs). At run
time ``asset_map.web.vendored`` points folium at those copies.

Everything is data: ``PACKAGES`` (what to fetch) and ``FILES`` (what to copy where) here, and
``asset_map.web.vendored.CDN_URLS`` (which folium URL each copy replaces). Adding a plugin means a line in each.
"""

import argparse
import base64
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from asset_map.errors import ConfigError
from asset_map.web.vendored import DEFAULT_DIR

log = logging.getLogger(__name__)

STAMP_NAME = ".installed.json"

# (npm package, pinned version, sha512 integrity of the tarball as the registry publishes it)
PACKAGES = [
    ("leaflet", "1.9.3",
     "sha512-iB2cR9vAkDOu5l3HAay2obcUHZ7xwUBBjph8+PGtmW/2lYhbLizWtG7nTeYht36WfOslixQF9D/uSIzhZgGMfQ=="),
    ("jquery", "3.7.1",
     "sha512-m4avr8yL8kmFN8psrbFFFmB/If14iN5o9nw/NgnnM+kybDJpRsAynV2BsfpTYrTRysYUdADVD7CkUUizgkpLfg=="),
    ("bootstrap", "5.2.2",
     "sha512-dEtzMTV71n6Fhmbg4fYJzQsw1N29hJKO1js5ackCgIpDcGid2ETMGC6zwSYw09v05Y+oRdQ9loC54zB1La3hHQ=="),
    ("@fortawesome/fontawesome-free", "6.2.0",
     "sha512-CNR7qRIfCwWHNN7FnKUniva94edPdyQzil/zCwk3v6k4R6rR2Fr8i4s3PM7n/lyfPA6Zfko9z5WDzFxG9SW1uQ=="),
    # folium asks cdnjs for 2.0.2, which npm does not have; 2.0.5 is the same plugin with packaging fixes.
    ("leaflet.awesome-markers", "2.0.5",
     "sha512-Ne/xDjkGyaujwNVVkv2tyXQUV0ZW7gZ0Mo0FuQY4jp2qWrvXi0hwDBvmZyF/8YOvybyMabTMM/mFWCTd1jZIQA=="),
    ("leaflet.markercluster", "1.1.0",
     "sha512-eI+XkCiLiHwCC3uZ4/n4+Vq3rXcqEHN2lhHRVG1WVziy/3Q0TTipWkzEa1zO0dKZI2AnI5ppFDWrOjnQ7MJLKQ=="),
    ("leaflet.featuregroup.subgroup", "1.0.2",
     "sha512-9nCVg8nUe686+BtPbUT7ALOe/IA+8Mum+rkA8pfPpCkH0WvKevRrH+JMcMTjAoNQKVI0uxrWrLV5w298SS3ESA=="),
    ("leaflet.fullscreen", "3.0.0",
     "sha512-81wWSUXz1ZtdneR0v5eJDWXUSx+Zo5J50WXWeydG/UcILfIEAgz/iOjZSi3p00Z9MJ/FC/P5i3CgdYuEAos0yQ=="),
    ("leaflet-search", "2.9.7",
     "sha512-v7CxEbXyQXqLFjSkTpvM5i1cvmrcPOos57UmTnR94qqvVZykXyz/0SKEs3cbkFHjyrmMQ3Yk2Q5W6PvyuiSuPg=="),
    # folium loads ardhi/Leaflet.MousePosition from a GitHub CDN; this is the npm release of the same plugin.
    ("leaflet-mouse-position", "1.2.0",
     "sha512-iKS25GZDRdoKZn0O5sjTyNcBYrq/wenLiOidj4jJ5iD4SfhyqVj+bJHgBwuMxOlf8Vc/9B1ZPlqYV4QA97nyFg=="),
    ("leaflet.locatecontrol", "0.66.2",
     "sha512-33xCfRydyjLfh9nGvf4kSTM0tA1EFFgM0z4uj75QkUwIc9cz0vJqWABsyDirLm1GBKeEr8/krcnc10X1YuK7oA=="),
    ("leaflet-groupedlayercontrol", "0.6.1",
     "sha512-xkGeH6ygcryFQI0FUWn6Bz93zlwrOSpeXgJQ3jLRoUQJ5h/Qgrz+GqR9nhBFfikjUKtC1sCKL3eDR9wNTWhLlA=="),
    ("leaflet-minimap", "3.6.1",
     "sha512-6px8f6cfv1rKB6ACpL6bbUFGxipZOq4KsntJgBj9nOcW1RYa5+xFp8emOZwks9X+VtVVsQEwWwfgT1kTTL/LzA=="),
    # axe-core: the accessibility rules the browser tests run on every page (not loaded by any page).
    ("axe-core", "4.11.0",
     "sha512-ilYanEU8vxxBexpJd8cWM4ElSQq4QctCLKih0TSfjIfCQTeyH/6zVrmIJfLPrKTKJRbiG+cfnZbQIjAlJmF1jQ=="),
    # Draws the need and boundary layers from our vector tiles (/tiles/...) at England scale.
    ("leaflet.vectorgrid", "1.3.0",
     "sha512-kWmj1pKM+MVdo/7Mg5zsB3YrGZvo/uIuiANV9MvWUFOG+Y2xAJzrteDhoIcCgTjHSSRJ36xdeGdIQVhuWjnCZw=="),
    # Polygon drawing for officers' neighbourhoods (/geographies/draw).
    ("leaflet-draw", "1.0.4",
     "sha512-rsQ6saQO5ST5Aj6XRFylr5zvarWgzWnrg46zQ1MEOEIHsppdC/8hnN8qMoFvACsPvTioAuysya/TVtog15tyAQ=="),
    # GOV.UK Design System, for the pages that are not the map. Its CSS asks for fonts and images at /assets/.
    ("govuk-frontend", "6.6.0",
     "sha512-xctkWrQvLnvQt7fyjQ3MGX9S0wz0x0RQuLxCeoXF+s8EjGICG81/DYQGKN5qgO+0KVT12UAaRwUsGY6fulRcRg=="),
]

# (npm package, path inside the package, destination under the vendor dir). A path ending in "/" is a folder,
# copied whole. Destinations keep each package's own layout so that the relative url(...)s in its CSS still work
# (Font Awesome's css/all.min.css loads ../webfonts/*, Leaflet's dist/leaflet.css loads images/*).
FILES = [
    ("leaflet", "dist/leaflet.js", "leaflet/dist/leaflet.js"),
    ("leaflet", "dist/leaflet.js.map", "leaflet/dist/leaflet.js.map"),
    ("leaflet", "dist/leaflet.css", "leaflet/dist/leaflet.css"),
    ("leaflet", "dist/images/", "leaflet/dist/images/"),
    ("leaflet", "LICENSE", "leaflet/LICENSE"),
    ("jquery", "dist/jquery.min.js", "jquery/dist/jquery.min.js"),
    ("jquery", "dist/jquery.min.map", "jquery/dist/jquery.min.map"),
    ("jquery", "LICENSE.txt", "jquery/LICENSE.txt"),
    ("bootstrap", "dist/js/bootstrap.bundle.min.js", "bootstrap/dist/js/bootstrap.bundle.min.js"),
    ("bootstrap", "dist/js/bootstrap.bundle.min.js.map", "bootstrap/dist/js/bootstrap.bundle.min.js.map"),
    ("bootstrap", "dist/css/bootstrap.min.css", "bootstrap/dist/css/bootstrap.min.css"),
    ("bootstrap", "dist/css/bootstrap.min.css.map", "bootstrap/dist/css/bootstrap.min.css.map"),
    ("bootstrap", "LICENSE", "bootstrap/LICENSE"),
    ("@fortawesome/fontawesome-free", "css/all.min.css", "fontawesome-free/css/all.min.css"),
    ("@fortawesome/fontawesome-free", "webfonts/", "fontawesome-free/webfonts/"),
    ("@fortawesome/fontawesome-free", "LICENSE.txt", "fontawesome-free/LICENSE.txt"),
    ("leaflet.awesome-markers", "dist/leaflet.awesome-markers.js",
     "leaflet.awesome-markers/dist/leaflet.awesome-markers.js"),
    ("leaflet.awesome-markers", "dist/leaflet.awesome-markers.css",
     "leaflet.awesome-markers/dist/leaflet.awesome-markers.css"),
    ("leaflet.awesome-markers", "dist/images/", "leaflet.awesome-markers/dist/images/"),
    ("leaflet.awesome-markers", "LICENSE", "leaflet.awesome-markers/LICENSE"),
    ("leaflet.markercluster", "dist/leaflet.markercluster.js", "leaflet.markercluster/dist/leaflet.markercluster.js"),
    ("leaflet.markercluster", "dist/MarkerCluster.css", "leaflet.markercluster/dist/MarkerCluster.css"),
    ("leaflet.markercluster", "dist/MarkerCluster.Default.css", "leaflet.markercluster/dist/MarkerCluster.Default.css"),
    ("leaflet.markercluster", "MIT-LICENCE.txt", "leaflet.markercluster/MIT-LICENCE.txt"),
    ("leaflet.featuregroup.subgroup", "dist/leaflet.featuregroup.subgroup.js",
     "leaflet.featuregroup.subgroup/dist/leaflet.featuregroup.subgroup.js"),
    ("leaflet.featuregroup.subgroup", "LICENSE", "leaflet.featuregroup.subgroup/LICENSE"),
    ("leaflet.fullscreen", "Control.FullScreen.js", "leaflet.fullscreen/Control.FullScreen.js"),
    ("leaflet.fullscreen", "Control.FullScreen.css", "leaflet.fullscreen/Control.FullScreen.css"),
    ("leaflet.fullscreen", "icon-fullscreen.svg", "leaflet.fullscreen/icon-fullscreen.svg"),
    ("leaflet.fullscreen", "LICENSE", "leaflet.fullscreen/LICENSE"),
    ("leaflet-search", "dist/leaflet-search.min.js", "leaflet-search/dist/leaflet-search.min.js"),
    ("leaflet-search", "dist/leaflet-search.min.css", "leaflet-search/dist/leaflet-search.min.css"),
    ("leaflet-search", "images/search-icon.png", "leaflet-search/images/search-icon.png"),
    ("leaflet-search", "images/search-icon-mobile.png", "leaflet-search/images/search-icon-mobile.png"),
    ("leaflet-search", "images/loader.gif", "leaflet-search/images/loader.gif"),
    ("leaflet-search", "images/back.png", "leaflet-search/images/back.png"),
    ("leaflet-search", "license.txt", "leaflet-search/license.txt"),
    ("leaflet-mouse-position", "src/L.Control.MousePosition.js",
     "leaflet-mouse-position/src/L.Control.MousePosition.js"),
    ("leaflet-mouse-position", "src/L.Control.MousePosition.css",
     "leaflet-mouse-position/src/L.Control.MousePosition.css"),
    ("leaflet-mouse-position", "MIT-LICENCE.txt", "leaflet-mouse-position/MIT-LICENCE.txt"),
    ("leaflet.locatecontrol", "dist/L.Control.Locate.min.js", "leaflet.locatecontrol/dist/L.Control.Locate.min.js"),
    ("leaflet.locatecontrol", "dist/L.Control.Locate.min.css", "leaflet.locatecontrol/dist/L.Control.Locate.min.css"),
    ("leaflet.locatecontrol", "LICENSE", "leaflet.locatecontrol/LICENSE"),
    ("leaflet-groupedlayercontrol", "dist/leaflet.groupedlayercontrol.min.js",
     "leaflet-groupedlayercontrol/dist/leaflet.groupedlayercontrol.min.js"),
    ("leaflet-groupedlayercontrol", "dist/leaflet.groupedlayercontrol.min.css",
     "leaflet-groupedlayercontrol/dist/leaflet.groupedlayercontrol.min.css"),
    ("leaflet-groupedlayercontrol", "LICENSE.txt", "leaflet-groupedlayercontrol/LICENSE.txt"),
    ("leaflet-minimap", "dist/Control.MiniMap.min.js", "leaflet-minimap/dist/Control.MiniMap.min.js"),
    ("leaflet-minimap", "dist/Control.MiniMap.min.css", "leaflet-minimap/dist/Control.MiniMap.min.css"),
    ("leaflet-minimap", "dist/images/", "leaflet-minimap/dist/images/"),
    ("leaflet-minimap", "LICENSE.txt", "leaflet-minimap/LICENSE.txt"),
    ("axe-core", "axe.min.js", "axe-core/axe.min.js"),
    ("axe-core", "LICENSE", "axe-core/LICENSE"),
    ("leaflet.vectorgrid", "dist/Leaflet.VectorGrid.bundled.min.js",
     "leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js"),
    ("leaflet.vectorgrid", "package.json", "leaflet.vectorgrid/package.json"),
    ("leaflet-draw", "dist/leaflet.draw.js", "leaflet-draw/dist/leaflet.draw.js"),
    ("leaflet-draw", "dist/leaflet.draw.css", "leaflet-draw/dist/leaflet.draw.css"),
    ("leaflet-draw", "dist/images/", "leaflet-draw/dist/images/"),
    ("leaflet-draw", "package.json", "leaflet-draw/package.json"),  # its licence (MIT) is stated there only
    ("govuk-frontend", "dist/govuk/govuk-frontend.min.css", "govuk-frontend/dist/govuk/govuk-frontend.min.css"),
    ("govuk-frontend", "dist/govuk/govuk-frontend.min.js", "govuk-frontend/dist/govuk/govuk-frontend.min.js"),
    ("govuk-frontend", "dist/govuk/assets/", "govuk-frontend/dist/govuk/assets/"),
]



# -- install -------------------------------------------------------------------------------------------------------


def install(dest_dir=DEFAULT_DIR, *, npm="npm", force=False):
    """Fetch the pinned ``PACKAGES`` with ``npm pack`` and copy ``FILES`` under ``dest_dir``; return the paths.

    Packages already installed at the same version (per the stamp file) are not fetched again. Raises
    ``ConfigError`` naming the npm command to run when npm is missing or fails.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    stamp_path = dest_dir / STAMP_NAME
    stamp = {} if force else _read_stamp(stamp_path)
    todo = [(name, version, integrity) for name, version, integrity in PACKAGES
            if force or stamp.get(name) != version or not _files_present(dest_dir, name)]
    if todo:
        with tempfile.TemporaryDirectory(prefix="asset-map-npm-") as tmp:
            tarballs = _npm_pack([f"{name}@{version}" for name, version, _ in todo], Path(tmp), npm)
            for (name, version, integrity), tarball in zip(todo, tarballs):
                _check_integrity(tarball, f"{name}@{version}", integrity)
                _copy_package_files(tarball, name, dest_dir)
                stamp[name] = version
                _write_stamp(stamp_path, stamp)
                log.info("vendored %s@%s", name, version)
    return [dest_dir / dest for _, _, dest in FILES]


def _npm_pack(specs, tmp, npm):
    """Run one ``npm pack`` for all ``specs``; return the tarball paths in the same order."""
    cmd = [npm, "pack", "--json", "--pack-destination", str(tmp), *specs]
    retry = f"npm pack {' '.join(specs)}"
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except FileNotFoundError as err:
        msg = (f"npm was not found ({npm!r}); it fetches the map's JavaScript and CSS. Install Node.js and npm "
               f"(Debian: apt-get install -y nodejs npm) and check that this works: {retry}; then run "
               f"python -m asset_map.tools.vendor")
        raise ConfigError(msg) from err
    except subprocess.TimeoutExpired as err:
        msg = f"npm pack timed out after 600 s; check access to the npm registry and try: {retry}"
        raise ConfigError(msg) from err
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        msg = f"npm pack failed (exit {proc.returncode}); try by hand: {retry}\n{tail}"
        raise ConfigError(msg)
    try:
        packed = json.loads(proc.stdout)
        tarballs = [tmp / entry["filename"] for entry in packed]
    except (ValueError, KeyError, TypeError) as err:
        msg = f"npm pack printed something other than the expected JSON; try by hand: {retry}"
        raise ConfigError(msg) from err
    if len(tarballs) != len(specs) or not all(path.is_file() for path in tarballs):
        msg = f"npm pack did not produce one tarball per package; try by hand: {retry}"
        raise ConfigError(msg)
    return tarballs


def _check_integrity(tarball, spec, integrity):
    digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode("ascii")
    if f"sha512-{digest}" != integrity:
        msg = f"{spec} from the npm registry does not match the sha512 pinned in asset_map/tools/vendor.py"
        raise ConfigError(msg)


def _copy_package_files(tarball, package, dest_dir):
    """Copy this package's ``FILES`` out of its tarball, reading members by name (never extracting blindly)."""
    wanted = [(src, dest) for name, src, dest in FILES if name == package]
    with tarfile.open(tarball, "r:gz") as tar:
        members = {}
        for member in tar.getmembers():
            if not member.isfile():
                continue  # no links, devices or directories: only regular files are ever written
            inner = _inner_path(member.name)
            if inner is not None:
                members[inner] = member
        for src, dest in wanted:
            if src.endswith("/"):
                prefix = src.rstrip("/") + "/"
                found = {path[len(prefix):]: m for path, m in members.items() if path.startswith(prefix)}
                if not found:
                    msg = f"{package}: folder {src} is not in the npm package; fix FILES in asset_map/tools/vendor.py"
                    raise ConfigError(msg)
                target_dir = _safe_join(dest_dir, dest)
                if target_dir.exists():
                    shutil.rmtree(target_dir)
                for rel, member in sorted(found.items()):
                    _write_member(tar, member, _safe_join(target_dir, rel))
            else:
                if src not in members:
                    msg = f"{package}: file {src} is not in the npm package; fix FILES in asset_map/tools/vendor.py"
                    raise ConfigError(msg)
                _write_member(tar, members[src], _safe_join(dest_dir, dest))


def _inner_path(member_name):
    """A tarball member's path below the package's top folder ("package/dist/x.js" -> "dist/x.js"), or None."""
    path = PurePosixPath(member_name)
    if path.is_absolute() or ".." in path.parts or len(path.parts) < 2:
        return None
    return PurePosixPath(*path.parts[1:]).as_posix()


def _safe_join(base, rel):
    """``base / rel``, refusing anything that would land outside ``base``."""
    base = Path(base).resolve()
    target = (base / rel).resolve()
    if target != base and base not in target.parents:
        msg = f"refusing to write {rel!r} outside {base}"
        raise ConfigError(msg)
    return target


def _write_member(tar, member, target):
    target.parent.mkdir(parents=True, exist_ok=True)
    with tar.extractfile(member) as src, open(target, "wb") as out:
        shutil.copyfileobj(src, out)


def _files_present(dest_dir, package):
    for name, src, dest in FILES:
        if name != package:
            continue
        path = dest_dir / dest
        if src.endswith("/"):
            if not path.is_dir() or not any(path.iterdir()):
                return False
        elif not path.is_file() or path.stat().st_size == 0:
            return False
    return True


def _read_stamp(path):
    try:
        stamp = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def _write_stamp(path, stamp):
    path.write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m asset_map.tools.vendor",
                                     description="Fetch the map's JavaScript, CSS and fonts from the npm registry.")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DIR, help="vendor folder (default: %(default)s)")
    parser.add_argument("--npm", default="npm", help="npm executable (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="fetch every package again")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        paths = install(args.dest, npm=args.npm, force=args.force)
    except ConfigError as err:
        print(f"error: {err.user_message}", file=sys.stderr)
        return 1
    print(f"{len(paths)} vendored files and folders in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
