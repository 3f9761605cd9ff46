"""Map layers are data: one YAML file per layer in the top-level ``layers/`` folder.

The schema below is the single description of a layer file; ``load_layers`` checks every file against it at start-up
and ``asset-map layers check`` reports every problem with the file and key.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from asset_map.config import PROJECT_DIR
from asset_map.errors import ConfigError
from asset_map.vocabulary import ROLES, TIERS, role_rank

LAYERS_DIR = PROJECT_DIR / "layers"
SOURCES = ("districts", "areas", "assets")
KINDS = {"outline": "districts", "choropleth": "areas", "points": "assets", "counts": "assets"}
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")

# key: (type, required, help)
SCHEMA = {
    "id": (str, True, "Short name used in URLs and the API; lower case, digits, '-' or '_'."),
    "title": (str, True, "Name shown in the layer control."),
    "source": (str, True, f"Where features come from: one of {', '.join(SOURCES)}."),
    "kind": (str, True, f"How it is drawn: one of {', '.join(KINDS)}."),
    "filter": (dict, False, "Asset filters (tier, category, status, ...) for asset layers."),
    "indicator": (str, False, "Need indicator for a choropleth (e.g. imd, imd_income)."),
    "vintage": (int, False, "Indicator vintage for a choropleth (2019 with LSOA 2011, 2025 with LSOA 2021)."),
    "value": (str, False, "Which figure colours a choropleth: decile, rank or score."),
    "colors": (list, False, "Colours of a choropleth's classes, most in need first."),
    "count_by": (str, False, "Area code field individuals are counted by."),
    "style": (dict, False, "Leaflet path style: color, weight, fill_opacity."),
    "popup": (list, False, "Fields shown in a popup, in order."),
    "visible_to": (str, True, f"Lowest role that sees the layer: one of {', '.join(ROLES)}."),
    "points_visible_to": (str, False, "Lowest role that sees exact points of a counts layer."),
    "shown": (bool, False, "Whether the layer is switched on when the map opens."),
}


@dataclass(frozen=True)
class Layer:
    id: str
    title: str
    source: str
    kind: str
    visible_to: str
    filter: dict = field(default_factory=dict)
    indicator: str | None = None
    vintage: int | None = None
    value: str = "decile"
    colors: list = field(default_factory=list)
    count_by: str | None = None
    style: dict = field(default_factory=dict)
    popup: list = field(default_factory=list)
    points_visible_to: str | None = None
    shown: bool = True
    path: str = ""


def _problems(path, data):
    where = Path(path).name
    if not isinstance(data, dict):
        return [f"{where}: the file must hold a mapping of keys to values"]
    problems = []
    for key in data:
        if key not in SCHEMA:
            problems.append(f"{where}: unknown key '{key}' (known: {', '.join(SCHEMA)})")
    for key, (kind, required, _) in SCHEMA.items():
        if key not in data:
            if required:
                problems.append(f"{where}: missing required key '{key}'")
            continue
        if not isinstance(data[key], kind) or (kind is int and isinstance(data[key], bool)):
            problems.append(f"{where}: '{key}' must be a {kind.__name__}, got {data[key]!r}")
    if problems:
        return problems
    if not re.fullmatch(r"[a-z0-9_-]+", data["id"]):
        problems.append(f"{where}: 'id' {data['id']!r} may hold only lower-case letters, digits, '-' and '_'")
    if data["kind"] not in KINDS:
        problems.append(f"{where}: 'kind' {data['kind']!r} is not one of {', '.join(KINDS)}")
    elif KINDS[data["kind"]] != data["source"]:
        problems.append(f"{where}: a {data['kind']} layer needs source '{KINDS[data['kind']]}', "
                        f"not {data['source']!r}")
    for key in ("visible_to", "points_visible_to"):
        if key in data and data[key] not in ROLES:
            problems.append(f"{where}: '{key}' {data[key]!r} is not one of {', '.join(ROLES)}")
    tier = data.get("filter", {}).get("tier")
    if tier is not None and tier not in TIERS:
        problems.append(f"{where}: filter tier {tier!r} is not one of {', '.join(TIERS)}")
    for color in data.get("colors", []):
        if not isinstance(color, str) or not _COLOR.match(color):
            problems.append(f"{where}: colour {color!r} is not of the form #rrggbb")
    if data["kind"] == "choropleth" and not data.get("indicator"):
        problems.append(f"{where}: a choropleth needs an 'indicator'")
    if (tier == "individual" and data["kind"] == "points" and data["visible_to"] in ROLES
            and role_rank(data["visible_to"]) < role_rank("officer")):
        problems.append(f"{where}: individuals' points are personal data; 'visible_to' must be officer or admin")
    return problems


def check_layers(directory=LAYERS_DIR):
    """Every problem in every layer file, as readable lines (empty when all is well)."""
    problems, seen = [], {}
    files = sorted(Path(directory).glob("*.yaml"))
    if not files:
        return [f"no layer files (*.yaml) in {directory}"]
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            problems.append(f"{path.name}: not valid YAML: {err}")
            continue
        found = _problems(path, data)
        problems.extend(found)
        if not found:
            if data["id"] in seen:
                problems.append(f"{path.name}: id {data['id']!r} is already used by {seen[data['id']]}")
            seen[data["id"]] = path.name
    return problems


def load_layers(directory=LAYERS_DIR):
    """The layers in file-name order; raises ConfigError listing every problem."""
    problems = check_layers(directory)
    if problems:
        msg = "Layer definitions are invalid:\n  " + "\n  ".join(problems)
        raise ConfigError(msg)
    layers = []
    for path in sorted(Path(directory).glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        layers.append(Layer(path=str(path), **data))
    return layers
