"""A body over 10 MB is refused with 413 without being read into memory, against a real server (raw sockets, so
the test controls exactly what is sent), on SQLite and PostgreSQL:

(a) a Content-Length over the limit gets its 413 before a byte of the body is sent;
(b) 50 MB streamed with chunked transfer encoding, generated on the fly, gets a 413 once the limit is passed, and
    the server's resident memory (VmRSS of the server process) does not grow by anything near 50 MB; the same
    for a gzip body that would inflate to 50 MB, and for the webhook route (25 MB limit, GitHub's);
and no record is stored.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import LiveServer, start_server
from tests.reliability.support import Db, canonical, rss_kib

MB = 1024 * 1024
LIMIT = 10 * MB
# What the server may keep while refusing a body: the 10 MB it reads up to the limit, and the allocator's slack
# (measured: ~11 MB). A server that read the whole 50 MB body would grow by 50 MB or more.
MAX_GROWTH_KIB = 20 * 1024


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client managed to send


def _connect(server: LiveServer) -> socket.socket:
    parts = urlsplit(server.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


def _read_response(sock: socket.socket, *, deadline: float) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        if time.monotonic() > deadline:
            raise AssertionError(f"no response; received {data[:200]!r}")
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            raise AssertionError(f"connection closed before a response; received {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length and time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        rest += chunk
    return int(status_line.split()[1]), headers, rest[:length]


def declared_too_large(server: LiveServer, path: str, headers: dict[str, str], length: int) -> Answer:
    """Headers only, announcing `length` bytes; the answer is read without sending any of the body."""
    with _connect(server) as sock:
        sock.sendall(_head(path, {**headers, "Content-Length": str(length)}))
        status, answer_headers, body = _read_response(sock, deadline=time.monotonic() + 30)
    return Answer(status, answer_headers, body, sent=0)


def stream_chunked(server: LiveServer, path: str, headers: dict[str, str], *, total: int, piece: bytes) -> Answer:
    """Send `total` bytes (made of `piece`, generated as they go) with chunked transfer encoding from one thread,
    read the answer from another, and stop sending as soon as it came (or the server stopped reading)."""
    sock = _connect(server)
    sock.settimeout(5)
    stop = threading.Event()
    sent = [0]

    def send() -> None:
        try:
            sock.sendall(_head(path, {**headers, "Transfer-Encoding": "chunked"}))
            while sent[0] < total and not stop.is_set():
                data = piece[: total - sent[0]]
                sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
                sent[0] += len(data)
            if not stop.is_set():
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server closed the connection, or stopped reading (timeout): what we expect
            pass

    sender = threading.Thread(target=send, name="chunked-sender", daemon=True)
    sender.start()
    try:
        status, answer_headers, body = _read_response(sock, deadline=time.monotonic() + 60)
    finally:
        stop.set()
        sender.join(timeout=30)
        sock.close()
    assert not sender.is_alive()
    return Answer(status, answer_headers, body, sent=sent[0])


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> LiveServer:
    live = start_server(database_url=database_url, log=tmp_path / "server.log")
    yield live  # type: ignore[misc]
    live.stop()


def _record_piece() -> bytes:
    record = canonical("r", cost="0.01", at=datetime(2026, 11, 2, tzinfo=UTC), branch="feat/x")
    return (json.dumps(record).encode() + b",") * 200  # ~56 KB of plausible JSON


def test_content_length_over_the_limit_is_refused_before_the_body_is_sent(
    server: LiveServer, database_url: str, api_token: str
) -> None:
    auth = {"Authorization": f"Bearer {api_token}", "Content-Type": "application/json"}
    answer = declared_too_large(server, "/v1/usage", auth, LIMIT + 1)
    assert answer.status == 413 and "larger than" in json.loads(answer.body)["detail"]
    for source in ("litellm", "otlp/v1/logs", "claude-code"):
        assert declared_too_large(server, f"/v1/ingest/{source}", auth, 50 * MB).status == 413
    webhook = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "big", "X-Hub-Signature-256": "sha256=00"}
    assert declared_too_large(server, "/github/webhook", webhook, 30 * MB).status == 413
    # Exactly at the limit is not refused for its size: the server waits for the body (none comes: time out).
    with _connect(server) as sock:
        sock.sendall(_head("/v1/usage", {**auth, "Content-Length": str(LIMIT)}))
        sock.settimeout(1)
        with pytest.raises(TimeoutError):
            sock.recv(1)
    db = Db(database_url)
    try:
        assert db.usage_count() == 0
    finally:
        db.close()


def test_a_50_mb_stream_is_refused_without_being_read_into_memory(
    server: LiveServer, database_url: str, api_token: str
) -> None:
    auth = {"Authorization": f"Bearer {api_token}", "Content-Type": "application/json"}
    piece = _record_piece()
    # Warm up the paths involved (imports, connection pools) with small requests first.
    small = stream_chunked(server, "/v1/usage", auth, total=len(b"[]"), piece=b"[]")
    assert small.status == 200, small.body
    before = rss_kib(server.process.pid)

    answer = stream_chunked(server, "/v1/usage", auth, total=50 * MB, piece=piece)
    assert answer.status == 413, answer.body
    assert "larger than" in json.loads(answer.body)["detail"]
    grown = rss_kib(server.process.pid) - before
    assert grown < MAX_GROWTH_KIB, f"the server grew by {grown} KiB refusing a 50 MB body"

    # A gzip body that inflates to 50 MB: refused once the inflated size passes the limit.
    bomb = gzip.compress(b"[" + b" " * (50 * MB - 2) + b"]")
    answer = stream_chunked(server, "/v1/usage", {**auth, "Content-Encoding": "gzip"}, total=len(bomb), piece=bomb)
    assert answer.status == 413, answer.body
    assert "inflated body" in json.loads(answer.body)["detail"]

    # The webhook route reads up to GitHub's 25 MB payload limit, and no more.
    before = rss_kib(server.process.pid)
    webhook = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "big", "X-Hub-Signature-256": "sha256=00"}
    answer = stream_chunked(server, "/github/webhook", webhook, total=50 * MB, piece=piece)
    assert answer.status == 413, answer.body
    grown = rss_kib(server.process.pid) - before
    assert grown < 30 * 1024, f"the server grew by {grown} KiB refusing a 50 MB webhook"

    db = Db(database_url)
    try:
        assert db.usage_count() == 0
    finally:
        db.close()
    assert server.process.poll() is None
