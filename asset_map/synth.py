"""A synthetic county: districts, areas, need, a postcode gazetteer and asset registers, made up from a seed.

For the demo on machines without the real reference pack, for tests and for benchmarks at England scale
(33,755 areas, 1,000,000 assets in a few seconds). Pure: :func:`generate` returns frames; nothing here touches a
database or Flask. The same seed gives identical frames; the parts that do not depend on ``assets`` (districts,
areas, need, postcodes) do not change when only ``assets`` changes.

How it is built (all numpy / shapely 2 array operations, no Python loop over rows):

- Areas are the cells of a quad mesh in EPSG:27700 (metres) centred on Staffordshire. The mesh starts as a regular
  lattice of 2 km cells, every vertex is jittered, then the plane is pulled in around a few "urban cores" by smooth
  radial warps, so cells are about 0.5-1.5 km² in towns and about 4 km² in the countryside. Neighbouring cells share
  their vertices, so the areas tile the county with no gap and no overlap.
- Cells are numbered along a snake (boustrophedon) path that steps between 4-neighbours only; districts are
  consecutive runs of that path, so every district is one contiguous block of areas.
- Deprivation is highest near the cores (each core with its own intensity), plus smooth and local noise.
- Vertices are converted to EPSG:4326 once and polygons and points are built from the converted vertices: a
  postcode is a convex combination of its cell's four corners, so it lies inside its area in EPSG:4326 exactly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

# Where the county sits, and how big a countryside cell is (EPSG:27700 metres).
CENTRE_EASTING = 395_000
CENTRE_NORTHING = 320_000
CELL_METRES = 2_000

AREAS_PER_DISTRICT = 80
MAX_DISTRICTS = 400
AREA_VINTAGE = 2021
NEED_VINTAGE = 2025
POSTCODE_SOURCE = "synthetic"
POSTCODE_VINTAGE = "synthetic"
# last_verified dates count back from this day unless generate(as_of=...) says otherwise; fixed so that the same seed
# gives the same frames on any day.
REFERENCE_DATE = dt.date(2026, 11, 1)

DISTRICT_CODE_BASE = 900_000  # "E07" + 900001 ...: the shape of an ONS LAD code in an unused range
AREA_CODE_BASE = 900_000  # "E01" + 900001 ...: the shape of an LSOA code in an unused range

NEED_INDICATORS = ("imd", "imd_income", "imd_employment", "imd_education", "imd_health", "imd_crime",
                   "imd_barriers", "imd_living_environment")

OFFERS = ("skills", "time", "knowledge", "buildings/space", "equipment", "money", "networks", "care", "leadership")

REGISTER_COLUMNS = ("source_key", "name", "tier", "category", "description", "offers", "address", "postcode", "uprn",
                    "email", "phone", "url", "status", "last_verified", "visibility", "consent", "lon", "lat")

# register name -> (tier, share of all assets, source_key prefix)
REGISTERS = {
    "synth-organisations": ("organisation", 0.4, "ORG"),
    "synth-associations": ("association", 0.4, "ASC"),
    "synth-individuals": ("individual", 0.2, "IND"),
}

# tier -> {category: (relative frequency, typical offers, name templates, description)}
# In a template "{p}" is a place word, "{s}" a saint, "{n}" a surname.
CATEGORIES = {
    "organisation": {
        "library": (5, ("knowledge", "buildings/space", "networks"),
                    ("{p} Library", "{p} Library and Information Centre"),
                    "Public library: books, computers, study space and local information."),
        "school": (20, ("buildings/space", "knowledge", "skills"),
                   ("{p} Primary School", "St {s}'s C of E Primary School", "{p} Academy", "{p} High School",
                    "{p} Nursery School"),
                   "School; halls and playing fields available to hire out of hours."),
        "gp_practice": (8, ("care", "knowledge"),
                        ("{p} Medical Centre", "{p} Surgery", "{p} Health Centre", "{n} Family Practice"),
                        "GP practice with social prescribing link worker."),
        "childrens_centre": (5, ("care", "buildings/space", "networks"),
                             ("{p} Children's Centre", "{p} Family Hub"),
                             "Support for families with young children: play sessions, health visitors, advice."),
        "community_centre": (15, ("buildings/space", "equipment", "networks"),
                             ("{p} Community Centre", "{p} Village Hall", "{p} Community Hub", "{p} Memorial Hall"),
                             "Community building with rooms and a kitchen to hire."),
        "park": (12, ("buildings/space",),
                 ("{p} Park", "{p} Recreation Ground", "{p} Country Park", "{p} Allotments", "{p} Nature Reserve"),
                 "Public green space."),
        "business": (25, ("money", "equipment", "skills"),
                     ("{n} & Sons", "{p} Bakery", "{p} Garage", "{n}'s Cafe", "{p} Pharmacy", "{p} Hardware",
                      "{n} Builders", "{p} Post Office"),
                     "Local business that supports community events."),
        "voluntary_organisation": (10, ("time", "networks", "leadership", "knowledge"),
                                   ("{p} Volunteer Centre", "{p} Food Bank", "{p} Community Trust",
                                    "{p} Advice Centre", "{p} Credit Union", "{p} Age Concern"),
                                   "Voluntary organisation with paid staff and volunteers."),
    },
    "association": {
        "faith_group": (20, ("buildings/space", "time", "care", "networks"),
                        ("St {s}'s Church", "{p} Methodist Church", "{p} Baptist Chapel", "{p} Mosque",
                         "{p} Gurdwara", "{p} Quaker Meeting", "{p} Community Church"),
                        "Faith group; runs a lunch club and lends its hall."),
        "sports_club": (25, ("skills", "equipment", "time"),
                        ("{p} Football Club", "{p} Cricket Club", "{p} Bowls Club", "{p} Running Club",
                         "{p} Rugby Club", "{p} Swimming Club", "{p} Tennis Club"),
                        "Members' sports club; coaching for all ages."),
        "youth_club": (12, ("time", "skills", "leadership"),
                       ("{p} Youth Club", "{p} Scouts", "{p} Girlguiding", "{p} Young People's Project"),
                       "Youth club run by volunteers."),
        "self_help_group": (15, ("care", "knowledge", "time"),
                            ("{p} Men's Shed", "{p} Walking Group", "{p} Parkinson's Support Group",
                             "{p} Bereavement Group", "{p} Peer Support Group", "{p} Knit and Natter"),
                            "Self-help group that meets weekly."),
        "community_run_library": (3, ("buildings/space", "time", "knowledge"),
                                  ("{p} Community Library",),
                                  "Library run by volunteers."),
        "tenants_residents_group": (12, ("networks", "leadership", "time"),
                                    ("{p} Tenants' and Residents' Association", "{p} Residents' Group",
                                     "{p} Neighbourhood Watch"),
                                    "Residents' group: litter picks, newsletters, a voice with the council."),
        "carers_network": (8, ("care", "networks", "knowledge"),
                           ("{p} Carers' Network", "{p} Young Carers", "{p} Carers' Cafe"),
                           "Network of unpaid carers who support each other."),
    },
    "individual": {
        "volunteer": (45, ("time", "skills"), ("{f} {n}",), "Volunteer who can give a few hours a week."),
        "skill_share": (25, ("skills", "knowledge"), ("{f} {n}",), "Happy to teach a skill: cooking, IT, DIY."),
        "mentor": (15, ("knowledge", "leadership", "skills"), ("{f} {n}",), "Mentor for young people and new groups."),
        "carer": (15, ("care", "time"), ("{f} {n}",), "Carer with experience to share."),
    },
}

PLACES = ("Riverside", "Hillside", "Oakfield", "Meadowbank", "Brookside", "Westgate", "Eastfield", "Northwood",
          "Southbank", "Millbrook", "Ashgrove", "Elmwood", "Fernhill", "Greenway", "Highfield", "Kingsway",
          "Lakeside", "Moorside", "Newtown", "Orchard", "Parkside", "Queensway", "Rosehill", "Stonebridge",
          "Thornley", "Upper Vale", "Valley", "Willowbank", "Yewtree", "Castle", "Abbey", "Market", "Canalside",
          "Station", "Churchfields", "Bridgend", "Forest", "Heathfield", "Chasewater", "Linden")
SAINTS = ("Mary", "John", "Peter", "Paul", "Michael", "Chad", "Luke", "Mark", "Andrew", "James", "Werburgh",
          "Editha", "Matthew", "Thomas", "Margaret", "Anne")
SURNAMES = ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Wright",
            "Robinson", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson",
            "Clarke", "Khan", "Hughes", "Edwards", "Hill", "Moore", "Turner", "Cooper", "Ward", "Morris", "Baker",
            "Harris", "Lee", "King", "Allen", "Singh", "Ahmed", "Begum", "Kowalski", "Okafor")
FIRST_NAMES = ("Alex", "Sam", "Jo", "Chris", "Pat", "Jamie", "Robin", "Charlie", "Taylor", "Morgan", "Jordan",
               "Casey", "Riley", "Ashley", "Frankie", "Jesse", "Kim", "Lee", "Max", "Nicky", "Ali", "Dani", "Mo",
               "Ronnie", "Sandy", "Terry", "Val", "Billie", "Drew", "Kit")
STREETS = ("High Street", "Station Road", "Church Lane", "Mill Lane", "Park Road", "Victoria Road", "Green Lane",
           "Main Street", "School Lane", "The Crescent", "Manor Road", "Queen Street", "King Street", "New Road",
           "Chapel Street", "Market Square", "Bridge Street", "London Road", "Stafford Road", "Canal Side",
           "Orchard Close", "Meadow Way", "Forge Lane", "Albert Street", "Windmill Hill")
DISTRICT_NAMES = ("Synthshire North", "Synthshire South", "Synthshire East", "Synthshire West", "Synthshire Central",
                  "Synthshire Moorlands", "Synthshire Vale", "Synthshire Chase", "Synthshire Heath")
_NAME_STEMS = ("Synth", "Mock", "Faux", "Proxy", "Sample", "Dummy", "Fable", "Ersatz", "Replica", "Token", "Placebo",
               "Decoy", "Pseudo", "Shadow", "Mirror", "Echo", "Phantom", "Model", "Stand", "Tester")
_NAME_SUFFIXES = ("ford", "bury", "ton", "ley", "wick", "field", "ham", "stow", "worth", "minster", "bridge", "dale",
                  "hurst", "by", "cester", "borough", "combe", "mere", "thorpe", "well")

# Postcodes: outward codes "ZY1".."ZY98", then "ZX1".. No real postcode area starts with Z but ZE (left out), and the
# official format forbids I, J and Z as second letters, so these are well-formed yet can never be real.
# Inward codes: sector digit + two unit letters.
_POSTCODE_AREAS = tuple("Z" + c for c in "YXWVUTSRQPONMLKHGFDCBA")
_OUTWARD_NUMBERS = 98
_UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the 20 letters Royal Mail uses in a unit (no C, I, K, M, O, V)
_INWARDS_PER_OUTWARD = 10 * len(_UNIT_LETTERS) ** 2
POSTCODES_PER_AREA = (30, 40)

# Fake but well-formed contact details: Ofcom's drama ranges and RFC 2606 example domains.
_LANDLINES = np.array([f"01632 960{i:03d}" for i in range(1000)], dtype=object)
_MOBILES = np.array([f"07700 900{i:03d}" for i in range(1000)], dtype=object)

# Fractions of register rows with odd data, to exercise validation, geocoding and quarantine.
SHARE_WITH_COORDINATES = 0.5
SHARE_MESSY_POSTCODE = 0.01
SHARE_INVENTED_POSTCODE = 0.005
MAX_AGE_DAYS = 3 * 365
UPRN_BASE = 990_000_000_001  # 12 digits, far above the UPRNs Staffordshire's addresses have


@dataclass
class SynthCounty:
    """The frames of one synthetic county. Geometries are EPSG:4326; registers hold strings ("" when blank)."""

    districts: gpd.GeoDataFrame
    areas: gpd.GeoDataFrame
    need: pd.DataFrame
    postcodes: gpd.GeoDataFrame
    registers: dict[str, pd.DataFrame]
    seed: int = 1

    def write(self, out_dir) -> Path:
        """Write the county as a reference pack the loaders read: GeoJSON via pyogrio, CSV for the rest."""
        out = Path(out_dir)
        (out / "registers").mkdir(parents=True, exist_ok=True)
        # 7 decimals (~1 cm): shared vertices round alike, so the areas still tile the districts.
        self.districts.to_file(out / "districts.geojson", driver="GeoJSON", engine="pyogrio",
                               layer_options={"COORDINATE_PRECISION": 7})
        self.areas.to_file(out / "areas_2021.geojson", driver="GeoJSON", engine="pyogrio",
                           layer_options={"COORDINATE_PRECISION": 7})
        self.need.to_csv(out / "need_imd2025.csv", index=False,
                         columns=["area_code", "indicator", "vintage", "score", "rank", "decile"])
        pcs = pd.DataFrame({
            "postcode": self.postcodes["postcode"],
            "district_code": self.postcodes["district_code"],
            "lon": self.postcodes.geometry.x.round(6),
            "lat": self.postcodes.geometry.y.round(6),
            "source": self.postcodes["source"],
            "vintage": self.postcodes["vintage"],
        })
        pcs.to_csv(out / "postcodes.csv", index=False)
        for name, frame in self.registers.items():
            frame.to_csv(out / "registers" / f"{name}.csv", index=False)
        return out


def default_districts(areas: int) -> int:
    """About one district per 80 areas (9 for 700), at least 1, at most 400."""
    return int(min(MAX_DISTRICTS, max(1, round(areas / AREAS_PER_DISTRICT))))


def generate(areas: int = 700, assets: int = 2000, *, seed: int = 1, districts: int | None = None,
             as_of: dt.date | None = None) -> SynthCounty:
    """Make a synthetic county of ``areas`` areas and ``assets`` register rows; same arguments, same frames.

    ``as_of`` is the day ``last_verified`` dates count back from (default :data:`REFERENCE_DATE`; the demo may pass
    today so that the share of stale assets looks right).
    """
    if int(areas) < 1:
        msg = f"A synthetic county needs at least one area, got {areas}."
        raise ValueError(msg)
    if int(assets) < 0:
        msg = f"The number of assets cannot be negative, got {assets}."
        raise ValueError(msg)
    n_areas, n_assets = int(areas), int(assets)
    n_districts = default_districts(n_areas) if districts is None else int(districts)
    if not 1 <= n_districts <= n_areas:
        msg = f"districts must be between 1 and the number of areas ({n_areas}), got {districts}."
        raise ValueError(msg)

    # One independent stream per part, so e.g. changing `assets` leaves the geography alone.
    def rng(part):
        return np.random.default_rng([int(seed), part])

    mesh = _mesh(n_areas, n_districts, rng(1))
    district_frame, area_frame = _geography(mesh, n_districts, rng(2))
    need = _need(mesh, area_frame["code"].to_numpy(), rng(3))
    postcodes, pc_offset, pc_count = _postcodes(mesh, area_frame, rng(4))
    registers = _registers(mesh, district_frame, area_frame, postcodes, pc_offset, pc_count, n_assets, rng(5),
                           as_of or REFERENCE_DATE)
    return SynthCounty(district_frame, area_frame, need, postcodes, registers, int(seed))


# --- geography -------------------------------------------------------------------------------------------------------

@dataclass
class _Mesh:
    rows: np.ndarray  # per area: lattice row of its cell
    cols: np.ndarray  # per area: lattice column
    district: np.ndarray  # per area: district index 0..D-1
    lonlat: np.ndarray  # (R+1, C+1, 2) vertex lattice in EPSG:4326, lon first
    urban: np.ndarray  # per area: 0 (countryside) .. 1 (core of a town)
    deprivation: np.ndarray  # per area: latent deprivation, higher = more deprived

    def corners(self, area_idx):
        """The four corners (lower-left, lower-right, upper-right, upper-left) of the given areas, EPSG:4326."""
        r, c = self.rows[area_idx], self.cols[area_idx]
        v = self.lonlat
        return v[r, c], v[r, c + 1], v[r + 1, c + 1], v[r + 1, c]


def _mesh(n_areas, n_districts, rng):
    # Grid shape: bands of h rows; a district of ~n/D cells is about h x h.
    h = max(1, round(np.sqrt(n_areas / n_districts)))
    bands = max(1, round(np.sqrt(n_areas) / h))
    n_cols = -(-n_areas // (bands * h))
    if n_cols % 2 == 0:
        # An odd column count makes each band's snake end on its top row, next to where the next band starts.
        n_cols += 1
    bands = -(-n_areas // (h * n_cols))
    n_rows = bands * h

    # Snake path: band by band (alternately left->right and right->left), column by column (alternately up and
    # down). Consecutive cells are always 4-neighbours.
    k = np.arange(n_areas)
    band, within = np.divmod(k, h * n_cols)
    j, t = np.divmod(within, h)
    cols = np.where(band % 2 == 0, j, n_cols - 1 - j)
    rows = band * h + np.where(j % 2 == 0, t, h - 1 - t)

    # Districts: consecutive runs of the path, sizes between 0.6x and 1.4x the mean, each at least one area.
    weights = rng.uniform(0.6, 1.4, n_districts)
    extra = n_areas - n_districts
    ends = np.arange(1, n_districts + 1) + np.floor(np.cumsum(weights) / weights.sum() * extra + 1e-9).astype(int)
    ends[-1] = n_areas
    district = np.searchsorted(ends, k, side="right")

    # Vertex lattice in lattice units, jittered; vertices are shared by neighbouring cells.
    gy, gx = np.mgrid[0:n_rows + 1, 0:n_cols + 1].astype(float)
    gx += rng.uniform(-0.18, 0.18, gx.shape)
    gy += rng.uniform(-0.18, 0.18, gy.shape)

    # Urban cores: each pulls the plane towards itself, r' = r (1 - a exp(-(r/L)^2)), which is one-to-one for a < 1,
    # so the mesh stays a tiling; applying them one after the other keeps that.
    n_cores = max(1, -(-n_districts // 2))
    core_x = rng.uniform(0, n_cols, n_cores)
    core_y = rng.uniform(0, n_rows, n_cores)
    core_radius = rng.uniform(2.0, 5.0, n_cores)
    core_pull = rng.uniform(0.45, 0.7, n_cores)
    core_intensity = rng.uniform(0.25, 1.0, n_cores)
    cx, cy = core_x.copy(), core_y.copy()
    for i in range(n_cores):  # a few hundred at most, each a whole-array operation
        dx, dy = gx - cx[i], gy - cy[i]
        s = 1 - core_pull[i] * np.exp(-(dx * dx + dy * dy) / core_radius[i] ** 2)
        gx, gy = cx[i] + dx * s, cy[i] + dy * s
        ddx, ddy = cx - cx[i], cy - cy[i]  # move the cores still to come with the plane
        s = 1 - core_pull[i] * np.exp(-(ddx * ddx + ddy * ddy) / core_radius[i] ** 2)
        cx, cy = cx[i] + ddx * s, cy[i] + ddy * s

    easting = CENTRE_EASTING + (gx - n_cols / 2) * CELL_METRES
    northing = CENTRE_NORTHING + (gy - n_rows / 2) * CELL_METRES
    to_wgs84 = Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)  # always_xy: (lon, lat) order
    lon, lat = to_wgs84.transform(easting, northing)
    lonlat = np.stack([lon, lat], axis=-1)

    # Urban-ness and deprivation from the unwarped cell centres (lattice units).
    x, y = cols + 0.5, rows + 0.5
    urban = np.zeros(n_areas)
    pressure = np.zeros(n_areas)
    for i in range(n_cores):
        d2 = (x - core_x[i]) ** 2 + (y - core_y[i]) ** 2
        g = np.exp(-d2 / (1.6 * core_radius[i]) ** 2)
        urban = np.maximum(urban, g)
        pressure = np.maximum(pressure, g * core_intensity[i])
    smooth = np.zeros(n_areas)
    for _ in range(6):
        angle = rng.uniform(0, 2 * np.pi)
        wavelength = rng.uniform(8, 30)
        smooth += np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / wavelength + rng.uniform(0, 2 * np.pi))
    deprivation = 2.4 * pressure + 0.25 * smooth + 0.35 * rng.standard_normal(n_areas)
    return _Mesh(rows, cols, district, lonlat, urban, deprivation)


def _district_names(n):
    names = list(DISTRICT_NAMES[:n])
    if n > len(names):
        combos = [stem + suffix for stem in _NAME_STEMS for suffix in _NAME_SUFFIXES]
        names += combos[:n - len(names)]
        names += [f"Synthshire District {i + 1:03d}" for i in range(len(names), n)]
    return np.array(names, dtype=object)


def _geography(mesh, n_districts, rng):
    n_areas = len(mesh.rows)
    ll, lr, ur, ul = mesh.corners(np.arange(n_areas))
    rings = np.stack([ll, lr, ur, ul, ll], axis=1)  # counter-clockwise exterior rings
    cells = shapely.polygons(rings)

    district_codes = np.array([f"E07{DISTRICT_CODE_BASE + i + 1}" for i in range(n_districts)], dtype=object)
    district_names = _district_names(n_districts)

    # Districts: the union of their cells. Cells share vertices exactly, so coverage union is exact (and fast).
    starts = np.flatnonzero(np.r_[True, mesh.district[1:] != mesh.district[:-1]])
    bounds = np.r_[starts, n_areas]
    unions = np.array([shapely.coverage_union_all(cells[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    parts, owner = shapely.get_parts(unions, return_index=True)
    multi = shapely.multipolygons(parts, indices=owner)
    district_frame = gpd.GeoDataFrame({"code": district_codes, "name": district_names}, geometry=multi,
                                      crs="EPSG:4326")

    # Area names: "<district> 001A", five areas (consecutive along the path, so neighbours) to a number.
    seq = np.arange(n_areas) - starts[mesh.district]
    numbers = np.array([f" {i:03d}" for i in range(1, seq.max() // 5 + 2)], dtype=object)
    letters = np.array(list("ABCDE"), dtype=object)
    area_names = district_names[mesh.district] + numbers[seq // 5] + letters[seq % 5]
    area_codes = np.array([f"E01{AREA_CODE_BASE + i + 1}" for i in range(n_areas)], dtype=object)
    population = np.clip(np.rint(rng.normal(1550, 260, n_areas)), 1000, 3000).astype(np.int64)
    area_frame = gpd.GeoDataFrame({
        "code": area_codes,
        "name": area_names,
        "district_code": district_codes[mesh.district],
        "vintage": np.full(n_areas, AREA_VINTAGE, dtype=np.int64),
        "population": pd.array(population, dtype="Int64"),
    }, geometry=cells, crs="EPSG:4326")
    return district_frame, area_frame


# --- need ------------------------------------------------------------------------------------------------------------

def _need(mesh, area_codes, rng):
    n = len(area_codes)
    z = mesh.deprivation
    # IMD score: skewed, about 2..80 like the real one.
    imd = np.clip(4.0 * np.exp(0.75 * z + 0.9), 0.5, 95.0)
    # Domains: correlated with the overall latent, each on a scale like the real domain's (higher = more deprived).
    domains = {
        "imd_income": (0.85, lambda u: np.clip(0.12 * np.exp(0.55 * u), 0.0, 0.75)),
        "imd_employment": (0.85, lambda u: np.clip(0.10 * np.exp(0.5 * u), 0.0, 0.6)),
        "imd_education": (0.75, lambda u: np.clip(20 * np.exp(0.5 * u), 0.0, 100.0)),
        "imd_health": (0.75, lambda u: np.clip(0.9 * u, -3.5, 3.5)),
        "imd_crime": (0.55, lambda u: np.clip(0.8 * u, -3.5, 3.5)),
        "imd_barriers": (0.3, lambda u: np.clip(22 + 9 * u, 0.0, 80.0)),
        "imd_living_environment": (0.5, lambda u: np.clip(20 * np.exp(0.45 * u), 0.0, 100.0)),
    }
    zs = (z - z.mean()) / (z.std() or 1.0)
    scores = [np.round(imd, 3)]
    for rho, scale in domains.values():
        latent = rho * zs + np.sqrt(1 - rho * rho) * rng.standard_normal(n)
        scores.append(np.round(scale(latent), 3))

    frames = []
    for indicator, score in zip(NEED_INDICATORS, scores, strict=True):
        order = np.lexsort((np.arange(n), -score))  # highest score first; ties by area code
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(1, n + 1)
        frames.append(pd.DataFrame({
            "area_code": area_codes,
            "indicator": indicator,
            "vintage": NEED_VINTAGE,
            "score": score,
            "rank": rank,
            "decile": (rank - 1) * 10 // n + 1,
        }))
    return pd.concat(frames, ignore_index=True)


# --- postcodes -------------------------------------------------------------------------------------------------------

def _outwards(n):
    capacity = len(_POSTCODE_AREAS) * _OUTWARD_NUMBERS
    if n > capacity:
        msg = f"A synthetic county can hold at most {capacity * _INWARDS_PER_OUTWARD} postcodes."
        raise ValueError(msg)
    idx = np.arange(n)
    return np.array([f"{_POSTCODE_AREAS[i // _OUTWARD_NUMBERS]}{i % _OUTWARD_NUMBERS + 1}" for i in idx],
                    dtype=object)


def _inwards():
    return np.array([f" {d}{a}{b}" for d in "1234567890" for a in _UNIT_LETTERS for b in _UNIT_LETTERS], dtype=object)


def _in_cells(mesh, area_idx, rng, margin=0.04):
    """Random points strictly inside the given areas' cells: convex combinations of the four corners."""
    ll, lr, ur, ul = mesh.corners(area_idx)
    u = rng.uniform(margin, 1 - margin, (len(area_idx), 1))
    v = rng.uniform(margin, 1 - margin, (len(area_idx), 1))
    return (1 - u) * (1 - v) * ll + u * (1 - v) * lr + u * v * ur + (1 - u) * v * ul


