"""What a refresh posts to GitHub, decided from the report, its rendering and what was posted before. Pure.

The rules (DESIGN §6): one comment per PR, edited in place, left alone when nothing but the time changed, never
overwriting a newer state; `comment.behavior` and `min_cost` honoured; a check run on the PR's head, created once
per head and edited only when its figures changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.render import Rendered
from app.report import PullRequestReport


@dataclass(frozen=True, slots=True)
class Posted:
    """What was rendered and posted last for the PR (its stored row)."""

    comment_id: int | None = None
    comment_digest: str | None = None
    generated_at: datetime | None = None
    check_run_id: int | None = None
    check_run_sha: str | None = None
    check_digest: str | None = None


@dataclass(frozen=True, slots=True)
class CommentStep:
    new: bool  # `comment.behavior: new`: a new comment every time
    known_id: int | None  # the comment to edit (if it was deleted: find ours, else create one)


@dataclass(frozen=True, slots=True)
class CheckStep:
    check_run_id: int | None  # edit this run (the same head); None: create a run on `head_sha`
    head_sha: str
    title: str
    summary: str
    conclusion: str


@dataclass(frozen=True, slots=True)
class Plan:
    stale: bool  # a newer state was already published: write nothing at all
    comment: CommentStep | None = None
    check: CheckStep | None = None


def plan_publish(report: PullRequestReport, rendered: Rendered, posted: Posted) -> Plan:
    if posted.generated_at is not None and posted.generated_at > report.generated_at:
        return Plan(stale=True)
    config = report.config.config
    comment = None
    wanted = report.is_comment_wanted or posted.comment_id is not None  # once posted, a comment is kept current
    if config.comment.behavior != "off" and wanted and rendered.digest != posted.comment_digest:
        comment = CommentStep(new=config.comment.behavior == "new", known_id=posted.comment_id)
    check = None
    head = report.pr.head_sha
    if config.check_run and head:
        same_head = posted.check_run_sha == head
        if not (same_head and posted.check_digest == rendered.check_digest):
            output = rendered.check
            check = CheckStep(
                check_run_id=posted.check_run_id if same_head else None,
                head_sha=head,
                title=output.title[:255],  # GitHub's limit for a check run's title
                summary=output.summary,
                conclusion=output.conclusion,
            )
    return Plan(stale=False, comment=comment, check=check)
