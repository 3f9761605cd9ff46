"""A gap analysis's choices and defaults, defined once: the analysis (``gap.GapParams``), the request parser
(``asset_map.gaps``), the CLI's options, the web form and the report all read them from here. No imports, so the
CLI's help stays fast (the analysis itself loads geopandas, SciPy and PySAL).
"""

DECAYS = ("none", "linear", "gaussian")
NEED_METHODS = ("deciles", "quantiles")
SUPPLY_MEASURES = ("access", "per_1000", "distance")
NEED_DIRECTIONS = ("higher", "lower")
# Straight lines, or along the loaded street network of that mode (asset_map.analysis.network).
DISTANCES = ("straight", "walk", "drive", "cycle")

CATCHMENT_M = 1600.0
# A catchment beyond this is a mistake (1,000 km), not a question about access.
MAX_CATCHMENT_M = 50_000
DISTANCE = "straight"
DECAY = "none"
NEED_METHOD = "deciles"
# With deciles: 1..2 high need, 3..5 medium, 6..10 low.
NEED_BREAKS = (2, 5)
NEED_DIRECTION = "higher"
SUPPLY_MEASURE = "access"
# A gap report counts the assets people can use today unless asked otherwise.
STATUS = ("open",)
