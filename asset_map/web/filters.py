"""The request's filter and the choices the shared filter form offers (thin glue between request and core)."""

import json

from flask import current_app, g, render_template, request
from markupsafe import Markup

from asset_map import privacy
from asset_map.maps import choices, styles
from asset_map.store.assets import AssetFilter
from asset_map.store.change_stamps import StampedCache
from asset_map.vocabulary import DEFAULT_STATUSES, STATUS_LABELS, STATUSES, STORED_STATUSES, TIER_LABELS
from asset_map.web import extensions
from asset_map.web.auth import current_role
from asset_map.web.lazy import lazy

# The geographies module reads files with GDAL: loaded by the first filter form, not at start-up (issue 16).
geographies = lazy("asset_map.store.geographies")

CHOICES_KEPT = 8   # one answer per role
FORMS_KEPT_BYTES = 4 * 2**20   # rendered filter forms a process keeps (England's is about 300 KB)
STATUS_CHOICES = [("", " or ".join(STATUS_LABELS[s] for s in DEFAULT_STATUSES).capitalize()),
                  *((s, STATUS_LABELS[s]) for s in STATUSES), ("all", "All, including closed")]


def request_filter():
    return AssetFilter.from_args(request.args)


def form_choices(flt):
    role = current_role()
    table = styles.load()
    if set(flt.status) == set(STORED_STATUSES):
        current = "all"
    elif flt.status == DEFAULT_STATUSES:
        current = ""
    else:
        current = ",".join(flt.status)
    visible_tiers = [t for t in TIER_LABELS if t != "individual" or privacy.sees_individual_points(role)]
    return {
        **_stored_choices(role),
        "tiers": [(t, TIER_LABELS[t]) for t in visible_tiers],
        "categories": [(t, c, styles.label_for(c, table), n) for t, c, n in _stored_choices(role)["categories"]],
        "statuses": STATUS_CHOICES,
        "status_current": current,
        "stale_months": current_app.config["ASSET_MAP"]["STALE_MONTHS"],
    }


def form_html(flt):
    """The shared filter form (templates/maps/_filters.html) for this filter, as the reader's role sees it: kept
    rendered per process until the assets or reference data change. England's has hundreds of districts and
    thousands of areas to choose from: drawing it was a quarter of a map page's time and a third of a table page's,
    the same for every page a reader walks through."""
    key = (current_role(), json.dumps(flt.as_args(), sort_keys=True, default=str))
    kept = extensions.kept("asset_map.filter_forms", lambda _: StampedCache(FORMS_KEPT_BYTES))
    return Markup(kept.get(extensions.read_engine(), key,
                           lambda: render_template("maps/_filters.html", form=form_choices(flt), flt=flt),
                           now=extensions.stamps()))


def _stored_choices(role):
    """What the form offers from the store (districts, areas, categories and offers ``role`` may see), kept per
    process until the assets or reference data change: one statement on every form but the first."""
    if "form_choices" not in g:
        engine = extensions.read_engine()
        kept = extensions.kept("asset_map.form_choices", lambda _: StampedCache(CHOICES_KEPT, weigh=lambda _: 1))
        g.form_choices = kept.get(engine, role, lambda: {
            "districts": choices.districts(engine), "areas": geographies.choices(engine),
            "categories": choices.categories(engine, role=role), "offers": choices.offers(engine, role=role)},
            now=extensions.stamps())
    return g.form_choices
