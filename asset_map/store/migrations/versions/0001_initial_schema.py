"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 08:04:22.028252
"""
from alembic import op
import geoalchemy2
import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_geospatial_table('areas',
    sa.Column('code', sa.String(length=9), nullable=False),
    sa.Column('vintage', sa.SmallInteger(), nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('district_code', sa.String(length=9), nullable=True),
    sa.Column('population', sa.Integer(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('code', 'vintage', name=op.f('pk_areas'))
    )
    op.create_geospatial_index('idx_areas_geom', 'areas', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_areas_district_code'), 'areas', ['district_code'], unique=False)
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor', sa.Text(), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('target', sa.Text(), nullable=True),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('rows', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_geospatial_table('districts',
    sa.Column('code', sa.String(length=9), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_districts'))
    )
    op.create_geospatial_index('idx_districts_geom', 'districts', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_table('need_indicators',
    sa.Column('area_code', sa.String(length=9), nullable=False),
    sa.Column('indicator', sa.String(length=64), nullable=False),
    sa.Column('vintage', sa.SmallInteger(), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('rank', sa.Integer(), nullable=True),
    sa.Column('decile', sa.SmallInteger(), nullable=True),
    sa.PrimaryKeyConstraint('area_code', 'indicator', 'vintage', name=op.f('pk_need_indicators'))
    )
    op.create_index('ix_need_indicator_vintage', 'need_indicators', ['indicator', 'vintage'], unique=False)
    op.create_geospatial_table('postcodes',
    sa.Column('postcode', sa.String(length=8), nullable=False),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('district_code', sa.String(length=9), nullable=True),
    sa.Column('lsoa11_code', sa.String(length=9), nullable=True),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('vintage', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('postcode', name=op.f('pk_postcodes'))
    )
    op.create_geospatial_index('idx_postcodes_geom', 'postcodes', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_postcodes_district_code'), 'postcodes', ['district_code'], unique=False)
    op.create_table('reference_loads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('vintage', sa.Text(), nullable=True),
    sa.Column('indicator', sa.Text(), nullable=True),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reference_loads'))
    )
    op.create_table('registers',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('source_file', sa.Text(), nullable=True),
    sa.Column('mapping', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('version', sa.Integer(), server_default='0', nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('report', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_registers'))
    )
    op.create_geospatial_table('uprns',
    sa.Column('uprn', sa.BigInteger(), nullable=False),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.PrimaryKeyConstraint('uprn', name=op.f('pk_uprns'))
    )
    op.create_geospatial_index('idx_uprns_geom', 'uprns', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.Text(), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=128), nullable=False),
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_geospatial_table('assets',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('register', sa.String(length=128), nullable=False),
    sa.Column('source_row', sa.Integer(), nullable=True),
    sa.Column('source_key', sa.Text(), nullable=True),
    sa.Column('match_key', sa.Text(), nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('offers', sa.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('postcode', sa.String(length=8), nullable=True),
    sa.Column('uprn', sa.BigInteger(), nullable=True),
    sa.Column('email', sa.Text(), nullable=True),
    sa.Column('phone', sa.Text(), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=24), server_default='open', nullable=False),
    sa.Column('last_verified', sa.Date(), nullable=True),
    sa.Column('visibility', sa.String(length=16), server_default='public', nullable=False),
    sa.Column('consent', sa.Boolean(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('geocode_method', sa.String(length=32), nullable=True),
    sa.Column('geocode_quality', sa.Float(), nullable=True),
    sa.Column('district_code', sa.String(length=9), nullable=True),
    sa.Column('lsoa11_code', sa.String(length=9), nullable=True),
    sa.Column('lsoa21_code', sa.String(length=9), nullable=True),
    sa.Column('area_flag', sa.String(length=32), nullable=True),
    sa.Column('properties', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['register'], ['registers.name'], name=op.f('fk_assets_register_registers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assets')),
    sa.UniqueConstraint('register', 'match_key', name='uq_assets_register_match_key')
    )
    op.create_geospatial_index('idx_assets_geom', 'assets', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index('ix_assets_layer', 'assets', ['tier', 'district_code', 'category'], unique=False)
    op.create_index(op.f('ix_assets_register'), 'assets', ['register'], unique=False)
    op.create_index('ix_assets_updated_at', 'assets', ['updated_at'], unique=False)
    op.create_table('quarantine',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('register', sa.String(length=128), nullable=False),
    sa.Column('source_row', sa.Integer(), nullable=True),
    sa.Column('row', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('problems', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['register'], ['registers.name'], name=op.f('fk_quarantine_register_registers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantine'))
    )
    op.create_index(op.f('ix_quarantine_register'), 'quarantine', ['register'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_quarantine_register'), table_name='quarantine')
    op.drop_table('quarantine')
    op.drop_index('ix_assets_updated_at', table_name='assets')
    op.drop_index(op.f('ix_assets_register'), table_name='assets')
    op.drop_index('ix_assets_layer', table_name='assets')
    op.drop_geospatial_index('idx_assets_geom', table_name='assets', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('assets')
    op.drop_table('api_tokens')
    op.drop_table('users')
    op.drop_geospatial_index('idx_uprns_geom', table_name='uprns', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('uprns')
    op.drop_table('registers')
    op.drop_table('reference_loads')
    op.drop_index(op.f('ix_postcodes_district_code'), table_name='postcodes')
    op.drop_geospatial_index('idx_postcodes_geom', table_name='postcodes', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('postcodes')
    op.drop_index('ix_need_indicator_vintage', table_name='need_indicators')
    op.drop_table('need_indicators')
    op.drop_geospatial_index('idx_districts_geom', table_name='districts', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('districts')
    op.drop_table('audit_log')
    op.drop_index(op.f('ix_areas_district_code'), table_name='areas')
    op.drop_geospatial_index('idx_areas_geom', table_name='areas', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('areas')
