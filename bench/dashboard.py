"""Dashboard and outcome-report latency over a 30-day window on a large history, against /healthz in the same run.

    python bench/dashboard.py [--records 1000000] [--prs 50000] [--repos 200] [--requests 100]
    python bench/dashboard.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres [--records 10000000]
    python bench/dashboard.py --existing URL   # a database bench/summary.py --keep generated (same history seed)

It generates the same history as bench/summary.py (bench/history.py), starts `tokentrail serve` (worker off),
signs in to the dashboard with a token of each owner, and times from one keep-alive client, for the last 30 days
of the history (2026-10-02 to 2026-11-01), --requests each of:
- the org page            GET /dashboard/{owner}
- the repo page           GET /dashboard/{owner}/{repo}
- the org report API      GET /v1/orgs/{owner}/report
- the repo report API     GET /v1/repos/{owner}/{repo}/report
and GET /healthz as the ceiling (the HTTP stack alone, same server, same client).

The last line is `dashboard: p50 <a> ms, p99 <b> ms over <n> requests (<records> records); /healthz p99 <c> ms;
ratio <b/c>` over the four together; the lines above give each one.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import make_tokens, ms, percentile, server
from bench.history import OWNERS, add_history_arguments, history_database

WINDOW = {"since": "2026-10-02", "until": "2026-10-31"}  # 30 days, the history's last (it ends 2026-11-01)
PAGES = ("org page", "repo page", "org report", "repo report")


def _signed_in(url: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=120)
    response = client.post("/login", data={"token": token}, headers={"Origin": url})
    if response.status_code not in (302, 303):
        raise RuntimeError(f"sign-in: {response.status_code} {response.text[:300]}")
    return client


def measure(url: str, tokens: dict[str, str], targets: list[tuple[str, str]], warmup: int) -> dict[str, list[float]]:
    clients = {owner: _signed_in(url, token) for owner, token in tokens.items()}
    samples: dict[str, list[float]] = {name: [] for name in (*PAGES, "healthz")}
    try:
        for index, (owner, repo) in enumerate(targets):
            client = clients[owner]
            bearer = {"Authorization": f"Bearer {tokens[owner]}"}
            calls = {
                "org page": (f"/dashboard/{owner}", {}),
                "repo page": (f"/dashboard/{repo}", {}),
                "org report": (f"/v1/orgs/{owner}/report", bearer),
                "repo report": (f"/v1/repos/{repo}/report", bearer),
            }
            for name, (path, headers) in calls.items():
                started = time.perf_counter()
                response = client.get(path, params=WINDOW, headers=headers)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
                if index >= warmup:
                    samples[name].append(elapsed)
        for index in range(len(targets)):
            started = time.perf_counter()
            clients[OWNERS[0]].get("/healthz").raise_for_status()
            if index >= warmup:
                samples["healthz"].append(time.perf_counter() - started)
    finally:
        for client in clients.values():
            client.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_history_arguments(parser, requests=100, warmup=10)
    args = parser.parse_args()

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))  # the server's log
        database_url, history, records = history_database(stack, args, name="dashboard")
        tokens = make_tokens(database_url, OWNERS)
        rng = random.Random(args.seed + 2)
        repos = sorted({p.repo for p in history.pulls})
        targets = [
            (repo.split("/")[0], repo) for repo in (rng.choice(repos) for _ in range(args.requests + args.warmup))
        ]
        with server(database_url, folder / "server.log") as url:
            samples = measure(url, tokens, targets, args.warmup)

    database = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    print(f"database {database}; {records:,} usage records; {args.prs:,} PRs in {args.repos} repositories; "
          f"window {WINDOW['since']}..{WINDOW['until']}")  # fmt: skip
    for name in (*PAGES, "healthz"):
        values = samples[name]
        print(
            f"GET {name}: p50 {ms(percentile(values, 0.5))} ms, p99 {ms(percentile(values, 0.99))} ms, "
            f"max {ms(max(values))} ms over {len(values)} requests"
        )
    pages = [value for name in PAGES for value in samples[name]]
    p50, p99, ceiling = percentile(pages, 0.5), percentile(pages, 0.99), percentile(samples["healthz"], 0.99)
    print(
        f"dashboard: p50 {ms(p50)} ms, p99 {ms(p99)} ms over {len(pages)} requests ({records:,} records); "
        f"/healthz p99 {ms(ceiling)} ms; ratio {p99 / ceiling:.0f}"
    )


if __name__ == "__main__":
    main()
