"""The layout shows the flow (issue 17): tools apart from the runtime, analysis free of presentation and the store,
no two modules with the same name in different places (but the web blueprints named for their sections), and the
README's Layout section describing every package."""

import ast
import re

from asset_map.config import PROJECT_DIR

PACKAGE = PROJECT_DIR / "asset_map"


def _imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def _modules(exclude=()):
    return [p for p in sorted(PACKAGE.rglob("*.py"))
            if "migrations" not in p.parts and not any(x in p.parts for x in exclude)]


def test_the_running_app_never_imports_the_tools():
    offenders = [str(p.relative_to(PROJECT_DIR)) for p in _modules(exclude=("tools",))
                 if any(m.startswith("asset_map.tools") for m in _imports(p))]
    assert offenders == []


def test_analysis_takes_and_returns_frames_only():
    banned = ("flask", "folium", "jinja2", "asset_map.store", "asset_map.web", "asset_map.reports", "sqlalchemy")
    offenders = {str(p.relative_to(PROJECT_DIR)): sorted(m for m in _imports(p) if m.startswith(banned))
                 for p in (PACKAGE / "analysis").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}
    assert not [p for p in (PACKAGE / "analysis").rglob("*") if p.suffix in (".html", ".css", ".js")]


# One subject at different layers, each named for the same thing (never two things with one name).
SAME_SUBJECT = {"network": "analysis/ measures on the street network, store/ holds it",
                "geographies": "reference/ loads them, store/ queries them",
                "freshness": "the computation (frame in, frame out) and maps/' district page of it",
                "openapi": "the OpenAPI document of each API (api/ for OGC, oruk/ for ORUK)"}


def test_no_two_modules_share_a_name_outside_the_web_blueprints_and_benchmarks():
    """web/ blueprints are named for their URL section (web/gaps.py serves /gaps) and benchmark modules for the
    area they measure; every other module name is used once, or for one subject at two layers (SAME_SUBJECT)."""
    seen = {}
    for path in _modules(exclude=("web", "tools")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        seen.setdefault(path.stem, []).append(str(path.relative_to(PROJECT_DIR)))
    assert {k: v for k, v in seen.items() if len(v) > 1 and k not in SAME_SUBJECT} == {}


def test_the_readme_layout_section_describes_every_package():
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Layout"):]
    packages = sorted(str(p.parent.relative_to(PROJECT_DIR)) for p in PACKAGE.rglob("__init__.py")
                      if "migrations" not in p.parts)
    missing = [p for p in packages if not re.search(rf"\b{re.escape(p.split('/')[-1])}/", section)]
    assert missing == []
    for folder in ("layers/", "templates/", "tests/"):
        assert folder in section
