"""Category styles are data: every category the taxonomy and the synthetic county use has its own colour and a
Font Awesome icon that exists in the vendored Font Awesome; bad entries are reported by name."""

import pytest

from asset_map import synth
from asset_map.errors import ConfigError
from asset_map.maps import styles
from asset_map.web.vendored import DEFAULT_DIR

NAMED = ["library", "community_run_library", "school", "gp_practice", "childrens_centre", "community_centre", "park",
         "business", "voluntary_organisation", "faith_group", "sports_club", "youth_club", "self_help_group",
         "tenants_residents_group", "carers_network", "volunteer", "skill_share", "mentor", "carer"]


def test_every_category_has_its_own_colour_and_a_real_icon():
    table = styles.load()
    used = {c for tier in synth.CATEGORIES.values() for c in tier} | set(NAMED)
    assert used <= set(table)
    colours = [table[c]["color"] for c in used]
    assert len(set(colours)) == len(colours)
    css = DEFAULT_DIR / "fontawesome-free" / "css" / "all.min.css"
    if css.exists():
        text = css.read_text()
        missing = [s["icon"] for s in table.values() if f".fa-{s['icon']}:" not in text]
        assert missing == []


def test_unknown_category_falls_back_to_default_with_a_readable_label():
    style = styles.style_for("pop_up_cafe")
    assert style["color"] == styles.load()["default"]["color"]
    assert style["label"] == "Pop up cafe"


def test_bad_style_file_names_category_and_value(tmp_path):
    path = tmp_path / "categories.yaml"
    path.write_text("default: {color: '#505a5f', icon: location-dot}\nlibrary: {color: blue, icon: 'bad icon!'}\n")
    with pytest.raises(ConfigError) as err:
        styles.load(path)
    message = err.value.user_message
    assert "library" in message and "'blue'" in message and "bad icon!" in message
