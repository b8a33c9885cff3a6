"""Clients that cost the server memory, connections or CPU without sending anything useful, against a real server
on SQLite and PostgreSQL (raw sockets, so the test controls exactly what is sent and when):

- `POST /login` reads at most 4 KB, whatever the client declares or streams;
- a body that does not arrive within the read timeout (shortened here) is answered 408 and its connection closed,
  on routes that read their body and on routes that never do;
- unsigned webhook bodies of GitHub's 25 MB, eight at once, are not held in memory while the signature is checked;
- a 10 MB body of `{}` items is refused with 413 after its items are counted, not after each is parsed.

Memory is the server process's peak resident set (VmHWM) before and after, so a transient spike counts too. The
CPU time of the last case is printed for the record; nothing asserts on time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LiveServer, start_server
from tests.reliability.support import Db, wait_for
from tests.reliability.test_large_body import MB, _connect, _head, _read_response, stream_chunked

READ_TIMEOUT_SECONDS = 2


def peak_rss_kib(pid: int) -> int:
    """Peak resident set size of a process so far, from /proc/<pid>/status (kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(
        database_url=database_url,
        log=tmp_path / "server.log",
        env={"TOKENTRAIL_BODY_TIMEOUT_SECONDS": str(READ_TIMEOUT_SECONDS)},
    )
    yield live
    live.stop()


def _warm_up(server: LiveServer, token: str) -> None:
    """Small requests through every path the test uses, so imports and pools are not counted as growth."""
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    assert stream_chunked(server, "/v1/usage", auth, total=2, piece=b"[]").status == 200
    assert stream_chunked(server, "/login", {}, total=9, piece=b"token=abc").status in (401, 403)  # no Origin: 403
    webhook = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "warm", "X-Hub-Signature-256": "sha256=00"}
    assert stream_chunked(server, "/github/webhook", webhook, total=2, piece=b"{}").status == 401


def test_login_reads_at_most_4_kb(server: LiveServer, api_token: str) -> None:
    _warm_up(server, api_token)
    with _connect(server) as sock:  # a declared size over the cap: refused before a byte of the body is sent
        sock.sendall(_head("/login", {"Content-Length": str(300 * MB)}))
        status, _headers, body = _read_response(sock, deadline=time.monotonic() + 30)
    assert status == 413 and "larger than 4096" in json.loads(body)["detail"]

    before = peak_rss_kib(server.process.pid)
    answer = stream_chunked(server, "/login", {}, total=50 * MB, piece=b"token=" + b"x" * 65_530)
    # 413 once the form passes 4 KB (a login handler that refuses the request before reading it may answer first).
    assert 400 <= answer.status < 500, answer.body
    assert answer.sent < 10 * MB  # the server stopped reading long before the end
    grown = peak_rss_kib(server.process.pid) - before
    assert grown < 5 * 1024, f"the server's peak memory grew by {grown} KiB refusing a 50 MB login body"
    assert server.process.poll() is None


