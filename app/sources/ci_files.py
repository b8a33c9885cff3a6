"""Usage files of agents that ran in CI, as the companion Action uploads them to `POST /v1/ingest/ci`. Pure.

Four kinds of file, told apart by their content (or named by the Action's `kind`):

- `claude-code-action`: the execution file of anthropics/claude-code-action (`outputs.execution_file`), a JSON
  array of Claude Agent SDK messages. Its `result` message carries the session's totals: `session_id`,
  `total_cost_usd`, `usage` (snake_case Anthropic usage) and `modelUsage` (per model: `inputTokens`,
  `outputTokens`, `cacheReadInputTokens`, `cacheCreationInputTokens`, `costUSD`). One record per model of each
  result, at the cost the SDK reports; Anthropic's `input_tokens` already exclude cache tokens. The SDK messages
  carry no time, so the records take the upload's.
- `gh-aw`: GitHub Agentic Workflows' `token-usage.jsonl`, one line per model call written by its firewall's API
  proxy (`_schema: token-usage/v…`, `timestamp`, `request_id`, `provider`, `model`, `input_tokens`,
  `output_tokens`, `cache_read_tokens`, `cache_write_tokens`, `reasoning_tokens`). The proxy copies OpenAI's
  `prompt_tokens` (which include cached tokens) into `input_tokens`, so for every provider but Anthropic the
  cache reads are taken out of input. Priced from tokens.
- `codex`: a Codex rollout, read by the Codex parser.
- `canonical`: canonical NDJSON records (`POST /v1/usage`'s format).

Attribution and ids (DESIGN §8): every record belongs to the run's repository, PR, head branch and head SHA.
A canonical record that names another repository is rejected by index (the run's token writes only its own); the
other kinds name at most the checkout the agent ran in, so the run's attribution replaces theirs. Record ids are
`<run id>:<kind>:<the file's own id>` (session and model, proxy request id, rollout position, record id): the same
file uploaded again, by a re-run attempt of the same run too, gives the same ids and adds nothing, while an agent
that ran again in the re-run has a new session and counts. The attempt is deliberately left out of the ids.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from app.attribution import Attribution
from app.parsing import iter_json_lines, to_datetime, to_decimal, to_int, transcript_lines
from app.records import ParsedBatch, PayloadError, UsageRecord
from app.sources import canonical, codex

KINDS = ("claude-code-action", "gh-aw", "codex", "canonical")
SOURCE = "ci"
AGENTS = {"claude-code-action": "claude-code-action", "gh-aw": "gh-aw", "codex": "codex"}
_CODEX_TYPES = {"session_meta", "turn_context", "event_msg", "response_item", "compacted"}
_SDK_TYPES = {"system", "assistant", "user", "result", "stream_event"}


@dataclass(frozen=True, slots=True)
class Run:
    """The CI run an upload belongs to: from its OIDC token (repository, run) and its event (PR, head)."""

    repo: str  # owner/name, lower-cased
    run_id: str
    pr: int | None = None
    branch: str | None = None
    commit: str | None = None

    @property
    def attribution(self) -> Attribution:
        return Attribution.parse(repo=self.repo, branch=self.branch, commit=self.commit, pr=self.pr)


def run_from_claims(claims: Mapping[str, Any], *, repository: str, event: Attribution) -> Run:
    """The run of a verified OIDC token. What the token says wins over what the Action read from the event: the
    PR number of a `refs/pull/N/merge` ref and the `head_ref` branch. The head SHA is only in the event (the
    token's `sha` is the merge commit)."""
    run_id = str(claims.get("run_id") or "").strip()
    if not run_id:
        raise ValueError("the OIDC token has no run_id claim")
    pulled = re.fullmatch(r"refs/pull/(\d+)/(?:merge|head)", str(claims.get("ref") or ""))
    head_ref = str(claims.get("head_ref") or "").strip()
    return Run(
        repo=repository,
        run_id=run_id,
        pr=int(pulled.group(1)) if pulled else event.pr,
        branch=head_ref or event.branch,
        commit=event.commit,
    )


def detect(body: bytes) -> str | None:
    """The kind of a usage file from its first readable item, or None when it is none of them."""
    first = _first_item(body)
    if not isinstance(first, dict):
        return None
    if str(first.get("_schema", "")).startswith("token-usage/") or {"request_id", "cache_read_tokens"} <= set(first):
        return "gh-aw"
    if first.get("type") in _CODEX_TYPES and "payload" in first:
        return "codex"
    if first.get("type") in _SDK_TYPES:
        return "claude-code-action"
    if {"id", "model", "timestamp"} <= set(first):
        return "canonical"
    return None


def _first_item(body: bytes) -> Any:
    stripped = body.lstrip()
    if stripped[:1] == b"[":
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = None
        if isinstance(data, list):
            return data[0] if data else None
    for _, value in iter_json_lines(body):
        if not isinstance(value, ValueError):
            return value
    return None


def parse(body: bytes, *, kind: str, run: Run, now: datetime) -> ParsedBatch:
    """The records of one usage file of `kind`, attributed to `run`; `now` dates records whose file has no time."""
    if not body.strip():
        raise PayloadError("body is empty")
    if kind == "claude-code-action":
        batch = _execution_file(body, now=now)
    elif kind == "gh-aw":
        batch = _token_usage(body)
    elif kind == "codex":
        batch = codex.parse(body)
    elif kind == "canonical":
        batch = canonical.parse(body, ndjson=body.lstrip()[:1] != b"[")
    else:
        raise PayloadError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    return _for_run(batch, kind=kind, run=run)


def _for_run(batch: ParsedBatch, *, kind: str, run: Run) -> ParsedBatch:
    """Re-key the records to the run and attribute them to it (see the module docstring)."""
    out = ParsedBatch(rejected=list(batch.rejected), skipped=batch.skipped)
    attribution = run.attribution
    for position, record in zip(batch.positions, batch.records, strict=True):
        if kind == "canonical":
            named = record.attribution.repo
            if named is not None and named != run.repo:
                out.reject(position, f"names repository {named}; this run's token writes only {run.repo}")
                continue
            own = record.attribution.filled_from(attribution)
        else:
            own = attribution
        out.add(
            position,
            replace(
                record,
                id=f"{run.run_id}:{kind}:{record.id}",
                source=SOURCE,
                attribution=own,
                agent=record.agent or AGENTS.get(kind),
            ),
        )
    return out


# --- claude-code-action: the Agent SDK's result messages ----------------------------------------------------------


def _execution_file(body: bytes, *, now: datetime) -> ParsedBatch:
    batch = ParsedBatch()
    model: str | None = None
    seen_results: dict[str, int] = {}
    for index, message in transcript_lines(body):
        if isinstance(message, ValueError):
            batch.reject(index, str(message))
            continue
        if not isinstance(message, dict):
            batch.reject(index, "message is not a JSON object")
            continue
        if message.get("type") == "system" and isinstance(message.get("model"), str):
            model = message["model"]
        if message.get("type") != "result":
            batch.skipped += 1
            continue
        session = message.get("session_id")
        if not isinstance(session, str) or not session:
            batch.reject(index, "result message has no session_id")
            continue
        # A file holding several results of one session (a resumed query) keys each by its order.
        order = seen_results.get(session, 0)
        seen_results[session] = order + 1
        key = session if order == 0 else f"{session}#{order}"
        try:
            records = _result_records(message, key=key, session=session, model=model, now=now)
        except ValueError as error:
            batch.reject(index, str(error))
            continue
        if not records:
            batch.skipped += 1
        for record in records:
            batch.add(index, record)
    return batch


def _result_records(
    message: dict[str, Any], *, key: str, session: str, model: str | None, now: datetime
) -> list[UsageRecord]:
    by_model = message.get("modelUsage")
    if isinstance(by_model, dict) and by_model:
        records = []
        for name, usage in sorted(by_model.items()):
            if not isinstance(usage, dict):
                raise ValueError(f"modelUsage[{name!r}] is not an object")
            records.append(
                UsageRecord(
                    id=f"{key}:{name}",
                    source=SOURCE,
                    timestamp=now,
                    model=name,
                    provider="anthropic",
                    input_tokens=to_int(usage.get("inputTokens")),
                    cache_read_tokens=to_int(usage.get("cacheReadInputTokens")),
                    cache_write_tokens=to_int(usage.get("cacheCreationInputTokens")),
                    output_tokens=to_int(usage.get("outputTokens")),
                    cost_usd=to_decimal(usage.get("costUSD")),
                    session_id=session,
                )
            )
        return records
    usage = message.get("usage")
    if not isinstance(usage, dict):
        return []
    if not model:
        raise ValueError("result has usage but no modelUsage, and no system message names the model")
    return [
        UsageRecord(
            id=f"{key}:{model}",
            source=SOURCE,
            timestamp=now,
            model=model,
            provider="anthropic",
            input_tokens=to_int(usage.get("input_tokens")),
            cache_read_tokens=to_int(usage.get("cache_read_input_tokens")),
            cache_write_tokens=to_int(usage.get("cache_creation_input_tokens")),
            output_tokens=to_int(usage.get("output_tokens")),
            cost_usd=to_decimal(message.get("total_cost_usd")),
            session_id=session,
        )
    ]


# --- gh-aw: the firewall API proxy's token-usage.jsonl ------------------------------------------------------------


def _token_usage(body: bytes) -> ParsedBatch:
    batch = ParsedBatch()
    for index, line in iter_json_lines(body):
        if isinstance(line, ValueError):
            batch.reject(index, str(line))
            continue
        if not isinstance(line, dict):
            batch.reject(index, "line is not a JSON object")
            continue
        try:
            record = _token_usage_record(line)
        except ValueError as error:
            batch.reject(index, str(error))
            continue
        if record is None:
            batch.skipped += 1
        else:
            batch.add(index, record)
    return batch


def _token_usage_record(line: dict[str, Any]) -> UsageRecord | None:
    provider = str(line.get("provider") or "").strip().lower() or None
    input_tokens = to_int(line.get("input_tokens"))
    cache_read = to_int(line.get("cache_read_tokens"))
    cache_write = to_int(line.get("cache_write_tokens"))
    output = to_int(line.get("output_tokens"))
    if not (input_tokens or cache_read or cache_write or output):
        return None  # a refused or failed request: no tokens were billed
    model = line.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ValueError("model is required")
    if "timestamp" not in line:
        raise ValueError("timestamp is required")
    try:
        timestamp = to_datetime(line["timestamp"])
    except ValueError as error:
        raise ValueError(f"timestamp: {error}") from None
    if provider != "anthropic":
        input_tokens = max(0, input_tokens - cache_read)  # OpenAI-style prompt_tokens include the cached ones
    request_id = line.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        request_id = hashlib.sha256(json.dumps(line, sort_keys=True).encode()).hexdigest()[:32]
    return UsageRecord(
        id=request_id,
        source=SOURCE,
        timestamp=timestamp,
        model=model.strip(),
        provider=provider,
        input_tokens=input_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        output_tokens=output,
        reasoning_tokens=to_int(line.get("reasoning_tokens")),
        call_ids=(),
    )


def describe(kind: str) -> str:
    """How the README and error messages name a kind."""
    return {
        "claude-code-action": "claude-code-action execution file",
        "gh-aw": "gh-aw token-usage.jsonl",
        "codex": "Codex rollout",
        "canonical": "canonical NDJSON",
    }.get(kind, kind)
