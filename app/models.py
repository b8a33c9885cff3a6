"""Database tables (SQLModel). Alembic migrations in migrations/versions must agree with these; a test checks it.

Money is stored as an integer count of nano-dollars (1e-9 USD): exact on SQLite and PostgreSQL alike (SQLite has
no decimal type), and sums in SQL stay exact. It becomes a Decimal again at the boundary (app.money).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# Stable constraint names make migrations reproducible across SQLite and PostgreSQL.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _flag() -> sa.Column[bool]:
    """A boolean column that is false unless set (also for rows that existed before it)."""
    return sa.Column(sa.Boolean, nullable=False, server_default=sa.false())


class Usage(SQLModel, table=True):
    """One model call, normalised (DESIGN §2). (owner, source, record_id) is the dedupe key: nothing one owner
    sends can touch another owner's records. The provider's own ids of the call are in `usage_calls`."""

    __tablename__ = "usage"
    __table_args__ = (
        sa.UniqueConstraint("owner", "source", "record_id"),
        sa.Index(None, "owner", "session_id"),
        sa.Index(None, "repo", "branch", "timestamp"),
        sa.Index(None, "repo", "commit"),
        sa.Index(None, "repo", "timestamp"),
        sa.Index(None, "pr_repo", "pr_number"),
        # Only records not yet matched: the index stays as small as the backlog, and writes to it stop once a
        # record is matched (a full (repo, matched_at) index would be rewritten for every record).
        sa.Index(
            "ix_usage_pending",
            "repo",
            sqlite_where=sa.text("matched_at IS NULL"),
            postgresql_where=sa.text("matched_at IS NULL"),
        ),
    )

    pk: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    source: str = Field(sa_type=sa.String(32))
    record_id: str = Field(sa_type=sa.String(255))
    timestamp: datetime = Field(sa_type=_utc())
    provider: str | None = Field(default=None, sa_type=sa.String(64))
    model: str = Field(sa_type=sa.String(255))
    input_tokens: int = Field(default=0, sa_type=sa.BigInteger)
    cache_read_tokens: int = Field(default=0, sa_type=sa.BigInteger)
    cache_write_tokens: int = Field(default=0, sa_type=sa.BigInteger)
    output_tokens: int = Field(default=0, sa_type=sa.BigInteger)
    reasoning_tokens: int = Field(default=0, sa_type=sa.BigInteger)
    cost_nanousd: int | None = Field(default=None, sa_type=sa.BigInteger)
    cost_reported: bool = Field(default=False)  # True: the source's own figure; False: computed or unknown
    owner: str = Field(sa_type=sa.String(100), index=True)
    repo: str = Field(sa_type=sa.String(200))
    branch: str | None = Field(default=None, sa_type=sa.String(255))
    commit: str | None = Field(default=None, sa_type=sa.String(40))
    pr: int | None = Field(default=None)
    actor: str | None = Field(default=None, sa_type=sa.String(255))
    agent: str | None = Field(default=None, sa_type=sa.String(100))
    session_id: str | None = Field(default=None, sa_type=sa.String(255))
    received_at: datetime = Field(sa_type=_utc())
    # The provider's id of the call (DESIGN §2 "One call, one record"), as first reported; every id the call is
    # known by is a row of `usage_calls`.
    call_id: str | None = Field(default=None, sa_type=sa.String(255))
    # Other sources that reported the same call (comma-separated, sorted): answered as duplicates, never stored.
    also_seen_by: str | None = Field(default=None, sa_type=sa.String(255))
    # The token that sent it was made with `--share-upstream`: it may count on another owner's pull request.
    share_upstream: bool = Field(default=False, sa_column=_flag())
    # Set by matching (DESIGN §5): the pull request this record served, and the rule that said so.
    pr_repo: str | None = Field(default=None, sa_type=sa.String(200))
    pr_number: int | None = Field(default=None)
    match_rule: str | None = Field(default=None, sa_type=sa.String(16))
    # Matched to another owner's pull request without that consent (DESIGN §5): in its owner's books only, never
    # in the pull request's figures.
    pr_private: bool = Field(default=False, sa_column=_flag())
    # None until the worker has matched the record once (DESIGN §5); the worker re-examines it on PR events.
    matched_at: datetime | None = Field(default=None, sa_type=_utc())
    # Why the matcher set this record aside (it could not read it): it counts nowhere and blocks nothing.
    match_error: str | None = Field(default=None, sa_type=sa.String(500))


class UsageCall(SQLModel, table=True):
    """An id the provider gave a model call (a request id, a message or response id), per owner: two records of
    one owner that share any of these ids are one call (DESIGN §2), and only the first stored counts."""

    __tablename__ = "usage_calls"
    __table_args__ = (sa.Index(None, "usage_pk"),)

    owner: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    call_id: str = Field(sa_column=sa.Column(sa.String(255), primary_key=True))
    usage_pk: int = Field(sa_type=sa.BigInteger)


class UnattributedUsage(SQLModel, table=True):
    """A usage record that names no repository yet and waits for its session's transcript to name one: Codex
    telemetry until the rollout of its conversation arrives (app.session_join). It counts nowhere until then;
    (owner, source, record_id) dedupes a redelivery as in `usage`."""

    __tablename__ = "usage_unattributed"
    __table_args__ = (sa.UniqueConstraint("owner", "source", "record_id"), sa.Index(None, "owner", "session_id"))

    pk: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    owner: str = Field(sa_type=sa.String(100))
    source: str = Field(sa_type=sa.String(32))
    record_id: str = Field(sa_type=sa.String(255))
    session_id: str = Field(sa_type=sa.String(255))
    record: str = Field(sa_type=sa.Text)  # the canonical record as JSON
    received_at: datetime = Field(sa_type=_utc())


class IngestToken(SQLModel, table=True):
    """An API token of one owner (a GitHub user or organisation login). Only its SHA-256 is stored."""

    __tablename__ = "ingest_tokens"

    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(sa_type=sa.String(100), index=True)
    name: str = Field(default="", sa_type=sa.String(200))
    token_hash: str = Field(sa_type=sa.String(64), unique=True)
    created_at: datetime = Field(sa_type=_utc())
    last_used_at: datetime | None = Field(default=None, sa_type=_utc())
    # Records sent with this token may reach another owner's pull request (a fork's PR upstream; DESIGN §5).
    share_upstream: bool = Field(default=False, sa_column=_flag())
    # Set by `tokentrail token revoke`: the token is refused everywhere from then on, and its sessions end.
    revoked_at: datetime | None = Field(default=None, sa_type=_utc())


class DashboardSession(SQLModel, table=True):
    """A browser signed in to the dashboard with a token. The cookie holds a random session id, never the token;
    only the id's SHA-256 is stored. The session lasts until it expires, its owner signs out, or its token is
    revoked."""

    __tablename__ = "dashboard_sessions"

    id: int | None = Field(default=None, primary_key=True)
    id_hash: str = Field(sa_type=sa.String(64), unique=True)
    token_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("ingest_tokens.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    created_at: datetime = Field(sa_type=_utc())
    expires_at: datetime = Field(sa_type=_utc(), index=True)


class Installation(SQLModel, table=True):
    """A GitHub App installation on a user or organisation account."""

    __tablename__ = "installations"

    id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    account_login: str = Field(sa_type=sa.String(100), index=True)
    account_type: str = Field(default="Organization", sa_type=sa.String(32))
    suspended: bool = Field(default=False)
    deleted: bool = Field(default=False)
    # GitHub's id of the account: a login can be renamed and taken by another account, the id cannot.
    account_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    updated_at: datetime = Field(sa_type=_utc())


class Repository(SQLModel, table=True):
    __tablename__ = "repositories"

    full_name: str = Field(sa_column=sa.Column(sa.String(200), primary_key=True))
    installation_id: int | None = Field(default=None, sa_type=sa.BigInteger, index=True)
    # GitHub's ids of the repository and of its owner, from the webhooks: an Actions OIDC token must carry the
    # same ones, so a repository deleted and re-created under the same name (or a renamed and re-registered
    # organisation) inherits nothing.
    repository_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    owner_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    default_branch: str = Field(default="main", sa_type=sa.String(255))
    # The cached .github/tokentrail.yml of the default branch, refreshed when the default branch moves.
    config_text: str | None = Field(default=None, sa_type=sa.Text)
    config_fetched: bool = Field(default=False)
    removed: bool = Field(default=False)
    updated_at: datetime = Field(sa_type=_utc())


class PullRequest(SQLModel, table=True):
    """What Tokentrail knows of a pull request: GitHub's facts plus what it rendered for it."""

    __tablename__ = "pull_requests"
    __table_args__ = (
        sa.UniqueConstraint("repo", "number"),
        sa.Index(None, "head_repo", "head_ref"),
    )

    id: int | None = Field(default=None, primary_key=True)
    repo: str = Field(sa_type=sa.String(200))
    number: int
    title: str = Field(default="", sa_type=sa.Text)
    author: str = Field(default="", sa_type=sa.String(100))
    state: str = Field(default="open", sa_type=sa.String(16))  # open | closed
    merged: bool = Field(default=False)
    draft: bool = Field(default=False)
    head_repo: str | None = Field(default=None, sa_type=sa.String(200))
    head_ref: str = Field(default="", sa_type=sa.String(255))
    head_sha: str = Field(default="", sa_type=sa.String(40))
    base_ref: str = Field(default="", sa_type=sa.String(255))
    additions: int = Field(default=0)
    deletions: int = Field(default=0)
    changed_files: int = Field(default=0)
    labels: str = Field(default="[]", sa_type=sa.Text)  # JSON list of names
    html_url: str = Field(default="", sa_type=sa.String(500))
    created_at: datetime = Field(sa_type=_utc())
    closed_at: datetime | None = Field(default=None, sa_type=_utc())
    merged_at: datetime | None = Field(default=None, sa_type=_utc())
    updated_at: datetime = Field(sa_type=_utc())  # when Tokentrail last wrote the row
    # GitHub's `updated_at` of the facts stored: an event older than this never overwrites them (DESIGN §5).
    github_updated_at: datetime | None = Field(default=None, sa_type=_utc())
    # Rollup of the PR's matched spend, kept by every refresh (app.publish): the repository's median cost per
    # changed line reads these few rows instead of summing the usage of every PR of the repository each time.
    # Facts that can move records changed (an event, a push) since its records were last re-examined: the next
    # refresh re-matches once, after syncing with GitHub in App mode (app.worker).
    rematch_pending: bool = Field(default=False, sa_column=_flag())
    spend_nanousd: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    spend_records: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0"))
    # What was last rendered, and what is on GitHub (comment and check run ids), so updates edit in place.
    comment_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    comment_body: str | None = Field(default=None, sa_type=sa.Text)
    comment_generated_at: datetime | None = Field(default=None, sa_type=_utc())
    # Digest of the comment rendered without its timestamps: equal digests mean "nothing to edit".
    comment_digest: str | None = Field(default=None, sa_type=sa.String(64))
    check_run_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    check_run_sha: str | None = Field(default=None, sa_type=sa.String(40))
    check_title: str | None = Field(default=None, sa_type=sa.Text)
    check_summary: str | None = Field(default=None, sa_type=sa.Text)
    check_conclusion: str | None = Field(default=None, sa_type=sa.String(16))
    # Outcomes (issue 15): the merge commit (what a `This reverts commit <sha>` names), the PR this one's body
    # reverts ("Reverts owner/repo#N", what GitHub's Revert button writes), and the spend that went into rounds of
    # requested changes, kept by every refresh so the dashboard sums it without reading usage.
    merge_commit_sha: str | None = Field(default=None, sa_type=sa.String(40))
    reverts_number: int | None = Field(default=None)
    review_rounds: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0"))
    review_round_nanousd: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))


