"""The gap report: its data (summaries, charts, the priority table, the method, the inputs) and its HTML.

Pure: takes the analysis frame and the recorded inputs, returns a dict and HTML text. The web page renders the
same partial (templates/gaps/_report.html) inside the site's layout; :func:`render_standalone` makes one
self-contained file with Leaflet inlined and the areas and assets embedded, that opens offline from an email.
"""

import re
from pathlib import Path

import folium
import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from asset_map.reports import charts
from asset_map.analysis.gap import NEED_CLASSES, NO_DATA, SUPPLY_CLASSES, SUPPLY_LABELS, slug
from asset_map.config import PROJECT_DIR
from asset_map.maps import folium_, styles

# Bivariate palette after Joshua Stevens: need grows to the red, supply to the blue; high need and low supply
# (the gaps) is the strongest red.
PALETTE = {
    ("low", "low"): "#e8e8e8", ("medium", "low"): "#e4acac", ("high", "low"): "#c85a5a",
    ("low", "medium"): "#b0d5df", ("medium", "medium"): "#ad9ea5", ("high", "medium"): "#985356",
    ("low", "high"): "#64acbe", ("medium", "high"): "#627f8c", ("high", "high"): "#574249",
}
PRIORITY_ROWS = 50
SIMPLIFY_M = 10
VENDOR_DIR = PROJECT_DIR / "asset_map" / "web" / "static" / "vendor"
LEAFLET_JS = "vendor/leaflet/dist/leaflet.js"
LEAFLET_CSS = "vendor/leaflet/dist/leaflet.css"


def color(need_class, supply_class):
    return PALETTE.get((need_class, supply_class), folium_.NO_DATA_COLOR)


def _luminance(hex_color):
    """WCAG relative luminance of #rrggbb."""
    def channel(c):
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a, b):
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def text_color(background):
    """Near-black or white, whichever reads better on ``background`` (the legend's counts must be readable)."""
    return max(("#0b0c0c", "#ffffff"), key=lambda fg: contrast(fg, background))


def _f(v, decimals=0):
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return "–"
    return f"{v:,.{decimals}f}"


def _need_label(inputs):
    need = inputs["need"]
    from asset_map.reference.need import INDICATOR_LABELS

    return f"{INDICATOR_LABELS.get(need['indicator'], need['indicator'])} {need['vintage']}"


