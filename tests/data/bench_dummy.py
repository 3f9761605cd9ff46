"""A tiny benchmark module for the harness tests: it uses its database and workdir and reports two figures."""

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from asset_map.tools.bench.core import Figure


def run(ctx):
    engine = create_engine(ctx.database_url, poolclass=NullPool)
    with engine.connect() as conn:
        assets = conn.execute(text("SELECT count(*) FROM assets")).scalar()
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    (ctx.workdir / "scratch.txt").write_text("used")
    ctx.notes.append(f"empty migrated database at revision {revision} with {assets} assets")
    return [
        Figure("dummy", "rows per second, 1,000 rows", 2500.0, "rows/s", "plain INSERT", 1000.0, ">= 2x reference",
               True),
        Figure("dummy", "page weight", 1.5, "MB", target="< 1 MB", met=False, notes=f"scale {ctx.scale}"),
    ]
