"""A realistic Tokentrail history written straight into a migrated database (bench/summary.py, bench/webhooks.py).

Repositories of a few organisations with a skewed number of PRs each (a few busy repositories, a long tail);
PRs merged, closed or still open, with commits, pushes and reviews; usage records already matched the way the
worker matches them (pr_repo, pr_number, match_rule, matched_at) on a heavy-tailed spread over the PRs (many
small PRs, a few agent-heavy ones, some without any AI spend), plus unmatched records (default branch, branches
without a PR) and a few not yet examined. Usage rows arrive in time order across all PRs, so one PR's records are
scattered through the table as they are in production.

Loading: the usage table's plain indexes are dropped and recreated after the load (faster than maintaining
them row by row; the schema ends up exactly as migrated). SQLite: executemany in large transactions; PostgreSQL:
COPY, streamed, then ANALYZE (autovacuum would do it in production).
"""

from __future__ import annotations

import argparse
import math
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

OWNERS = ("acme", "globex", "initech", "umbrella")
END = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 180
# (provider, model, nano-USD per token: input, cache read, cache write, output); None prices: unpriced
MODELS_BY_AGENT: dict[str, list[tuple[str, str, tuple[int, int, int, int] | None]]] = {
    "claude-code": [
        ("anthropic", "claude-sonnet-4-5", (3000, 300, 3750, 15000)),
        ("anthropic", "claude-sonnet-4-5", (3000, 300, 3750, 15000)),
        ("anthropic", "claude-haiku-4-5", (1000, 100, 1250, 5000)),
        ("anthropic", "claude-opus-4-1", (15000, 1500, 18750, 75000)),
    ],
    "codex": [
        ("openai", "gpt-5", (1250, 125, 0, 10000)),
        ("openai", "gpt-5-codex", (1250, 125, 0, 10000)),
        ("openai", "gpt-5-mini", (250, 25, 0, 2000)),
    ],
    "litellm-agent": [
        ("openai", "gpt-5", (1250, 125, 0, 10000)),
        ("google", "gemini-2.5-pro", (1250, 310, 0, 10000)),
        ("anthropic", "claude-sonnet-4-5", (3000, 300, 3750, 15000)),
        ("internal", "acme-coder-v2", None),
    ],
}
SOURCE_OF_AGENT = {"claude-code": "claude-code", "codex": "codex", "litellm-agent": "api"}
AGENTS = list(MODELS_BY_AGENT)
WORDS = ["cache", "auth", "billing", "search", "export", "retry", "parser", "queue", "login", "webhook"]
WORDS += ["metrics", "schema", "api", "cli", "docs", "ui"]
CONFIGS = [
    None,
    "budget:\n  max_cost_per_pr: 50\n  max_cost_per_changed_line: 0.25\n",
    "budget:\n  max_cost_per_pr: 20\n  warn_at: 0.7\n  exempt_labels: [skip-budget]\ncomment:\n  min_cost: 0.05\n",
    "budget:\n  max_tokens_per_pr: 50000000\n",
]

USAGE_COLUMNS = (
    "source",
    "record_id",
    "timestamp",
    "provider",
    "model",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_nanousd",
    "cost_reported",
    "owner",
    "repo",
    "branch",
    "commit",
    "pr",
    "actor",
    "agent",
    "session_id",
    "received_at",
    "pr_repo",
    "pr_number",
    "match_rule",
    "matched_at",
)
PULL_COLUMNS = (
    "repo",
    "number",
    "title",
    "author",
    "state",
    "merged",
    "draft",
    "head_repo",
    "head_ref",
    "head_sha",
    "base_ref",
    "additions",
    "deletions",
    "changed_files",
    "labels",
    "html_url",
    "created_at",
    "closed_at",
    "merged_at",
    "updated_at",
)


@dataclass(slots=True)
class Pull:
    repo: str
    owner: str
    number: int
    author: str
    head_ref: str
    shas: list[str]
    created: float  # seconds since END - DAYS
    closed: float | None
    merged: bool
    additions: int
    deletions: int
    weight: float  # share of the AI spend
    agent: str
    sessions: int = 1
    reviews: list[tuple[str, str, float]] = field(default_factory=list)
    pushes: list[tuple[str, float]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, int]:
        return self.repo, self.number


@dataclass
class History:
    repos: list[str]
    repo_weights: list[float]
    pulls: list[Pull]
    configs: dict[str, str | None]


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


