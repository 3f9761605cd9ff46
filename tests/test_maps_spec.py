import pytest

from asset_map.errors import ConfigError
from asset_map.maps.spec import LAYERS_DIR, check_layers, load_layers


def test_shipped_layers_are_valid():
    layers = load_layers(LAYERS_DIR)
    ids = {layer.id for layer in layers}
    assert {"districts", "need", "organisations", "associations", "individuals"} <= ids
    individuals = next(layer for layer in layers if layer.id == "individuals")
    assert individuals.kind == "counts" and individuals.points_visible_to == "officer"


def test_every_problem_is_reported_with_file_and_key(tmp_path):
    (tmp_path / "bad.yaml").write_text("id: Bad Id\ntitle: x\nsource: areas\nkind: points\nvisible_to: nobody\n"
                                       "colour: red\n")
    (tmp_path / "broken.yaml").write_text("id: [unclosed\n")
    (tmp_path / "people.yaml").write_text("id: people\ntitle: People\nsource: assets\nkind: points\n"
                                          "visible_to: public\nfilter: {tier: individual}\n")
    problems = check_layers(tmp_path)
    text = "\n".join(problems)
    assert "bad.yaml: unknown key 'colour'" in text
    assert "broken.yaml: not valid YAML" in text
    assert "people.yaml: individuals' points are personal data" in text
    with pytest.raises(ConfigError) as err:
        load_layers(tmp_path)
    assert "bad.yaml" in err.value.user_message


def test_kind_must_match_source_and_ids_are_unique(tmp_path):
    base = "title: T\nvisible_to: public\n"
    (tmp_path / "a.yaml").write_text("id: same\nsource: areas\nkind: points\n" + base)
    (tmp_path / "b.yaml").write_text("id: same\nsource: districts\nkind: outline\n" + base)
    (tmp_path / "c.yaml").write_text("id: same\nsource: districts\nkind: outline\n" + base)
    text = "\n".join(check_layers(tmp_path))
    assert "a.yaml: a points layer needs source 'assets'" in text
    assert "c.yaml: id 'same' is already used by b.yaml" in text