def build(frame, inputs, *, districts, group_counts, attribution, tiles=None, tiles_attribution=None,
          map_assets=None, static_url=None):
    """Everything the report template shows. ``static_url`` (web) makes the map load Leaflet from the site;
    without it the map expects Leaflet inlined (standalone file)."""
    params = inputs["parameters"]
    groups = params["groups"]
    deciles = params["need_method"] == "deciles"
    band_label = "IMD decile (1 = most deprived)" if deciles else "need tenth (1 = most need)"
    frame = frame.sort_values("code", kind="mergesort")
    names = [districts.get(d, d) for d in inputs["districts"]]
    if inputs.get("area"):
        names = [a["label"] for a in inputs["area"]["areas"]]
    # Categories by their label ("Community-run library"); offers are words already ("buildings/space").
    group_labels = [styles.label_for(g) if g in styles.load() else g.replace("_", " ") for g in groups]
    group_text = ", ".join(group_labels) if groups != ["any"] else "all selected assets"
    pop = pd.to_numeric(frame["population"], errors="coerce")

    grid = []
    for n in NEED_CLASSES:
        row = []
        for s in SUPPLY_CLASSES:
            count = int(((frame["need_class"] == n) & (frame["supply_class"] == s)).sum())
            row.append({"color": color(n, s), "text": text_color(color(n, s)), "count": count,
                        "label": f"{n} need / {s} supply"})
        grid.append({"need": n, "cells": row})

    by_band = []
    for b in range(1, 11):
        rows = frame[frame["need_band"] == b]
        p = pd.to_numeric(rows["population"], errors="coerce").sum()
        by_band.append({
            "band": b, "areas": len(rows), "population": int(p), "inside": int(rows["assets_inside"].sum()),
            "per_1000": (rows["assets_inside"].sum() / p * 1000) if p > 0 else None,
            "nearest": rows["nearest_mean_m"].mean() if len(rows) else None,
            "access": rows["access_per_1000"].mean() if len(rows) else None,
            "priority": int(rows["priority"].sum()),
        })
    chart_per_1000 = charts.bars("Assets per 1,000 residents by " + ("IMD decile" if deciles else "need tenth"),
                                 [r["band"] for r in by_band], [r["per_1000"] for r in by_band],
                                 x_label=band_label, y_label="assets per 1,000", highlight=(1, 2))
    chart_nearest = charts.bars("Mean distance to the nearest " + group_text, [r["band"] for r in by_band],
                                [r["nearest"] for r in by_band], x_label=band_label, y_label="metres",
                                color="#7a7a52", highlight=(1, 2))
    score = pd.to_numeric(frame["need_score"], errors="coerce")
    x_label = f"{_need_label(inputs)} score (higher = more deprived)"
    if score.isna().all():
        # Ranks only: plot the share of England's areas that are less deprived, so right is still more need.
        rank = pd.to_numeric(frame["need_rank"], errors="coerce")
        score = 100 * (1 - rank / max(float(rank.max() or 1), 32_844))
        x_label = f"{_need_label(inputs)}: % of areas in England less deprived"
    scatter = charts.scatter(
        "Provision against deprivation",
        [(float(s), float(a), color(n, c), f"{nm} ({cd}): need {s:.1f}, supply {a:.3f}")
         for s, a, n, c, nm, cd in zip(score, frame["access_per_1000"], frame["need_class"], frame["supply_class"],
                                       frame["name"].fillna(""), frame["code"]) if s == s],
        x_label=x_label, y_label="2SFCA assets per 1,000")

    priority = frame[frame["priority"]].sort_values("priority_rank", kind="mergesort")
    prio_rows = []
    for _, r in priority.head(PRIORITY_ROWS).iterrows():
        nearest = [{"group": g, "name": r.get(f"nearest_{slug(g)}_name") or "–",
                    "distance": _f(r.get(f"nearest_{slug(g)}_m"))} for g in groups]
        prio_rows.append({"rank": int(r["priority_rank"]), "code": r["code"], "name": r["name"] or "",
                          "district": districts.get(r["district_code"], r["district_code"]),
                          "decile": _f(r["need_decile"]), "score": _f(r["need_score"], 1),
                          "population": _f(r["population"]), "supply": _f(r["supply_score"], 3),
                          "nearest": nearest, "lacks": (r["lacks"] or "").replace(";", ", ").replace("_", " "),
                          "ratio": _f(r.get("network_ratio"), 2), "status": r.get("network_status", ""),
                          "individuals": r.get("individuals", "")})

    by_district = []
    for code, rows in frame.groupby("district_code", sort=True):
        p = pd.to_numeric(rows["population"], errors="coerce").sum()
        by_district.append({
            "code": code, "name": districts.get(code, code), "areas": len(rows), "population": _f(p),
            "inside": int(rows["assets_inside"].sum()),
            "per_1000": _f(rows["assets_inside"].sum() / p * 1000 if p > 0 else None, 2),
            "nearest": _f(rows["nearest_mean_m"].mean()), "access": _f(rows["access_per_1000"].mean(), 3),
            "high_need": int((rows["need_class"] == "high").sum()), "priority": int(rows["priority"].sum()),
        })

    origin = sorted(frame["origin_method"].unique())
    network = "network_ratio" in frame.columns
    ctx = {
        "distance": distance_text(params, inputs), "network": inputs.get("network") if network else None,
        "network_summary": _network_summary(frame) if network else None,
        "title": f"Gap report: {group_text} in {', '.join(names)}",
        "districts": names, "groups": groups, "group_labels": group_labels, "group_text": group_text,
        "group_counts": group_counts,
        "need_label": _need_label(inputs), "band_label": band_label,
        "summary": {"areas": len(frame), "population": _f(pop.sum()), "assets_used": inputs["assets_used"],
                    "inside": int(frame["assets_inside"].sum()), "priority": int(frame["priority"].sum()),
                    "high_need": int((frame["need_class"] == "high").sum())},
        "individuals": "individuals" in frame.columns,
        "grid": grid, "by_band": by_band, "priority_rows": prio_rows, "priority_total": len(priority),
        "priority_shown": min(len(priority), PRIORITY_ROWS), "by_district": by_district,
        "charts": {"per_1000": chart_per_1000, "nearest": chart_nearest, "scatter": scatter},
        "method": method_text(params, inputs, origin),
        "inputs": inputs, "attribution": attribution, "tiles_attribution": tiles_attribution, "fmt": _f,
        "no_data": NO_DATA,
    }
    ctx["map"] = _map(frame, map_assets, attribution, tiles=tiles, tiles_attribution=tiles_attribution,
                      static_url=static_url)
    return ctx


