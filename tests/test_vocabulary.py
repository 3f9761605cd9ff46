"""The domain's words are written once: every module that used its own copy now reads asset_map.vocabulary."""

import re

import pytest
import yaml

from asset_map import vocabulary
from asset_map.config import PROJECT_DIR
from asset_map.registers.schema import taxonomy


def test_roles_are_ordered_and_accounts_exclude_the_public():
    roles = vocabulary.ROLES
    assert roles[0] == "public" and roles[-1] == "admin"
    assert [vocabulary.role_rank(r) for r in roles] == list(range(len(roles)))
    assert vocabulary.role_rank("organiser") < vocabulary.role_rank("officer") < vocabulary.role_rank("admin")
    assert vocabulary.ACCOUNT_ROLES == roles[1:]
    with pytest.raises(ValueError):
        vocabulary.role_rank("superuser")


def test_every_word_has_a_label():
    assert set(vocabulary.TIER_LABELS) == set(vocabulary.TIERS)
    assert set(vocabulary.STATUS_LABELS) == set(vocabulary.STORED_STATUSES)
    assert set(vocabulary.VISIBILITY_LABELS) == set(vocabulary.VISIBILITIES)
    assert set(vocabulary.ROLE_LABELS) == set(vocabulary.ROLES)
    assert set(vocabulary.DEFAULT_STATUSES) <= set(vocabulary.STATUSES)


def test_the_taxonomy_file_uses_the_same_tiers_and_labels():
    tax = taxonomy()
    assert {spec["tier"] for spec in tax.categories.values()} <= set(vocabulary.TIERS)
    data = yaml.safe_load((PROJECT_DIR / "layers" / "taxonomy" / "categories.yaml").read_text(encoding="utf-8"))
    assert {t: v["label"] for t, v in data["tiers"].items()} == vocabulary.TIER_LABELS


# Tuples of these words written out in code are a second copy of the vocabulary (as roles were in users.py,
# store/assets.py, layers/spec.py and the CLI).
_COPIES = [re.compile(r"""\(\s*["']public["'],\s*["']organiser["']"""),
           re.compile(r"""["']organiser["'],\s*["']officer["'],\s*["']admin["']"""),
           re.compile(r"""\(\s*["']individual["'],\s*["']association["'],\s*["']organisation["']"""),
           re.compile(r"""["']open["'],\s*["']temporarily closed["'],\s*["']closed["']""")]


def test_no_module_writes_its_own_copy_of_the_vocabulary():
    offenders = []
    for path in sorted((PROJECT_DIR / "asset_map").rglob("*.py")):
        if path.name == "vocabulary.py" or "migrations" in path.parts or "tools" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(PROJECT_DIR)}: {p.pattern}" for p in _COPIES if p.search(text)]
    assert offenders == []


def test_the_check_finds_a_copy():
    """The scan above can fail: the copies this issue removed are each found."""
    for copy in ('ROLES = ("public", "organiser", "officer", "admin")', 'click.Choice(["organiser", "officer", "admin"])',
                 'TIERS = ("individual", "association", "organisation")',
                 'STATUSES = ("open", "temporarily closed", "closed", "withdrawn")'):
        assert any(p.search(copy) for p in _COPIES), copy
