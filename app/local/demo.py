"""`tokentrail demo`: a complete local scenario in dry-run mode on SQLite.

Starts the real server, replays the demo history (app.local.demo_seed) through its HTTP endpoints exactly as GitHub
and the gateways would send it, waits for the worker to match everything and render every comment, then prints
where to look and keeps serving until interrupted. Each run starts from a fresh database file.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from pathlib import Path

import httpx
import uvicorn

from app.db import create_db_engine, make_sessionmaker, migrate, session_scope
from app.local.demo_seed import ORG, REPOS, build_seed
from app.local.demo_usage import Request
from app.main import create_app
from app.ports import busy_port_message, is_port_free
from app.settings import Settings
from app.tokens import create_token


class PortBusy(Exception):
    """The demo's port has a listener already: the message says which process, and which port is free."""


def _fresh_database(path: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    migrate(url)
    return url


def _tokens(url: str, owners: set[str]) -> dict[str, str]:
    engine = create_db_engine(url)
    with session_scope(make_sessionmaker(engine)) as session:
        tokens = {owner: create_token(session, owner=owner, name="demo") for owner in sorted(owners)}
    engine.dispose()
    return tokens


def _send(client: httpx.Client, request: Request, *, secret: str, tokens: dict[str, str]) -> None:
    headers = dict(request.headers)
    if request.event is not None:
        signature = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        headers |= {
            "X-GitHub-Event": request.event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": f"sha256={signature}",
            "content-type": "application/json",
        }
    else:
        headers["Authorization"] = f"Bearer {tokens[request.owner or ORG]}"
    response = client.post(request.path, content=request.body, headers=headers)
    if response.status_code >= 400:
        raise RuntimeError(f"{request.path} answered {response.status_code}: {response.text[:300]}")


def _wait_idle(client: httpx.Client, *, timeout: float = 300.0) -> None:
    """Until the outbox has nothing queued or running (read from /metrics, like any operator would)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = client.get("/metrics").text
        busy = [
            line
            for line in text.splitlines()
            if line.startswith("tokentrail_jobs{")
            and ('"queued"' in line or '"running"' in line)
            and not line.endswith(" 0")
        ]
        if not busy:
            return
        time.sleep(0.3)
    raise RuntimeError("the worker did not finish the demo's jobs in time")


def run_demo(*, host: str, port: int, database: Path, serve: bool = True) -> str:
    """Seed and (unless serve=False) keep serving; returns the rendered comment shown to the user."""
    # Before anything else: the seeding would otherwise go to whatever listens there (and a demo already running
    # on that port would lose its database).
    if not is_port_free(host, port):
        raise PortBusy(busy_port_message(host, port))
    url = _fresh_database(database)
    secret = secrets.token_hex(16)
    settings = Settings(
        database_url=url,
        dry_run=True,
        demo_mode=True,
        github_webhook_secret=secret,
        comment_debounce_seconds=0,
        public_url=f"http://{host}:{port}",
    )
    requests = build_seed()
    owners = {r.owner for r in requests if r.owner} | {ORG}
    tokens = _tokens(url, owners)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="tokentrail-demo-server", daemon=True)
    thread.start()
    base = f"http://{host}:{port}"
    with httpx.Client(base_url=base, timeout=60) as client:
        for _ in range(200):
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"the demo server did not start on {base}")
        print(f"Seeding {len(requests)} requests (webhooks, OpenTelemetry, Codex rollouts, LiteLLM callbacks)…")
        for request in requests:
            _send(client, request, secret=secret, tokens=tokens)
        _wait_idle(client)
        auth = {"Authorization": f"Bearer {tokens[ORG]}"}
        repo = REPOS[0]
        comment = client.get(f"/v1/repos/{repo}/pulls/101/comment.md", headers=auth).text
        report = client.get(f"/v1/repos/{repo}/report", headers=auth)
    print()
    print(f"Tokentrail demo is running on {base} (dry-run: nothing is sent to GitHub)")
    print(f"  dashboard        {base}/dashboard/{ORG}")
    print(f"  repository       {base}/dashboard/{repo}")
    print(f"  a pull request   {base}/dashboard/{repo}/pulls/101")
    print(f'  API              curl -H "Authorization: Bearer $TOKEN" {base}/v1/repos/{repo}/pulls/101')
    print(f"  metrics          {base}/metrics")
    if report.status_code == 200:
        print(f'  report           curl -H "Authorization: Bearer $TOKEN" {base}/v1/repos/{repo}/report')
    print()
    print(f"The API token of {ORG} in this demo's database ({database}), for the API and for sending usage:")
    print(f"export TOKEN={tokens[ORG]}")
    print()
    print(f"The comment on {repo}#101, as Tokentrail renders it:")
    print()
    print(comment)
    if serve:
        print("Press Ctrl-C to stop.")
        with contextlib.suppress(KeyboardInterrupt):
            thread.join()
    server.should_exit = True
    thread.join(timeout=30)
    return comment
