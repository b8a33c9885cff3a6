"""The Action's `usage-files`: agents that ran in CI upload their usage to `POST /v1/ingest/ci` with the run's OIDC
token, before the verdict is asked. Driven as the runner drives the composite step (tests/test_action.py), against
a real `tokentrail serve` on SQLite and PostgreSQL behind the proxy that is its public URL."""

# The Action's fixtures are imported from its tests, and requested by name as arguments.

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from app.sources import codex
from tests.action_runner import (  # noqa: F401
    EXECUTION_COST,
    EXECUTION_FILE,
    FIXTURES,
    NUMBER,
    REPO,
    Proxy,
    Runner,
    api_token,
    issuer,
    post_ci,
    proxy,
    pull_event,
    pull_summary,
    runner,
    seeded,
    server,
    workspace_with,
)
from tests.conftest import LiveServer, make_token
from tests.oidc_issuer import OidcIssuer
from tests.oidc_scene import wait_for

GH_AW = FIXTURES / "ci" / "gh_aw_token_usage.jsonl"
ROLLOUT = FIXTURES / "codex" / "rollout_model_switch.jsonl"


def canonical_line(record_id: str, cost: str, **fields: Any) -> str:
    record = {
        "id": record_id,
        "timestamp": datetime.now().astimezone().isoformat(),
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": cost,
        **fields,
    }
    return json.dumps(record) + "\n"


def test_usage_files_count_in_the_verdict_and_a_rerun_adds_nothing(
    seeded: datetime,
    server: LiveServer,
    proxy: Proxy,
    issuer: OidcIssuer,
    runner: Runner,
    api_token: str,
    tmp_path: Path,
) -> None:
    workspace = workspace_with(
        tmp_path,
        "ws",
        {
            "claude/execution.json": EXECUTION_FILE,
            "usage/extra.ndjson": canonical_line("ci-extra-1", "0.10"),
        },
    )
    inputs = {
        "server-url": proxy.url,
        "max-cost": "0.9",
        "usage-files": "claude/*.json\n# the canonical records\n**/*.ndjson\n\nnot-there/*.jsonl\n",
    }
    run = runner.run(inputs, workspace=workspace)
    # $0.50 seeded + $0.4213 from the execution file + $0.10: over the $0.90 limit only with the uploads counted
    assert run.returncode == 1, str(run)
    assert run.outputs["status"] == "fail" and run.outputs["cost-usd"] == "1.02", str(run)
    assert "claude-code-action): 2 new, 0 already counted" in run.stdout, str(run)
    assert "canonical): 1 new" in run.stdout, str(run)
    assert any("not-there/*.jsonl matches no file" in w for w in run.annotations("warning")), str(run)
    assert "AI spend of this job's agents" in run.summary
    summary = pull_summary(server, api_token)
    assert Decimal(summary["usage"]["cost_usd"]) == Decimal("0.60") + EXECUTION_COST
    agents = {row["agent"] for row in summary["by_actor"]}
    assert "claude-code-action" in agents, summary["by_actor"]

    # "Re-run jobs": attempt 2 of the same run uploads the same files again and adds nothing
    issuer.token_claims = {"run_attempt": "2"}
    again = runner.run(inputs, workspace=workspace)
    assert (again.returncode, again.outputs["cost-usd"]) == (1, "1.02"), str(again)
    assert "2 new" not in again.stdout and "0 new, 2 already counted" in again.stdout, str(again)
    assert Decimal(pull_summary(server, api_token)["usage"]["cost_usd"]) == Decimal("0.60") + EXECUTION_COST

    # a re-run whose agent ran again has a new session: it counts
    rerun_file = json.loads(EXECUTION_FILE.read_text())
    for message in rerun_file:
        message["session_id"] = "0d9b6a2e-5c4f-4e3d-8b2a-1f0e9d8c7b6a"
    fresh = workspace_with(tmp_path, "ws2", {"claude/execution.json": json.dumps(rerun_file)})
    third = runner.run({**inputs, "max-cost": "5"}, workspace=fresh)
    assert (third.returncode, third.outputs["status"]) == (0, "pass"), str(third)
    assert third.outputs["cost-usd"] == "1.44", str(third)  # 1.0213 + 0.4213


def test_every_kind_of_file_lands_on_the_run_pull_request(
    seeded: datetime, server: LiveServer, proxy: Proxy, runner: Runner, api_token: str, tmp_path: Path
) -> None:
    workspace = workspace_with(
        tmp_path,
        "ws",
        {"gh-aw/token-usage.jsonl": GH_AW, "codex/rollout-2025-10-14-x.jsonl": ROLLOUT},
    )
    before = pull_summary(server, api_token)["usage"]
    run = runner.run({"server-url": proxy.url, "usage-files": "**/*.jsonl"}, workspace=workspace)
    assert run.returncode == 0, str(run)
    assert "(gh-aw): 2 new" in run.stdout and "(codex):" in run.stdout, str(run)

    rollout = codex.parse(ROLLOUT.read_bytes())
    after = pull_summary(server, api_token)["usage"]
    added = {key: after[key] - before[key] for key in ("records", "cache_read_tokens", "cache_write_tokens")}
    added["input_tokens"] = after["input_tokens"] - before["input_tokens"]
    # gh-aw: Anthropic input as is (1,200); Copilot's prompt_tokens include the 15,000 cached ones (20,000 - 15,000)
    assert added == {
        "records": 2 + len(rollout.records),
        "input_tokens": 1200 + 5000 + sum(r.input_tokens for r in rollout.records),
        "cache_read_tokens": 30000 + 15000 + sum(r.cache_read_tokens for r in rollout.records),
        "cache_write_tokens": 5000,
    }, (before, after)
    # the rollout names its own checkout's branch (feat/cache-layer): the run's head branch and PR replace it
    usage = httpx.get(
        f"{server.url}/v1/repos/{REPO}/usage", headers={"Authorization": f"Bearer {api_token}"}, timeout=30
    ).json()
    assert {row["branch"] for row in usage["by_branch"]} == {"feat/cache"}, usage["by_branch"]
    assert {row["pr"] for row in usage["by_branch"]} == {NUMBER}


