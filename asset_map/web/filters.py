"""The request's filter and the choices the shared filter form offers (thin glue between request and core)."""

from flask import current_app, g, request

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


def _stored_choices(role):
    """What the form offers from the store (districts, areas, categories and offers ``role`` may see), kept per
    process until the assets or reference data change: one statement on every form but the first."""
    if "form_choices" not in g:
        engine = extensions.read_engine()
        kept = extensions.kept("asset_map.form_choices", lambda _: StampedCache(CHOICES_KEPT, weigh=lambda _: 1))
        g.form_choices = kept.get(engine, role, lambda: {
            "districts": choices.districts(engine), "areas": geographies.choices(engine),
            "categories": choices.categories(engine, role=role), "offers": choices.offers(engine, role=role)})
    return g.form_choices
