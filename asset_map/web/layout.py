"""What the one page layout (templates/layouts/govuk.html) shows on every page: the service's sections in its
header, with the current one marked and those a role may not open left out, the account, and the footer's
attribution, licence and links. Navigation is data: a new section is one line of SECTIONS.

Nothing here reads the database, so error pages (a database that is away) render with the same header and footer.
"""

from dataclasses import dataclass

from flask import current_app, g, request, url_for

from asset_map.config import attribution_lines
from asset_map.maps import styles
from asset_map.vocabulary import ROLE_LABELS, STATUS_LABELS, TIER_LABELS, role_rank
from asset_map.web.auth import current_actor, current_role, required_role

SERVICE_NAME = "asset-map"


@dataclass(frozen=True)
class Section:
    label: str
    endpoint: str
    # Paths that belong to the section (the section is "current" on them and below them).
    paths: tuple
    # Shown only to signed-in roles (at least this one); the section's own path rule or view may ask for more.
    least_role: str = "public"


SECTIONS = (
    Section("Map", "maps.index", ("/", "/near")),
    Section("Assets", "tables.assets", ("/assets",)),
    Section("Districts", "explorer.districts", ("/districts",)),
    Section("Gap reports", "gaps.index", ("/gaps",)),
    Section("Briefings", "briefings.index", ("/briefings", "/geographies")),
    Section("Downloads and API", "pages.downloads", ("/downloads", "/ogc", "/export")),
    Section("Registers", "registers.index", ("/registers",), "officer"),
    Section("Moderation", "moderation.index", ("/moderation",), "organiser"),
    Section("Admin", "admin.audit_log", ("/admin",), "admin"),
)

FOOTER_LINKS = (("Suggest an asset", "community.suggest"), ("What changed", "changes.page"),
                ("Data sources and licence", "pages.licence"), ("Privacy notice", "pages.privacy"),
                ("Accessibility statement", "pages.accessibility"))


def _on(path, prefix):
    if prefix == "/":
        return path == "/"
    return path == prefix or path.startswith(prefix + "/") or path.startswith(prefix + ".")


def _endpoint(section):
    """The section's endpoint, or whichever view answers GET on its first path (a part another change builds may
    name its view differently); None while the part does not exist."""
    if section.endpoint in current_app.view_functions:
        return section.endpoint
    for rule in current_app.url_map.iter_rules():
        if rule.rule == section.paths[0] and "GET" in rule.methods and not rule.arguments:
            return rule.endpoint
    return None


def _least_role(section, endpoint):
    """The least role that may open the section: the most any rule asks (the section, the path rules, the view)."""
    roles = [section.least_role, required_role(section.paths[0]) or "public",
             getattr(current_app.view_functions.get(endpoint), "asset_map_min_role", None) or "public"]
    return max(roles, key=role_rank)


def sections(path, role):
    """[(label, url, current)] of the sections ``role`` may open, in order."""
    return [(label, url, any(_on(path, p) for p in paths)) for label, url, paths in _open_to(role)]


def _open_to(role):
    """[(label, url, paths)] of the sections ``role`` may open: kept per role, script root and set of views, as
    neither the rules nor the addresses change while the app serves (every page asked for them)."""
    kept = current_app.extensions.setdefault("asset_map.sections", {})
    key = (role, request.script_root, len(current_app.view_functions))
    if key not in kept:
        out = []
        for section in SECTIONS:
            endpoint = _endpoint(section)
            if endpoint is None or role_rank(role) < role_rank(_least_role(section, endpoint)):
                continue
            out.append((section.label, url_for(endpoint), section.paths))
        kept[key] = out
    return kept[key]


def current_section(path):
    for section in SECTIONS:
        if any(_on(path, p) for p in section.paths):
            return section.label
    return None


def _footer_links():
    kept = current_app.extensions.setdefault("asset_map.footer_links", {})
    if request.script_root not in kept:
        kept[request.script_root] = [(label, url_for(endpoint)) for label, endpoint in FOOTER_LINKS
                                     if endpoint in current_app.view_functions]
    return kept[request.script_root]


def context():
    """Template context of every page."""
    settings = current_app.config["ASSET_MAP"]
    role = current_role()
    # Signed in with a session (a bearer token has nothing to sign out of).
    signed_in = role != "public" and getattr(g, "asset_map_token", None) is None
    return {"service_name": SERVICE_NAME, "nav_sections": sections(request.path, role), "current_role": current_role,
            "account_name": current_actor() if signed_in else None, "role_label": ROLE_LABELS.get(role, role),
            "footer_links": _footer_links(),
            "attribution": attribution_lines(settings), "licence": settings["LICENCE"],
            "tiles_attribution": settings["TILES_ATTRIBUTION"], "labels": styles.label_for, "tiers": TIER_LABELS,
            "status_labels": STATUS_LABELS}


def init_app(app):
    app.context_processor(context)
