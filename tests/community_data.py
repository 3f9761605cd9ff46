"""The Staffordshire pack with its two council library registers imported by the real importer, as a template
database the community tests copy (not a test module)."""

import pytest

from tests.conftest import copied_database, engine_over

TEMPLATE = "am_community"
REGISTERS = ("libraries_staffordshire.csv", "libraries_stoke.csv")


@pytest.fixture(scope="session")
def community_template(pg_server, pack_db, pack):
    from asset_map.config import load_settings
    from asset_map.registers.importer import import_register

    url = pg_server.create(TEMPLATE, template="am_pack")
    with engine_over(url) as eng:
        for name in REGISTERS:
            import_register(eng, pack / "registers" / name, register=name.removesuffix(".csv"),
                            settings=load_settings(), actor="test")
    return TEMPLATE


@pytest.fixture
def community_url(pg_server, community_template):
    with copied_database(pg_server, community_template) as url:
        yield url


@pytest.fixture
def community_engine(community_url):
    with engine_over(community_url) as eng:
        yield eng


@pytest.fixture
def community_app(community_url, tmp_path):
    from tests.conftest import make_app

    return make_app(community_url, tmp_path)
