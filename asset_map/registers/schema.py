"""The asset fields a register can fill, and the taxonomy (tiers, categories, offers) kept as data in
``layers/taxonomy/categories.yaml``.

Matching is vectorised over the distinct values of a column: registers repeat the same few categories thousands of
times, so each distinct spelling is resolved once.
"""

import difflib
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from asset_map.config import PROJECT_DIR
from asset_map.errors import ConfigError
from asset_map.vocabulary import TIERS

TAXONOMY_FILE = PROJECT_DIR / "layers" / "taxonomy" / "categories.yaml"

# field -> what it holds (drives the CLI help, the mapping checks and the report).
FIELDS = {
    "source_key": "A stable id from the source (UPRN, ODS code, charity number); re-imports match on it.",
    "tier": "individual, association or organisation (taken from the category when blank).",
    "category": "A category of the taxonomy, or one of its aliases.",
    "name": "Name of the asset (required).",
    "description": "Free text.",
    "offers": "What the asset offers, separated by ';' or ',' (skills, time, buildings/space, ...).",
    "address": "Postal address.",
    "postcode": "UK postcode, in any spacing or case.",
    "uprn": "Unique Property Reference Number.",
    "email": "Contact email.",
    "phone": "Contact phone.",
    "url": "Web address (http or https).",
    "status": "open, temporarily closed or closed (blank: open).",
    "last_verified": "Date the record was last checked (ISO 8601 or dd/mm/yyyy).",
    "visibility": "public or restricted (blank: public).",
    "consent": "Required for individuals: yes (Y, agreed, a tick), no, withdrawn; blank is no "
               "(asset_map.privacy.consent_state). Anything else is quarantined.",
    "consent_date": "Date the person gave (or withdrew) consent (ISO 8601 or dd/mm/yyyy).",
    "consent_wording": "Version of the consent wording the person agreed to (e.g. 'v2 2025-03').",
    "lon": "Longitude, WGS84 (EPSG:4326).",
    "lat": "Latitude, WGS84 (EPSG:4326).",
    "easting": "British National Grid easting (EPSG:27700).",
    "northing": "British National Grid northing (EPSG:27700).",
}

# Header spellings that need no mapping, besides the field names themselves (compared after normalising).
FIELD_ALIASES = {
    "longitude": "lon", "long": "lon", "lng": "lon", "x_lon": "lon",
    "latitude": "lat", "y_lat": "lat",
    "eastings": "easting", "os_easting": "easting", "oseast1m": "easting",
    "northings": "northing", "os_northing": "northing", "osnrth1m": "northing",
    "post_code": "postcode", "postal_code": "postcode", "zip": "postcode",
    "unique_property_reference_number": "uprn",
    "email_address": "email", "e_mail": "email",
    "telephone": "phone", "phone_number": "phone", "tel": "phone",
    "website": "url", "web_site": "url", "web": "url",
    "type": "category", "asset_type": "category", "asset_category": "category",
    "asset_name": "name", "title": "name",
    "level": "tier", "asset_tier": "tier",
    "id": "source_key", "source_id": "source_key", "ref": "source_key", "reference": "source_key",
    "verified": "last_verified", "last_checked": "last_verified", "date_verified": "last_verified",
    "offer": "offers", "what_it_offers": "offers",
}

STATUS_ALIASES = {
    "open": "open", "active": "open", "yes": "open", "operating": "open", "": "open",
    "closed": "closed", "close": "closed", "permanently closed": "closed", "no": "closed", "inactive": "closed",
    "temporarily closed": "temporarily closed", "temporary closure": "temporarily closed",
    "temp closed": "temporarily closed", "temporarily_closed": "temporarily closed", "suspended": "temporarily closed",
}

_NOT_WORD = re.compile(r"[^a-z0-9/]+")


def normalise_word(value):
    """'Children's  Centre' -> 'childrens_centre': case, spaces, hyphens and apostrophes do not matter."""
    text = str(value).lower().replace("'", "").replace("\u2019", "")
    return _NOT_WORD.sub("_", text).strip("_")


