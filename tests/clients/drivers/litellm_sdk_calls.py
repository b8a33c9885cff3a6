"""Run in the clients' environment: LiteLLM's SDK sending usage the way docs/recipes/litellm_sdk.py does.

First the recipe itself, as written, with its one call answered by LiteLLM's `mock_response`; then calls that use
the recipe's logger and flush, each through another part of LiteLLM: request tags instead of spend-logs metadata,
the Anthropic provider with cache reads and writes, the OpenAI provider with cached prompt tokens. Each call's id,
LiteLLM's own `response_cost` and usage go to the file named by the second argument, one JSON line each.

    python litellm_sdk_calls.py RECIPE.py RESULTS.jsonl
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import litellm
from litellm.integrations.generic_api.generic_api_callback import GenericAPILogger


def _answer(call_id: str, model: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": call_id,
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hello."}}],
        "usage": usage,
    }


# Usage in LiteLLM's (OpenAI-shaped) form, where prompt_tokens include the cached tokens.
RECIPE_ANSWER = _answer("msg_recipe01", "claude-sonnet-4-6", {"prompt_tokens": 12, "completion_tokens": 5})
CASES: dict[str, dict[str, Any]] = {
    "tags": {
        "model": "openai/gpt-5",
        "mock_response": _answer("chatcmpl-tags01", "gpt-5", {"prompt_tokens": 40, "completion_tokens": 9}),
        # `tokentrail env` exports the tags; LiteLLM sends them as request_tags.
        "metadata": {"tags": os.environ["TOKENTRAIL_LITELLM_TAGS"].split(",")},
    },
    "anthropic-cache": {
        "model": "anthropic/claude-sonnet-4-6",
        "mock_response": _answer(
            "msg_cache01",
            "claude-sonnet-4-6",
            {
                "prompt_tokens": 1500,
                "completion_tokens": 50,
                "cache_read_input_tokens": 1000,
                "cache_creation_input_tokens": 200,
            },
        ),
    },
    "openai-cached-prompt": {
        "model": "openai/gpt-5",
        "mock_response": _answer(
            "chatcmpl-cached01",
            "gpt-5",
            {"prompt_tokens": 1500, "completion_tokens": 50, "prompt_tokens_details": {"cached_tokens": 1024}},
        ),
    },
}


def load_recipe(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("litellm_sdk_recipe", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def result(case: str, response: Any) -> dict[str, Any]:
    return {
        "case": case,
        "id": response.id,
        "model": response.model,
        "response_cost": response._hidden_params["response_cost"],
        "usage": response.usage.model_dump(),
    }


async def main(recipe_path: Path) -> list[dict[str, Any]]:
    recipe = load_recipe(recipe_path)
    results: list[dict[str, Any]] = []

    # The recipe as written; only the provider is LiteLLM's mock.
    real_acompletion = litellm.acompletion

    async def answered_by_mock(*args: Any, **kwargs: Any) -> Any:
        response = await real_acompletion(*args, mock_response=RECIPE_ANSWER, **kwargs)
        results.append(result("recipe", response))
        return response

    litellm.acompletion = answered_by_mock
    try:
        await recipe.main()
    finally:
        litellm.acompletion = real_acompletion

    # The other paths, through the logger the recipe registered, flushed the recipe's way.
    (tokentrail,) = [callback for callback in litellm.callbacks if isinstance(callback, GenericAPILogger)]
    try:
        for case, arguments in CASES.items():
            call = {"messages": [{"role": "user", "content": "Say hello."}], "metadata": recipe.tokentrail_metadata()}
            response = await litellm.acompletion(**{**call, **arguments})
            results.append(result(case, response))
    finally:
        await recipe.send_usage(tokentrail)
    return results


if __name__ == "__main__":
    calls = asyncio.run(main(Path(sys.argv[1])))
    Path(sys.argv[2]).write_text("".join(json.dumps(call) + "\n" for call in calls))
