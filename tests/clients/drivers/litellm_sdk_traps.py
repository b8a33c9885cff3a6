"""Run in the clients' environment: the README's three LiteLLM SDK traps, each of which must deliver nothing.

    python litellm_sdk_traps.py by-name|callback-settings IDS.txt   (async; writes the calls' ids)
    python litellm_sdk_traps.py plain-script                        (sync; fails with "no running event loop")

The async traps end the way the recipe does, and more: LiteLLM's logging worker is drained and every batching
logger LiteLLM holds anywhere is flushed, so that a logger the trap did create would have posted before exit.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import litellm
from litellm.integrations.custom_batch_logger import CustomBatchLogger
from litellm.integrations.generic_api.generic_api_callback import GenericAPILogger
from litellm.litellm_core_utils import litellm_logging
from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER


def answer(call_id: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "model": "claude-sonnet-4-6",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hello."}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2},
    }


def metadata() -> dict[str, Any]:
    return {"tags": os.environ["TOKENTRAIL_LITELLM_TAGS"].split(",")}


async def flush_everything() -> None:
    await asyncio.sleep(0)
    await GLOBAL_LOGGING_WORKER.flush()
    holders = (litellm.callbacks, litellm.success_callback, litellm._async_success_callback)
    loggers = {id(item): item for holder in holders for item in holder}
    loggers.update({id(item): item for item in litellm_logging._in_memory_loggers})
    for logger in loggers.values():
        if isinstance(logger, CustomBatchLogger):
            await logger.flush_queue()


async def by_name(call_id: str) -> None:
    litellm.callbacks = ["generic_api"]
    await litellm.acompletion(
        model="anthropic/claude-sonnet-4-6", messages=[{"role": "user", "content": "hi"}],
        mock_response=answer(call_id), metadata=metadata(),
    )  # fmt: skip


async def callback_settings(call_id: str) -> None:
    litellm.callback_settings = {
        "tokentrail": {
            "callback_type": "generic_api",
            "endpoint": os.environ["GENERIC_LOGGER_ENDPOINT"],
            "headers": {"Authorization": os.environ["GENERIC_LOGGER_HEADERS"].split("=", 1)[1]},
        }
    }
    litellm.callbacks = ["tokentrail"]
    await litellm.acompletion(
        model="anthropic/claude-sonnet-4-6", messages=[{"role": "user", "content": "hi"}],
        mock_response=answer(call_id), metadata=metadata(),
    )  # fmt: skip


async def run_async_trap(trap: str, call_id: str) -> None:
    try:
        await {"by-name": by_name, "callback-settings": callback_settings}[trap](call_id)
    finally:
        await flush_everything()


def plain_script() -> None:
    litellm.callbacks = [GenericAPILogger()]
    litellm.completion(
        model="anthropic/claude-sonnet-4-6", messages=[{"role": "user", "content": "hi"}],
        mock_response=answer("msg_trap_plain_script"), metadata=metadata(),
    )  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1] == "plain-script":
        plain_script()
    else:
        trap_call_id = f"msg_trap_{sys.argv[1].replace('-', '_')}"
        asyncio.run(run_async_trap(sys.argv[1], trap_call_id))
        Path(sys.argv[2]).write_text(trap_call_id)
