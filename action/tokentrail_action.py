#!/usr/bin/env python3
"""Tokentrail's companion Action (DESIGN §8): the budget verdict of this pull request's AI spend.

Standard library only, so it starts in about a second on any runner with Python 3.9 or newer. It reads the pull
request from $GITHUB_EVENT_PATH (the head SHA from the event, not $GITHUB_SHA, which is a merge commit; a comment on
a pull request, `issue_comment`, names only its number, and the server knows its head), proves which
repository it runs for with the run's OIDC token (or a Tokentrail API token), asks the server for the verdict,
appends the rendered report to the job summary, sets the step outputs `cost-usd`, `status`, `comment-url` and
`details-url`, annotates the run, and exits 1 only when the verdict reaches `fail-on` (or when something is broken:
bad inputs, refused credentials, an unreachable server).

With `usage-files`, it first uploads the usage of agents that ran in the job (`usage_files.py`, next to this
script) with the run's OIDC token, and waits for the server to match it, so the verdict includes it.

Inputs arrive as INPUT_* environment variables set by action.yml (never interpolated into the script).
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib import error, parse, request

# usage_files.py sits next to this script; `python -I` (and some runners' setups) leave its folder off sys.path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import usage_files

USER_AGENT = "tokentrail-action/1"
FAIL_ON = ("fail", "warn", "never")
REACHES = {"fail": {"fail"}, "warn": {"warn", "fail"}, "never": set()}
TIMEOUT_SECONDS = 20.0
RETRY_DELAYS = (1.0, 2.0)  # connection errors and 502/503/504 are retried after these pauses
RETRY_STATUSES = {502, 503, 504}
MAX_WAIT_SECONDS = 3600.0
SETTLE_SECONDS = 60.0  # after an upload: how long the verdict may wait for the server to match the new usage


class ActionError(Exception):
    """Something broken that the user must know about: reported with ::error:: and exit code 1."""


# ---------------------------------------------------------------- workflow commands and files


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: str) -> None:
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    print(f"::{name}{' ' + props if props else ''}::{escape_data(message)}", flush=True)


def append(path: str, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)


def output_block(name: str, value: str) -> str:
    """`name<<DELIMITER` … `DELIMITER`: safe for any value, multi-line included."""
    delimiter = f"ghadelimiter_{uuid.uuid4()}"
    while delimiter in value:
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


# ---------------------------------------------------------------- configuration


def _number(name: str, text: str, *, integer: bool = False) -> str:
    if not text:
        return ""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ActionError(f"the {name} input must be a number, not {text!r}") from None
    if not value.is_finite() or value < 0 or (integer and value != value.to_integral_value()):
        kind = "a whole number" if integer else "a number"
        raise ActionError(f"the {name} input must be {kind} of 0 or more, not {text!r}")
    return str(int(value)) if integer else text


@dataclass(frozen=True)
class Config:
    server_url: str
    token: str
    audience: str
    max_cost: str
    max_cost_per_changed_line: str
    max_tokens: str
    fail_on: str
    wait_seconds: float
    event_name: str
    event_path: str
    step_summary: str
    output_path: str
    id_token_url: str
    id_token_request_token: str
    repository: str
    usage_files: str = ""
    workspace: str = ""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(name, "").strip()

        server_url = get("INPUT_SERVER_URL").rstrip("/")
        if not server_url:
            raise ActionError("the server-url input is required (the address of your Tokentrail server)")
        if not server_url.startswith(("http://", "https://")) or not parse.urlsplit(server_url).netloc:
            raise ActionError(f"the server-url input must be an http(s) URL, not {server_url!r}")
        fail_on = (get("INPUT_FAIL_ON") or "fail").lower()
        if fail_on not in FAIL_ON:
            raise ActionError(f"the fail-on input must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
        wait = _number("wait-seconds", get("INPUT_WAIT_SECONDS") or "0")
        return cls(
            server_url=server_url,
            token=get("INPUT_TOKEN"),
            audience=get("INPUT_AUDIENCE") or server_url,
            max_cost=_number("max-cost", get("INPUT_MAX_COST")),
            max_cost_per_changed_line=_number("max-cost-per-changed-line", get("INPUT_MAX_COST_PER_CHANGED_LINE")),
            max_tokens=_number("max-tokens", get("INPUT_MAX_TOKENS"), integer=True),
            fail_on=fail_on,
            wait_seconds=min(float(wait), MAX_WAIT_SECONDS),
            event_name=get("GITHUB_EVENT_NAME"),
            event_path=get("GITHUB_EVENT_PATH"),
            step_summary=get("GITHUB_STEP_SUMMARY"),
            output_path=get("GITHUB_OUTPUT"),
            id_token_url=get("ACTIONS_ID_TOKEN_REQUEST_URL"),
            id_token_request_token=get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
            repository=get("GITHUB_REPOSITORY"),
            usage_files=env.get("INPUT_USAGE_FILES", ""),
            workspace=get("GITHUB_WORKSPACE") or os.getcwd(),
        )

    def overrides(self) -> dict[str, str]:
        pairs = (
            ("max_cost", self.max_cost),
            ("max_cost_per_changed_line", self.max_cost_per_changed_line),
            ("max_tokens", self.max_tokens),
        )
        return {key: value for key, value in pairs if value}

    @property
    def poll_seconds(self) -> float:
        return min(10.0, max(1.0, self.wait_seconds / 10))


# ---------------------------------------------------------------- the pull request


@dataclass(frozen=True)
class PullRequest:
    repo: str  # owner/name of the base repository
    number: int
    head_sha: str  # "" when the event does not say (a comment)
    head_repo: str | None  # None when the fork was deleted, or the event does not say
    head_ref: str = ""  # the PR's head branch
    by_comment: bool = False  # the run was started by a comment on the PR (`issue_comment`)

    @property
    def is_fork(self) -> bool:
        """Whether the run is a fork's, without the base repository's credentials. A comment's run never is:
        GitHub runs `issue_comment` workflows from the base repository's default branch, with its permissions."""
        if self.by_comment:
            return False
        return self.head_repo is None or self.head_repo.lower() != self.repo.lower()

    @property
    def api_path(self) -> str:
        owner, name = self.repo.split("/", 1)
        return f"/v1/repos/{parse.quote(owner, safe='')}/{parse.quote(name, safe='')}/pulls/{self.number}"


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def read_event(config: Config) -> Any:
    if not config.event_path:
        raise ActionError("GITHUB_EVENT_PATH is not set: this script runs as a step of a GitHub Actions job")
    try:
        with open(config.event_path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as problem:
        raise ActionError(f"cannot read the event payload at {config.event_path}: {problem}") from None


def _repository(event: Any, config: Config, *also: Any) -> str:
    for found in (*also, _dig(event, "repository", "full_name"), config.repository):
        if isinstance(found, str) and found.count("/") == 1:
            return found
    raise ActionError("the event payload names no repository")


def pull_request_of(event: Any, config: Config) -> PullRequest | None:
    """The PR this run is about, or None for an event that has none (push, schedule, a comment on an issue…)."""
    pull = _dig(event, "pull_request")
    if isinstance(pull, dict):
        number = pull.get("number")
        if not isinstance(number, int):
            return None
        head_repo = _dig(pull, "head", "repo", "full_name")
        return PullRequest(
            repo=_repository(event, config, _dig(pull, "base", "repo", "full_name")),
            number=number,
            head_sha=str(_dig(pull, "head", "sha") or ""),
            head_repo=head_repo if isinstance(head_repo, str) else None,
            head_ref=str(_dig(pull, "head", "ref") or ""),
        )
    # `issue_comment`: GitHub sends pull requests' comments as issues' comments; `issue.pull_request` (links only,
    # no head) is there when the issue is a pull request. The head is left to the server, which knows the PR.
    issue = _dig(event, "issue")
    number = _dig(issue, "number")
    if isinstance(_dig(issue, "pull_request"), dict) and isinstance(number, int):
        return PullRequest(repo=_repository(event, config), number=number, head_sha="", head_repo=None, by_comment=True)
    return None


def nothing_to_check(event: Any, config: Config) -> str:
    """Why a run without a PR has nothing to check, in the words of its event."""
    number = _dig(event, "issue", "number")
    if isinstance(number, int):
        return f"{config.event_name or 'this event'} of issue #{number}, which is not a pull request: nothing to check."
    return f"Tokentrail checks pull requests, and {config.event_name or 'this event'} is not one: nothing to check."


# ---------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def detail(self) -> str:
        data = self.json()
        found = data.get("detail") if isinstance(data, dict) else None
        if found is None and isinstance(data, dict):
            found = data.get("message")
        text = found if isinstance(found, str) else json.dumps(found) if found is not None else ""
        return text or self.body.decode("utf-8", errors="replace")[:300].strip() or "(no detail)"


def http_get(url: str, *, headers: dict[str, str], what: str, sleep: Callable[[float], None] = time.sleep) -> Response:
    """GET with retries for connection errors and 502/503/504; every other answer is returned as is."""
    return http_request(url, headers=headers, what=what, sleep=sleep)


def http_request(
    url: str,
    *,
    headers: dict[str, str],
    what: str,
    body: bytes | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Response:
    """GET (or POST with a body) with retries for connection errors and 502/503/504. A POST is retried too: the
    uploads it sends are idempotent (the server dedupes their records)."""
    attempt = 0
    while True:
        method = "GET" if body is None else "POST"
        req = request.Request(url, data=body, headers={"User-Agent": USER_AGENT, **headers}, method=method)
        try:
            with request.urlopen(req, timeout=TIMEOUT_SECONDS) as answer:
                response = Response(answer.status, answer.read())
        except error.HTTPError as refused:
            response = Response(refused.code, refused.read())
        except (OSError, ValueError) as problem:  # URLError, refused/reset connections, timeouts
            reason = getattr(problem, "reason", None) or problem
            if attempt >= len(RETRY_DELAYS):
                raise ActionError(f"cannot reach {what} at {_origin(url)}: {reason}") from None
            sleep(RETRY_DELAYS[attempt])
            attempt += 1
            continue
        if response.status in RETRY_STATUSES and attempt < len(RETRY_DELAYS):
            sleep(RETRY_DELAYS[attempt])
            attempt += 1
            continue
        return response


def _origin(url: str) -> str:
    parts = parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def fetch_id_token(config: Config) -> str:
    """The run's OIDC token for our audience, asked of the Actions runtime as `@actions/core` getIDToken does."""
    separator = "&" if "?" in config.id_token_url else "?"
    url = f"{config.id_token_url}{separator}audience={parse.quote(config.audience, safe='')}"
    response = http_get(
        url,
        headers={"Authorization": f"Bearer {config.id_token_request_token}", "Accept": "application/json"},
        what="the Actions OIDC token endpoint",
    )
    value = _dig(response.json(), "value")
    if response.status != 200 or not isinstance(value, str) or not value:
        raise ActionError(f"the Actions runtime gave no OIDC token ({response.status}): {response.detail}")
    print(f"::add-mask::{value}", flush=True)
    return value


class Tokentrail:
    def __init__(self, config: Config, token: str, *, using_oidc: bool) -> None:
        self.config = config
        self.token = token
        self.using_oidc = using_oidc

    def get(self, path: str, params: Mapping[str, str] | None = None, *, accept: str = "application/json") -> Any:
        """The answer (JSON, or text for markdown), None for 404; other refusals are ActionErrors."""
        query = f"?{parse.urlencode(dict(params))}" if params else ""
        response = http_get(
            f"{self.config.server_url}{path}{query}",
            headers={"Authorization": f"Bearer {self.token}", "Accept": accept},
            what="the Tokentrail server",
        )
        if response.status == 200:
            if accept == "application/json":
                data = response.json()
                if not isinstance(data, dict):
                    raise ActionError(f"the Tokentrail server answered {path} with something that is not JSON")
                return data
            return response.body.decode("utf-8", errors="replace")
        if response.status == 404:
            return None
        raise ActionError(self._refusal(response))

    def _refusal(self, response: Response) -> str:
        message = f"the Tokentrail server refused the request ({response.status}): {response.detail}"
        if response.status == 401 and self.using_oidc:
            message += (
                f". The OIDC token's audience is {self.config.audience}; the server accepts its TOKENTRAIL_PUBLIC_URL"
                " (or TOKENTRAIL_OIDC_AUDIENCE), so set the audience input (or server-url) to that"
            )
        elif response.status == 401:
            message += ". Check the token input: it must be a Tokentrail API token of the repository's owner"
        return message


# ---------------------------------------------------------------- waiting for the verdict


@dataclass(frozen=True)
class Outcome:
    verdict: dict[str, Any] | None  # None: the server does not know the PR
    head_seen: bool  # the server knows the event's head commit


def _spend(verdict: dict[str, Any] | None) -> Any:
    return None if verdict is None else (verdict.get("cost_usd"), verdict.get("records"))


def wait_for_verdict(
    client: Tokentrail,
    pr: PullRequest,
    *,
    settle: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """One verdict with wait-seconds 0. Otherwise poll until the PR is known at its head commit, no usage of it
    waits to be matched, and the spend did not change over one poll interval, or until wait-seconds have passed.
    With `settle` (usage was just uploaded) and wait-seconds 0, poll only until no usage waits to be matched, for
    at most `settle` seconds."""
    config = client.config
    settling = config.wait_seconds <= 0 and settle > 0
    deadline = clock() + (settle if settling else config.wait_seconds)
    previous: dict[str, Any] | None = None
    head_seen = not pr.head_sha
    while True:
        verdict = client.get(pr.api_path + "/budget", config.overrides())
        if not head_seen and verdict is not None:
            summary = client.get(pr.api_path)
            head_seen = summary is not None and summary.get("head_sha") == pr.head_sha
        pending = int(verdict.get("pending_records") or 0) if verdict is not None else 0
        changed = previous is None or _spend(previous) != _spend(verdict)
        if settling and (verdict is None or not pending):
            return Outcome(verdict, head_seen)
        if not settling and (
            config.wait_seconds <= 0 or (verdict is not None and head_seen and not pending and not changed)
        ):
            return Outcome(verdict, head_seen)
        remaining = deadline - clock()
        if remaining <= 0:
            if settling and pending:
                command(
                    "notice",
                    f"{pending} usage record(s) were still being matched after {settle:.0f}s: the verdict may not"
                    " include all of this job's upload yet (the PR comment will).",
                    title="AI spend",
                )
            return Outcome(verdict, head_seen)
        if verdict is None:
            why = f"Tokentrail does not know {pr.repo}#{pr.number} yet"
        elif not head_seen:
            why = f"Tokentrail has not seen commit {pr.head_sha[:7]} yet"
        elif pending:
            why = f"{pending} usage record(s) are still being matched"
        else:
            why = f"spend is ${verdict.get('cost_usd')} over {verdict.get('records')} record(s); checking it is final"
        pause = min(1.0 if settling else config.poll_seconds, remaining)
        print(f"Waiting {pause:.0f}s: {why}.", flush=True)
        sleep(pause)
        previous = verdict


# ---------------------------------------------------------------- reporting


def usd(text: Any) -> str:
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        return f"${text}"
    if value == 0 or abs(value) >= Decimal("0.01"):
        return f"${value:,.2f}"
    return f"${value.normalize():f}"


def cents(text: Any) -> str:
    """The `cost-usd` output: dollars rounded to the cent ("9.3638688" → "9.36"), as the docs show it."""
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        return str(text)
    if not value.is_finite():
        return str(text)
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


HEADLINES = {
    "pass": "✅ within budget",
    "warn": "⚠️ close to the budget",
    "fail": "❌ over budget",
    "none": "no budget applies",
}


def summary_markdown(pr: PullRequest, verdict: dict[str, Any], config: Config, comment: str | None) -> str:
    status = str(verdict.get("status"))
    lines = [
        f"### AI spend for {pr.repo}#{pr.number}: {HEADLINES.get(status, status)}",
        "",
        f"**{usd(verdict.get('cost_usd'))}** · status `{status}` · fail-on `{config.fail_on}`",
        "",
    ]
    lines += [f"- {reason}" for reason in verdict.get("reasons") or []]
    limits = {key: value for key, value in (verdict.get("limits") or {}).items() if value is not None}
    overridden = [key.replace("_", "-") for key in config.overrides()]
    if limits:
        shown = ", ".join(f"`{key}` {value}" for key, value in limits.items())
        source = f" ({', '.join(overridden)} from this workflow's inputs)" if overridden else ""
        lines += ["", f"Limits: {shown}{source}."]
    if comment:
        if overridden:
            lines += ["", "The report below is the PR comment's, which judges against `.github/tokentrail.yml`."]
        lines += ["", "---", "", comment.rstrip("\n")]
    return "\n".join(lines) + "\n\n"


def write_outputs(config: Config, **values: str) -> None:
    append(config.output_path, "".join(output_block(name.replace("_", "-"), value) for name, value in values.items()))


def report(config: Config, pr: PullRequest, client: Tokentrail, *, uploaded: int = 0) -> int:
    outcome = wait_for_verdict(client, pr, settle=SETTLE_SECONDS if uploaded else 0.0)
    verdict = outcome.verdict
    if verdict is None:
        command(
            "warning",
            f"Tokentrail does not know {pr.repo}#{pr.number} yet. Is the Tokentrail App installed on this repository"
            " and its pull_request webhook delivered? (wait-seconds lets this step wait for it.)",
            title="AI spend",
        )
        write_outputs(config, status="none", cost_usd="", comment_url="", details_url="")
        append(config.step_summary, f"### AI spend\n\nTokentrail does not know {pr.repo}#{pr.number} yet.\n\n")
        return 0
    status = str(verdict.get("status"))
    reasons = [str(reason) for reason in verdict.get("reasons") or []]
    cost = str(verdict.get("cost_usd", ""))
    at = pr.head_sha[:7] or ("its latest head" if pr.by_comment else "?")
    print(f"Tokentrail: {pr.repo}#{pr.number} at {at} spent {usd(cost)} on AI: {status}")
    for reason in reasons:
        print(f"  {reason}")
    if not outcome.head_seen:
        command(
            "notice",
            f"Tokentrail has not seen commit {pr.head_sha[:7]} of this pull request yet; the verdict is for an earlier"
            " push. Set wait-seconds to wait for it.",
            title="AI spend",
        )
    comment = client.get(pr.api_path + "/comment.live.md", accept="text/markdown")  # the figures of the verdict
    append(config.step_summary, summary_markdown(pr, verdict, config, comment))
    write_outputs(
        config,
        cost_usd=cents(cost),
        status=status,
        comment_url=str(verdict.get("comment_url") or ""),
        details_url=str(verdict.get("details_url") or ""),
    )
    failing = status in REACHES[config.fail_on]
    because = "; ".join(reasons) or status
    if status == "fail" or (status == "warn" and failing):
        over = "over its budget" if status == "fail" else "close to its budget"
        command("error", f"PR #{pr.number} spent {usd(cost)} on AI, {over}: {because}", title="AI spend")
    elif status == "warn":
        command("warning", f"PR #{pr.number} spent {usd(cost)} on AI, close to its budget: {because}", title="AI spend")
    if failing:
        print(f"Failing: the verdict {status!r} reaches fail-on {config.fail_on!r}.")
        return 1
    return 0


# ---------------------------------------------------------------- main


def credentials(config: Config) -> tuple[str, bool] | None:
    """(token, is OIDC): the run's OIDC token when the job may have one, else the token input."""
    if config.id_token_url and config.id_token_request_token:
        try:
            return fetch_id_token(config), True
        except ActionError as problem:
            if not config.token:
                raise
            print(f"No OIDC token ({problem}); using the token input.")
    if config.token:
        return config.token, False
    return None


def upload_usage(config: Config, pr: PullRequest, token: str) -> int:
    """Upload the usage-files; the number of records the server accepted. A file the server cannot read is a
    warning (the others still count); refused credentials are an error."""
    files, unmatched = usage_files.find_files(config.usage_files, workspace=config.workspace)
    for pattern in unmatched:
        command("warning", f"usage-files: {pattern} matches no file", title="AI spend")
    url = f"{config.server_url}/v1/ingest/ci"

    def post(target: str, *, headers: dict[str, str], body: bytes) -> Response:
        return http_request(target, headers=headers, body=body, what="the Tokentrail server")

    accepted = duplicates = 0
    lines = []
    deadline = time.monotonic() + config.wait_seconds
    for path in files:
        try:
            done = upload_waiting_for_pull(
                path, url=url, token=token, pr=pr, post=post, config=config, deadline=deadline
            )
        except usage_files.UploadRefused as refused:
            if refused.status in (401, 403):
                raise ActionError(f"the Tokentrail server refused the upload of {path} {refused}") from None
            command("warning", f"usage-files: {path} was not uploaded {refused}", title="AI spend")
            continue
        except OSError as problem:
            command("warning", f"usage-files: cannot read {path}: {problem}", title="AI spend")
            continue
        accepted += done.accepted
        duplicates += done.duplicates
        line = f"{path} ({done.kind}): {done.accepted} new, {done.duplicates} already counted"
        if done.rejected:
            line += f", {len(done.rejected)} rejected"
            command("warning", f"usage-files: {path}: " + "; ".join(done.rejected[:5]), title="AI spend")
        print(f"Uploaded {line}.", flush=True)
        lines.append(f"- {line}")
    if lines:
        append(config.step_summary, "### AI spend of this job's agents\n\n" + "\n".join(lines) + "\n\n")
    return accepted


def upload_waiting_for_pull(
    path: Any,
    *,
    url: str,
    token: str,
    pr: PullRequest,
    post: Callable[..., Response],
    config: Config,
    deadline: float,
    sleep: Callable[[float], None] = time.sleep,
) -> usage_files.Uploaded:
    """One upload. A 404 means the server does not know the PR the upload names by number alone (a comment's run
    with the PR's webhook not delivered yet): with wait-seconds, ask again until they have passed."""
    while True:
        try:
            return usage_files.upload_file(path, url=url, token=token, pr=pr, post=post)
        except usage_files.UploadRefused as refused:
            remaining = deadline - time.monotonic()
            if refused.status != 404 or remaining <= 0:
                raise
            pause = min(config.poll_seconds, remaining)
            print(f"Waiting {pause:.0f}s: {refused.detail}.", flush=True)
            sleep(pause)


def run(config: Config) -> int:
    event = read_event(config)
    pr = pull_request_of(event, config)
    if pr is None:
        message = nothing_to_check(event, config)
        command("notice", message, title="AI spend")
        append(config.step_summary, f"### AI spend\n\n{message}\n\n")
        write_outputs(config, status="none")
        return 0
    found = credentials(config)
    if found is None:
        if pr.is_fork:
            message = (
                f"{pr.repo}#{pr.number} comes from the fork {pr.head_repo or '(deleted)'}: workflows of forks get no"
                " OIDC token and no secrets, so this step cannot ask Tokentrail for the verdict. The Tokentrail"
                " comment and the AI spend check run on the pull request still report its spend."
            )
            command("notice", message, title="AI spend")
            if usage_files.patterns(config.usage_files):
                command(
                    "notice",
                    "usage-files: not uploaded: a fork's run has no OIDC token to prove which repository it runs for",
                    title="AI spend",
                )
            append(config.step_summary, f"### AI spend\n\n{message}\n\n")
            write_outputs(config, status="none")
            return 0
        raise ActionError(
            "no credentials for Tokentrail: give the job `permissions: id-token: write` (OIDC) or pass a Tokentrail"
            " API token in the token input"
        )
    token, using_oidc = found
    uploaded = 0
    if usage_files.patterns(config.usage_files):
        if using_oidc:
            uploaded = upload_usage(config, pr, token)
        else:
            command(
                "notice",
                "usage-files: not uploaded: uploads need the run's OIDC token (permissions: id-token: write)",
                title="AI spend",
            )
    return report(config, pr, Tokentrail(config, token, using_oidc=using_oidc), uploaded=uploaded)


def main(environ: Mapping[str, str] | None = None) -> int:
    summary_path = (os.environ if environ is None else environ).get("GITHUB_STEP_SUMMARY", "")
    try:
        return run(Config.from_environ(environ))
    except ActionError as problem:
        command("error", str(problem), title="AI spend")
        append(summary_path, f"### AI spend\n\n❌ {problem}\n\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
