"""Ingest benchmark: canonical records over HTTP into a real server, against the database's own ceiling.

    python bench/ingest.py [--records 200000] [--batch 1000] [--call-ids] [--clients 1] [--processes 1]
                           [--database-url postgresql+psycopg://…/postgres]

It generates realistic records (many branches, models and authors), starts `tokentrail serve` on a fresh
database, posts them in batches over HTTP, and in the same run measures the raw ceiling: `sqlite3.executemany`
of the same rows into an identical table in one transaction, or `COPY` on PostgreSQL. The two alternate in
--rounds rounds (a fifth of the records over HTTP, then the same fifth raw, …), so that a shared machine's
changing load weighs on both alike; `--processes N` serves with `tokentrail serve --workers N`. The last line is
`ingest: <R> records/s over HTTP; raw ceiling <C> rows/s; ratio <R/C>`.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db import migrate  # noqa: E402
from bench.common import make_tokens, postgres_database, server  # noqa: E402


def make_token(database_url: str) -> str:
    return make_tokens(database_url, ["acme"])["acme"]


MODELS = [
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
    ("anthropic", "claude-opus-4-1"),
    ("openai", "gpt-5"),
    ("openai", "gpt-5-mini"),
    ("google", "gemini-2.5-pro"),
]
AGENTS = ["claude-code", "codex", "litellm-agent"]


def generate(count: int, *, seed: int = 1, call_ids: bool = False) -> list[dict[str, object]]:
    rng = random.Random(seed)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    repos = [f"acme/service-{i}" for i in range(20)]
    records = []
    for index in range(count):
        provider, model = rng.choice(MODELS)
        repo = rng.choice(repos)
        records.append(
            {
                "id": f"bench-{index}",
                "timestamp": (start + timedelta(seconds=index * 7 + rng.randint(0, 6))).isoformat(),
                "provider": provider,
                "model": model,
                "input_tokens": rng.randint(50, 8_000),
                "cache_read_tokens": rng.randint(0, 60_000),
                "cache_write_tokens": rng.choice([0, 0, 0, rng.randint(100, 5_000)]),
                "output_tokens": rng.randint(20, 3_000),
                "reasoning_tokens": 0,
                "repo": repo,
                "branch": f"feat/task-{rng.randint(1, 2_000)}",
                "commit": f"{rng.getrandbits(160):040x}",
                "actor": f"dev{rng.randint(1, 300)}@acme.test",
                "agent": rng.choice(AGENTS),
                "session_id": f"s-{index // 400}",
            }
        )
        if call_ids:  # as gateways and agents send them: the per-owner call lookups run for every batch
            records[-1]["call_id"] = f"msg_bench{index:012d}"
    return records


def post_all(url: str, token: str, records: list[dict[str, object]], *, batch: int, clients: int) -> float:
    """Seconds to post `records` in batches from `clients` threads (bodies encoded beforehand)."""
    bodies = [json.dumps(records[i : i + batch]).encode() for i in range(0, len(records), batch)]
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}

    # One kept-alive connection per client thread, as real senders (gateways, the importer) hold theirs: a new
    # httpx.Client per batch cost the client ~10 ms of setup (an SSL context) that the server spent idle.
    local = threading.local()
    opened: list[httpx.Client] = []

    def send(body: bytes) -> int:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=120)
            opened.append(client)
        response = client.post(f"{url}/v1/usage", content=body, headers=headers)
        response.raise_for_status()
        accepted: int = response.json()["accepted"]
        return accepted

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        accepted = sum(pool.map(send, bodies))
    elapsed = time.perf_counter() - started
    for client in opened:
        client.close()
    if accepted != len(records):
        raise RuntimeError(f"accepted {accepted} of {len(records)}")
    return elapsed


def ceiling_rows(records: list[dict[str, object]]) -> list[tuple[object, ...]]:
    now = datetime.now(tz=UTC).isoformat()
    return [
        (
            "api",
            r["id"],
            r["timestamp"],
            r["provider"],
            r["model"],
            r["input_tokens"],
            r["cache_read_tokens"],
            r["cache_write_tokens"],
            r["output_tokens"],
            r["reasoning_tokens"],
            12345,
            False,
            "acme",
            r["repo"],
            r["branch"],
            r["commit"],
            None,
            r["actor"],
            r["agent"],
            r["session_id"],
            now,
        )
        for r in records
    ]


COLUMNS = (
    "source, record_id, timestamp, provider, model, input_tokens, cache_read_tokens, cache_write_tokens, "
    'output_tokens, reasoning_tokens, cost_nanousd, cost_reported, owner, repo, branch, "commit", pr, actor, '
    "agent, session_id, received_at"
)


class SqliteCeiling:
    """executemany of the same rows into an identical (migrated) table, one transaction a round, same pragmas."""

    def __init__(self, folder: Path) -> None:
        path = folder / "ceiling.db"
        migrate(f"sqlite:///{path}")
        self.connection = sqlite3.connect(path)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "wal_autocheckpoint=10000", "cache_size=-65536"):
            self.connection.execute(f"PRAGMA {pragma}")

    def insert(self, records: list[dict[str, object]]) -> float:
        rows = ceiling_rows(records)
        placeholders = ", ".join("?" * len(rows[0]))
        started = time.perf_counter()
        with self.connection:
            self.connection.executemany(f"INSERT INTO usage ({COLUMNS}) VALUES ({placeholders})", rows)
        return time.perf_counter() - started

    def close(self) -> None:
        self.connection.close()


class PostgresCeiling:
    """COPY of the same rows into an identical (migrated) table, one transaction a round."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.connection = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))

    def insert(self, records: list[dict[str, object]]) -> float:
        rows = ceiling_rows(records)
        started = time.perf_counter()
        with self.connection.cursor() as cursor, cursor.copy(f"COPY usage ({COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        self.connection.commit()
        return time.perf_counter() - started

    def close(self) -> None:
        self.connection.close()


def alternate(
    url: str, token: str, ceiling: SqliteCeiling | PostgresCeiling, records: list[dict[str, object]], args: Any
) -> tuple[float, float]:
    """(HTTP seconds, ceiling seconds) over `args.rounds` rounds, each posting a slice of the records and then
    inserting the same slice raw: on a shared machine whose load changes by the minute, both see the same load."""
    per_round = -(-len(records) // args.rounds)
    http = raw = 0.0
    for start in range(0, len(records), per_round):
        chunk = records[start : start + per_round]
        http += post_all(url, token, chunk, batch=args.batch, clients=args.clients)
        raw += ceiling.insert(chunk)
    return http, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=1, help="concurrent HTTP clients")
    parser.add_argument("--processes", type=int, default=1, help="API processes (`tokentrail serve --workers N`)")
    parser.add_argument("--database-url", help="a PostgreSQL URL (an admin database); default: a SQLite file")
    parser.add_argument("--call-ids", action="store_true", help="give every record a provider call id")
    parser.add_argument("--rounds", type=int, default=5, help="alternations of HTTP and ceiling (default: 5)")
    args = parser.parse_args()

    records = generate(args.records, call_ids=args.call_ids)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.database_url:
            with (
                postgres_database(args.database_url) as server_url,
                postgres_database(args.database_url) as raw_url,
            ):
                migrate(server_url)
                migrate(raw_url)
                token = make_token(server_url)
                raw = PostgresCeiling(raw_url)
                with server(server_url, folder / "server.log", processes=args.processes) as url:
                    http_seconds, raw_seconds = alternate(url, token, raw, records, args)
                raw.close()
            database = "postgresql"
        else:
            server_url = f"sqlite:///{folder / 'server.db'}"
            migrate(server_url)
            token = make_token(server_url)
            raw = SqliteCeiling(folder)
            with server(server_url, folder / "server.log", processes=args.processes) as url:
                http_seconds, raw_seconds = alternate(url, token, raw, records, args)
            raw.close()
            database = "sqlite"
    calls = "with call ids" if args.call_ids else "without call ids"
    print(
        f"database {database}; {args.records} records in batches of {args.batch} {calls}; {args.clients} clients; "
        f"{args.processes} API process(es); {args.rounds} alternating rounds"
    )
    rate, ceiling = args.records / http_seconds, args.records / raw_seconds
    print(f"ingest: {rate:,.0f} records/s over HTTP; raw ceiling {ceiling:,.0f} rows/s; ratio {rate / ceiling:.2f}")


if __name__ == "__main__":
    main()