def test_a_fork_without_oidc_skips_the_upload_with_a_notice(tmp_path: Path) -> None:
    workspace = workspace_with(tmp_path, "ws", {"execution.json": EXECUTION_FILE})
    event = pull_event(head_repo="mallory/widgets")
    run = Runner(tmp_path).run(
        {"server-url": "http://127.0.0.1:9", "usage-files": "execution.json"}, event=event, workspace=workspace
    )
    assert run.returncode == 0, str(run)
    notices = run.annotations("notice")
    assert any("usage-files: not uploaded" in n and "fork" in n for n in notices), notices
    assert not run.annotations("error")


def test_the_token_input_does_not_upload(
    seeded: datetime, proxy: Proxy, runner: Runner, api_token: str, tmp_path: Path
) -> None:
    workspace = workspace_with(tmp_path, "ws", {"execution.json": EXECUTION_FILE})
    run = runner.run(
        {"server-url": proxy.url, "token": api_token, "usage-files": "execution.json"},
        oidc=False,
        workspace=workspace,
    )
    assert (run.returncode, run.outputs["cost-usd"]) == (0, "0.50"), str(run)
    assert any("uploads need the run's OIDC token" in n for n in run.annotations("notice")), str(run)


def test_a_run_token_writes_only_its_own_repository(
    seeded: datetime,
    server: LiveServer,
    proxy: Proxy,
    issuer: OidcIssuer,
    api_token: str,
    factory: sessionmaker[Session],
) -> None:
    own = issuer.mint(aud=proxy.url)
    body = (
        canonical_line("x-1", "1.00", repo="umbrella/app", pr=5)  # another owner's repository
        + canonical_line("x-2", "1.00", repo="acme/gadgets")  # another repository of the same owner
        + canonical_line("x-3", "0.05")  # none named: the run's
        + canonical_line("x-4", "0.05", repo=f"https://github.com/{REPO}.git")  # its own, as a URL
    ).encode()
    response = post_ci(server, own, body, **{"x-vcs-change-id": "999"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["duplicates"]) == (2, 0), answer
    assert [r["index"] for r in answer["rejected"]] == [0, 1]
    assert "this run's token writes only acme/widgets" in answer["rejected"][0]["error"]
    # the token's ref (refs/pull/12/merge) says which PR, whatever the request claims
    assert answer["pr"] == NUMBER and answer["repo"] == REPO
    wait_for(lambda: pull_summary(server, api_token)["usage"]["cost_usd"] == "0.6", what="the upload to be matched")

    umbrella = make_token(factory, "umbrella")
    stored = httpx.get(
        f"{server.url}/v1/repos/umbrella/app/usage", headers={"Authorization": f"Bearer {umbrella}"}, timeout=30
    )
    assert stored.status_code == 200 and stored.json()["records"] == 0, stored.text

    # a token of a repository whose owner never installed the App cannot upload at all
    stranger = issuer.mint(aud=proxy.url, repository="umbrella/app", ref="refs/pull/5/merge")
    refused = post_ci(server, stranger, canonical_line("y-1", "1.00").encode())
    assert refused.status_code == 403 and "not installed" in refused.json()["detail"], refused.text
    # an API token is not a run's token; a token for another audience proves nothing
    assert post_ci(server, api_token, canonical_line("y-2", "1.00").encode()).status_code == 401
    elsewhere = issuer.mint(aud="https://elsewhere.example")
    assert post_ci(server, elsewhere, canonical_line("y-3", "1").encode()).status_code == 401
    # a file Tokentrail does not read is a 400 that says what it reads
    unknown = post_ci(server, own, b'{"hello": "world"}\n')
    assert unknown.status_code == 400 and "claude-code-action" in unknown.json()["detail"], unknown.text
    assert post_ci(server, own, b"{}", **{}).status_code == 400
    named = httpx.post(
        f"{server.url}/v1/ingest/ci?kind=bogus", content=b"{}", headers={"Authorization": f"Bearer {own}"}, timeout=30
    )
    assert named.status_code == 400 and "unknown kind" in named.json()["detail"]


def test_only_usage_leaves_the_runner() -> None:
    """The Action sends an execution file's system and result messages and a rollout's usage lines: the server
    reads the same records from them as from the whole file, and the conversation stays in the job."""
    import sys

    sys.path.insert(0, str(FIXTURES.parent.parent / "action"))
    import usage_files

    from app.sources.ci_files import Run, parse

    run = Run(repo=REPO, run_id="1", pr=NUMBER)
    now = datetime.now().astimezone()
    for path, kind in ((EXECUTION_FILE, "claude-code-action"), (GH_AW, "gh-aw"), (ROLLOUT, "codex")):
        whole, sent = path.read_bytes(), usage_files.slim(path.read_bytes())
        assert parse(sent, kind=kind, run=run, now=now).records == parse(whole, kind=kind, run=run, now=now).records
    slimmed = usage_files.slim(EXECUTION_FILE.read_bytes())
    assert b"Looking at the failing test" not in slimmed and b"Fixed the flaky cache test" not in slimmed
    assert b'"function_call"' not in usage_files.slim(ROLLOUT.read_bytes())
