"""The layout's navigation as data (asset_map.web.layout): sections by role, the current one, a section that
appears once its part exists, and no database read (so error pages keep the header)."""

from flask import Blueprint

from asset_map.web import layout
from tests.conftest import make_app


def _sections(app, path="/", role="public"):
    with app.test_request_context(path):
        return layout.sections(path, role)


def test_public_sections_in_order_and_the_current_one_marked(tmp_path):
    app = make_app("postgresql://nobody@127.0.0.1:1/none", tmp_path)
    found = _sections(app, "/districts/E07000199")
    assert [label for label, _, _ in found] == ["Map", "Assets", "Districts", "Gap reports", "Briefings",
                                                "Downloads and API"]
    assert [label for label, _, current in found if current] == ["Districts"]
    assert [label for label, _, current in _sections(app, "/ogc/collections") if current] == ["Downloads and API"]
    assert [label for label, _, current in _sections(app, "/near") if current] == ["Map"]


def test_signed_in_roles_see_their_sections_only(tmp_path):
    app = make_app("postgresql://nobody@127.0.0.1:1/none", tmp_path)
    labels = {role: [label for label, _, _ in _sections(app, role=role)] for role in ("organiser", "officer", "admin")}
    assert "Registers" not in labels["organiser"] and "Admin" not in labels["organiser"]
    assert "Registers" in labels["officer"] and "Admin" not in labels["officer"]
    assert labels["admin"][-3:] == ["Registers", "Moderation", "Admin"]


def test_a_section_appears_once_its_page_exists(tmp_path, monkeypatch):
    """As Moderation did: a section whose part is built later shows once a view answers its path."""
    monkeypatch.setattr(layout, "SECTIONS", (*layout.SECTIONS, layout.Section("Later", "later.index", ("/later",),
                                                                              "organiser")))
    app = make_app("postgresql://nobody@127.0.0.1:1/none", tmp_path)
    assert "Later" not in [label for label, _, _ in _sections(app, role="officer")]
    bp = Blueprint("review", __name__)
    bp.add_url_rule("/later", "queue", lambda: "queue")
    app.register_blueprint(bp)
    assert ("Later", "/later", True) in _sections(app, "/later", role="officer")
    assert "Later" not in [label for label, _, _ in _sections(app, role="public")]
    assert "Moderation" not in [label for label, _, _ in _sections(app, role="public")]


def test_error_pages_have_the_header_and_footer_while_the_database_is_away(tmp_path):
    app = make_app("postgresql://nobody@127.0.0.1:1/none", tmp_path, CONNECT_TIMEOUT_S=2)
    res = app.test_client().get("/no-such-page")
    html = res.get_data(as_text=True)
    assert res.status_code == 404
    assert "govuk-service-navigation" in html and "govuk-footer" in html and "Privacy notice" in html