def _postcodes(mesh, area_frame, rng):
    n_areas = len(area_frame)
    low, high = POSTCODES_PER_AREA
    count = rng.integers(low, high + 1, n_areas)
    offset = np.r_[0, np.cumsum(count)[:-1]]
    total = int(count.sum())
    pc_area = np.repeat(np.arange(n_areas), count)
    # Numbered along the path, so an outward code covers ~110 neighbouring areas and a sector ~11.
    i = np.arange(total)
    n_out = -(-total // _INWARDS_PER_OUTWARD)
    postcode = _outwards(n_out + 3)[i // _INWARDS_PER_OUTWARD] + _inwards()[i % _INWARDS_PER_OUTWARD]
    xy = _in_cells(mesh, pc_area, rng)
    frame = gpd.GeoDataFrame({
        "postcode": postcode,
        "district_code": area_frame["district_code"].to_numpy()[pc_area],
        "lsoa11_code": pd.Series([None] * total, dtype=object),
        "source": POSTCODE_SOURCE,
        "vintage": POSTCODE_VINTAGE,
    }, geometry=shapely.points(xy), crs="EPSG:4326")
    return frame, offset, count


# --- registers -------------------------------------------------------------------------------------------------------

def _slug(text):
    return "".join(ch for ch in text.lower().replace("&", "and") if ch.isalnum())


def _category_tables(tier):
    """Per tier: category names, frequencies, typical-offer matrix, and name/slug/description tables."""
    cats = CATEGORIES[tier]
    names = list(cats)
    freq = np.array([cats[c][0] for c in names], dtype=float)
    typical = np.array([[offer in cats[c][1] for offer in OFFERS] for c in names])
    first_offer = np.array([OFFERS.index(cats[c][1][0]) for c in names])
    descriptions = np.array([cats[c][3] for c in names], dtype=object)
    templates = [list(cats[c][2]) for c in names]
    return names, freq / freq.sum(), typical, first_offer, descriptions, templates


def _fill(template, word):
    for placeholder in ("{p}", "{s}", "{n}"):
        template = template.replace(placeholder, word)
    return template


def _names(tier, cat_idx, templates, rng):
    """Names, e-mail addresses and web addresses, looked up in small tables (no per-row string building)."""
    m = len(cat_idx)
    if tier == "individual":
        first = rng.integers(0, len(FIRST_NAMES), m)
        last = rng.integers(0, len(SURNAMES), m)
        table = np.array([f"{f} {s}" for f in FIRST_NAMES for s in SURNAMES], dtype=object)
        mail = np.array([f"{f.lower()}.{s.lower()}@example.com" for f in FIRST_NAMES for s in SURNAMES], dtype=object)
        key = first * len(SURNAMES) + last
        return table[key], mail[key], np.full(m, "", dtype=object)
    # One table per tier: rows are (category, template) pairs, columns are words.
    words = len(PLACES)
    flat, tpl_offset, tpl_count = [], [], []
    for tpls in templates:
        tpl_offset.append(len(flat))
        tpl_count.append(len(tpls))
        flat.extend(tpls)
    tpl_offset, tpl_count = np.array(tpl_offset), np.array(tpl_count)
    table, slugs = [], []
    for tpl in flat:
        for w in range(words):
            if "{s}" in tpl:
                text = _fill(tpl, SAINTS[w % len(SAINTS)])
            elif "{n}" in tpl:
                text = _fill(tpl, SURNAMES[w % len(SURNAMES)])
            else:
                text = _fill(tpl, PLACES[w])
            table.append(text)
            slugs.append(_slug(text))
    table = np.array(table, dtype=object)
    slugs = np.array(slugs, dtype=object)
    tpl = tpl_offset[cat_idx] + np.floor(rng.random(m) * tpl_count[cat_idx]).astype(np.int64)
    key = tpl * words + rng.integers(0, words, m)
    if tier == "organisation":
        mail = np.array(["info@" + s + ".example.org" for s in slugs], dtype=object)
    else:
        mail = np.array([s + "@example.org" for s in slugs], dtype=object)
    urls = np.array(["https://www." + s + ".example.org" for s in slugs], dtype=object)
    return table[key], mail[key], urls[key]


def _blank_unless(values, keep):
    out = values.copy() if values.dtype == object else values.astype(object)
    out[~keep] = ""
    return out


def _format_degrees(values):
    return np.array([f"{v:.6f}" for v in values.tolist()], dtype=object)


def _messy(postcodes, rng):
    """The same postcodes written carelessly: lower case, no space, two spaces, or lower case without a space."""
    kind = rng.integers(0, 4, len(postcodes))
    s = pd.Series(postcodes, dtype=object)
    out = np.where(kind == 0, s.str.lower(),
                   np.where(kind == 1, s.str.replace(" ", "", regex=False),
                            np.where(kind == 2, s.str.replace(" ", "  ", regex=False),
                                     s.str.lower().str.replace(" ", "", regex=False))))
    return out.astype(object)


def _area_weights(tier, area_frame, mesh, rng):
    pop = area_frame["population"].to_numpy(dtype=float)
    dep = mesh.deprivation
    dep01 = (dep - dep.min()) / ((dep.max() - dep.min()) or 1.0)
    noise = rng.lognormal(0.0, 0.6, len(pop))
    if tier == "organisation":  # services gather in towns
        w = pop * (0.4 + 1.6 * mesh.urban) * noise
    elif tier == "association":  # everywhere, a little thinner where deprivation is high
        w = pop * (0.8 + 0.6 * mesh.urban) * (1.2 - 0.5 * dep01) * noise
    else:  # individuals are recorded where someone went out and asked: patchy
        w = pop * (1.3 - 0.7 * dep01) * noise * (rng.random(len(pop)) > 0.15)
    return w / w.sum()


def _tier_counts(n_assets):
    n_org = round(n_assets * 0.4)
    n_asc = round(n_assets * 0.4)
    return {"synth-organisations": n_org, "synth-associations": n_asc, "synth-individuals": n_assets - n_org - n_asc}


def _locations(mesh, area, pc_strings, pc_offset, pc_count, invented_outwards, rng):
    """Postcode, lon and lat strings for assets in the given areas.

    Every row has a postcode of its area; about half also give a point inside the area. Of the postcode-only rows,
    some write the postcode carelessly (it normalises to one in the gazetteer) and some invent one (not in it).
    """
    m = len(area)
    pc = pc_offset[area] + np.floor(rng.random(m) * pc_count[area]).astype(np.int64)
    postcode = pc_strings[pc]  # fancy indexing: a new array
    has_xy = rng.random(m) < SHARE_WITH_COORDINATES
    xy = _in_cells(mesh, area, rng)
    lon = np.full(m, "", dtype=object)
    lat = np.full(m, "", dtype=object)
    lon[has_xy] = _format_degrees(xy[has_xy, 0])
    lat[has_xy] = _format_degrees(xy[has_xy, 1])
    share = 1 - SHARE_WITH_COORDINATES
    roll = rng.random(m)
    messy = ~has_xy & (roll < SHARE_MESSY_POSTCODE / share)
    invented = ~has_xy & ~messy & (roll < (SHARE_MESSY_POSTCODE + SHARE_INVENTED_POSTCODE) / share)
    postcode[messy] = _messy(postcode[messy], rng)
    k = int(invented.sum())
    inwards = _inwards()
    postcode[invented] = (invented_outwards[rng.integers(0, len(invented_outwards), k)]
                          + inwards[rng.integers(0, len(inwards), k)])
    return postcode, lon, lat


def _registers(mesh, district_frame, area_frame, postcodes, pc_offset, pc_count, n_assets, rng, as_of):
    pc_strings = postcodes["postcode"].to_numpy(dtype=object)
    n_out = -(-len(pc_strings) // _INWARDS_PER_OUTWARD)
    invented_outwards = _outwards(n_out + 3)[n_out:]  # never used by the gazetteer
    towns = district_frame["name"].to_numpy(dtype=object)
    dates = (np.datetime64(as_of, "D") - np.arange(MAX_AGE_DAYS + 1).astype("timedelta64[D]")).astype(str) \
        .astype(object)
    offer_table = np.array(["; ".join(o for b, o in enumerate(OFFERS) if mask >> b & 1)
                            for mask in range(1 << len(OFFERS))], dtype=object)
    numbers = np.array([f"{i} " for i in range(1, 200)], dtype=object)
    streets = np.array([s + ", " for s in STREETS], dtype=object)

    out = {}
    for name, count in _tier_counts(n_assets).items():
        tier, _, prefix = REGISTERS[name]
        m = count
        cats, freq, typical, first_offer, descriptions, templates = _category_tables(tier)
        cat_idx = rng.choice(len(cats), size=m, p=freq)
        area = rng.choice(len(area_frame), size=m, p=_area_weights(tier, area_frame, mesh, rng))

        postcode, lon, lat = _locations(mesh, area, pc_strings, pc_offset, pc_count, invented_outwards, rng)
        # Who and what.
        names, mails, urls = _names(tier, cat_idx, templates, rng)
        bits = rng.random((m, len(OFFERS)), dtype=np.float32) < np.where(typical[cat_idx], 0.7, 0.08)
        mask = (bits * (1 << np.arange(len(OFFERS)))).sum(axis=1)
        mask = np.where(mask == 0, 1 << first_offer[cat_idx], mask)
        if tier == "individual":
            address = np.full(m, "", dtype=object)  # personal data: postcode only
            phone = _blank_unless(_MOBILES[rng.integers(0, 1000, m)], rng.random(m) < 0.7)
            mails = _blank_unless(mails, rng.random(m) < 0.7)
        else:
            address = (numbers[rng.integers(0, len(numbers), m)] + streets[rng.integers(0, len(streets), m)]
                       + towns[mesh.district[area]])
            with_phone = rng.random(m) < (0.85 if tier == "organisation" else 0.6)
            phone = _blank_unless(_LANDLINES[rng.integers(0, 1000, m)], with_phone)
            mails = _blank_unless(mails, rng.random(m) < 0.75)
            urls = _blank_unless(urls, rng.random(m) < (0.7 if tier == "organisation" else 0.4))
        uprn = np.full(m, "", dtype=object)
        with_uprn = np.flatnonzero(rng.random(m) < (0.12 if tier == "organisation" else 0.03))
        uprn[with_uprn] = [str(UPRN_BASE + 10_000_000 * list(REGISTERS).index(name) + i) for i in with_uprn.tolist()]
        status_roll = rng.random(m)
        status = np.where(status_roll < 0.92, "open", np.where(status_roll < 0.96, "closed", "temporarily closed"))
        age_days = np.minimum(rng.exponential(230.0, m), MAX_AGE_DAYS).astype(np.int64)  # ~20% older than a year
        last_verified = dates[age_days]
        restricted = {"organisation": 0.02, "association": 0.06, "individual": 0.25}[tier]
        visibility = np.where(rng.random(m) < restricted, "restricted", "public")
        consent = np.where(rng.random(m) < 0.93, "yes", "no") if tier == "individual" else np.full(m, "yes")

        frame = pd.DataFrame({
            "source_key": np.array([f"{prefix}-{i:07d}" for i in range(1, m + 1)], dtype=object),
            "name": names,
            "tier": tier,
            "category": np.array(cats, dtype=object)[cat_idx],
            "description": descriptions[cat_idx],
            "offers": offer_table[mask],
            "address": address,
            "postcode": postcode,
            "uprn": uprn,
            "email": mails,
            "phone": phone,
            "url": urls,
            "status": status.astype(object),
            "last_verified": last_verified,
            "visibility": visibility.astype(object),
            "consent": consent.astype(object),
            "lon": lon,
            "lat": lat,
        }, columns=list(REGISTER_COLUMNS))
        out[name] = frame.astype("str")
    return out


# --- street network --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StreetGrid:
    """A street grid in EPSG:27700: ``cols`` x ``rows`` junctions ``spacing`` metres apart from (x0, y0), with a
    river between junction rows ``river_row`` and ``river_row + 1`` (None: no river) that only the north-south
    streets at ``bridges`` (column numbers) cross. Junction (c, r) has OSM node id ``1 + r * cols + c``."""

    x0: float
    y0: float
    cols: int
    rows: int
    spacing: float
    river_row: int | None = None
    bridges: tuple = ()
    highway: str = "residential"

    def node_id(self, c, r):
        return 1 + r * self.cols + c

    def xy(self, c, r):
        return self.x0 + c * self.spacing, self.y0 + r * self.spacing

    @classmethod
    def covering(cls, bounds_m, edges, *, river=True, bridge_every_m=3_000):
        """A grid over ``bounds_m`` (min x, min y, max x, max y, EPSG:27700) with about ``edges`` street segments,
        a river across the middle and a bridge every ``bridge_every_m`` metres."""
        minx, miny, maxx, maxy = bounds_m
        w, h = maxx - minx, maxy - miny
        spacing = max(20.0, float(np.sqrt(2 * w * h / max(int(edges), 4))))
        cols, rows = int(w // spacing) + 1, int(h // spacing) + 1
        river_row = rows // 2 if river and rows > 2 else None
        step = max(1, int(round(bridge_every_m / spacing)))
        bridges = tuple(range(step // 2, cols, step)) if river_row is not None else ()
        return cls(minx, miny, cols, rows, spacing, river_row, bridges)


def write_street_grid(grid, path):
    """Write ``grid`` as an OpenStreetMap extract (.osm.pbf) with pyosmium: one way per east-west street, north-south
    streets broken at the river except at the bridges (tagged bridge=yes), and the river as a waterway (not a
    highway, so no mode may use it)."""
    import osmium

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cc, rr = np.meshgrid(np.arange(grid.cols), np.arange(grid.rows))
    x = grid.x0 + cc.ravel() * grid.spacing
    y = grid.y0 + rr.ravel() * grid.spacing
    lon, lat = Transformer.from_crs(27700, 4326, always_xy=True).transform(x, y)
    ts = "2026-11-01T00:00:00Z"
    writer = osmium.SimpleWriter(str(path), overwrite=True)
    try:
        node = osmium.osm.mutable.Node
        for i, (lo, la) in enumerate(zip(np.round(lon, 7).tolist(), np.round(lat, 7).tolist())):
            writer.add_node(node(id=i + 1, location=(lo, la), version=1, timestamp=ts))
        river_ids = []
        if grid.river_row is not None:
            # The river's own nodes, half way between two junction rows.
            ry = grid.y0 + (grid.river_row + 0.5) * grid.spacing
            rx = grid.x0 + np.array([-0.5, grid.cols - 0.5]) * grid.spacing
            rlon, rlat = Transformer.from_crs(27700, 4326, always_xy=True).transform(rx, [ry, ry])
            base = grid.cols * grid.rows + 1
            for k in range(2):
                writer.add_node(node(id=base + k, location=(float(rlon[k]), float(rlat[k])), version=1,
                                     timestamp=ts))
            river_ids = [base, base + 1]
        way = osmium.osm.mutable.Way
        wid = 1
        for r in range(grid.rows):
            writer.add_way(way(id=wid, nodes=[grid.node_id(c, r) for c in range(grid.cols)], version=1, timestamp=ts,
                               tags={"highway": grid.highway, "name": f"Row {r} Street"}))
            wid += 1
        for c in range(grid.cols):
            # (first row, last row, bridge?) of each piece of this north-south street.
            if grid.river_row is None:
                pieces = [(0, grid.rows - 1, False)]
            elif c in grid.bridges:
                pieces = [(0, grid.river_row, False), (grid.river_row, grid.river_row + 1, True),
                          (grid.river_row + 1, grid.rows - 1, False)]
            else:
                pieces = [(0, grid.river_row, False), (grid.river_row + 1, grid.rows - 1, False)]
            for lo_r, hi_r, bridge in pieces:
                if hi_r > lo_r:
                    tags = {"highway": grid.highway, "name": f"Column {c} Road"}
                    if bridge:
                        tags.update(bridge="yes", layer="1")
                    writer.add_way(way(id=wid, nodes=[grid.node_id(c, r) for r in range(lo_r, hi_r + 1)],
                                       version=1, timestamp=ts, tags=tags))
                    wid += 1
        if river_ids:
            writer.add_way(way(id=wid, nodes=river_ids, version=1, timestamp=ts,
                               tags={"waterway": "river", "name": "River Synth"}))
    finally:
        writer.close()
    return path
