"""Downloads as the web serves them (web.exports): kept public files, how they are sent, and their audit."""

import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from asset_map.api import geojson, rows
from asset_map.api.exporter import Export
from asset_map.web import extensions
from tests.conftest import make_app
from tests.explorer_data import add_hand_made

HALLS = [(f"w{i}", f"Hall {i}", "organisation", "community_centre", -2.1 + i / 1000, 52.8, {}) for i in range(6)]


@pytest.fixture
def audited(monkeypatch):
    """Every export's audit call as (layer, rows, complete), besides being recorded as usual."""
    calls, record = [], Export.record

    def spy(self, n, complete=True):
        calls.append((self.layer_id, n, complete))
        return record(self, n, complete)

    monkeypatch.setattr(Export, "record", spy)
    return calls


def _features(body):
    return [f["id"] for f in json.loads(body)["features"]]


def test_a_download_asked_for_while_another_makes_the_file_follows_it_and_gets_the_same_bytes(
        db_url, engine, tmp_path, monkeypatch, audited):
    """Two downloads of one public file at once: the first reads the database and writes the copy to keep (one
    writer: five writers of a national file stalled the disk), in a part file of its own; the second reads that part
    file as it grows instead of the database, and both get the whole file, identical, audited as complete."""
    import threading

    add_hand_made(engine, HALLS)
    monkeypatch.setattr(rows, "BATCH", 1)
    monkeypatch.setattr(geojson, "CHUNK", 1)
    streams, stream = [], Export.stream
    monkeypatch.setattr(Export, "stream", lambda self, **kw: streams.append(self.layer_id) or stream(self, **kw))
    app = make_app(db_url, tmp_path, EXPORT_SLOTS=2, EXPORT_WAIT_S=0)
    first = app.test_client().get("/export/assets.geojson", buffered=False)
    chunks = iter(first.response)
    head = next(chunks) + next(chunks)  # the first is under way...
    assert len(list((tmp_path / "exports").glob("*.part"))) == 1
    got = []
    follower = threading.Thread(target=lambda: got.append(app.test_client().get("/export/assets.geojson").get_data()))
    follower.start()  # ...when the second is asked for: it follows the part file
    follower.join(0.5)
    assert follower.is_alive() and not got  # waiting for the rest, which only the first can write
    rest = b"".join(chunks)
    first.close()
    follower.join(30)
    assert got and got[0] == head + rest and len(_features(got[0])) >= len(HALLS)
    assert streams == ["assets"]  # the database was read once
    kept_files = list((tmp_path / "exports").glob("*.geojson"))
    assert len(kept_files) == 1 and kept_files[0].read_bytes() == got[0]
    _wait_for(lambda: list((tmp_path / "exports").glob("*.geojson.gz")))  # the gzip copy, made after it
    assert not list((tmp_path / "exports").glob("*.part"))
    n = len(_features(got[0]))
    assert sorted(audited) == [("assets", n, True), ("assets", n, True)]


def test_a_follower_is_cut_when_the_file_it_follows_is_not_finished(db_url, engine, tmp_path, monkeypatch, audited):
    """The maker's client goes away half way: its part file is dropped, and a download following it ends cut short
    (an error in the stream, so the server does not end the chunked body as if whole), audited as incomplete."""
    import threading

    from asset_map.api import kept

    add_hand_made(engine, HALLS)
    monkeypatch.setattr(rows, "BATCH", 1)
    monkeypatch.setattr(geojson, "CHUNK", 1)
    app = make_app(db_url, tmp_path, EXPORT_SLOTS=2, EXPORT_WAIT_S=0)
    first = app.test_client().get("/export/assets.geojson", buffered=False)
    chunks = iter(first.response)
    next(chunks)
    errors = []

    def follow():
        try:
            app.test_client().get("/export/assets.geojson").get_data()
        except kept.FollowFailed as err:
            errors.append(err)

    follower = threading.Thread(target=follow)
    follower.start()
    follower.join(0.5)
    first.close()  # the maker's client went away
    follower.join(30)
    assert errors and not list((tmp_path / "exports").glob("*.geojson"))
    assert ("assets", 0, False) in audited and all(not c[2] for c in audited)


