"""A printable local directory: the associations and organisations near a point (a postcode, an asset such as a
library) or inside an area, by category, with what they offer, when they were last verified and how to contact
them, in large type on one or two A4 pages, for noticeboards and for people who are not online.

Never individuals: the listing holds associations and organisations only. Contact details follow the store's rule
for the role that prints it (phone and e-mail for organisers and above; address and website for everybody).
"""

from dataclasses import dataclass, replace
from datetime import date

import geopandas as gpd
import pandas as pd
from sqlalchemy import text

from asset_map.briefing import mapimage, render
from asset_map.config import attribution_lines
from asset_map.errors import InputError, NotFound
from asset_map.maps import near, styles
from asset_map.store import assets as store_assets
from asset_map.store import geographies
from asset_map.privacy import sees_contacts
from asset_map.store.assets import AssetFilter, visibility_condition

TIERS = ("association", "organisation")
METRES_PER_MILE = 1609.344
MAX_LISTED = 18          # what fits on two A4 pages in 13-point type
MAX_MILES = 10.0


@dataclass(frozen=True)
class Where:
    postcode: str | None = None
    asset: int | None = None
    area: str | None = None
    miles: float = 1.0

    @classmethod
    def parse(cls, *, postcode=None, asset=None, area=None, miles=1.0):
        given = [n for n, v in (("postcode", postcode), ("asset", asset), ("area", area)) if v not in (None, "")]
        if len(given) != 1:
            raise InputError("Give exactly one of a postcode, an asset (e.g. a library) or an area.")
        try:
            miles = float(miles)
        except (TypeError, ValueError) as err:
            raise InputError(f"The distance must be a number of miles, got {miles!r}.") from err
        if not 0.1 <= miles <= MAX_MILES:
            raise InputError(f"The distance must be between 0.1 and {MAX_MILES:g} miles, got {miles:g}.")
        if asset not in (None, ""):
            try:
                asset = int(asset)
            except (TypeError, ValueError) as err:
                raise InputError(f"An asset is given by its number, got {asset!r}.") from err
        if area:
            AssetFilter.from_args({"area": area})  # checks the form geography:code
        return cls(postcode=postcode or None, asset=asset, area=area or None, miles=miles)


@dataclass
class Directory:
    html: str
    pdf: bytes
    listed: int
    total: int
    place: str


def entries(engine, where, *, role="public"):
    """(place label, centre (lon, lat) or None, area shape or None, frame of the assets found, nearest first)."""
    flt = AssetFilter(tier=TIERS)
    if where.area:
        geography, code = where.area.split(":", 1)
        area = geographies.area(engine, geography, code)
        found = store_assets.select(engine, replace(flt, area=(where.area,)), role=role,
                                    columns=["id", "name", "tier", "category", "offers", "address", "postcode",
                                             "url", "email", "phone", "last_verified"], order="category, name, id")
        found = pd.DataFrame(found.drop(columns="geometry")).assign(
            lon=found.geometry.x.to_numpy(), lat=found.geometry.y.to_numpy(), distance_m=None)
        return f"{area['name']} ({area['label']})", None, area["geometry"], found
    if where.postcode:
        point = near.lookup_postcode(engine, where.postcode)
        place, lon, lat = point["postcode"], point["lon"], point["lat"]
    else:
        place, lon, lat = _asset_point(engine, where.asset, role)
    found = near.nearest(engine, lon, lat, flt, role=role, limit=near.MAX_RESULTS)
    found = found[found["distance_m"] <= where.miles * METRES_PER_MILE].reset_index(drop=True)
    circle = gpd.GeoSeries(gpd.points_from_xy([lon], [lat]), crs=4326).to_crs(27700) \
        .buffer(where.miles * METRES_PER_MILE).to_crs(4326).iloc[0]
    return place, (lon, lat), circle, found


def _asset_point(engine, asset_id, role):
    privacy, params = visibility_condition(role, "a")
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT a.name, ST_X(a.geom), ST_Y(a.geom) FROM assets a WHERE a.id = :i "
                                f"AND a.geom IS NOT NULL AND {privacy}"), {"i": int(asset_id), **params}).first()
    if row is None:
        raise NotFound(f"There is no asset {asset_id} to centre the directory on.")
    return row[0], row[1], row[2]


def document(engine, settings, where, *, role="public", title=None, today=None):
    today = today or date.today()
    place, centre, shape, found = entries(engine, where, role=role)
    table = styles.load()
    shown = found.head(MAX_LISTED)
    groups = {}
    for r in shown.sort_values(["category", "distance_m", "name"] if centre else ["category", "name"],
                               kind="mergesort").itertuples():
        groups.setdefault(styles.label_for(r.category, table), []).append({
            "name": r.name, "offers": ", ".join(o.replace("/", " and ") for o in (r.offers or [])),
            "address": ", ".join(v for v in (r.address, r.postcode) if isinstance(v, str) and v),
            "phone": getattr(r, "phone", None) if isinstance(getattr(r, "phone", None), str) else None,
            "email": getattr(r, "email", None) if isinstance(getattr(r, "email", None), str) else None,
            "url": r.url if isinstance(r.url, str) else None,
            "miles": None if r.distance_m is None or pd.isna(r.distance_m) else r.distance_m / METRES_PER_MILE,
            "verified": r.last_verified if isinstance(r.last_verified, date) else None})
    assets = gpd.GeoDataFrame(shown[["tier"]], geometry=gpd.points_from_xy(shown["lon"], shown["lat"]), crs=4326)
    png = mapimage.area_map(shape, assets=assets, centre=centre, size=(7.0, 3.0), dpi=130,
                            title=f"Within {where.miles:g} mile{'s' if where.miles != 1 else ''}" if centre
                            else place)
    heading = title or (f"What's on within {where.miles:g} mile{'s' if where.miles != 1 else ''} of {place}"
                        if centre else f"What's on in {place}")
    ctx = {"title": heading, "groups": sorted(groups.items()), "listed": len(shown), "total": len(found),
           "today": today, "site": settings["SITE_URL"].rstrip("/"), "place": place, "where": where,
           "attribution": attribution_lines(settings), "map_png": render.context({}, png)["map_png"],
           "contacts_shown": sees_contacts(role), **render.HELPERS}
    html = render._ENV.get_template("briefing/directory.html").render(**ctx)
    return Directory(html, render.pdf(html), len(shown), len(found), place)
