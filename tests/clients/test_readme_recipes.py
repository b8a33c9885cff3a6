"""The integration snippets of README.md and action/README.md are the files of docs/recipes/, byte for byte.

A snippet is marked with `<!-- recipe: docs/recipes/NAME -->` on the line before its fenced block. The LiteLLM and
OpenTelemetry recipes are run by the other tests of this folder; the two GitHub recipes are checked here: the budget
file through the server's own parser, the workflow by running the Action's step with the workflow's inputs against
a real server, then checking that every output the workflow reads is one the Action set.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.repo_config import parse_repo_config

# The Action's own test fixtures: a live server behind a proxy, an OIDC issuer, a seeded PR, a runner.
from tests.action_runner import (  # noqa: F401 - fixtures
    EXECUTION_COST,
    EXECUTION_FILE,
    Proxy,
    Runner,
    api_token,
    comment_run,
    issuer,
    proxy,
    runner,
    seeded,
    server,
)
from tests.clients.conftest import PLACEHOLDER_SERVER, RECIPES
from tests.conftest import ROOT
from tests.github_payloads import make_issue_comment_event
from tests.oidc_issuer import OidcIssuer

READMES = (ROOT / "README.md", ROOT / "action" / "README.md")
MARKER = re.compile(r"^(?P<indent>[ ]*)<!-- recipe: (?P<path>\S+) -->\n", re.M)
FENCE = re.compile(r"(?P<indent>[ ]*)```(?P<language>[\w-]*)\n(?P<body>.*?)^(?P=indent)```$", re.M | re.S)
# Configuration and programs a user copies: each must be a recipe. (Shell lines that only run Tokentrail's own
# commands are not integration snippets.)
MUST_BE_RECIPES = re.compile(r"^(yaml|yml|python|py)$|OTEL_|GENERIC_LOGGER|litellm", re.I)


def snippets(readme: Path) -> list[tuple[str | None, str, str]]:
    """(recipe path or None, language, text) of every fenced block, the text without the fence's indentation."""
    text = readme.read_text()
    found = []
    for fence in FENCE.finditer(text):
        indent = fence["indent"]
        body = "".join(line.removeprefix(indent) for line in fence["body"].splitlines(keepends=True))
        before = text[: fence.start()]
        marker = MARKER.search(before, max(0, before.rfind("\n", 0, len(before) - 1) + 1))
        found.append((marker["path"] if marker else None, fence["language"], body))
    return found


@pytest.mark.parametrize("readme", READMES, ids=lambda path: str(path.relative_to(ROOT)))
def test_each_marked_snippet_is_its_recipe_byte_for_byte(readme: Path) -> None:
    marked = [(path, body) for path, _, body in snippets(readme) if path is not None]
    assert marked, f"{readme} shows no recipe"
    assert len(marked) == len(MARKER.findall(readme.read_text())), "a marker not right above a fenced block"
    for path, body in marked:
        recipe_file = ROOT / path
        assert recipe_file.parent == RECIPES and recipe_file.is_file(), path
        assert body == recipe_file.read_text(), f"{readme.name}: the snippet differs from {path}"


