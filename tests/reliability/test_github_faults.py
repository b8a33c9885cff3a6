"""GitHub failing under a real `tokentrail serve` in App mode, on SQLite and PostgreSQL: 500 and 502, 403 secondary
rate limits with and without Retry-After, 429 with a short Retry-After, on the pull request reads, the comment and
the check run. Each PR's refresh job meets its own faults; every comment ends up correct, and there is one of it.

The job backs off (1 s, 2 s, …) or waits what GitHub asked for. A secondary rate limit without Retry-After means
"wait a minute" (GitHub's documentation): for that one the test moves the clock of the jobs table on rather than
wait. All polling is bounded.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from tests.conftest import start_server
from tests.reliability.support import (
    OPENED,
    REPO,
    Db,
    Scale,
    Sender,
    SlowFakeGitHub,
    add_pulls_to_fake,
    app_env,
    build_scenario,
    canonical,
    check_one_comment_and_one_check_run_each,
    check_totals,
    comments_show,
    wait_for,
)


def _statuses(github: SlowFakeGitHub, method: str, path: str, *, since: int = 0) -> list[int]:
    return [call.status for call in github.calls[since:] if call.method == method and call.path == path]


def _run_statuses(github: SlowFakeGitHub, method: str, head_sha: str) -> list[int]:
    return [
        call.status
        for call in github.calls
        if call.method == method
        and call.path.startswith(f"/repos/{REPO}/check-runs")
        and (call.json_body or {}).get("head_sha", head_sha) == head_sha
    ]


def test_github_errors_and_rate_limits_end_in_one_correct_comment(
    database_url: str,
    tmp_path: Path,
    github: SlowFakeGitHub,
    app_keys: tuple[str, str],
    api_token: str,
    scale: Scale,
) -> None:
    scenario = build_scenario(range(401, 406))
    add_pulls_to_fake(github, scenario.pulls)
    issues = f"/repos/{REPO}/issues"
    # 401: server errors on the comment.
    github.fail_next("POST", f"{issues}/401/comments", 500)
    github.fail_next("POST", f"{issues}/401/comments", 502)
    # 402: a secondary rate limit with Retry-After, then a 429 with Retry-After, on the comment.
    github.fail_next("POST", f"{issues}/402/comments", 403, secondary_rate_limit=True, retry_after=1)
    github.fail_next("POST", f"{issues}/402/comments", 429, retry_after=2)
    # 403: a secondary rate limit without Retry-After: GitHub says to wait a minute.
    github.fail_next("POST", f"{issues}/403/comments", 403, secondary_rate_limit=True)
    # 404: reading the pull request fails: 500, a secondary rate limit, then 502 on its commits.
    github.fail_next("GET", f"/repos/{REPO}/pulls/404", 500)
    github.fail_next("GET", f"/repos/{REPO}/pulls/404", 403, secondary_rate_limit=True, retry_after=1)
    github.fail_next("GET", f"/repos/{REPO}/pulls/404/commits", 502)
    # 405: the check run: 502, then 429 with Retry-After.
    head_405 = scenario.pulls[4].head_sha
    github.fail_next("POST", f"/repos/{REPO}/check-runs", 502)
    github.fail_next("POST", f"/repos/{REPO}/check-runs", 429, retry_after=1)

    server = start_server(database_url=database_url, log=tmp_path / "server.log", env=app_env(github, app_keys[0]))
    sender, db = Sender(server.url, api_token), Db(database_url)
    try:
        # The check-run faults hit whichever PR creates its check run first: send 405's deliveries alone first.
        sender.send_all([d for d in scenario.deliveries if d.label == "i" or d.label.endswith("#405")])
        wait_for(lambda: len(_run_statuses(github, "POST", head_405)) >= 3, what="405's check run", timeout=60)
        sender.send_all(scenario.deliveries)

        def waiting_a_minute() -> bool:
            jobs = [job for job in db.jobs("refresh") if job.key == f"{REPO}#403"]
            return bool(jobs) and jobs[-1].state == "queued" and "secondary rate limit" in (jobs[-1].last_error or "")

        wait_for(waiting_a_minute, what="403's job to wait out the secondary rate limit", timeout=60)
        db.expire()  # the minute has passed
        wait_for(
            lambda: db.pending_jobs() == 0 and comments_show(github, scenario),
            what="every comment despite the faults",
            timeout=120,
        )
        assert db.failed_jobs() == []
        check_totals(sender, scenario)
        check_one_comment_and_one_check_run_each(github, scenario)
        assert _statuses(github, "POST", f"{issues}/401/comments") == [500, 502, 201]
        assert _statuses(github, "POST", f"{issues}/402/comments") == [403, 429, 201]
        assert _statuses(github, "POST", f"{issues}/403/comments") == [403, 201]
        assert _statuses(github, "GET", f"/repos/{REPO}/pulls/404")[:3] == [500, 403, 200]
        assert 502 in _statuses(github, "GET", f"/repos/{REPO}/pulls/404/commits")
        assert _statuses(github, "POST", f"{issues}/404/comments") == [201]
        assert _run_statuses(github, "POST", head_405) == [502, 429, 201]

        # Edits fail too: more usage for 401 and 402; their comment and check run edits meet errors and limits.
        comment_401 = github.comments(REPO, 401)[0]["id"]
        comment_402 = github.comments(REPO, 402)[0]["id"]
        mark = len(github.calls)
        github.fail_next("PATCH", f"{issues}/comments/{comment_401}", 500)
        github.fail_next("PATCH", f"{issues}/comments/{comment_401}", 403, secondary_rate_limit=True, retry_after=1)
        github.fail_next("PATCH", f"{issues}/comments/{comment_402}", 429, retry_after=1)
        github.fail_next("PATCH", f"/repos/{REPO}/check-runs/*", 502)
        more = []
        for pull, cost in zip(scenario.pulls[:2], ("0.30", "1.20"), strict=True):
            at = OPENED + timedelta(hours=2, minutes=30)
            more.append(canonical(f"more-{pull.number}", cost=cost, at=at, branch=pull.branch))
            scenario.cost[pull.number] += Decimal(cost)
            scenario.records[pull.number] += 1
        sender.post_records(more)
        wait_for(
            lambda: db.pending_jobs() == 0 and comments_show(github, scenario),
            what="the edited comments",
            timeout=120,
        )
        assert db.failed_jobs() == []
        check_totals(sender, scenario)
        check_one_comment_and_one_check_run_each(github, scenario)
        # A job that failed after editing the comment edits it again on its retry: the same comment each time.
        edits_401 = _statuses(github, "PATCH", f"{issues}/comments/{comment_401}", since=mark)
        assert edits_401[:3] == [500, 403, 200] and set(edits_401[3:]) <= {200}, edits_401
        edits_402 = _statuses(github, "PATCH", f"{issues}/comments/{comment_402}", since=mark)
        assert edits_402[:2] == [429, 200] and set(edits_402[2:]) <= {200}, edits_402
        run_edits = [c.status for c in github.calls[mark:] if c.method == "PATCH" and "/check-runs/" in c.path]
        assert run_edits[0] == 502 and run_edits.count(200) == 2, run_edits
    finally:
        server.stop()
        sender.close()
        db.close()