def test_a_prepared_file_is_sent_without_reading_the_database(db_url, engine, tmp_path, monkeypatch, audited):
    """api.kept.prepare (the worker's job after an import) makes the public GeoJSON and CSV where the download
    route finds them: a download then reads no rows, gets the same bytes as one made from the database, and is
    audited with the file's row count."""
    from asset_map.api import kept

    add_hand_made(engine, HALLS)
    app = make_app(db_url, tmp_path)
    made = kept.prepare(engine, app.config["ASSET_MAP"])
    assert [(m[0], m[1], m[4]) for m in made] == [("assets", "geojson", True), ("assets", "csv", True)]
    assert all(kept.gzipped(m[2]).is_file() for m in made)  # gzip copies made by then
    fresh = make_app(db_url, tmp_path / "fresh").test_client()
    expected = {fmt: fresh.get(f"/export/assets.{fmt}").get_data() for fmt in ("geojson", "csv")}
    audited.clear()
    monkeypatch.setattr(Export, "stream", lambda *a, **kw: pytest.fail("read the database"))
    got = {fmt: app.test_client().get(f"/export/assets.{fmt}").get_data() for fmt in ("geojson", "csv")}
    assert got["csv"] == expected["csv"]
    assert json.loads(got["geojson"])["features"] == json.loads(expected["geojson"])["features"]  # timeStamp aside
    n = len(_features(expected["geojson"]))
    assert audited == [("assets", n, True), ("assets", n, True)]
    # Once kept, preparing again makes nothing; a data change makes them stale (a new key).
    assert [m[4] for m in kept.prepare(engine, app.config["ASSET_MAP"])] == [False, False]
    add_hand_made(engine, [("w99", "Hall 99", "organisation", "community_centre", -2.0, 52.8, {})])
    with app.app_context():
        assert not kept.current(engine, app.config["ASSET_MAP"])


def test_a_signed_in_download_is_never_kept_nor_prepared(db_url, engine, tmp_path, audited):
    """What a signed-in user downloads may be personal data: it is streamed and never written down, and what is
    prepared is the public's view only."""
    from asset_map.api import kept
    from tests.accounts import signed_in_client

    add_hand_made(engine, HALLS)
    app = make_app(db_url, tmp_path)
    officer = signed_in_client(app, engine, "officer")
    for fmt in ("geojson", "csv", "gpkg"):
        assert officer.get(f"/export/assets.{fmt}").status_code == 200
    assert not list((tmp_path / "exports").glob("a*-*"))  # nothing kept, nothing being made
    job = Export.make(engine, "assets", "geojson", {}, role="officer", actor="t", settings=app.config["ASSET_MAP"])
    assert kept.path_of(job) is None
    made = kept.prepare(engine, app.config["ASSET_MAP"])
    public = make_app(db_url, tmp_path / "public").test_client().get("/export/assets.geojson").get_data()
    assert _features(made[0][2].read_bytes()) == _features(public)
    assert [c for c in audited if c[0] == "assets"]  # every download audited, the officer's too


def test_a_kept_file_is_sent_at_most_at_the_rate_cap(db_url, engine, tmp_path, audited):
    """EXPORT_RATE_MB_S caps each send of a kept file (read in paced chunks instead of sendfile), whole and
    audited as usual; the pacing itself is api.kept.paced (tests/test_kept.py)."""
    import time

    from asset_map.api import kept

    app, body = _kept(db_url, engine, tmp_path, EXPORT_RATE_MB_S=0.004)  # 4 kB/s
    n = len(_features(body))
    audited.clear()
    chunk = kept.CHUNK
    try:
        kept.CHUNK = 1024
        started = time.monotonic()
        with app.test_client().get("/export/assets.geojson") as res:  # closed as a WSGI server closes it
            got = res.get_data()
        took = time.monotonic() - started
    finally:
        kept.CHUNK = chunk
    assert got == body and res.headers["Content-Length"] == str(len(body))
    # The first CHUNK goes at once (the burst), the rest at 4 kB/s: a generous lower bound.
    assert took >= 0.8 * (len(body) - 1024) / 4000 - 0.05
    assert audited == [("assets", n, True)]


