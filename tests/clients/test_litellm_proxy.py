"""LiteLLM's proxy, started with the README's recipe (docs/recipes/litellm-proxy.sh and litellm-proxy.yaml) and a
mock model, called through the official OpenAI and Anthropic SDKs with the headers `tokentrail env` prints.

The recipe's config is used as written, after a `model_list` of two models that LiteLLM answers itself
(`mock_response`). Every call must reach Tokentrail with the proxy's own cost and the checkout's attribution: the
README's earlier snippet (`Authorization: Bearer ${TOKENTRAIL_TOKEN}` in the YAML) sent that text as is, every batch
got a 401, and LiteLLM, which does not retry, dropped them without a word.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.money import to_nanousd
from tests.clients.conftest import BRANCH, DRIVERS, REPO, Shell, recipe, wait_for_records
from tests.conftest import LiveServer, free_port

MASTER_KEY = "sk-tokentrail-test-0123456789abcdef"
MOCK_MODELS = """\
model_list:
  - model_name: gpt-5
    litellm_params:
      model: openai/gpt-5
      api_key: unused
      mock_response: "Hello."
  - model_name: claude-sonnet-4-6
    litellm_params:
      model: anthropic/claude-sonnet-4-6
      api_key: unused
      mock_response: "Hello."
"""


def wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path, *, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the LiteLLM proxy exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health/liveliness", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the LiteLLM proxy did not start in {timeout:.0f} s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    # The recipe's bash and the proxy it started share the session started for them.
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def proxy(shell: Shell, live_server: LiveServer, token: str, tmp_path: Path) -> Iterator[str]:
    """The proxy of the recipe, started by the recipe's own shell lines, sending to the live server."""
    config = shell.checkout.path / "litellm-proxy.yaml"
    config.write_text(MOCK_MODELS + recipe("litellm-proxy.yaml", live_server.url))
    port = free_port()
    log = tmp_path / "litellm-proxy.log"
    process = shell.start(
        recipe("litellm-proxy.sh", live_server.url),
        env={
            "TOKENTRAIL_TOKEN": token,
            "LITELLM_MASTER_KEY": MASTER_KEY,
            # litellm's --host and --port, read from the environment so that the recipe's command stays as written.
            "HOST": "127.0.0.1",
            "PORT": str(port),
        },
        log=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process, log)
        yield url
    finally:
        stop(process)


def test_openai_and_anthropic_sdks_through_the_recipe_proxy_reach_tokentrail(
    shell: Shell, proxy: str, stored: Any, tmp_path: Path
) -> None:
    results = tmp_path / "results.jsonl"
    shell.run(f"python {DRIVERS / 'proxy_calls.py'} {proxy} {results}", env={"LITELLM_MASTER_KEY": MASTER_KEY}).check()
    calls = {call["sdk"]: call for call in map(json.loads, results.read_text().splitlines())}
    assert set(calls) == {"openai", "anthropic"}

    # The proxy posts its batch every few seconds, in the background.
    records = wait_for_records(stored, {call["id"] for call in calls.values()})
    for sdk, call in calls.items():
        record = records[call["id"]]
        assert record["source"] == "litellm", sdk
        assert record["cost_nanousd"] == to_nanousd(Decimal(call["response_cost"])), sdk
        assert record["cost_nanousd"] > 0, sdk
        assert (record["repo"], record["branch"], record["commit"]) == (REPO, BRANCH, shell.checkout.commit), sdk

    openai_usage, openai_record = calls["openai"]["usage"], records[calls["openai"]["id"]]
    assert (openai_record["provider"], openai_record["model"]) == ("openai", "gpt-5")
    assert (openai_record["input_tokens"], openai_record["output_tokens"]) == (
        openai_usage["prompt_tokens"],
        openai_usage["completion_tokens"],
    )
    anthropic_usage, anthropic_record = calls["anthropic"]["usage"], records[calls["anthropic"]["id"]]
    assert anthropic_record["provider"] == "anthropic"
    # Anthropic's input_tokens exclude cache tokens, as Tokentrail's do.
    assert (anthropic_record["input_tokens"], anthropic_record["output_tokens"]) == (
        anthropic_usage["input_tokens"],
        anthropic_usage["output_tokens"],
    )