MODE_WORDS = {"walk": "walking", "drive": "driving", "cycle": "cycling"}
RATIO_CLASSES = ((1.2, "#f1eef6", "under 1.2 (direct)"), (1.5, "#d7b5d8", "1.2 to 1.5"), (2.0, "#df65b0", "1.5 to 2"),
                 (np.inf, "#ce1256", "2 or more (a barrier)"))
UNREACHED_COLOR = "#0b0c0c"


def distance_text(params, inputs):
    """Which distance the report used, in words (shown at the top of every report)."""
    mode = params.get("distance", "straight")
    if mode == "straight":
        return "straight-line distance (as the crow flies)"
    net = inputs.get("network") or {}
    return (f"{MODE_WORDS.get(mode, mode)} distance along the street network ({net.get('source', '?')}, dated "
            f"{net.get('source_date', '?')})")


def _catchment_text(params):
    c = f"{params['catchment_m']:,.0f} m"
    if params.get("catchment_minutes") is not None:
        return f"{params['catchment_minutes']:g} minutes at {params['speed_kmh']:g} km/h ({c})"
    return c


def ratio_color(ratio):
    if ratio is None or not np.isfinite(ratio):
        return UNREACHED_COLOR
    for upper, color_, _ in RATIO_CLASSES:
        if ratio < upper:
            return color_
    return RATIO_CLASSES[-1][1]


def _network_summary(frame):
    status = frame["network_status"].fillna("")
    ratio = pd.to_numeric(frame["network_ratio"], errors="coerce")
    return {"ok": int((status == "ok").sum()), "off": int(status.str.contains("off network").sum()),
            "unreachable": int(status.str.contains("unreachable").sum()),
            "beyond": int(status.str.contains("beyond search").sum()),
            "median_ratio": _f(ratio.median(), 2), "detour_2x": int((ratio >= 2).sum()),
            "worst": [{"code": r["code"], "name": r["name"] or "", "ratio": _f(r["network_ratio"], 2),
                       "network": _f(r["nearest_mean_m"]), "straight": _f(r["straight_mean_m"])}
                      for _, r in frame[ratio.notna()].assign(_r=ratio).sort_values(
                          ["_r", "code"], ascending=[False, True], kind="mergesort").head(10).iterrows()]}


def method_text(params, inputs, origin_methods):
    """The method in plain words, with this report's numbers in it."""
    c = params["catchment_m"]
    decay = {"none": "Every asset within the catchment counts fully.",
             "linear": "An asset counts less the farther it is, falling in a straight line to nothing at the "
                       "catchment's edge.",
             "gaussian": "An asset counts less the farther it is, along a bell curve that reaches nothing at the "
                         "catchment's edge."}[params["decay"]]
    if params["need_method"] == "deciles":
        hi, med = params["need_breaks"]
        need = (f"Need comes from the {_need_label(inputs)} decile of each area, where 1 is the most deprived tenth "
                f"of areas in England: deciles 1-{hi} are high need, {hi + 1}-{med} medium and {med + 1}-10 low.")
    else:
        direction = "higher" if params["higher_score_is_more_need"] else "lower"
        need = (f"Need comes from the {_need_label(inputs)} score, {direction} meaning more need: the third of "
                "the areas in this report with the most need is high need, the next third medium, the rest low.")
    origins = " and ".join(origin_methods)
    mode = params.get("distance", "straight")
    if mode != "straight":
        return _network_method(params, inputs, origin_methods, decay, need)
    return [
        "Each small area (LSOA) is measured from one point: its " + origins + " centroid"
        + (" (the population-weighted centroid comes from finer population points where they were given)."
           if "population-weighted" in origin_methods else
           ". No finer population (such as Output Area population-weighted centroids) was given, so the "
           "geometric centre of each area is used."),
        "Assets inside: the assets that lie within the area's boundary, also shown per 1,000 residents.",
        f"Nearest asset: the straight-line distance from the area's point to the nearest asset of each kind "
        f"({', '.join(params['groups'])}), looking at every asset in the store, including those in other districts, "
        "so an area next to a border is not marked as a gap when a library sits just over it.",
        f"Accessibility (two-step floating catchment area, 2SFCA): each asset's capacity is shared among all the "
        f"people who live within {c:,.0f} m of it, then each area adds up its shares of the assets within "
        f"{c:,.0f} m of it. The result reads as assets per 1,000 residents within reach, and it is lower where "
        f"many people share few assets. {decay} Distances are straight lines, not routes.",
        need,
        f"Supply is measured by {SUPPLY_LABELS[params['supply_measure']]}; the areas in this report are split into "
        "thirds: low, medium and high supply. Areas with the same value share a class, and areas with none are "
        "always low.",
        "Priority gaps are the areas of high need and low supply, ranked by need (most deprived first), then by "
        "supply (least first), then by distance to the nearest assets (farthest first). 'Lacks' lists the kinds "
        f"of asset with none within {c:,.0f} m.",
        "All distances are measured in British National Grid (EPSG:27700) metres. Individuals' assets never "
        "appear in this report as points or names.",
    ]


