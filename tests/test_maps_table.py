"""The asset table by keyset: every page in order with nothing skipped or repeated in both directions and with
nulls, first/last links, counts exact up to a threshold and marked estimated beyond, bad cursors, and the CSV
streamed under an export slot."""

import re
from html import unescape

import pytest
from sqlalchemy import text

from asset_map.maps import table
from asset_map.store.assets import AssetFilter
from tests.conftest import make_app
from tests.explorer_data import add_hand_made, synthetic_database


@pytest.fixture(scope="module")
def synth_db(pg_server, template_db, tmp_path_factory):
    from asset_map.config import load_settings
    from asset_map.store.db import make_engine

    url = synthetic_database(pg_server, template_db, tmp_path_factory.mktemp("synth"), "am_table")
    # Never verified and no postcode: the nulls' own segment of the keyset.
    e = make_engine(url, load_settings())
    add_hand_made(e, [(f"n{i}", f"Unverified Hall {i % 3}", "organisation", "community_centre", -2.07, 52.78,
                       {"last_verified": None, "postcode": None}) for i in range(45)])
    e.dispose()
    yield url


@pytest.fixture
def eng(synth_db):
    from asset_map.config import load_settings
    from asset_map.store.db import make_engine

    e = make_engine(synth_db, load_settings())
    yield e
    e.dispose()


def _expected(eng, sort, direction):
    flt = AssetFilter()
    where, params = flt.where(role="public")
    d = direction.upper()
    with eng.connect() as conn:
        return [r[0] for r in conn.execute(text(
            f"SELECT a.id FROM assets a WHERE {where} ORDER BY a.{sort} {d} NULLS LAST, a.id {d}"), params)]


@pytest.mark.parametrize("sort,direction", [("name", "asc"), ("postcode", "desc"), ("last_verified", "asc"),
                                            ("last_verified", "desc"), ("status", "asc")])
def test_walking_forward_and_back_visits_every_row_once_in_order(eng, sort, direction):
    expected = _expected(eng, sort, direction)
    with eng.connect() as conn:
        nulls = conn.execute(text(f"SELECT count(*) FROM assets WHERE {sort} IS NULL")).scalar()
    if sort in ("last_verified", "postcode"):
        assert nulls > 0  # the null segment is exercised
    seen, pages, p = [], [], table.page(eng, AssetFilter(), sort=sort, direction=direction, page_size=37)
    while True:
        pages.append(p)
        seen += [r["id"] for r in p.rows]
        if "next" not in p.cursors:
            break
        p = table.page(eng, AssetFilter(), sort=sort, direction=direction, page_size=37, after=p.cursors["next"])
    assert seen == expected
    # Back from the last page to the first, by "before" cursors.
    back = table.page(eng, AssetFilter(), sort=sort, direction=direction, page_size=37, last=True)
    assert [r["id"] for r in back.rows] == expected[-37:]  # the last page is the last full page of rows
    walked = [r["id"] for r in back.rows]
    while "prev" in back.cursors:
        back = table.page(eng, AssetFilter(), sort=sort, direction=direction, page_size=37,
                          before=back.cursors["prev"])
        walked = [r["id"] for r in back.rows] + walked
    assert walked == expected
    assert "prev" not in pages[0].cursors and "next" not in pages[-1].cursors


def test_old_page_links_seek_to_the_same_rows(eng):
    expected = _expected(eng, "name", "asc")
    p = table.page(eng, AssetFilter(), page_no=3, page_size=50)
    assert [r["id"] for r in p.rows] == expected[100:150] and p.page_no == 3


def test_counts_are_exact_up_to_the_threshold_then_estimated(synth_db, tmp_path, monkeypatch):
    web = make_app(synth_db, tmp_path).test_client()
    html = web.get("/assets").get_data(as_text=True)
    total = int(re.search(r"<p class=\"govuk-body\">([\d,]+) assets match", html).group(1).replace(",", ""))
    assert total > 300 and "estimated" not in html
    monkeypatch.setattr(table, "EXACT_COUNT_UP_TO", 100)
    html = web.get("/assets").get_data(as_text=True)
    assert re.search(r"about [\d,]+ assets match these filters <span[^>]*>estimated</span>", html)
    assert "Page 1 of about" in html


def test_links_walk_the_table_and_bad_cursors_are_400(synth_db, tmp_path):
    web = make_app(synth_db, tmp_path).test_client()
    html = web.get("/assets?sort=postcode&dir=desc").get_data(as_text=True)
    nxt = unescape(re.search(r'href="([^"]+)" rel="next"', html).group(1))
    assert "after=" in nxt and "page=2" in nxt and "sort=postcode" in nxt
    second = web.get(nxt).get_data(as_text=True)
    assert "Page 2 of" in second and 'rel="prev"' in second
    last = unescape(re.search(r'href="([^"]+)"><span class="govuk-pagination__link-title">Last', html).group(1))
    final = web.get(last).get_data(as_text=True)
    assert 'rel="next"' not in final and 'rel="prev"' in final
    assert web.get("/assets?after=not-a-cursor").status_code == 400
    assert web.get("/assets?before=WyJBIiwyXQ").status_code == 200  # a well-formed position is just a position


def test_csv_streams_every_row_and_waits_for_a_free_export_slot(synth_db, eng, tmp_path):
    from tests.conftest import hold_slot

    app = make_app(synth_db, tmp_path, EXPORT_SLOTS=1, EXPORT_WAIT_S=0)
    web = app.test_client()
    res = web.get("/assets.csv")
    assert res.is_streamed
    lines = res.get_data(as_text=True).splitlines()
    assert len(lines) - 1 == len(_expected(eng, "name", "asc"))
    held = hold_slot(app, "export")
    try:
        busy = web.get("/assets.csv")
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
    finally:
        held.release()
    assert web.get("/assets.csv").status_code == 200
