"""Individuals' privacy rules that more than one part of the app applies: the importer (rows without consent are
quarantined, never stored) and the store (what each role may see). Nothing here imports Flask or the database.

Below officer, individuals are never shown as points or records: only as counts per area with small numbers
suppressed (``asset_map.store.assets.individual_counts`` and ``visibility_condition``).
"""

_YES = {"yes", "y", "true", "t", "1", "consented", "consent given", "given", "agreed", "x", "✓"}
_NO = {"no", "n", "false", "f", "0", "withdrawn", "refused", "not given", "declined", ""}


def parse_consent(value):
    """True, False, or None when the value says neither (a register's own wording is read leniently)."""
    if value is None or value != value:  # None or NaN
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    return None


def consent_problem(row):
    """Why this register row may not be stored, or None. ``row`` is a mapping with at least ``tier`` and
    ``consent``. Only individuals need consent; associations and organisations are public bodies."""
    tier = str(row.get("tier") or "").strip().lower()
    if tier != "individual":
        return None
    raw = row.get("consent")
    consent = parse_consent(raw)
    if consent is True:
        return None
    shown = "" if raw is None or raw != raw else str(raw)
    if consent is None:
        return (f"consent: {shown!r} is not a recognised answer; individuals are stored only with consent "
                "recorded as yes or no")
    if shown.strip() == "":
        return "consent: missing; individuals are stored only with their recorded consent"
    return f"consent: {shown!r}; individuals are stored only with their consent"


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
    from asset_map.store.assets import role_rank

    if role_rank(role) >= role_rank("officer"):
        return versions
    shown = PUBLIC_HISTORY_FIELDS + (CONTACT_HISTORY_FIELDS if role_rank(role) >= role_rank("organiser") else ())
    out = []
    for v in versions:
        changes = {f: (pair if f in shown else None) for f, pair in (v.get("changes") or {}).items()}
        out.append({**v, "changes": changes, "actor": None, "reason": None})
    return out