def _network_method(params, inputs, origin_methods, decay, need):
    c = _catchment_text(params)
    words = MODE_WORDS.get(params["distance"], params["distance"])
    net = inputs.get("network") or {}
    off = net.get("assets_off_network", 0)
    return [
        f"Each small area (LSOA) is measured from its {' and '.join(origin_methods)} centroid.",
        f"Distances are {distance_text(params, inputs)}: {net.get('edges', 0):,} street segments kept for the "
        f"loaded districts plus {net.get('buffer_m', 0):,.0f} m. Each area's point and each asset is joined to its "
        f"nearest point of the network (the snap distance, recorded per area as origin_snap_m, is added to the "
        f"route). A point more than {params.get('max_snap_m', 0):,.0f} m from the network is off the network and "
        f"gets no network distance at all, never a straight-line one: {off:,} of the assets were left out so "
        f"(median snap of the others {net.get('asset_snap_median_m')} m).",
        f"Nearest asset: the shortest {words} route to an asset of each kind ({', '.join(params['groups'])}), "
        "over every asset in the store, including those in other districts. An area whose part of the network "
        "has no such asset (an island, a disconnected estate) is marked unreachable; one with none within "
        f"{params.get('search_m', 0):,.0f} m along the network is marked beyond search.",
        "Network / straight line: the route to the nearest asset divided by the straight-line distance to the "
        "nearest asset. Near 1 the streets go straight there; 2 or more means a river, railway or main road "
        "without a crossing doubles the trip: the barrier is the gap.",
        f"Accessibility (two-step floating catchment area, 2SFCA, PySAL access on network costs): each asset's "
        f"capacity is shared among all the people who live within {c} of it along the network, then each area "
        f"adds up its shares of the assets within {c} of it. {decay} 'Assets within' counts them.",
        need,
        f"Supply is measured by {SUPPLY_LABELS[params['supply_measure']]}; the areas in this report are split into "
        "thirds: low, medium and high supply.",
        "Priority gaps are the areas of high need and low supply, ranked by need, then supply, then distance. "
        f"'Lacks' lists the kinds of asset with none within {c}.",
        "Individuals' assets never appear in this report as points or names.",
    ]


def _ratio_layer(frame, shown):
    """The network / straight line ratio per area as a map layer (hidden until chosen in the layer control)."""
    ratio_rows = shown[["name", "code", "geometry"]].copy()
    ratio = pd.to_numeric(frame["network_ratio"], errors="coerce").to_numpy(float)
    ratio_rows["ratio"] = np.round(ratio, 2)
    ratio_rows["status"] = frame["network_status"].to_numpy(object)
    ratio_rows["fill"] = [ratio_color(r) for r in ratio]
    fields = ["name", "code", "ratio", "status"]
    return folium.GeoJson(
        folium_._escaped(ratio_rows, fields + ["fill"]).to_json(), name="Network / straight line", show=False,
        style_function=lambda f: {"fillColor": f["properties"]["fill"], "color": "#555", "weight": 0.5,
                                  "fillOpacity": 0.75},
        tooltip=folium.GeoJsonTooltip(fields=["name", "ratio", "status"],
                                      aliases=["Area", "Network / straight line", "Network"]),
    )


