"""LiteLLM's SDK (`GenericAPILogger`) posting to a real server, run from docs/recipes/litellm_sdk.py.

The recipe runs as written, then the same logger carries calls through request tags, the Anthropic provider with
cache reads and writes, and the OpenAI provider with cached prompt tokens. Tokentrail must store what LiteLLM itself
counted and priced: its `response_cost` to the nano-dollar, and its usage in Tokentrail's convention (input without
the cached tokens, which LiteLLM's prompt_tokens include).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.money import to_nanousd
from tests.clients.conftest import BRANCH, DRIVERS, REPO, Shell, recipe, wait_for_records
from tests.conftest import LiveServer


def run_sdk_calls(shell: Shell, server: LiveServer, token: str, tmp_path: Path) -> list[dict[str, Any]]:
    recipe_file = tmp_path / "litellm_sdk.py"
    recipe_file.write_text(recipe("litellm_sdk.py", server.url))
    results = tmp_path / "results.jsonl"
    shell.run(
        f"python {DRIVERS / 'litellm_sdk_calls.py'} {recipe_file} {results}",
        # The two variables the recipe's docstring exports, pointed at this server.
        env={
            "GENERIC_LOGGER_ENDPOINT": f"{server.url}/v1/ingest/litellm",
            "GENERIC_LOGGER_HEADERS": f"Authorization=Bearer {token}",
        },
    ).check()
    # LiteLLM's costs are floats; read their JSON text as the exact decimal it spells.
    return [json.loads(line, parse_float=Decimal) for line in results.read_text().splitlines()]


def test_recipe_and_each_provider_store_what_litellm_counted_and_priced(
    shell: Shell, live_server: LiveServer, token: str, stored: Any, tmp_path: Path
) -> None:
    calls = {call["case"]: call for call in run_sdk_calls(shell, live_server, token, tmp_path)}
    assert set(calls) == {"recipe", "tags", "anthropic-cache", "openai-cached-prompt"}
    records = wait_for_records(stored, {call["id"] for call in calls.values()})

    for case, call in calls.items():
        record = records[call["id"]]
        assert record["source"] == "litellm", case
        assert record["cost_nanousd"] == to_nanousd(call["response_cost"]), case
        assert record["cost_nanousd"] > 0, case
        # Attribution from the checkout via `tokentrail env`: spend-logs metadata, or the tags alone.
        assert (record["repo"], record["branch"], record["commit"]) == (REPO, BRANCH, shell.checkout.commit), case
        usage = call["usage"]
        assert record["output_tokens"] == usage["completion_tokens"], case
        cached = record["cache_read_tokens"] + record["cache_write_tokens"]
        assert record["input_tokens"] + cached == usage["prompt_tokens"], case

    tokens = {
        case: (records[call["id"]]["input_tokens"], records[call["id"]]["cache_read_tokens"],
               records[call["id"]]["cache_write_tokens"], records[call["id"]]["output_tokens"])
        for case, call in calls.items()
    }  # fmt: skip
    assert tokens == {
        "recipe": (12, 0, 0, 5),
        "tags": (40, 0, 0, 9),
        "anthropic-cache": (300, 1000, 200, 50),
        "openai-cached-prompt": (476, 1024, 0, 50),
    }
    assert records[calls["anthropic-cache"]["id"]]["provider"] == "anthropic"
    assert records[calls["openai-cached-prompt"]["id"]]["provider"] == "openai"


def test_the_three_traps_the_readme_describes_deliver_nothing(
    shell: Shell, live_server: LiveServer, token: str, stored: Any, tmp_path: Path
) -> None:
    """If a LiteLLM upgrade removes a trap, this fails, and the README's description of it must change."""
    env = {
        "GENERIC_LOGGER_ENDPOINT": f"{live_server.url}/v1/ingest/litellm",
        "GENERIC_LOGGER_HEADERS": f"Authorization=Bearer {token}",
    }
    traps = DRIVERS / "litellm_sdk_traps.py"
    ids = []
    for trap in ("by-name", "callback-settings"):
        ids_file = tmp_path / f"{trap}.txt"
        shell.run(f"python {traps} {trap} {ids_file}", env=env).check()
        ids.append(ids_file.read_text())
    plain = shell.run(f"python {traps} plain-script", env=env)
    assert plain.returncode != 0
    assert "RuntimeError: no running event loop" in plain.stderr
    assert ids == ["msg_trap_by_name", "msg_trap_callback_settings"]
    # Every program has exited after flushing every logger LiteLLM held: nothing more can arrive.
    assert stored() == {}
