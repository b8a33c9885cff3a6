"""`tokentrail prune --before YYYY-MM-DD [--dry-run]`: the command of app.retention."""

from __future__ import annotations

import argparse
from datetime import date

PROG = "tokentrail prune"


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: write YYYY-MM-DD, e.g. 2026-01-01") from None


def add_arguments(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prune = commands.add_parser(
        "prune",
        help="remove the usage records before a date, server-wide; PR figures and dedupe keys are kept",
    )
    prune.add_argument("--before", required=True, type=_day, metavar="YYYY-MM-DD", help="prune records before this day")
    prune.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    prune.set_defaults(func=cmd_prune)


def cmd_prune(args: argparse.Namespace) -> int:
    from app.cli import _redact, _settings
    from app.db import create_db_engine, migrate
    from app.retention import prune

    settings = _settings()
    migrate(settings.database_url)
    engine = create_db_engine(settings.database_url)
    try:
        pruned = prune(engine, args.before, dry_run=args.dry_run)
    finally:
        engine.dispose()
    cutoff = pruned.cutoff.date()
    if cutoff != args.before:
        print(f"{PROG}: {args.before} is not the first of a month: only whole months are pruned, before {cutoff}")
    verb = "would remove" if args.dry_run else "removed"
    months = f" ({len(pruned.months)} monthly partitions: {', '.join(pruned.months)})" if pruned.months else ""
    pulls = len(pruned.pulls)
    print(
        f"{PROG}: {verb} {pruned.records} usage records before {cutoff}{months} from "
        f"{_redact(settings.database_url)}; {'would carry' if args.dry_run else 'carried'} the figures of {pulls} "
        f"pull request{'' if pulls == 1 else 's'}"
    )
    return 0
