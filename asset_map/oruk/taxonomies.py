"""The taxonomies an ORUK feed publishes: asset-map's own categories (under their tiers) and offers, the published
vocabularies of ``layers/taxonomy/oruk.yaml`` where a category maps to one, and the ONS districts (GSS code with
its name), so a service's district travels as a standard code beside its name.

Each term knows what it selects (``match``): a category, a tier, an offer, a set of categories or a district.
"""

import functools
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sqlalchemy import text

from asset_map.config import PROJECT_DIR
from asset_map.errors import ConfigError
from asset_map.oruk.ids import named_uuid
from asset_map.registers.schema import taxonomy

PUBLISHED_FILE = PROJECT_DIR / "layers" / "taxonomy" / "oruk.yaml"
PUBLIC_TIERS = ("association", "organisation")
CATEGORIES, OFFERS, DISTRICTS = "asset-map-categories", "asset-map-offers", "ons-districts"
GSS_URI = "http://statistics.data.gov.uk/id/statistical-geography/"


@dataclass(frozen=True)
class Term:
    id: str
    name: str
    description: str
    taxonomy: str        # the taxonomy's key
    code: str
    match: tuple         # ("category", id) | ("tier", id) | ("offer", id) | ("categories", ids) | ("district", code)
    parent_id: str | None = None
    uri: str | None = None


@dataclass(frozen=True)
class Taxonomy:
    key: str
    id: str
    name: str
    description: str
    uri: str | None = None
    terms: tuple = field(default=())


def _term(taxonomy_key, code, name, description, match, parent_id=None, uri=None):
    return Term(named_uuid("term", taxonomy_key, code), name, description, taxonomy_key, code, match, parent_id, uri)


@functools.cache
def _published(path_text):
    try:
        data = yaml.safe_load(Path(path_text).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        msg = f"The ORUK vocabularies {Path(path_text).name} cannot be read: {err}"
        raise ConfigError(msg) from err
    return data.get("taxonomies") or {}, data.get("categories") or {}


@functools.cache
def static_taxonomies(published_path=str(PUBLISHED_FILE)):
    """Every taxonomy that does not depend on the database."""
    tax = taxonomy()
    cat_key, off_key = CATEGORIES, OFFERS
    tiers = {t: _term(cat_key, t, t.capitalize() + "s", f"ABCD tier: {t}", ("tier", t)) for t in PUBLIC_TIERS}
    terms = list(tiers.values())
    for cid, spec in sorted(tax.categories.items()):
        if spec["tier"] in PUBLIC_TIERS:
            terms.append(_term(cat_key, cid, spec["label"], f"{spec['label']} ({spec['tier']})", ("category", cid),
                               parent_id=tiers[spec["tier"]].id))
    out = [Taxonomy(cat_key, named_uuid("taxonomy", cat_key), "asset-map categories",
                    "The kinds of community asset asset-map maps, under ABCD's tiers (associations and "
                    "organisations).", terms=tuple(terms)),
           Taxonomy(off_key, named_uuid("taxonomy", off_key), "asset-map offers",
                    "What a community asset offers (ABCD: what people and groups have to share).",
                    terms=tuple(_term(off_key, o, o.capitalize(), f"Offers {o}", ("offer", o)) for o in tax.offers))]
    taxonomies, mapped = _published(published_path)
    for key, spec in taxonomies.items():
        by_code = {}
        for cid, m in mapped.items():
            if m.get("taxonomy") == key and cid in tax.categories:
                by_code.setdefault(str(m["code"]), (m, []))[1].append(cid)
        published = tuple(_term(key, code, m.get("name", code), m.get("name", code), ("categories", tuple(cids)),
                                uri=m.get("uri")) for code, (m, cids) in sorted(by_code.items()))
        out.append(Taxonomy(key, named_uuid("taxonomy", key), spec.get("name", key), spec.get("description", key),
                            spec.get("uri"), published))
    return tuple(out)


def districts_taxonomy(engine=None):
    """The ONS districts taxonomy; its terms are the districts loaded (none when ``engine`` is None)."""
    rows = []
    if engine is not None:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT code, name FROM districts ORDER BY code")).all()
    return Taxonomy(DISTRICTS, named_uuid("taxonomy", DISTRICTS), "ONS local authority districts",
                    "Local authority districts by ONS GSS code, with their names.", "http://statistics.data.gov.uk/",
                    tuple(district_term(code, name) for code, name in rows))


def taxonomies(engine):
    return (*static_taxonomies(), districts_taxonomy(engine))


def category_terms(category):
    """The terms (ours and published) that describe an asset of ``category``."""
    out = []
    for tax in static_taxonomies():
        for term in tax.terms:
            if term.match == ("category", category) or (term.match[0] == "categories" and category in term.match[1]):
                out.append((tax, term))
    return out


def offer_term(offer):
    for tax in static_taxonomies():
        for term in tax.terms:
            if term.match == ("offer", offer):
                return tax, term
    return None


def district_term(code, name):
    return _term(DISTRICTS, code, name, f"{name} ({code}), local authority district", ("district", code),
                 uri=GSS_URI + code)
