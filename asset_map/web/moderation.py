"""/moderation: the queue of suggestions for organisers and officers, by district, and their decisions. Thin
routes over asset_map.suggestions (what to show) and asset_map.moderation (what to do). The path is protected
for organisers and above in asset_map.web.auth.PATH_ROLES."""

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, send_file, url_for
from markupsafe import Markup

from asset_map import privacy
from asset_map.errors import FormInvalid, InputError, NotFound
from asset_map.store.assets import parse_int
from asset_map.store.change_stamps import COMMUNITY, StampedCache
from asset_map.web import extensions
from asset_map.web.auth import client_ip, current_actor, current_role, require_role, role_at_least
from asset_map.web.community import map_config
from asset_map.web.lazy import lazy

# These bring geopandas through the register edits: loaded by the first moderation page, not at start-up.
moderation = lazy("asset_map.moderation")
offers = lazy("asset_map.offers")
suggestions = lazy("asset_map.suggestions")

bp = Blueprint("moderation", __name__, url_prefix="/moderation")
# Pages of the queue (by district and page) and the waiting counts kept in each process until a suggestion, an
# offer or a district changes: moderators page through a queue far more often than the public adds to it.
QUEUES_KEPT = 256
PAGE_SIZE = 25


def waiting_count():
    """Suggestions waiting, for the header of moderators' pages; None for everybody else (and nothing is asked of
    the database for them)."""
    if not role_at_least("organiser"):
        return None
    if "moderation_waiting" not in g:
        try:
            _count_waiting(_kept("waiting", _read_waiting))
        except Exception:  # noqa: BLE001 - the header must render even with the database away
            return None
    return g.moderation_waiting


def _kept(key, read):
    """``read(conn)``'s answer, kept until the waiting suggestions, offers or districts change."""
    engine = extensions.read_engine()
    kept = extensions.kept("asset_map.moderation_queues", lambda _: StampedCache(
        QUEUES_KEPT, weigh=lambda _: 1, families=("reference", COMMUNITY)))

    def compute():
        with engine.connect() as conn:  # one connection for the questions
            return read(conn)

    return kept.get(engine, key, compute)


def _read_waiting(conn):
    """([(district code, name, waiting)], offers waiting)."""
    return suggestions.waiting_by_district(conn), offers.waiting_count(conn)


def _count_waiting(waiting):
    """The header's count: suggestions, and offers for those who decide them."""
    districts, offers_waiting = waiting
    g.moderation_waiting = sum(n for _code, _name, n in districts)
    if privacy.may_moderate_offers(current_role()):
        g.moderation_waiting += offers_waiting  # theirs to decide too


@bp.app_context_processor
def _header_context():
    return {"moderation_waiting": waiting_count}


