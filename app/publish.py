"""Apply a publishing plan (app.plan) to one pull request on GitHub, through the port bound to it, and say what
to store. In dry-run mode there is no port: the rendering is stored and nothing is sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.db import as_utc
from app.exact_sum import MAX_BIGINT
from app.github import GitHubApp, NotFound
from app.money import to_nanousd
from app.plan import CommentStep, Plan, Posted
from app.pull_port import PullPort, PullRef
from app.render import MARKER, CheckRunOutput, Rendered, check_digest, parse_comment_state
from app.report import PullRequestReport
from app.settings import Settings


@dataclass
class Publisher:
    """How this process reaches GitHub: an App client, or none (dry-run)."""

    settings: Settings
    github: GitHubApp | None  # None in dry-run mode: nothing is sent

    def port(self, *, installation_id: int | None, repo: str, number: int) -> PullPort | None:
        """GitHub as this PR sees it; None in dry-run, or for a repository no installation covers."""
        if self.github is None or installation_id is None:
            return None
        return self.github.pull(PullRef(installation_id, repo, number), marker=MARKER)


def posted(row: Any) -> Posted:
    """What the PR row says was posted last."""
    check = None
    if row.check_title is not None and row.check_summary is not None and row.check_conclusion is not None:
        check = check_digest(CheckRunOutput(row.check_title, row.check_summary, row.check_conclusion))
    generated = row.comment_generated_at
    return Posted(
        comment_id=row.comment_id,
        comment_digest=row.comment_digest,
        generated_at=None if generated is None else as_utc(generated),
        check_run_id=row.check_run_id,
        check_run_sha=row.check_run_sha,
        check_digest=check,
    )


def rendered_values(report: PullRequestReport, rendered: Rendered) -> dict[str, Any]:
    """What is stored of every refresh, posted or not (dry-run shows it): the rendering and the spend rollup."""
    return {
        # A bigint column: a PR past 2^63 nano-dollars (9.2 billion USD, only reachable with records at the limits)
        # is kept at the largest value it holds rather than failing its refresh; its figures come from exact sums.
        "spend_nanousd": min(to_nanousd(report.totals.cost_usd) or 0, MAX_BIGINT),
        "spend_records": report.totals.records,
        "review_rounds": report.phases.round_count,
        "review_round_nanousd": to_nanousd(report.phases.in_rounds) or 0,
        "comment_body": rendered.body,
        "comment_digest": rendered.digest,
        "comment_generated_at": report.generated_at,
        "check_title": rendered.check.title,
        "check_summary": rendered.check.summary,
        "check_conclusion": rendered.check.conclusion,
    }


def apply(plan: Plan, port: PullPort, *, body: str, generated_at: datetime) -> dict[str, Any]:
    """Carry out the plan; returns the ids of what it posted."""
    values: dict[str, Any] = {}
    if plan.comment is not None:
        values["comment_id"] = _post_comment(port, plan.comment, body=body, generated_at=generated_at)
    if plan.check is not None:
        step = plan.check
        values["check_run_id"] = port.upsert_check_run(
            check_run_id=step.check_run_id,
            head_sha=step.head_sha,
            output={"title": step.title, "summary": step.summary},
            conclusion=step.conclusion,
        )
        values["check_run_sha"] = step.head_sha
    return values


def _post_comment(port: PullPort, step: CommentStep, *, body: str, generated_at: datetime) -> int:
    if step.new:
        return port.create_comment(body)
    if step.known_id is not None:
        try:
            port.update_comment(step.known_id, body)
            return step.known_id
        except NotFound:
            pass  # deleted by someone: look for another of ours, else create one
    existing = port.find_comment()
    if existing is None:
        return port.create_comment(body)
    comment_id, current = existing
    state = parse_comment_state(current)
    if state is not None and state[1] > generated_at:
        return comment_id  # that comment shows a newer state than ours: never overwrite it
    port.update_comment(comment_id, body)
    return comment_id