def test_under_gunicorn_a_capped_kept_file_is_paced_by_the_kernel_and_sent_by_sendfile(db_url, engine, tmp_path,
                                                                                       audited):
    """With the client's socket at hand (gunicorn's environ), the cap becomes the connection's pacing rate
    (SO_MAX_PACING_RATE) and the file goes to the server's file wrapper, no Python between its chunks."""
    import socket

    from asset_map.web import exports

    app, body = _kept(db_url, engine, tmp_path, EXPORT_RATE_MB_S=2)
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    sock, _ = listener.accept()
    try:
        out, started = _call(app, "/export/assets.geojson",
                             **{"wsgi.file_wrapper": _ServerWrapper, "gunicorn.socket": sock})
        assert isinstance(out, _ServerWrapper) and started[0][0].startswith("200")
        assert sock.getsockopt(socket.SOL_SOCKET, exports.SO_MAX_PACING_RATE) == 2_000_000
        assert _sendfile(out, len(body)) == body
        out.close()
        # Without the socket (another server), the same cap is kept by reading the file in paced chunks.
        out, _ = _call(app, "/export/assets.geojson", **{"wsgi.file_wrapper": _ServerWrapper})
        assert not isinstance(out, _ServerWrapper) and b"".join(out) == body
        out.close()
    finally:
        for s in (sock, client, listener):
            s.close()


class _ServerWrapper:
    """What a WSGI server with sendfile offers as ``wsgi.file_wrapper`` (gunicorn's FileWrapper, in short)."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike

    def close(self):
        self.filelike.close()


def _kept(db_url, engine, tmp_path, **settings):
    """An app whose public assets.geojson is already kept, and that file's bytes; no rate cap unless given (a
    capped send is read in chunks, not handed to the server's file wrapper)."""
    add_hand_made(engine, HALLS)
    app = make_app(db_url, tmp_path, **{"EXPORT_RATE_MB_S": 0, **settings})
    body = app.test_client().get("/export/assets.geojson").get_data()
    assert len(list((tmp_path / "exports").glob("*.geojson"))) == 1
    return app, body


def _call(app, path, **environ):
    from werkzeug.test import EnvironBuilder

    started = []
    env = EnvironBuilder(path=path).get_environ()
    env.update(environ)
    return app(env, lambda status, headers, exc_info=None: started.append((status, dict(headers)))), started


def _sendfile(wrapper, count):
    """Send ``count`` bytes of the wrapper's file as gunicorn does (socket.sendfile from the file's position);
    returns what the other end received."""
    import socket
    import threading

    ours, theirs = socket.socketpair()
    got = []
    reader = threading.Thread(target=lambda: got.append(b"".join(iter(lambda: theirs.recv(65536), b""))))
    reader.start()
    with ours:
        ours.sendfile(wrapper.filelike, offset=0, count=count)
    reader.join(10)
    theirs.close()
    return got[0]


