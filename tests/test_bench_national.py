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


def test_exporters_read_downloads_in_pieces_and_report_a_cut_one(tmp_path):
    """The exports section's clients count bytes without holding them, and a download cut short is an outcome of
    its own (status 0), not a dead client thread."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(2)
    body = b"x" * (3 << 20)

    def serve():
        for chunked_cut in (False, True):
            conn, _ = srv.accept()
            conn.recv(65536)
            if chunked_cut:  # a chunked answer that stops before its last (empty) chunk
                conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"%X\r\n" % len(body) + body
                             + b"\r\n")
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{srv.getsockname()[1]}/export/assets.geojson"
    assert national._download(url)[:2] == (200, len(body))
    status, size, _ = national._download(url)
    assert status == 0 and size == len(body)
    thread.join(5)
    srv.close()
