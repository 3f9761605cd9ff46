"""The request's filter and the choices the shared filter form offers (thin glue between request and core)."""

from flask import current_app, request

from asset_map import privacy
from asset_map.layers import choices, styles
from asset_map.store.assets import DEFAULT_STATUSES, STATUSES, AssetFilter
from asset_map.web import extensions
from asset_map.web.auth import current_role

STATUS_CHOICES = [("", "Open or temporarily closed"), ("open", "Open"),
                  ("temporarily closed", "Temporarily closed"), ("closed", "Closed"), ("all", "All, including closed")]


def request_filter():
    return AssetFilter.from_args(request.args)


def form_choices(flt):
    engine, role = extensions.engine(), current_role()
    table = styles.load()
    if set(flt.status) == set(STATUSES):
        current = "all"
    elif flt.status == DEFAULT_STATUSES:
        current = ""
    else:
        current = ",".join(flt.status)
    visible_tiers = [t for t in styles.TIER_LABELS if t != "individual" or privacy.sees_individual_points(role)]
    return {
        "districts": choices.districts(engine),
        "tiers": [(t, styles.TIER_LABELS[t]) for t in visible_tiers],
        "categories": [(t, c, styles.label_for(c, table), n) for t, c, n in choices.categories(engine, role=role)],
        "offers": choices.offers(engine, role=role),
        "statuses": STATUS_CHOICES,
        "status_current": current,
        "stale_months": current_app.config["ASSET_MAP"]["STALE_MONTHS"],
    }
