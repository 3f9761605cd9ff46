"""The layers an officer can take away (downloads and OGC API collections): each is a SQL source with named
columns, so GeoJSON, GeoPackage, CSV and the OGC items all read the same rows with the same filters and privacy.

Every layer is filtered by the shared ``AssetFilter``: asset layers take all of it (seen through the role's privacy
rule), polygon layers take ``district`` and ``bbox``. Individuals are never points below officer: their layer is a
count per LSOA 2021, small counts suppressed.
"""

import functools
import re
from dataclasses import dataclass, replace

from sqlalchemy import text

from asset_map import disclosure, privacy
from asset_map.errors import NotFound
from asset_map.maps.queries import area_vintage
from asset_map.store.assets import AssetFilter, one_of

_SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_DISTRICT_LAYER = re.compile(r"^assets-([EWSN][0-9]{8})$")
_NEED_LAYER = re.compile(r"^need-([a-z][a-z0-9_]{0,30})-([0-9]{4})$")
_GEOGRAPHY_LAYER = re.compile(r"^geography-([a-z][a-z0-9_-]{0,63})$")


@dataclass(frozen=True)
class Column:
    name: str
    sql: str
    type: str = "string"  # string, integer, number, date, datetime, array
    queryable: bool = False
    description: str = ""


@dataclass(frozen=True)
class Layer:
    id: str
    title: str
    description: str
    kind: str                       # assets, counts, districts, areas, geography
    geometry_type: str              # Point or MultiPolygon
    columns: tuple
    id_sql: str                     # the stable feature id: database id or ONS code
    id_type: str = "integer"
    tier: tuple = ()                # asset layers: the tiers they hold
    district: str | None = None     # asset layers by district
    need: tuple | None = None       # areas: (indicator, need vintage)
    indicators: tuple = ()          # areas: indicators pivoted into columns
    time_column: str | None = None  # what OGC ``datetime`` filters on
    geography: str | None = None    # geography layers: the loaded geography's name

    @property
    def polygonal(self):
        return self.geometry_type != "Point"

    def column(self, name):
        for c in self.columns:
            if c.name == name:
                return c
        return None

    def source(self, flt=None, *, role="public", suppress_below=5, conditions=(), params=None):
        """``FROM ... WHERE ...`` (always with a WHERE, so conditions can be added with AND) and its bound parameters;
        the layer's table is aliased ``g``."""
        flt = flt or AssetFilter()
        params = dict(params or {})
        extra = list(conditions)
        if self.kind == "assets":
            sql, p = _assets_source(self, flt, role)
        elif self.kind == "counts":
            sql, p = _counts_source(flt, suppress_below)
        elif self.kind == "districts":
            sql, p = "FROM districts g WHERE TRUE", {}
            extra += _polygon_filters(flt, p, code="g.code")
        elif self.kind == "geography":
            sql, p = "FROM geography_areas g WHERE g.geography = :f_geography", {"f_geography": self.geography}
            extra += _polygon_filters(replace(flt, district=()), p, code="g.code")
        else:
            sql, p = _areas_source(self)
            extra += _polygon_filters(flt, p, code="g.district_code")
        params.update(p)
        if extra:
            sql += " AND " + " AND ".join(extra)
        return sql, params


def _polygon_filters(flt, params, *, code):
    conds = []
    if flt.district:
        conds.append(one_of(code, "f_district", list(flt.district), params))
    if flt.bbox:
        conds.append("g.geom && ST_MakeEnvelope(:f_minx, :f_miny, :f_maxx, :f_maxy, 4326)")
        params.update(zip(("f_minx", "f_miny", "f_maxx", "f_maxy"), flt.bbox))
    return conds


def _assets_source(layer, flt, role):
    if layer.tier:
        tiers = tuple(t for t in (flt.tier or layer.tier) if t in layer.tier)
        flt = replace(flt, tier=tiers or ("none",))
    if layer.district:
        flt = replace(flt, district=(layer.district,) if not flt.district or layer.district in flt.district
                      else ("none",))
    where, params = flt.where(role=role, alias="g")
    return f"FROM assets g WHERE g.geom IS NOT NULL AND {where}", params