def plan(*, prs: int, repos: int, seed: int = 7) -> History:
    """Repositories and pull requests (small: held in memory); usage is streamed from it later."""
    rng = random.Random(seed)
    names = [f"{OWNERS[i % len(OWNERS)]}/{rng.choice(WORDS)}-service-{i}" for i in range(repos)]
    # A few busy repositories and a long tail (Zipf-like), every repository with at least one PR.
    weights = [1 / (rank + 1) ** 0.8 for rank in range(repos)]
    scale = (prs - repos) / sum(weights)
    counts = [1 + int(w * scale) for w in weights]
    for i in range(prs - sum(counts)):
        counts[i % repos] += 1
    span = DAYS * 86_400
    pulls: list[Pull] = []
    for repo, count in zip(names, counts, strict=True):
        owner = repo.split("/")[0]
        starts = sorted(rng.random() * (span - 3_600) for _ in range(count))
        for number, created in enumerate(starts, start=1):
            recent = created > span - 14 * 86_400
            roll = rng.random()
            state = ("open" if roll < 0.6 else "merged") if recent else ("merged" if roll < 0.85 else "closed")
            if roll > 0.97 and not recent:
                state = "open"  # a stale one
            duration = min(math.exp(rng.gauss(3.0, 1.2)) * 3_600, 30 * 86_400)
            closed = None if state == "open" or created + duration > span else created + duration
            if closed is None:
                state = "open"
            additions = max(1, int(math.exp(rng.gauss(4.5, 1.5))))
            shas = [_hex(rng) for _ in range(1 + min(int(rng.expovariate(1 / 4)), 40))]
            end = closed if closed is not None else span
            pull = Pull(
                repo=repo,
                owner=owner,
                number=number,
                author=f"dev{rng.randint(1, 1_000)}",
                head_ref=f"{rng.choice(['feat', 'fix', 'chore'])}/{rng.choice(WORDS)}-{number}",
                shas=shas,
                created=created,
                closed=closed,
                merged=state == "merged",
                additions=additions,
                deletions=int(additions * rng.random() * 0.6),
                # 20% of PRs had no AI spend; the rest a heavy-tailed share of it.
                weight=0.0 if rng.random() < 0.2 else math.exp(rng.gauss(0.0, 1.3)),
                agent=rng.choices(AGENTS, weights=(55, 25, 20))[0],
            )
            pull.sessions = 1 + int(pull.weight * 2)
            pushes = min(len(shas), 1 + int(rng.expovariate(1 / 2)))
            pull.pushes = sorted(
                ((sha, created + (end - created) * (i / pushes)) for i, sha in enumerate(shas[-pushes:])),
                key=lambda p: p[1],
            )
            for _ in range(rng.choice((0, 1, 1, 1, 2, 2, 3, 4))):
                review = rng.choices(("approved", "changes_requested", "commented"), weights=(6, 2, 2))[0]
                pull.reviews.append((f"dev{rng.randint(1, 1_000)}", review, created + (end - created) * rng.random()))
            pulls.append(pull)
    configs = {repo: rng.choice(CONFIGS) for repo in names}
    return History(repos=names, repo_weights=weights, pulls=pulls, configs=configs)


Format = Callable[[float], str]


def timestamp_format(dialect: str) -> Format:
    """Seconds since the start of the history → the text the database stores (SQLite: SQLAlchemy's own format)."""
    base = END - timedelta(days=DAYS)
    suffix = "+00" if dialect == "postgresql" else ""
    minutes: dict[int, str] = {}  # "YYYY-MM-DD HH:MM:" by minute: formatting is most of the generation's time

    def fmt(seconds: float) -> str:
        whole = int(seconds)
        minute, second = divmod(whole, 60)
        prefix = minutes.get(minute)
        if prefix is None:
            prefix = minutes[minute] = (base + timedelta(minutes=minute)).strftime("%Y-%m-%d %H:%M:")
        return f"{prefix}{second:02d}.{int((seconds - whole) * 1e6):06d}{suffix}"

    return fmt


