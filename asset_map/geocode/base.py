"""What every geocoding method shares: the context (database, settings, caches) and the empty result."""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class GeocodeContext:
    engine: object = None            # SQLAlchemy engine, or None for methods that need no database
    settings: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict)   # per-import caches (the gazetteer is read once)


_SHARED = {}


def reference_cached(ctx, key, build):
    """``build(engine)`` once per database and reference version: reloading the gazetteer or boundaries for every
    import of a session would cost more than the import. A new reference load (a row in reference_loads) or a
    change in the table's size makes it read again."""
    if key in ctx.cache:
        return ctx.cache[key]
    from sqlalchemy import text

    with ctx.engine.connect() as conn:
        version = tuple(conn.execute(text(
            "SELECT (SELECT max(id) FROM reference_loads), (SELECT count(*) FROM postcodes), "
            "(SELECT count(*) FROM areas), (SELECT count(*) FROM districts)")).one())
    shared_key = (str(ctx.engine.url), key)
    hit = _SHARED.get(shared_key)
    if hit is None or hit[0] != version:
        hit = (version, build(ctx.engine))
        _SHARED[shared_key] = hit
    ctx.cache[key] = hit[1]
    return hit[1]


def empty(frame):
    """A result with nothing found: ``lon, lat, quality`` NaN, ``note`` None."""
    n = len(frame)
    # An explicit object dtype: pandas would otherwise look at every None for strings to convert.
    note = pd.Series(np.full(n, None, dtype=object), index=frame.index, dtype=object)
    return pd.DataFrame({"lon": np.full(n, np.nan), "lat": np.full(n, np.nan), "quality": np.full(n, np.nan),
                         "note": note}, index=frame.index)
