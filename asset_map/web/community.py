"""What the public sends without an account: suggestions of assets and changes, individuals' offers of their own
skills (and their private links), and answers to confirm-your-listing links. Thin routes: the work is in
asset_map.suggestions, asset_map.offers and asset_map.confirmations. POSTs are rate-limited (web/limits.py)."""

import time

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import text

from asset_map.errors import FormInvalid, InputError
from asset_map.web import extensions, limits
from asset_map.web.auth import client_ip
from asset_map.web.lazy import lazy

# These bring geopandas through the register edits: loaded by the first community page, not at start-up.
confirmations = lazy("asset_map.confirmations")
offers = lazy("asset_map.offers")
suggestions = lazy("asset_map.suggestions")

bp = Blueprint("community", __name__)
# A field no person sees or fills (hidden by CSS and from screen readers); robots fill every field they find.
HONEYPOT = "website_address"
_BOUNDS_TTL_S = 300


def _district_bounds():
    """[[south, west], [north, east]] of the loaded districts, kept for a few minutes per process (districts are
    reference data: they change when somebody reloads them, not between requests)."""
    cache = current_app.extensions.setdefault("asset_map.community_bounds", {})
    # "bounds" absent, not an "at" of 0: the monotonic clock starts at boot, so 0 can be less than a TTL ago.
    if "bounds" not in cache or cache["at"] + _BOUNDS_TTL_S < time.monotonic():
        with extensions.engine().connect() as conn:
            b = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                  "(SELECT ST_Extent(geom) AS e FROM districts) x")).first()
        cache["bounds"] = [[b[1], b[0]], [b[3], b[2]]] if b and b[0] is not None else None
        cache["at"] = time.monotonic()
    return cache["bounds"]


def map_config(point=None, zoom=None):
    settings = current_app.config["ASSET_MAP"]
    tiles = settings["TILES"] if settings["TILES"] and settings["TILES"].lower() != "none" else None
    bounds = _district_bounds()
    return {"tiles": tiles, "attribution": settings["TILES_ATTRIBUTION"], "point": point, "zoom": zoom,
            "districts_url": url_for("ogc.items", collection_id="districts", f="json", limit=100),
            "bounds": bounds}


def _robot():
    return bool(request.form.get(HONEYPOT, "").strip())


@bp.route("/suggest", methods=["GET", "POST"])
def suggest():
    engine = extensions.engine()
    asset_id = request.values.get("asset", type=int)
    current = suggestions.current_asset(engine, asset_id, role="public") if asset_id else None
    if asset_id and current is None:
        asset_id = None
    values, problems = dict(request.values.items()), {}
    if request.method == "POST":
        try:
            with limits.public_write():
                if _robot():
                    # Tell a robot nothing it could learn from; nothing is stored.
                    return redirect(url_for("community.thanks", kind="suggestion"))
                suggestions.submit(engine, request.form, kind="change" if asset_id else "new", asset_id=asset_id,
                                   ip=client_ip(), tolerance_m=current_app.config["ASSET_MAP"]["AREA_TOLERANCE_M"])
            return redirect(url_for("community.thanks", kind="suggestion"))
        except FormInvalid as err:
            problems = err.problems
        except InputError as err:
            problems = {"name": err.user_message}
    elif current is not None:
        values = {k: (", ".join(v) if isinstance(v, list) else v) for k, v in current.items() if v is not None}
        values.pop("lon", None), values.pop("lat", None)
    point = None
    try:
        point = [float(request.values["lat"]), float(request.values["lon"])]
    except (KeyError, ValueError):
        if current is not None and current.get("lat") is not None:
            point = [current["lat"], current["lon"]]
    status = 400 if problems else 200
    config = map_config(point, request.values.get("zoom", type=int))
    config["assets_url"] = url_for("explorer.assets_geojson")
    return render_template("community/suggest.html", values=values, problems=problems, current=current,
                           choices=suggestions.category_choices(), honeypot=HONEYPOT, map_config=config), status


@bp.get("/suggest/thanks")
def thanks():
    return render_template("community/thanks.html", kind=request.args.get("kind", "suggestion"))


def _secret():
    return current_app.config["SECRET_KEY"]


def external_url(endpoint, **values):
    """An absolute link for e-mails: the configured SITE_URL when there is one, else this request's host."""
    site = (current_app.config["ASSET_MAP"].get("SITE_URL") or "").rstrip("/")
    path = url_for(endpoint, **values)
    return site + path if site else url_for(endpoint, _external=True, **values)


