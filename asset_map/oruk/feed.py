"""Read a partner's Open Referral UK feed (an API base URL, or a JSON file of services) into register rows, which
the one importer then validates, geocodes, assigns to areas and stores like any register.

Services are grouped back into assets by their organisation (one asset per organisation, its services' offers as
the asset's offers); categories and offers come from the services' taxonomy terms through the taxonomy's aliases
(``layers/taxonomy/categories.yaml``); the first location with a point, a UPRN or a postcode places the asset.

A hostile or broken feed is stopped with a clear message before anything is written: a response over
``max_bytes``, text that is not UTF-8 or not JSON, a service without an id, a service repeated (a feed that loops),
organisations that are their own ancestors, more than ``max_pages`` pages or ``max_services`` services, or a read
that takes longer than ``deadline_s``.
"""

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from asset_map.errors import InputError
from asset_map.registers.schema import normalise_word, taxonomy
from asset_map.vocabulary import STATUSES

PER_PAGE = 100
USER_AGENT = "asset-map ORUK import"
_STATUS = {"active": "open", "temporarily closed": "temporarily closed", "inactive": "closed", "defunct": "closed"}


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 20 * 1024 * 1024   # one response or file
    max_pages: int = 2_000
    max_services: int = 200_000
    deadline_s: float = 600.0
    timeout_s: float = 30.0


class FeedError(InputError):
    """The feed cannot be imported; the message says where (URL or file, page, service) and why."""


def _decode(raw, where, limits):
    if len(raw) > limits.max_bytes:
        msg = f"{where}: larger than {limits.max_bytes // (1024 * 1024)} MB; nothing was imported."
        raise FeedError(msg)
    try:
        body = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        msg = f"{where}: not UTF-8 text (byte {err.start}); ORUK feeds are UTF-8 JSON. Nothing was imported."
        raise FeedError(msg) from err
    try:
        return json.loads(body)
    except RecursionError as err:
        msg = f"{where}: JSON nested too deeply to be a feed; nothing was imported."
        raise FeedError(msg) from err
    except ValueError as err:
        msg = f"{where}: not valid JSON ({err}); nothing was imported."
        raise FeedError(msg) from err


class _Reader:
    def __init__(self, limits):
        self.limits = limits
        self.started = time.monotonic()

    def check_time(self, where):
        if time.monotonic() - self.started > self.limits.deadline_s:
            msg = f"{where}: the feed took longer than {self.limits.deadline_s:.0f} s to read; nothing was imported."
            raise FeedError(msg)

    def get(self, url):
        self.check_time(url)
        request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=self.limits.timeout_s) as res:  # noqa: S310 - http(s) only
                raw = res.read(self.limits.max_bytes + 1)
        except urllib.error.HTTPError as err:
            msg = f"{url}: the server answered {err.code} {err.reason}; nothing was imported."
            raise FeedError(msg) from err
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            msg = f"{url}: cannot be read ({getattr(err, 'reason', err)}); nothing was imported."
            raise FeedError(msg) from err
        return _decode(raw, url, self.limits)


def _service_ids(services, where):
    out = []
    for i, service in enumerate(services):
        sid = service.get("id") if isinstance(service, dict) else None
        if not isinstance(sid, str) or not sid.strip():
            msg = f"{where}, service {i + 1}: has no id; every ORUK service needs one. Nothing was imported."
            raise FeedError(msg)
        out.append(sid.strip())
    return out


