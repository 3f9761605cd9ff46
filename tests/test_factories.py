from sqlalchemy import text

from tests.factories import load_synthetic


def test_synthetic_assets_are_placed_in_their_areas(engine, tmp_path):
    county = load_synthetic(engine, tmp_path, areas=40, assets_n=200, seed=5)
    total = sum(len(r) for r in county.registers.values())
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM assets")).scalar()
        unplaced = conn.execute(text("SELECT count(*) FROM assets WHERE lsoa21_code IS NULL")).scalar()
        wrong = conn.execute(text("SELECT count(*) FROM assets s JOIN areas a ON a.code = s.lsoa21_code "
                                  "WHERE NOT ST_Intersects(a.geom, s.geom)")).scalar()
    # Rows with an invented postcode and no coordinates cannot be placed and are left out.
    assert total * 0.98 <= stored <= total
    assert unplaced == 0 and wrong == 0