def _counts_source(flt, suppress_below):
    """The protected table of individuals per LSOA 2021 (asset_map.disclosure): every area listed, small counts
    (zero included) suppressed, the rest rounded. Only ``district`` and ``bbox`` (which rows) and one offer group
    apply; the other filters cannot change a count."""
    how = disclosure.as_method(suppress_below)
    offer = flt.offer[0] if len(flt.offer) == 1 and flt.offer[0] in disclosure.offer_groups() else None
    return disclosure.table_sql("lsoa21", how, districts=flt.district, offer=offer, bbox=flt.bbox, flt=flt)


def _areas_source(layer):
    indicator_cols = []
    for i, ind in enumerate(layer.indicators):
        for part in ("score", "rank", "decile"):
            indicator_cols.append(f"max({part}) FILTER (WHERE indicator = :n_ind{i}) AS {ind}_{part}")
    params = {"n_av": area_vintage(layer.need[1]), "n_nv": layer.need[1]}
    params.update({f"n_ind{i}": ind for i, ind in enumerate(layer.indicators)})
    pivot = ""
    if indicator_cols:
        pivot = (f" LEFT JOIN (SELECT area_code, {', '.join(indicator_cols)} FROM need_indicators "
                 f"WHERE vintage = :n_nv GROUP BY area_code) n ON n.area_code = g.code")
    return f"FROM areas g{pivot} WHERE g.vintage = :n_av", params


# -- the layers ------------------------------------------------------------------------------------------------
# People read names; codes stay beside them for joins (one primary-key lookup per row).
_DISTRICT_NAME = "(SELECT d.name FROM districts d WHERE d.code = g.district_code)"


def _asset_columns(role):
    cols = [
        Column("name", "g.name", queryable=True, description="Name of the asset"),
        Column("tier", "g.tier", queryable=True, description="individual, association or organisation"),
        Column("category", "g.category", queryable=True, description="Category within the tier"),
        Column("description", "g.description"),
        Column("offers", "g.offers", "array", description="What the asset offers (time, skills, space...)"),
        Column("address", "g.address"),
        Column("postcode", "g.postcode", queryable=True),
        Column("url", "g.url"),
        Column("status", "g.status", queryable=True, description="open, temporarily closed, closed, withdrawn"),
        Column("last_verified", "g.last_verified", "date", description="When the record was last checked"),
        Column("district_code", "g.district_code", queryable=True, description="ONS district code"),
        Column("district_name", _DISTRICT_NAME, description="District name"),
        Column("lsoa11_code", "g.lsoa11_code", queryable=True),
        Column("lsoa21_code", "g.lsoa21_code", queryable=True),
        Column("lsoa21_name", "(SELECT r.name FROM areas r WHERE r.code = g.lsoa21_code AND r.vintage = 2021)",
               description="LSOA 2021 name"),
        Column("register", "g.register", queryable=True, description="The register the asset came from"),
        Column("updated_at", "g.updated_at", "datetime"),
        Column("page", "'/assets/' || g.id", description="The asset's page on this site (details, history)"),
    ]
    if privacy.sees_contacts(role):
        cols[8:8] = [Column("email", "g.email"), Column("phone", "g.phone")]
    return tuple(cols)


DISTRICT_COLUMNS = (Column("code", "g.code", queryable=True, description="ONS district code"),
                    Column("name", "g.name", queryable=True))
GEOGRAPHY_COLUMNS = (Column("code", "g.code", queryable=True, description="The area's code"),
                     Column("name", "g.name", queryable=True))
COUNT_COLUMNS = (
    Column("code", "g.code", queryable=True, description="LSOA 2021 code"),
    Column("name", "g.name"),
    Column("district_code", "g.district_code", queryable=True),
    Column("district_name", _DISTRICT_NAME),
    Column("individuals", disclosure.sql_value("COALESCE(c.n, 0)"), "integer",
           description="Consenting individuals in the area, rounded to the nearest 5; empty when fewer than 5 "
                       "(none included): asset_map.disclosure"),
    Column("label", disclosure.sql_label("COALESCE(c.n, 0)")),
)
_TIER_LAYERS = {
    "organisations": ("organisation", "Organisations",
                      "Paid staff, formal bodies: council services, libraries, schools, GPs, parks, businesses."),
    "associations": ("association", "Associations and networks",
                     "Mostly unpaid, run by their members: faith groups, clubs, community-run libraries and halls."),
}


def _asset_layer(layer_id, title, description, role, *, tier=(), district=None):
    return Layer(layer_id, title, description, "assets", "Point", _asset_columns(role), "g.id", tier=tier,
                 district=district, time_column="g.last_verified")