def read_url(url, limits=Limits()):
    """Every service of the API at ``url`` (its base, or its /services address), fully nested."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        msg = f"{url!r}: give an http(s) address of an ORUK API, or a file."
        raise FeedError(msg)
    base = url.split("?", 1)[0].rstrip("/")
    base = base[: -len("/services")] if base.endswith("/services") else base
    reader, services, seen, page = _Reader(limits), [], set(), 1
    while True:
        if page > limits.max_pages:
            msg = f"{base}/services: more than {limits.max_pages:,} pages; the feed may page forever. Nothing was imported."
            raise FeedError(msg)
        where = f"{base}/services page {page}"
        doc = reader.get(f"{base}/services?page={page}&per_page={PER_PAGE}")
        contents = doc.get("contents") if isinstance(doc, dict) else None
        if not isinstance(contents, list):
            msg = f"{where}: not an ORUK page (no 'contents' list); nothing was imported."
            raise FeedError(msg)
        for sid, item in zip(_service_ids(contents, where), contents):
            if sid in seen:
                msg = (f"{where}: service {sid!r} was already read on an earlier page; the feed loops. "
                       "Nothing was imported.")
                raise FeedError(msg)
            seen.add(sid)
            if len(seen) > limits.max_services:
                msg = f"{where}: more than {limits.max_services:,} services; nothing was imported."
                raise FeedError(msg)
            full = item if "service_at_locations" in item else reader.get(
                f"{base}/services/{urllib.parse.quote(sid, safe='')}")
            if not isinstance(full, dict) or full.get("id") != sid:
                msg = f"{base}/services/{sid}: does not describe service {sid!r}; nothing was imported."
                raise FeedError(msg)
            services.append(full)
        if not contents or doc.get("last_page") is True or doc.get("empty") is True or (
                isinstance(doc.get("total_pages"), int) and page >= doc["total_pages"]):
            return services
        page += 1


def read_file(path, limits=Limits()):
    """Services from a JSON file: an ORUK page (``contents``), a list of services, or one service."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            msg = f"{path.name}: larger than {limits.max_bytes // (1024 * 1024)} MB; nothing was imported."
            raise FeedError(msg)
        raw = path.read_bytes()
    except OSError as err:
        msg = f"{path.name}: cannot be read ({err.strerror}); nothing was imported."
        raise FeedError(msg) from err
    doc = _decode(raw, path.name, limits)
    services = doc.get("contents") if isinstance(doc, dict) and "contents" in doc else doc
    services = [services] if isinstance(services, dict) else services
    if not isinstance(services, list):
        msg = f"{path.name}: expected an ORUK page, a list of services or a service; nothing was imported."
        raise FeedError(msg)
    ids = _service_ids(services, path.name)
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        msg = f"{path.name}: service {dup!r} appears more than once; nothing was imported."
        raise FeedError(msg)
    return services


def read(source, limits=Limits()):
    return read_url(source, limits) if re.match(r"^https?://", str(source)) else read_file(source, limits)


# -- services -> register rows -----------------------------------------------------------------------------------
def _terms(service):
    for attr in service.get("attributes") or []:
        term = attr.get("taxonomy_term") if isinstance(attr, dict) else None
        if isinstance(term, dict):
            yield term


def _organisation(service):
    org = service.get("organization") if isinstance(service.get("organization"), dict) else {}
    return str(org.get("id") or service.get("organization_id") or ""), org


def _check_cycles(services, where):
    parents = {}
    for service in services:
        oid, org = _organisation(service)
        if oid and org.get("parent_organization_id"):
            parents[oid] = str(org["parent_organization_id"])
    for start in parents:
        seen, node = {start}, parents[start]
        while node in parents:
            if node in seen:
                msg = (f"{where}: organisation {start!r} is its own ancestor (parent_organization_id cycle); "
                       "nothing was imported.")
                raise FeedError(msg)
            seen.add(node)
            node = parents[node]


def _location(service):
    for sal in service.get("service_at_locations") or []:
        loc = sal.get("location") if isinstance(sal, dict) else None
        if isinstance(loc, dict):
            yield loc


def _text(value):
    return "" if value is None or isinstance(value, (dict, list)) else str(value).strip()


def to_rows(services, where):
    """One register row per organisation (or per service without one), columns named like the register fields."""
    _check_cycles(services, where)
    tax = taxonomy()
    groups = {}
    for service in services:
        oid, _ = _organisation(service)
        groups.setdefault(oid or f"service:{service['id']}", []).append(service)
    rows = []
    for key, group in groups.items():
        first = group[0]
        _, org = _organisation(first)
        category, offers = "", []
        for service in group:
            for term in _terms(service):
                for word in (term.get("term"), term.get("name")):
                    w = normalise_word(_text(word))
                    if not category and w in tax.category_words:
                        category = tax.category_words[w]
                    if w in tax.offer_words and tax.offer_words[w] not in offers:
                        offers.append(tax.offer_words[w])
        name = _text(org.get("name")) or _text(first.get("name"))
        for service in group:
            # A service named "<organisation>: <offer>" (as asset-map publishes them) is that offer.
            own = _text(service.get("name"))
            if own.startswith(f"{name}: "):
                offer = own[len(name) + 2:].strip()
                offer = tax.offer_words.get(normalise_word(offer), offer.lower())
                if offer and offer not in offers:
                    offers.append(offer)
        if not category:
            # No term names one of our categories: the organisation's or service's own words may (the aliases).
            category = next((t.get("name") for s in group for t in _terms(s) if t.get("name")), "") or ""
        row = {"source_key": f"oruk:{key}", "name": name,
               "description": _text(org.get("description")) or _text(first.get("description")),
               "url": _text(org.get("website")) or _text(first.get("url")),
               "email": _text(org.get("email")) or _text(first.get("email")),
               "category": _text(category), "offers": ";".join(offers),
               "status": _status(group), "last_verified": _last_modified(group),
               "oruk_services": ";".join(s["id"] for s in group)}
        row.update(_place(group))
        rows.append(row)
    return pd.DataFrame(rows, columns=["source_key", "name", "description", "url", "email", "category", "offers",
                                       "status", "last_verified", "address", "postcode", "uprn", "lon", "lat",
                                       "oruk_services"], dtype=object).fillna("")


def _status(group):
    statuses = [_STATUS.get(_text(s.get("status")).lower(), "open") for s in group]
    for status in STATUSES:
        if status in statuses:
            return status
    return "open"


def _last_modified(group):
    days = sorted(_text(s.get("last_modified"))[:10] for s in group if _text(s.get("last_modified")))
    return days[-1] if days else ""


def _place(group):
    for service in group:
        for loc in _location(service):
            out = {"lon": _text(loc.get("longitude")), "lat": _text(loc.get("latitude"))}
            if _text(loc.get("external_identifier_type")).lower() == "uprn":
                out["uprn"] = _text(loc.get("external_identifier"))
            for addr in loc.get("addresses") or []:
                if isinstance(addr, dict):
                    lines = [_text(addr.get(k)) for k in ("address_1", "city")]
                    out.update(address=", ".join(x for x in lines if x), postcode=_text(addr.get("postal_code")))
                    break
            if any(out.get(k) for k in ("lon", "uprn", "postcode")):
                return out
    return {}


def import_feed(engine, source, *, register=None, limits=Limits(), settings=None, progress=None, actor="cli"):
    """Read the whole feed, then import it through the one importer (one transaction): a feed that fails to read
    writes nothing. Returns the ImportReport."""
    import tempfile

    from asset_map.registers import importer
    from asset_map.registers.mapping import Mapping

    services = read(source, limits)
    where = str(source) if re.match(r"^https?://", str(source)) else Path(source).name
    if not services:
        msg = f"{where}: the feed lists no services; nothing was imported."
        raise FeedError(msg)
    rows = to_rows(services, where)
    register = register or default_register(source)
    with tempfile.TemporaryDirectory(prefix="asset-map-oruk-") as tmp:
        path = Path(tmp) / "oruk.csv"
        rows.to_csv(path, index=False, encoding="utf-8")
        return importer.import_register(engine, path, register=register, mapping=Mapping(source="oruk"),
                                        settings=settings, progress=progress, actor=actor, source_name=where)


def default_register(source):
    """'oruk-<host>' for an address, 'oruk-<file name>' for a file."""
    if re.match(r"^https?://", str(source)):
        host = urllib.parse.urlsplit(str(source)).hostname or "feed"
        return "oruk-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", host)[:100]
    return "oruk-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(source).stem)[:100]
