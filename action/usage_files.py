"""The `usage-files` input of the companion Action: upload the usage of agents that ran in this job to Tokentrail
(`POST /v1/ingest/ci`) before the verdict is asked, so the verdict includes it. Standard library only.

Each line of the input is a glob (`**` allowed; relative to the workspace). Every file matched is sent gzip-compressed
with the run's OIDC token and the PR's number, head branch and head SHA from the event; the server tells the kind of
file from its content and attributes every record to this run's PR. Only what carries usage leaves the runner
(`slim`): an execution file's `system` and `result` messages, a Codex rollout's session, turn-context and
token-count lines; the conversation, code and tool output stay in the job (and under the server's 10 MB limit).
"""

from __future__ import annotations

import glob
import gzip
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Uploaded:
    path: Path
    accepted: int
    duplicates: int
    rejected: list[str]
    kind: str


def patterns(text: str) -> list[str]:
    """The globs of the input: one a line; blank lines and `#` comments are ignored."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def find_files(text: str, *, workspace: str) -> tuple[list[Path], list[str]]:
    """(the files the globs match, in order and once each; the globs that matched no file)."""
    found: list[Path] = []
    unmatched: list[str] = []
    for pattern in patterns(text):
        expanded = os.path.expanduser(pattern)
        if not os.path.isabs(expanded):
            expanded = os.path.join(workspace, expanded)
        matches = [Path(p) for p in sorted(glob.glob(expanded, recursive=True)) if os.path.isfile(p)]
        if not matches:
            unmatched.append(pattern)
        for path in matches:
            if path not in found:
                found.append(path)
    return found, unmatched


_SDK_TYPES = {"system", "assistant", "user", "result", "stream_event"}
_CODEX_KEPT = {"session_meta", "turn_context"}
_CODEX_TYPES = {"session_meta", "turn_context", "event_msg", "response_item", "compacted"}


def slim(data: bytes) -> bytes:
    """The file without what carries no usage; a file it does not recognise is sent as it is."""
    if data.lstrip()[:1] == b"[":
        try:
            messages = json.loads(data)
        except ValueError:
            return data
        if isinstance(messages, list) and all(isinstance(m, dict) and m.get("type") in _SDK_TYPES for m in messages):
            kept = [_sdk_message(m) for m in messages if m.get("type") in ("system", "result")]
            return json.dumps(kept).encode()
        return data
    lines = []
    for raw in data.splitlines(keepends=True):
        try:
            line = json.loads(raw)
        except ValueError:
            lines.append(raw)  # the server rejects it by index, with the reason
            continue
        if (
            not isinstance(line, dict)
            or line.get("type") not in _CODEX_TYPES
            or line["type"] in _CODEX_KEPT
            or (
                line["type"] == "event_msg"
                and isinstance(line.get("payload"), dict)
                and line["payload"].get("type") == "token_count"
            )
        ):
            lines.append(raw)
    return b"".join(lines)


def _sdk_message(message: dict[str, Any]) -> dict[str, Any]:
    if message.get("type") == "result":
        return {key: value for key, value in message.items() if key != "result"}  # the final answer's text
    return {key: message[key] for key in ("type", "subtype", "session_id", "model") if key in message}


def upload_file(
    path: Path,
    *,
    url: str,
    token: str,
    pr: Any,
    post: Callable[..., Any],
) -> Uploaded:
    """POST one file; `post(url, headers=…, body=…)` answers a Response (status, body, json(), detail)."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/octet-stream",
        "Content-Encoding": "gzip",
        "Accept": "application/json",
        "x-vcs-change-id": str(pr.number),
    }
    if pr.head_ref:
        headers["x-vcs-ref-head-name"] = pr.head_ref
    if pr.head_sha:
        headers["x-vcs-ref-head-revision"] = pr.head_sha
    body = gzip.compress(slim(path.read_bytes()))
    response = post(url, headers=headers, body=body)
    data = response.json() if response.status in (200, 422) else None
    if not isinstance(data, dict):
        raise UploadRefused(response.status, response.detail)
    rejected = [f"item {item.get('index')}: {item.get('error')}" for item in data.get("rejected") or []]
    return Uploaded(
        path=path,
        accepted=int(data.get("accepted") or 0),
        duplicates=int(data.get("duplicates") or 0),
        rejected=rejected,
        kind=str(data.get("kind") or "?"),
    )


class UploadRefused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"({status}): {detail}")
        self.status = status
        self.detail = detail