def test_a_kept_file_goes_to_the_servers_file_wrapper_and_is_audited_when_sent(db_url, engine, tmp_path, audited):
    """Not wrapped in Python generators, so gunicorn can use sendfile; the audit record comes when the server
    closes it, complete with the rows only when every byte went out."""
    app, body = _kept(db_url, engine, tmp_path)
    n = len(_features(body))
    audited.clear()
    out, started = _call(app, "/export/assets.geojson", **{"wsgi.file_wrapper": _ServerWrapper})
    assert isinstance(out, _ServerWrapper) and out.filelike.fileno() >= 0
    assert started[0][0].startswith("200") and started[0][1]["Content-Length"] == str(len(body))
    assert _sendfile(out, len(body)) == body
    assert audited == []  # not before the server is done with it
    out.close()
    assert audited == [("assets", n, True)]
    # A send that stopped short (the client went away) is recorded as incomplete, with no rows.
    out, _ = _call(app, "/export/assets.geojson", **{"wsgi.file_wrapper": _ServerWrapper})
    _sendfile(out, len(body) // 2)
    out.close()
    assert audited[-1] == ("assets", 0, False)


def test_a_kept_file_read_through_python_is_audited_by_whether_it_was_read_to_the_end(db_url, engine, tmp_path,
                                                                                      audited):
    """Without sendfile (a server without it, the test client, compression) the file is read in chunks: complete
    only once a read found its end; abandoned halfway it is incomplete."""
    import gzip

    from werkzeug.wsgi import FileWrapper

    class Small(FileWrapper):
        def __init__(self, file, buffer_size=8192):
            super().__init__(file, 64)

    app, body = _kept(db_url, engine, tmp_path)
    n = len(_features(body))
    web = app.test_client()
    audited.clear()
    with web.get("/export/assets.geojson") as res:  # closed as a WSGI server closes what it sent
        assert res.get_data() == body
    assert audited == [("assets", n, True)]
    res = web.get("/export/assets.geojson", buffered=False, environ_base={"wsgi.file_wrapper": Small})
    assert len(next(iter(res.response))) == 64
    res.close()  # the client went away
    assert audited[-1] == ("assets", 0, False)
    with web.get("/export/assets.geojson", headers={"Accept-Encoding": "gzip"}) as zipped:
        assert zipped.headers["Content-Encoding"] == "gzip" and gzip.decompress(zipped.get_data()) == body
    assert audited[-1] == ("assets", n, True)


def test_a_download_may_take_longer_than_the_statement_timeout(db_url, engine, tmp_path, monkeypatch, audited):
    """The statement timeout bounds each FETCH of the export's server-side cursor, not the whole download: a slow
    client (or a national file) is not cut off after STATEMENT_TIMEOUT_MS."""
    import time

    add_hand_made(engine, HALLS)
    monkeypatch.setattr(rows, "BATCH", 1)
    monkeypatch.setattr(geojson, "CHUNK", 1)
    app = make_app(db_url, tmp_path, STATEMENT_TIMEOUT_MS=200)
    web = app.test_client()
    with app.app_context(), pytest.raises(OperationalError, match="statement timeout"), \
            extensions.engine().connect() as conn:
        conn.execute(text("SELECT pg_sleep(0.5)"))  # the timeout is in force for one statement
    started = time.monotonic()
    with web.get("/export/assets.geojson?comments=0", buffered=False) as res:
        body = b""
        for chunk in res.response:
            body += chunk
            time.sleep(0.1)
    assert time.monotonic() - started > 0.6
    assert len(_features(body)) >= len(HALLS) and audited[-1][2] is True


def _wait_for(check, timeout=15):
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_kept_file_is_gzipped_once_and_sent_as_it_is_to_clients_that_accept_gzip(db_url, engine, tmp_path,
                                                                                   audited):
    """Every browser accepts gzip: compressing 500 MB again in a worker for each download cost more CPU than making
    it. The gzip copy goes by sendfile too, with the same audit."""
    import gzip

    app, body = _kept(db_url, engine, tmp_path)
    n = len(_features(body))
    _wait_for(lambda: list((tmp_path / "exports").glob("*.geojson.gz")))
    gz = next((tmp_path / "exports").glob("*.geojson.gz"))
    audited.clear()
    out, started = _call(app, "/export/assets.geojson", HTTP_ACCEPT_ENCODING="gzip, deflate, br",
                         **{"wsgi.file_wrapper": _ServerWrapper})
    headers = started[0][1]
    assert isinstance(out, _ServerWrapper)
    assert headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in headers["Vary"]
    assert headers["Content-Length"] == str(gz.stat().st_size) and gz.stat().st_size < len(body)
    assert gzip.decompress(_sendfile(out, gz.stat().st_size)) == body
    out.close()
    assert audited == [("assets", n, True)]
    out, started = _call(app, "/export/assets.geojson", **{"wsgi.file_wrapper": _ServerWrapper})
    assert "Content-Encoding" not in started[0][1] and _sendfile(out, len(body)) == body
    out.close()
