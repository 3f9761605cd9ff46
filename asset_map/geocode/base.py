"""What every geocoding method shares: the context (database, settings, caches) and the empty result."""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class GeocodeContext:
    engine: object = None            # SQLAlchemy engine, or None for methods that need no database
    settings: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict)   # per-import caches (the gazetteer is read once)


def empty(frame):
    """A result with nothing found: ``lon, lat, quality`` NaN, ``note`` None."""
    n = len(frame)
    return pd.DataFrame({"lon": np.full(n, np.nan), "lat": np.full(n, np.nan), "quality": np.full(n, np.nan),
                         "note": np.full(n, None, dtype=object)}, index=frame.index)
