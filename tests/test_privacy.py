"""The consent rule the importer and the store share."""

import pytest
from sqlalchemy import text

from asset_map.privacy import consent_problem, parse_consent
from asset_map.store import assets
from asset_map.store.assets import STATUSES, AssetFilter
from tests import factories


@pytest.mark.parametrize("value,expected", [
    ("yes", True), ("Y", True), (" TRUE ", True), ("1", True), (True, True), ("consented", True),
    ("no", False), ("", False), (None, False), (float("nan"), False), ("withdrawn", False), (False, False),
    ("maybe", None), ("ask later", None),
])
def test_consent_values_are_read_leniently(value, expected):
    assert parse_consent(value) is expected


@pytest.mark.parametrize("row,problem", [
    ({"tier": "individual", "consent": "yes"}, None),
    ({"tier": "organisation", "consent": ""}, None),
    ({"tier": "association"}, None),
    ({"tier": "individual", "consent": "no"}, "consent: 'no'; individuals are stored only with their consent"),
    ({"tier": "Individual", "consent": ""}, "consent: missing"),
    ({"tier": "individual"}, "consent: missing"),
    ({"tier": "individual", "consent": "perhaps"}, "consent: 'perhaps' is not a recognised answer"),
])
def test_consent_problem_names_the_field_and_value(row, problem):
    found = consent_problem(row)
    if problem is None:
        assert found is None
    else:
        assert found.startswith(problem)


def test_individuals_without_consent_are_seen_by_nobody(engine, tmp_path):
    county = factories.load_synthetic(engine, tmp_path, areas=40, assets_n=240, seed=2)
    rows = county.registers["synth-individuals"]
    refused = rows[rows["consent"] == "no"]
    assert len(refused) > 0
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT consent, count(*) FROM assets WHERE tier = 'individual' "
                                   "GROUP BY consent")).all()
    stored = dict(stored)
    assert stored[False] > 0, "the factory stores refusals, so this checks the store's own rule"
    everything = AssetFilter(tier=("individual",), status=STATUSES)
    for role in ("officer", "admin"):
        seen = assets.select(engine, everything, role=role, columns=["source_key"])
        assert set(seen["source_key"]).isdisjoint(refused["source_key"])
        assert len(seen) == stored[True]


@pytest.mark.parametrize("value,state", [
    ("Y", "given"), ("agreed", "given"), ("✓", "given"), ("x", "given"), ("Tick", "given"), ("Opted in", "given"),
    ("no", "refused"), ("Declined", "refused"), ("✗", "refused"), ("withdrawn", "withdrawn"),
    ("Consent withdrawn", "withdrawn"), ("", "missing"), ("  ", "missing"), (None, "missing"), ("n/a", "missing"),
    ("ask my daughter", "unknown"), ("yes please", "unknown"),
])
def test_every_spelling_councils_use_is_read_by_one_rule(value, state):
    from asset_map.privacy import consent_state

    assert consent_state(value) == state


def test_quarantine_and_reports_keep_only_non_personal_cells():
    from asset_map.privacy import PERSONAL_FIELDS, scrub_fields

    row = {"tier": "individual", "category": "mentor", "name": "A", "email": "a@x.org", "postcode": "ST16 2JU",
           "consent": "maybe", "status": "open"}
    kept = scrub_fields(row)
    assert kept == {"tier": "individual", "category": "mentor", "consent": "maybe", "status": "open"}
    assert not set(kept) & set(PERSONAL_FIELDS)
    assert scrub_fields({**row, "tier": "association"})["name"] == "A"
