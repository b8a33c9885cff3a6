"""Database tables of what GitHub told us (SQLModel): installations, repositories, pull requests with their
commits, pushes, reviews and reverts, people, and the App's own credentials. `app.models` holds the usage side;
both register on the same metadata, and Alembic's migrations must agree with them (a test checks it)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models import flag_column, utc_column


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
    updated_at: datetime = Field(sa_type=utc_column())


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
    updated_at: datetime = Field(sa_type=utc_column())


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
    created_at: datetime = Field(sa_type=utc_column())
    closed_at: datetime | None = Field(default=None, sa_type=utc_column())
    merged_at: datetime | None = Field(default=None, sa_type=utc_column())
    updated_at: datetime = Field(sa_type=utc_column())  # when Tokentrail last wrote the row
    # GitHub's `updated_at` of the facts stored: an event older than this never overwrites them (DESIGN §5).
    github_updated_at: datetime | None = Field(default=None, sa_type=utc_column())
    # Rollup of the PR's matched spend, kept by every refresh (app.publish): the repository's median cost per
    # changed line reads these few rows instead of summing the usage of every PR of the repository each time.
    # Facts that can move records changed (an event, a push) since its records were last re-examined: the next
    # refresh re-matches once, after syncing with GitHub in App mode (app.worker).
    rematch_pending: bool = Field(default=False, sa_column=flag_column())
    spend_nanousd: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    spend_records: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0"))
    # What was last rendered, and what is on GitHub (comment and check run ids), so updates edit in place.
    comment_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    comment_body: str | None = Field(default=None, sa_type=sa.Text)
    comment_generated_at: datetime | None = Field(default=None, sa_type=utc_column())
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
    pushed_at: datetime = Field(sa_type=utc_column())


class RevertCommit(SQLModel, table=True):
    """A commit pushed to a repository's default branch whose message says `This reverts commit <sha>`."""

    __tablename__ = "revert_commits"
    __table_args__ = (sa.UniqueConstraint("repo", "sha", "reverted_sha"),)

    id: int | None = Field(default=None, primary_key=True)
    repo: str = Field(sa_type=sa.String(200), index=True)
    sha: str = Field(sa_type=sa.String(40))  # the reverting commit
    reverted_sha: str = Field(sa_type=sa.String(40))  # the commit it names
    pushed_at: datetime = Field(sa_type=utc_column())


class Review(SQLModel, table=True):
    __tablename__ = "reviews"
    __table_args__ = (sa.UniqueConstraint("repo", "review_id"), sa.Index(None, "repo", "number"))

    id: int | None = Field(default=None, primary_key=True)
    repo: str = Field(sa_type=sa.String(200))
    number: int
    review_id: int = Field(sa_type=sa.BigInteger)
    reviewer: str = Field(sa_type=sa.String(100))
    state: str = Field(sa_type=sa.String(32))  # approved | changes_requested | commented | dismissed
    submitted_at: datetime = Field(sa_type=utc_column())


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
    updated_at: datetime = Field(sa_type=utc_column())


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
    created_at: datetime = Field(sa_type=utc_column())


class GitHubSetupState(SQLModel, table=True):
    """A `state` the setup page handed to GitHub's manifest form: only its hash is kept, it expires, and the
    exchange deletes it (single use)."""

    __tablename__ = "github_setup_states"
    __table_args__ = (sa.Index(None, "expires_at"),)

    state_hash: str = Field(sa_type=sa.String(64), primary_key=True)
    created_at: datetime = Field(sa_type=utc_column())
    expires_at: datetime = Field(sa_type=utc_column())
