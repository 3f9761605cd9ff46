"""Gap reports end to end: read the inputs from the store, run the pure analysis, and hand back what the report, the
CSV and the GeoJSON are made from. The web page (/gaps) and the CLI (`asset-map gap-report`) both call :func:`run`.

Data flows one way: store (areas, need, assets) -> analysis.gap (measures, classes) -> analysis.report (files).
"""

import re
import subprocess
from dataclasses import dataclass, field, replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

import asset_map
from asset_map.analysis import gap
from asset_map.analysis import gap_defaults as defaults
from asset_map.config import PROJECT_DIR
from asset_map.errors import InputError
from asset_map.maps.queries import area_vintage, need_options, parse_need
from asset_map.store import assets as store_assets
from asset_map.store import gap_inputs
from asset_map.store import network as store_network
from asset_map.timer import StepTimer

MAX_MAP_ASSETS = 5_000


@dataclass(frozen=True)
class GapRequest:
    """A gap report's question, parsed once from web form arguments or CLI options (same names)."""

    filter: store_assets.AssetFilter
    need: str = "imd:2025"
    params: gap.GapParams = field(default_factory=gap.GapParams)

    @classmethod
    def from_args(cls, args, *, default_need="imd:2025"):
        flt = store_assets.AssetFilter.from_args(args)
        if not _one(args, "status"):
            # Supply is what people can use today: open assets only, unless the question says otherwise.
            flt = replace(flt, status=defaults.STATUS)
        if flt.bbox or flt.updated_since or flt.q:
            raise InputError("A gap report takes district, area, tier, category, offer, status and verified_within; "
                             "bbox, q and updated_since are for the map and exports.")
        need = _one(args, "need") or default_need
        distance = (_one(args, "distance") or defaults.DISTANCE).lower()
        catchment, minutes, speed = _catchment(args, distance)
        breaks = _one(args, "need_breaks") or ",".join(str(b) for b in defaults.NEED_BREAKS)
        try:
            breaks = tuple(int(v) for v in breaks.split(","))
        except ValueError as err:
            raise InputError(f"Parameter 'need_breaks' has value {breaks!r}: expected two deciles such as 2,5.") \
                from err
        direction = (_one(args, "need_direction") or defaults.NEED_DIRECTION).lower()
        if direction not in defaults.NEED_DIRECTIONS:
            raise InputError(f"Parameter 'need_direction' has value {direction!r}: expected higher or lower "
                             "(which scores mean more need).")
        groups = flt.category or flt.offer or ("any",)
        params = gap.GapParams(catchment_m=catchment, decay=(_one(args, "decay") or defaults.DECAY).lower(),
                               need_method=(_one(args, "need_classes") or defaults.NEED_METHOD).lower(),
                               need_breaks=breaks, higher_score_is_more_need=direction == "higher",
                               supply_measure=(_one(args, "supply") or defaults.SUPPLY_MEASURE).lower(),
                               groups=tuple(groups), distance=distance, catchment_minutes=minutes,
                               speed_kmh=speed)
        params.check()
        return cls(filter=flt, need=need, params=params)

    def as_args(self):
        out = self.filter.as_args()
        out["status"] = ",".join(self.filter.status)
        p = self.params
        catchment = f"{p.catchment_minutes:g}min" if p.catchment_minutes is not None else f"{p.catchment_m:g}"
        if p.distance != "straight":
            out["distance"] = p.distance
        if p.catchment_minutes is not None:
            out["speed"] = f"{p.speed_kmh:g}"
        out.update({"need": self.need, "catchment": catchment, "decay": p.decay,
                    "need_classes": p.need_method, "need_breaks": ",".join(str(b) for b in p.need_breaks),
                    "need_direction": "higher" if p.higher_score_is_more_need else "lower",
                    "supply": p.supply_measure})
        return out


def distance_choices(engine):
    """(value, (label, available)) of each way to measure distance, for the form: a network mode is available
    when its network is loaded."""
    out = [("straight", ("straight line", True))]
    for mode, words in (("walk", "walking"), ("cycle", "cycling"), ("drive", "driving")):
        info = store_network.info(engine, mode)
        label = f"{words} along the streets" + (f" ({info['source']})" if info else " (no network loaded)")
        out.append((mode, (label, info is not None)))
    return out


