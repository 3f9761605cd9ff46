"""Individuals' privacy: the ONE place that says who sees what and what consent means. Nothing here imports Flask
or the database; the importer, the store, the web and the CLI call these rules rather than keeping their own.

- **Consent**: ``parse_consent`` reads every spelling councils use (``Y``, ``yes``, ``agreed``, a tick, ``withdrawn``,
  ``no``, blank ...). Only a clear yes lets an individual be stored; a no, a withdrawal or a blank means the person
  is not stored (and a stored one is erased); anything else is *unknown*, and the row is quarantined without its
  personal fields rather than guessed.
- **Who sees what**: below officer, individuals are never shown as points, names or contacts, only as counts from
  the fixed tables of ``asset_map.disclosure``. Officers and admins see individuals' points in the signed-in map and
  in audited exports; organisers and above see contacts of associations and organisations.
- **Personal fields** of an individual are ``PERSONAL_FIELDS``: what erasure removes and what quarantine, saved
  reports and logs never keep.
"""

from asset_map.vocabulary import ROLES  # noqa: E402 - the roles and their order are the vocabulary's

# Consent wording, case, spacing and punctuation aside. A tick is what a spreadsheet's check box exports.
CONSENT_YES = ("yes", "y", "true", "t", "1", "consented", "consent given", "given", "agreed", "agree", "opted in",
               "opt in", "x", "✓", "✔", "☑", "tick", "ticked")
CONSENT_REFUSED = ("no", "n", "false", "f", "0", "refused", "not given", "declined", "opted out", "opt out", "✗",
                   "✘", "☐")
CONSENT_WITHDRAWN = ("withdrawn", "consent withdrawn", "withdrew", "revoked")
CONSENT_MISSING = ("", "-", "n/a", "na", "none", "null", "nan")
_STATES = {**{w: "given" for w in CONSENT_YES}, **{w: "refused" for w in CONSENT_REFUSED},
           **{w: "withdrawn" for w in CONSENT_WITHDRAWN}, **{w: "missing" for w in CONSENT_MISSING}}

# An individual's fields that identify or describe the person; everything else of the row (tier, category,
# district, status, dates, the row number) is not personal on its own.
PERSONAL_FIELDS = ("name", "description", "offers", "address", "postcode", "uprn", "email", "phone", "url",
                   "source_key", "lon", "lat", "easting", "northing", "properties")
CONTACT_FIELDS = ("email", "phone")
INDIVIDUAL = "individual"


def _word(value):
    return " ".join(str(value).strip().lower().replace("_", " ").replace(".", "").split())


def consent_state(value):
    """"given", "refused", "withdrawn", "missing" (blank) or "unknown" for a register's consent cell."""
    if value is None or value != value:  # None or NaN
        return "missing"
    if isinstance(value, bool):
        return "given" if value else "refused"
    return _STATES.get(_word(value), "unknown")


def parse_consent(value):
    """True (given), False (refused, withdrawn or blank) or None (unknown: quarantine, never guess)."""
    state = consent_state(value)
    if state == "given":
        return True
    if state == "unknown":
        return None
    return False


def is_individual(tier):
    return str(tier or "").strip().lower() == INDIVIDUAL


def consent_problem(row):
    """Why this register row may not be stored, or None. ``row`` is a mapping with at least ``tier`` and
    ``consent``. Only individuals need consent; associations and organisations are public bodies."""
    if not is_individual(row.get("tier")):
        return None
    raw = row.get("consent")
    state = consent_state(raw)
    if state == "given":
        return None
    shown = "" if raw is None or raw != raw else str(raw)[:40]
    if state == "unknown":
        return (f"consent: {shown!r} is not a recognised answer (yes, no or withdrawn); the row is kept without "
                "its personal fields until the register says")
    if state == "missing":
        return "consent: missing; individuals are stored only with their recorded consent"
    return (f"consent: {shown!r}; individuals are stored only with their consent (the person is not stored and "
            "any earlier entry is erased)")


