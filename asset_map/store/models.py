"""Tables of the store. Geometries are EPSG:4326 with GiST indexes; distances are measured in EPSG:27700 by the code
that reads them, never here.

The schema is created and upgraded by Alembic (asset_map/store/migrations); these classes are what the migrations
were written from and what queries use.
"""

from geoalchemy2 import Geometry
from sqlalchemy import (ARRAY, BigInteger, Boolean, Column, Date, DateTime, Float, ForeignKey, Index, Integer,
                        MetaData, SmallInteger, String, Text, UniqueConstraint, func)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

SRID = 4326
MEASURE_SRID = 27700

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})


class Base(DeclarativeBase):
    metadata = metadata


def _created():
    return Column(DateTime(timezone=True), nullable=False, server_default=func.now())


class District(Base):
    __tablename__ = "districts"
    code = Column(String(9), primary_key=True)
    name = Column(Text, nullable=False)
    geom = Column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=False)
    loaded_at = _created()


class Area(Base):
    """A small statistical area (LSOA) of one vintage: LSOA 2011 and 2021 codes differ and both are kept."""

    __tablename__ = "areas"
    code = Column(String(9), primary_key=True)
    vintage = Column(SmallInteger, primary_key=True)
    name = Column(Text)
    district_code = Column(String(9), index=True)
    population = Column(Integer)
    geom = Column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=False)
    loaded_at = _created()


class NeedIndicator(Base):
    __tablename__ = "need_indicators"
    area_code = Column(String(9), primary_key=True)
    indicator = Column(String(64), primary_key=True)
    vintage = Column(SmallInteger, primary_key=True)
    score = Column(Float)
    rank = Column(Integer)
    decile = Column(SmallInteger)
    __table_args__ = (Index("ix_need_indicator_vintage", "indicator", "vintage"),)


class Postcode(Base):
    __tablename__ = "postcodes"
    postcode = Column(String(8), primary_key=True)
    geom = Column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=False)
    district_code = Column(String(9), index=True)
    lsoa11_code = Column(String(9))
    source = Column(Text, nullable=False)
    vintage = Column(Text)


class Uprn(Base):
    """An optional gazetteer of property references (OS Open UPRN); empty unless somebody loads one."""

    __tablename__ = "uprns"
    uprn = Column(BigInteger, primary_key=True)
    geom = Column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=False)


class ReferenceLoad(Base):
    """Provenance of every reference load, so reports can say which vintage and file they used."""

    __tablename__ = "reference_loads"
    id = Column(Integer, primary_key=True)
    kind = Column(String(32), nullable=False)
    vintage = Column(Text)
    indicator = Column(Text)
    source = Column(Text, nullable=False)
    rows = Column(Integer, nullable=False)
    loaded_at = _created()


class Register(Base):
    __tablename__ = "registers"
    name = Column(String(128), primary_key=True)
    source_file = Column(Text)
    mapping = Column(JSONB)
    version = Column(Integer, nullable=False, server_default="0")
    imported_at = Column(DateTime(timezone=True))
    report = Column(JSONB)
    # "file": imported from a file; "manual": hand-made assets of one district (migration 0012).
    kind = Column(String(16), nullable=False, server_default="file")