def _one(args, name):
    value = args.get(name) if hasattr(args, "get") else None
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return str(value).strip() if value is not None and str(value).strip() else None


_CATCHMENT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(m|metres|meters|min|mins|minutes)?\s*$", re.IGNORECASE)


def _catchment(args, distance):
    """(metres, minutes or None, speed km/h or None) of the catchment: "1600" or "1600m" are metres, "15min" (or
    catchment_unit=minutes) minutes at ``speed`` km/h (default: the mode's planning speed, walking for straight
    lines)."""
    text = _one(args, "catchment") or f"{defaults.CATCHMENT_M:g}"
    match = _CATCHMENT.match(text)
    if not match:
        msg = (f"Parameter 'catchment' has value {text!r}: expected metres (1600) or minutes (15min, with a speed in "
               "km/h).")
        raise InputError(msg)
    value, unit = float(match.group(1)), (match.group(2) or _one(args, "catchment_unit") or "m").lower()
    if not unit.startswith("min"):
        return value, None, None
    from asset_map.analysis.network import DEFAULT_SPEED_KMH, minutes_to_metres

    default = DEFAULT_SPEED_KMH.get(distance, DEFAULT_SPEED_KMH["walk"])
    speed = _number(_one(args, "speed") or str(default), "speed", "km/h")
    if not 0.5 <= speed <= 130:
        raise InputError(f"Parameter 'speed' has value {speed:g}: expected km/h between 0.5 and 130.")
    return minutes_to_metres(value, speed), value, speed


def _number(value, name, unit="metres"):
    try:
        return float(value)
    except ValueError as err:
        raise InputError(f"Parameter '{name}' has value {value!r}: expected a number of {unit}.") from err


@dataclass
class GapResult:
    request: GapRequest
    frame: gpd.GeoDataFrame          # one row per reported area, EPSG:4326, sorted by code
    assets: pd.DataFrame             # every asset used (id, lon, lat, group_<label>)
    map_assets: gpd.GeoDataFrame     # assets near the reported areas, with names, for the map
    inputs: dict                     # what the report was made from (recorded in every output)
    districts: dict                  # code -> name


