"""Alembic environment: the URL comes from asset-map's settings (or the connection handed in by `db upgrade`)."""

from alembic import context
from geoalchemy2 import alembic_helpers

from asset_map.store.models import metadata

config = context.config


def _configure(connection):
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=alembic_helpers.include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        transaction_per_migration=True,
    )


connection = config.attributes.get("connection")
if connection is not None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()
else:
    from asset_map.store.db import get_engine

    with get_engine().connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