@bp.get("")
@require_role("organiser")
def queue():
    district = request.args.get("district") or None
    page = parse_int(request.args, "page", 1, 1, 100000)
    may_moderate_offers = privacy.may_moderate_offers(current_role())

    def read(conn):
        """The waiting counts and the page's listing, rendered here so that it is kept rendered."""
        districts, offers_waiting = _read_waiting(conn)
        waiting = sum(n for _code, _name, n in districts)
        total = next((n for code, _name, n in districts if code == district), 0) if district else waiting
        total, rows = suggestions.queue(conn, district=district, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
                                        total=total)
        markers = [{"lat": r["lat"], "lon": r["lon"], "label": f"{r['id']}: {r['name']}"} for r in rows]
        listing = Markup(render_template(
            "moderation/_queue_listing.html", rows=rows, total=total, page=page, pages=-(-total // PAGE_SIZE),
            district=district, districts=districts, offers_waiting=offers_waiting,
            may_moderate_offers=may_moderate_offers, label=suggestions.category_label,
            map_config=map_config() | {"markers": markers}))
        return districts, offers_waiting, listing

    districts, offers_waiting, listing = _kept(
        ("queue", district, page, may_moderate_offers, request.script_root), read)
    _count_waiting((districts, offers_waiting))  # the header's count, without asking again
    return render_template("moderation/queue.html", district=district, districts=districts, listing=listing)


@bp.get("/<int:suggestion_id>")
@require_role("organiser")
def show(suggestion_id, problems=None, status=200):
    with extensions.read_engine().connect() as conn:  # one connection for the suggestion and its checks
        suggestion = suggestions.get(conn, suggestion_id)
        found = suggestions.checks(conn, suggestion, role=current_role())
    _count_waiting(_kept("waiting", _read_waiting))
    dup_ids = {d["id"] for d in found["duplicates"]}
    markers = [{"lat": r["lat"], "lon": r["lon"], "label": f"{r['name']} ({r['distance_m']:.0f} m)",
                "duplicate": r["id"] in dup_ids} for r in found["nearest"]]
    config = map_config([suggestion["lat"], suggestion["lon"]], 16) | {"markers": markers}
    values = dict(suggestion)
    values["offers"] = ", ".join(suggestion["offers"] or [])
    if problems:
        values.update(request.form.items())
    return render_template("moderation/show.html", s=suggestion, found=found, values=values, problems=problems or {},
                           choices=suggestions.category_choices(), label=suggestions.category_label,
                           map_config=config), status


@bp.post("/<int:suggestion_id>/accept")
@require_role("organiser")
def accept(suggestion_id):
    try:
        asset_id = moderation.accept(extensions.engine(), suggestion_id, request.form, actor=current_actor(),
                                     role=current_role(), ip=client_ip())
    except FormInvalid as err:
        return show(suggestion_id, problems=err.problems, status=400)
    except InputError as err:
        if err.status not in (400, 422):
            raise
        # The edit core refused the values (an unknown kind, a place out of area): say so beside the form.
        return show(suggestion_id, problems={"name": err.user_message}, status=err.status)
    flash(f"Suggestion {suggestion_id} accepted: it is on the map as asset {asset_id}.")
    return redirect(url_for("moderation.queue", district=request.form.get("back_district") or None))


@bp.post("/<int:suggestion_id>/merge")
@require_role("organiser")
def merge(suggestion_id):
    asset_id = request.form.get("asset_id")
    filled = moderation.merge(extensions.engine(), suggestion_id, asset_id, actor=current_actor(),
                              role=current_role(), ip=client_ip())
    what = f"filled in {', '.join(filled)}" if filled else "nothing new to add"
    flash(f"Suggestion {suggestion_id} merged into asset {asset_id} ({what}).")
    return redirect(url_for("moderation.queue", district=request.form.get("back_district") or None))


@bp.post("/<int:suggestion_id>/reject")
@require_role("organiser")
def reject(suggestion_id):
    try:
        moderation.reject(extensions.engine(), suggestion_id, request.form.get("reason"), actor=current_actor(),
                          ip=client_ip())
    except InputError as err:
        if err.status != 400:
            raise
        return show(suggestion_id, problems={"reason": err.user_message}, status=400)
    flash(f"Suggestion {suggestion_id} rejected.")
    return redirect(url_for("moderation.queue", district=request.form.get("back_district") or None))


@bp.get("/offers")
@require_role("organiser")  # privacy.py decides who sees offers
def offer_queue():
    """People's offers waiting for an officer, with the fields privacy.py lets the role read."""
    district = request.args.get("district") or None
    rows = offers.waiting(extensions.engine(), current_role(), district=district)
    return render_template("moderation/offers.html", rows=rows, district=district, label=suggestions.category_label)


@bp.post("/offers/<int:offer_id>/accept")
@require_role("organiser")  # privacy.py decides who sees offers
def offer_accept(offer_id):
    asset_id = offers.accept(extensions.engine(), offer_id, actor=current_actor(), role=current_role(), ip=client_ip())
    flash(f"Offer {offer_id} accepted: the person is asset {asset_id}, shown to the public only as a count.")
    return redirect(url_for("moderation.offer_queue"))


@bp.post("/offers/<int:offer_id>/reject")
@require_role("organiser")  # privacy.py decides who sees offers
def offer_reject(offer_id):
    offers.reject(extensions.engine(), offer_id, request.form.get("reason"), actor=current_actor(),
                  role=current_role(), ip=client_ip())
    flash(f"Offer {offer_id} rejected; what it held about the person is erased.")
    return redirect(url_for("moderation.offer_queue"))


@bp.post("/confirmations")
@require_role("organiser")
def send_confirmations():
    """Send confirm-your-listing links: to the assets ticked (``asset_id``), or to every stale association and
    organisation of a district with an e-mail (``district`` and ``stale``)."""
    from asset_map import confirmations
    from asset_map.web.community import external_url

    engine, settings = extensions.engine(), current_app.config["ASSET_MAP"]
    district = request.form.get("district") or None
    ids = request.form.getlist("asset_id", type=int)
    if request.form.get("stale") and district:
        ids = confirmations.stale_with_contact(engine, district, months=settings["STALE_MONTHS"])
    if not ids:
        raise InputError("Choose at least one asset to send a confirm link to.")
    results = confirmations.send(engine, ids, secret=current_app.config["SECRET_KEY"], settings=settings,
                                 link_for=lambda token: external_url("community.confirm_listing", token=token),
                                 actor=current_actor(), role=current_role())
    return render_template("moderation/sent.html", results=results, district=district)


@bp.get("/outbox")
@require_role("officer")
def outbox():
    """The e-mails waiting in the outbox (no SMTP server set, or delivery failed), for an officer to send by hand:
    each can be downloaded as an .eml file and opened in a mail program."""
    from asset_map import mail

    return render_template("moderation/outbox.html", items=mail.outbox(current_app.config["ASSET_MAP"]))


@bp.get("/outbox/<name>")
@require_role("officer")
def outbox_file(name):
    from asset_map import mail
    from asset_map.filenames import inside

    path = inside(mail.outbox_dir(current_app.config["ASSET_MAP"]), name)
    if path.suffix != ".eml" or not path.is_file():
        raise NotFound("There is no such message in the outbox (it may have been sent already).")
    return send_file(path, mimetype="message/rfc822", as_attachment=True, download_name=path.name)