def run(engine, request, *, role="public", population_points=None, timings=None, suppress_below=5, settings=None,
        runner=None):
    """The gap analysis for ``request`` as ``role`` sees the assets (public: no individuals, no restricted ones).
    ``timings`` (a dict) receives the seconds each stage took. ``settings`` (default: the environment's) give the
    network snap and search distances and where network partitions run (``runner`` overrides that)."""
    from asset_map import compute
    from asset_map.config import load_settings

    settings = settings or load_settings()
    clock = StepTimer(timings=timings).mark
    options = need_options(engine)
    indicator, vintage = parse_need(request.need, options)
    av = area_vintage(vintage)
    areas = gap_inputs.areas_with_need(engine, indicator=indicator, vintage=vintage, area_vintage=av)
    names = gap_inputs.district_names(engine)
    flt = request.filter
    loaded = sorted(areas["district_code"].dropna().unique())
    districts = list(flt.district) or loaded
    unknown = sorted(set(districts) - set(loaded))
    if unknown:
        msg = (f"District {', '.join(unknown)} has no areas of vintage {av} loaded (need {indicator}:{vintage}). "
               f"Loaded districts: {', '.join(loaded[:20])}{' ...' if len(loaded) > 20 else ''}.")
        raise InputError(msg)
    clock("read areas and need")
    report = areas["district_code"].isin(districts).to_numpy()
    overlap = None
    if flt.area:
        # An area of any geography: report the LSOAs it overlaps (within the districts, when also given).
        overlap = _area_overlap(engine, flt.area, areas, av)
        report = report & areas["code"].isin(overlap["code"]).to_numpy()
        districts = sorted(areas.loc[report, "district_code"].dropna().unique())
    if not areas.loc[report, "need_decile"].notna().any() and request.params.need_method == "deciles":
        msg = (f"No {indicator}:{vintage} deciles are loaded for the chosen areas; choose another indicator or "
               "need_classes=quantiles.")
        raise InputError(msg)

    # Supply comes from every district: the nearest library may be over the border.
    # A gap report is made to be shared: whatever the role, individuals are never among its points (names, places),
    # only in its protected counts per area (asset_map.privacy, asset_map.disclosure).
    supply_tiers = tuple(t for t in (flt.tier or store_assets.TIERS) if t != "individual") or ("none",)
    supply_filter = store_assets.AssetFilter(tier=supply_tiers, category=flt.category, offer=flt.offer,
                                             status=flt.status, verified_within=flt.verified_within)
    params = request.params
    kind = "category" if flt.category else "offer"
    labels = [g for g in params.groups if g != "any"]
    points = gap_inputs.asset_points(engine, supply_filter, role=role, groups=[(kind, g) for g in labels])
    points = points.rename(columns={f"group_{i}": f"group_{gap.slug(g)}" for i, g in enumerate(labels)})
    asset_gdf = gpd.GeoDataFrame(points, geometry=gpd.points_from_xy(points["lon"], points["lat"]), crs=4326)
    clock("read assets")
    net, net_info = None, None
    if params.distance != "straight":
        params = replace(params, max_snap_m=float(settings["NETWORK_SNAP_M"]),
                         search_m=float(settings["NETWORK_SEARCH_M"]))
        request = replace(request, params=params)
        net_info = store_network.info(engine, params.distance)
        if net_info is None:
            msg = (f"No {params.distance} network is loaded: load an OpenStreetMap extract with `asset-map load "
                   f"network FILE.osm.pbf --mode {params.distance}`, or choose straight-line distances.")
            raise InputError(msg)
        net, _ = store_network.read(engine, params.distance)
        clock("read network")
    frame = gap.analyse(areas, asset_gdf, params, report=report, population_points=population_points, network=net,
                        run=runner or compute.runner(settings))
    clock("measures and classes")

    near_cols = [f"nearest_{gap.slug(g)}_id" for g in params.groups]
    details = _map_assets(engine, frame, points, near_cols, params.catchment_m, role)
    for g in params.groups:
        s = gap.slug(g)
        frame[f"nearest_{s}_name"] = frame[f"nearest_{s}_id"].map(details["name"]).astype(object).fillna("")
    if not flt.tier or "individual" in flt.tier:
        frame["individuals"] = _individuals(engine, flt, frame, av, suppress_below)
    inputs = _inputs(engine, request, indicator, vintage, av, supply_filter, len(points), districts, len(frame),
                     role)
    if net_info is not None:
        inputs["network"] = {**{k: net_info[k] for k in ("mode", "source", "source_date", "sha256", "nodes", "edges",
                                                         "buffer_m", "loaded_at")},
                             **frame.attrs.get("network", {})}
    if overlap is not None:
        inputs["area"] = _area_summary(engine, flt, overlap, areas, role, suppress_below)
    clock("asset names and provenance")
    return GapResult(request=request, frame=frame, assets=points, map_assets=details, inputs=inputs,
                     districts=names)


def _area_overlap(engine, values, areas, av):
    """The LSOAs (of vintage ``av``) that the areas ('geography:code' values) overlap, with each one's share inside
    and estimated residents inside (analysis.overlay)."""
    from asset_map.analysis import overlay
    from asset_map.store import geographies

    shapes = [geographies.area(engine, *value.split(":", 1))["geometry"] for value in values]
    union = shapes[0] if len(shapes) == 1 else shapely.union_all(shapes)
    found = overlay.shares(areas[["code", "population", "geometry"]], union)
    if not len(found):
        msg = (f"Area {', '.join(values)} overlaps no LSOA {av} that is loaded: it lies outside the loaded areas, "
               "so it has no need data.")
        raise InputError(msg)
    return found


def _area_summary(engine, flt, overlap, areas, role, suppress_below):
    """What the report says about the area itself: names, its need weighted by residents inside, its assets."""
    from asset_map.analysis import overlay
    from asset_map.store import geographies

    need = areas[["code", "need_score", "need_decile"]]
    summary = overlay.weighted_need(overlap, need)
    summary["areas"] = [{"value": v, "label": geographies.area_label(engine, v)} for v in flt.area]
    summary["lsoa_shares"] = [
        {"code": r.code, "share": float(r.share),
         "population_inside": None if np.isnan(r.population_inside) else float(r.population_inside)}
        for r in overlap.itertuples()]
    inside = store_assets.AssetFilter(area=flt.area, tier=flt.tier, category=flt.category, offer=flt.offer,
                                      status=flt.status, verified_within=flt.verified_within)
    summary["assets_inside"] = int(store_assets.count(engine, inside, role=role))
    return summary


