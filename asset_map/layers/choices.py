"""What the filter form and the layer control offer: districts, and the tiers, categories and offers present in the
store as ``role`` may see them (so the public form never lists a category only individuals have)."""

from sqlalchemy import text

from asset_map.store.assets import AssetFilter, STATUSES


def districts(engine):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT code, name FROM districts ORDER BY name"))]


def categories(engine, *, role="public"):
    """[(tier, category, assets)] of all non-withdrawn assets ``role`` may see, whatever their status."""
    where, params = AssetFilter(status=STATUSES[:-1]).where(role=role)
    sql = f"SELECT a.tier, a.category, count(*) FROM assets a WHERE {where} GROUP BY 1, 2 ORDER BY 1, 2"
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def offers(engine, *, role="public"):
    where, params = AssetFilter(status=STATUSES[:-1]).where(role=role)
    sql = f"SELECT DISTINCT o FROM assets a, unnest(a.offers) AS o WHERE {where} ORDER BY o"
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text(sql), params)]