def small_tables(history: History, fmt: Format) -> dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]]:
    now = fmt(DAYS * 86_400)
    installations = [(i + 1, owner, "Organization", False, False, now) for i, owner in enumerate(OWNERS)]
    repositories = [
        (repo, OWNERS.index(repo.split("/")[0]) + 1, "main", history.configs[repo], True, False, now)
        for repo in history.repos
    ]
    pulls: list[tuple[Any, ...]] = []
    commits: list[tuple[Any, ...]] = []
    pushes: list[tuple[Any, ...]] = []
    reviews: list[tuple[Any, ...]] = []
    review_id = 1
    for p in history.pulls:
        closed = None if p.closed is None else fmt(p.closed)
        pulls.append(
            (
                p.repo,
                p.number,
                f"{p.head_ref.split('/')[0].capitalize()}: {p.head_ref.split('/')[1]}",
                p.author,
                "open" if p.closed is None else "closed",
                p.merged,
                False,
                p.repo,
                p.head_ref,
                p.shas[-1],
                "main",
                p.additions,
                p.deletions,
                max(1, int(math.sqrt(p.additions + p.deletions))),
                "[]",
                f"https://github.com/{p.repo}/pull/{p.number}",
                fmt(p.created),
                closed,
                closed if p.merged else None,
                closed or fmt(p.created),
            )
        )
        commits.extend((p.repo, p.number, sha) for sha in p.shas)
        pushes.extend((p.repo, p.number, sha, fmt(at)) for sha, at in p.pushes)
        for reviewer, state, at in p.reviews:
            reviews.append((p.repo, p.number, review_id, reviewer, state, fmt(at)))
            review_id += 1
    return {
        "installations": (("id", "account_login", "account_type", "suspended", "deleted", "updated_at"), installations),
        "repositories": (
            (
                "full_name",
                "installation_id",
                "default_branch",
                "config_text",
                "config_fetched",
                "removed",
                "updated_at",
            ),
            repositories,
        ),
        "pull_requests": (PULL_COLUMNS, pulls),
        "pull_request_commits": (("repo", "number", "sha"), commits),
        "pushes": (("repo", "number", "sha", "pushed_at"), pushes),
        "reviews": (("repo", "number", "review_id", "reviewer", "state", "submitted_at"), reviews),
    }


def usage_rows(
    history: History, count: int, fmt: Format, *, seed: int = 11, pending: float = 0.002, chunk: int = 100_000
) -> Iterator[list[tuple[Any, ...]]]:
    """`count` usage rows in chunks; 90% matched to a PR, the rest unmatched, `pending` not examined yet."""
    rng = random.Random(seed)
    spending = [p for p in history.pulls if p.weight > 0]
    cumulative = list(_accumulate(p.weight for p in spending))
    repo_cumulative = list(_accumulate(history.repo_weights))
    owners = {repo: repo.split("/")[0] for repo in history.repos}
    span = DAYS * 86_400.0
    random_ = rng.random
    made = 0
    while made < count:
        size = min(chunk, count - made)
        picks = rng.choices(spending, cum_weights=cumulative, k=size)
        rows: list[tuple[Any, ...]] = []
        for index, pull in enumerate(picks):
            number = made + index
            matched = random_() < 0.9
            agent = pull.agent if random_() < 0.8 else AGENTS[int(random_() * 3)]
            models = MODELS_BY_AGENT[agent]
            provider, model, prices = models[int(random_() * len(models))]
            input_tokens = 50 + int(random_() * 8_000)
            cache_read = int(random_() * 60_000)
            cache_write = int(random_() * 5_000) if random_() < 0.25 else 0
            output = 20 + int(random_() * 3_000)
            cost = (
                None
                if prices is None
                else input_tokens * prices[0] + cache_read * prices[1] + cache_write * prices[2] + output * prices[3]
            )
            if matched:
                repo, branch = pull.repo, pull.head_ref
                end = pull.closed if pull.closed is not None else span
                at = max(0.0, pull.created - 43_200 * random_()) + (end - pull.created) * random_()
                commit = pull.shas[int(random_() * len(pull.shas))] if random_() < 0.9 else None
                pr = pull.number if random_() < 0.3 else None
                rule = "explicit" if pr is not None else ("commit" if commit and random_() < 0.35 else "branch")
                actor = f"{pull.author}@{pull.owner}.test"
                session = f"{pull.repo}#{pull.number}/{int(random_() * pull.sessions)}"
                pr_repo, pr_number = pull.repo, pull.number
            else:
                repo = history.repos[_bisect(repo_cumulative, random_() * repo_cumulative[-1])]
                branch = "main" if random_() < 0.6 else f"wip/{WORDS[int(random_() * len(WORDS))]}-{number % 997}"
                at = random_() * span
                commit, pr, rule, pr_repo, pr_number = None, None, None, None, None
                actor = f"dev{1 + int(random_() * 1_000)}@{owners[repo]}.test"
                session = f"{repo}@{branch}/{number // 500}"
            received = at + 1 + random_() * 30
            examined = None if random_() < pending else fmt(received + 5)
            if examined is None:
                pr_repo, pr_number, rule = None, None, None
            rows.append(
                (
                    SOURCE_OF_AGENT[agent],
                    f"msg_{number:012x}",
                    fmt(at),
                    provider,
                    model,
                    input_tokens,
                    cache_read,
                    cache_write,
                    output,
                    0,
                    cost,
                    False,
                    owners[repo],
                    repo,
                    branch,
                    commit,
                    pr,
                    actor,
                    agent,
                    session,
                    fmt(received),
                    pr_repo,
                    pr_number,
                    rule,
                    examined,
                )
            )
        rows.sort(key=lambda row: row[2])  # arrival in time order within a chunk
        made += size
        yield rows