class Asset(Base):
    __tablename__ = "assets"
    id = Column(BigInteger, primary_key=True)
    # No foreign key or index of its own (migration 0008): the importer writes the register row in the same
    # transaction, and the unique (register, match_key) index serves lookups by register.
    register = Column(String(128), nullable=False)
    source_row = Column(Integer)
    source_key = Column(Text)
    # Byte order (migration 0010): an internal key, never sorted for people, and its index builds faster.
    match_key = Column(Text(collation="C"), nullable=False)
    tier = Column(String(16), nullable=False)
    category = Column(String(64), nullable=False)
    name = Column(Text, nullable=False)
    description = Column(Text)
    offers = Column(ARRAY(Text), nullable=False, server_default="{}")
    address = Column(Text)
    postcode = Column(String(8))
    uprn = Column(BigInteger)
    email = Column(Text)
    phone = Column(Text)
    url = Column(Text)
    status = Column(String(24), nullable=False, server_default="open")
    last_verified = Column(Date)
    visibility = Column(String(16), nullable=False, server_default="public")
    consent = Column(Boolean)
    geom = Column(Geometry("POINT", srid=SRID, spatial_index=True))
    geocode_method = Column(String(32))
    geocode_quality = Column(Float)
    district_code = Column(String(9))
    lsoa11_code = Column(String(9))
    lsoa21_code = Column(String(9))
    area_flag = Column(String(32))
    properties = Column(JSONB, nullable=False, server_default="{}")
    withdrawn_at = Column(DateTime(timezone=True))
    # The consent record (migration 0011): date given, where from (register and row, or a form), wording version.
    consent_at = Column(Date)
    consent_source = Column(Text)
    consent_wording = Column(Text)
    # An erased individual keeps only id, register, tier, district and when and why (asset_map.people).
    erased_at = Column(DateTime(timezone=True))
    erased_reason = Column(Text)
    created_at = _created()
    updated_at = Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    # Moves by one with every change (import, edit, verification, ...): an editor sends the version it read.
    version = Column(Integer, nullable=False, server_default="1")
    __table_args__ = (
        UniqueConstraint("register", "match_key", name="uq_assets_register_match_key"),
        Index("ix_assets_layer", "tier", "district_code", "category"),
        Index("ix_assets_updated_at", "updated_at"),
    )


class Quarantine(Base):
    """Rows an import could not accept, kept with their reasons until a fixed file or a retry places them."""

    __tablename__ = "quarantine"
    id = Column(BigInteger, primary_key=True)
    # No foreign key (migration 0010): the importer writes the register row in the same transaction.
    register = Column(String(128), nullable=False)  # indexed with (coalesce(source_row, 0), id): 0027
    source_row = Column(Integer)
    row = Column(JSONB, nullable=False)
    problems = Column(JSONB, nullable=False)
    created_at = _created()


class QuarantineSnapshot(Base):
    """The quarantine as an import (or retry, or rollback) left it (migration 0019): what a rollback to that import
    restores."""

    __tablename__ = "quarantine_snapshots"
    id = Column(BigInteger, primary_key=True)
    import_id = Column(BigInteger, ForeignKey("register_imports.id", ondelete="CASCADE"), nullable=False, index=True)
    register = Column(String(128), nullable=False)
    source_row = Column(Integer)
    row = Column(JSONB, nullable=False)
    problems = Column(JSONB, nullable=False)


class AssetVersion(Base):
    """One change of an asset, written in the transaction that made it (migration 0012). ``changes`` is
    ``{column: [old, new]}`` (geometries as WKT); version 1 is the asset's creation."""

    __tablename__ = "asset_versions"
    asset_id = Column(BigInteger, primary_key=True)
    version = Column(Integer, primary_key=True)
    register = Column(String(128), nullable=False)
    at = Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    actor = Column(Text)
    action = Column(String(16), nullable=False)
    changes = Column(JSONB, nullable=False, server_default="{}")
    reason = Column(Text)
    import_id = Column(BigInteger)


class RegisterImport(Base):
    """Each import (or retry, or rollback) of a register: the states a register can be rolled back to."""

    __tablename__ = "register_imports"
    id = Column(BigInteger, primary_key=True)
    register = Column(String(128), nullable=False, index=True)
    version = Column(Integer, nullable=False)
    at = Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    actor = Column(Text)
    kind = Column(String(16), nullable=False)
    source_file = Column(Text)
    upload_id = Column(BigInteger)
    counts = Column(JSONB, nullable=False, server_default="{}")


class AssetOverride(Base):
    """A field an officer set on a register's row, applied before validation at every import of the register."""

    __tablename__ = "asset_overrides"
    id = Column(BigInteger, primary_key=True)
    register = Column(String(128), nullable=False)
    row_key = Column(Text, nullable=False)
    asset_id = Column(BigInteger, index=True)
    field = Column(String(32), nullable=False)
    value = Column(Text)
    base = Column(Text)
    conflict = Column(Text)
    at = Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    actor = Column(Text)
    reason = Column(Text)
    revoked_at = Column(DateTime(timezone=True))


