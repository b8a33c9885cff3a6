"""Run in the clients' environment after `eval "$(tokentrail env)"`: the official OpenAI and Anthropic SDKs call a
LiteLLM proxy with the attribution headers `tokentrail env` exported (ANTHROPIC_CUSTOM_HEADERS, one `Name: Value`
a line, which Claude Code sends as they are). Each call's id, the cost the proxy reports for it
(`x-litellm-response-cost`) and its usage go to the file named by the second argument, one JSON line each.

    python proxy_calls.py PROXY_URL RESULTS.jsonl
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anthropic
import openai


def exported_headers() -> dict[str, str]:
    lines = os.environ["ANTHROPIC_CUSTOM_HEADERS"].splitlines()
    return dict((name.strip(), value.strip()) for name, value in (line.split(":", 1) for line in lines if line))


def main(proxy: str, out: Path) -> None:
    key = os.environ["LITELLM_MASTER_KEY"]
    headers = exported_headers()
    results: list[dict[str, Any]] = []

    openai_client = openai.OpenAI(base_url=proxy, api_key=key, default_headers=headers, max_retries=0)
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt-5", messages=[{"role": "user", "content": "Say hello."}]
    )
    completion = raw.parse()
    results.append(
        {
            "sdk": "openai",
            "id": completion.id,
            "response_cost": raw.headers["x-litellm-response-cost"],
            "usage": completion.usage.model_dump() if completion.usage else None,
        }
    )

    anthropic_client = anthropic.Anthropic(base_url=proxy, api_key=key, default_headers=headers, max_retries=0)
    raw_message = anthropic_client.messages.with_raw_response.create(
        model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "Say hello."}]
    )
    message = raw_message.parse()
    results.append(
        {
            "sdk": "anthropic",
            "id": message.id,
            "response_cost": raw_message.headers["x-litellm-response-cost"],
            "usage": message.usage.model_dump(),
        }
    )
    out.write_text("".join(json.dumps(line) + "\n" for line in results))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
