"""The `tokentrail` command (DESIGN §9)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from app.logs import configure_logging
from app.settings import Settings, SettingsError, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        print(f"tokentrail: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_migrate(_args: argparse.Namespace) -> int:
    from app.db import migrate

    settings = _settings()
    migrate(settings.database_url)
    print("database is up to date")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.db import migrate
    from app.main import create_app

    settings = _settings()
    configure_logging(log_format=settings.log_format, level=settings.log_level)
    migrate(settings.database_url)
    mode = "dry-run (nothing is sent to GitHub)" if settings.is_dry_run else "GitHub App"
    if settings.dry_run is None and not settings.has_app_credentials:
        setup = f"{str(settings.public_url).rstrip('/')}/github/setup"
        mode = f"dry-run unless a GitHub App was created at {setup}"
    processes = f" · {args.workers} API processes, one runs the worker" if args.workers > 1 else ""
    print(
        f"tokentrail: serving on http://{args.host}:{args.port} · database {_redact(settings.database_url)} · {mode}"
        f"{processes}"
    )
    if args.workers > 1:
        # Each process builds its own app from the same environment; app.election picks the one whose
        # in-process worker runs.
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            workers=args.workers,
            host=args.host,
            port=args.port,
            log_config=None,
            access_log=False,
        )
        return 0
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None, access_log=False)
    return 0


def cmd_worker(_args: argparse.Namespace) -> int:
    import signal
    import threading

    from app.app_mode import AppMode
    from app.db import create_db_engine, make_sessionmaker, migrate
    from app.main import build_worker

    settings = _settings()
    configure_logging(log_format=settings.log_format, level=settings.log_level)
    migrate(settings.database_url)
    engine = create_db_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    worker = build_worker(settings, factory)
    stop, wake = threading.Event(), threading.Event()
    AppMode(worker=worker, factory=factory).start(stop)  # the App /github/setup stored, now or later
    settings = worker.settings

    def _stop(_signum: int, _frame: object) -> None:
        stop.set()
        wake.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    mode = "dry-run (nothing is sent to GitHub)" if settings.is_dry_run else "GitHub App"
    print(f"tokentrail: worker running · database {_redact(settings.database_url)} · {mode}")
    worker.run_forever(stop, wake)
    engine.dispose()
    return 0


def cmd_healthcheck(args: argparse.Namespace) -> int:
    from app.healthcheck import check_health

    settings = _settings()
    worker = args.worker or (settings.run_worker and not args.no_worker)
    problems = check_health(settings, worker=worker, max_age=args.max_age)
    for problem in problems:
        print(f"tokentrail healthcheck: {problem}", file=sys.stderr)
    if not problems:
        print("healthy: the database answers" + (" and the worker's heartbeat is fresh" if worker else ""))
    return 1 if problems else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from app.local.demo import PortBusy, run_demo

    configure_logging(log_format="text", level="WARNING")
    try:
        run_demo(host=args.host, port=args.port, database=Path(args.database), serve=not args.no_serve)
    except PortBusy as busy:
        print(f"tokentrail demo: {busy}", file=sys.stderr)
        return 1
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from app.db import create_db_engine, make_sessionmaker, migrate, session_scope
    from app.tokens import checked_owner, create_token

    try:
        checked_owner(args.owner)
    except ValueError as error:
        print(f"tokentrail: {error}", file=sys.stderr)
        return 2
    settings = _settings()
    new_file = _new_sqlite_file(settings.database_url)
    if new_file is not None:
        # A token in a database no server reads is refused later with no hint why: say where this one goes.
        print(
            f"tokentrail: creating a new database at {new_file} (TOKENTRAIL_DATABASE_URL names the server's)",
            file=sys.stderr,
        )
    migrate(settings.database_url)
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            token = create_token(session, owner=args.owner, name=args.name or "", share_upstream=args.share_upstream)
    except ValueError as error:
        print(f"tokentrail: {error}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    where = _redact(settings.database_url)
    print(
        f"Created a token for {args.owner.lower()} in {where}. Keep it secret: it is shown only once.", file=sys.stderr
    )
    print(token)
    return 0


def _stamp(moment: datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%dT%H:%MZ")


def cmd_token_list(_args: argparse.Namespace) -> int:
    from app.db import create_db_engine, make_sessionmaker, migrate, session_scope
    from app.tokens import list_tokens

    settings = _settings()
    migrate(settings.database_url)
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            tokens = list_tokens(session)
    finally:
        engine.dispose()
    rows = [["ID", "OWNER", "NAME", "CREATED", "LAST USED", "STATUS"]] + [
        [
            str(t.id),
            t.owner,
            t.name or "-",
            _stamp(t.created_at),
            _stamp(t.last_used_at),
            "active" if t.revoked_at is None else f"revoked {_stamp(t.revoked_at)}",
        ]
        for t in tokens
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if not tokens:
        print("No tokens yet: create one with `tokentrail token create --owner LOGIN`.", file=sys.stderr)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from app.db import create_db_engine, make_sessionmaker, migrate, session_scope
    from app.tokens import revoke_token

    settings = _settings()
    migrate(settings.database_url)
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            outcome = revoke_token(session, token_id=args.id)
    finally:
        engine.dispose()
    if outcome is None:
        print(f"tokentrail: there is no token with id {args.id} (see `tokentrail token list`)", file=sys.stderr)
        return 2
    token, ended = outcome
    sessions = f"{ended} dashboard session{'' if ended == 1 else 's'} ended"
    print(
        f"Revoked token {token.id} of {token.owner} ({token.name or 'no name'}); it is refused from now on; {sessions}."
    )
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    import os

    from app.local.agent_env import CheckoutError, build_env, read_checkout, render_json, render_sh

    try:
        checkout = read_checkout()
    except CheckoutError as error:
        print(f"tokentrail env: {error}", file=sys.stderr)
        return 2
    env = build_env(checkout, environ=os.environ, server=args.server)
    for warning in env.warnings:
        print(f"tokentrail env: warning: {warning}", file=sys.stderr)
    sys.stdout.write(render_json(env) if args.format == "json" else render_sh(env))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from app.local.importer import run

    return run(args)


def _new_sqlite_file(url: str) -> Path | None:
    """The SQLite file `url` names when it does not exist yet (connecting would create it)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database).resolve()
    return None if path.exists() else path


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://…@{rest.rsplit('@', 1)[1]}"
    return url


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("tokentrail")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_listen_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokentrail", description="Links AI spend to pull requests.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="migrate, then run the API (and the worker)")
    add_listen_arguments(serve)
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="API processes sharing the port (default: %(default)s); one of them runs the worker",
    )
    serve.set_defaults(func=cmd_serve)

    worker = commands.add_parser("worker", help="run only the worker (jobs: matching, comments, check runs)")
    worker.set_defaults(func=cmd_worker)

    demo = commands.add_parser("demo", help="a complete local scenario: seeded history, dry-run, SQLite")
    add_listen_arguments(demo)
    demo.add_argument("--database", default="tokentrail-demo.db", help="SQLite file, recreated at each run")
    demo.add_argument("--no-serve", action="store_true", help="seed, print, and exit (for scripts and tests)")
    demo.set_defaults(func=cmd_demo)

    health = commands.add_parser(
        "healthcheck",
        help="exit 0 when the database answers and, where a worker runs, its heartbeat is fresh (for HEALTHCHECK)",
    )
    role = health.add_mutually_exclusive_group()
    role.add_argument(
        "--worker", action="store_true", help="require a worker's heartbeat (default: when TOKENTRAIL_RUN_WORKER)"
    )
    role.add_argument("--no-worker", action="store_true", help="check only the database (an API-only replica)")
    health.add_argument(
        "--max-age", type=float, default=120.0, help="seconds a heartbeat stays fresh (default: %(default)s)"
    )
    health.set_defaults(func=cmd_healthcheck)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=cmd_migrate)

    token = commands.add_parser("token", help="manage API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_commands.add_parser("create", help="create a token; prints it alone on the last line")
    create.add_argument("--owner", required=True, help="GitHub login (user or organisation) the token acts for")
    create.add_argument("--name", help="a label to recognise the token by")
    create.add_argument(
        "--share-upstream",
        action="store_true",
        help="let usage sent with this token count on another owner's pull requests (your fork's PRs upstream)",
    )
    create.set_defaults(func=cmd_token_create)
    listing = token_commands.add_parser("list", help="list the tokens: id, owner, name, created, last used, status")
    listing.set_defaults(func=cmd_token_list)
    revoke = token_commands.add_parser("revoke", help="revoke a token: refused everywhere, its sessions end")
    revoke.add_argument("id", type=int, metavar="ID", help="the token's id, as `token list` shows it")
    revoke.set_defaults(func=cmd_token_revoke)

    env = commands.add_parser("env", help='print the attribution exports for this checkout: eval "$(tokentrail env)"')
    env.add_argument("--format", choices=["sh", "json"], default="sh")
    env.add_argument("--server", help="Tokentrail server: also export Claude Code's OTLP logs exporter settings")
    env.set_defaults(func=cmd_env)

    from app.local.importer import add_arguments as add_import_arguments

    importer = commands.add_parser(
        "import", help="upload local agent transcripts (Claude Code, Codex, Gemini CLI, Copilot's OTel file)"
    )
    import_sources = importer.add_subparsers(dest="import_source", required=True, metavar="SOURCE")
    agents = (
        ("claude-code", "Claude Code transcripts"),
        ("codex", "Codex rollouts"),
        ("gemini", "Gemini CLI chats"),
        ("copilot", "the file Copilot's OTel file exporter wrote"),
    )
    for source, what in agents:
        source_parser = import_sources.add_parser(source, help=f"import {what}")
        add_import_arguments(source_parser, source)
        source_parser.set_defaults(func=cmd_import)

    from app.retention_cli import add_arguments as add_prune_arguments

    add_prune_arguments(commands)

    from app.local.hooks_cli import add_arguments as add_hooks_arguments

    add_hooks_arguments(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