def _accumulate(values: Any) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def _bisect(cumulative: list[float], value: float) -> int:
    low, high = 0, len(cumulative) - 1
    while low < high:
        middle = (low + high) // 2
        if cumulative[middle] < value:
            low = middle + 1
        else:
            high = middle
    return low


# --- loading ------------------------------------------------------------------------------------------------------


def _quoted(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


# The per-PR spend rollup the worker keeps on every refresh (the same statement as migration 0004's backfill).
ROLLUP = """
UPDATE pull_requests SET
  spend_nanousd = COALESCE((SELECT SUM(u.cost_nanousd) FROM usage u
                            WHERE u.pr_repo = pull_requests.repo AND u.pr_number = pull_requests.number), 0),
  spend_records = (SELECT COUNT(*) FROM usage u
                   WHERE u.pr_repo = pull_requests.repo AND u.pr_number = pull_requests.number)
"""


def load_sqlite(path: str, history: History, records: int, *, pending: float = 0.002) -> dict[str, int]:
    fmt = timestamp_format("sqlite")
    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=OFF", "cache_size=-262144"):
        connection.execute(f"PRAGMA {pragma}")
    counts: dict[str, int] = {}
    for table, (columns, rows) in small_tables(history, fmt).items():
        connection.execute("BEGIN")
        connection.executemany(
            f"INSERT INTO {table} ({_quoted(columns)}) VALUES ({', '.join('?' * len(columns))})", rows
        )
        connection.execute("COMMIT")
        counts[table] = len(rows)
    indexes = connection.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage' AND sql IS NOT NULL"
    ).fetchall()
    for name, _sql in indexes:
        connection.execute(f'DROP INDEX "{name}"')
    insert = f"INSERT INTO usage ({_quoted(USAGE_COLUMNS)}) VALUES ({', '.join('?' * len(USAGE_COLUMNS))})"
    for rows in usage_rows(history, records, fmt, pending=pending, chunk=200_000):
        connection.execute("BEGIN")
        connection.executemany(insert, rows)
        connection.execute("COMMIT")
    counts["usage"] = records
    for _name, sql in indexes:
        connection.execute(sql)
    connection.execute(ROLLUP)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return counts