def field_for_header(header):
    """The asset field a source column fills without a mapping, or None."""
    word = normalise_word(header)
    if word in FIELDS:
        return word
    return FIELD_ALIASES.get(word)


@dataclass(frozen=True)
class Taxonomy:
    categories: dict                  # id -> {"tier", "label"}
    category_words: dict              # normalised word -> id
    tier_words: dict                  # normalised word -> tier
    offer_words: dict                 # normalised word -> offer id
    offers: tuple = field(default=())

    def resolve_tiers(self, values):
        """Series of tier ids (<NA> where unknown) for a Series of strings."""
        return _lookup(values, self.tier_words)

    def resolve_categories(self, values):
        return _lookup(values, self.category_words)

    def tier_of(self, categories):
        return categories.map({k: v["tier"] for k, v in self.categories.items()}).astype("string")

    def suggest(self, value, kind="category"):
        """The closest known category (or tier) to a misspelt value, or None."""
        words = self.category_words if kind == "category" else self.tier_words
        hits = difflib.get_close_matches(normalise_word(value), list(words), n=1, cutoff=0.6)
        return words[hits[0]] if hits else None

    def normalise_offers(self, values):
        """Series of ';'-joined offer ids; offers not in the taxonomy are kept as written, lower case."""
        codes, uniques = pd.factorize(values)
        out = []
        for raw in uniques:
            items = [s.strip() for s in re.split(r"[;,|\n]", str(raw)) if s.strip()]
            ids = [self.offer_words.get(normalise_word(i), i.lower()) for i in items]
            out.append(";".join(dict.fromkeys(ids)))
        lookup = pd.array(out + [""], dtype="string")
        return pd.Series(lookup[codes], index=values.index, dtype="string")

    def unknown_offers(self, offers):
        """The offers of a ';'-joined Series that the taxonomy does not list (for the report)."""
        known = set(self.offers)
        return offers.map(lambda s: [o for o in s.split(";") if o and o not in known] if s else [])


def _lookup(values, words):
    codes, uniques = pd.factorize(values)
    resolved = [words.get(normalise_word(v)) for v in uniques] + [None]
    return pd.Series(pd.array(resolved, dtype="string")[codes], index=values.index, dtype="string")


@functools.cache
def _load(path_text):
    path = Path(path_text)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        msg = f"The taxonomy {path.name} cannot be read: {err}"
        raise ConfigError(msg) from err
    problems = []
    tier_words = {}
    for tier, spec in (data.get("tiers") or {}).items():
        if tier not in TIERS:
            problems.append(f"unknown tier {tier!r}")
            continue
        for word in [tier, *(spec or {}).get("aliases", [])]:
            tier_words[normalise_word(word)] = tier
    categories, category_words = {}, {}
    for cid, spec in (data.get("categories") or {}).items():
        if not isinstance(spec, dict) or spec.get("tier") not in TIERS:
            problems.append(f"category {cid!r} needs a tier, one of {', '.join(TIERS)}")
            continue
        if normalise_word(cid) != cid:
            problems.append(f"category id {cid!r} must be lower case with underscores")
        categories[cid] = {"tier": spec["tier"], "label": spec.get("label", cid)}
        for word in [cid, spec.get("label", cid), *spec.get("aliases", [])]:
            key = normalise_word(word)
            if key in category_words and category_words[key] != cid:
                problems.append(f"alias {word!r} is given to both {category_words[key]!r} and {cid!r}")
            category_words[key] = cid
    offer_words = {}
    for oid, aliases in (data.get("offers") or {}).items():
        for word in [oid, *(aliases or [])]:
            offer_words[normalise_word(word)] = oid
    if problems:
        msg = f"The taxonomy {path.name} is invalid: " + "; ".join(problems)
        raise ConfigError(msg)
    return Taxonomy(categories, category_words, tier_words, offer_words, tuple(data.get("offers") or ()))


def taxonomy(path=TAXONOMY_FILE):
    return _load(str(path))
