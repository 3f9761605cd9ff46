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
