"""Geocoding methods on frames: given coordinates, British National Grid, postcode (exact and sector), UPRN, and the
online geocoder (off by default; exercised with a stand-in, never the network)."""

import numpy as np
import pandas as pd
import pytest

from asset_map.errors import ConfigError
from asset_map.geocode import GeocodeContext, bng, coordinates, geocode, nominatim, order_from_settings
from asset_map.reference import load


def test_coordinates_and_bng():
    frame = pd.DataFrame({"lon": [-2.1, np.nan], "lat": [52.8, np.nan],
                          "easting": [np.nan, 392000.0], "northing": [np.nan, 323000.0]})
    ctx = GeocodeContext()
    got = coordinates.locate(frame, ctx)
    assert got["lon"].tolist()[0] == -2.1 and np.isnan(got["lon"].iloc[1])
    got = bng.locate(frame, ctx)
    # Stafford town centre is about SJ 920 230: 52.80 N, 2.12 W.
    assert got.loc[1, "lon"] == pytest.approx(-2.118, abs=0.01) and got.loc[1, "lat"] == pytest.approx(52.806, abs=0.01)
    both = geocode(frame, ctx, ("coordinates", "bng"))
    assert both["geocode_method"].tolist() == ["coordinates", "bng"]


def test_postcode_exact_then_sector_then_reported(engine, pack):
    load.load_postcodes(engine, pack / "postcodes" / "codepoint_open_2014.csv")
    frame = pd.DataFrame({"postcode": ["ST16 2LQ", "ST16 2DH", "ZZ9 9ZZ", None]})
    got = geocode(frame, GeocodeContext(engine=engine), ("postcode",))
    assert got["geocode_method"].tolist()[:2] == ["postcode", "postcode_sector"]
    assert pd.isna(got.loc[2, "geocode_method"])
    assert got["geocode_quality"].iloc[0] > got["geocode_quality"].iloc[1]
    assert got.loc[0, "lat"] == pytest.approx(52.807, abs=0.01)
    assert "sector ST16 2" in got.loc[1, "geocode_note"]
    assert "not in the gazetteer" in got.loc[2, "geocode_note"]
    assert np.isnan(got.loc[3, "lon"])


def test_uprn_only_when_a_table_is_loaded(engine):
    from sqlalchemy import text

    frame = pd.DataFrame({"uprn": ["100032284551", None]})
    assert geocode(frame, GeocodeContext(engine=engine), ("uprn",))["lon"].isna().all()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO uprns VALUES (100032284551, ST_SetSRID(ST_MakePoint(-2.3, 53.05), 4326))"))
    got = geocode(frame, GeocodeContext(engine=engine), ("uprn",))
    assert got.loc[0, "geocode_method"] == "uprn" and pd.isna(got.loc[1, "geocode_method"]) and got.loc[0, "lon"] == pytest.approx(-2.3)


def test_online_geocoder_is_off_by_default_and_caches(tmp_path):
    assert "nominatim" not in order_from_settings({})
    assert order_from_settings({"GEOCODER": "nominatim"})[-1] == "nominatim"
    with pytest.raises(ConfigError):
        order_from_settings({"GEOCODER": "google"})
    asked = []

    class Place:
        longitude, latitude = -2.0, 52.9

    def fake(query):
        asked.append(query)
        return Place()

    frame = pd.DataFrame({"address": ["1 High St", "1 High St"], "postcode": ["ST16 2DH", "ST16 2DH"]})
    ctx = GeocodeContext(settings={"VAR_DIR": str(tmp_path)})
    got = nominatim.locate(frame, ctx, geocoder=fake)
    assert got["lon"].tolist() == [-2.0, -2.0] and asked == ["1 High St, ST16 2DH, United Kingdom"]
    nominatim.locate(frame, ctx, geocoder=fake)
    assert len(asked) == 1
