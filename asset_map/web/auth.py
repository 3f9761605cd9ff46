"""Who is asking: the role of the current request. Until sign-in exists everybody is the anonymous public, which is
the safe default every surface is written against."""

from flask import g

ROLES = ("public", "organiser", "officer", "admin")


def current_role():
    return getattr(g, "asset_map_role", "public")


def current_actor():
    """A name for the audit log."""
    return getattr(g, "asset_map_actor", "anonymous")
