"""Webhook acknowledgement latency under 50 concurrent senders, against a server whose worker is busy.

    python bench/webhooks.py [--senders 50] [--per-sender 40] [--jobs 5000] [--database-url postgresql+psycopg://…]

It creates a fresh database (SQLite file by default; a new PostgreSQL database next to the admin URL's, dropped at
the end), writes a history into it (bench/history.py: PRs, commits, pushes, usage, part of it not yet matched),
and queues work for the worker before the server starts: a refresh job per PR (report, comment and check run,
rendered and stored in dry-run mode) and a match job per repository with pending usage. Then `tokentrail serve`
starts with its in-process worker on (comment debounce 0, so every job is due at once) and, while the worker
chews through that queue, --senders threads each post --per-sender signed `pull_request` deliveries (real
octokit payloads of ~28 kB, unique delivery ids, synchronize of known PRs and opened of new ones), timing each
until its 202.

Ceiling, same run: GET /healthz under the same concurrency (same threads, same clients, same busy worker), i.e.
what the HTTP stack and this client machine cost without any database write; each sender alternates one delivery
and one /healthz, so both are timed under the same load at the same moments. The jobs the worker finished during
the measurement are printed, and a queue that ran dry during the measurement is reported. The last line is
`webhooks: p99 <a> ms acknowledging <n> deliveries from 50 senders (busy worker); /healthz p99 <b> ms; ratio <a/b>`.
--idle-worker runs the same with no worker and nothing queued, to tell the worker's share from the rest.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.db import migrate, utcnow
from app.tables import JOBS
from bench.common import ms, percentile, postgres_database, server
from bench.history import DAYS, END, History, load, plan
from tests.github_payloads import make_pull_request_event, webhook_headers

SECRET = "bench-webhook-secret"


def queue_work(database_url: str, history: History, jobs: int) -> int:
    """A refresh job for `jobs` PRs and a match job per repository (pending usage); returns how many."""
    now = utcnow()
    rows = [
        {"kind": "refresh", "key": f"{p.repo}#{p.number}", "state": "queued", "attempts": 0, "run_after": now}
        for p in history.pulls[:jobs]
    ]
    rows += [
        {"kind": "match", "key": repo, "state": "queued", "attempts": 0, "run_after": now} for repo in history.repos
    ]
    for row in rows:
        row.update(created_at=now, updated_at=now)
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.insert(JOBS), rows)
    engine.dispose()
    return len(rows)


def job_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(JOBS.c.state, sa.func.count()).group_by(JOBS.c.state)).all()
    return {state: int(count) for state, count in rows}


def deliveries(history: History, count: int) -> list[tuple[bytes, dict[str, str]]]:
    """Signed pull_request deliveries: mostly `synchronize` of known PRs (new head), some `opened` of new ones."""
    start = END - timedelta(days=DAYS)
    made: list[tuple[bytes, dict[str, str]]] = []
    next_number = {repo: 100_000 for repo in history.repos}
    pulls = history.pulls
    for index in range(count):
        pull = pulls[(index * 7919) % len(pulls)]
        if index % 5 == 0:
            next_number[pull.repo] += 1
            number, action, ref = next_number[pull.repo], "opened", f"feat/bench-{index}"
        else:
            number, action, ref = pull.number, "synchronize", pull.head_ref
        created = start + timedelta(seconds=pull.created)
        event = make_pull_request_event(
            action,
            repo=pull.repo,
            number=number,
            author=pull.author,
            head_ref=ref,
            head_sha=f"{uuid.uuid4().hex}{index:08x}",
            additions=pull.additions,
            deletions=pull.deletions,
            created_at=created,
        )
        event["pull_request"]["updated_at"] = (created + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = json.dumps(event).encode()
        made.append((body, webhook_headers("pull_request", body, delivery=str(uuid.uuid4()), secret=SECRET)))
    return made


def concurrently(senders: int, work: Callable[[httpx.Client, int], list[float]], url: str) -> list[float]:
    """Run work(client, sender) in `senders` threads started together; all their latencies."""
    results: list[list[float]] = [[] for _ in range(senders)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(senders)

    def run(sender: int) -> None:
        try:
            with httpx.Client(base_url=url, timeout=120) as client:
                client.get("/healthz")  # connect before the start
                barrier.wait()
                results[sender] = work(client, sender)
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(s,)) for s in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [value for values in results for value in values]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="a PostgreSQL admin URL (a database is created and dropped)")
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--per-sender", type=int, default=40, help="deliveries each sender posts")
    parser.add_argument("--jobs", type=int, default=5_000, help="refresh jobs queued before the run")
    parser.add_argument("--prs", type=int, default=10_000)
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--records", type=int, default=300_000, help="usage records, 30%% of them not yet matched")
    parser.add_argument("--idle-worker", action="store_true", help="for comparison: no worker, nothing queued")
    args = parser.parse_args()

    total = args.senders * args.per_sender
    history = plan(prs=args.prs, repos=args.repos)
    bodies = deliveries(history, total + args.senders)
    warmup, timed = bodies[: args.senders], bodies[args.senders :]
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if args.database_url:
            database_url = stack.enter_context(postgres_database(args.database_url))
        else:
            database_url = f"sqlite:///{folder / 'webhooks.db'}"
        migrate(database_url)
        _counts, seconds = load(database_url, history, args.records, pending=0.3)
        queued = 0 if args.idle_worker else queue_work(database_url, history, args.jobs)
        print(f"history generated in {seconds:.1f} s; {queued:,} jobs queued for the worker")
        engine = sa.create_engine(database_url)
        env = {
            "TOKENTRAIL_RUN_WORKER": "false" if args.idle_worker else "true",
            "TOKENTRAIL_GITHUB_WEBHOOK_SECRET": SECRET,
            "TOKENTRAIL_DRY_RUN": "true",
            "TOKENTRAIL_COMMENT_DEBOUNCE_SECONDS": "0",
        }
        with server(database_url, folder / "server.log", env=env) as url:

            def post(client: httpx.Client, body: bytes, headers: dict[str, str]) -> float:
                started = time.perf_counter()
                response = client.post("/github/webhook", content=body, headers=headers)
                elapsed = time.perf_counter() - started
                if response.status_code != 202:
                    raise RuntimeError(f"webhook answered {response.status_code}: {response.text[:300]}")
                return elapsed

            acks: list[float] = []
            healthz: list[float] = []
            lock = threading.Lock()

            def send(client: httpx.Client, sender: int) -> list[float]:
                # Each sender alternates a delivery and a /healthz: both see the same load at the same moment
                # (the machine's, the worker's and the other senders'), whatever the load does over the run.
                mine, health = [], []
                for i in range(sender, total, args.senders):
                    mine.append(post(client, *timed[i]))
                    started = time.perf_counter()
                    client.get("/healthz").raise_for_status()
                    health.append(time.perf_counter() - started)
                with lock:
                    acks.extend(mine)
                    healthz.extend(health)
                return mine

            def warm(client: httpx.Client, sender: int) -> list[float]:
                return [post(client, *warmup[sender])]

            time.sleep(1.0)  # let the worker get going
            concurrently(args.senders, warm, url)
            before = job_counts(engine)
            started = time.perf_counter()
            concurrently(args.senders, send, url)
            webhook_seconds = time.perf_counter() - started
            after = job_counts(engine)
        engine.dispose()

    database = "postgresql" if args.database_url else "sqlite"
    done = after.get("done", 0) - before.get("done", 0)
    print(f"database {database}; {args.senders} senders × {args.per_sender} deliveries; jobs before: {before}")
    print(
        f"worker: {done} jobs done during the {webhook_seconds:.1f} s of deliveries and /healthz; "
        f"{after.get('queued', 0):,} still queued at the end"
    )
    if not after.get("queued") and not args.idle_worker:
        print("warning: the worker's queue ran dry: raise --jobs for a worker busy throughout")
    print(
        f"acknowledgements: p50 {ms(percentile(acks, 0.5))} ms, p99 {ms(percentile(acks, 0.99))} ms, "
        f"max {ms(max(acks))} ms; {total / webhook_seconds:,.0f} deliveries/s"
    )
    print(f"/healthz: p50 {ms(percentile(healthz, 0.5))} ms, p99 {ms(percentile(healthz, 0.99))} ms")
    p99, ceiling = percentile(acks, 0.99), percentile(healthz, 0.99)
    print(
        f"webhooks: p99 {ms(p99)} ms acknowledging {total:,} deliveries from {args.senders} senders "
        f"({'no worker' if args.idle_worker else 'busy worker'}); "
        f"/healthz p99 {ms(ceiling)} ms; ratio {p99 / ceiling:.1f}"
    )


if __name__ == "__main__":
    main()