def _mail_private_link(email, link):
    """Send the person their private link (asset_map.mail: SMTP, or the outbox when none is set)."""
    from asset_map import mail

    message = mail.Message(to=[email], subject="Your entry on asset-map: your private link", text=(
        "Thank you for offering your help. A council officer checks each offer before it is added; until then, "
        "nobody else sees it.\n\n"
        "With this private link you can see, change or withdraw your entry at any time:\n\n"
        f"{link}\n\n"
        "Keep it to yourself: anybody with the link can change or withdraw your entry. Your details are never shown "
        "to the public; organisers in your district will contact you as you asked.\n"))
    return mail.send(message, current_app.config["ASSET_MAP"])


@bp.route("/offer", methods=["GET", "POST"])
def offer():
    values, problems = {"contact_by": "email", "category": "skill_share"}, {}
    if request.method == "POST":
        values = dict(request.form.items())
        try:
            with limits.public_write():
                if _robot():
                    return render_template("community/offer_done.html", link=None, emailed=None)
                _offer_id, token = offers.offer(extensions.engine(), request.form, secret=_secret(), ip=client_ip(),
                                                tolerance_m=current_app.config["ASSET_MAP"]["AREA_TOLERANCE_M"])
        except FormInvalid as err:
            problems = err.problems
        else:
            emailed = None
            if values.get("email"):
                emailed = _mail_private_link(values["email"], external_url("community.offer_manage", token=token))
            return render_template("community/offer_done.html", emailed=emailed,
                                   link=url_for("community.offer_manage", token=token, _external=True))
    return render_template("community/offer.html", values=values, problems=problems, honeypot=HONEYPOT,
                           choices=offers.category_choices(), contacts=offers.CONTACT_CHOICES,
                           wording=offers.WORDINGS[offers.CURRENT_WORDING], version=offers.CURRENT_WORDING,
                           action=url_for("community.offer"), manage=False), 400 if problems else 200


@bp.route("/offer/manage/<token>", methods=["GET", "POST"])
def offer_manage(token):
    engine, problems = extensions.engine(), {}
    if request.method == "POST":
        try:
            with limits.public_write():
                offers.change(engine, token, request.form, secret=_secret(), ip=client_ip(),
                              tolerance_m=current_app.config["ASSET_MAP"]["AREA_TOLERANCE_M"])
            flash("Your entry has been changed.")
            return redirect(url_for("community.offer_manage", token=token))
        except FormInvalid as err:
            problems = err.problems
    entry = offers.view(engine, token, secret=_secret())
    values = {**entry, "offers": ", ".join(entry["offers"] or []), "consent": ""}
    if problems:
        values.update(request.form.items())
    return render_template("community/offer.html", values=values, problems=problems, honeypot=None, entry=entry,
                           choices=offers.category_choices(), contacts=offers.CONTACT_CHOICES,
                           wording=offers.WORDINGS[offers.CURRENT_WORDING], version=offers.CURRENT_WORDING,
                           action=url_for("community.offer_manage", token=token), token=token,
                           manage=True), 400 if problems else 200


@bp.post("/offer/manage/<token>/withdraw")
def offer_withdraw(token):
    offers.withdraw(extensions.engine(), token, secret=_secret(), ip=client_ip(),
                    settings=current_app.config["ASSET_MAP"])
    return render_template("community/offer_withdrawn.html")


def _confirm_age():
    return current_app.config["ASSET_MAP"]["CONFIRM_LINK_DAYS"]


@bp.get("/confirm/<token>")
def confirm_listing(token, problems=None, values=None):
    row, asset = confirmations.listing(extensions.engine(), token, secret=_secret(), max_age_days=_confirm_age())
    if values is None:
        values = {k: (", ".join(v) if isinstance(v, list) else v) for k, v in asset.items() if v is not None}
    return render_template("community/confirm.html", asset=asset, row=row, token=token, values=values,
                           problems=problems or {}, choices=suggestions.category_choices(),
                           label=suggestions.category_label), 400 if problems else 200


@bp.post("/confirm/<token>")
def confirm_yes(token):
    confirmations.confirm(extensions.engine(), token, secret=_secret(), max_age_days=_confirm_age(), ip=client_ip())
    return render_template("community/confirmed.html", outcome="confirmed")


@bp.post("/confirm/<token>/correct")
def confirm_correct(token):
    try:
        with limits.public_write():
            confirmations.correct(extensions.engine(), token, request.form, secret=_secret(),
                                  max_age_days=_confirm_age(), ip=client_ip(),
                                  tolerance_m=current_app.config["ASSET_MAP"]["AREA_TOLERANCE_M"])
    except FormInvalid as err:
        return confirm_listing(token, problems=err.problems, values=dict(request.form.items()))
    return render_template("community/confirmed.html", outcome="corrected")
