"""Taxonomy, mapping and validation of register rows (no database)."""

import json

import pandas as pd
import pytest

from asset_map.errors import InputError
from asset_map.registers.mapping import Mapping, load_mapping, shipped_mapping
from asset_map.registers.readers import ROW
from asset_map.registers.schema import FIELDS, taxonomy
from asset_map.registers.validate import validate


def raw(rows):
    frame = pd.DataFrame(rows, dtype=object).fillna("")
    frame[ROW] = range(2, len(frame) + 2)
    return frame


def run(rows, mapping=None):
    mapped = (mapping or Mapping()).apply(raw(rows))
    return validate(mapped)


def test_taxonomy_aliases_and_suggestions():
    tax = taxonomy()
    got = tax.resolve_categories(pd.Series(["Children's Centre", "GP surgery", "CRL", "Community-run library",
                                            "spaceport"]))
    assert got.tolist()[:4] == ["childrens_centre", "gp_practice", "community_run_library", "community_run_library"]
    assert pd.isna(got.iloc[4])
    assert tax.suggest("libary") == "library"
    assert tax.categories["community_run_library"]["tier"] == "association"
    assert tax.categories["volunteer"]["tier"] == "individual"
    assert tax.resolve_tiers(pd.Series(["Organization", "network"])).tolist() == ["organisation", "association"]


def test_columns_named_like_fields_need_no_mapping_and_the_rest_are_kept():
    clean, problems = run([{"Name": "Leek Library", "Category": "library", "Post code": "st13  6dw",
                            "Opening hours": "9-5"}])
    assert problems.empty
    row = clean.iloc[0]
    assert (row["name"], row["tier"], row["category"], row["postcode"]) == ("Leek Library", "organisation",
                                                                             "library", "ST13 6DW")
    assert json.loads(row["properties"]) == {"Opening hours": "9-5"}


def test_mapping_flags_constants_and_derive_rules():
    mapping = Mapping.from_dict({"derive": [{"column": "Kind", "values": {"CRL": {"category": "community_run_library"}}}]})
    mapping = mapping.with_flags(["name=Title", "address=Street+Town"], ["tier=association", "status=open"])
    clean, problems = run([{"Title": "Audley", "Street": "Hall St", "Town": "Audley", "Kind": "CRL"}], mapping)
    row = clean.iloc[0]
    assert (row["name"], row["address"], row["tier"], row["category"]) == ("Audley", "Hall St, Audley",
                                                                            "association", "community_run_library")
    with pytest.raises(InputError, match="'nmae' is not an asset field.*did you mean 'name'"):
        Mapping().with_flags(["nmae=Title"])
    with pytest.raises(InputError, match="no column 'Titel'.*did you mean 'Title'"):
        Mapping.from_dict({"columns": {"name": "Titel"}}).apply(raw([{"Title": "x"}]))


def test_shipped_library_mappings_exist_and_load():
    for name in ("libraries_staffordshire.csv", "libraries_stoke.csv", "libraries_2023.csv"):
        path = shipped_mapping(name)
        assert path is not None, name
        mapping = load_mapping(path)
        assert set(mapping.columns) <= set(FIELDS)


def test_every_validation_problem_is_named():
    clean, problems = run([
        {"name": "", "category": "park", "postcode": "ST16 2DH"},
        {"name": "Typo Club", "category": "sprots club", "postcode": "ST16 2DH"},
        {"name": "Bad Postcode", "category": "park", "postcode": "NOT A PC"},
        {"name": "Swapped", "category": "park", "lon": "52.8", "lat": "-2.1"},
        {"name": "Far Away", "category": "park", "lon": "200", "lat": "95"},
        {"name": "Contact", "category": "park", "postcode": "ST16 2DH", "email": "nobody-at-home", "url": "ftp:x"},
        {"name": "Person", "category": "volunteer", "postcode": "ST16 2DH"},
        {"name": "Contact", "category": "park", "postcode": "st162dh"},
    ])
    by_row = {r: g for r, g in problems.groupby("row")}
    assert by_row[2]["reason"].tolist() == ["name is missing"]
    assert "did you mean 'sports_club'" in by_row[3]["reason"].item()
    assert by_row[4][["field", "severity"]].values.tolist() == [["postcode", "warning"]]
    assert "swapped" in by_row[5]["reason"].item()
    assert clean.loc[3, "lon"] == -2.1 and clean.loc[3, "lat"] == 52.8
    assert "out of range" in by_row[6]["reason"].item()
    assert set(by_row[7]["field"]) == {"email", "url"} and set(by_row[7]["severity"]) == {"warning"}
    assert json.loads(clean.loc[5, "properties"])["invalid_email"] == "nobody-at-home"
    assert "consent" in by_row[8]["reason"].item()
    assert "same name and postcode as row 7" in by_row[9]["reason"].item()
    assert clean["error"].tolist() == [True, True, False, False, False, False, True, True]
