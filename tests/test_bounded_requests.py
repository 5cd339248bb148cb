"""Bounded requests (issue 10 §4): a body is read only after its caller is authenticated
and authorised, and capped while it streams, with or without a Content-Length; every paging
parameter has an upper bound the stores can hold.

The body tests speak HTTP on a socket to a real uvicorn: a test client would hand the app
the whole body at once, which is exactly what must not be needed."""

from __future__ import annotations

import contextlib
import socket
import tempfile
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import Role, create_user
from service.settings import Settings
from service.store import open_store
from tests.servers import serving

pytestmark = pytest.mark.reads_demo  # test_paging_offsets_are_bounded
PEPPER = Settings().token_pepper.get_secret_value()
MB = 2**20
PIECE = 256 * 1024  # asyncio's socket read size: one body message at most


class Received:
    """ASGI wrapper outside the whole app: counts the body bytes the server handed the app
    (what the limit is about; what the client managed to send also fills kernel buffers,
    which loopback autotunes to several megabytes)."""

    def __init__(self, app) -> None:
        self.app, self.bytes = app, 0

    async def __call__(self, scope, receive, send) -> None:
        async def counted():
            message = await receive()
            self.bytes += len(message.get("body", b""))
            return message

        await self.app(scope, counted if scope["type"] == "http" else receive, send)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("bounded") / "store"
    with open_store(str(root), create=True) as store:
        _user, token = create_user(store, name="管理员", role=Role.ADMIN, scope=None,
                                   pepper=PEPPER, provinces=["410000", "610000"])
    app = Received(create_app(Settings(store=str(root), max_upload_mb=2)))
    with serving(app) as (_url, port):
        yield port, token, root, app


def _uploads_on_disk() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("riskmap-upload-*")}


def _exchange(port: int, head: str, body_chunks, seconds: float = 5.0
              ) -> tuple[int, int, float]:
    """Send ``head`` and then body chunks until the server answers; returns the status,
    the bytes of body sent and how long the answer took."""
    started = time.monotonic()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as sock:
        sock.sendall(head.encode())
        sock.setblocking(False)
        answer = b""
        for chunk in body_chunks:
            with contextlib.suppress(BlockingIOError):
                answer += sock.recv(65536)
            if answer:
                break
            try:
                sock.sendall(chunk)
                sent += len(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        while b"\r\n" not in answer:
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, sent, time.monotonic() - started


def _plain(n: int, size: int = 64 * 1024):
    return (b"x" * size for _ in range(n))


def _chunked(n: int, size: int = 64 * 1024):
    for _ in range(n):
        yield f"{size:x}\r\n".encode() + b"x" * size + b"\r\n"
    yield b"0\r\n\r\n"


def test_a_stranger_posting_30_mb_to_the_upload_is_refused_before_the_body(server):
    port, _token, _root, _app = server
    before = _uploads_on_disk()
    head = ("POST /api/ingest HTTP/1.1\r\nHost: t\r\nContent-Length: 31457280\r\n"
            "Content-Type: multipart/form-data; boundary=B\r\n\r\n")
    status, sent, took = _exchange(port, head, _plain(480))
    assert status in (401, 413)
    assert sent < 30 * MB and took < 5
    assert _uploads_on_disk() == before  # nothing spooled


def test_a_stranger_is_answered_without_the_server_waiting_for_the_body(server):
    """Within the size limit, the 401 comes while most of the declared body is unsent."""
    port, _token, _root, _app = server
    head = ("POST /api/ingest HTTP/1.1\r\nHost: t\r\nContent-Length: 1900000\r\n"
            "Content-Type: multipart/form-data; boundary=B\r\n\r\n")
    status, sent, took = _exchange(port, head, _plain(1))
    assert status == 401 and sent == 64 * 1024 and took < 5


def test_a_declared_body_over_the_limit_is_413_at_once(server):
    port, token, _root, _app = server
    for path, auth in (("/login", ""), ("/api/ingest", f"Authorization: Bearer {token}\r\n"),
                       ("/api/checks", f"Authorization: Bearer {token}\r\n")):
        head = (f"POST {path} HTTP/1.1\r\nHost: t\r\n{auth}Content-Length: 31457280\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n\r\n")
        status, sent, _took = _exchange(port, head, _plain(480))
        assert status == 413, path
        assert sent < 30 * MB


def test_a_chunked_body_without_a_length_is_cut_off_at_the_limit(server):
    """The app is handed at most the limit and one more piece (what asyncio reads off the
    socket at once, up to 256 KiB); the client is answered long before its 30 MB are
    sent."""
    port, token, root, app = server
    with open_store(str(root)) as store:
        version = store.data_version()
    login = ("POST /login HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
             "Content-Type: application/x-www-form-urlencoded\r\n\r\n")
    app.bytes = 0
    status, sent, _took = _exchange(port, login, _chunked(480))
    assert status == 413 and sent < 20 * MB
    assert app.bytes <= 1 * MB + PIECE
    upload = ("POST /api/ingest HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
              f"Authorization: Bearer {token}\r\n"
              "Content-Type: multipart/form-data; boundary=B\r\n\r\n")
    part = [b'--B\r\nContent-Disposition: form-data; name="files"; filename="a.csv"\r\n'
            b"Content-Type: text/csv\r\n\r\n"]
    body = (*part, *(b"x" * 65536 for _ in range(480)))
    chunks = (f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in body)
    app.bytes = 0
    status, sent, _took = _exchange(port, upload, chunks)
    assert status == 413 and sent < 20 * MB
    assert app.bytes <= 3 * MB + PIECE  # 2 MB of files and 1 MiB for the form's parts
    with open_store(str(root)) as store:
        assert store.data_version() == version  # nothing written


@pytest.mark.parametrize("offset", ["1e23", str(10**20), "-1"])
def test_paging_offsets_are_bounded(demo_api, offset):
    client: TestClient = demo_api["client"]
    token = demo_api["tokens"]["admin"]
    for path in ("/api/audit", "/api/layers/equipment", "/ogc/collections/equipment/items"):
        r = client.get(path, params={"offset": offset},
                       headers={"Authorization": f"Bearer {token}"})
        assert r.status_code in (400, 422), (path, r.status_code, r.text)
