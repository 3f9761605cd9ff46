"""The national benchmark's own machinery: its reference servers must start, or the memory figures are lost."""

import pytest

from asset_map.tools.bench import national


def test_reference_factories_build_their_apps(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_MAP_DATABASE_URL", db_url)
    monkeypatch.setenv("ASSET_MAP_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("ASSET_MAP_SECRET_KEY", "bench")
    for factory in (national.bare, national.today):
        res = factory().test_client().get("/healthz")
        assert res.status_code == 200, factory.__name__


def test_a_reference_server_that_does_not_start_says_why(db_url, tmp_path):
    with pytest.raises(RuntimeError, match="did not start.*no_such_factory") as err:
        with national._Gunicorn("no_such_factory", db_url, tmp_path / "ref", 1, 1):
            pass
    assert "gunicorn.log" in str(err.value)
