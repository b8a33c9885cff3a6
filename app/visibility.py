"""Whether a scope's pages, API answers and exports may name people (`dashboard.people`, issue 15). Shell: reads
the repositories' stored `.github/tokentrail.yml`.

A repository follows its own file, else the server's default (`TOKENTRAIL_DASHBOARD_PEOPLE`). An owner's views
name people only when every one of its repositories would: one repository asking for `aggregate` is enough to
keep its people out of the owner's figures too.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.outcome_report import Scope
from app.people_view import PeopleMode, people_mode
from app.repo_config import parse_repo_config
from app.tables import REPOSITORIES


def scope_people_mode(session: Session, *, scope: Scope, default: PeopleMode) -> PeopleMode:
    if scope.repo is not None:
        where = REPOSITORIES.c.full_name == scope.repo
    else:
        where = REPOSITORIES.c.full_name.startswith(scope.owner + "/", autoescape=True)
    texts = session.execute(sa.select(REPOSITORIES.c.config_text).where(where)).scalars().all()
    modes = {people_mode(parse_repo_config(text).config, default) for text in texts}
    if not texts:
        modes = {default}
    return "aggregate" if "aggregate" in modes else "show"


def people_shown(session: Session, *, scope: Scope, default: PeopleMode) -> bool:
    return scope_people_mode(session, scope=scope, default=default) == "show"
