"""What a district page shows besides its map: the district, its areas by need decile, its assets by tier and
category (as ``role`` may see them; individuals as a suppressed count for everybody below officer)."""

from sqlalchemy import text

from asset_map import disclosure, privacy
from asset_map.errors import NotFound
from asset_map.maps.queries import area_vintage
from asset_map.store.assets import AssetFilter, individual_counts


def district(engine, code):
    sql = ("SELECT code, name, ST_XMin(e) AS minx, ST_YMin(e) AS miny, ST_XMax(e) AS maxx, ST_YMax(e) AS maxy "
           "FROM (SELECT code, name, ST_Extent(geom) AS e FROM districts WHERE code = :c GROUP BY code, name) d")
    with engine.connect() as conn:
        row = conn.execute(text(sql), {"c": code}).mappings().first()
    if row is None:
        msg = f"There is no district with code {code!r}."
        raise NotFound(msg)
    return dict(row)


def need_deciles(engine, code, *, indicator="imd", vintage=2025):
    """[(decile or None, areas, population)] for the district's areas, decile 1 = most deprived tenth."""
    sql = ("SELECT n.decile, count(*) AS areas, sum(a.population) AS population FROM areas a "
           "LEFT JOIN need_indicators n ON n.area_code = a.code AND n.indicator = :ind AND n.vintage = :nv "
           "WHERE a.district_code = :c AND a.vintage = :av GROUP BY n.decile ORDER BY n.decile NULLS LAST")
    params = {"c": code, "ind": indicator, "nv": int(vintage), "av": area_vintage(vintage)}
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def asset_counts(engine, code, flt=None, *, role="public", suppress_below=5):
    """{"tiers": [(tier, n)], "categories": [(tier, category, n)], "individuals": label or None}."""
    base = flt or AssetFilter()
    flt = AssetFilter(district=(code,), tier=base.tier, category=base.category, offer=base.offer,
                      status=base.status, verified_within=base.verified_within, q=base.q)
    where, params = flt.where(role=role)
    sql = f"SELECT a.tier, a.category, count(*) FROM assets a WHERE {where} GROUP BY a.tier, a.category ORDER BY 1, 2"
    with engine.connect() as conn:
        cats = [tuple(r) for r in conn.execute(text(sql), params)]
    tiers = {}
    for tier, _, n in cats:
        tiers[tier] = tiers.get(tier, 0) + n
    individuals = None
    if not privacy.sees_individual_points(role):
        # The district's cell of the fixed table (asset_map.disclosure): of the page's filters only one offer
        # group chooses the table; the others do not change it.
        how = disclosure.as_method(suppress_below)
        rows = individual_counts(engine, AssetFilter(district=(code,), offer=flt.offer) if how.enabled else flt,
                                 by="district_code",
                                 suppress_below=suppress_below)
        individuals = rows[0][2] if rows else disclosure.as_method(suppress_below).label_below()
    return {"tiers": sorted(tiers.items()), "categories": cats, "individuals": individuals}


def districts(engine, *, role="public"):
    """Every district with its LSOA 2021 areas, residents and the assets ``role`` may see (open or temporarily
    closed), by name: the districts page's table."""
    where, params = AssetFilter().where(role=role)
    sql = ("SELECT d.code, d.name, "
           "(SELECT count(*) FROM areas r WHERE r.district_code = d.code AND r.vintage = 2021) AS areas, "
           "(SELECT sum(r.population) FROM areas r WHERE r.district_code = d.code AND r.vintage = 2021) "
           "AS population, "
           f"(SELECT count(*) FROM assets a WHERE a.district_code = d.code AND {where}) AS assets "
           "FROM districts d ORDER BY d.name")
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]
