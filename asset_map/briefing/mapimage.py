"""The briefing's and the directory's map, drawn on the server as a PNG (matplotlib, Agg): nothing is fetched,
no tiles, so a PDF renders offline and the same inputs give the same bytes.

Drawn in EPSG:27700 so a kilometre is the same length both ways and the scale bar is true: the area's outline,
the LSOAs it overlaps shaded by need decile, district borders for context, and the listed assets by tier.
"""

import io

import geopandas as gpd
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

MEASURE_CRS = 27700
TIER_COLOURS = {"association": "#1d70b8", "organisation": "#00703c"}
# Decile 1 (most deprived) darkest; the same sequential reds the gap report's high need leans to.
DECILE_COLOURS = ["#67000d", "#a50f15", "#cb181d", "#ef3b2c", "#fb6a4a", "#fc9272", "#fcbba1", "#fee0d2",
                  "#fff5f0", "#ffffff"]
NO_DATA = "#d9d9d9"
matplotlib.rcParams.update({"font.family": "DejaVu Sans", "svg.hashsalt": "asset-map", "path.simplify": True})


def area_map(shape, *, lsoas=None, context=None, districts=None, assets=None, centre=None, size=(7.0, 4.6),
             dpi=130, title=None):
    """PNG bytes. ``shape`` (EPSG:4326 shapely geometry) is the area outlined; ``lsoas`` (GeoDataFrame with
    ``need_decile``), ``context`` (polygons drawn faintly around, e.g. every LSOA), ``districts`` and ``assets``
    (with ``tier``) are drawn when given; ``centre`` (lon, lat) marks a point (a directory's "here")."""
    outline = gpd.GeoSeries([shape], crs=4326).to_crs(MEASURE_CRS)
    minx, miny, maxx, maxy = outline.total_bounds
    pad = max(maxx - minx, maxy - miny) * 0.08 + 200
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    # Widen the shorter side so the map fills the figure at equal scale both ways.
    ratio = size[0] / size[1]
    cx, cy, w, h = (minx + maxx) / 2, (miny + maxy) / 2, maxx - minx, maxy - miny
    w, h = max(w, h * ratio), max(h, w / ratio)
    fig, ax = plt.subplots(figsize=size, dpi=dpi)
    # No axes to draw: geopandas redraws the figure after each layer, and tick labels are most of that time.
    ax.set_axis_off()
    fig.patch.set_edgecolor("#b1b4b6")
    fig.patch.set_linewidth(1)
    ax.set_xlim(cx - w / 2, cx + w / 2)
    ax.set_ylim(cy - h / 2, cy + h / 2)
    ax.set_aspect("equal")
    handles = []
    if context is not None and len(context):
        around = _measured(context).cx[cx - w / 2:cx + w / 2, cy - h / 2:cy + h / 2]
        around.plot(ax=ax, facecolor="#f3f2f1", edgecolor="#d0d0d0", linewidth=0.3)
    if lsoas is not None and len(lsoas):
        shaded = _measured(lsoas)
        colours = [DECILE_COLOURS[int(d) - 1] if d == d and d is not None else NO_DATA
                   for d in shaded["need_decile"]]
        shaded.plot(ax=ax, color=colours, edgecolor="#b1b4b6", linewidth=0.3, alpha=0.75)
        handles += [Patch(facecolor=DECILE_COLOURS[0], label="Need decile 1 (most deprived)"),
                    Patch(facecolor=DECILE_COLOURS[9], edgecolor="#b1b4b6", label="Need decile 10")]
    if districts is not None and len(districts):
        near = _measured(districts).cx[cx - w / 2:cx + w / 2, cy - h / 2:cy + h / 2]
        near.boundary.plot(ax=ax, color="#505a5f", linewidth=0.8, linestyle="--")
    outline.boundary.plot(ax=ax, color="#0b0c0c", linewidth=2.2)
    handles.append(Line2D([0], [0], color="#0b0c0c", linewidth=2.2, label=title or "The area"))
    if assets is not None and len(assets):
        pts = assets.to_crs(MEASURE_CRS)
        for tier, colour in TIER_COLOURS.items():
            mine = pts[pts["tier"] == tier]
            if len(mine):
                ax.scatter(mine.geometry.x, mine.geometry.y, s=22, color=colour, edgecolor="white", linewidth=0.6,
                           zorder=5)
                handles.append(Line2D([0], [0], marker="o", color="w", markerfacecolor=colour, markersize=7,
                                      label=f"{tier.capitalize()}s"))
    if centre is not None:
        c = gpd.GeoSeries(gpd.points_from_xy([centre[0]], [centre[1]]), crs=4326).to_crs(MEASURE_CRS).iloc[0]
        ax.scatter([c.x], [c.y], marker="*", s=160, color="#d4351c", edgecolor="black", linewidth=0.6, zorder=6)
        handles.append(Line2D([0], [0], marker="*", color="w", markerfacecolor="#d4351c", markersize=12,
                              label="Here"))
    ax.set_xlim(cx - w / 2, cx + w / 2)
    ax.set_ylim(cy - h / 2, cy + h / 2)
    _scale_bar(ax)
    ax.legend(handles=handles, loc="lower left", fontsize=7, framealpha=0.9)
    fig.tight_layout(pad=0.2)
    buf = io.BytesIO()
    # No software or date in the file: the same inputs give the same bytes.
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _measured(gdf):
    """The frame in EPSG:27700 (a no-op for frames already there: briefings project the county's once)."""
    return gdf if gdf.crs is not None and gdf.crs.to_epsg() == MEASURE_CRS else gdf.to_crs(MEASURE_CRS)


def _scale_bar(ax):
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    span = (x1 - x0) / 4
    length = next(v for v in (10_000, 5_000, 2_000, 1_000, 500, 200, 100) if v <= span or v == 100)
    x, y = x1 - (x1 - x0) * 0.04 - length, y0 + (y1 - y0) * 0.05
    ax.plot([x, x + length], [y, y], color="black", linewidth=3, solid_capstyle="butt", zorder=7)
    label = f"{length // 1000} km" if length >= 1000 else f"{length} m"
    ax.text(x + length / 2, y + (y1 - y0) * 0.015, label, ha="center", va="bottom", fontsize=7, zorder=7)
    ax.text(x1 - (x1 - x0) * 0.03, y1 - (y1 - y0) * 0.04, "N ↑", ha="right", va="top", fontsize=9,
            fontweight="bold")
