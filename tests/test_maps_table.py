"""The asset table by keyset: every page in order with nothing skipped or repeated in both directions and with
nulls, first/last links, counts exact up to a threshold and marked estimated beyond, bad cursors, and the CSV
streamed under an export slot."""

import gzip
import re
from html import unescape

import pytest
from flask import request
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
    html = make_app(synth_db, tmp_path).test_client().get("/assets").get_data(as_text=True)  # not the kept page
    assert re.search(r"about [\d,]+ assets match these filters <span[^>]*>estimated</span>", html)
    assert "Page 1 of about" in html


def _total(html):
    return int(re.search(r"([\d,]+) assets? match", html).group(1).replace(",", ""))


def test_public_pages_are_kept_until_the_assets_change(synth_db, eng, tmp_path):
    web = make_app(synth_db, tmp_path).test_client()
    first = web.get("/assets?q=Unverified+Hall", headers={"Accept-Encoding": "gzip"})
    assert first.headers["Content-Encoding"] == "gzip"
    assert _total(gzip.decompress(first.get_data()).decode()) == 45
    try:
        with eng.begin() as conn:   # a change no trigger records: the kept page is what is served
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text("UPDATE assets SET name = 'Unverified Hall by hand' WHERE id = "
                              "(SELECT min(id) FROM assets WHERE name LIKE 'Unverified Hall %')"))
        kept = web.get("/assets?q=Unverified+Hall").get_data(as_text=True)
        assert _total(kept) == 45 and "Unverified Hall by hand" not in kept
        add_hand_made(eng, [("kept-1", "Unverified Hall 9", "organisation", "community_centre", -2.07, 52.78,
                             {"last_verified": None, "postcode": None})])   # an import: the stamp moves
        fresh = web.get("/assets?q=Unverified+Hall").get_data(as_text=True)
        assert _total(fresh) == 46 and "Unverified Hall by hand" in fresh
    finally:
        with eng.begin() as conn:
            conn.execute(text("DELETE FROM assets WHERE name = 'Unverified Hall 9' OR match_key = 'kept-1'"))
            conn.execute(text("UPDATE assets SET name = 'Unverified Hall 0' WHERE name = 'Unverified Hall by hand'"))


def _email_column(html):
    return re.search(r">\s*Email\s*</th>", html) is not None


def test_a_signed_in_readers_table_is_never_a_kept_public_page(synth_db, eng, tmp_path, monkeypatch):
    """Organisers and officers see contact columns: their pages are drawn for them, and a public reader never gets
    one. With pages kept for every role under a key that forgets the role, the public would be sent the officer's."""
    from asset_map.maps import page_cache
    from asset_map.web import tables
    from tests.accounts import signed_in_client

    app = make_app(synth_db, tmp_path)
    public = app.test_client()
    assert not _email_column(public.get("/assets").get_data(as_text=True))
    officer = signed_in_client(app, eng, "officer")
    assert _email_column(officer.get("/assets").get_data(as_text=True))
    assert not _email_column(public.get("/assets").get_data(as_text=True))

    leaky = make_app(synth_db, tmp_path)
    monkeypatch.setattr(page_cache, "ROLES", ("public", "officer"))
    monkeypatch.setattr(tables, "_page_key", lambda role: (request.query_string,))
    monkeypatch.setattr(tables, "session", {})
    officer = signed_in_client(leaky, eng, "officer")
    assert _email_column(officer.get("/assets").get_data(as_text=True))
    assert _email_column(leaky.test_client().get("/assets").get_data(as_text=True))


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
