"""Who an actor is on GitHub (DESIGN §2 "Models and people"). Usage records name their caller as a login, an
e-mail or a local user name; reports show the GitHub login where one is known, so one person is one row.

Two sources, both per repository owner, in this order:

1. the repository's `people:` map in `.github/tokentrail.yml` (e-mail or local name → login), written by the
   repository's maintainers on its default branch;
2. what GitHub told us about the owner's commits: a push's commit authors (`username`) and, in App mode, a pull
   request's commit list (`author.login`), kept in the `people` table.

Only e-mails are learned from commits. GitHub links an e-mail to the one account that verified it, so a commit
cannot claim someone else's login; a commit's author *name* is free text anyone (a fork's contributor) can set to
someone else's user name, so names come from `people:` only. Whatever one owner's commits taught never names
another owner's actors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import utcnow
from app.github_objects import CommitAuthor
from app.repo_config import MAX_IDENTITY_CHARS, person_key
from app.tables import PEOPLE

MAX_LOGIN_CHARS = 100  # the column; GitHub's own limit is 39
_LOOKUP_CHUNK = 500  # identities per IN (...) list
_WRITE_CHUNK = 500  # rows per INSERT (a push lists up to 2,048 commits)


def record_people(session: Session, *, owner: str, authors: Iterable[CommitAuthor]) -> int:
    """Remember the login GitHub linked to each commit e-mail of `owner`'s repositories; returns how many
    e-mails were given. A later answer from GitHub replaces an earlier one (an e-mail moved to another account)."""
    learned = {
        author.email: author.login
        for author in authors
        if author.email
        and author.login
        and "@" in author.email
        and len(author.email) <= MAX_IDENTITY_CHARS
        and len(author.login) <= MAX_LOGIN_CHARS
    }
    if not learned:
        return 0
    now = utcnow()
    rows = [
        {"owner": owner.lower(), "identity": person_key(email), "login": login, "updated_at": now}
        for email, login in sorted(learned.items())
    ]
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    for start in range(0, len(rows), _WRITE_CHUNK):
        statement = dialect.insert(PEOPLE).values(rows[start : start + _WRITE_CHUNK])
        # Safe against another worker learning the same e-mail at the same time; unchanged rows are not written.
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[PEOPLE.c.owner, PEOPLE.c.identity],
                set_={"login": statement.excluded.login, "updated_at": statement.excluded.updated_at},
                where=PEOPLE.c.login != statement.excluded.login,
            )
        )
    return len(rows)


def logins_of(
    session: Session, *, owner: str, configured: Mapping[str, str], actors: Iterable[str | None]
) -> dict[str, str]:
    """The GitHub login of each actor that has one (`login_of`). Actors without one are left out: reports show
    them as given."""
    names = {actor for actor in actors if actor}
    learned = learned_logins(session, owner=owner, actors=names)
    return {actor: login for actor in names if (login := login_of(actor, configured=configured, learned=learned))}


def login_of(actor: str, *, configured: Mapping[str, str], learned: Mapping[str, str]) -> str | None:
    """The repository's `people:` (keyed by `person_key`) first, then what GitHub told us (`learned_logins`)."""
    return configured.get(person_key(actor)) or learned.get(actor)


def learned_logins(session: Session, *, owner: str, actors: Iterable[str | None]) -> dict[str, str]:
    """The login GitHub linked to each actor that is an e-mail of `owner`'s commits."""
    keys = {actor: person_key(actor) for actor in actors if actor and "@" in actor}
    wanted = sorted(set(keys.values()))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        rows: Any = session.execute(
            sa.select(PEOPLE.c.identity, PEOPLE.c.login).where(
                PEOPLE.c.owner == owner.lower(), PEOPLE.c.identity.in_(wanted[start : start + _LOOKUP_CHUNK])
            )
        )
        found.update((row.identity, row.login) for row in rows)
    return {actor: found[key] for actor, key in keys.items() if key in found}
