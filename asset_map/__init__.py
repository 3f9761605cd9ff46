"""asset-map: community asset mapping for Asset Based Community Development."""

__version__ = "0.1.0"