class PullRequestCommit(SQLModel, table=True):
    __tablename__ = "pull_request_commits"
    __table_args__ = (sa.UniqueConstraint("repo", "number", "sha"), sa.Index(None, "repo", "sha"))

    id: int | None = Field(default=None, primary_key=True)
    repo: str = Field(sa_type=sa.String(200))
    number: int
    sha: str = Field(sa_type=sa.String(40))


class Push(SQLModel, table=True):
    """A head SHA a pull request was at, and when: the boundaries of "cost between pushes"."""

    __tablename__ = "pushes"
    __table_args__ = (sa.UniqueConstraint("repo", "number", "sha"),)

    id: int | None = Field(default=None, primary_key=True)
    repo: str = Field(sa_type=sa.String(200))
    number: int
    sha: str = Field(sa_type=sa.String(40))
    pushed_at: datetime = Field(sa_type=_utc())


class RevertCommit(SQLModel, table=True):
    """A commit pushed to a repository's default branch whose message says `This reverts commit <sha>`."""

    __tablename__ = "revert_commits"
    __table_args__ = (sa.UniqueConstraint("repo", "sha", "reverted_sha"),)

    id: int | None = Field(default=None, primary_key=True)
    repo: str = Field(sa_type=sa.String(200), index=True)
    sha: str = Field(sa_type=sa.String(40))  # the reverting commit
    reverted_sha: str = Field(sa_type=sa.String(40))  # the commit it names
    pushed_at: datetime = Field(sa_type=_utc())


