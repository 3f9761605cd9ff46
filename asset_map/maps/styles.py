"""How asset categories are drawn: colour and Font Awesome icon per category, kept as data in
``layers/styles/categories.yaml`` and checked when the app starts."""

import re
from functools import lru_cache
from pathlib import Path

import yaml

from asset_map.errors import ConfigError
from asset_map.maps.spec import LAYERS_DIR

STYLES_FILE = LAYERS_DIR / "styles" / "categories.yaml"
ICON_PREFIX = "fa"
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ICON = re.compile(r"^[a-z0-9-]{1,40}$")


def _problems(data, where):
    if not isinstance(data, dict) or "default" not in data:
        return [f"{where}: must map category names to styles and include 'default'"]
    problems = []
    for name, style in data.items():
        if not isinstance(style, dict):
            problems.append(f"{where}: category {name!r} must map to {{color, icon, label}}")
            continue
        unknown = set(style) - {"color", "icon", "label"}
        if unknown:
            problems.append(f"{where}: category {name!r} has unknown keys {sorted(unknown)}")
        if not _COLOR.match(str(style.get("color", ""))):
            problems.append(f"{where}: category {name!r} colour {style.get('color')!r} is not of the form #rrggbb")
        if not _ICON.match(str(style.get("icon", ""))):
            problems.append(f"{where}: category {name!r} icon {style.get('icon')!r} is not a Font Awesome name "
                            "such as 'book' (without the fa- prefix)")
    return problems


@lru_cache(maxsize=4)
def load(path=STYLES_FILE):
    """{category: {color, icon, label}}; raises ConfigError listing every problem."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        msg = f"Cannot read category styles {path}: {err}"
        raise ConfigError(msg) from err
    problems = _problems(data, path.name)
    if problems:
        raise ConfigError("Category styles are invalid:\n  " + "\n  ".join(problems))
    return {name: {"color": s["color"], "icon": s["icon"], "label": s.get("label") or _label(name)}
            for name, s in data.items()}


def _label(category):
    return str(category).replace("_", " ").capitalize()


def style_for(category, styles=None):
    styles = styles or load()
    found = styles.get(category)
    if found:
        return found
    return {**styles["default"], "label": _label(category)}


def label_for(category, styles=None):
    return style_for(category, styles)["label"]