def _individuals(engine, flt, frame, av, suppress_below):
    """Consenting individuals per area: the protected table of asset_map.disclosure (small counts, zero included,
    suppressed; the rest rounded), the same for every role, since the report is shared."""
    from asset_map import disclosure

    how = disclosure.as_method(suppress_below)
    rows = store_assets.individual_counts(engine, store_assets.AssetFilter(offer=flt.offer) if how.enabled else flt,
                                          by="lsoa21_code" if av == 2021 else "lsoa11_code",
                                          suppress_below=suppress_below)
    labels = {code: label for code, _, label in rows}
    return frame["code"].map(labels).astype(object).fillna(labels_below(suppress_below)).astype(str)


def labels_below(suppress_below):
    from asset_map import disclosure

    return disclosure.as_method(suppress_below).label_below()



def _map_assets(engine, frame, points, near_cols, catchment, role):
    """The nearest assets of every reported area, plus the assets within the report's extent (capped)."""
    ids = set(frame[near_cols].to_numpy().ravel().tolist())
    minx, miny, maxx, maxy = frame.total_bounds
    # About one catchment beyond the extent, in degrees (1 degree of latitude ~ 111 km).
    pad = catchment / 111_000
    near = points[(points["lon"].between(minx - 2 * pad, maxx + 2 * pad))
                  & (points["lat"].between(miny - pad, maxy + pad))]
    ids.update(near["id"].head(MAX_MAP_ASSETS).tolist())
    return gap_inputs.asset_details(engine, [i for i in ids if i >= 0], role=role)


def code_version():
    """asset_map.__version__ and the git commit of the code that ran, when it runs from a git checkout."""
    commit = None
    try:
        done = subprocess.run(["git", "-C", str(PROJECT_DIR), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=False)
        if done.returncode == 0:
            commit = done.stdout.strip()
            dirty = subprocess.run(["git", "-C", str(PROJECT_DIR), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=5, check=False)
            if dirty.returncode == 0 and dirty.stdout.strip():
                commit += " (with uncommitted changes)"
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"version": asset_map.__version__, "commit": commit}


def _inputs(engine, request, indicator, vintage, av, supply_filter, n_assets, districts, n_areas, role):
    counts = gap_inputs.assets_by_register(engine, supply_filter, role=role)
    registers = gap_inputs.register_versions(engine, list(counts))
    for r in registers:
        r["assets_used"] = int(counts.get(r["name"], 0))
    return {
        "need": {"indicator": indicator, "vintage": int(vintage), "area_vintage": int(av)},
        "districts": list(districts),
        "areas": int(n_areas),
        "assets_used": int(n_assets),
        "filter": request.filter.as_args(),
        "parameters": request.params.as_dict(),
        "role": role,
        "registers": registers,
        "reference_loads": gap_inputs.reference_loads(engine, indicator=indicator, vintages=(vintage, av)),
        # How fresh the assets behind the report were: shares verified within 3, 6 and 12 months.
        "freshness": freshness_summary(engine, supply_filter, role=role),
        "code": code_version(),
    }


def freshness_summary(engine, flt, *, role):
    from asset_map.maps import freshness

    return freshness.summary(engine, flt, role=role)


def asset_count_by_group(result):
    """Assets used per group label (for the report's summary)."""
    pts = result.assets
    out = {}
    for g in result.request.params.groups:
        out[g] = int(len(pts)) if g == "any" else int(np.sum(pts[f"group_{gap.slug(g)}"].to_numpy(bool)))
    return out


# -- outputs -------------------------------------------------------------------------------------------------------

def report_context(result, settings, *, static_url=None):
    from asset_map.reports import gap_report as report
    from asset_map.config import attribution_lines

    return report.build(result.frame, result.inputs, districts=result.districts,
                        group_counts=asset_count_by_group(result), attribution=attribution_lines(settings),
                        tiles=settings["TILES"], tiles_attribution=settings["TILES_ATTRIBUTION"],
                        map_assets=result.map_assets, static_url=static_url)


def csv_text(result):
    from asset_map.reports import gap_files

    return gap_files.to_csv(result.frame, result.request.params.groups)


def geojson_text(result):
    from asset_map.reports import gap_files

    return gap_files.to_geojson(result.frame, result.request.params.groups, result.inputs)


def standalone_html(result, settings):
    from asset_map.reports import gap_report as report

    return report.render_standalone(report_context(result, settings))
