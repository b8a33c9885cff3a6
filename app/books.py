"""A scope's books in SQL: which usage an owner or a repository counts, and the sums over it. Shell (SQLAlchemy
Core, portable between SQLite and PostgreSQL); the analytics and the read API build their queries from these.

A repository's books are the usage its pull requests count (`pr_repo`), plus its own usage that counts on none of
them: unmatched, or matched to another owner's PR without that owner's consent (DESIGN §5). An owner's are the
sum over its repositories, so the figures always add up. Records set aside (`match_error`) count nowhere.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.exact_sum import exact_sum
from app.money import from_nanousd
from app.outcome_report import Period, Scope, Spend
from app.tables import PULLS, REPOSITORIES, USAGE


def usd(nanousd: Any) -> Decimal:
    return from_nanousd(int(nanousd or 0)) or Decimal(0)


def spend_columns() -> list[Any]:
    return [
        sa.func.coalesce(exact_sum(USAGE.c.cost_nanousd), 0).label("cost"),
        sa.func.count().label("records"),
        sa.func.count().filter(USAGE.c.cost_nanousd.is_(None)).label("unpriced"),
    ]


def spend_of(row: Any) -> Spend:
    return Spend(usd(row.cost), int(row.records), int(row.unpriced))


def _owner_pull_repos(owner: str) -> Any:
    return sa.select(PULLS.c.repo).where(PULLS.c.repo.startswith(owner + "/", autoescape=True)).distinct()


def usage_scope(scope: Scope) -> Any:
    """The usage rows a scope's books hold (see the module docstring)."""
    private = USAGE.c.pr_private.is_(True)
    own = sa.or_(USAGE.c.pr_number.is_(None), private)
    if scope.repo is not None:
        books = sa.or_(sa.and_(USAGE.c.pr_repo == scope.repo, ~private), sa.and_(USAGE.c.repo == scope.repo, own))
    else:
        books = sa.or_(
            sa.and_(USAGE.c.pr_repo.in_(_owner_pull_repos(scope.owner)), ~private),
            sa.and_(USAGE.c.owner == scope.owner, own),
        )
    return sa.and_(books, USAGE.c.match_error.is_(None))


def pull_scope(scope: Scope) -> Any:
    if scope.repo is not None:
        return PULLS.c.repo == scope.repo
    return PULLS.c.repo.startswith(scope.owner + "/", autoescape=True)


def window(period: Period) -> Any:
    return sa.and_(USAGE.c.timestamp >= period.since, USAGE.c.timestamp < period.until)


def usage_day(session: Session) -> Any:
    """The UTC calendar day of a record: SQLite stores UTC text, PostgreSQL needs the zone named (no bound
    parameters: PostgreSQL would not see the SELECT and GROUP BY expressions as the same one)."""
    if session.get_bind().dialect.name == "sqlite":
        return sa.func.date(USAGE.c.timestamp)
    return sa.cast(sa.func.timezone(sa.literal_column("'UTC'"), USAGE.c.timestamp), sa.Date)


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def has_pulls(session: Session, scope: Scope) -> bool:
    """Whether any pull request of the scope is known: none means GitHub is not connected to it yet."""
    return session.execute(sa.select(sa.exists().where(pull_scope(scope)))).scalar_one() is True


def is_known_repo(session: Session, repo: str) -> bool:
    """Whether Tokentrail has heard of `repo` at all: from GitHub (installed, or a pull request) or from usage.
    Unmatched usage of any age counts, so a repository seen only in old usage still has its page."""
    known = (
        sa.exists().where(REPOSITORIES.c.full_name == repo, REPOSITORIES.c.removed.is_(False)),
        sa.exists().where(PULLS.c.repo == repo),
        sa.exists().where(USAGE.c.repo == repo, USAGE.c.owner == repo.split("/", 1)[0]),  # its owner's own usage
    )
    return any(session.execute(sa.select(found)).scalar_one() for found in known)
