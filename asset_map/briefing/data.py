"""What a briefing says about one area of any geography, gathered from the store and the analyses.

Data flows one way: ``county()`` reads what every briefing of a run shares once (the LSOAs with need, the county's
gap analysis, the data's vintages); ``build()`` then reads one area's assets and changes and cuts the shared parts to
the area. The result is a plain dict (no Flask, no HTML) that render.py turns into a page, an A4 HTML and a PDF.

Privacy: a briefing never lists an individual. Individuals appear only as one protected count for the area (the
store's suppression rule, ``individual_counts``), whoever reads it; listings (stale assets, changes) hold
associations and organisations only, as the reader's role may see them.
"""

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone

import geopandas as gpd
import pandas as pd
from sqlalchemy import text

from asset_map import disclosure, freshness, gaps
from asset_map.analysis import overlay
from asset_map.config import attribution_lines
from asset_map.maps import styles
from asset_map.maps.queries import area_vintage, need_options, parse_need
from asset_map.reference.need import INDICATOR_LABELS
from asset_map.store import assets as store_assets
from asset_map.store import gap_inputs, geographies
from asset_map.store.assets import AssetFilter
from asset_map.vocabulary import STORED_STATUSES, TIER_LABELS, role_rank

LISTED_TIERS = ("association", "organisation")
# What a briefing lists in full before saying "and N more": it is read on paper.
CHANGES_SHOWN = 12
STALE_SHOWN = 20
SINCE_DAYS = 31


@dataclass
class County:
    """What every briefing of one run shares: read once, then cut to each area."""
    role: str
    today: date
    since: date
    need: tuple                     # (indicator, vintage)
    lsoas: gpd.GeoDataFrame         # code, name, district_code, population, need_score, need_decile, geometry
    gap: pd.DataFrame               # the county's gap analysis, one row per LSOA
    gap_inputs: dict
    profile: dict                   # the county's need profile (residents by decile, weighted score)
    districts: gpd.GeoDataFrame     # code, name, geometry (for the map's context)
    lsoas_bng: gpd.GeoDataFrame     # the LSOAs in EPSG:27700, projected once for every map of the run
    districts_bng: gpd.GeoDataFrame
    district_names: dict
    settings: dict
    suppress_below: int = 5
    reference_loads: list = field(default_factory=list)


def county(engine, settings, *, role="public", today=None, since=None):
    today = today or date.today()
    since = since or (today - timedelta(days=SINCE_DAYS))
    options = need_options(engine)
    indicator, vintage = parse_need(_default_need(settings, options), options)
    av = area_vintage(vintage)
    lsoas = gap_inputs.areas_with_need(engine, indicator=indicator, vintage=vintage, area_vintage=av)
    request = gaps.GapRequest.from_args({"need": f"{indicator}:{vintage}"}, default_need=f"{indicator}:{vintage}")
    request = replace(request, filter=replace(request.filter, tier=LISTED_TIERS))
    result = gaps.run(engine, request, role=_listing_role(role), suppress_below=settings["SUPPRESS_BELOW"])
    profile = overlay.weighted_need(overlay.whole(lsoas), lsoas[["code", "need_score", "need_decile"]])
    with engine.connect() as conn:
        districts = gpd.read_postgis(text("SELECT code, name, geom FROM districts ORDER BY code"), conn,
                                     geom_col="geom", crs=4326)
    return County(role=role, today=today, since=since, need=(indicator, vintage), lsoas=lsoas, gap=result.frame,
                  gap_inputs=result.inputs, profile=profile, districts=districts,
                  lsoas_bng=lsoas[["code", "need_decile", "geometry"]].to_crs(27700),
                  districts_bng=districts.to_crs(27700),
                  district_names=dict(zip(districts["code"], districts["name"])), settings=settings,
                  suppress_below=int(settings["SUPPRESS_BELOW"]),
                  reference_loads=gap_inputs.reference_loads(engine, indicator=indicator, vintages=(vintage, av)))


def _default_need(settings, options):
    loaded = [f"{i}:{v}" for i, v, _ in options]
    default = settings["DEFAULT_NEED"]
    if not loaded or default in loaded:
        return default
    return next((n for n in loaded if n.startswith("imd:")), loaded[0])


def _listing_role(role):
    """Listings never hold individuals: an officer's briefing lists what a councillor's does."""
    return role if role_rank(role) < role_rank("officer") else "councillor"