class RegisterUpload(Base):
    """A register file uploaded in the browser, kept under the var directory as ``stored_name``."""

    __tablename__ = "register_uploads"
    id = Column(BigInteger, primary_key=True)
    register = Column(String(128), nullable=False)
    original_name = Column(Text, nullable=False)
    stored_name = Column(Text, nullable=False)
    size = Column(BigInteger, nullable=False)
    sha256 = Column(String(64), nullable=False)
    mapping = Column(JSONB)
    at = Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    actor = Column(Text)


class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
    email = Column(Text, nullable=False, unique=True)
    password_hash = Column(Text, nullable=False)
    role = Column(String(16), nullable=False)
    created_at = _created()
    last_sign_in_at = Column(DateTime(timezone=True))
    # Moved by a sign-out or a password change: sessions carry the version they were signed in with (0011).
    session_version = Column(Integer, nullable=False, server_default="0")


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    token_hash = Column(String(128), nullable=False, unique=True)
    scope = Column(String(32), nullable=False)
    created_at = _created()
    expires_at = Column(DateTime(timezone=True))
    revoked_at = Column(DateTime(timezone=True))
    # The first characters of the token, shown in listings and accepted by `token revoke`; never enough to use it.
    prefix = Column(String(16), index=True)
    label = Column(Text)
    last_used_at = Column(DateTime(timezone=True))


class AccessCount(Base):
    """Anonymous downloads and refused sign-ins counted per hour (migration 0011): bounded, unlike one row each."""

    __tablename__ = "access_counts"
    hour = Column(DateTime(timezone=True), primary_key=True)
    kind = Column(String(32), primary_key=True)
    target = Column(Text, primary_key=True)
    n = Column(BigInteger, nullable=False, server_default="0")


class AuditEvent(Base):
    """Append-only: migration 0007 adds triggers that refuse UPDATE, DELETE and TRUNCATE."""

    __tablename__ = "audit_log"
    id = Column(BigInteger, primary_key=True)
    at = _created()
    actor = Column(Text)
    action = Column(String(32), nullable=False)
    target = Column(Text)
    details = Column(JSONB, nullable=False, server_default="{}")
    rows = Column(Integer)
    __table_args__ = (Index("ix_audit_log_at_id", "at", "id"),
                      Index("ix_audit_log_action_target_at", "action", "target", "at"))


class Geography(Base):
    """A set of areas loaded from a boundary file or drawn on the map: electoral divisions, wards, parishes, pilot
    neighbourhoods (migration 0018)."""

    __tablename__ = "geographies"
    name = Column(String(64), primary_key=True)
    label = Column(Text, nullable=False)
    source = Column(Text)
    areas = Column(Integer, nullable=False, server_default="0")
    loaded_at = _created()
    updated_at = Column(DateTime(timezone=True), nullable=False, server_default=func.now())


class GeographyArea(Base):
    __tablename__ = "geography_areas"
    geography = Column(String(64), ForeignKey("geographies.name", ondelete="CASCADE"), primary_key=True)
    code = Column(String(64), primary_key=True)
    name = Column(Text, nullable=False)
    geom = Column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False), nullable=False)
    drawn_by = Column(Text)
    loaded_at = _created()
    __table_args__ = (Index("ix_geography_areas_geom", "geom", postgresql_using="gist"),)


class AssetArea(Base):
    """Each asset's area in each geography (an asset may lie in two overlapping areas of one geography)."""

    __tablename__ = "asset_areas"
    # No foreign key (migration 0018): links are replaced in bulk, a million at a time, a partition a geography
    # (migration 0023).
    geography = Column(String(64), primary_key=True)
    area_code = Column(String(64), primary_key=True)
    asset_id = Column(BigInteger, primary_key=True, index=True)
    __table_args__ = {"postgresql_partition_by": "LIST (geography)"}


class CouncillorArea(Base):
    """A user (usually a councillor) attached to the areas whose briefings they see on sign-in and by e-mail."""

    __tablename__ = "councillor_areas"
    user_id = Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    geography = Column(String(64), primary_key=True)
    area_code = Column(String(64), primary_key=True)
    created_at = _created()