def load_postgres(url: str, history: History, records: int, *, pending: float = 0.002) -> dict[str, int]:
    import psycopg

    fmt = timestamp_format("postgresql")
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    counts: dict[str, int] = {}
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("SET maintenance_work_mem = '1GB'")
        connection.execute("SET synchronous_commit = off")
        for table, (columns, rows) in small_tables(history, fmt).items():
            with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({_quoted(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            counts[table] = len(rows)
        # Plain indexes only: those behind a constraint (the primary key, unique constraints) stay.
        indexes = connection.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'usage' AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
        ).fetchall()
        for name, _definition in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        with connection.cursor() as cursor, cursor.copy(f"COPY usage ({_quoted(USAGE_COLUMNS)}) FROM STDIN") as copy:
            for rows in usage_rows(history, records, fmt, pending=pending):
                for row in rows:
                    copy.write_row(row)
        counts["usage"] = records
        for _name, definition in indexes:
            connection.execute(definition)
        connection.execute(ROLLUP)
        connection.execute("VACUUM ANALYZE")
    return counts


def load(database_url: str, history: History, records: int, *, pending: float = 0.002) -> tuple[dict[str, int], float]:
    """Fill a migrated database; returns the row counts and the seconds it took."""
    from app import daily_rollup
    from app.db import create_db_engine
    from app.pull_rollup import rebuild_all

    started = time.perf_counter()
    engine = create_db_engine(database_url)
    with engine.begin() as connection:
        daily_rollup.drop_triggers(connection)  # the bulk load goes without them: the rollup is rebuilt after it
    if database_url.startswith("sqlite"):
        counts = load_sqlite(database_url.split("///", 1)[1], history, records, pending=pending)
    else:
        counts = load_postgres(database_url, history, records, pending=pending)
    if not database_url.startswith("sqlite"):
        from app.partitions import adopt_default

        with engine.begin() as connection:  # the months of the history get their partitions, every record its key
            adopt_default(connection)
            connection.exec_driver_sql(
                'INSERT INTO usage_keys (owner, source, record_id, usage_pk, "timestamp") '
                'SELECT owner, source, record_id, pk, "timestamp" FROM usage ON CONFLICT DO NOTHING'
            )
    # The per-PR rollup groups the worker keeps through matching (app.pull_rollup) and the daily rollup the
    # triggers keep (app.daily_rollup), each in one set-based pass.
    with engine.begin() as connection:
        rebuild_all(connection)
        daily_rollup.rebuild(connection)
        daily_rollup.create_triggers(connection)
    if not database_url.startswith("sqlite"):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE usage_days")
            connection.exec_driver_sql("VACUUM ANALYZE pull_spend")
            connection.exec_driver_sql("VACUUM ANALYZE pull_requests")
    else:
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    counts["pull_spend"] = _count(database_url, "pull_spend")
    counts["usage_days"] = _count(database_url, "usage_days")
    return counts, time.perf_counter() - started


def _count(database_url: str, table: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        value = int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    engine.dispose()
    return value


def add_history_arguments(parser: argparse.ArgumentParser, *, requests: int, warmup: int) -> None:
    """The options of the benchmarks that read a generated history (bench/summary.py, bench/dashboard.py)."""
    parser.add_argument("--database-url", help="a PostgreSQL admin URL (a database is created and dropped)")
    parser.add_argument("--records", type=int, help="usage records (default 1,000,000 on SQLite, 10,000,000 on PG)")
    parser.add_argument("--prs", type=int, default=50_000)
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--requests", type=int, default=requests, help="requests per endpoint")
    parser.add_argument("--warmup", type=int, default=warmup, help="requests per endpoint before timing")
    parser.add_argument("--keep", action="store_true", help="leave the generated database in place")
    parser.add_argument("--existing", help="measure this already generated database (no generation)")
    parser.add_argument("--seed", type=int, default=7)


def history_database(stack: ExitStack, args: argparse.Namespace, *, name: str) -> tuple[str, History, int]:
    """(database URL, history, usage records): the --existing database, or a new one generated and migrated
    (removed with `stack` unless --keep)."""
    from app.db import migrate
    from bench.common import postgres_database

    postgres = bool(args.database_url) or bool(args.existing and args.existing.startswith("postgresql"))
    records: int = args.records or (10_000_000 if postgres else 1_000_000)
    history = plan(prs=args.prs, repos=args.repos, seed=args.seed)
    if args.existing:
        engine = sa.create_engine(args.existing)
        with engine.connect() as connection:
            records = int(connection.execute(sa.text("SELECT count(*) FROM usage")).scalar_one())
        engine.dispose()
        print(f"existing database {args.existing}: {records:,} usage records")
        return args.existing, history, records
    if args.database_url:
        database_url = stack.enter_context(postgres_database(args.database_url, keep=args.keep))
    else:
        folder = Path(tempfile.mkdtemp(prefix=f"tokentrail-{name}-")) if args.keep else None
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        database_url = f"sqlite:///{folder / f'{name}.db'}"
    migrate(database_url)
    counts, seconds = load(database_url, history, records)
    shown = ", ".join(f"{table} {count:,}" for table, count in counts.items())
    print(f"generated in {seconds:.1f} s ({records / seconds:,.0f} usage rows/s): {shown}")
    if args.keep:
        print(f"kept: {database_url}")
    return database_url, history, records