@pytest.mark.parametrize("readme", READMES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_integration_snippet_is_a_recipe(readme: Path) -> None:
    unmarked = [
        body.splitlines()[0]
        for path, language, body in snippets(readme)
        if path is None and (MUST_BE_RECIPES.search(language) or MUST_BE_RECIPES.search(body))
    ]
    assert unmarked == [], f"{readme.name}: snippets that no test runs"


def test_every_recipe_is_shown_and_points_at_the_placeholder_server() -> None:
    shown = {path for readme in READMES for path, _, _ in snippets(readme) if path is not None}
    recipes = {str(path.relative_to(ROOT)) for path in RECIPES.iterdir() if path.is_file()}
    assert recipes == shown
    for name in ("litellm-proxy.yaml", "litellm_sdk.py", "otel.env", "ai-spend.yml"):
        # The tests point the recipes at their own server by replacing exactly this address.
        assert PLACEHOLDER_SERVER in (RECIPES / name).read_text(), name


def test_the_budget_recipe_is_a_valid_configuration() -> None:
    result = parse_repo_config((RECIPES / "tokentrail.yml").read_text())
    assert result.errors == []
    budget = result.config.budget
    limits = (budget.max_cost_per_pr, budget.max_cost_per_changed_line, budget.max_tokens_per_pr)
    assert limits == (Decimal(25), Decimal("0.10"), 50_000_000)
    assert budget.exempt_labels == ["ai-budget-exempt"]


def workflow_step(workflow: dict[str, Any]) -> dict[str, Any]:
    (job,) = workflow["jobs"].values()
    (step,) = [step for step in job["steps"] if str(step.get("uses", "")).endswith("/tokentrail/action@v1")]
    return step


def test_the_workflow_recipe_runs_the_action(seeded: datetime, proxy: Proxy, runner: Runner) -> None:
    text = (RECIPES / "ai-spend.yml").read_text()
    workflow: dict[str, Any] = yaml.safe_load(text.replace(PLACEHOLDER_SERVER, proxy.url))
    assert workflow["permissions"]["id-token"] == "write"  # the OIDC token the Action authenticates with
    step = workflow_step(workflow)
    inputs = {name: str(value) for name, value in step["with"].items()}

    run = runner.run(inputs)
    # The seeded PR spent $0.50: under the recipe's max-cost of 25.
    assert (run.returncode, run.outputs["status"], run.outputs["cost-usd"]) == (0, "pass", "0.50"), run
    read = set(re.findall(rf"steps\.{step['id']}\.outputs\.([\w-]+)", text))
    assert read and read <= run.outputs.keys()


def test_the_usage_files_recipe_names_only_inputs_of_the_action() -> None:
    workflow: dict[str, Any] = yaml.safe_load((RECIPES / "ai-spend-usage-files.yml").read_text())
    assert workflow["permissions"]["id-token"] == "write"  # the upload authenticates with the run's OIDC token
    (step,) = [step for step in workflow["steps"] if str(step.get("uses", "")).endswith("/tokentrail/action@v1")]
    action = yaml.safe_load((ROOT / "action" / "action.yml").read_text())
    assert set(step["with"]) <= set(action["inputs"])
    assert "usage-files" in step["with"] and step["with"]["server-url"] == PLACEHOLDER_SERVER


def test_the_comment_recipe_uploads_the_agent_usage_of_a_comment_run(
    seeded: datetime, proxy: Proxy, issuer: OidcIssuer, runner: Runner
) -> None:
    """The `@claude` workflow, its Tokentrail step run on an `issue_comment` of the PR, with the fixture execution
    file standing for what claude-code-action's step gives as `execution_file`."""
    output = "${{ steps.claude.outputs.execution_file }}"
    text = (RECIPES / "ai-spend-claude-comments.yml").read_text()
    assert output in text
    text = text.replace(PLACEHOLDER_SERVER, proxy.url).replace(output, str(EXECUTION_FILE))
    workflow: dict[str, Any] = yaml.safe_load(text)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert set(triggers) == {"issue_comment", "pull_request_review_comment"}, triggers
    assert workflow["permissions"]["id-token"] == "write"
    step = workflow_step(workflow)
    action = yaml.safe_load((ROOT / "action" / "action.yml").read_text())
    assert set(step["with"]) <= set(action["inputs"])

    issuer.token_claims = comment_run()
    inputs = {name: str(value) for name, value in step["with"].items()}
    run = runner.run(inputs, event=make_issue_comment_event(), event_name="issue_comment")
    # the seeded PR's $0.50 and the agent's $0.4213; fail-on never
    expected = str((Decimal("0.50") + EXECUTION_COST).quantize(Decimal("0.01")))
    assert (run.returncode, run.outputs["cost-usd"]) == (0, expected), run
    assert "claude-code-action): 2 new" in run.stdout, run
