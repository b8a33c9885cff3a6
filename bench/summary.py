"""PR summary and budget latency on a large history, against a bare indexed SELECT on the same database.

    python bench/summary.py [--records 1000000] [--prs 50000] [--repos 200] [--requests 1000]
    python bench/summary.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres [--records 10000000]

It creates a fresh database (a SQLite file, or a new PostgreSQL database next to the admin URL's, dropped at the
end), migrates it, and writes a realistic history straight into it (bench/history.py: ~200 repositories, ~50,000
PRs with commits, pushes and reviews, usage already matched plus some unmatched). Then it starts `tokentrail
serve` (worker off) and times, from one keep-alive client, GET /v1/repos/{o}/{r}/pulls/{n} and …/budget for
--requests random PRs each, after a short warm-up. In the same run it times the ceilings: GET /healthz over HTTP
(the HTTP stack alone) and, in-process, a bare indexed SELECT of one pull_requests row by (repo, number).

The last line is `summary: p50 <a> ms, p99 <b> ms over <n> requests (<records> records); bare indexed SELECT p99
<c> ms; ratio <b/c>` over both endpoints together; the lines above give each endpoint and /healthz.

--keep leaves the database in place (and prints its URL); --existing URL measures an already generated one
(to try an index by hand and measure again without regenerating).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.db import create_db_engine
from bench.common import make_tokens, ms, percentile, server
from bench.history import OWNERS, add_history_arguments, history_database


def timed(samples: list[float], call: Callable[[], httpx.Response]) -> httpx.Response:
    started = time.perf_counter()
    result = call()
    samples.append(time.perf_counter() - started)
    return result


def measure_http(
    url: str, tokens: dict[str, str], targets: list[tuple[str, int]], warmup: list[tuple[str, int]]
) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"summary": [], "budget": [], "healthz": []}
    records_seen = 0
    with httpx.Client(base_url=url, timeout=60) as client:

        def get(path: str, owner: str) -> httpx.Response:
            response = client.get(path, headers={"Authorization": f"Bearer {tokens[owner]}"})
            if response.status_code != 200:
                raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
            return response

        for repo, number in warmup:
            owner = repo.split("/")[0]
            get(f"/v1/repos/{repo}/pulls/{number}", owner)
            get(f"/v1/repos/{repo}/pulls/{number}/budget", owner)
            client.get("/healthz")
        for repo, number in targets:
            owner = repo.split("/")[0]
            path = f"/v1/repos/{repo}/pulls/{number}"
            response = timed(samples["summary"], partial(get, path, owner))
            records_seen += int(response.json()["usage"]["records"])
            timed(samples["budget"], partial(get, path + "/budget", owner))
        for _ in targets:
            timed(samples["healthz"], lambda: client.get("/healthz").raise_for_status())
    print(
        f"the {len(targets)} PRs asked for hold {records_seen:,} usage records ({records_seen / len(targets):.0f} each)"
    )
    return samples


def measure_bare_select(database_url: str, targets: list[tuple[str, int]]) -> list[float]:
    """One row by an index, in-process, through the app's own engine (same pragmas and driver), autocommit."""
    engine = create_db_engine(database_url).execution_options(isolation_level="AUTOCOMMIT")
    query = sa.text(
        "SELECT id, title, head_sha, additions, deletions FROM pull_requests WHERE repo = :r AND number = :n"
    )
    samples: list[float] = []
    with engine.connect() as connection:
        for repo, number in targets[:100]:  # warm-up
            connection.execute(query, {"r": repo, "n": number}).first()
        for repo, number in targets:
            started = time.perf_counter()
            row = connection.execute(query, {"r": repo, "n": number}).first()
            samples.append(time.perf_counter() - started)
            if row is None:
                raise RuntimeError(f"{repo}#{number} is missing")
    engine.dispose()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_history_arguments(parser, requests=1_000, warmup=100)
    args = parser.parse_args()

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))  # the server's log
        database_url, history, records = history_database(stack, args, name="summary")
        tokens = make_tokens(database_url, OWNERS)
        rng = random.Random(args.seed + 1)
        keys = [(p.repo, p.number) for p in history.pulls]
        targets = [rng.choice(keys) for _ in range(args.requests)]
        warmup = [rng.choice(keys) for _ in range(args.warmup)]
        with server(database_url, folder / "server.log") as url:
            samples = measure_http(url, tokens, targets, warmup)
        bare = measure_bare_select(database_url, targets)

    database = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    print(f"database {database}; {records:,} usage records; {args.prs:,} PRs in {args.repos} repositories")
    for name in ("summary", "budget", "healthz"):
        values = samples[name]
        print(
            f"GET {name}: p50 {ms(percentile(values, 0.5))} ms, p99 {ms(percentile(values, 0.99))} ms, "
            f"max {ms(max(values))} ms over {len(values)} requests"
        )
    print(f"bare indexed SELECT (in-process): p50 {ms(percentile(bare, 0.5))} ms, p99 {ms(percentile(bare, 0.99))} ms")
    both = samples["summary"] + samples["budget"]
    p50, p99, ceiling = percentile(both, 0.5), percentile(both, 0.99), percentile(bare, 0.99)
    print(
        f"summary: p50 {ms(p50)} ms, p99 {ms(p99)} ms over {len(both)} requests ({records:,} records); "
        f"bare indexed SELECT p99 {ms(ceiling)} ms; ratio {p99 / ceiling:.0f}"
    )


if __name__ == "__main__":
    main()