def _map(frame, map_assets, attribution, *, tiles, tiles_attribution, static_url):
    m = folium_.new_map(frame.total_bounds, tiles=tiles, tiles_attribution=tiles_attribution)
    # Only Leaflet is needed (no jQuery, Bootstrap or icon fonts): the file stays small and offline.
    m.default_js = [("leaflet", static_url + LEAFLET_JS)] if static_url else []
    m.default_css = [("leaflet_css", static_url + LEAFLET_CSS)] if static_url else []
    shown = frame.to_crs(27700)
    shown["geometry"] = shown.geometry.simplify(SIMPLIFY_M, preserve_topology=True)
    shown = shown.to_crs(4326)
    shown["fill"] = [color(n, s) for n, s in zip(frame["need_class"], frame["supply_class"])]
    shown["decile"] = frame["need_decile"]
    shown["supply"] = frame["supply_score"].round(3)
    shown["nearest_m"] = frame["nearest_mean_m"].round(0)
    shown["rank"] = frame["priority_rank"]
    fields = ["name", "code", "decile", "bivariate", "supply", "nearest_m", "rank", "lacks"]
    data = folium_._escaped(shown, fields + ["fill"])
    folium.GeoJson(
        data.to_json(), name="Need and supply (areas)",
        style_function=lambda f: {"fillColor": f["properties"]["fill"], "color": "#555", "weight": 0.5,
                                  "fillOpacity": 0.8},
        highlight_function=lambda _f: {"weight": 2, "color": "#0b0c0c"},
        tooltip=folium.GeoJsonTooltip(fields=["name", "bivariate"], aliases=["Area", "Class"]),
        popup=folium.GeoJsonPopup(fields=fields, aliases=["Area", "Code", "Need decile", "Class", "Supply",
                                                          "Mean nearest (m)", "Priority rank", "Lacks"]),
    ).add_to(m)
    if "network_ratio" in frame.columns:
        _ratio_layer(frame, shown).add_to(m)
    if map_assets is not None and len(map_assets):
        pts = map_assets.reset_index()[["name", "category", "geometry"]]
        folium.GeoJson(
            folium_._escaped(pts, ["name", "category"]).to_json(), name="Assets",
            marker=folium.CircleMarker(radius=5, fill=True, fill_color="#1d70b8", color="#ffffff", weight=1.5,
                                       fill_opacity=1),
            tooltip=folium.GeoJsonTooltip(fields=["name", "category"], aliases=["Asset", "Category"]),
        ).add_to(m)
    rows = [(PALETTE[(n, s)], f"{n} need / {s} supply") for n in NEED_CLASSES for s in SUPPLY_CLASSES]
    rows.append((folium_.NO_DATA_COLOR, "no data"))
    folium_.Legend("Need / supply", rows).add_to(m)
    if "network_ratio" in frame.columns:
        folium_.Legend("Network / straight line", [(c, label) for _, c, label in RATIO_CLASSES]
                       + [(UNREACHED_COLOR, "off network or unreachable")], position="topleft").add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    folium_.Attribution(attribution).add_to(m)
    root = m.get_root()
    root.render()
    return {"header": root.header.render(), "html": root.html.render(), "script": root.script.render()}


def _environment():
    return Environment(loader=FileSystemLoader(str(PROJECT_DIR / "templates")),
                       autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def _vendor_text(rel):
    path = VENDOR_DIR / Path(rel).relative_to("vendor")
    if not path.exists():
        msg = f"{path} is missing: run `make install` (python -m asset_map.tools.vendor) to fetch Leaflet."
        from asset_map.errors import ConfigError

        raise ConfigError(msg)
    # A literal "</script>" inside inlined code would end the element early.
    return path.read_text(encoding="utf-8").replace("</script", "<\\/script")


def render_standalone(ctx):
    """One HTML file: Leaflet's JS and CSS inlined, the areas and assets embedded; opens offline."""
    template = _environment().get_template("gaps/standalone.html")
    # CSS comments go (one names a bug tracker URL); Leaflet's licence comment stays, as its licence asks.
    css = re.sub(r"/\*.*?\*/", "", _vendor_text(LEAFLET_CSS), flags=re.S)
    return template.render(leaflet_js=_vendor_text(LEAFLET_JS), leaflet_css=css,
                           site_css=(PROJECT_DIR / "asset_map" / "web" / "static" / "css" / "gaps.css").read_text(),
                           **ctx)
