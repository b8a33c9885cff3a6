"""Schemathesis against the app's own OpenAPI schema: every operation, positive and negative data, with a valid
API token of "acme" (most requests), another owner's token, a wrong token, or none. Checks: no response is a server
error (≥ 500) and every response matches what the schema documents for its status code.

The CI size sends at least 10,000 requests against SQLite and a smaller run against PostgreSQL;
TOKENTRAIL_RELIABILITY_SCALE=large sends 50,000 and 10,000. The requests actually made are counted. Generation is
seeded (the same requests every run, so CI does not flake on a new random draw); set
TOKENTRAIL_SCHEMATHESIS_SEED to explore other inputs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.python.asgi import shutdown_lifespans
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.settings import Settings
from tests.conftest import make_token
from tests.reliability.support import REPO, Scale, build_scenario

CHECKS = [not_a_server_error, response_schema_conformance]
SECRET = "test-secret"
AUTH_CHOICES = ["acme"] * 6 + ["other", "wrong", "none"]  # mostly the owner's token


@dataclass
class Tally:
    requests: int = 0
    by_operation: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)


@pytest.fixture
def fuzzed_app(database_url: str, factory: sessionmaker[Session]) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    """The app on a database holding a scenario (a repository, PRs matched to usage, comments rendered in dry-run),
    so that the generated requests meet real data and not only 404s. No in-process worker."""
    settings = Settings(
        database_url=database_url,
        github_webhook_secret=SECRET,
        comment_debounce_seconds=0,
        run_worker=False,
        dry_run=True,
    )
    app = create_app(settings, run_worker=False)
    tokens = {"acme": make_token(factory, "acme"), "other": make_token(factory, "globex")}
    with TestClient(app) as client:  # its lifespan ends before schemathesis starts its own
        for delivery in build_scenario([12, 13]).deliveries:
            headers = {**delivery.headers, "Authorization": f"Bearer {tokens['acme']}"}
            assert client.post(delivery.path, content=delivery.body, headers=headers).status_code in (200, 202)
        app.state.worker.run_until_idle()
        summary = client.get(f"/v1/repos/{REPO}/pulls/12", headers={"Authorization": f"Bearer {tokens['acme']}"})
        assert summary.is_success, summary.text
    yield app, tokens
    shutdown_lifespans()
    app.state.engine.dispose()


def _auth_header(choice: str, tokens: dict[str, str]) -> dict[str, str]:
    if choice == "none":
        return {}
    token = tokens.get(choice, "tt_not-a-real-token")
    return {"Authorization": f"Bearer {token}"}


def _strategies(operation: Any) -> list[Any]:
    """Cases of one operation: schema-valid data, the same aimed at the seeded repository and PR (where the path
    has those parameters), and schema-violating data (where there is anything to violate)."""
    path = operation.path
    aimed: dict[str, Any] = {}
    if "{owner}" in path:
        aimed["owner"] = "acme"
    if "{repo}" in path:
        aimed["repo"] = "widgets"
    if "{number}" in path:
        aimed["number"] = 12
    strategies = [operation.as_strategy(generation_mode=GenerationMode.POSITIVE)]
    if aimed:
        strategies.append(operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=aimed))
    if "number" in aimed:  # the seeded repository, any PR number (mostly unknown ones)
        repository = {"owner": "acme", "repo": "widgets"}
        strategies.append(operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=repository))
    if operation.definition.raw.get("parameters") or operation.definition.raw.get("requestBody"):
        strategies.append(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    return strategies


def _call_webhook(client: TestClient, case: Any, signed: bool) -> Any:
    """The webhook needs a signature over the exact bytes: serialise the generated request, then sign its body."""
    request = case.as_transport_kwargs(base_url="http://testserver")
    if "data" in request:
        data = request["data"]
        body = data if isinstance(data, bytes) else str(data).encode()
    elif "json" in request:
        body = json.dumps(request["json"]).encode()
    else:
        body = b""
    headers = dict(request["headers"])
    if signed:
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return client.request(request["method"], request["url"], content=body, headers=headers, params=request["params"])


def fuzz(app: FastAPI, tokens: dict[str, str], *, target: int, base_seed: int) -> Tally:
    """Run schemathesis over every operation until at least `target` requests were made."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    tally = Tally()
    client = TestClient(app, raise_server_exceptions=False)

    def exercise(operation: Any, examples: int, pass_seed: int) -> None:
        @seed(pass_seed)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=False,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        )
        @given(case=st.one_of(_strategies(operation)), auth=st.sampled_from(AUTH_CHOICES), signed=st.booleans())
        def run(case: Any, auth: str, signed: bool) -> None:
            if operation.path == "/github/webhook":
                response = _call_webhook(client, case, signed)
            else:
                response = case.call(headers=_auth_header(auth, tokens))
            tally.requests += 1
            tally.by_operation[operation.label] += 1
            tally.by_status[response.status_code] += 1
            case.validate_response(response, checks=CHECKS)

        run()

    # Every operation gets its share; one with little to vary runs out of new inputs before (Hypothesis stops
    # early), so what it left is shared among the others in further rounds until the target is reached.
    active = list(operations)
    try:
        for round_ in range(10):
            missing = target - tally.requests
            if missing <= 0 or not active:
                break
            examples = math.ceil(missing / len(active))
            exhausted = []
            for index, operation in enumerate(active):
                before = tally.by_operation[operation.label]
                exercise(operation, examples, base_seed + 1000 * round_ + index)
                if tally.by_operation[operation.label] - before < examples:
                    exhausted.append(operation)
            active = [operation for operation in active if operation not in exhausted]
    finally:
        client.close()
    return tally


def _budget(database_url: str, scale: Scale) -> int:
    return scale.schema_requests if database_url.startswith("sqlite") else scale.schema_requests_postgres


def test_schemathesis_every_endpoint(
    fuzzed_app: tuple[FastAPI, dict[str, str]], database_url: str, scale: Scale
) -> None:
    app, tokens = fuzzed_app
    target = _budget(database_url, scale)
    base_seed = int(os.environ.get("TOKENTRAIL_SCHEMATHESIS_SEED", "20261102"))
    started = time.monotonic()
    tally = fuzz(app, tokens, target=target, base_seed=base_seed)
    elapsed = time.monotonic() - started
    print(
        f"\nschemathesis: {tally.requests} requests in {elapsed:.0f} s on {database_url.split(':')[0]}; "
        f"statuses {dict(sorted(tally.by_status.items()))}"
    )
    assert tally.requests >= target
    assert len(tally.by_operation) == len(app.openapi()["paths"]) + sum(
        len(ops) - 1 for ops in app.openapi()["paths"].values()
    )
    assert all(status < 500 for status in tally.by_status)
    assert {200, 401, 403, 404, 422} <= set(tally.by_status)  # the generated data reached real answers