class Review(SQLModel, table=True):
    __tablename__ = "reviews"
    __table_args__ = (sa.UniqueConstraint("repo", "review_id"), sa.Index(None, "repo", "number"))

    id: int | None = Field(default=None, primary_key=True)
    repo: str = Field(sa_type=sa.String(200))
    number: int
    review_id: int = Field(sa_type=sa.BigInteger)
    reviewer: str = Field(sa_type=sa.String(100))
    state: str = Field(sa_type=sa.String(32))  # approved | changes_requested | commented | dismissed
    submitted_at: datetime = Field(sa_type=_utc())


class Person(SQLModel, table=True):
    """Whose a commit e-mail is on GitHub, as GitHub told one owner (a push's commit authors, a PR's commit list):
    reports show an actor that is this e-mail as the login. Learned per owner; GitHub links an e-mail to the one
    account that verified it, so a commit cannot claim someone else's login."""

    __tablename__ = "people"
    __table_args__ = (sa.UniqueConstraint("owner", "identity"),)

    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(sa_type=sa.String(100))
    identity: str = Field(sa_type=sa.String(255))  # an e-mail, lower-cased
    login: str = Field(sa_type=sa.String(100))
    updated_at: datetime = Field(sa_type=_utc())


class Delivery(SQLModel, table=True):
    """A webhook delivery as received; unique on GitHub's delivery id so a redelivery is a no-op."""

    __tablename__ = "deliveries"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(sa_type=sa.String(100), unique=True)
    event: str = Field(sa_type=sa.String(64))
    action: str | None = Field(default=None, sa_type=sa.String(64))
    payload: str = Field(sa_type=sa.Text)
    received_at: datetime = Field(sa_type=_utc())


