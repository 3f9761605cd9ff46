"""The asset layers: ``assets`` (all of them) and one per tier x district (x category), from one query function
rather than hundreds of views. Names: ``assets``, ``organisation/E07000197``, ``organisation/E07000197/library``."""

import re

from sqlalchemy import text

from asset_map.errors import NotFound
from asset_map.store.assets import AssetFilter, select

_NAME = re.compile(r"^(individual|association|organisation)/([A-Z][0-9]{8}|none)(?:/([a-z0-9_]+))?$")


def asset_layers(engine, *, by_category=False, role="public"):
    """[(layer name, tier, district code, district name, category or None, features)] with features > 0, in the
    order tier, district, category. Counts follow the default filter (open and temporarily closed, not withdrawn)
    and what ``role`` may see."""
    where, params = AssetFilter().where(role=role)
    category = ", a.category" if by_category else ""
    sql = (f"SELECT a.tier, COALESCE(a.district_code, 'none') AS district, d.name{category}, count(*) "
           f"FROM assets a LEFT JOIN districts d ON d.code = a.district_code WHERE {where} "
           f"GROUP BY a.tier, COALESCE(a.district_code, 'none'), d.name{category} ORDER BY 1, 2{', 4' if by_category else ''}")
    with engine.connect() as conn:
        rows = conn.execute(text(sql), params).all()
    out = []
    for row in rows:
        tier, district, name = row[0], row[1], row[2]
        cat = row[3] if by_category else None
        n = row[-1]
        layer = f"{tier}/{district}" + (f"/{cat}" if cat else "")
        out.append((layer, tier, district, name, cat, int(n)))
    return out


def layer_filter(name, base=None):
    """The AssetFilter of a layer name ("assets" or tier/district[/category])."""
    args = dict(base or {})
    if name == "assets":
        return AssetFilter.from_args(args)
    found = _NAME.match(name or "")
    if not found:
        msg = f"No layer {name!r}: use 'assets' or tier/district[/category], e.g. organisation/E07000197/library."
        raise NotFound(msg)
    args["tier"] = found.group(1)
    if found.group(2) != "none":
        args["district"] = found.group(2)
    if found.group(3):
        args["category"] = found.group(3)
    return AssetFilter.from_args(args)


def layer_frame(engine, name, *, role="public", base=None):
    """The features of a layer as a GeoDataFrame (EPSG:4326)."""
    return select(engine, layer_filter(name, base), role=role)