def _trickle(server: LiveServer, path: str, headers: dict[str, str], method: str = "POST") -> socket.socket:
    """A connection that declares a 1,000-byte body and sends one byte of it; the rest never comes."""
    sock = _connect(server)
    head = _head(path, {**headers, "Content-Length": "1000"}).replace(b"POST ", method.encode() + b" ", 1)
    sock.sendall(head + b"[")
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed the connection: reading past its answer gives EOF (or a reset)."""
    sock.settimeout(0.5)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_bodies_that_do_not_arrive_get_408_and_their_connections_close(server: LiveServer, api_token: str) -> None:
    webhook = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "slow", "X-Hub-Signature-256": "sha256=00"}
    reading = [
        ("/v1/usage", {"Authorization": f"Bearer {api_token}", "Content-Type": "application/json"}),
        ("/v1/ingest/otlp/v1/logs", {"Authorization": f"Bearer {api_token}"}),
        ("/github/webhook", webhook),
    ]
    slow = [_trickle(server, path, headers) for path, headers in reading for _ in range(5)]
    for sock in slow:
        status, _headers, body = _read_response(sock, deadline=time.monotonic() + 10 * READ_TIMEOUT_SECONDS + 30)
        assert status == 408, body
        assert f"within {READ_TIMEOUT_SECONDS} s" in json.loads(body)["detail"]
        assert wait_for(lambda sock=sock: _closed_by_server(sock), what="the server to close the connection")
        sock.close()

    # Routes that never read a body answer at once, and then close instead of reading what is left.
    # The login form is read (408) or refused before it is read, depending on the handler; either way the
    # connection closes.
    for path, method, headers in [
        ("/healthz", "GET", {}),
        ("/v1/usage", "POST", {"Authorization": "Bearer tt_not-a-token"}),
        ("/login", "POST", {"Content-Type": "application/x-www-form-urlencoded"}),
        ("/logout", "POST", {}),
    ]:
        with _trickle(server, path, headers, method=method) as sock:
            status, answer_headers, _body = _read_response(sock, deadline=time.monotonic() + 10 * READ_TIMEOUT_SECONDS)
            assert status < 500, (path, status)
            assert answer_headers.get("connection") == "close", (path, answer_headers)
            assert wait_for(lambda sock=sock: _closed_by_server(sock), what=f"{path} to close the connection")
    assert server.process.poll() is None


def test_unsigned_webhook_bodies_are_not_held_in_memory(server: LiveServer, api_token: str) -> None:
    _warm_up(server, api_token)
    before = peak_rss_kib(server.process.pid)
    answers: list[int] = []
    piece = json.dumps({"commits": [{"message": "x" * 1000}] * 60}).encode()
    # The right prefix, the wrong MAC: the server must read all 25 MB before it can tell.
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "big", "X-Hub-Signature-256": "sha256=" + "0" * 64}

    def send() -> None:
        answer = stream_chunked(server, "/github/webhook", headers, total=25 * MB, piece=piece)
        answers.append(answer.status)

    senders = [threading.Thread(target=send) for _ in range(8)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(timeout=300)
    assert answers == [401] * 8
    grown = peak_rss_kib(server.process.pid) - before
    print(f"\n8 unsigned 25 MB webhooks at once: peak RSS +{grown / 1024:.1f} MiB")
    assert grown < 24 * 1024, f"the server's peak memory grew by {grown} KiB for 8 unsigned 25 MB webhooks"

    # A signed delivery of the same size still arrives whole.
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1, "padding": "x" * (20 * MB)}).encode()
    signature = "sha256=" + hmac.new(b"test-secret", body, hashlib.sha256).hexdigest()
    signed = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "big-ping", "X-Hub-Signature-256": signature}
    answer = stream_chunked(server, "/github/webhook", signed, total=len(body), piece=body)
    assert answer.status == 200 and json.loads(answer.body)["status"] == "ignored", answer.body


def test_a_10_mb_body_of_empty_items_is_413_after_counting(
    server: LiveServer, database_url: str, api_token: str
) -> None:
    _warm_up(server, api_token)
    body = b"[" + b",".join([b"{}"] * (10 * MB // 3 - 1)) + b"]"
    assert len(body) <= 10 * MB
    auth = {"Authorization": f"Bearer {api_token}", "Content-Type": "application/json"}
    pid = server.process.pid
    before_rss, before_cpu = peak_rss_kib(pid), cpu_seconds(pid)
    answer = stream_chunked(server, "/v1/usage", auth, total=len(body), piece=body)
    cpu, grown = cpu_seconds(pid) - before_cpu, peak_rss_kib(pid) - before_rss
    print(f"\n10 MB of {{}} items: {answer.status}, server CPU {cpu:.2f} s, peak RSS +{grown / 1024:.1f} MiB")
    assert answer.status == 413, answer.body
    assert json.loads(answer.body)["detail"] == "batch has more than 10000 records; the limit is 10000"
    # The 10 MB body itself, its text, and the allocator's slack; parsing every item took ~700 MB.
    assert grown < 48 * 1024, f"the server's peak memory grew by {grown} KiB refusing 10 MB of {{}} items"
    db = Db(database_url)
    try:
        assert db.usage_count() == 0
    finally:
        db.close()