def scrub_fields(fields, tier=None):
    """The row's non-personal cells: what quarantine, saved reports and logs may keep of an individual's row.
    Other tiers' rows are returned as they are."""
    if tier is None:
        tier = fields.get("tier")
    if not is_individual(tier):
        return dict(fields)
    return {k: v for k, v in fields.items() if k not in PERSONAL_FIELDS}


# -- who sees what -----------------------------------------------------------------------------------------------
def role_rank(role):
    return ROLES.index(role)


def sees_individual_points(role):
    """Individuals as points and records (name, contact): officers and admins, in the signed-in map and audited
    exports. Everybody else sees them only as protected counts (asset_map.disclosure)."""
    return role_rank(role) >= role_rank("officer")


def sees_restricted(role):
    return role_rank(role) >= role_rank("officer")


def sees_contacts(role):
    """E-mail and phone of associations and organisations (and, for those who see them, individuals)."""
    return role_rank(role) >= role_rank("organiser")


def may_manage_people(role):
    """Find, export (subject access) and erase a person: admins."""
    return role_rank(role) >= role_rank("admin")


# People's offers ("I can help with ...") wait for moderation. Deciding on one means reading the person's name and
# contact, so it is for those who see individuals as records; organisers learn only how many wait.
OFFER_FIELDS_SEEN = ("id", "district_code", "category", "created_at", "name", "description", "offers", "postcode",
                     "email", "phone", "contact_by", "consent_at", "consent_wording")


def may_moderate_offers(role):
    return sees_individual_points(role)


def check_may_moderate_offers(role):
    if not may_moderate_offers(role):
        from asset_map.errors import Forbidden

        raise Forbidden(f"Signed in as {role}, you see people's offers only as a count: officers decide on them.")


def offer_fields_for(role):
    """The fields of a waiting offer ``role`` may read (none below officer: a count only)."""
    return OFFER_FIELDS_SEEN if may_moderate_offers(role) else ()


# Who may change assets (issue 13): officers and admins any asset; organisers associations and organisations that
# the public may see (never individuals, never restricted records); nobody else.
EDIT_ROLES = {"officer": None, "admin": None, "organiser": ("association", "organisation")}


def may_edit(role, tier=None, visibility=None):
    """Whether ``role`` may add or change an asset of ``tier`` (None: some tier) and ``visibility``."""
    if role not in EDIT_ROLES:
        return False
    tiers = EDIT_ROLES[role]
    if tiers is None:
        return True
    return (tier is None or tier in tiers) and visibility in (None, "public")


def check_may_edit(role, tier=None, visibility=None):
    if not may_edit(role, tier, visibility):
        from asset_map.errors import Forbidden

        what = f"{tier} assets" if tier else "assets"
        msg = f"Signed in as {role}, you cannot change {what}: organisers change associations and organisations, " \
               "officers change every asset."
        raise Forbidden(msg)


# What the history of an asset shows below officer: values of these fields (public anyway on the asset's page);
# other fields are listed as changed, without values; who made a change and why is shown to officers only (actors
# are staff e-mails, reasons free text).
PUBLIC_HISTORY_FIELDS = ("name", "category", "tier", "status", "address", "postcode", "url", "description",
                         "offers", "last_verified", "withdrawn_at", "geom")
CONTACT_HISTORY_FIELDS = ("email", "phone")


def history_for(role, versions):
    """An asset's versions as ``role`` may read them (a new list; the input is not changed)."""
    from asset_map.vocabulary import role_rank

    if role_rank(role) >= role_rank("officer"):
        return versions
    shown = PUBLIC_HISTORY_FIELDS + (CONTACT_HISTORY_FIELDS if role_rank(role) >= role_rank("organiser") else ())
    out = []
    for v in versions:
        changes = {f: (pair if f in shown else None) for f, pair in (v.get("changes") or {}).items()}
        out.append({**v, "changes": changes, "actor": None, "reason": None})
    return out