class Job(SQLModel, table=True):
    """The outbox: work for the worker, claimed with FOR UPDATE SKIP LOCKED on PostgreSQL."""

    __tablename__ = "jobs"
    __table_args__ = (sa.Index(None, "state", "run_after"), sa.Index(None, "kind", "key", "state"))

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_type=sa.String(32))  # webhook | match | refresh
    key: str = Field(sa_type=sa.String(300))  # what it is about: a delivery id, a repository, a pull request
    state: str = Field(default="queued", sa_type=sa.String(16))  # queued | running | done | failed
    attempts: int = Field(default=0)
    run_after: datetime = Field(sa_type=_utc())
    locked_at: datetime | None = Field(default=None, sa_type=_utc())
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(sa_type=_utc())
    updated_at: datetime = Field(sa_type=_utc())


class GitHubAppCredentials(SQLModel, table=True):
    """The GitHub App created through /github/setup (at most one row, id 1). Its secrets are encrypted with
    TOKENTRAIL_ENCRYPTION_KEY (Fernet): a copy of the database alone cannot act as the App."""

    __tablename__ = "github_app_credentials"

    id: int = Field(primary_key=True)
    app_id: int = Field(sa_type=sa.BigInteger)
    slug: str = Field(sa_type=sa.String(100))
    name: str = Field(sa_type=sa.String(100))
    owner: str = Field(sa_type=sa.String(100))
    html_url: str = Field(sa_type=sa.String(500))
    client_id: str = Field(sa_type=sa.String(100))
    private_key_encrypted: str = Field(sa_type=sa.Text)
    webhook_secret_encrypted: str | None = Field(default=None, sa_type=sa.Text)
    client_secret_encrypted: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(sa_type=_utc())


class GitHubSetupState(SQLModel, table=True):
    """A `state` the setup page handed to GitHub's manifest form: only its hash is kept, it expires, and the
    exchange deletes it (single use)."""

    __tablename__ = "github_setup_states"
    __table_args__ = (sa.Index(None, "expires_at"),)

    state_hash: str = Field(sa_type=sa.String(64), primary_key=True)
    created_at: datetime = Field(sa_type=_utc())
    expires_at: datetime = Field(sa_type=_utc())