def _need_layer(indicator, vintage, indicators):
    av = area_vintage(vintage)
    cols = [Column("code", "g.code", queryable=True, description=f"LSOA {av} code"),
            Column("name", "g.name"),
            Column("district_code", "g.district_code", queryable=True),
            Column("population", "g.population", "integer")]
    for ind in indicators:
        cols += [Column(f"{ind}_score", f"n.{ind}_score", "number"),
                 Column(f"{ind}_rank", f"n.{ind}_rank", "integer", description="1 is the most deprived in England"),
                 Column(f"{ind}_decile", f"n.{ind}_decile", "integer", queryable=ind == indicator,
                        description="1 is the most deprived tenth of England")]
    title = f"Areas with need: LSOA {av}, {indicator.upper()} {vintage}"
    return Layer(f"need-{indicator}-{vintage}", title,
                 f"Small areas (LSOA {av}) with the {indicator.upper()} {vintage} indicators loaded for them.",
                 "areas", "MultiPolygon", tuple(cols), "g.code", "string", need=(indicator, vintage),
                 indicators=tuple(indicators))


def _need_catalogue(conn):
    """{vintage: [indicators]} loaded, headline indicators first."""
    rows = conn.execute(text("SELECT vintage, indicator FROM need_indicators GROUP BY vintage, indicator "
                             "ORDER BY vintage, length(indicator), indicator")).all()
    out = {}
    for vintage, ind in rows:
        if _SAFE_NAME.match(ind):
            out.setdefault(int(vintage), []).append(ind)
    return out


@functools.lru_cache(maxsize=8)
def static_layers(role="public"):
    """The layers that exist whatever is loaded."""
    out = [_asset_layer("assets", "All assets", "Every asset you may see, all tiers.", role)]
    for layer_id, (tier, title, description) in _TIER_LAYERS.items():
        out.append(_asset_layer(layer_id, title, description, role, tier=(tier,)))
    if privacy.sees_individual_points(role):
        out.append(_asset_layer("individual-points", "Individuals (points)",
                                "Individuals as points: personal data, for officers only.", role,
                                tier=("individual",)))
    out.append(Layer("individuals", "Individuals (counts per area)",
                     "Consenting individuals counted per LSOA 2021; counts below the suppression threshold are "
                     "left empty. Individuals are never published as points.",
                     "counts", "MultiPolygon", COUNT_COLUMNS, "g.code", "string"))
    out.append(Layer("districts", "Districts", "District boundaries (ONS local authority districts).",
                     "districts", "MultiPolygon", DISTRICT_COLUMNS, "g.code", "string"))
    return tuple(out)


def available(engine, role="public"):
    """Every layer, including one per loaded need vintage and one of assets per district."""
    with engine.connect() as conn:
        needs = _need_catalogue(conn)
        districts = conn.execute(text("SELECT code, name FROM districts ORDER BY code")).all()
        geographies = conn.execute(text("SELECT name, label, source FROM geographies ORDER BY name")).all()
    out = list(static_layers(role))
    for vintage, indicators in sorted(needs.items()):
        headline = "imd" if "imd" in indicators else indicators[0]
        out.append(_need_layer(headline, vintage, indicators))
    for code, name in districts:
        out.append(_asset_layer(f"assets-{code}", f"Assets in {name}", f"Every asset you may see in {name} ({code}).",
                                role, district=code))
    for name, label, source in geographies:
        # Asset layers take ?area=<geography>:<code> to select the assets of one of these areas.
        out.append(Layer(f"geography-{name}", label, f"The areas of geography '{name}' (from {source}); assets of "
                         f"one area: assets?area={name}:<code>.", "geography", "MultiPolygon", GEOGRAPHY_COLUMNS,
                         "g.code", "string", geography=name))
    return out


def get(engine, layer_id, role="public"):
    """One layer by id, or NotFound listing what exists. Static layers need no query."""
    for layer in static_layers(role):
        if layer.id == layer_id:
            return layer
    if _DISTRICT_LAYER.match(layer_id) or _NEED_LAYER.match(layer_id) or _GEOGRAPHY_LAYER.match(layer_id):
        for layer in available(engine, role):
            if layer.id == layer_id:
                return layer
    known = ", ".join(layer.id for layer in static_layers(role))
    msg = (f"There is no layer {layer_id!r}. Layers include: {known}, need-imd-<vintage>, assets-<district code>, "
           "geography-<name>.")
    raise NotFound(msg)