def build(engine, shared, geography, code):
    """The briefing of area ``code`` of ``geography`` as a dict (see module docstring)."""
    area = geographies.area(engine, geography, code)
    value = f"{geography}:{code}"
    shape = area["geometry"]
    area_ha = float(gpd.GeoSeries([shape], crs=4326).to_crs(27700).area.iloc[0] / 10_000)
    role = _listing_role(shared.role)
    listed = AssetFilter(area=(value,), tier=LISTED_TIERS)
    columns = ["id", "name", "tier", "category", "offers", "address", "postcode", "url", "status", "last_verified",
               "created_at", "updated_at"]
    assets = store_assets.select(engine, listed, role=role, columns=columns, order="tier, category, name, id")
    table = styles.load()
    by_category = (assets.groupby(["tier", "category"], sort=True).size().reset_index(name="n")
                   if len(assets) else pd.DataFrame(columns=["tier", "category", "n"]))
    individuals = disclosure.area_total(engine, value, disclosure.as_method(shared.suppress_below))
    overlap = overlay.shares(shared.lsoas[["code", "population", "geometry"]], shape)
    need = overlay.weighted_need(overlap, shared.lsoas[["code", "need_score", "need_decile"]]) if len(overlap) \
        else None
    fresh = freshness.shares(assets, today=shared.today)
    total = fresh[(fresh["tier"] == freshness.ALL) & (fresh["category"] == freshness.ALL)].iloc[0]
    stale = freshness.stale(assets, today=shared.today, months=int(shared.settings["STALE_MONTHS"]))
    signed_in = shared.role != "public"
    return {
        "geography": geography, "geography_label": area["label"], "code": code, "name": area["name"],
        "value": value, "drawn_by": area["drawn_by"], "area_ha": area_ha,
        "districts": _districts(shared, overlap),
        "today": shared.today, "since": shared.since, "role": shared.role, "signed_in": signed_in,
        "assets_total": int(len(assets)),
        "tiers": [(t, TIER_LABELS.get(t, t), int(by_category.loc[by_category["tier"] == t, "n"].sum()))
                  for t in LISTED_TIERS],
        "categories": [(t, styles.label_for(c, table), int(n)) for t, c, n in by_category.itertuples(index=False)],
        "individuals": individuals.label,
        "suppress_below": shared.suppress_below,
        "need_label": f"{INDICATOR_LABELS.get(shared.need[0], shared.need[0])} {shared.need[1]}",
        "need": need, "county_need": shared.profile, "need_rows": _need_rows(need, shared.profile),
        "lsoas": overlap, "gaps": _gaps(shared, overlap),
        "freshness": {"assets": int(total["assets"]), "share_3m": total["share_3m"], "share_6m": total["share_6m"],
                      "share_12m": total["share_12m"], "never": int(total["never_verified"]),
                      "stale_months": int(shared.settings["STALE_MONTHS"]), "stale_count": int(len(stale)),
                      "by_tier": [r for r in fresh.to_dict("records") if r["category"] == freshness.ALL
                                  and r["tier"] != freshness.ALL]},
        "stale": _records(stale.head(STALE_SHOWN), table) if signed_in else [],
        "changes": _changes(engine, listed, role, shared.since, table),
        "suggestions": None,  # community suggestions are not collected yet (their own issue); shown as such
        "vintages": {"reference_loads": shared.reference_loads, "registers": _registers(engine, listed, role),
                     "gap": shared.gap_inputs["parameters"], "need_area_vintage": shared.gap_inputs["need"]},
        "attribution": attribution_lines(shared.settings),
        "geometry": shape, "assets": assets,
    }


def _districts(shared, overlap):
    codes = shared.lsoas.set_index("code")["district_code"]
    found = sorted({codes.get(c) for c in overlap["code"]} - {None})
    return [(c, shared.district_names.get(c, c)) for c in found]


def _need_rows(need, county_need):
    rows = []
    for decile in range(1, 11):
        rows.append({"decile": decile, "area": (need or {}).get("deciles", {}).get(decile, 0.0),
                     "county": county_need["deciles"].get(decile, 0.0)})
    return rows


def _gaps(shared, overlap):
    """The county gap analysis's priority LSOAs (high need, low supply) that the area overlaps."""
    frame = shared.gap
    inside = frame[frame["code"].isin(overlap["code"]) & frame["priority"]]
    inside = inside.sort_values("priority_rank", kind="mergesort")
    share = overlap.set_index("code")["share"]
    return [{"rank": int(r.priority_rank), "code": r.code, "name": r.name or "", "decile": r.need_decile,
             "share": float(share.get(r.code, 0.0)), "access": r.access_per_1000,
             "nearest_m": r.nearest_mean_m,
             "lacks": (r.lacks or "").replace(";", ", ").replace("_", " ")} for r in inside.itertuples()]


def _records(frame, table):
    out = []
    for r in frame.itertuples():
        out.append({"name": r.name, "category": styles.label_for(r.category, table),
                    "last_verified": r.last_verified if isinstance(r.last_verified, date) else None,
                    "months_since": None if pd.isna(r.months_since) else int(r.months_since)})
    return out


def _changes(engine, listed, role, since, table):
    """New, updated and withdrawn assets of the area since ``since``, from the assets' own timestamps."""
    flt = replace(listed, status=STORED_STATUSES)
    where, params = flt.where(role=role)
    params["since"] = datetime.combine(since, time.min, tzinfo=timezone.utc)
    sql = (f"SELECT a.name, a.category, a.created_at, a.updated_at, a.withdrawn_at, a.status FROM assets a "
           f"WHERE {where} AND (a.created_at >= :since OR a.updated_at >= :since OR a.withdrawn_at >= :since) "
           f"ORDER BY greatest(a.created_at, a.updated_at, coalesce(a.withdrawn_at, a.updated_at)) DESC, a.name")
    with engine.connect() as conn:
        rows = conn.execute(text(sql), params).all()
    out = {"new": [], "updated": [], "withdrawn": []}
    for name, category, created, updated, withdrawn, status in rows:
        kind = ("withdrawn" if withdrawn and withdrawn >= params["since"] else
                "new" if created >= params["since"] else "updated")
        when = {"new": created, "updated": updated, "withdrawn": withdrawn}[kind]
        out[kind].append({"name": name, "category": styles.label_for(category, table), "date": when.date(),
                          "status": status})
    return {k: v[:CHANGES_SHOWN] for k, v in out.items()} | {
        "counts": {k: len(v) for k, v in out.items()}, "source": "asset records (created, updated, withdrawn)"}


def _registers(engine, listed, role):
    counts = gap_inputs.assets_by_register(engine, listed, role=role)
    registers = gap_inputs.register_versions(engine, list(counts))
    for r in registers:
        r["assets"] = int(counts.get(r["name"], 0))
    return registers
