"""Settings as data: one list drives validation, the CLI help, the README table (``asset-map settings --markdown``
writes it; a test fails when the README differs) and the app config.

Each setting has a default here; an instance ``config.py`` (keys ``ASSET_MAP_<NAME>``) overrides the default, the
environment (``ASSET_MAP_<NAME>``) overrides both, as in Flask's own pattern; a test config overrides all three.
Nothing here imports Flask.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from asset_map.errors import ConfigError

PROJECT_DIR = Path(__file__).resolve().parent.parent

OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = "&copy; OpenStreetMap contributors"


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    help: str
    type: type = str
    # What the README shows as the default, when the value itself is long or made at run time.
    doc_default: str = ""

    @property
    def env(self):
        return f"ASSET_MAP_{self.name}"


SETTINGS = [
    Setting("DATABASE_URL", "", "SQLAlchemy URL of a PostGIS database. Empty: the project runs its own cluster "
            "under var/ (created on first use)."),
    Setting("OWNER_DATABASE_URL", "", "URL of the owner role that runs migrations (`asset-map db upgrade`) on an "
            "external server. Empty: DATABASE_URL. The project's own cluster has its owner and app roles built in."),
    Setting("VAR_DIR", str(PROJECT_DIR / "var"), "Where the local cluster, logs and import reports live."),
    Setting("LAYERS_DIR", "", "Folder of the map layer YAML files. Empty: the project's top-level layers/ folder."),
    Setting("REFERENCE_DIR", "", "Reference pack loaded by `make run`. Empty: ../shared/data/staffordshire when "
            "present, else a synthetic county."),
    Setting("TILES", OSM_TILES, "Base-map tile URL template; empty or 'none' for no base map (the map still "
            "draws its own layers).", doc_default="OpenStreetMap"),
    Setting("TILES_ATTRIBUTION", OSM_ATTRIBUTION, "Attribution shown for the base-map tiles."),
    Setting("ATTRIBUTION", "Contains OS data (c) Crown copyright and database right|"
            "Contains Royal Mail data (c) Royal Mail copyright and database right|"
            "Contains National Statistics data (c) Crown copyright and database right|"
            "Source: Ministry of Housing, Communities and Local Government, English Indices of Deprivation "
            "2019 and 2025|"
            "Library data: DCMS / Arts Council basic dataset for libraries, as collected by Libraries Hacked",
            "Data attribution lines shown on maps and carried by exports, separated by '|'.",
            doc_default="the reference pack's lines"),
    Setting("LICENCE", "Open Government Licence v3.0; OS OpenData; boundaries CC-BY-4.0 (martinjc/UK-GeoJSON)",
            "Licence text carried by exports.", doc_default="OGL v3 / OS OpenData / CC-BY-4.0"),
    Setting("DEFAULT_NEED", "imd:2025", "Need indicator and vintage the map opens with (indicator:vintage)."),
    Setting("SUPPRESS_BELOW", 5, "Counts of individuals below this (zero included) are shown as 'fewer than N' "
            "(asset_map.disclosure).", int),
    Setting("ROUND_TO", 5, "Other counts of individuals are rounded to the nearest multiple of this.", int),
    Setting("DISCLOSURE_CONTROL", 1, "1: counts of individuals are protected (suppressed and rounded). 0: exact "
            "counts, for the attack suite only; never in service.", int),
    Setting("PUBLIC_URL", "", "The site's public address (https://maps.example.org); links in OGC API responses use "
            "it rather than the request's Host header. Empty: the request's own address.", str),
    Setting("RETAIN_QUARANTINE_DAYS", 90, "`asset-map retention apply` removes quarantined rows older than this.",
            int),
    Setting("RETAIN_REPORTS_DAYS", 365, "... and import reports saved on registers not re-imported for this long "
            "(the counts stay; problem rows and duplicate pairs go).", int),
    Setting("RETAIN_WITHDRAWN_DAYS", 365, "... and erases individuals withdrawn for longer than this (personal "
            "fields cleared; the row keeps id, register, tier, district, when and why).", int),
    Setting("MAP_POINTS_LIMIT", 4000, "Most assets the map receives as single points for the visible area; above "
            "this it receives them grouped per grid cell and category (and the browser clusters the groups).", int),
    Setting("MAP_INLINE_AREAS", 5000, "Up to this many small areas, the map page carries the need and boundary "
            "layers in the page itself (one request, works with no tile requests); above it, the map draws them "
            "from vector tiles (/tiles/...), so the page stays small at England scale.", int),
    Setting("TILE_SLOTS", 4, "Tiles one server process renders at once; more requests wait TILE_WAIT_S, then get "
            "a 429 with Retry-After (cached tiles are served without a slot).", int),
    Setting("TILE_WAIT_S", 10, "How long a tile request waits for a rendering slot.", int),
    Setting("TILE_PREP", 1, "1: a tile that finds the prepared tile tables (area shapes per zoom band, public asset "
            "counts per grid cell) out of date starts their rebuild in the background and is served from the live "
            "tables meanwhile; 0: only `asset-map tiles prepare` rebuilds them.", int),
    Setting("EXPORT_SLOTS", 2, "Downloads (exports, the table's CSV) the server streams at once, all its worker "
            "processes together; one more gets a 503 with Retry-After, so map requests keep their threads.", int),
    Setting("EXPORT_WAIT_S", 1, "How long a download waits for a free export slot.", int),
    Setting("EXPORT_RATE_MB_S", 10, "Most megabytes per second one download of a kept file is sent at (as nginx's "
            "limit_rate; 10 MB/s is 80 Mbit/s, about a UK home link: the national GeoJSON, gzipped, in 6 s), so a "
            "client on a fast link cannot take the cores from the map (at 25 MB/s two downloads on loopback cost the "
            "map page 10-13 % of its p95 on 2 cores); under gunicorn the kernel paces the connection and the file "
            "goes by sendfile. 0: no cap.", float),
    Setting("STALE_MONTHS", 12, "Assets not verified for longer than this are drawn as stale.", int),
    Setting("HOST", "127.0.0.1", "Address `asset-map serve` listens on."),
    Setting("PORT", 5000, "Port `asset-map serve` listens on.", int),
    Setting("WORKERS", 4, "Server worker processes (gunicorn; more processes than cores pays off, as requests are "
            "Python-bound).", int),
    Setting("THREADS", 2, "Threads per worker (they overlap database waits).", int),
    Setting("EXPORT_THREADS", 2, "Threads each worker has beyond THREADS, for downloads: a worker sending a download "
            "(which holds its thread for as long as the client takes) still has THREADS threads for the map's "
            "requests, which it accepts all the same. EXPORT_SLOTS bounds the downloads of all workers together. 0: "
            "downloads take threads from the map.", int),
    Setting("PRELOAD", 1, "1: build the app once and fork the workers from it (they share its memory); 0: each "
            "worker builds its own (the layout before issue 16, kept for measuring).", int),
    Setting("POOL_SIZE", 5, "Database connections kept per process.", int),
    Setting("STATEMENT_TIMEOUT_MS", 15000, "A query running longer than this is cancelled; the request gets a 504.",
            int),
    Setting("CONNECT_TIMEOUT_S", 2, "Give up connecting to the database after this many seconds (libpq's minimum "
            "is 2); a stopped database on the same host is refused at once.", int),
    Setting("POOL_TIMEOUT_S", 3, "A request waits at most this long for a free database connection, then gets a "
            "503.", int),
    Setting("WORKER_MAX_MB", 512, "Replace a server worker once the memory it holds of its own (not shared with "
            "the others) grows past this many MB, after the requests it is serving; checked every 500 requests (0: "
            "never).", int),
    Setting("MAX_REQUESTS", 0, "Also replace a server worker after between this many and half as many again "
            "requests (0: never; WORKER_MAX_MB is what catches a leak).", int),
    Setting("FEED_CACHE_MB", 32, "Memory per server process for answers of the ORUK feed, kept until the assets or "
            "reference data change (0: every request reads the database).", int),
    Setting("PAGE_CACHE_MB", 32, "Memory per server process for public asset pages (/assets/<id>) it has served, "
            "kept until the assets or reference data change (0: every page is looked up in the database).", int),
    Setting("TABLE_CACHE_MB", 16, "Memory per server process for pages of the public's asset table (/assets) it has "
            "served, kept until the assets or reference data change (0: every page is drawn).", int),
    Setting("PAGE_RECHECK_MS", 1000, "How often a server process checks its kept asset pages and public vector "
            "tiles against the database (change stamps, and who may still see each asset); a change made by another "
            "process is served stale for at most this long (0: every request checks). A process's own writes are "
            "seen at once.", int),
    Setting("STATIC_MAX_AGE_S", 3600, "Cache-Control max-age of the app's own static files.", int),
    Setting("VENDOR_MAX_AGE_S", 604800, "Cache-Control max-age of the vendored JavaScript/CSS (pinned versions; 7 "
            "days).", int),
    Setting("SECRET_KEY", "", "Flask secret key for sessions. Empty: a random key kept in var/secret_key.",
            doc_default="(random, kept in var/secret_key)"),
    Setting("MAX_UPLOAD_MB", 50, "Largest upload accepted.", int),
    Setting("AREA_TOLERANCE_M", 200, "An imported point this close (metres, EPSG:27700) outside every district or "
            "LSOA takes the nearest one, flagged; farther out it is quarantined as out of area.", int),
    Setting("IMPORT_MAX_COLUMNS", 1000, "A register file with more columns than this is refused.", int),
    Setting("GEOCODER", "", "Online geocoder tried after coordinates, grid reference, UPRN and postcode: empty (off) "
            "or nominatim (1 request/s, answers cached under var/geocode-cache/)."),
    Setting("GEOCODER_USER_AGENT", "asset-map", "User agent the online geocoder sends (Nominatim's policy asks for "
            "one that names the application)."),
    Setting("COOKIE_SECURE", 1, "1: session cookies are sent over HTTPS only (browsers also accept them from "
            "http://localhost). 0: for a plain-HTTP deployment on another host.", int),
    Setting("SESSION_HOURS", 8, "A sign-in lasts at most this long; then the user signs in again.", int),
    Setting("LOGIN_MAX_FAILURES", 5, "Failed sign-ins allowed per address and e-mail within LOGIN_WINDOW_MINUTES "
            "before sign-in is refused with 429.", int),
    Setting("LOGIN_WINDOW_MINUTES", 15, "The window over which failed sign-ins are counted.", int),
    Setting("TOKEN_DAYS", 90, "Default lifetime of a new API token (`asset-map token create`); 0: no expiry.", int),
    Setting("SMTP_URL", "", "Where e-mail goes: smtp://user:password@host:587 (STARTTLS when the server offers "
            "it), smtps://host:465 (TLS), or smtp://localhost:25. Empty: messages are written to the outbox folder "
            "var/outbox/ for an officer to list and send (`asset-map mail outbox`, `asset-map mail send`)."),
    Setting("MAIL_FROM", "asset-map <asset-map@localhost>", "The From address of the e-mails the app sends."),
    Setting("SITE_URL", "http://127.0.0.1:5000", "The site's public address, for links in e-mails and printed "
            "documents."),
    Setting("CONFIRM_LINK_DAYS", 30, "A confirm-your-listing link works once, for this many days.", int),
    Setting("PUBLIC_WRITE_LIMIT", "10 per minute;60 per hour;300 per day", "Most suggestions, offers and "
            "corrections one address may send (Flask-Limiter notation, limits separated by ';'); beyond it, a polite "
            "429.", str),
    Setting("RATE_LIMIT_STORAGE", "asset-map-database://", "Where rate-limit counts live (a Flask-Limiter storage "
            "URI). asset-map-database:// is the app's database, shared by every server process; memory:// keeps "
            "them in each process (the effective limit is then the setting times WORKERS)."),
    Setting("REQUIRE_POSTGIS", 0, "1: tests fail instead of skipping when PostGIS cannot be reached (CI sets it).",
            int),
    Setting("DASK_SCHEDULER", "", "Address of a dask.distributed scheduler (tcp://host:8786) that runs a network "
            "gap report's districts; empty: they run in this process. Results are the same either way."),
    Setting("NETWORK_FILE", "", "OpenStreetMap extract (.osm.pbf) `make run` loads as the walk and drive networks. "
            "Empty: a synthetic street grid over the loaded districts, so network reports work without one."),
    Setting("NETWORK_SNAP_M", 500, "A point farther than this (metres) from every network node is off the network: "
            "it gets no network distance rather than a straight-line one.", float),
    Setting("NETWORK_SEARCH_M", 20000, "How far along the network (metres) a report looks for an area's nearest "
            "asset; beyond it the area is marked 'beyond search'.", float),
]

_BY_NAME = {s.name: s for s in SETTINGS}

# Read by the test suite only (not by the app); documented with the others.
TEST_SETTINGS = [
    Setting("REQUIRE_BROWSER", 0, "1: browser tests fail instead of skipping without Chromium (.ci/run sets it).", int),
    Setting("REQUIRE_PACK", 0, "1: tests that need the reference pack fail instead of skipping when it is not found "
            "(.ci/run sets it; so does a CI environment variable).", int),
    Setting("TEST_SERVER_URL", "", "Run the tests against this PostgreSQL server instead of a throwaway cluster."),
    Setting("CHROMIUM", "/usr/bin/chromium", "The Chromium binary the browser tests drive."),
    Setting("STANDARDS_DIR", "", "Published standards' schemas (HSDS-UK 3.0) the tests validate against. Empty: "
            "../shared/data/standards."),
    Setting("TESTING", 0, "1: the app runs as the tests' app (set by their test config).", int),
]


def _convert(setting, raw):
    if setting.type in (int, float):
        try:
            return setting.type(raw)
        except (TypeError, ValueError) as err:
            kind = "a whole number" if setting.type is int else "a number"
            msg = f"Setting {setting.env} must be {kind}, got {raw!r}."
            raise ConfigError(msg) from err
    return raw


def load_settings(overrides=None, environ=None, instance=None):
    """Defaults, then the instance file's values (``instance``: {NAME: value}), then the environment, then explicit
    overrides; returns {NAME: value}."""
    environ = os.environ if environ is None else environ
    instance = instance or {}
    values = {}
    for s in SETTINGS:
        raw = environ.get(s.env, instance.get(s.name, s.default))
        values[s.name] = _convert(s, raw)
    for name, raw in (overrides or {}).items():
        if name in _BY_NAME:
            values[name] = _convert(_BY_NAME[name], raw)
        else:
            values[name] = raw
    return values


def setting(name, environ=None):
    return load_settings(environ=environ)[name]


def markdown_table():
    """The README's settings tables, made from SETTINGS and TEST_SETTINGS."""
    def default(s):
        if s.doc_default:
            return s.doc_default
        value = str(s.default)
        if value == str(PROJECT_DIR / "var"):
            return "`var/`"
        return f"`{value}`" if value else "(empty)"

    def rows(settings):
        return [f"| `{s.env}` | {default(s)} | {s.help.replace('|', chr(92) + '|')} |" for s in settings]

    head = ["| Variable | Default | Meaning |", "|---|---|---|"]
    return "\n".join(head + rows(SETTINGS) + ["", "Read by the tests only:", ""] + head + rows(TEST_SETTINGS)) + "\n"


def find_reference_pack(environ=None):
    """The reference pack: ASSET_MAP_REFERENCE_DIR, else the nearest ``shared/data/staffordshire`` beside the project
    or one of the folders above it (a worktree or a clone sits under the same parent); None when there is none."""
    environ = os.environ if environ is None else environ
    if environ.get("ASSET_MAP_REFERENCE_DIR"):
        return Path(environ["ASSET_MAP_REFERENCE_DIR"])
    for folder in PROJECT_DIR.parents:
        pack = folder / "shared" / "data" / "staffordshire"
        if pack.is_dir():
            return pack
    return None


def attribution_lines(settings):
    return [line.strip() for line in settings["ATTRIBUTION"].split("|") if line.strip()]


def default_reference_dir(settings):
    """The pack `make run` loads, or None for the synthetic county."""
    if settings["REFERENCE_DIR"]:
        return Path(settings["REFERENCE_DIR"])
    return find_reference_pack(environ={})
