"""Typed handles of every table: how the shell's SQL names a table (SQLAlchemy Core, not the ORM).

SQLModel puts each model's `sa.Table` on the class as `__table__`, which type checkers do not see; this module
reads it once, so no other module needs `# type: ignore` or one-letter aliases to write a query.
"""

from __future__ import annotations

from typing import cast

import sqlalchemy as sa
from sqlmodel import SQLModel

from app import github_models, models, state_models


def _table(model: type[SQLModel]) -> sa.Table:
    return cast(sa.Table, getattr(model, "__table__"))  # noqa: B009 - the attribute is set by SQLModel's metaclass


USAGE = _table(models.Usage)
USAGE_CALLS = _table(models.UsageCall)
METRIC_SERIES = _table(state_models.MetricSeries)
AGENT_SESSIONS = _table(state_models.AgentSession)
CALL_NUMBERS = _table(state_models.CallNumber)
UNATTRIBUTED = _table(models.UnattributedUsage)
TOKENS = _table(models.IngestToken)
DASHBOARD_SESSIONS = _table(models.DashboardSession)
INSTALLATIONS = _table(github_models.Installation)
REPOSITORIES = _table(github_models.Repository)
PULLS = _table(github_models.PullRequest)
PULL_COMMITS = _table(github_models.PullRequestCommit)
PUSHES = _table(github_models.Push)
REVIEWS = _table(github_models.Review)
REVERT_COMMITS = _table(github_models.RevertCommit)
PEOPLE = _table(github_models.Person)
DELIVERIES = _table(models.Delivery)
JOBS = _table(models.Job)
APP_CREDENTIALS = _table(github_models.GitHubAppCredentials)
SETUP_STATES = _table(github_models.GitHubSetupState)
PULL_SPEND = _table(models.PullSpendGroup)
USAGE_DAYS = _table(models.UsageDay)
PRUNED_SPEND = _table(models.PrunedSpend)
PRUNED_SESSIONS = _table(models.PrunedSession)
USAGE_KEYS = _table(models.UsageKey)
