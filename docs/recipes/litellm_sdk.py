"""LiteLLM's SDK, sending the usage of every call to Tokentrail.

export GENERIC_LOGGER_ENDPOINT=https://tokentrail.example.com/v1/ingest/litellm
export GENERIC_LOGGER_HEADERS="Authorization=Bearer $TOKENTRAIL_TOKEN"
eval "$(tokentrail env)"   # in the checkout the work is for: its repo, branch and commit
python litellm_sdk.py
"""

import asyncio
import json
import os

import litellm
from litellm.integrations.generic_api.generic_api_callback import GenericAPILogger
from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER


def tokentrail_metadata() -> dict:
    """The checkout's repo, branch and commit, as exported by `tokentrail env`."""
    return {"spend_logs_metadata": json.loads(os.environ.get("TOKENTRAIL_LITELLM_METADATA_HEADER", "{}"))}


async def send_usage(tokentrail: GenericAPILogger) -> None:
    """Deliver every finished call now: LiteLLM logs a call in a background task and posts in batches every 5 s,
    so a program that exits sooner loses them."""
    await asyncio.sleep(0)  # let the finished calls reach LiteLLM's logging worker
    await GLOBAL_LOGGING_WORKER.flush()  # run the callbacks: they queue the records
    await tokentrail.flush_queue()  # post the queue to Tokentrail


async def main() -> None:
    tokentrail = GenericAPILogger()  # reads GENERIC_LOGGER_*; needs a running event loop
    litellm.callbacks = [tokentrail]
    try:
        response = await litellm.acompletion(
            model="anthropic/claude-sonnet-4-6",
            messages=[{"role": "user", "content": "Say hello."}],
            metadata=tokentrail_metadata(),
        )
        print(response.choices[0].message.content)
    finally:
        await send_usage(tokentrail)


if __name__ == "__main__":
    asyncio.run(main())
